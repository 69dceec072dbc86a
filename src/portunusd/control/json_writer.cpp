// SPDX-License-Identifier: MPL-2.0
// The JSON writer and its string escaping.
#include "portunusd/control/json_writer.hpp"

#include <charconv>
#include <cmath>

namespace portunusd {
namespace {

constexpr std::string_view replacement = "\xEF\xBF\xBD"; // U+FFFD

bool in(unsigned char c, unsigned char low, unsigned char high) noexcept { return c >= low && c <= high; }

// The length of the valid UTF-8 sequence at the start of `s`, or 0 if it is not one. The
// ranges are RFC 3629's: they exclude overlong forms, surrogates and code points past U+10FFFF.
std::size_t utf8_sequence(std::string_view s) noexcept
{
    const auto at = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char lead = at(0);
    if (lead < 0x80) return 1;
    std::size_t length = 0;
    unsigned char low = 0x80;
    unsigned char high = 0xBF;
    if (in(lead, 0xC2, 0xDF)) {
        length = 2;
    } else if (in(lead, 0xE0, 0xEF)) {
        length = 3;
        if (lead == 0xE0) low = 0xA0;
        if (lead == 0xED) high = 0x9F;
    } else if (in(lead, 0xF0, 0xF4)) {
        length = 4;
        if (lead == 0xF0) low = 0x90;
        if (lead == 0xF4) high = 0x8F;
    } else {
        return 0;
    }
    if (s.size() < length || !in(at(1), low, high)) return 0;
    for (std::size_t i = 2; i < length; ++i)
        if (!in(at(i), 0x80, 0xBF)) return 0;
    return length;
}

void append_u_escape(std::string& out, unsigned code)
{
    static constexpr char hex[] = "0123456789abcdef";
    out += "\\u";
    for (int shift = 12; shift >= 0; shift -= 4) out += hex[(code >> shift) & 0xf];
}

} // namespace

std::string json_escape(std::string_view text)
{
    std::string out;
    out.reserve(text.size() + 2);
    out += '"';
    while (!text.empty()) {
        const auto c = static_cast<unsigned char>(text.front());
        std::size_t used = 1;
        switch (c) {
        case '"': out += "\\\""; break;
        case '\\': out += "\\\\"; break;
        case '\b': out += "\\b"; break;
        case '\f': out += "\\f"; break;
        case '\n': out += "\\n"; break;
        case '\r': out += "\\r"; break;
        case '\t': out += "\\t"; break;
        default:
            if (c < 0x20 || c == 0x7f) {
                append_u_escape(out, c);
            } else if (c < 0x80) {
                out += static_cast<char>(c);
            } else if (const std::size_t n = utf8_sequence(text); n == 0) {
                out += replacement;
            } else {
                used = n;
                // Valid JSON, but not valid JavaScript: line and paragraph separators end a line there.
                if (n == 3 && c == 0xE2 && static_cast<unsigned char>(text[1]) == 0x80 &&
                    (static_cast<unsigned char>(text[2]) & 0xFE) == 0xA8)
                    append_u_escape(out, 0x2028u + (static_cast<unsigned char>(text[2]) - 0xA8u));
                else
                    out.append(text.substr(0, n));
            }
        }
        text.remove_prefix(used);
    }
    out += '"';
    return out;
}

void json_writer::before_value()
{
    if (after_key_) {
        after_key_ = false;
        return;
    }
    if (!has_items_.empty()) {
        if (has_items_.back()) out_ += ',';
        has_items_.back() = true;
    }
}

void json_writer::open(char bracket)
{
    before_value();
    out_ += bracket;
    has_items_.push_back(false);
}

void json_writer::close(char bracket)
{
    out_ += bracket;
    has_items_.pop_back();
}

void json_writer::key(std::string_view name)
{
    before_value();
    out_ += json_escape(name);
    out_ += ':';
    after_key_ = true;
}

void json_writer::value(std::string_view text)
{
    before_value();
    out_ += json_escape(text);
}

void json_writer::value(bool b)
{
    before_value();
    out_ += b ? "true" : "false";
}

void json_writer::unsigned_value(std::uint64_t n)
{
    before_value();
    out_ += std::to_string(n);
}

void json_writer::signed_value(std::int64_t n)
{
    before_value();
    out_ += std::to_string(n);
}

void json_writer::value(double d)
{
    if (!std::isfinite(d)) return null();
    // Below 2^53 every integral double is an exact int64, and readers that keep integers apart
    // from floats (Python's json, jq's @text) then see an integer.
    if (std::trunc(d) == d && std::fabs(d) < 9007199254740992.0) return signed_value(static_cast<std::int64_t>(d));
    before_value();
    char buffer[400];
    // Plain decimals where they stay short (0.0001, not 1e-04), as JavaScript writes numbers;
    // either way the shortest digits that read back as `d`.
    const double magnitude = std::fabs(d);
    const auto format = magnitude >= 1e-6 && magnitude < 1e21 ? std::chars_format::fixed : std::chars_format::scientific;
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, d, format);
    out_.append(buffer, static_cast<std::size_t>(result.ptr - buffer));
}

void json_writer::null()
{
    before_value();
    out_ += "null";
}

} // namespace portunusd
