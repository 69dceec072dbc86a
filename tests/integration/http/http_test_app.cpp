// SPDX-License-Identifier: MPL-2.0
// An HTTP door application for the http integration tests: the request path picks what it does.
//
// usage: http_test_app DOOR_PATH [--tag TEXT] [--log FILE]
//
// The first path segment that names a behaviour selects it; the segment after it is its
// argument, so "/api/sleep/300" behind a map with prefix "/api" sleeps too:
//   /echo       200 whose body is the request exactly as the application received it
//   /status/N   status N, body "status N\n" (no body for 1xx, 204 and 304)
//   /big/N      200 with an N-byte body: 16-byte lines "%015d\n" of their offset, cut at N
//   /sleep/N    sleep N milliseconds, then 200
//   /close      200 with Connection: close, whatever the request asked for
//   /bad        no status line at all
//   /empty      zero bytes
//   /unframed   200 without Content-Length: only the end of the connection ends the body
//   /mismatch   Content-Length 100 with a 10-byte body
//   /crash      std::abort() in the middle of the call
//   /raw        the request body, verbatim, as the whole response (tests craft any reply)
//   /sum        200, body "length=N sum=S\n": the request body's length and the sum of its bytes
//   anything    200, body "tag=TAG path=TARGET\n"
// Every response also says which instance served it (X-App: TAG) and, unless the behaviour
// decides otherwise, mirrors the Connection field the daemon sent. The body is sent for HEAD
// too, so that the tests can see the daemon strip it. --log appends "call METHOD TARGET" per
// call as it starts, so a test can tell whether a request reached the application at all.
#include <portunus/server.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <thread>

namespace {

std::string tag = "http_test_app";
int log_fd = -1;

struct request_line {
    std::string_view method;
    std::string_view target;
};

request_line first_line(std::string_view data)
{
    const auto end = data.find("\r\n");
    const std::string_view line = data.substr(0, end);
    const auto sp1 = line.find(' ');
    const auto sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return {};
    return {line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1)};
}

// The daemon always sends exactly one Connection field, so a plain search of the header
// section is enough here.
std::string_view connection_of(std::string_view data)
{
    const std::string_view head = data.substr(0, data.find("\r\n\r\n"));
    if (head.find("\r\nConnection: close") != std::string_view::npos) return "close";
    return "keep-alive";
}

void note_call(const request_line& r)
{
    if (log_fd < 0) return;
    // One write() per line on an O_APPEND descriptor: concurrent calls never interleave.
    const std::string line = "call " + std::string(r.method) + " " + std::string(r.target) + "\n";
    [[maybe_unused]] const auto n = ::write(log_fd, line.data(), line.size());
}

unsigned number(std::string_view s)
{
    unsigned n = 0;
    std::from_chars(s.data(), s.data() + s.size(), n);
    return n;
}

std::string reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 304: return "Not Modified";
    case 404: return "Not Found";
    case 500: return "Internal Server Error";
    default: return "Status";
    }
}

std::string response(int status, std::string_view body, std::string_view connection, bool framed = true)
{
    std::string out = "HTTP/1.1 " + std::to_string(status) + " " + reason(status) + "\r\n";
    out += "X-App: " + tag + "\r\n";
    out += "Content-Type: text/plain\r\n";
    if (framed) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    if (!connection.empty()) out += "Connection: " + std::string(connection) + "\r\n";
    out += "\r\n";
    out += body;
    return out;
}

// Deterministic and never periodic, so a test can recompute it and a lost, repeated or
// reordered block shows up in the digest.
std::string big_body(std::size_t n)
{
    std::string body;
    body.reserve(n + 16);
    char line[32];
    for (std::size_t offset = 0; body.size() < n; offset += 16) {
        std::snprintf(line, sizeof line, "%015zu\n", offset);
        body += line;
    }
    body.resize(n);
    return body;
}

portunus::door_reply handle(portunus::door_request& call)
{
    const std::string_view data = call.data;
    const request_line r = first_line(data);
    note_call(r);
    const std::string_view connection = connection_of(data);
    const std::string_view path = r.target.substr(0, r.target.find('?'));

    // The behaviour is the first segment that names one; its argument is the next segment.
    std::string_view behaviour;
    std::string_view argument;
    for (std::size_t start = 1; start <= path.size();) {
        const auto end = std::min(path.find('/', start), path.size());
        const std::string_view segment = path.substr(start, end - start);
        if (segment == "echo" || segment == "status" || segment == "big" || segment == "sleep" ||
            segment == "close" || segment == "bad" || segment == "empty" || segment == "unframed" ||
            segment == "mismatch" || segment == "crash" || segment == "raw" || segment == "sum") {
            behaviour = segment;
            if (end < path.size()) {
                const auto next = std::min(path.find('/', end + 1), path.size());
                argument = path.substr(end + 1, next - end - 1);
            }
            break;
        }
        start = end + 1;
    }

    if (behaviour == "echo") return {response(200, data, connection), {}};
    if (behaviour == "status") {
        const int status = static_cast<int>(number(argument));
        const bool no_body = status < 200 || status == 204 || status == 304;
        return {response(status, no_body ? "" : "status " + std::to_string(status) + "\n", connection, !no_body),
                {}};
    }
    if (behaviour == "big") return {response(200, big_body(number(argument)), connection), {}};
    if (behaviour == "sleep") {
        std::this_thread::sleep_for(std::chrono::milliseconds(number(argument)));
        return {response(200, "slept\n", connection), {}};
    }
    if (behaviour == "close") return {response(200, "closing\n", "close"), {}};
    if (behaviour == "bad") return {"this is not an HTTP response\r\n\r\n", {}};
    if (behaviour == "empty") return {};
    if (behaviour == "unframed") return {response(200, "unframed body\n", "", false), {}};
    if (behaviour == "mismatch") {
        return {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: " + std::string(connection) +
                    "\r\n\r\nten bytes\n",
                {}};
    }
    if (behaviour == "crash") std::abort();
    if (behaviour == "sum") {
        const auto end = data.find("\r\n\r\n");
        const std::string_view body = end == std::string_view::npos ? std::string_view{} : data.substr(end + 4);
        std::uint64_t sum = 0;
        for (const char c : body) sum += static_cast<unsigned char>(c);
        return {response(200, "length=" + std::to_string(body.size()) + " sum=" + std::to_string(sum) + "\n",
                         connection),
                {}};
    }
    if (behaviour == "raw") {
        const auto end = data.find("\r\n\r\n");
        return {std::string(end == std::string_view::npos ? std::string_view{} : data.substr(end + 4)), {}};
    }
    return {response(200, "tag=" + tag + " path=" + std::string(r.target) + "\n", connection), {}};
}

int usage(const char* program)
{
    std::fprintf(stderr, "usage: %s DOOR_PATH [--tag TEXT] [--log FILE]\n", program);
    return 64; // EX_USAGE
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) return usage(argv[0]);
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) return usage(argv[0]);
        const std::string_view key = argv[i];
        if (key == "--tag") {
            tag = argv[i + 1];
        } else if (key == "--log") {
            log_fd = ::open(argv[i + 1], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (log_fd < 0) {
                std::perror(argv[i + 1]);
                return 66; // EX_NOINPUT
            }
        } else {
            return usage(argv[0]);
        }
    }
    return portunus::serve(argv[1], handle);
}
