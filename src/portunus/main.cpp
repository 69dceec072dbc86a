// SPDX-License-Identifier: MPL-2.0
// portunus: the command-line client for doors (call a door from the shell, inspect it) and for
// a running portunusd (status, reload, stop over its control door).
#include "portunusd/config/config_values.hpp"
#include "portunusd/control/control_client.hpp"

#include <portunus/door.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace {

constexpr int exit_usage = 64;
constexpr int exit_door_error = 1;
// The daemon's own status for a configuration with errors (SMF's), which scripts already know.
constexpr int exit_config = 96;

void usage(FILE* to)
{
    std::fputs("usage: portunus call [-t MILLISECONDS] PATH    send standard input as one door call,\n"
               "                                               write the reply to standard output\n"
               "       portunus info PATH                      show the door's server pid and attributes\n"
               "       portunus status [--json] [--control PATH]\n"
               "                                               report a running portunusd's forwards and doors\n"
               "       portunus reload [--control PATH]        make portunusd read its configuration again\n"
               "       portunus stop [--timeout DURATION] [--control PATH]\n"
               "       portunus restart APP [--control PATH]      replace an [[app]]'s processes, new before old\n"
               "                                               drain portunusd, wait until it has exited\n"
               "       portunus -h | --help | --version\n"
               "The control door is --control PATH, else $PORTUNUS_CONTROL_DOOR, else\n"
               "/var/run/portunusd/control.door.\n",
               to);
}

// The errno names matter more than strerror() text here: scripts and people compare them with
// door_call(3C).
const char* errno_name(int value)
{
    switch (value) {
    case EBADF: return "EBADF";
    case EINTR: return "EINTR";
    case E2BIG: return "E2BIG";
    case ENOTSUP: return "ENOTSUP";
    case EAGAIN: return "EAGAIN";
    case EPROTO: return "EPROTO";
    case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
    case ETIMEDOUT: return "ETIMEDOUT";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case ENAMETOOLONG: return "ENAMETOOLONG";
    case EMFILE: return "EMFILE";
    default: return "error";
    }
}

int report(const char* what, const std::string& path, const std::error_code& ec)
{
    std::fprintf(stderr, "portunus: %s %s: %s (%s)\n", what, path.c_str(), errno_name(ec.value()),
                 ec.message().c_str());
    return exit_door_error;
}

bool read_all(int fd, std::string& out)
{
    char chunk[65536];
    for (;;) {
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n == 0) return true;
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        out.append(chunk, static_cast<std::size_t>(n));
    }
}

