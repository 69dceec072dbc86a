// SPDX-License-Identifier: MPL-2.0
// The start-up check that no other user can replace a forward's or an app's door by writing to its
// directory.
#include "portunusd/config/config.hpp"

#include "portunusd/config/config_reader.hpp"
#include "portunusd/config/config_values.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

namespace portunusd {
namespace {

std::string parent_directory(const std::string& path)
{
    const auto slash = path.rfind('/');
    if (slash == std::string::npos)
        return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

std::string who_can_write(mode_t mode)
{
    const bool group = (mode & S_IWGRP) != 0;
    const bool other = (mode & S_IWOTH) != 0;
    if (group && other)
        return "its group and others";
    return group ? "its group" : "others";
}

// Who makes the door, which decides what a directory that does not exist yet means.
enum class door_owner {
    // An application started apart from the daemon, usually after it: the directory may come
    // with it, and the daemon answers 503 until the door appears.
    outside,
    // An [[app]] the daemon itself starts at once: it could not attach its door.
    app,
};

// Reports at `at` why the directory of `door` is unfit to hold it, if it is.
void check_directory(const std::string& door, config_detail::position at, bool allow_insecure, door_owner owner,
                     config_detail::diagnostics& diag)
{
    using config_detail::octal_mode;
    using config_detail::quote;
    // A door value that was invalid has been reported by the parser and left empty.
    if (door.empty())
        return;
    const std::string dir = parent_directory(door);
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno == ENOENT && owner == door_owner::outside)
            diag.warning(at, "door: directory " + quote(dir) +
                                 " does not exist yet; the application that serves this door needs it "
                                 "(create it, writable only by its owner, before starting the application)");
        else if (errno == ENOENT)
            diag.error(at, "door: directory " + quote(dir) + " does not exist");
        else
            diag.error(at, "door: cannot check directory " + quote(dir) + ": " + std::strerror(errno));
        return;
    }
    if (!S_ISDIR(st.st_mode)) {
        diag.error(at, "door: " + quote(dir) + " is not a directory");
        return;
    }
    // The sticky bit is deliberately no excuse: it stops others from removing a door, but
    // not from creating one first at a path the application has not claimed yet.
    if (!allow_insecure && (st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
        diag.error(at, "door: directory " + quote(dir) + " is writable by " + who_can_write(st.st_mode) +
                           " (mode " + octal_mode(st.st_mode) +
                           "), so another user could replace the door; use a directory only its owner "
                           "can write, or set allow_insecure_door_dir = true");
}

}  // namespace

namespace config_detail {

void check_door_directories(const config& cfg, diagnostics& diag)
{
    const bool allow_insecure = cfg.daemon.allow_insecure_door_dir;
    for (const forward_config& f : cfg.forwards) {
        // An http forward that routes only with maps has no door of its own.
        if (!f.door.empty())
            check_directory(f.door, {f.door_line, f.door_column}, allow_insecure, door_owner::outside, diag);
        for (const http_map& m : f.maps)
            check_directory(m.door, {m.door_line, m.door_column}, allow_insecure, door_owner::outside, diag);
    }
    // An app's instance doors (door.1, door.2, ...) share its door's directory: one check covers them.
    for (const app_config& a : cfg.apps)
        check_directory(a.door, {a.door_at.line, a.door_at.column}, allow_insecure, door_owner::app, diag);
}

}  // namespace config_detail

std::vector<config_error> check_door_paths(const config& cfg)
{
    config_detail::diagnostics diag{cfg.source};
    config_detail::check_door_directories(cfg, diag);
    config_result both;
    both.errors = diag.take_sorted();
    both.warnings = diag.take_sorted_warnings();
    return all_problems(both);
}

}  // namespace portunusd
