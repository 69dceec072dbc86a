// SPDX-License-Identifier: MPL-2.0
// hello_backend: the hello_web reply from a single-threaded blocking HTTP/1.1 server, the plain
// upstream a reverse proxy would sit in front of.
//
// One connection at a time, on purpose: it is the simplest server that answers the same bytes
// as hello_web, so what a proxy in front of it adds is what the comparison shows.
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

// A request head larger than this is not one this benchmark sends; refuse rather than grow.
constexpr std::size_t max_head = 65'536;

// With one thread, a client that stalls would stall everyone; this bounds how long.
constexpr timeval io_timeout{5, 0};

unsigned long long visitors = 0;

std::string http_date()
{
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    char text[64];
    ::gmtime_r(&now, &utc);
    return {text, std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc)};
}

// The bytes hello_web sends; only the Connection header follows what the client asked for.
std::string response(bool keep_alive)
{
    const std::string body = "Hello from a door! You are visitor " + std::to_string(++visitors) + ".\n";
    std::string r = "HTTP/1.1 200 OK\r\n"
                    "Date: " + http_date() + "\r\n"
                    "Content-Type: text/plain; charset=utf-8\r\n"
                    "Content-Length: " + std::to_string(body.size()) + "\r\n" +
                    (keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n") + "\r\n";
    r += body;
    return r;
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
        if (!write_all(fd, response(head.keep_alive)) || !head.keep_alive) return;
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
