// SPDX-License-Identifier: MPL-2.0
// hello_backend: the hello_web reply from a single-threaded blocking HTTP/1.1 server, the plain
// upstream a reverse proxy would sit in front of.
//
// One connection at a time, on purpose: it is the simplest server that answers the same bytes
// as hello_web, so what a proxy in front of it adds is what the comparison shows.
#include "hello_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <string_view>

namespace {

// With one thread, a client that stalls would stall everyone; this bounds how long.
constexpr timeval io_timeout{5, 0};

using namespace hello_http;

bool write_all(int fd, std::string_view data)
{
    while (!data.empty()) {
        const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

// Serves requests on one connection until the client closes or asks to, or an error.
void serve_connection(int fd)
{
    std::string pending;
    char chunk[16384];
    for (;;) {
        std::size_t head_end = std::string::npos, separator = 0;
        for (;;) {
            if (const auto crlf = pending.find("\r\n\r\n"); crlf != std::string::npos) {
                head_end = crlf;
                separator = 4;
            }
            if (const auto lf = pending.find("\n\n"); lf != std::string::npos && lf < head_end) {
                head_end = lf;
                separator = 2;
            }
            if (head_end != std::string::npos) break;
            if (pending.size() > max_head) return;
            const ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;
            pending.append(chunk, static_cast<std::size_t>(n));
        }
        const request_head head = parse_head(std::string_view(pending).substr(0, head_end));
        pending.erase(0, head_end + separator);
        // Skip a request body so that the next request starts where it should.
        std::size_t skip = head.body_bytes;
        while (skip > 0) {
            if (pending.empty()) {
                const ssize_t n = ::recv(fd, chunk, std::min(sizeof chunk, skip), 0);
                if (n < 0 && errno == EINTR) continue;
                if (n <= 0) return;
                pending.append(chunk, static_cast<std::size_t>(n));
            }
            const std::size_t take = std::min(skip, pending.size());
            pending.erase(0, take);
            skip -= take;
        }
        std::string reply;
        append_response(reply, head.keep_alive);
        if (!write_all(fd, reply) || !head.keep_alive) return;
    }
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: %s PORT [IPV4_ADDRESS]\n", argv[0]);
        return 64; // EX_USAGE
    }
    const long port = std::strtol(argv[1], nullptr, 10);
    const char* address = argc == 3 ? argv[2] : "127.0.0.1";
    if (port < 1 || port > 65535) {
        std::fprintf(stderr, "%s: bad port '%s'\n", argv[0], argv[1]);
        return 64;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET, address, &addr.sin_addr) != 1) {
        std::fprintf(stderr, "%s: bad IPv4 address '%s'\n", argv[0], address);
        return 64;
    }
    std::signal(SIGPIPE, SIG_IGN);

    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int on = 1;
    if (listener < 0 || ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        ::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, SOMAXCONN) != 0) {
        std::fprintf(stderr, "%s: cannot listen on %s:%ld: %s\n", argv[0], address, port, std::strerror(errno));
        return 95;
    }
    for (;;) {
        const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            // Out of descriptors or memory: pause instead of spinning on the same error.
            std::fprintf(stderr, "%s: accept: %s\n", argv[0], std::strerror(errno));
            ::usleep(100'000);
            continue;
        }
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &io_timeout, sizeof io_timeout);
        ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &io_timeout, sizeof io_timeout);
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
        serve_connection(fd);
        ::close(fd);
    }
}
