// SPDX-License-Identifier: MPL-2.0
// http_backend: the hello_web reply from a single-threaded epoll HTTP/1.1 server that serves many
// kept-alive connections at once, the upstream of the keep-alive benchmark (http_compare.py).
//
// hello_backend serves one connection at a time, which is right for one request per connection
// but starves every other client once connections stay open: with 64 kept-alive connections one
// is served and 63 wait in the accept backlog until it closes. This server keeps the one thread
// (what a proxy in front of a simple application server adds is still what the comparison shows)
// but multiplexes its connections, so each of them is served in turn.
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

// A request head larger than this is not one this benchmark sends; refuse rather than grow.
constexpr std::size_t max_head = 65'536;

unsigned long long visitors = 0;

std::string http_date()
{
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    char text[64];
    ::gmtime_r(&now, &utc);
    return {text, std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc)};
}

// The bytes hello_web sends, built the same way per request (so the work per reply matches);
// only the Connection header follows what the client asked for.
void append_response(std::string& out, bool keep_alive)
{
    const std::string body = "Hello from a door! You are visitor " + std::to_string(++visitors) + ".\n";
    out += "HTTP/1.1 200 OK\r\n"
           "Date: " + http_date() + "\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Length: " + std::to_string(body.size()) + "\r\n" +
           (keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n") + "\r\n";
    out += body;
}

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

bool has_token(std::string_view list, std::string_view token)
{
    while (!list.empty()) {
        const auto comma = list.find(',');
        std::string_view item = list.substr(0, comma);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t' || item.back() == '\r')) item.remove_suffix(1);
        if (iequals(item, token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

struct request_head {
    bool keep_alive = false;
    bool framed = true;         ///< false: a body we cannot delimit (chunked), so close after replying
    std::size_t body_bytes = 0; ///< Content-Length, to skip before the next request
};

request_head parse_head(std::string_view head)
{
    request_head r;
    const auto line_end = head.find('\n');
    const std::string_view request_line = head.substr(0, line_end);
    // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 closes unless asked not to.
    const bool http11 = request_line.find("HTTP/1.1") != std::string_view::npos;
    bool asked_close = false, asked_keep = false;
    std::size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 1;
    while (pos < head.size()) {
        auto end = head.find('\n', pos);
        if (end == std::string_view::npos) end = head.size();
        const std::string_view line = head.substr(pos, end - pos);
        pos = end + 1;
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) continue;
        const std::string_view name = line.substr(0, colon);
        const std::string_view value = line.substr(colon + 1);
        if (iequals(name, "Connection")) {
            asked_close = asked_close || has_token(value, "close");
            asked_keep = asked_keep || has_token(value, "keep-alive");
        } else if (iequals(name, "Content-Length")) {
            r.body_bytes = std::strtoull(std::string(value).c_str(), nullptr, 10);
        } else if (iequals(name, "Transfer-Encoding")) {
            r.framed = false;
        }
    }
    r.keep_alive = r.framed && !asked_close && (http11 || asked_keep);
    return r;
}

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
