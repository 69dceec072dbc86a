// SPDX-License-Identifier: MPL-2.0
// file_opener over a pass forward: HTTP/1.1 on the client's own connection, bodies by sendfile(2).
#include "file_opener.hpp"

#include <portunus/http.hpp>

#include <netinet/in.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <optional>
#include <string>

namespace file_opener {
namespace {

// A client that says nothing this long between requests, or stops taking a response, is let go.
constexpr timeval idle_limit{30, 0};
constexpr std::size_t max_head = 16 * 1024;
constexpr unsigned max_requests = 10'000;
constexpr off_t small_body = 16 * 1024;

bool send_all(int fd, std::string_view bytes, bool more)
{
    while (!bytes.empty()) {
        const ssize_t n = ::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool send_file(int socket, int file, off_t offset, off_t length)
{
    while (length > 0) {
        const ssize_t n = ::sendfile(socket, file, &offset, static_cast<std::size_t>(length));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false; // an error, or the file shrank under us
        length -= n;
    }
    return true;
}

struct byte_range {
    off_t first = 0;
    off_t last = 0;
};

enum class range_kind { whole, part, unsatisfiable };

// One "bytes=" range (RFC 9110 §14.1.2). Several ranges, or a malformed one, are ignored and the
// whole file is sent, which the RFC allows.
range_kind parse_range(std::string_view value, off_t size, byte_range& out)
{
    constexpr std::string_view unit = "bytes=";
    if (value.substr(0, unit.size()) != unit) return range_kind::whole;
    value.remove_prefix(unit.size());
    const auto dash = value.find('-');
    if (dash == std::string_view::npos || value.find(',') != std::string_view::npos) return range_kind::whole;
    auto number = [](std::string_view s, off_t& n) {
        if (s.empty()) return false;
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
        return ec == std::errc{} && end == s.data() + s.size() && n >= 0;
    };
    const auto a = value.substr(0, dash), b = value.substr(dash + 1);
    off_t first = 0, last = 0;
    if (a.empty()) { // the last N bytes
        if (!number(b, last)) return range_kind::whole;
        if (last == 0 || size == 0) return range_kind::unsatisfiable;
        out = {size > last ? size - last : 0, size - 1};
        return range_kind::part;
    }
    if (!number(a, first)) return range_kind::whole;
    if (b.empty())
        last = size - 1;
    else if (!number(b, last) || last < first)
        return range_kind::whole;
    if (first >= size) return range_kind::unsatisfiable;
    out = {first, std::min(last, size - 1)};
    return range_kind::part;
}

std::string head_of(int status, std::string_view extra_headers, off_t length, bool keep_alive)
{
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + std::string(portunus::http::reason_phrase(status)) +
                    "\r\n";
    h += extra_headers;
    if (status != 304) h += "Content-Length: " + std::to_string(length) + "\r\n";
    if (!keep_alive) h += "Connection: close\r\n";
    h += "\r\n";
    return h;
}

bool send_status(int socket, int status, bool head, bool keep_alive, std::string_view extra = {})
{
    const std::string body = std::to_string(status) + " " + std::string(portunus::http::reason_phrase(status)) + "\n";
    std::string out = head_of(status, std::string("Content-Type: text/plain; charset=utf-8\r\n") + std::string(extra),
                              static_cast<off_t>(body.size()), keep_alive);
    if (!head) out += body;
    return send_all(socket, out, false);
}

bool has_dot_dot(const std::string& path)
{
    std::size_t start = 0;
    for (;;) {
        const auto end = path.find('/', start);
        if (path.compare(start, end == std::string::npos ? std::string::npos : end - start, "..") == 0) return true;
        if (end == std::string::npos) return false;
        start = end + 1;
    }
}

// Answers one request; false when the connection must close.
bool respond(int socket, const portunus::http::request& req, bool keep_alive)
{
    const bool head = req.method == "HEAD";
    if (req.method != "GET" && !head) return send_status(socket, 405, false, keep_alive, "Allow: GET, HEAD\r\n") && keep_alive;
    const auto path = req.path();
    if (path.empty() || path.front() != '/') return send_status(socket, 400, head, false), false;
    // Nothing normalizes the path on its way here, as an http forward would: a ".." segment,
    // spelled out or escaped, is refused outright rather than left to the lookup.
    std::string decoded;
    if (!decode(path, decoded)) return send_status(socket, 400, head, keep_alive) && keep_alive;
    if (has_dot_dot(decoded)) return send_status(socket, 403, head, keep_alive) && keep_alive;

    lookup found = find_file(path);
    if (found.status == 301)
        return send_status(socket, 301, head, keep_alive, "Location: " + found.location + "\r\n") && keep_alive;
    if (found.status == 404 && (found.error == EACCES || found.error == EPERM)) found.status = 403;
    if (found.status != 200) return send_status(socket, found.status, head, keep_alive) && keep_alive;

    const off_t size = found.st.st_size;
    const std::string modified = http_date(found.st.st_mtime);
    std::string headers = "Last-Modified: " + modified + "\r\nContent-Type: " +
                          std::string(content_type(found.name)) + "\r\nAccept-Ranges: bytes\r\n";
    if (not_modified(req.header("If-Modified-Since"), found.st))
        return send_all(socket, head_of(304, headers, 0, keep_alive), false) && keep_alive;

    byte_range range{0, size - 1};
    range_kind kind = range_kind::whole;
    const auto if_range = req.header("If-Range");
    if (const auto r = req.header("Range"); !r.empty() && (if_range.empty() || if_range == modified))
        kind = parse_range(r, size, range);
    if (kind == range_kind::unsatisfiable)
        return send_status(socket, 416, head, keep_alive, "Content-Range: bytes */" + std::to_string(size) + "\r\n") &&
               keep_alive;
    int status = 200;
    if (kind == range_kind::part) {
        status = 206;
        headers += "Content-Range: bytes " + std::to_string(range.first) + "-" + std::to_string(range.last) + "/" +
                   std::to_string(size) + "\r\n";
    }
    const off_t length = kind == range_kind::part ? range.last - range.first + 1 : size;
    const bool body = !head && length > 0;
    const off_t offset = kind == range_kind::part ? range.first : 0;
    std::string out = head_of(status, headers, length, keep_alive);
    if (body && length <= small_body) {
        // A small body goes out with its head in one send: cheaper than corking the head and
        // a sendfile for a few bytes.
        const std::size_t at = out.size();
        out.resize(at + static_cast<std::size_t>(length));
        if (::pread(found.fd.get(), out.data() + at, static_cast<std::size_t>(length), offset) != length) return false;
        return send_all(socket, out, false) && keep_alive;
    }
    if (!send_all(socket, out, body)) return false;
    if (body && !send_file(socket, found.fd.get(), offset, length)) return false;
    return keep_alive;
}

bool wants_keep_alive(const portunus::http::request& req)
{
    const auto connection = req.header("Connection");
    auto has = [&connection](std::string_view token) {
        return connection.find(token) != std::string_view::npos; // good enough for an example
    };
    if (req.version == "HTTP/1.1") return !has("close");
    return req.version == "HTTP/1.0" && (has("keep-alive") || has("Keep-Alive"));
}

} // namespace

void serve_connection(portunus::unique_fd socket, const portunus::pass_header& header)
{
    const int fd = socket.get();
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &idle_limit, sizeof idle_limit);
    ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &idle_limit, sizeof idle_limit);
    std::string in = header.early;
    for (unsigned served = 0; served < max_requests; ++served) {
        std::size_t end;
        while ((end = in.find("\r\n\r\n")) == std::string::npos) {
            if (in.size() > max_head) return static_cast<void>(send_status(fd, 431, false, false));
            char buf[8192];
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return; // closed, idle too long, or failed
            in.append(buf, static_cast<std::size_t>(n));
        }
        portunus::http::request req;
        const std::string_view head(in.data(), end + 4);
        // A request with a body has nothing to do with files: parse_request() refuses one whose
        // body has not arrived, and chunked uploads are not read; both end the connection.
        if (!portunus::http::parse_request(head, req) || !req.header("Transfer-Encoding").empty() ||
            (req.version != "HTTP/1.1" && req.version != "HTTP/1.0"))
            return static_cast<void>(send_status(fd, 400, false, false));
        const bool keep = wants_keep_alive(req) && served + 1 < max_requests;
        if (!respond(fd, req, keep)) return;
        in.erase(0, end + 4);
    }
}

} // namespace file_opener
