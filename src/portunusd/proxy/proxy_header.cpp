// SPDX-License-Identifier: MPL-2.0
// The PROXY protocol header parser: v1 (one text line) and v2 (binary, with skipped TLVs).
#include "portunusd/proxy/proxy_header.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstring>

namespace portunusd::proxy {
namespace {

constexpr std::string_view v1_prefix = "PROXY ";
constexpr std::string_view v2_signature{"\r\n\r\n\0\r\nQUIT\n", 12};

// Sizes of the v2 address blocks: two addresses, then two ports for INET and INET6.
constexpr std::size_t inet_block = 4 + 4 + 2 + 2;
constexpr std::size_t inet6_block = 16 + 16 + 2 + 2;
constexpr std::size_t unix_block = 108 + 108;

parse_result fail(std::string_view why) noexcept
{
    parse_result r;
    r.status = parse_status::error;
    r.error = why;
    return r;
}

// True when `bytes` and `expected` agree on their common length.
bool agrees(std::string_view bytes, std::string_view expected) noexcept
{
    const std::size_t n = std::min(bytes.size(), expected.size());
    return bytes.substr(0, n) == expected.substr(0, n);
}

// A decimal port: no sign, no leading zero (the spec writes ports canonically), 0..65535.
bool parse_port(std::string_view text, std::uint16_t& port) noexcept
{
    if (text.empty() || text.size() > 5 || (text.size() > 1 && text.front() == '0')) return false;
    unsigned value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535) return false;
    port = static_cast<std::uint16_t>(value);
    return true;
}

bool parse_address(std::string_view text, family fam, endpoint& out) noexcept
{
    // inet_pton wants a terminated string; the longest IPv6 text is 45 characters.
    char buf[INET6_ADDRSTRLEN + 1] = {};
    if (text.empty() || text.size() >= sizeof buf) return false;
    std::memcpy(buf, text.data(), text.size());
    out.fam = fam;
    // glibc and illumos both refuse leading zeros in IPv4 octets, and every shortcut form.
    return ::inet_pton(fam == family::inet ? AF_INET : AF_INET6, buf, out.address.data()) == 1;
}

// Splits off the text up to the next single space; false when there is none.
bool next_field(std::string_view& rest, std::string_view& field) noexcept
{
    const std::size_t space = rest.find(' ');
    if (space == std::string_view::npos) return false;
    field = rest.substr(0, space);
    rest.remove_prefix(space + 1);
    return true;
}

parse_result parse_v1(std::string_view bytes) noexcept
{
    const std::size_t scan = std::min(bytes.size(), max_v1_length);
    std::size_t end = 0; // of the line, CRLF excluded
    for (std::size_t i = 0; i < scan && end == 0; ++i) {
        const auto c = static_cast<unsigned char>(bytes[i]);
        if (c == '\r') {
            if (i + 1 == max_v1_length) return fail("PROXY v1: no CRLF within 107 bytes");
            if (i + 1 == bytes.size()) return {};
            if (bytes[i + 1] != '\n') return fail("PROXY v1: CR without LF");
            end = i;
        } else if (c < 0x20 || c > 0x7e) {
            return fail("PROXY v1: control or non-ASCII byte in the line");
        }
    }
    if (end == 0) {
        if (bytes.size() >= max_v1_length) return fail("PROXY v1: no CRLF within 107 bytes");
        return {};
    }
    std::string_view rest = bytes.substr(v1_prefix.size(), end - v1_prefix.size());
    parse_result r;
    r.status = parse_status::complete;
    r.length = end + 2;
    r.value.version = 1;
    // "The receiver must ignore anything presented before the CRLF is found" after UNKNOWN.
    if (rest == "UNKNOWN" || rest.starts_with("UNKNOWN ")) return r;
    std::string_view proto, src, dst, sport;
    if (!next_field(rest, proto)) return fail("PROXY v1: expected TCP4, TCP6 or UNKNOWN");
    family fam = family::none;
    if (proto == "TCP4") fam = family::inet;
    else if (proto == "TCP6") fam = family::inet6;
    else return fail("PROXY v1: expected TCP4, TCP6 or UNKNOWN");
    if (!next_field(rest, src) || !next_field(rest, dst) || !next_field(rest, sport))
        return fail("PROXY v1: expected source, destination, source port and destination port");
    header& h = r.value;
    if (!parse_address(src, fam, h.source) || !parse_address(dst, fam, h.destination))
        return fail(fam == family::inet ? "PROXY v1: bad IPv4 address" : "PROXY v1: bad IPv6 address");
    if (!parse_port(sport, h.source.port) || !parse_port(rest, h.destination.port))
        return fail("PROXY v1: bad port");
    h.has_addresses = true;
    return r;
}

std::uint16_t load16(const unsigned char* p) noexcept
{
    return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

parse_result parse_v2(std::string_view bytes) noexcept
{
    if (bytes.size() < v2_fixed_length) return {};
    const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
    if ((p[12] >> 4) != 2) return fail("PROXY v2: unsupported version");
    const unsigned command = p[12] & 0x0f;
    if (command > 1) return fail("PROXY v2: unknown command");
    const unsigned fam = p[13] >> 4;
    const unsigned transport = p[13] & 0x0f;
    const std::size_t length = load16(p + 14);
    // Refused before its bytes arrive: waiting for them would only hold the connection longer.
    if (v2_fixed_length + length > max_header_length) return fail("PROXY v2: header longer than 4096 bytes");
    std::size_t block = 0;
    if (command == 1) {
        if (fam > 3 || transport > 2) return fail("PROXY v2: unknown address family or transport");
        block = fam == 1 ? inet_block : fam == 2 ? inet6_block : fam == 3 ? unix_block : 0;
        if (length < block) return fail("PROXY v2: length too short for the address family");
    }
    if (bytes.size() < v2_fixed_length + length) return {};

    parse_result r;
    r.status = parse_status::complete;
    r.length = v2_fixed_length + length;
    r.value.version = 2;
    // LOCAL: "the receiver must ... use the real connection endpoints and discard the protocol
    // block including the family", so nothing past the length is looked at.
    if (command == 0) return r;
    header& h = r.value;
    const unsigned char* a = p + v2_fixed_length;
    if (fam == 1 || fam == 2) {
        const std::size_t n = fam == 1 ? 4 : 16;
        h.source.fam = h.destination.fam = fam == 1 ? family::inet : family::inet6;
        std::memcpy(h.source.address.data(), a, n);
        std::memcpy(h.destination.address.data(), a + n, n);
        h.source.port = load16(a + 2 * n);
        h.destination.port = load16(a + 2 * n + 2);
        h.has_addresses = true;
    }
    // The TLVs are not used, but a vector that runs past the header means the sender and this
    // parser disagree on where the client's bytes begin.
    for (std::size_t at = v2_fixed_length + block; at < r.length;) {
        if (r.length - at < 3) return fail("PROXY v2: truncated TLV");
        const std::size_t tlv = 3 + std::size_t{load16(p + at + 1)};
        if (tlv > r.length - at) return fail("PROXY v2: TLV runs past the header");
        at += tlv;
    }
    return r;
}

} // namespace

parse_result parse_header(std::string_view bytes) noexcept
{
    if (bytes.empty()) return {};
    if (bytes.front() == v1_prefix.front()) {
        if (!agrees(bytes, v1_prefix)) return fail("not a PROXY protocol header");
        return bytes.size() < v1_prefix.size() ? parse_result{} : parse_v1(bytes);
    }
    if (!agrees(bytes, v2_signature)) return fail("not a PROXY protocol header");
    return parse_v2(bytes);
}

} // namespace portunusd::proxy
