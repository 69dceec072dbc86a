// SPDX-License-Identifier: MPL-2.0
// go_away: answers every request with a permanent redirect to one fixed URL.
#include "app_arguments.hpp"

#include <portunus/server.hpp>

#include <time.h>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>

namespace {

std::string http_date()
{
    // gmtime_r, not std::gmtime: the latter returns a buffer shared by all threads.
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    char text[64];
    ::gmtime_r(&now, &utc);
    return {text, std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc)};
}

std::string redirect_to(const std::string& location)
{
    const std::string body = "Moved permanently to " + location + "\n";
    return "HTTP/1.1 301 Moved Permanently\r\n"
           "Date: " + http_date() + "\r\n"
           "Location: " + location + "\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Length: " + std::to_string(body.size()) + "\r\n"
           "Connection: close\r\n"
           "\r\n" + body;
}

} // namespace

int main(int argc, char** argv)
{
    if (const auto status = portunus_apps::check_arguments(argc, argv, 1, 2, "DOOR_PATH [LOCATION]")) return *status;
    const std::string path = argv[1];
    const std::string location = argc > 2 ? argv[2] : "https://example.org/";
    // A control character (CR, LF above all) in the target would let it inject headers.
    if (location.empty() || std::any_of(location.begin(), location.end(),
                                        [](unsigned char c) { return c < 0x21 || c == 0x7f; })) {
        std::fprintf(stderr, "%s: LOCATION must be a non-empty URL without spaces or controls\n",
                     argv[0]);
        return 64;
    }
    return portunus::serve(path, [location](portunus::door_request&) {
        return portunus::door_reply{redirect_to(location), {}};
    });
}
