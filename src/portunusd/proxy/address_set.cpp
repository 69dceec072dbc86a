// SPDX-License-Identifier: MPL-2.0
// CIDR blocks: parsing with the network a stray host bit probably meant, and matching.
#include "portunusd/proxy/address_set.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstring>

namespace portunusd::proxy {
namespace {

bool parse_prefix(std::string_view text, unsigned max, unsigned& prefix)
{
    if (text.empty() || text.size() > 3 || (text.size() > 1 && text.front() == '0')) return false;
    unsigned value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return false;
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > max) return false;
    prefix = value;
    return true;
}

// Clears the bits past the prefix; true when any was set.
bool mask(cidr& c)
{
    bool changed = false;
    const unsigned bytes = c.v6 ? 16 : 4;
    for (unsigned i = 0; i < bytes; ++i) {
        const unsigned first_bit = i * 8;
        std::uint8_t keep = 0;
        if (c.prefix >= first_bit + 8) keep = 0xff;
        else if (c.prefix > first_bit) keep = static_cast<std::uint8_t>(0xff << (8 - (c.prefix - first_bit)));
        if (c.address[i] & ~keep) changed = true;
        c.address[i] &= keep;
    }
    return changed;
}

bool in(const cidr& c, const std::uint8_t* address)
{
    const unsigned whole = c.prefix / 8;
    if (std::memcmp(c.address.data(), address, whole) != 0) return false;
    const unsigned rest = c.prefix % 8;
    if (rest == 0) return true;
    const auto keep = static_cast<std::uint8_t>(0xff << (8 - rest));
    return (address[whole] & keep) == c.address[whole];
}

} // namespace

parsed_cidr parse_cidr(std::string_view text)
{
    parsed_cidr out;
    const std::size_t slash = text.find('/');
    const std::string_view host = text.substr(0, slash);
    char buf[INET6_ADDRSTRLEN + 1] = {};
    cidr c;
    bool valid = !host.empty() && host.size() < sizeof buf;
    if (valid) {
        std::memcpy(buf, host.data(), host.size());
        c.v6 = host.find(':') != std::string_view::npos;
        valid = ::inet_pton(c.v6 ? AF_INET6 : AF_INET, buf, c.address.data()) == 1;
    }
    if (!valid) {
        // Appended rather than concatenated: GCC 12 at -O3 reports a false -Wrestrict on
        // `"literal" + std::string(...)`.
        out.error.append("\"").append(host.substr(0, 64)).append("\" is not an IPv4 or IPv6 address");
        return out;
    }
    const unsigned max = c.v6 ? 128 : 32;
    c.prefix = max;
    if (slash != std::string_view::npos && !parse_prefix(text.substr(slash + 1), max, c.prefix)) {
        out.error = "the prefix length after \"/\" must be 0.." + std::to_string(max);
        return out;
    }
    if (mask(c)) {
        out.error.append(text.substr(0, 64))
            .append(" has host bits set past the prefix; did you mean ")
            .append(to_string(c))
            .append("?");
        return out;
    }
    out.value = c;
    return out;
}

std::string to_string(const cidr& c)
{
    char buf[INET6_ADDRSTRLEN] = {};
    ::inet_ntop(c.v6 ? AF_INET6 : AF_INET, c.address.data(), buf, sizeof buf);
    return std::string(buf) + "/" + std::to_string(c.prefix);
}

bool contains(std::span<const cidr> networks, std::span<const std::uint8_t> address) noexcept
{
    static constexpr std::uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const std::uint8_t* bytes = address.data();
    bool v6 = address.size() == 16;
    if (address.size() != 4 && !v6) return false;
    if (v6 && std::memcmp(bytes, mapped, sizeof mapped) == 0) {
        bytes += sizeof mapped;
        v6 = false;
    }
    for (const cidr& c : networks)
        if (c.v6 == v6 && in(c, bytes)) return true;
    return false;
}

} // namespace portunusd::proxy
