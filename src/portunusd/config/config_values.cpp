// SPDX-License-Identifier: MPL-2.0
// The grammars of duration, listen address, size and name values, and message helpers.
#include "portunusd/config/config_values.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <limits>
#include <vector>

namespace portunusd::config_detail {
namespace {

constexpr std::size_t max_quoted_bytes = 64;

char ascii_lower(char c) noexcept
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

bool is_host_name_char(char c) noexcept
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '-' || c == '.';
}

bool all_digits(std::string_view s) noexcept
{
    return !s.empty() && std::all_of(s.begin(), s.end(), is_digit);
}

// Saturates instead of overflowing so that a long run of digits reads as "too large" rather
// than wrapping into range.
std::uint64_t saturating_decimal(std::string_view digits) noexcept
{
    constexpr std::uint64_t cap = std::numeric_limits<std::uint64_t>::max() / 10 - 10;
    std::uint64_t n = 0;
    for (char c : digits) {
        n = n * 10 + static_cast<std::uint64_t>(c - '0');
        if (n > cap)
            return cap;
    }
    return n;
}

std::string range_text(bool zero_allowed)
{
    return "expected " + format_duration(std::chrono::milliseconds{zero_allowed ? 0 : 1}) + ".." +
           format_duration(max_duration);
}

constexpr std::string_view listen_forms =
    R"(expected ADDRESS:PORT such as "127.0.0.1:7007", "[::1]:7007" or "*:7007")";
constexpr std::string_view use_an_address = "use an IP address such as 127.0.0.1 or [::1], or * for every address";

parsed<listen_address> listen_error(std::string message)
{
    return {std::nullopt, std::move(message)};
}

bool is_wildcard(const listen_address& a) { return a.any || a.host == "0.0.0.0" || a.host == "::"; }
bool is_ipv6(const listen_address& a) { return !a.any && a.host.find(':') != std::string::npos; }

void append_escaped(std::string& out, char c, bool escape_quotes)
{
    static constexpr char hex[] = "0123456789abcdef";
    const auto u = static_cast<unsigned char>(c);
    if (escape_quotes && (c == '"' || c == '\\')) {
        out += '\\';
        out += c;
    } else if (u < 0x20 || u == 0x7f) {
        out += "\\x";
        out += hex[u >> 4];
        out += hex[u & 0xf];
    } else {
        out += c;  // UTF-8 passes through: operators may name things in their own language
    }
}

}  // namespace

std::string escape_control_bytes(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (char c : text)
        append_escaped(out, c, false);
    return out;
}

std::string quote(std::string_view text)
{
    std::string out = "\"";
    for (char c : text.substr(0, max_quoted_bytes))
        append_escaped(out, c, true);
    if (text.size() > max_quoted_bytes)
        out += "...";
    out += '"';
    return out;
}

std::string octal_mode(unsigned mode)
{
    std::array<char, 8> text{};
    std::snprintf(text.data(), text.size(), "%04o", mode & 07777U);
    return text.data();
}

std::size_t edit_distance(std::string_view a, std::string_view b)
{
    const std::size_t n = a.size();
    const std::size_t m = b.size();
    // Three rows suffice for the transposition rule, which looks two rows back.
    std::vector<std::size_t> two_back(m + 1), prev(m + 1), cur(m + 1);
    for (std::size_t j = 0; j <= m; ++j)
        prev[j] = j;
    for (std::size_t i = 1; i <= n; ++i) {
        cur[0] = i;
        for (std::size_t j = 1; j <= m; ++j) {
            const bool same = ascii_lower(a[i - 1]) == ascii_lower(b[j - 1]);
            cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (same ? 0 : 1)});
            if (i > 1 && j > 1 && ascii_lower(a[i - 1]) == ascii_lower(b[j - 2]) &&
                ascii_lower(a[i - 2]) == ascii_lower(b[j - 1]))
                cur[j] = std::min(cur[j], two_back[j - 2] + 1);
        }
        std::swap(two_back, prev);
        std::swap(prev, cur);
    }
    return prev[m];
}