bool write_all(int fd, std::string_view data)
{
    while (!data.empty()) {
        const ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) continue;
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

int do_call(int argc, char** argv)
{
    long timeout_ms = 0;
    int i = 2;
    if (i < argc && std::strcmp(argv[i], "-t") == 0) {
        if (i + 1 >= argc) return usage(stderr), exit_usage;
        char* end = nullptr;
        timeout_ms = std::strtol(argv[i + 1], &end, 10);
        if (*end != '\0' || timeout_ms <= 0) {
            std::fprintf(stderr, "portunus: -t wants a positive number of milliseconds, not '%s'\n", argv[i + 1]);
            return exit_usage;
        }
        i += 2;
    }
    if (i + 1 != argc) return usage(stderr), exit_usage;
    const std::string path = argv[i];

    std::string request;
    if (!read_all(STDIN_FILENO, request)) {
        std::fprintf(stderr, "portunus: reading standard input: %s\n", std::strerror(errno));
        return exit_door_error;
    }
    std::error_code ec;
    const auto door = portunus::door_client::open(path, ec);
    if (ec) return report("open", path, ec);
    const auto result = door.call(request, {}, std::chrono::milliseconds{timeout_ms}, ec);
    if (ec) return report("call", path, ec);
    if (!write_all(STDOUT_FILENO, result.data.view())) {
        std::fprintf(stderr, "portunus: writing standard output: %s\n", std::strerror(errno));
        return exit_door_error;
    }
    if (!result.fds.empty()) std::fprintf(stderr, "portunus: the reply carried %zu descriptor(s)\n", result.fds.size());
    return 0;
}

int do_info(int argc, char** argv)
{
    if (argc != 3) return usage(stderr), exit_usage;
    std::error_code ec;
    const auto door = portunus::door_client::open(argv[2], ec);
    if (ec) return report("open", argv[2], ec);
    const auto info = door.info(ec);
    if (ec) return report("info", argv[2], ec);
    std::printf("path: %s\nserver pid: %d\nattributes:%s%s%s\nuniquifier: %016llx\n", argv[2],
                static_cast<int>(info.target), (info.attributes & portunus::door_attr_refuse_desc) ? " refuse-desc" : "",
                (info.attributes & portunus::door_attr_revoked) ? " revoked" : "", info.attributes == 0 ? " none" : "",
                static_cast<unsigned long long>(info.uniquifier));
    return 0;
}

// ---- status, reload and stop: the control door ----------------------------------------------

struct control_options {
    const char* door = nullptr;
    const char* app = nullptr; ///< restart's argument
    bool json = false;
    std::optional<std::chrono::milliseconds> timeout;
};

// Returns -1 to go on, or an exit status. `--json` and `--timeout` only where `command` takes them.
int parse_control_options(int argc, char** argv, std::string_view command, control_options& o)
{
    for (int i = 2; i < argc; ++i) {
        std::string_view a = argv[i];
        const char* value = nullptr;
        const auto equals = a.find('=');
        if (a.substr(0, 2) == "--" && equals != std::string_view::npos) {
            value = argv[i] + equals + 1;
            a = a.substr(0, equals);
        }
        const bool takes_value = a == "--control" || (a == "--timeout" && command == "stop");
        if (takes_value && value == nullptr) {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "portunus: %s needs a value\n", argv[i]);
                return exit_usage;
            }
            value = argv[++i];
        }
        if (command == "restart" && a.substr(0, 1) != "-" && o.app == nullptr) {
            o.app = argv[i];
        } else if (a == "--json" && command == "status" && value == nullptr) {
            o.json = true;
        } else if (a == "--control" && takes_value) {
            o.door = value;
        } else if (a == "--timeout" && takes_value) {
            auto d = portunusd::config_detail::parse_duration(value, true);
            if (!d.value) {
                std::fprintf(stderr, "portunus: --timeout: %s\n", d.error.c_str());
                return exit_usage;
            }
            o.timeout = *d.value;
        } else {
            std::fprintf(stderr, "portunus: %s: unknown option '%s'\n", std::string(command).c_str(), argv[i]);
            usage(stderr);
            return exit_usage;
        }
    }
    return -1;
}

// One exchange; on any failure prints why and gives the exit status, else leaves `reply` set.
int exchange(const std::string& door, const portunusd::control_request& request, std::chrono::milliseconds deadline,
             portunusd::control_reply& reply)
{
    // The daemon answers within `deadline`; the margin covers the trip and a busy machine.
    auto result = portunusd::call_control_door(door, request, deadline + std::chrono::seconds(5));
    if (!result.reply) {
        std::fprintf(stderr, "portunus: %s\n", result.error.c_str());
        return exit_door_error;
    }
    reply = std::move(*result.reply);
    if (reply.status == portunusd::control_status::ok) return 0;
    if (reply.status == portunusd::control_status::refused)
        std::fprintf(stderr, "portunus: control door %s refused: %s\n", door.c_str(), reply.summary.c_str());
    else
        std::fprintf(stderr, "portunus: %s\n", reply.summary.c_str());
    return exit_door_error;
}

int do_status(const std::string& door, bool json)
{
    using portunusd::control_command;
    portunusd::control_reply reply;
    const auto request = portunusd::control_request{json ? control_command::status_json : control_command::status, {}, {}};
    if (const int status = exchange(door, request, portunusd::control_status_deadline, reply)) return status;
    return write_all(STDOUT_FILENO, reply.body) ? 0 : exit_door_error;
}

