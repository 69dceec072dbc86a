// SPDX-License-Identifier: MPL-2.0
// RFC 9110/9112 character classes and list helpers shared by the request parser's parts.
#pragma once

#include <cstddef>
#include <string_view>

namespace portunusd::http::syntax {

/// tchar: the characters of a token (method, field name, coding, extension name).
constexpr bool is_tchar(unsigned char c) noexcept
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+': case '-':
    case '.': case '^': case '_': case '`': case '|': case '~': return true;
    default: return false;
    }
}

constexpr bool is_token(std::string_view s) noexcept
{
    if (s.empty()) return false;
    for (const char c : s)
        if (!is_tchar(static_cast<unsigned char>(c))) return false;
    return true;
}

constexpr bool is_ows(char c) noexcept { return c == ' ' || c == '\t'; }

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

/// The value of a hex digit, or -1.
constexpr int hex_value(char c) noexcept
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/// field-vchar or SP/HTAB: what may appear inside a field value. obs-text (0x80-0xFF) is
/// allowed because the value is passed through opaquely; NUL, other CTLs and DEL never are.
constexpr bool is_field_value_char(unsigned char c) noexcept
{
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

constexpr std::string_view trim_ows(std::string_view s) noexcept
{
    while (!s.empty() && is_ows(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_ows(s.back())) s.remove_suffix(1);
    return s;
}

constexpr char ascii_lower(char c) noexcept
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

/// Case-insensitive ASCII comparison, as field names, codings and connection options require.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept
{
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (ascii_lower(a[i]) != ascii_lower(b[i])) return false;
    return true;
}

/// Calls f(element) for every element of a comma-separated list, trimmed of OWS, including
/// empty ones (each caller decides whether an empty element is acceptable). Stops early and
/// returns false when f returns false.
template <typename F>
constexpr bool for_each_list_element(std::string_view list, F&& f)
{
    for (;;) {
        const std::size_t comma = list.find(',');
        if (!f(trim_ows(list.substr(0, comma)))) return false;
        if (comma == std::string_view::npos) return true;
        list.remove_prefix(comma + 1);
    }
}

} // namespace portunusd::http::syntax
