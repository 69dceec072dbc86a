// SPDX-License-Identifier: MPL-2.0
// http_backend: the hello_web reply from a single-threaded epoll HTTP/1.1 server that serves many
// kept-alive connections at once, the upstream of the keep-alive benchmark (http_compare.py).
//
// hello_backend serves one connection at a time, which is right for one request per connection
// but starves every other client once connections stay open: with 64 kept-alive connections one
// is served and 63 wait in the accept backlog until it closes. This server keeps the one thread
// (what a proxy in front of a simple application server adds is still what the comparison shows)
// but multiplexes its connections, so each of them is served in turn.
#include "hello_http.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
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
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace {

using namespace hello_http;

struct connection {
    int fd = -1;
    std::string in;
    std::string out;
    std::size_t skip = 0;   ///< request body bytes still to discard
    bool closing = false;   ///< the last response is queued: close once it is written
    bool peer_done = false; ///< the client shut down its side: answer what it sent, then close
    bool writing = false;   ///< waiting for EPOLLOUT (and not reading meanwhile)
};

int epoll_fd = -1;

void close_connection(std::unordered_map<int, std::unique_ptr<connection>>& all, connection& c)
{
    ::epoll_ctl(epoll_fd, EPOLL_CTL_DEL, c.fd, nullptr);
    ::close(c.fd);
    all.erase(c.fd); // destroys c
}

// Answers every complete request in the buffer: pipelined requests are served in order.
void serve_buffered(connection& c)
{
    while (!c.closing) {
        if (c.skip > 0) {
            const std::size_t take = std::min(c.skip, c.in.size());
            c.in.erase(0, take);
            c.skip -= take;
            if (c.skip > 0) return;
        }
        std::size_t head_end = std::string::npos, separator = 0;
        if (const auto crlf = c.in.find("\r\n\r\n"); crlf != std::string::npos) {
            head_end = crlf;
            separator = 4;
        }
        if (const auto lf = c.in.find("\n\n"); lf != std::string::npos && lf < head_end) {
            head_end = lf;
            separator = 2;
        }
        if (head_end == std::string::npos) {
            if (c.in.size() > max_head) c.closing = true;
            return;
        }
        const request_head head = parse_head(std::string_view(c.in).substr(0, head_end));
        c.in.erase(0, head_end + separator);
        c.skip = head.body_bytes;
        append_response(c.out, head.keep_alive);
        if (!head.keep_alive) c.closing = true;
    }
}

// Writes what it can; false when the connection is finished (closed by the caller).
bool flush(connection& c)
{
    std::size_t sent = 0;
    while (sent < c.out.size()) {
        const ssize_t n = ::send(c.fd, c.out.data() + sent, c.out.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
        return false;
    }
    c.out.erase(0, sent);
    if (!c.out.empty()) {
        // A client that does not read its responses stops being read from: no unbounded buffers.
        if (!c.writing) {
            epoll_event ev{};
            ev.events = EPOLLOUT;
            ev.data.ptr = &c;
            ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
            c.writing = true;
        }
        return true;
    }
    if (c.closing || c.peer_done) return false;
    if (c.writing) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = &c;
        ::epoll_ctl(epoll_fd, EPOLL_CTL_MOD, c.fd, &ev);
        c.writing = false;
    }
    return true;
}

// Reads what is there now; false when the connection is finished.
bool on_readable(connection& c)
{
    char chunk[16384];
    for (;;) {
        const ssize_t n = ::recv(c.fd, chunk, sizeof chunk, 0);
        if (n > 0) {
            c.in.append(chunk, static_cast<std::size_t>(n));
            // A full chunk may mean more is waiting; a short one means the socket is drained,
            // which saves the recv that would only say EAGAIN.
            if (static_cast<std::size_t>(n) == sizeof chunk && c.in.size() <= max_head) continue;
            break;
        }
        if (n == 0) {
            c.peer_done = true;
            break;
        }
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) break;
        return false;
    }
    serve_buffered(c);
    return flush(c);
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

    const int listener = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int on = 1;
    if (listener < 0 || ::setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
        ::bind(listener, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener, SOMAXCONN) != 0) {
        std::fprintf(stderr, "%s: cannot listen on %s:%ld: %s\n", argv[0], address, port, std::strerror(errno));
        return 95;
    }
    epoll_fd = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event lev{};
    lev.events = EPOLLIN;
    lev.data.ptr = nullptr; // the listener; connections carry their connection*
    if (epoll_fd < 0 || ::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &lev) != 0) {
        std::fprintf(stderr, "%s: epoll: %s\n", argv[0], std::strerror(errno));
        return 71; // EX_OSERR
    }

    std::unordered_map<int, std::unique_ptr<connection>> all;
    epoll_event events[256];
    for (;;) {
        const int n = ::epoll_wait(epoll_fd, events, 256, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            std::fprintf(stderr, "%s: epoll_wait: %s\n", argv[0], std::strerror(errno));
            return 71;
        }
        for (int i = 0; i < n; ++i) {
            if (events[i].data.ptr == nullptr) {
                for (;;) {
                    const int fd = ::accept4(listener, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
                    if (fd < 0) {
                        if (errno == EINTR || errno == ECONNABORTED) continue;
                        if (errno != EAGAIN && errno != EWOULDBLOCK) {
                            // Out of descriptors or memory: pause instead of spinning on the error.
                            std::fprintf(stderr, "%s: accept: %s\n", argv[0], std::strerror(errno));
                            ::usleep(100'000);
                        }
                        break;
                    }
                    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
                    auto c = std::make_unique<connection>();
                    c->fd = fd;
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.ptr = c.get();
                    if (::epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
                        ::close(fd);
                        continue;
                    }
                    all.emplace(fd, std::move(c));
                }
                continue;
            }
            auto& c = *static_cast<connection*>(events[i].data.ptr);
            const bool alive = c.writing ? flush(c) : on_readable(c);
            if (!alive) close_connection(all, c);
        }
    }
}
