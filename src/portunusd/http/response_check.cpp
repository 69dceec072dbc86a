// SPDX-License-Identifier: MPL-2.0
// Validation of application responses: status line, header section, framing.
#include "portunusd/http/response_check.hpp"

#include "portunusd/http/syntax.hpp"

#include <algorithm>
#include <charconv>

namespace portunusd::http {
namespace {

bool iequals(std::string_view a, std::string_view b)
{
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](char x, char y) { return syntax::ascii_lower(x) == syntax::ascii_lower(y); });
}

bool has_token(std::string_view list, std::string_view token)
{
    while (!list.empty()) {
        const auto comma = list.find(',');
        if (iequals(syntax::trim_ows(list.substr(0, comma)), token)) return true;
        if (comma == std::string_view::npos) break;
        list.remove_prefix(comma + 1);
    }
    return false;
}

// Walks chunked framing from `body` to its end: every chunk size line, chunk data and CRLF, the
// last chunk and the trailer section. True only if the framing ends exactly where the bytes
// end, so nothing of a later "response" can ride along.
bool chunked_framing_is_exact(std::string_view body)
{
    for (;;) {
        const auto eol = body.find("\r\n");
        if (eol == std::string_view::npos) return false;
        auto size_text = body.substr(0, eol);
        size_text = size_text.substr(0, size_text.find(';'));
        if (size_text.empty() || size_text.size() > 16) return false;
        std::size_t size = 0;
        const auto [p, ec] = std::from_chars(size_text.data(), size_text.data() + size_text.size(), size, 16);
        if (ec != std::errc{} || p != size_text.data() + size_text.size()) return false;
        body.remove_prefix(eol + 2);
        if (size == 0) break;
        if (body.size() < size + 2 || body.substr(size, 2) != "\r\n") return false;
        body.remove_prefix(size + 2);
    }
    for (;;) { // trailer fields, then the final CRLF
        const auto eol = body.find("\r\n");
        if (eol == std::string_view::npos) return false;
        if (eol == 0) return body.size() == 2;
        body.remove_prefix(eol + 2);
    }
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
        !syntax::is_digit(line[9]) || !syntax::is_digit(line[10]) || !syntax::is_digit(line[11]) || (line.size() > 12 && line[12] != ' '))
        return invalid("bad status line");
    response_facts f;
    f.status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
    // Interim (1xx) responses are the daemon's business (100-continue); relaying one as the
    // answer would pair the client's next response with the wrong request.
    if (f.status < 200 || f.status > 599) return invalid("status code out of range 200..599");
    f.header_bytes = end + 4;

    bool chunked = false;
    bool has_transfer_encoding = false;
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
        if (!syntax::is_token(name)) return invalid("malformed header field name");
        const auto value = syntax::trim_ows(field.substr(colon + 1));
        if (value.find_first_of("\r\n") != std::string_view::npos) return invalid("bare CR or LF in a header field");
        if (iequals(name, "Content-Length")) {
            std::size_t n = 0;
            const auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec != std::errc{} || p != value.data() + value.size() || (have_length && n != length))
                return invalid("bad Content-Length");
            have_length = true;
            length = n;
        } else if (iequals(name, "Transfer-Encoding")) {
            // Codings accumulate over repeated fields; only a final "chunked" frames the body.
            const auto last_comma = value.rfind(',');
            const auto last = syntax::trim_ows(last_comma == std::string_view::npos ? value : value.substr(last_comma + 1));
            chunked = iequals(last, "chunked");
            has_transfer_encoding = true;
        } else if (iequals(name, "Connection")) {
            f.close = f.close || has_token(value, "close");
        }
    }
    const std::size_t body = response.size() - f.header_bytes;
    if (have_length && has_transfer_encoding) return invalid("both Content-Length and Transfer-Encoding");
    if (f.status == 204 || f.status == 304) {
        // These never have a body; bytes after the header section would be read by the client
        // as the next response.
        if (body != 0) return invalid("body after a " + std::to_string(f.status) + " response");
        f.framed = true;
    } else if (method == "HEAD") {
        f.framed = true; // the session sends the header section only
    } else if (have_length) {
        if (body != length) return invalid("Content-Length does not match the body");
        f.framed = true;
    } else if (chunked) {
        if (!chunked_framing_is_exact(response.substr(f.header_bytes))) return invalid("broken chunked framing");
        f.framed = true;
    } else {
        f.framed = false;
    }
    f.valid = true;
    return f;
}

} // namespace portunusd::http
