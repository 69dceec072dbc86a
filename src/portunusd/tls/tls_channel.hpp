// SPDX-License-Identifier: MPL-2.0
// tls_channel: one connection's TLS state over a non-blocking socket it does not own.
#pragma once

#include "portunusd/tls/tls_context.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <sys/types.h>

struct ssl_st;

namespace portunusd::tls {

/// Reads and writes one connection through TLS with the contract of recv(2) and send(2) on a
/// non-blocking socket, so the protocols above cannot tell it from a plain socket. OpenSSL reads
/// and writes the socket itself; one read or write may need the socket to become ready the
/// other way (a handshake message, a key update), which wait_for() reports. One thread at a time.
class channel {
public:
    enum class step { done, want_read, want_write, failed };

    /// `fd` stays the caller's; `first` is what was read from it before TLS began (bytes behind
    /// a PROXY header): OpenSSL reads those before the socket.
    channel(const context& ctx, int fd, std::string_view first);
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    ~channel();

    /// Takes the handshake as far as the socket allows.
    step handshake();
    /// Like recv(2) with MSG_DONTWAIT: up to `n` bytes of plaintext (as many as are there, so
    /// that a short read means the socket had no more), 0 at the client's end of stream, -1
    /// with errno EAGAIN when nothing is there yet, or another errno (EPROTO for a TLS error).
    ssize_t receive(char* data, std::size_t n);
    /// Like send(2) with MSG_DONTWAIT: how many of the `n` bytes were taken, stopping at a full
    /// socket (`error` 0) or a failure (`error` set). After a short count the caller passes
    /// the bytes it was left with again, as OpenSSL requires of a write that must be retried.
    std::size_t send_some(const char* data, std::size_t n, int& error);
    /// Sends close_notify if the socket takes it now; never waits. Once, at an orderly close.
    void close_notify();

    /// After an EAGAIN: true when the socket must become writable (not readable) for a read to
    /// go on, or readable for a write; false when it is the obvious direction.
    [[nodiscard]] bool read_wants_write() const noexcept { return read_wants_write_; }
    [[nodiscard]] bool write_wants_read() const noexcept { return write_wants_read_; }
    /// The stream ended (or failed) behind the plaintext receive() returned last: the next
    /// receive() says so at once, and no readiness edge will come for it.
    [[nodiscard]] bool done_reading() const noexcept { return end_pending_ || broken_; }
    /// Whether any byte came from the client: a connection closed before its first byte
    /// is a probe, not a failed handshake.
    [[nodiscard]] bool heard_from_client() const noexcept;
    /// The handshake failed because the client spoke plain HTTP (OpenSSL's "http request").
    [[nodiscard]] bool plain_http() const noexcept { return plain_http_; }
    /// Why the handshake or the last read or write failed.
    [[nodiscard]] const std::string& failure() const noexcept { return failure_; }
    /// The negotiated version ("TLSv1.3"), once the handshake is done.
    [[nodiscard]] const char* version() const noexcept;

private:
    // OpenSSL's verdict on a failed call: EAGAIN (setting `want_other` when the socket must
    // become ready the other way), or an errno with failure_ set.
    int classify(int result, bool reading, bool& want_other);
    // The bytes of `first` are used up: OpenSSL reads the socket from now on.
    bool switch_to_socket();

    ssl_st* ssl_ = nullptr;
    int fd_;
    bool prefix_ = false; ///< reading `first` from memory still
    bool broken_ = false; ///< a fatal TLS error: no more reads, writes or close_notify
    bool end_pending_ = false; ///< the stream's end came in behind returned plaintext
    bool heard_ = false;       ///< `first` had bytes
    bool plain_http_ = false;
    bool read_wants_write_ = false;
    bool write_wants_read_ = false;
    std::string failure_;
};

} // namespace portunusd::tls
