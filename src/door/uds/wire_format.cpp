// SPDX-License-Identifier: MPL-2.0
// Encoding and validation of userland door messages.
#include "door/uds/wire_format.hpp"

#include <portunus/door_error.hpp>

#include <cstring>
#include <limits>

namespace portunus::uds {
namespace {

// Both ends are on one host, so native byte order is the wire order; memcpy keeps the reads
// alignment-safe whatever buffer the bytes landed in.
template <typename T>
void put(std::byte* at, T value) noexcept
{
    std::memcpy(at, &value, sizeof value);
}

template <typename T>
T get(const std::byte* at) noexcept
{
    T value;
    std::memcpy(&value, at, sizeof value);
    return value;
}

// Offsets of the fields inside the 32-byte header.
constexpr std::size_t off_magic = 0, off_version = 4, off_type = 6, off_flags = 8, off_nfds = 12,
                      off_size = 16, off_error = 24, off_reserved = 28;

} // namespace

void encode_header(const wire_header& h, std::span<std::byte, wire_header_size> out) noexcept
{
    std::byte* p = out.data();
    put<std::uint32_t>(p + off_magic, wire_magic);
    put<std::uint16_t>(p + off_version, wire_version);
    put<std::uint16_t>(p + off_type, static_cast<std::uint16_t>(h.type));
    put<std::uint32_t>(p + off_flags, h.flags);
    put<std::uint32_t>(p + off_nfds, h.nfds);
    put<std::uint64_t>(p + off_size, h.size);
    put<std::int32_t>(p + off_error, h.error);
    put<std::uint32_t>(p + off_reserved, 0);
}

std::error_code decode_header(std::span<const std::byte> message, std::size_t fds_received,
                              wire_header& out, std::uint16_t& peer_version) noexcept
{
    const auto malformed = make_door_error(EPROTO);
    peer_version = 0;
    if (message.size() < 8) return malformed;
    const std::byte* p = message.data();
    if (get<std::uint32_t>(p + off_magic) != wire_magic) return malformed;
    peer_version = get<std::uint16_t>(p + off_version);
    if (peer_version != wire_version) return make_door_error(EPROTONOSUPPORT);
    if (message.size() < wire_header_size) return malformed;

    const auto type = get<std::uint16_t>(p + off_type);
    if (type < static_cast<std::uint16_t>(message_type::hello) ||
        type > static_cast<std::uint16_t>(message_type::reply_batch))
        return malformed;
    out.type = static_cast<message_type>(type);
    out.flags = get<std::uint32_t>(p + off_flags);
    out.nfds = get<std::uint32_t>(p + off_nfds);
    out.size = get<std::uint64_t>(p + off_size);
    out.error = get<std::int32_t>(p + off_error);
    if (get<std::uint32_t>(p + off_reserved) != 0) return malformed;
    if ((out.flags & ~std::uint32_t{flag_payload_in_memfd}) != 0) return malformed;
    if (out.nfds > wire_max_fds || out.nfds != fds_received) return malformed;
    // No file, and so no memfd, can hold more than off_t's maximum; refusing such sizes here also
    // keeps every size check below free of wrap-around.
    if (out.size > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return malformed;

    const std::size_t body = message.size() - wire_header_size;
    const bool in_memfd = (out.flags & flag_payload_in_memfd) != 0;
    switch (out.type) {
    case message_type::hello:
        if (out.flags != 0 || out.nfds != 0 || body != wire_hello_size || out.size != body || out.error != 0)
            return malformed;
        break;
    case message_type::call:
    case message_type::reply:
        if (in_memfd) {
            // Only payloads that could not travel inline may use a memfd, which keeps one
            // encoding per size and the receiver's checks simple.
            if (body != 0 || out.size <= wire_inline_max) return malformed;
        } else if (out.size != body || body > wire_inline_max) {
            return malformed;
        }
        if (out.error != 0) return malformed;
        break;
    case message_type::error:
        if (out.flags != 0 || out.nfds != 0 || body != 0 || out.size != 0 || out.error <= 0) return malformed;
        break;
    case message_type::payload:
        // The smallest memfd payload is that of a batch reply whose entry header tipped it over.
        if (out.flags != 0 || out.nfds != 1 || body != 0 || out.size <= wire_inline_max - batch_reply_entry_header ||
            out.error != 0)
            return malformed;
        break;
    case message_type::call_batch:
    case message_type::reply_batch:
        if (out.nfds != 0 || out.error != 0) return malformed;
        if (in_memfd) {
            // One large reply: its entry header inline, its bytes in the memfd.
            if (out.type != message_type::reply_batch || body != batch_reply_entry_header ||
                out.size <= wire_inline_max - batch_reply_entry_header)
                return malformed;
        } else if (out.size != body || body > wire_inline_max || body == 0) {
            return malformed;
        }
        break;
    }
    return {};
}

void append_batch_call(std::string& body, std::uint32_t tag, std::string_view data)
{
    const std::size_t at = body.size();
    body.resize(at + batch_call_entry_header);
    auto* p = reinterpret_cast<std::byte*>(body.data() + at);
    put<std::uint32_t>(p, tag);
    put<std::uint32_t>(p + 4, static_cast<std::uint32_t>(data.size()));
    body.append(data);
}

void append_batch_reply(std::string& body, std::uint32_t tag, std::int32_t error, std::string_view data)
{
    const std::size_t at = body.size();
    body.resize(at + batch_reply_entry_header);
    auto* p = reinterpret_cast<std::byte*>(body.data() + at);
    put<std::uint32_t>(p, tag);
    put<std::int32_t>(p + 4, error);
    put<std::uint32_t>(p + 8, static_cast<std::uint32_t>(data.size()));
    body.append(data);
}

std::error_code decode_batch(message_type type, std::string_view body, std::vector<batch_entry>& out)
{
    out.clear();
    const auto malformed = make_door_error(EPROTO);
    const bool replies = type == message_type::reply_batch;
    if (!replies && type != message_type::call_batch) return malformed;
    const std::size_t head = replies ? batch_reply_entry_header : batch_call_entry_header;
    const auto* p = reinterpret_cast<const std::byte*>(body.data());
    std::size_t at = 0;
    while (at < body.size()) {
        if (body.size() - at < head) {
            out.clear();
            return malformed;
        }
        batch_entry e;
        e.tag = get<std::uint32_t>(p + at);
        e.error = replies ? get<std::int32_t>(p + at + 4) : 0;
        const std::size_t length = get<std::uint32_t>(p + at + head - 4);
        at += head;
        if (length > body.size() - at || e.error < 0 || (e.error != 0 && length != 0)) {
            out.clear();
            return malformed;
        }
        e.data = body.substr(at, length);
        at += length;
        out.push_back(e);
    }
    if (out.empty()) return malformed;
    return {};
}

void encode_hello(const wire_hello& h, std::span<std::byte, wire_hello_size> out) noexcept
{
    put<std::int32_t>(out.data(), h.pid);
    put<std::uint32_t>(out.data() + 4, h.attributes);
    put<std::uint64_t>(out.data() + 8, h.uniquifier);
}

std::error_code decode_hello(std::span<const std::byte> data, wire_hello& out) noexcept
{
    if (data.size() != wire_hello_size) return make_door_error(EPROTO);
    out.pid = get<std::int32_t>(data.data());
    out.attributes = get<std::uint32_t>(data.data() + 4);
    out.uniquifier = get<std::uint64_t>(data.data() + 8);
    if (out.pid <= 0) return make_door_error(EPROTO);
    return {};
}

} // namespace portunus::uds
