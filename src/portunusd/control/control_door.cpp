// SPDX-License-Identifier: MPL-2.0
// Creating, guarding and serving the control door.
#include "portunusd/control/control_door.hpp"

#include "portunusd/control/control_commands.hpp"
#include "portunusd/control/control_protocol.hpp"

#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

namespace portunusd {
namespace {

// Few and idle-reaped: control calls are rare, and callers past the cap wait rather than fail.
constexpr unsigned control_threads = 4;
constexpr std::chrono::seconds control_idle{30};
// How long a door already at the path may take to answer before it counts as dead.
constexpr std::chrono::milliseconds probe_timeout{1000};

std::string errno_text(int e) { return std::strerror(e); }

// The directory holding `path`, made 0755 if it is missing. Only that last directory is made:
// its parent is where the operator keeps runtime files (/var/run), which must already exist.
std::string ensure_directory(const std::string& path)
{
    const auto slash = path.rfind('/');
    if (slash == std::string::npos || slash == 0) return {};
    const std::string dir = path.substr(0, slash);
    struct stat st {};
    if (::stat(dir.c_str(), &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return dir + " is not a directory";
        // Whoever may write there could put a door of their own in our place and answer
        // `portunus stop` for us.
        if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 && (st.st_mode & S_ISVTX) == 0)
            spdlog::warn("control door directory {} is writable by its group or others", dir);
        return {};
    }
    if (errno != ENOENT) return "cannot inspect " + dir + ": " + errno_text(errno);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) return "cannot create " + dir + ": " + errno_text(errno);
    // mkdir() applied the umask; the mode is meant as written.
    if (::chmod(dir.c_str(), 0755) != 0) return "cannot set the mode of " + dir + ": " + errno_text(errno);
    return {};
}

// Refuses to take the path from a daemon that still serves it: attaching would silently take
// its control door away (and remove it when we exit). A stale door, left by a daemon that died,
// is replaced.
std::string check_not_served(const std::string& path)
{
    std::error_code ec;
    const auto existing = portunus::door_client::open(path, probe_timeout, ec);
    if (ec) return {};
    const auto info = existing.info(ec);
    if (ec || info.target <= 0) return {};
    return "process " + std::to_string(info.target) + " serves a door there (another portunusd?)";
}

} // namespace

control_door::control_door(std::string path, control_actions actions)
    : path_(std::move(path)), actions_(std::move(actions))
{
}

control_door::~control_door() { server_.revoke(); }

std::unique_ptr<control_door> control_door::open(const std::string& path, control_actions actions,
                                                 std::optional<uid_t> owner, std::optional<gid_t> group,
                                                 std::string& error)
{
    const auto fail = [&](const std::string& why) {
        error = "cannot create control door " + path + ": " + why;
        return nullptr;
    };
    if (path.empty() || path.front() != '/') return fail("not an absolute path");
    if (auto why = ensure_directory(path); !why.empty()) return fail(why);
    if (auto why = check_not_served(path); !why.empty()) return fail(why);

    std::unique_ptr<control_door> door(new control_door(path, std::move(actions)));
    portunus::door_options options;
    options.refuse_descriptors = true;
    options.max_threads = control_threads;
    options.idle_timeout = control_idle;
    std::error_code ec;
    control_door* self = door.get();
    door->server_ = portunus::door_server::create(
        [self](portunus::door_request& request) { return self->handle(request); }, options, ec);
    if (ec) return fail(ec.message());
    door->server_.attach(path, ec);
    if (ec) return fail(ec.value() == EEXIST ? "something that is not a door is there" : ec.message());

    // The door is reachable with the backend's default mode for an instant; the credential check
    // in handle() covers callers that connect within it.
    if (::chmod(path.c_str(), 0600) != 0) return fail("cannot set its mode: " + errno_text(errno));
    if ((owner || group) && ::lchown(path.c_str(), owner.value_or(static_cast<uid_t>(-1)),
                                     group.value_or(static_cast<gid_t>(-1))) != 0)
        return fail("cannot give it to its owner: " + errno_text(errno));
    return door;
}

portunus::door_reply control_door::handle(portunus::door_request& request)
{
    const portunus::door_credentials& caller = request.caller;
    // The effective uid at call time: the daemon may have dropped root since the door was made.
    const uid_t self = ::geteuid();
    if (!control_caller_allowed(caller.uid, self)) {
        spdlog::warn("control door: refused uid {} (pid {}): only root and uid {} may use it", caller.uid,
                     caller.pid, self);
        return {format_control_reply({control_status::refused, control_refusal(self), {}}), {}};
    }
    const control_request_parse parsed = parse_control_request(request.data);
    if (!parsed.value) {
        spdlog::info("control door: malformed request from uid {} (pid {}): {}", caller.uid, caller.pid, parsed.error);
        return {format_control_reply({control_status::error, parsed.error, {}}), {}};
    }
    const control_command command = parsed.value->command;
    if (command == control_command::reload || command == control_command::stop)
        spdlog::info("control door: {} asked by uid {} (pid {})", to_string(command), caller.uid, caller.pid);
    else
        spdlog::debug("control door: {} asked by uid {} (pid {})", to_string(command), caller.uid, caller.pid);
    return {format_control_reply(run_control_request(*parsed.value, actions_, ::getpid())), {}};
}

} // namespace portunusd
