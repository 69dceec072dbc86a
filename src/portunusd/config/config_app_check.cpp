// SPDX-License-Identifier: MPL-2.0
// What each [[app]] needs of this machine (its accounts, its program, its working directory), and
// the credential changes starting the apps takes.
#include "portunusd/config/config.hpp"

#include "portunusd/config/config_reader.hpp"
#include "portunusd/config/config_values.hpp"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

namespace portunusd {
namespace {

using config_detail::quote;

// An account database entry can outgrow any buffer sysconf() suggests (a group with thousands
// of members): the buffer doubles on ERANGE up to this.
constexpr std::size_t max_entry_buffer = 1 << 20;

struct lookup {
    bool found = false;
    uid_t uid = 0;  ///< users only
    gid_t gid = 0;  ///< a user's primary group, or the group's id
    int error = 0;  ///< why the database could not answer; 0 when the name is simply not there
};

// Runs `get(buffer, size)`, a get*_r call, with a larger buffer for as long as it reports ERANGE.
template <class Get>
int with_buffer(Get get)
{
    std::vector<char> buffer(4096);
    int rc = get(buffer.data(), buffer.size());
    while (rc == ERANGE && buffer.size() < max_entry_buffer) {
        buffer.resize(buffer.size() * 2);
        rc = get(buffer.data(), buffer.size());
    }
    return rc;
}

// getpwnam_r(3C) may report a missing name as success without an entry or as one of these.
int database_error(int rc) noexcept
{
    return rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM ? 0 : rc;
}

// The ids of the passwd entry a getpw*_r call `get(entry, buffer, size, result)` finds.
template <class Get>
lookup find_user(Get get)
{
    passwd entry{};
    passwd* found = nullptr;
    const int rc = with_buffer([&](char* buffer, std::size_t size) { return get(&entry, buffer, size, &found); });
    if (found != nullptr)
        return {true, entry.pw_uid, entry.pw_gid, 0};
    return {false, 0, 0, database_error(rc)};
}

lookup user_named(const std::string& name)
{
    return find_user([&name](passwd* entry, char* buffer, std::size_t size, passwd** found) {
        return ::getpwnam_r(name.c_str(), entry, buffer, size, found);
    });
}

lookup user_with_id(uid_t uid)
{
    return find_user([uid](passwd* entry, char* buffer, std::size_t size, passwd** found) {
        return ::getpwuid_r(uid, entry, buffer, size, found);
    });
}

lookup group_named(const std::string& name)
{
    group entry{};
    group* found = nullptr;
    const int rc = with_buffer([&](char* buffer, std::size_t size) {
        return ::getgrnam_r(name.c_str(), &entry, buffer, size, &found);
    });
    if (found != nullptr)
        return {true, 0, entry.gr_gid, 0};
    return {false, 0, 0, database_error(rc)};
}

config_detail::position at(file_position p) noexcept
{
    return {p.line, p.column};
}

void check_account(std::string_view key, const std::string& name, const lookup& found, file_position where,
                   config_detail::diagnostics& diag)
{
    if (found.found)
        return;
    const std::string kind{key};
    if (found.error != 0)
        diag.error(at(where),
                   kind + ": cannot look up " + kind + " " + quote(name) + ": " + std::strerror(found.error));
    else
        diag.error(at(where), kind + ": no " + kind + " " + quote(name) + " on this machine");
}

// Why `path` cannot be looked at, or empty when `st` now describes it.
std::string stat_problem(const std::string& path, struct stat& st)
{
    if (::stat(path.c_str(), &st) == 0)
        return {};
    const int error = errno;
    if (error == ENOENT || error == ENOTDIR)
        return quote(path) + " does not exist";
    return "cannot check " + quote(path) + ": " + std::strerror(error);
}

// Execute permission is judged by the mode bits alone: whether the app's user may run the
// program is for exec to say, at start.
void check_program(const std::string& path, file_position where, config_detail::diagnostics& diag)
{
    struct stat st {};
    std::string problem = stat_problem(path, st);
    if (problem.empty() && !S_ISREG(st.st_mode))
        problem = quote(path) + " is not a regular file";
    else if (problem.empty() && (st.st_mode & (S_IXUSR | S_IXGRP | S_IXOTH)) == 0)
        problem = quote(path) + " is not executable (mode " + config_detail::octal_mode(st.st_mode) + ")";
    if (!problem.empty())
        diag.error(at(where), "command[0]: " + problem);
}

void check_working_directory(const std::string& path, file_position where, config_detail::diagnostics& diag)
{
    struct stat st {};
    std::string problem = stat_problem(path, st);
    if (problem.empty() && !S_ISDIR(st.st_mode))
        problem = quote(path) + " is not a directory";
    if (!problem.empty())
        diag.error(at(where), "working_directory: " + problem);
}

// The group the daemon runs with once it has dropped privileges, if it can be told.
std::optional<gid_t> daemon_gid(const daemon_config& d, uid_t daemon_uid)
{
    const lookup found = d.group ? group_named(*d.group) : d.user ? user_named(*d.user) : user_with_id(daemon_uid);
    return found.found ? std::optional{found.gid} : std::nullopt;
}

}  // namespace

namespace config_detail {

void check_app_resources(const config& cfg, diagnostics& diag)
{
    for (const app_config& app : cfg.apps) {
        if (app.user)
            check_account("user", *app.user, user_named(*app.user), app.user_at, diag);
        if (app.group)
            check_account("group", *app.group, group_named(*app.group), app.group_at, diag);
        if (!app.command.empty())
            check_program(app.command.front(), app.command_at, diag);
        check_working_directory(app.working_directory, app.working_directory_at, diag);
    }
    // An exec forward's program and account are needed at every connection: the same checks.
    for (const forward_config& f : cfg.forwards) {
        if (f.proto != protocol::exec)
            continue;
        if (f.user)
            check_account("user", *f.user, user_named(*f.user), f.user_at, diag);
        if (f.group)
            check_account("group", *f.group, group_named(*f.group), f.group_at, diag);
        if (!f.command.empty())
            check_program(f.command.front(), f.command_at, diag);
    }
}

}  // namespace config_detail

std::vector<config_error> check_apps(const config& cfg)
{
    config_detail::diagnostics diag{cfg.source};
    config_detail::check_app_resources(cfg, diag);
    return diag.take_sorted();
}

std::vector<started_account> started_accounts(const config& cfg)
{
    std::vector<started_account> out;
    for (const app_config& app : cfg.apps)
        if (app.user || app.group)
            out.push_back({app.user, app.group});
    for (const forward_config& f : cfg.forwards)
        if (f.proto == protocol::exec && (f.user || f.group))
            out.push_back({f.user, f.group});
    return out;
}

std::string privileges_needed(const config& cfg, uid_t daemon_uid)
{
    const bool execs = std::any_of(cfg.forwards.begin(), cfg.forwards.end(),
                                   [](const forward_config& f) { return f.proto == protocol::exec; });
    if (cfg.apps.empty() && !execs)
        return "no credential changes needed: no [[app]] or exec forward is configured";
    const std::optional<gid_t> own_gid = daemon_gid(cfg.daemon, daemon_uid);
    std::vector<std::string> accounts;  // as chown writes them: user, user:group or :group
    for (const started_account& app : started_accounts(cfg)) {
        const lookup user = app.user ? user_named(*app.user) : lookup{};
        const bool other_user = app.user && (!user.found || user.uid != daemon_uid);
        // The group an app gets: its own, else its user's primary group, else the daemon's.
        std::optional<gid_t> gid = own_gid;
        if (app.group) {
            const lookup group = group_named(*app.group);
            gid = group.found ? std::optional{group.gid} : std::nullopt;
        } else if (app.user) {
            gid = user.found ? std::optional{user.gid} : std::nullopt;
        }
        const bool other_group = !gid || !own_gid || *gid != *own_gid;
        if (!other_user && !other_group)
            continue;
        const std::string account = app.user.value_or("") + (app.group ? ":" + *app.group : "");
        if (std::find(accounts.begin(), accounts.end(), account) == accounts.end())
            accounts.push_back(account);
    }
    if (accounts.empty())
        return "no credential changes needed: every app and exec program runs as the daemon's own user and group";
    // What drop_privileges() keeps in that case: taking another identity means setting the
    // user and its groups, and stopping the app means signalling a process of another user.
    std::string line = "needs CAP_SETUID, CAP_SETGID and CAP_KILL (illumos: proc_setid) to start and stop apps and exec programs as: ";
    for (std::size_t i = 0; i < accounts.size(); ++i)
        line += (i == 0 ? "" : ", ") + accounts[i];
    return line;
}

}  // namespace portunusd
