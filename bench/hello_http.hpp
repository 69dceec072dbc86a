// SPDX-License-Identifier: MPL-2.0
// What the benchmark's plain HTTP backends share: the hello_web reply and the little of a request head they read.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <cstdlib>
#include <ctime>
#include <string>
#include <string_view>

namespace hello_http {

// A request head larger than this is not one this benchmark sends; refuse rather than grow.
inline constexpr std::size_t max_head = 65'536;

inline unsigned long long visitors = 0;

inline std::string http_date()
{
    const std::time_t now = std::time(nullptr);
    std::tm utc{};
    char text[64];
    ::gmtime_r(&now, &utc);
    return {text, std::strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &utc)};
}

// The bytes hello_web sends, built the same way per request (so the work per reply matches);
// only the Connection header follows what the client asked for.
inline void append_response(std::string& out, bool keep_alive)
{
    const std::string body = "Hello from a door! You are visitor " + std::to_string(++visitors) + ".\n";
    out += "HTTP/1.1 200 OK\r\n"
           "Date: " + http_date() + "\r\n"
           "Content-Type: text/plain; charset=utf-8\r\n"
           "Content-Length: " + std::to_string(body.size()) + "\r\n" +
           (keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n") + "\r\n";
    out += body;
}

inline bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
           });
}

inline bool has_token(std::string_view list, std::string_view token)
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

inline request_head parse_head(std::string_view head)
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

} // namespace hello_http
