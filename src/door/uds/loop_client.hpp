// SPDX-License-Identifier: MPL-2.0
// The event-loop interface of userland doors: non-blocking calls and batches on connections a loop owns.
#pragma once

// Internal to the project (the daemon's event loops and the door tests use it); not installed,
// so the public door API stays the same on every backend.
#include <portunus/door.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>

namespace portunus {

/// A door handle seen from an event loop (userland doors only). The loop keeps connections of its
/// own, non-blocking and registered with it for their whole life, so that a call costs one send,
/// one wait for readability and one receive, and no thread hand-off. A connection is a
/// `unique_fd`, which owns its descriptor; one call at a time per connection, and whoever holds
/// the connection may use it. Copies share the door handle, as door_client copies do.
/// - take_connection() hands over an idle connection of the handle's pool, now non-blocking; an
///   empty fd when none is idle (make a blocking door_client::call() then, which opens more). The
///   connection reaches the handle's door instance only.
/// - begin_call() sends a call on it without blocking; EBADF when the door is gone.
/// - end_call() takes the reply without blocking; EAGAIN when it is not there yet (wait again).
///   Other errors as for door_client::call(); after any of them the connection is finished.
/// - begin_connection() opens another one without blocking: non-blocking and connected, but usable
///   only once finish_connection() has taken the server's greeting, which it does without
///   blocking once the connection is readable (EAGAIN: not yet). EAGAIN from begin_connection()
///   means the server's accept queue is full; EBADF from either, that the path no longer leads to
///   the handle's door instance.
///
/// Batches: several small calls in one message on such a connection, each with a tag the caller
/// chooses, answered one by one as the server's threads finish them, so that concurrent calls
/// share one send and the server one receive.
/// - accepts_batches(): whether the door's server takes batches.
/// - append_batch_call() adds a call of at most batch_call_max bytes to a batch body; a body holds
///   at most batch_body_max bytes.
/// - send_batch() sends a body without blocking; EAGAIN when the socket is full (wait for
///   writability, then send the same body again), EBADF when the door is gone (no call of the
///   body reached it).
/// - receive_batch_replies() takes every answer that has arrived, without blocking, and calls
///   `each(tag, error, bytes)` for each (error EBADF: revoked before that call ran; EINTR: its
///   handler failed); `bytes` are valid during the call only. It stops with EAGAIN once nothing
///   is left. Any other error finishes the connection, and every call on it that has no answer
///   yet is lost: EINTR when the server died or closed it.
/// A connection that has carried a batch carries only batches.
class loop_client {
public:
    loop_client() = default;
    explicit loop_client(door_client door) noexcept : door_(std::move(door)) {}

    [[nodiscard]] const door_client& door() const noexcept { return door_; }
    [[nodiscard]] bool is_open() const noexcept { return door_.is_open(); }

    [[nodiscard]] unique_fd take_connection() const;
    unique_fd begin_connection(std::error_code& ec) const;
    void finish_connection(const unique_fd& connection, std::error_code& ec) const;
    void begin_call(const unique_fd& connection, std::string_view data, std::error_code& ec) const;
    void begin_call(const unique_fd& connection, std::span<const std::string_view> pieces, std::error_code& ec) const;
    door_result end_call(const unique_fd& connection, std::error_code& ec) const;

    static constexpr std::size_t batch_call_max = 64 * 1024;
    static constexpr std::size_t batch_body_max = 128 * 1024;
    static constexpr std::size_t batch_call_overhead = 8; ///< bytes a call adds to a body beside its own
    using batch_reply_handler = std::function<void(std::uint32_t tag, std::error_code error, std::string_view bytes)>;
    [[nodiscard]] bool accepts_batches() const noexcept;
    static void append_batch_call(std::string& body, std::uint32_t tag, std::string_view data);
    void send_batch(const unique_fd& connection, std::string_view body, std::error_code& ec) const;
    void receive_batch_replies(const unique_fd& connection, const batch_reply_handler& each, std::error_code& ec) const;

private:
    door_client::impl* impl() const noexcept { return door_.impl_.get(); }
    door_client door_;
};

} // namespace portunus
