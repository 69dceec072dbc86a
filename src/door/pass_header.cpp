// SPDX-License-Identifier: MPL-2.0
// The pass header's wire format, version 1 (docs/doors.md, "Passed connections").
#include <portunus/pass.hpp>

#include <arpa/inet.h>

#include <algorithm>

namespace portunus {
namespace {

// Offsets of version 1. Integers are big-endian; an endpoint is family, 16 address bytes, port.
constexpr std::size_t at_version = 4, at_flags = 5, at_length = 6, at_peer = 8, at_local = 27, at_origin = 46,
                      at_name_length = 65, endpoint_size = 19;
constexpr std::uint8_t flag_hold = 0x01, flag_origin = 0x02, known_flags = flag_hold | flag_origin;

std::uint16_t read16(std::string_view d, std::size_t at)
{
    return static_cast<std::uint16_t>((static_cast<unsigned char>(d[at]) << 8) | static_cast<unsigned char>(d[at + 1]));
}

void put16(std::string& out, std::uint16_t v)
{
    out += static_cast<char>(v >> 8);
    out += static_cast<char>(v & 0xff);
}

bool read_endpoint(std::string_view d, std::size_t at, pass_endpoint& e, std::string& error, const char* what)
{
    e.family = static_cast<std::uint8_t>(d[at]);
    if (e.family != 4 && e.family != 6) {
        error = std::string(what) + ": family " + std::to_string(e.family) + " is neither 4 nor 6";
        return false;
    }
    for (std::size_t i = 0; i < 16; ++i) e.address[i] = static_cast<std::uint8_t>(d[at + 1 + i]);
    // An IPv4 address fills 4 bytes; anything behind them would make two headers that mean the
    // same compare unequal, so it must be zero.
    if (e.family == 4 && std::any_of(e.address.begin() + 4, e.address.end(), [](std::uint8_t b) { return b != 0; })) {
        error = std::string(what) + ": IPv4 address with bytes past its fourth";
        return false;
    }
    e.port = read16(d, at + 17);
    return true;
}

void put_endpoint(std::string& out, const pass_endpoint& e)
{
    out += static_cast<char>(e.family);
    for (const auto b : e.address) out += static_cast<char>(b);
    put16(out, e.port);
}

} // namespace

std::string pass_endpoint::text() const
{
    char buf[INET6_ADDRSTRLEN] = "?";
    if (family == 4)
        ::inet_ntop(AF_INET, address.data(), buf, sizeof buf);
    else if (family == 6)
        ::inet_ntop(AF_INET6, address.data(), buf, sizeof buf);
    // Appended piece by piece: `"[" + std::string(...)` trips GCC 12's -Wrestrict false
    // positive in optimized builds.
    std::string text;
    if (family == 6) text += '[';
    text += buf;
    if (family == 6) text += ']';
    text += ':';
    text += std::to_string(port);
    return text;
}

pass_parse_result parse_pass_header(std::string_view data)
{
    pass_parse_result r;
    if (data.size() < pass_magic.size() || !looks_like_pass_header(data)) {
        r.error = "not a pass header (no magic)";
        return r;
    }
    if (data.size() < pass_fixed_length) {
        r.error = "pass header cut short: " + std::to_string(data.size()) + " of at least " +
                  std::to_string(pass_fixed_length) + " bytes";
        return r;
    }
    const auto version = static_cast<std::uint8_t>(data[at_version]);
    if (version != pass_version) {
        r.error = "pass header version " + std::to_string(version) + " is not supported (this library reads 1)";
        return r;
    }
    const auto flags = static_cast<std::uint8_t>(data[at_flags]);
    if (flags & ~known_flags) {
        r.error = "pass header has unknown flags";
        return r;
    }
    const std::size_t length = read16(data, at_length);
    const std::size_t name_length = static_cast<unsigned char>(data[at_name_length]);
    if (length < pass_fixed_length + name_length) {
        r.error = "pass header length " + std::to_string(length) + " is shorter than its fields";
        return r;
    }
    if (length > data.size()) {
        r.error = "pass header length " + std::to_string(length) + " is past the call's " +
                  std::to_string(data.size()) + " bytes";
        return r;
    }
    pass_header h;
    h.hold = (flags & flag_hold) != 0;
    if (!read_endpoint(data, at_peer, h.peer, r.error, "peer") || !read_endpoint(data, at_local, h.local, r.error, "local"))
        return r;
    if (flags & flag_origin) {
        pass_endpoint o;
        if (!read_endpoint(data, at_origin, o, r.error, "origin")) return r;
        h.origin = o;
    } else if (std::any_of(data.begin() + at_origin, data.begin() + at_origin + endpoint_size, [](char c) { return c != 0; })) {
        r.error = "origin: bytes set without the origin flag";
        return r;
    }
    h.forward.assign(data.substr(pass_fixed_length, name_length));
    // Bytes between the name and `length` belong to later minor additions: skipped, so that a
    // newer daemon's header still reads here.
    h.early.assign(data.substr(length));
    r.value = std::move(h);
    return r;
}

std::string serialize_pass_header(const pass_header& header)
{
    const std::string_view name = std::string_view(header.forward).substr(0, pass_max_name);
    std::string out;
    out.reserve(pass_fixed_length + name.size() + header.early.size());
    out += pass_magic;
    out += static_cast<char>(pass_version);
    out += static_cast<char>((header.hold ? flag_hold : 0) | (header.origin ? flag_origin : 0));
    put16(out, static_cast<std::uint16_t>(pass_fixed_length + name.size()));
    put_endpoint(out, header.peer);
    put_endpoint(out, header.local);
    if (header.origin)
        put_endpoint(out, *header.origin);
    else
        out.append(endpoint_size, '\0');
    out += static_cast<char>(name.size());
    out += name;
    out += header.early;
    return out;
}

} // namespace portunus
