// SPDX-License-Identifier: MPL-2.0
// file_opener: serves static files under one directory, relayed by an http forward or over
// the client connection itself behind a pass forward.
#include "app_arguments.hpp"
#include "file_opener.hpp"

#include <portunus/http.hpp>
#include <portunus/server.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <string>

namespace file_opener {

int root_fd = -1;
std::string strip_prefix;


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

bool not_modified(std::string_view if_modified_since, const struct stat& st)
{
    if (if_modified_since.empty()) return false;
    const std::time_t since = parse_http_date(if_modified_since);
    return since >= 0 && st.st_mtime <= since;
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

// O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, holding this
// thread for good, and a device may wait for its medium. Only regular files are read, and for
// them the flag changes nothing; serve_file() clears it before reading all the same.
const int open_flags = O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;

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
            errno = EPERM;
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

lookup find_file(std::string_view target_path)
{
    lookup r;
    auto raw = target_path;
    if (raw.substr(0, strip_prefix.size()) == strip_prefix) raw.remove_prefix(strip_prefix.size());
    if (!decode(raw, r.name)) {
        r.status = 400;
        return r;
    }
    r.fd.reset(open_beneath(r.name));
    if (!r.fd) {
        r.error = errno;
        r.status = 404;
        return r;
    }
    if (::fstat(r.fd.get(), &r.st) != 0) {
        r.status = 500;
        return r;
    }
    if (S_ISDIR(r.st.st_mode)) {
        if (!r.name.empty() && r.name.back() != '/' && !raw.empty()) {
            r.status = 301;
            r.location = std::string(target_path) + "/";
            return r;
        }
        r.fd.reset(::openat(r.fd.get(), "index.html", open_flags));
        r.name += "/index.html";
        if (!r.fd || ::fstat(r.fd.get(), &r.st) != 0) {
            r.error = errno;
            r.status = 404;
            return r;
        }
    }
    // A FIFO, socket or device is no file to serve: 404, as if it were not there.
    if (!S_ISREG(r.st.st_mode)) {
        r.status = 404;
        return r;
    }
    if (const int flags = ::fcntl(r.fd.get(), F_GETFL); flags < 0 || ::fcntl(r.fd.get(), F_SETFL, flags & ~O_NONBLOCK) < 0) {
        r.status = 500;
        return r;
    }
    r.status = 200;
    return r;
}

} // namespace file_opener

namespace {

using namespace file_opener;

// A relayed reply is one door call's bytes; larger files are for pass forwards.
constexpr off_t max_file = 64 << 20;

portunus::http::response status(int code)
{
    portunus::http::response r;
    r.status = code;
    r.header("Content-Type", "text/plain; charset=utf-8");
    r.body = std::to_string(code) + " " + std::string(portunus::http::reason_phrase(code)) + "\n";
    return r;
}

portunus::http::response serve_file(const portunus::http::request& req)
{
    if (req.method != "GET" && req.method != "HEAD") {
        auto r = status(405);
        r.header("Allow", "GET, HEAD");
        return r;
    }
    lookup found = find_file(req.path());
    if (found.status == 301) {
        auto r = status(301);
        r.header("Location", found.location);
        return r;
    }
    if (found.status != 200) return status(found.status);
    if (found.st.st_size > max_file) return status(413);

    portunus::http::response r;
    r.header("Last-Modified", http_date(found.st.st_mtime));
    r.header("Content-Type", std::string(content_type(found.name)));
    if (not_modified(req.header("If-Modified-Since"), found.st)) {
        r.status = 304;
        return r;
    }
    r.body.resize(static_cast<std::size_t>(found.st.st_size));
    std::size_t done = 0;
    while (done < r.body.size()) {
        const ssize_t n = ::pread(found.fd.get(), r.body.data() + done, r.body.size() - done, static_cast<off_t>(done));
        if (n <= 0) break;
        done += static_cast<std::size_t>(n);
    }
    if (done != r.body.size()) return status(500);
    return r;
}

} // namespace

int main(int argc, char** argv)
{
    constexpr const char* synopsis =
        "DOOR_PATH ROOT_DIRECTORY [STRIP_PREFIX]\n"
        "Serves the regular files under ROOT_DIRECTORY, index.html for a directory, to an http\n"
        "forward (relayed requests) and to a pass forward (the connection itself, with sendfile).\n"
        "Symbolic links, \"..\", FIFOs, sockets and devices are 404 (\"..\" is 403 over pass).";
    if (const auto status = portunus_apps::check_arguments(argc, argv, 2, 3, synopsis)) return *status;
    root_fd = ::open(argv[2], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0) {
        std::perror(argv[2]);
        return 66; // EX_NOINPUT
    }
    if (argc > 3) strip_prefix = argv[3];
    // One door for both kinds of forward: a call carrying a socket and a pass header is a
    // connection to serve; any other is a relayed request.
    return portunus::serve_connections(argv[1], file_opener::serve_connection, [](portunus::door_request& call) {
        portunus::http::request req;
        if (!portunus::http::parse_request(call.data, req)) return portunus::door_reply{status(400).serialize(), {}};
        const auto r = serve_file(req);
        return portunus::door_reply{r.serialize(req.method == "HEAD"), {}};
    });
}
