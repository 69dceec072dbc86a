// SPDX-License-Identifier: MPL-2.0
// The userland door wire format: a fixed, versioned header; pure encode and decode, no I/O.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

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
    call_batch = 6,  ///< client → server: several tagged calls (batch_call_entry each), inline only
    reply_batch = 7, ///< server → client: tagged replies or errors to calls of a batch
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

/// Set in the hello's attributes by a server that takes call_batch messages. Not a door
/// attribute: clients keep it out of door_info.
inline constexpr std::uint32_t wire_attr_batches = 0x80000000u;

/// Entry layouts inside a batch body, back to back, at least one entry:
///   call_batch:  u32 tag, u32 length, `length` bytes
///   reply_batch: u32 tag, i32 error (0: a reply; an errno value: the call failed), u32 length,
///                `length` bytes (none with an error)
/// A reply_batch flagged payload_in_memfd carries exactly one entry header (no bytes) whose
/// length equals the header's size: that reply's bytes are in the memfd of the next message.
inline constexpr std::size_t batch_call_entry_header = 8;
inline constexpr std::size_t batch_reply_entry_header = 12;

struct batch_entry {
    std::uint32_t tag = 0;
    std::int32_t error = 0;
    std::string_view data;
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

/// Appends one entry to a batch body (see the layouts above).
void append_batch_call(std::string& body, std::uint32_t tag, std::string_view data);
void append_batch_reply(std::string& body, std::uint32_t tag, std::int32_t error, std::string_view data);

/// Splits the body of a call_batch or reply_batch message into `out` (cleared first; views into
/// `body`). EPROTO for anything malformed: no entry, a cut entry header, a length past the end,
/// a negative error or an error with bytes, bytes left over. Pure: checks the whole body before
/// it returns any entry.
std::error_code decode_batch(message_type type, std::string_view body, std::vector<batch_entry>& out);
std::error_code decode_hello(std::span<const std::byte> data, wire_hello& out) noexcept;

} // namespace portunus::uds
