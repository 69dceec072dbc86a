// SPDX-License-Identifier: MPL-2.0
// file_opener's parts: finding a file under the root (both modes) and serving a passed connection.
#pragma once

#include <portunus/pass.hpp>
#include <portunus/unique_fd.hpp>

#include <sys/stat.h>

#include <ctime>
#include <string>
#include <string_view>

namespace file_opener {

extern int root_fd;              ///< the root directory, opened once
extern std::string strip_prefix; ///< the route's prefix, so "/static/a.css" maps to ROOT/a.css
extern const int open_flags;

std::string http_date(std::time_t t);
std::time_t parse_http_date(std::string_view s);
/// True when an If-Modified-Since value says the client's copy of `st` is current.
bool not_modified(std::string_view if_modified_since, const struct stat& st);
std::string_view content_type(std::string_view name);
/// Percent-decodes a path; false on a malformed escape or NUL.
bool decode(std::string_view in, std::string& out);
/// Opens `path` below the root one component at a time with O_NOFOLLOW; -1 with errno set
/// (EPERM for a ".." component).
int open_beneath(const std::string& path);

/// What a request path names: status 200 with the open file (blocking) and its stat; 301 with
/// `location` for a directory named without its slash; 400 for a bad escape; 404 with the
/// reason in `error` when there is nothing to serve; 500.
struct lookup {
    int status = 404;
    portunus::unique_fd fd;
    struct stat st {};
    std::string name; ///< the decoded path below the root
    std::string location;
    int error = 0;
};
lookup find_file(std::string_view target_path);

/// Serves HTTP/1.1 on a connection a pass forward handed over, files sent with sendfile(2).
void serve_connection(portunus::unique_fd socket, const portunus::pass_header& header);

} // namespace file_opener