std::optional<std::string_view> suggest(std::string_view word,
                                        std::span<const std::string_view> candidates)
{
    // Two edits turn any short word into any other ("udp" into "tcp"), so short words get one.
    const std::size_t limit = word.size() <= 3 ? 1 : 2;
    // Scanning very long input would cost O(n*m) for a suggestion nobody needs.
    if (word.size() > 64)
        return std::nullopt;
    std::optional<std::string_view> best;
    std::size_t best_distance = limit + 1;
    for (std::string_view c : candidates) {
        const std::size_t d = edit_distance(word, c);
        if (d < best_distance) {
            best = c;
            best_distance = d;
        }
    }
    return best;
}

std::string format_duration(std::chrono::milliseconds d)
{
    const auto ms = d.count();
    if (ms == 0)
        return "0s";
    if (ms % 3'600'000 == 0)
        return std::to_string(ms / 3'600'000) + "h";
    if (ms % 60'000 == 0)
        return std::to_string(ms / 60'000) + "m";
    if (ms % 1'000 == 0)
        return std::to_string(ms / 1'000) + "s";
    return std::to_string(ms) + "ms";
}

parsed<std::chrono::milliseconds> parse_duration(std::string_view text, bool zero_allowed)
{
    std::size_t digits = 0;
    while (digits < text.size() && is_digit(text[digits]))
        ++digits;
    const std::string_view number = text.substr(0, digits);
    const std::string_view unit = text.substr(digits);

    std::uint64_t scale = 0;
    if (unit == "ms")
        scale = 1;
    else if (unit == "s")
        scale = 1'000;
    else if (unit == "m")
        scale = 60'000;
    else if (unit == "h")
        scale = 3'600'000;
    if (number.empty() || scale == 0)
        return {std::nullopt, quote(text) + R"( is not a duration; expected a whole number and a unit )"
                                            R"((ms, s, m or h) such as "500ms", "30s" or "5m")"};

    const std::uint64_t n = saturating_decimal(number);
    const auto limit = static_cast<std::uint64_t>(max_duration.count());
    if ((n == 0 && !zero_allowed) || n > limit / scale)
        return {std::nullopt, quote(text) + " is out of range; " + range_text(zero_allowed)};
    return {std::chrono::milliseconds{static_cast<std::int64_t>(n * scale)}, {}};
}

parsed<std::chrono::milliseconds> duration_from_seconds(std::int64_t seconds, bool zero_allowed)
{
    const auto max_seconds = std::chrono::duration_cast<std::chrono::seconds>(max_duration).count();
    if (seconds < (zero_allowed ? 0 : 1) || seconds > max_seconds)
        return {std::nullopt, std::to_string(seconds) + " is out of range; " + range_text(zero_allowed)};
    return {std::chrono::seconds{seconds}, {}};
}

parsed<listen_address> parse_listen_address(std::string_view text)
{
    listen_address out;
    out.text = std::string{text};

    std::string_view host;
    std::string_view port;
    if (!text.empty() && text.front() == '[') {
        const auto close = text.find(']');
        if (close == std::string_view::npos)
            return listen_error(quote(text) + R"( is missing the "]" that closes the IPv6 address)");
        host = text.substr(1, close - 1);
        const std::string_view rest = text.substr(close + 1);
        if (rest.empty() || rest.front() != ':')
            return listen_error(quote(text) + " has no port; " + std::string{listen_forms});
        port = rest.substr(1);
        std::array<unsigned char, sizeof(in6_addr)> bytes{};
        const std::string h{host};
        if (h.find('\0') != std::string::npos || ::inet_pton(AF_INET6, h.c_str(), bytes.data()) != 1)
            return listen_error(quote(host) + " is not a valid IPv6 address");
        std::array<char, INET6_ADDRSTRLEN> canonical{};
        ::inet_ntop(AF_INET6, bytes.data(), canonical.data(), canonical.size());
        out.host = canonical.data();
    } else {
        const auto colon = text.rfind(':');
        if (colon == std::string_view::npos)
            return listen_error(quote(text) + " has no port; " + std::string{listen_forms});
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host.find(':') != std::string_view::npos)
            return listen_error(R"(an IPv6 address must be written in brackets, such as "[::1]:7007")");
        if (host.empty())
            return listen_error(quote(text) + " has no address; " + std::string{use_an_address});
        if (host == "*") {
            out.host = "*";
            out.any = true;
        } else {
            std::array<unsigned char, sizeof(in_addr)> bytes{};
            const std::string h{host};
            const bool dotted = std::all_of(h.begin(), h.end(), [](char c) { return is_digit(c) || c == '.'; });
            if (!dotted && std::all_of(h.begin(), h.end(), is_host_name_char))
                return listen_error(quote(host) + " is a host name; " + std::string{use_an_address});
            if (!dotted)
                return listen_error(quote(host) + " is not an IP address; " + std::string{use_an_address});
            // inet_pton, unlike inet_aton, refuses "127.1" and leading zeros: one spelling per address.
            if (::inet_pton(AF_INET, h.c_str(), bytes.data()) != 1)
                return listen_error(quote(host) + " is not a valid IPv4 address");
            std::array<char, INET_ADDRSTRLEN> canonical{};
            ::inet_ntop(AF_INET, bytes.data(), canonical.data(), canonical.size());
            out.host = canonical.data();
        }
    }

    if (!all_digits(port))
        return listen_error("port " + quote(port) + " is not a number; expected 1..65535");
    const std::uint64_t p = saturating_decimal(port);
    if (p < 1 || p > 65'535)
        return listen_error("port " + std::string{port.substr(0, 12)} + (port.size() > 12 ? "..." : "") +
                            " is out of range; expected 1..65535");
    out.port = static_cast<std::uint16_t>(p);
    return {std::move(out), {}};
}

bool listen_addresses_overlap(const listen_address& a, const listen_address& b)
{
    if (a.port != b.port)
        return false;
    if (a.host == b.host || a.any || b.any)
        return true;
    // 0.0.0.0 covers every IPv4 address and [::] every IPv6 one, but not each other.
    return (is_wildcard(a) || is_wildcard(b)) && is_ipv6(a) == is_ipv6(b);
}

bool is_valid_env_name(std::string_view name)
{
    const auto word = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; };
    return !name.empty() && word(name.front()) &&
           std::all_of(name.begin(), name.end(), [&word](char c) { return word(c) || is_digit(c); });
}

parsed<std::uint64_t> parse_byte_size(std::string_view text)
{
    std::size_t digits = 0;
    while (digits < text.size() && is_digit(text[digits]))
        ++digits;
    const std::string_view number = text.substr(0, digits);
    const std::string_view unit = text.substr(digits);

    constexpr std::array<std::string_view, 5> units{"", "K", "M", "G", "T"};
    const auto found = std::find(units.begin(), units.end(), unit);
    if (number.empty() || found == units.end())
        return {std::nullopt, quote(text) + R"( is not a size; expected a whole number of bytes, or one with a unit )"
                                            R"((K, M, G or T, powers of 1024) such as "512K", "200M" or "1G")"};
    const auto shift = 10 * static_cast<unsigned>(found - units.begin());
    const std::uint64_t n = saturating_decimal(number);
    if (n > (max_byte_size >> shift))
        return {std::nullopt, quote(text) + " is too large; at most " + std::to_string(max_byte_size >> 40) + "T"};
    return {n << shift, {}};
}

parsed<std::uint64_t> byte_size_from_integer(std::int64_t bytes)
{
    if (bytes < 0 || static_cast<std::uint64_t>(bytes) > max_byte_size)
        return {std::nullopt, std::to_string(bytes) + " is out of range; expected 0.." + std::to_string(max_byte_size)};
    return {static_cast<std::uint64_t>(bytes), {}};
}

bool is_valid_forward_name(std::string_view name)
{
    if (name.empty() || name.size() > 64)
        return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_' ||
               c == '.' || c == '-';
    });
}

}  // namespace portunusd::config_detail
