// SPDX-License-Identifier: MPL-2.0
// hello_inetd: the hello_web reply as an inetd service, one process per connection on stdin/stdout.
//
// The point of this program is to cost what an inetd service costs and nothing more, so it uses
// only libc (no iostreams, no allocation) and the build links it with --as-needed: every
// connection pays for exec and the dynamic loader, and should not also pay for libstdc++.
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>

namespace {

constexpr int in_fd = 0;
constexpr int out_fd = 1;

// Reads until the blank line that ends the request head, EOF, or a full buffer. Whatever the
// outcome, the client gets the reply: hello_web answers any request too.
void read_request_head()
{
    char buffer[8192];
    std::size_t used = 0;
    while (used < sizeof buffer) {
        const ssize_t n = ::read(in_fd, buffer + used, sizeof buffer - used);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        // Search from a little before the new bytes: the blank line may straddle two reads.
        const std::size_t from = used >= 3 ? used - 3 : 0;
        used += static_cast<std::size_t>(n);
        for (std::size_t i = from; i + 1 < used; ++i) {
            if (buffer[i] == '\n' && buffer[i + 1] == '\n') return;
            if (i + 3 < used && std::memcmp(buffer + i, "\r\n\r\n", 4) == 0) return;
        }
    }
}

bool write_all(const char* data, std::size_t size)
{
    while (size > 0) {
        const ssize_t n = ::write(out_fd, data, size);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        data += n;
        size -= static_cast<std::size_t>(n);
    }
    return true;
}

} // namespace

int main()
{
    // A client that connects and never sends must not leave a process behind forever.
    ::alarm(10);
    read_request_head();

    // The same head and body as hello_web. Each process is its own first visitor: counting
    // across processes would need shared state that an inetd service does not have.
    char body[128];
    const int body_size = std::snprintf(body, sizeof body, "Hello from a door! You are visitor %d.\n", 1);

    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    ::gmtime_r(&now, &utc);
    char date[64];
    if (std::strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &utc) == 0) date[0] = '\0';

    char response[512];
    const int size = std::snprintf(response, sizeof response,
                                   "HTTP/1.1 200 OK\r\n"
                                   "Date: %s\r\n"
                                   "Content-Type: text/plain; charset=utf-8\r\n"
                                   "Content-Length: %d\r\n"
                                   "Connection: close\r\n"
                                   "\r\n"
                                   "%s",
                                   date, body_size, body);
    if (size <= 0 || static_cast<std::size_t>(size) >= sizeof response) return 1;
    return write_all(response, static_cast<std::size_t>(size)) ? 0 : 1;
}
