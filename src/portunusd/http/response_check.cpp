// SPDX-License-Identifier: MPL-2.0
// Validation of application responses: status line, header section, framing.
#include "portunusd/http/response_check.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace portunusd::http {
namespace {

bool iequals(std::string_view a, std::string_view b)
{
    return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
    });
}

std::string_view trim(std::string_view v)
{
    while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
    while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
    return v;
}

bool has_token(std::string_view list, std::string_view token)
{
    while (!list.empty()) {
        const auto comma = list.find(',');
        if (iequals(trim(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

response_facts invalid(std::string why)
{
    response_facts f;
    f.problem = std::move(why);
    return f;
}

} // namespace

response_facts check_response(std::string_view response, std::string_view method)
{
    if (response.empty()) return invalid("empty reply");
    const auto end = response.find("\r\n\r\n");
    if (end == std::string_view::npos) return invalid("no end of header section");
    const std::string_view head = response.substr(0, end + 2);
    const auto first_eol = head.find("\r\n");
    const std::string_view line = head.substr(0, first_eol);
    // HTTP/1.x SP 3DIGIT [SP reason]
    if (line.size() < 12 || line.substr(0, 7) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
        !std::isdigit(static_cast<unsigned char>(line[9])) || !std::isdigit(static_cast<unsigned char>(line[10])) ||
        !std::isdigit(static_cast<unsigned char>(line[11])) || (line.size() > 12 && line[12] != ' '))
        return invalid("bad status line");
    response_facts f;
    f.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    if (f.status < 100) return invalid("bad status code");
    f.header_bytes = end + 4;

    bool chunked = false;
    bool have_length = false;
    std::size_t length = 0;
    std::string_view fields = head.substr(first_eol + 2);
    while (!fields.empty()) {
        const auto eol = fields.find("\r\n");
        const auto field = fields.substr(0, eol);
        fields.remove_prefix(eol + 2);
        const auto colon = field.find(':');
        if (colon == std::string_view::npos || colon == 0) return invalid("malformed header field");
        const auto name = field.substr(0, colon);
        if (name.find_first_of(" \t") != std::string_view::npos) return invalid("malformed header field");
        const auto value = trim(field.substr(colon + 1));
        if (value.find_first_of("\r\n") != std::string_view::npos) return invalid("bare CR or LF in a header field");
        if (iequals(name, "Content-Length")) {
            std::size_t n = 0;
            const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc{} || p != value.data() + value.size() || (have_length && n != length))
                return invalid("bad Content-Length");
            have_length = true;
            length = n;
        } else if (iequals(name, "Transfer-Encoding")) {
            chunked = has_token(value, "chunked");
        } else if (iequals(name, "Connection")) {
            f.close = f.close || has_token(value, "close");
        }
    }
    const std::size_t body = response.size() - f.header_bytes;
    const bool no_body = f.status < 200 || f.status == 204 || f.status == 304 || method == "HEAD";
    if (have_length && chunked) return invalid("both Content-Length and chunked");
    if (no_body) {
        f.framed = true;
    } else if (have_length) {
        if (body != length) return invalid("Content-Length does not match the body");
        f.framed = true;
    } else {
        f.framed = chunked;
    }
    f.valid = true;
    return f;
}

} // namespace portunusd::http
