// SPDX-License-Identifier: MPL-2.0
// Calling the control door from `portunus`, and explaining what went wrong.
#include "portunusd/control/control_client.hpp"

#include <portunus/door.hpp>

#include <sys/stat.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

namespace portunusd {
namespace {

// Opening waits for the daemon's greeting; a daemon that is alive sends it at once.
constexpr std::chrono::milliseconds open_timeout{5000};

// The file type a door has: a socket for userland doors, S_IFDOOR (0xD000) on illumos.
bool is_door_file(const struct stat& st)
{
#ifdef PORTUNUS_DOOR_ILLUMOS
    return (st.st_mode & S_IFMT) == 0xD000;
#else
    return S_ISSOCK(st.st_mode);
#endif
}

std::string file_kind(const struct stat& st)
{
    if (S_ISREG(st.st_mode)) return "a regular file";
    if (S_ISDIR(st.st_mode)) return "a directory";
    if (S_ISLNK(st.st_mode)) return "a symbolic link";
    if (S_ISFIFO(st.st_mode)) return "a FIFO";
    if (S_ISSOCK(st.st_mode)) return "a socket";
    return "not a door";
}

std::string foreign_reply(const std::string& path, const control_reply_parse& p)
{
    std::string text = "control door " + path + " answered in protocol " + p.foreign_version + ", but this portunus speaks " +
                       std::string{control_protocol_token} + ": use the portunus that came with the running portunusd";
    if (!p.summary.empty()) text += " (it said: " + p.summary + ")";
    return text;
}

} // namespace

std::string control_door_path(const char* flag, const char* variable)
{
    if (flag != nullptr) return flag;
    if (variable != nullptr && *variable != '\0') return variable;
    return std::string{default_control_door};
}

std::string describe_control_door_error(const std::string& path, const std::error_code& ec)
{
    const int e = ec.value();
    struct stat st {};
    const bool exists = ::lstat(path.c_str(), &st) == 0;
    if (e == ENOENT || (e == EBADF && !exists))
        return "no control door at " + path + ": the path is missing (is portunusd running, with control_door set to it?)";
    if (e == EACCES || e == EPERM) {
        // The door belongs to the daemon's user, so its owner is the uid the daemon would name.
        const std::string owner = exists ? std::to_string(st.st_uid) : "of the daemon";
        return "control door " + path + " refused: permission denied: only root and uid " + owner +
               " may use this control door";
    }
    if (e == EBADF && !is_door_file(st))
        return path + " is not a door but " + file_kind(st) + "; is control_door set to this path?";
    if (e == EBADF) return "nothing serves the control door " + path + ": it is stale (portunusd is not running)";
    if (e == EPROTO || e == EPROTONOSUPPORT)
        return path + " is not a portunusd control door: it does not speak this door protocol (" + ec.message() + ")";
    if (e == ETIMEDOUT) return "control door " + path + ": the daemon did not answer in time";
    if (e == EINTR) return "control door " + path + ": the daemon ended the call without an answer (did it exit?)";
    return "control door " + path + ": " + ec.message();
}

control_exchange call_control_door(const std::string& path, const control_request& request,
                                   std::chrono::milliseconds timeout)
{
    control_exchange out;
    std::error_code ec;
    const auto door = portunus::door_client::open(path, open_timeout, ec);
    if (!ec) {
        const auto result = door.call(format_control_request(request), {}, timeout, ec);
        if (!ec) {
            auto parsed = parse_control_reply(result.data.view());
            if (parsed.value)
                out.reply = std::move(parsed.value);
            else if (!parsed.foreign_version.empty())
                out.error = foreign_reply(path, parsed);
            else
                out.error = path + " is not a portunusd control door: " + parsed.error;
            return out;
        }
    }
    out.error = describe_control_door_error(path, ec);
    return out;
}

bool process_gone(long pid)
{
    if (pid <= 0) return true;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) return true;
    // Linux: a zombie still answers kill(), but it has exited. Elsewhere there is no such file
    // and only ESRCH counts.
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!std::getline(stat, line)) return false;
    const auto paren = line.rfind(')');
    if (paren == std::string::npos || paren + 2 >= line.size()) return false;
    const char state = line[paren + 2];
    return state == 'Z' || state == 'X';
}

} // namespace portunusd
