// SPDX-License-Identifier: MPL-2.0
// The chunk-size line of the chunked coding: hex size and extensions (RFC 9112 §7.1).
#include "portunusd/http/http_error.hpp"
#include "portunusd/http/request_parser.hpp"
#include "portunusd/http/request_rules.hpp"
#include "portunusd/http/syntax.hpp"

namespace portunusd::http::detail {
namespace {

bool is_qdtext(unsigned char c) noexcept
{
    return c == '\t' || c == ' ' || c == 0x21 || (c >= 0x23 && c <= 0x5b) || (c >= 0x5d && c <= 0x7e) || c >= 0x80;
}

bool is_quoted_pair_char(unsigned char c) noexcept
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

void skip_ows(std::string_view s, std::size_t& p) noexcept
{
    while (p < s.size() && syntax::is_ows(s[p])) ++p;
}

bool skip_token(std::string_view s, std::size_t& p) noexcept
{
    const std::size_t start = p;
    while (p < s.size() && syntax::is_tchar(static_cast<unsigned char>(s[p]))) ++p;
    return p != start;
}

bool skip_quoted_string(std::string_view s, std::size_t& p) noexcept
{
    ++p; // the opening DQUOTE
    while (p < s.size()) {
        const auto c = static_cast<unsigned char>(s[p++]);
        if (c == '"') return true;
        if (c == '\\') {
            if (p == s.size() || !is_quoted_pair_char(static_cast<unsigned char>(s[p]))) return false;
            ++p;
        } else if (!is_qdtext(c)) {
            return false;
        }
    }
    return false;
}

// chunk-ext = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] ), checked to the
// letter: extensions are ignored, but an intermediary that reads a malformed one differently
// would see different chunk boundaries (the "TERM.EXT" smuggling family).
bool is_valid_extensions(std::string_view s) noexcept
{
    std::size_t p = 0;
    while (p < s.size()) {
        skip_ows(s, p);
        if (p == s.size() || s[p] != ';') return false;
        ++p;
        skip_ows(s, p);
        if (!skip_token(s, p)) return false;
        const std::size_t after_name = p;
        skip_ows(s, p);
        if (p < s.size() && s[p] == '=') {
            ++p;
            skip_ows(s, p);
            if (p < s.size() && s[p] == '"') {
                if (!skip_quoted_string(s, p)) return false;
            } else if (!skip_token(s, p)) {
                return false;
            }
        } else {
            p = after_name;
        }
    }
    return true;
}

} // namespace

std::error_code parse_chunk_size_line(std::string_view line, std::uint64_t& size, std::size_t& extension_bytes)
{
    std::size_t digits = 0;
    std::uint64_t value = 0;
    // At most 16 hex digits, leading zeros included, so the size can never overflow 64 bits.
    while (digits < line.size() && syntax::hex_value(line[digits]) >= 0) {
        if (++digits > max_chunk_size_digits) return http_error::bad_chunk;
        value = value * 16 + static_cast<std::uint64_t>(syntax::hex_value(line[digits - 1]));
    }
    if (digits == 0) return http_error::bad_chunk;
    const std::string_view extensions = line.substr(digits);
    if (!is_valid_extensions(extensions)) return http_error::bad_chunk;
    size = value;
    extension_bytes = extensions.size();
    return {};
}

} // namespace portunusd::http::detail
