// SPDX-License-Identifier: MPL-2.0
// line_echo: behind a pass forward, greets each client first and echoes its lines for as long
// as it stays connected, which no relayed call can do (a relay answers, it never speaks first).
#include "app_arguments.hpp"

#include <portunus/server.hpp>

#include <sys/socket.h>
#include <sys/time.h>

#include <cerrno>
#include <string>

namespace {

// A client silent this long is let go; a line longer than this is cut there.
constexpr timeval idle_limit{60, 0};
constexpr std::size_t max_line = 64 * 1024;

bool send_all(int fd, std::string_view bytes)
{
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

void serve_client(portunus::unique_fd socket, const portunus::pass_header& header)
{
    const int fd = socket.get();
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle_limit, sizeof idle_limit);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &idle_limit, sizeof idle_limit);
    if (!send_all(fd, "hello " + header.client().text() + " on " + header.forward + "\n")) return;
    std::string pending = header.early;
    for (;;) {
        std::size_t nl;
        while ((nl = pending.find('\n')) != std::string::npos || pending.size() >= max_line) {
            const std::size_t n = nl == std::string::npos ? max_line : nl + 1;
            if (!send_all(fd, std::string_view(pending).substr(0, n))) return;
            pending.erase(0, n);
        }
        char buf[4096];
        const ssize_t got = ::recv(fd, buf, sizeof buf, 0);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        pending.append(buf, static_cast<std::size_t>(got));
    }
    if (!pending.empty()) send_all(fd, pending); // a last line without its newline
}

} // namespace

int main(int argc, char** argv)
{
    if (const auto status = portunus_apps::check_arguments(
            argc, argv, 1, 1, "DOOR_PATH\nGreets each client of a pass forward, then echoes its lines until it closes."))
        return *status;
    return portunus::serve_connections(argv[1], serve_client);
}
