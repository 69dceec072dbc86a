// SPDX-License-Identifier: MPL-2.0
// file_opener: serves static files under one directory over an http forward.
#include "app_arguments.hpp"

#include <portunus/http.hpp>
#include <portunus/server.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>

namespace {

int root_fd = -1;
std::string strip_prefix; // the route's prefix, so "/static/a.css" maps to ROOT/a.css

constexpr off_t max_file = 64 << 20;

std::string http_date(std::time_t t)
{
    std::tm utc{};
    char text[64];
    ::gmtime_r(&t, &utc);
    return {text, std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc)};
}

std::time_t parse_http_date(std::string_view s)
{
    std::tm tm{};
    const std::string copy(s);
    const char* end = ::strptime(copy.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (end == nullptr || *end != '\0') return -1;
    return ::timegm(&tm);
}

std::string_view content_type(std::string_view name)
{
    const auto dot = name.rfind('.');
    const auto ext = dot == std::string_view::npos ? std::string_view{} : name.substr(dot + 1);
    if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
    if (ext == "txt") return "text/plain; charset=utf-8";
    if (ext == "css") return "text/css; charset=utf-8";
    if (ext == "js") return "text/javascript; charset=utf-8";
    if (ext == "json") return "application/json";
    if (ext == "png") return "image/png";
    if (ext == "jpg" || ext == "jpeg") return "image/jpeg";
    if (ext == "svg") return "image/svg+xml";
    return "application/octet-stream";
}

// Percent-decodes a path. Fails on malformed escapes and on NUL, which would cut the name
// short at the system call.
bool decode(std::string_view in, std::string& out)
{
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
                !std::isxdigit(static_cast<unsigned char>(in[i + 2])))
                return false;
            c = static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
            i += 2;
        }
        if (c == '\0') return false;
        out += c;
    }
    return true;
}

portunus::http::response status(int code)
{
    portunus::http::response r;
    r.status = code;
    r.header("Content-Type", "text/plain; charset=utf-8");
    r.body = std::to_string(code) + " " + std::string(portunus::http::reason_phrase(code)) + "\n";
    return r;
}

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, holding this
// thread for good, and a device may wait for its medium. Only regular files are read, and for
// them the flag changes nothing; serve_file() clears it before reading all the same.
constexpr int open_flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

// Opens `path` below the root one component at a time with O_NOFOLLOW, so neither ".." nor a
// symbolic link anywhere on the way can lead outside the root.
int open_beneath(const std::string& path)
{
    int dir = ::dup(root_fd);
    std::size_t start = 0;
    while (dir >= 0) {
        while (start < path.size() && path[start] == '/') ++start;
        const auto end = path.find('/', start);
        const std::string part = path.substr(start, end == std::string::npos ? std::string::npos : end - start);
        if (part.empty()) return dir; // the path ended in a directory
        if (part == "..") {
            ::close(dir);
            return -1;
        }
        const int next = part == "." ? ::dup(dir) : ::openat(dir, part.c_str(), open_flags);
        ::close(dir);
        if (end == std::string::npos) return next;
        dir = next;
        start = end + 1;
    }
    return -1;
}

portunus::http::response serve_file(const portunus::http::request& req)
{
    if (req.method != "GET" && req.method != "HEAD") {
        auto r = status(405);
        r.header("Allow", "GET, HEAD");
        return r;
    }
    std::string path;
    auto raw = req.path();
    if (raw.substr(0, strip_prefix.size()) == strip_prefix) raw.remove_prefix(strip_prefix.size());
    if (!decode(raw, path)) return status(400);
    int fd = open_beneath(path);
    if (fd < 0) return status(404);
    struct stat st {};
    if (::fstat(fd, &st) != 0) return ::close(fd), status(500);
    if (S_ISDIR(st.st_mode)) {
        if (!path.empty() && path.back() != '/' && !raw.empty()) {
            ::close(fd);
            auto r = status(301);
            r.header("Location", std::string(req.path()) + "/");
            return r;
        }
        const int index = ::openat(fd, "index.html", open_flags);
        ::close(fd);
        fd = index;
        path += "/index.html";
        if (fd < 0 || ::fstat(fd, &st) != 0) return fd >= 0 ? (::close(fd), status(404)) : status(404);
    }
    // A FIFO, socket or device is no file to serve: 404, as if it were not there.
    if (!S_ISREG(st.st_mode)) return ::close(fd), status(404);
    if (st.st_size > max_file) return ::close(fd), status(413);
    if (const int flags = ::fcntl(fd, F_GETFL); flags < 0 || ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0)
        return ::close(fd), status(500);

    portunus::http::response r;
    r.header("Last-Modified", http_date(st.st_mtime));
    r.header("Content-Type", std::string(content_type(path)));
    if (const auto ims = req.header("If-Modified-Since"); !ims.empty()) {
        const std::time_t since = parse_http_date(ims);
        if (since >= 0 && st.st_mtime <= since) {
            ::close(fd);
            r.status = 304;
            return r;
        }
    }
    r.body.resize(static_cast<std::size_t>(st.st_size));
    std::size_t done = 0;
    while (done < r.body.size()) {
        const ssize_t n = ::pread(fd, r.body.data() + done, r.body.size() - done, static_cast<off_t>(done));
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    ::close(fd);
    if (done != r.body.size()) return status(500);
    return r;
}

} // namespace

int main(int argc, char** argv)
{
    constexpr const char* synopsis =
        "DOOR_PATH ROOT_DIRECTORY [STRIP_PREFIX]\n"
        "Serves the regular files under ROOT_DIRECTORY, index.html for a directory.\n"
        "Symbolic links, \"..\", FIFOs, sockets and devices are 404.";
    if (const auto status = portunus_apps::check_arguments(argc, argv, 2, 3, synopsis)) return *status;
    root_fd = ::open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        std::perror(argv[2]);
        return 66; // EX_NOINPUT
    }
    if (argc > 3) strip_prefix = argv[3];
    return portunus::serve(argv[1], [](portunus::door_request& call) {
        portunus::http::request req;
        if (!portunus::http::parse_request(call.data, req)) return portunus::door_reply{status(400).serialize(), {}};
        const auto r = serve_file(req);
        return portunus::door_reply{r.serialize(req.method == "HEAD"), {}};
    });
}
