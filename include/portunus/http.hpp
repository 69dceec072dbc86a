// SPDX-License-Identifier: MPL-2.0
// HTTP helpers for door applications behind an `http` forward: read the request, build a reply.
#pragma once

#include <algorithm>
#include <cctype>
#include <charconv>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portunus::http {

/// A request as portunusd hands it over: request line, headers, a blank line, and a body
/// framed by Content-Length (chunked uploads arrive de-chunked). Views into the call's data:
/// valid while the handler runs.
struct request {
    std::string_view method;
    std::string_view target;  ///< as sent: path and query
    std::string_view version; ///< "HTTP/1.1" or "HTTP/1.0"
    std::vector<std::pair<std::string_view, std::string_view>> headers;
    std::string_view body;

    /// The first header of that name (case-insensitive), or empty.
    [[nodiscard]] std::string_view header(std::string_view name) const
    {
        for (const auto& [n, v] : headers)
            if (std::equal(n.begin(), n.end(), name.begin(), name.end(), [](char a, char b) {
                    return std::tolower(static_cast<unsigned char>(a)) == std::tolower(static_cast<unsigned char>(b));
                }))
                return v;
        return {};
    }
    [[nodiscard]] std::string_view path() const { return target.substr(0, target.find('?')); }
    [[nodiscard]] std::string_view query() const
    {
        const auto q = target.find('?');
        return q == std::string_view::npos ? std::string_view{} : target.substr(q + 1);
    }
};

/// Parses `data` into `out`. False when it is not a request of the form above.
inline bool parse_request(std::string_view data, request& out)
{
    auto next_line = [&data](std::string_view& line) {
        const auto end = data.find("\r\n");
        if (end == std::string_view::npos) return false;
        line = data.substr(0, end);
        data.remove_prefix(end + 2);
        return true;
    };
    std::string_view line;
    if (!next_line(line)) return false;
    const auto sp1 = line.find(' ');
    const auto sp2 = line.rfind(' ');
    if (sp1 == std::string_view::npos || sp2 == sp1) return false;
    out.method = line.substr(0, sp1);
    out.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    out.version = line.substr(sp2 + 1);
    out.headers.clear();
    std::size_t length = 0;
    for (;;) {
        if (!next_line(line)) return false;
        if (line.empty()) break;
        const auto colon = line.find(':');
        if (colon == std::string_view::npos) return false;
        auto value = line.substr(colon + 1);
        while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
        while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
        out.headers.emplace_back(line.substr(0, colon), value);
    }
    if (const auto cl = out.header("Content-Length"); !cl.empty()) {
        const auto [end, ec] = std::from_chars(cl.data(), cl.data() + cl.size(), length);
        if (ec != std::errc{} || end != cl.data() + cl.size()) return false;
    }
    if (data.size() < length) return false;
    out.body = data.substr(0, length);
    return true;
}

/// The reason phrase of common status codes ("Unknown" otherwise).
inline std::string_view reason_phrase(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 416: return "Range Not Satisfiable";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    default: return "Unknown";
    }
}

/// A response to build and serialize. Content-Length is added (except for 204 and 304, which
/// have no body), so the connection can stay open; `head` leaves the body out (for HEAD
/// requests) but keeps its length.
struct response {
    int status = 200;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    response& header(std::string name, std::string value)
    {
        headers.emplace_back(std::move(name), std::move(value));
        return *this;
    }

    [[nodiscard]] std::string serialize(bool head = false) const
    {
        std::string out = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason_phrase(status)) + "\r\n";
        for (const auto& [n, v] : headers) out += n + ": " + v + "\r\n";
        // 204 and 304 have no body, and a Content-Length there would have to describe the
        // body a 200 would have had: leave it out.
        if (status != 204 && status != 304) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
        out += "\r\n";
        if (status == 204 || status == 304) return out;
        if (!head) out += body;
        return out;
    }
};

} // namespace portunus::http
