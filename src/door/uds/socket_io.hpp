// SPDX-License-Identifier: MPL-2.0
// Sending and receiving userland door messages over AF_UNIX SOCK_SEQPACKET sockets.
#pragma once

#include "door/uds/wire_format.hpp"

#include <portunus/door.hpp>

#include <span>
#include <string_view>
#include <system_error>
#include <vector>

namespace portunus::uds {

/// One received message. `data` points into the receive buffer (valid until it is reused) or
/// into `mapped`, a read-only mapping of a sealed memfd.
struct received_message {
    wire_header header;
    std::string_view data;
    std::string_view inline_body; ///< the bytes after the header in the first socket message
    door_buffer mapped;
    std::vector<unique_fd> fds;
};

/// A per-thread receive buffer that holds one header plus the largest inline payload.
std::span<std::byte> thread_receive_buffer();
/// Hands the current thread's receive buffer (a new char[] block) to the caller, so that a large
/// inline reply can be returned without a copy; the next thread_receive_buffer() makes another.
char* take_thread_receive_buffer() noexcept;

/// Sends a call or reply: inline when small, otherwise through a sealed memfd in a second
/// message. `fds` are sent as they are; the caller keeps ownership and closes them afterwards.
/// Errors: the errno of sendmsg (EPIPE, ECONNRESET, EAGAIN on a send timeout ...), or of the memfd.
std::error_code send_message(int sock, message_type type, std::string_view data, std::span<const int> fds);
/// The same with the data in pieces (at most door_client::door_max_pieces), sent as one.
std::error_code send_message(int sock, message_type type, std::span<const std::string_view> pieces,
                             std::span<const int> fds);
std::error_code send_error(int sock, int errno_value);
std::error_code send_hello(int sock, const wire_hello& hello);

/// Sends the answer to one call of a batch: a reply_batch with one entry, its bytes inline when
/// they fit, otherwise in a sealed memfd in a second message. `error` non-zero: a failed call.
std::error_code send_batch_reply(int sock, std::uint32_t tag, std::int32_t error, std::string_view data);

/// The entries of a received call_batch or reply_batch (views into `m`); EPROTO if malformed.
std::error_code batch_entries(const received_message& m, std::vector<batch_entry>& out);

/// Receives one logical message (two socket messages when the payload is in a memfd).
/// `flags` go to the first recvmsg (e.g. MSG_DONTWAIT). Errors: ECONNRESET when the peer closed,
/// EPROTO / EPROTONOSUPPORT for a bad message, E2BIG when descriptors were cut off, or the errno
/// of recvmsg. Descriptors received with a bad message are closed.
std::error_code receive_message(int sock, std::span<std::byte> buffer, received_message& out, int flags = 0);

/// Creates a memfd holding `data`, sealed against any change. Linux only.
unique_fd make_sealed_memfd(std::string_view data, std::error_code& ec);
unique_fd make_sealed_memfd(std::span<const std::string_view> pieces, std::error_code& ec);

/// Maps a received memfd read-only, after checking its seals and size (EPROTO otherwise), so that
/// the sender can no longer change what the receiver has validated.
door_buffer map_sealed_memfd(int fd, std::size_t size, std::error_code& ec);

} // namespace portunus::uds
