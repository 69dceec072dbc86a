// SPDX-License-Identifier: MPL-2.0
// address_set: the sources a forward trusts to send a PROXY header, as CIDR blocks; pure.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portunusd::proxy {

/// An IPv4 or IPv6 network: the address (IPv4 in the first 4 bytes) and the prefix length.
struct cidr {
    bool v6 = false;
    std::array<std::uint8_t, 16> address{};
    unsigned prefix = 0; ///< 0..32 or 0..128

    friend bool operator==(const cidr&, const cidr&) = default;
};

/// A network or the reason it was refused (a message without the key name in front).
struct parsed_cidr {
    std::optional<cidr> value;
    std::string error;
};

/// "10.0.0.0/8", "::1/128", or a plain address ("127.0.0.1", "::1": /32 or /128). An address
/// with bits set past the prefix is refused with the network it probably meant, since a typo
/// there would trust something else than the operator thought.
parsed_cidr parse_cidr(std::string_view text);

/// "10.0.0.0/8", "::1/128": the canonical text of a network.
std::string to_string(const cidr& c);

/// True when `address` (4 bytes for IPv4, 16 for IPv6) lies in one of `networks`. An IPv4-mapped
/// IPv6 address (::ffff:a.b.c.d, how a dual-stack socket reports an IPv4 client) counts as the
/// IPv4 address it carries.
bool contains(std::span<const cidr> networks, std::span<const std::uint8_t> address) noexcept;

} // namespace portunusd::proxy
