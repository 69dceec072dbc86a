// SPDX-License-Identifier: MPL-2.0
// The userland door wire format: a fixed, versioned header; pure encode and decode, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <system_error>

namespace portunus::uds {

/// "PDOR" read as a little-endian word. The magic and the version are the first eight bytes of
/// every message of every version, so a peer can always tell who it is talking to.
inline constexpr std::uint32_t wire_magic = 0x524f4450;
inline constexpr std::uint16_t wire_version = 1;
inline constexpr std::size_t wire_header_size = 32;
/// Payloads up to this size travel inside the message; larger ones in a sealed memfd. Well below
/// the default AF_UNIX send buffer (212992 bytes), which bounds one SOCK_SEQPACKET message.
inline constexpr std::size_t wire_inline_max = 128 * 1024;
inline constexpr std::size_t wire_max_fds = 253;
inline constexpr std::size_t wire_hello_size = 16;

enum class message_type : std::uint16_t {
    hello = 1,   ///< server → client on accept: door identity
    call = 2,    ///< client → server
    reply = 3,   ///< server → client
    error = 4,   ///< server → client: `error` holds an errno value
    payload = 5, ///< follows a call or reply flagged payload_in_memfd; carries the memfd
};

enum message_flags : std::uint32_t {
    flag_payload_in_memfd = 1, ///< the data is in a memfd sent in the next (payload) message
};

struct wire_header {
    message_type type = message_type::call;
    std::uint32_t flags = 0;
    std::uint32_t nfds = 0;  ///< descriptors carried by this very message
    std::uint64_t size = 0;  ///< data bytes (inline, or in the memfd)
    std::int32_t error = 0;  ///< errno for message_type::error
};

struct wire_hello {
    std::int32_t pid = 0;
    std::uint32_t attributes = 0;
    std::uint64_t uniquifier = 0;
};

/// Writes `h` into `out`.
void encode_header(const wire_header& h, std::span<std::byte, wire_header_size> out) noexcept;

/// Checks one received message of `message.size()` bytes that came with `fds_received`
/// descriptors. Errors: EPROTONOSUPPORT (right magic, other version; `peer_version` says which),
/// EPROTO (anything malformed). Pure: no allocation, no I/O.
std::error_code decode_header(std::span<const std::byte> message, std::size_t fds_received,
                              wire_header& out, std::uint16_t& peer_version) noexcept;

void encode_hello(const wire_hello& h, std::span<std::byte, wire_hello_size> out) noexcept;
std::error_code decode_hello(std::span<const std::byte> data, wire_hello& out) noexcept;

} // namespace portunus::uds