int do_reload(const std::string& door)
{
    portunusd::control_reply reply;
    const int status = exchange(door, {portunusd::control_command::reload, {}, {}}, portunusd::control_reload_deadline, reply);
    if (status != 0 && reply.body.empty()) return status;
    // Names go to standard output; each configuration error, without its prefix, to standard
    // error as FILE:LINE:COL: message, the form editors jump to.
    bool config_errors = false;
    std::string_view body = reply.body;
    while (!body.empty()) {
        const auto end = body.find('\n');
        const std::string_view line = body.substr(0, end);
        body = end == std::string_view::npos ? std::string_view{} : body.substr(end + 1);
        if (line.substr(0, portunusd::reload_error.size()) == portunusd::reload_error) {
            config_errors = true;
            std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size() - portunusd::reload_error.size()),
                         line.data() + portunusd::reload_error.size());
        } else if (line.substr(0, portunusd::reload_not_bound.size()) == portunusd::reload_not_bound) {
            std::fprintf(stderr, "portunus: %.*s\n", static_cast<int>(line.size()), line.data());
        } else {
            std::printf("%.*s\n", static_cast<int>(line.size()), line.data());
        }
    }
    if (config_errors) return exit_config;
    return status;
}

int do_stop(const std::string& door, std::optional<std::chrono::milliseconds> drain)
{
    portunusd::control_reply reply;
    const int status = exchange(door, {portunusd::control_command::stop, drain, {}}, portunusd::control_stop_deadline, reply);
    if (status != 0) return status;
    long pid = 0;
    if (std::sscanf(reply.body.c_str(), "stopping pid %ld", &pid) != 1 || pid <= 0) {
        std::fprintf(stderr, "portunus: control door %s: the stop reply names no pid\n", door.c_str());
        return exit_door_error;
    }
    std::printf("stopping pid %ld\n", pid);
    std::fflush(stdout);
    // The daemon bounds its own drain; without --timeout that is its drain_timeout, which is at
    // most 24 h. The margin covers the exit after the drain.
    const auto wait = drain.value_or(portunusd::control_max_drain) + std::chrono::seconds(5);
    const auto deadline = std::chrono::steady_clock::now() + wait;
    while (!portunusd::process_gone(pid)) {
        if (std::chrono::steady_clock::now() >= deadline) {
            std::fprintf(stderr, "portunus: pid %ld is still running %s after it was told to stop\n", pid,
                         portunusd::config_detail::format_duration(std::chrono::duration_cast<std::chrono::milliseconds>(wait)).c_str());
            return exit_door_error;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    std::printf("pid %ld exited\n", pid);
    return 0;
}

int do_restart(const std::string& door, const std::string& app)
{
    portunusd::control_reply reply;
    portunusd::control_request request{portunusd::control_command::restart, std::nullopt, app};
    const int status = exchange(door, request, portunusd::control_stop_deadline, reply);
    if (status == 0) std::fputs(reply.body.c_str(), stdout);
    return status;
}

int do_control(int argc, char** argv, std::string_view command)
{
    control_options o;
    if (const int status = parse_control_options(argc, argv, command, o); status >= 0) return status;
    if (command == "restart" && o.app == nullptr) {
        std::fputs("portunus: restart needs the name of an [[app]]\n", stderr);
        return exit_usage;
    }
    const std::string door = portunusd::control_door_path(o.door, std::getenv(portunusd::control_door_variable));
    if (command == "status") return do_status(door, o.json);
    if (command == "reload") return do_reload(door);
    if (command == "restart") return do_restart(door, o.app);
    return do_stop(door, o.timeout);
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) return usage(stderr), exit_usage;
    const std::string_view command = argv[1];
    if (command == "-h" || command == "--help") return usage(stdout), 0;
    if (command == "--version") return std::puts("portunus " PORTUNUS_VERSION), 0;
    if (command == "call") return do_call(argc, argv);
    if (command == "info") return do_info(argc, argv);
    if (command == "status" || command == "reload" || command == "stop" || command == "restart")
        return do_control(argc, argv, command);
    std::fprintf(stderr, "portunus: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return exit_usage;
}
