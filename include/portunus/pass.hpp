// SPDX-License-Identifier: MPL-2.0
// The pass header: what portunusd tells an application with a client socket it hands over.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace portunus {

/// The first bytes of every pass header ("PTPS"), and its version.
inline constexpr std::string_view pass_magic{"PTPS", 4};
inline constexpr std::uint8_t pass_version = 1;
/// The fixed part of a version 1 header, before the forward name.
inline constexpr std::size_t pass_fixed_length = 66;
/// The longest forward name a header carries (the configuration allows 64 bytes).
inline constexpr std::size_t pass_max_name = 255;

/// One end of a TCP connection. `family` is 4 or 6; IPv4 uses the first 4 bytes of `address`.
struct pass_endpoint {
    std::uint8_t family = 0;
    std::array<std::uint8_t, 16> address{};
    std::uint16_t port = 0;

    /// "IP:PORT", IPv6 in brackets ("[::1]:80").
    [[nodiscard]] std::string text() const;
    bool operator==(const pass_endpoint&) const = default;
};

/// What a pass call says about the socket it carries (docs/doors.md, "Passed connections").
struct pass_header {
    /// The daemon waits for the handler to return (pass_hold) instead of for the hand-off only.
    bool hold = false;
    pass_endpoint peer;  ///< the socket's own peer: the client, or the balancer behind a PROXY header
    pass_endpoint local; ///< the address the client connected to
    /// The client a PROXY protocol header named, when one did.
    std::optional<pass_endpoint> origin;
    std::string forward; ///< the forward's name
    /// Bytes the daemon read from the stream behind a PROXY header: the first bytes the client
    /// sent, which the socket will not deliver again. Usually empty.
    std::string early;

    /// The client as the application should see it: origin when present, else peer.
    [[nodiscard]] const pass_endpoint& client() const noexcept { return origin ? *origin : peer; }
    bool operator==(const pass_header&) const = default;
};

/// Why a call is not a valid pass header; empty when it is.
struct pass_parse_result {
    std::optional<pass_header> value;
    std::string error;
};

/// True when `data` starts like a pass header (its magic), whatever follows.
[[nodiscard]] inline bool looks_like_pass_header(std::string_view data) noexcept
{
    return data.substr(0, pass_magic.size()) == pass_magic;
}

/// Parses a whole pass call's data: the header, then the early bytes. Pure; never throws but
/// std::bad_alloc. A value, or an error saying what is wrong.
pass_parse_result parse_pass_header(std::string_view data);

/// The bytes of a pass call for `header` (the daemon's side; tests). A forward name longer
/// than pass_max_name is cut there.
std::string serialize_pass_header(const pass_header& header);

} // namespace portunus
