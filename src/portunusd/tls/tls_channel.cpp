// SPDX-License-Identifier: MPL-2.0
// One connection's TLS: handshake, reads and writes with recv/send semantics on a non-blocking socket.
#include "portunusd/tls/tls_channel.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

namespace portunusd::tls {
namespace {

// One call's worth at most: OpenSSL counts in int.
constexpr std::size_t max_chunk = 1U << 30;

int chunk(std::size_t n) noexcept
{
    return static_cast<int>(std::min(n, max_chunk));
}

// The first error OpenSSL queued for the call that failed (the most specific one, such as
// "wrong version number"); the queue is emptied.
std::string queued_reason(unsigned long* code = nullptr)
{
    const unsigned long first = ERR_get_error();
    ERR_clear_error();
    if (code) *code = first;
    if (first == 0) return {};
    if (const char* reason = ERR_reason_error_string(first)) return reason;
    char text[256];
    ERR_error_string_n(first, text, sizeof text);
    return text;
}

} // namespace

channel::channel(const context& ctx, int fd, std::string_view first) : fd_(fd)
{
    ERR_clear_error();
    ssl_ = SSL_new(ctx.native());
    if (!ssl_ || SSL_set_fd(ssl_, fd) != 1) {
        broken_ = true;
        failure_ = "cannot start TLS: " + queued_reason();
        return;
    }
    SSL_set_accept_state(ssl_);
    if (first.empty()) return;
    heard_ = true;
    // The bytes read behind a PROXY header come first; an empty memory BIO then asks for a
    // retry (eof_return -1), which is when the socket takes over (switch_to_socket).
    BIO* prefix = BIO_new(BIO_s_mem());
    if (!prefix || BIO_write(prefix, first.data(), chunk(first.size())) != static_cast<int>(first.size())) {
        BIO_free(prefix);
        broken_ = true;
        failure_ = "cannot start TLS: out of memory";
        return;
    }
    BIO_set_mem_eof_return(prefix, -1);
    SSL_set0_rbio(ssl_, prefix);
    prefix_ = true;
}

channel::~channel()
{
    SSL_free(ssl_);
}

bool channel::switch_to_socket()
{
    if (!prefix_ || BIO_ctrl_pending(SSL_get_rbio(ssl_)) > 0) return false;
    BIO* socket = BIO_new_socket(fd_, BIO_NOCLOSE);
    if (!socket) return false;
    SSL_set0_rbio(ssl_, socket); // frees the memory BIO
    prefix_ = false;
    return true;
}

int channel::classify(int result, bool reading, bool& want_other)
{
    const int saved = errno;
    switch (SSL_get_error(ssl_, result)) {
    case SSL_ERROR_WANT_READ: want_other = !reading; return EAGAIN;
    case SSL_ERROR_WANT_WRITE: want_other = reading; return EAGAIN;
    case SSL_ERROR_ZERO_RETURN: // close_notify, or an end of stream taken as one
        broken_ = true;
        failure_ = "the client closed the connection";
        return ECONNRESET;
    case SSL_ERROR_SYSCALL: {
        broken_ = true;
        std::string reason = queued_reason();
        const int e = saved != 0 && saved != EAGAIN ? saved : ECONNRESET;
        failure_ = !reason.empty() ? reason : result == 0 ? "the client closed the connection" : std::strerror(e);
        return e;
    }
    default: {
        broken_ = true;
        unsigned long code = 0;
        failure_ = queued_reason(&code);
        plain_http_ = ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_HTTP_REQUEST;
        if (failure_.empty()) failure_ = "TLS error";
        return EPROTO;
    }
    }
}

channel::step channel::handshake()
{
    if (broken_) return step::failed;
    for (;;) {
        ERR_clear_error();
        errno = 0;
        const int k = SSL_do_handshake(ssl_);
        if (k == 1) return step::done;
        if (SSL_get_error(ssl_, k) == SSL_ERROR_WANT_READ && switch_to_socket()) continue;
        bool other = false;
        if (classify(k, true, other) == EAGAIN) return other ? step::want_write : step::want_read;
        return step::failed;
    }
}

ssize_t channel::receive(char* data, std::size_t n)
{
    read_wants_write_ = false;
    if (end_pending_) return 0;
    if (broken_) {
        errno = EPROTO;
        return -1;
    }
    std::size_t got = 0;
    int error = 0;
    bool end = false;
    // On until the room is full or the socket is empty: a short read must mean that no more is
    // waiting, since no new readiness edge would announce bytes already inside OpenSSL.
    while (got < n) {
        ERR_clear_error();
        errno = 0;
        const int k = SSL_read(ssl_, data + got, chunk(n - got));
        if (k > 0) {
            got += static_cast<std::size_t>(k);
            continue;
        }
        const int kind = SSL_get_error(ssl_, k);
        if (kind == SSL_ERROR_ZERO_RETURN) {
            end = true;
            break;
        }
        if (kind == SSL_ERROR_WANT_READ && switch_to_socket()) continue;
        bool other = false;
        error = classify(k, true, other);
        if (error == EAGAIN) read_wants_write_ = other;
        break;
    }
    if (got > 0) {
        // The end (a close_notify in the same read as the data) is said on the next call.
        end_pending_ = end;
        return static_cast<ssize_t>(got);
    }
    if (end) return 0;
    errno = error;
    return -1;
}

std::size_t channel::send_some(const char* data, std::size_t n, int& error)
{
    error = 0;
    write_wants_read_ = false;
    if (broken_) {
        error = EPIPE;
        return 0;
    }
    std::size_t sent = 0;
    while (sent < n) {
        ERR_clear_error();
        errno = 0;
        const int k = SSL_write(ssl_, data + sent, chunk(n - sent));
        if (k > 0) {
            sent += static_cast<std::size_t>(k);
            continue;
        }
        bool other = false;
        const int e = classify(k, false, other);
        if (e == EAGAIN)
            write_wants_read_ = other;
        else
            error = e;
        break;
    }
    return sent;
}

void channel::close_notify()
{
    if (broken_ || !ssl_ || !SSL_is_init_finished(ssl_)) return;
    ERR_clear_error();
    SSL_shutdown(ssl_); // one try: a socket that cannot take it now does not get a wait
    ERR_clear_error();
}

bool channel::heard_from_client() const noexcept
{
    // A channel that could not start failed on this side: never taken for a probe.
    if (heard_ || !ssl_) return true;
    // The socket BIO counts what OpenSSL read through it (the prefix's memory BIO is gone
    // once used up, but then heard_ is set).
    const BIO* rbio = ssl_ ? SSL_get_rbio(ssl_) : nullptr;
    return rbio && BIO_number_read(const_cast<BIO*>(rbio)) > 0;
}

const char* channel::version() const noexcept
{
    return ssl_ ? SSL_get_version(ssl_) : "";
}

} // namespace portunusd::tls
