// SPDX-License-Identifier: MPL-2.0
// portunus: the command-line client for doors (call a door from the shell, inspect it).
#include <portunus/door.hpp>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

constexpr int exit_usage = 64;
constexpr int exit_door_error = 1;

void usage(FILE* to)
{
    std::fputs("usage: portunus call [-t MILLISECONDS] PATH    send standard input as one door call,\n"
               "                                               write the reply to standard output\n"
               "       portunus info PATH                      show the door's server pid and attributes\n"
               "       portunus -h | --help | --version\n",
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

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) return usage(stderr), exit_usage;
    const std::string_view command = argv[1];
    if (command == "-h" || command == "--help") return usage(stdout), 0;
    if (command == "--version") return std::puts("portunus " PORTUNUS_VERSION), 0;
    if (command == "call") return do_call(argc, argv);
    if (command == "info") return do_info(argc, argv);
    std::fprintf(stderr, "portunus: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return exit_usage;
}
