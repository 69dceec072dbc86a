// SPDX-License-Identifier: MPL-2.0
// The PROXY protocol header (versions 1 and 2) that a balancer sends before a client's bytes:
// a pure parser, bytes in, need-more / a header and its length / an error out.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace portunusd::proxy {

/// An address family as the header names it; `none` before anything was parsed.
enum class family : std::uint8_t { none, inet, inet6 };

/// One end of the balancer's connection with its client: the address in network byte order
/// (4 bytes used for inet, 16 for inet6) and the port.
struct endpoint {
    family fam = family::none;
    std::array<std::uint8_t, 16> address{};
    std::uint16_t port = 0;

    friend bool operator==(const endpoint&, const endpoint&) = default;
};

/// What a complete header says.
struct header {
    int version = 0; ///< 1 (text) or 2 (binary)
    /// True when the header names the client: v1 TCP4/TCP6, v2 PROXY over INET or INET6.
    /// False for v1 UNKNOWN, v2 LOCAL (the balancer's own health checks) and v2 PROXY with an
    /// UNSPEC or UNIX family: the connection's own peer address then stands.
    bool has_addresses = false;
    endpoint source;      ///< the client, as the balancer saw it
    endpoint destination; ///< the address the client reached on the balancer

    friend bool operator==(const header&, const header&) = default;
};

enum class parse_status { need_more, complete, error };

struct parse_result {
    parse_status status = parse_status::need_more;
    std::size_t length = 0; ///< complete: the header's bytes; what follows is the client's stream
    header value;           ///< complete only
    std::string_view error; ///< error only: a static message, fit for a log line
};

/// A v1 line is at most 107 bytes, CRLF included (the spec's own bound).
inline constexpr std::size_t max_v1_length = 107;
/// The fixed part of a v2 header: signature, version and command, family, length.
inline constexpr std::size_t v2_fixed_length = 16;
/// The most a v2 header may take here, TLVs included. Its length field allows 64 KiB, but no
/// balancer sends more than a few hundred bytes of TLVs, and a bound keeps per-connection
/// memory small before the client is known.
inline constexpr std::size_t max_header_length = 4096;

/// Parses the header at the start of `bytes` (everything received so far). need_more while the
/// bytes are a strict prefix of a header that could still be valid; an error as soon as they
/// cannot be, so a client that speaks anything else is refused without waiting for a timeout.
/// Pure: no allocation, no I/O.
parse_result parse_header(std::string_view bytes) noexcept;

} // namespace portunusd::proxy
