// SPDX-License-Identifier: MPL-2.0
// session_core: what every client connection has whatever its protocol: socket, deadline, slot, one close, one log format.
#pragma once

#include "portunusd/net/client_socket.hpp"
#include "portunusd/net/lazy_deadline.hpp"
#include "portunusd/session/connection_limit.hpp"
#include "portunusd/session/forward_state.hpp"
#include "portunusd/session/session_registry.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <variant>

namespace portunusd {

/// The fields only a tcp line has.
struct tcp_access_fields {
    std::uint64_t calls = 0;
};

/// The fields only an http line has; `path` is logged without its query.
struct http_access_fields {
    std::string_view method;
    std::string_view target;
    int status = 0;
};

/// One access-log line. Every protocol writes the same fields in the same order, its own fields
/// between `client=` and `in=`:
///   PROTO forward=NAME client=IP:PORT [own fields] in=N out=N result="TEXT" duration_ms=N.NNN
struct access_line {
    std::string_view proto;
    std::string_view forward;
    std::string_view client; ///< IP:PORT, IPv6 in brackets
    std::variant<std::monostate, tcp_access_fields, http_access_fields> own;
    std::uint64_t in = 0;  ///< bytes received from the client
    std::uint64_t out = 0; ///< bytes sent to it, answers the daemon made itself included
    std::string_view result;
    std::chrono::steady_clock::duration duration{};
};

/// The line's text, as the access log gets it (after its time stamp and "access ").
std::string access_line_text(const access_line& line);
/// Writes the line when the access log is on; with it off this costs one relaxed load.
void write_access_line(const access_line& line);

/// The part of a client connection that does not depend on its protocol: the socket, the
/// connection slot, registry membership, the session deadline, the read into the loop thread's
/// block, and the single close(). A protocol (tcp_session, http_session) derives from it and
/// supplies what happens when the connection starts, when bytes may be readable, when the
/// deadline passes and when it closes. Everything but drain() runs on the socket's loop.
///
/// On a forward with proxy_protocol the core first reads the balancer's PROXY header, within
/// header_timeout and from a trusted source only, and closes (writing the line itself) when it
/// is missing or bad; the protocol starts only after it, with client_ set to the client the
/// header names.
class session_core : public session_base, public std::enable_shared_from_this<session_core> {
public:
    /// The most one read takes: the size of the loop thread's block.
    static constexpr std::size_t read_block_size = 65536;

    session_core(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                 session_registry& registry);

    /// Registers the session and runs on_start() on its loop.
    void start();
    /// Closes at once if the protocol is idle(), else when it next checks draining_.
    void drain() final;
    /// The deadline set by arm_timer() passed: on_timeout() runs unless the session closed.
    void on_deadline();

protected:
    /// What one read brought: bytes (valid until the next read on this thread), or none with
    /// `error` 0 at the client's end of stream, EAGAIN when nothing was there, else errno.
    struct block_read {
        std::string_view bytes;
        int error = 0;
    };

    /// The connection is the protocol's: `first` holds bytes that arrived behind a PROXY
    /// header in the same read (valid during the call only), the start of the client's stream.
    virtual void on_start(std::string_view first) = 0;
    /// The socket may be readable (or the wait failed with `ec`).
    virtual void on_readable(const boost::system::error_code& ec) = 0;
    /// The deadline armed with `reason` passed.
    virtual void on_timeout(const char* reason) = 0;
    /// Called once, by close(), after the socket closed: the protocol's last access-log line.
    virtual void on_closed(std::string_view reason) = 0;
    /// Nothing is being called or written: drain() may close at once.
    [[nodiscard]] virtual bool idle() const noexcept = 0;

    template <typename Session>
    [[nodiscard]] std::shared_ptr<Session> self_as()
    {
        return std::static_pointer_cast<Session>(shared_from_this());
    }

    /// One deadline at a time; `reason` names it in close() and the log.
    void arm_timer(std::chrono::milliseconds after, const char* reason);
    /// Reads up to `room` bytes (at most read_block_size) without blocking. Reading into the
    /// thread's block and copying out what arrived means an idle connection holds no buffer,
    /// and a request costs neither a FIONREAD nor a zero-filled allocation of the maximum.
    /// A read that fills its room sets more_to_read_: bytes may be waiting that no new edge will
    /// announce.
    block_read read_block(std::size_t room);
    /// on_readable() runs once the socket may have become readable.
    void wait_readable();
    /// The single way to end: cancels the deadline, closes the socket, leaves the registry and
    /// lets the protocol write its line. Later calls do nothing.
    void close(std::string_view reason);
    /// The forward refused the connection's call (its queue is full): counts it, warns at a
    /// bounded rate and closes. `running` names what max_concurrency counts ("calls in
    /// flight", "programs running").
    void close_queue_full(std::string_view running);
    /// The forward's door call failed with `ec`: warns at a bounded rate and closes.
    void close_door_error(const std::error_code& ec);
    /// "read error: ..." (`what` "read") or "write error: ...": `message`, or OpenSSL's reason
    /// when the connection's TLS failed (the errno alone would say only "Protocol error").
    [[nodiscard]] std::string io_error(std::string_view what, std::string message) const;
    /// Bytes read before the protocol started: a PROXY header and what came behind it.
    [[nodiscard]] std::uint64_t bytes_before_start() const noexcept { return proxy_read_; }
    /// The line with this connection's protocol, forward and client filled in.
    void log_access(std::variant<std::monostate, tcp_access_fields, http_access_fields> own, std::uint64_t in,
                    std::uint64_t out, std::string_view result, std::chrono::steady_clock::time_point since) const;

    client_socket socket_;
    lazy_deadline deadline_;
    std::shared_ptr<forward_state> forward_;
    connection_slot slot_; ///< given back by the destructor, once the last handler let go
    session_registry& registry_;
    const boost::asio::ip::tcp::endpoint peer_; ///< the connection's own peer: the balancer, behind one
    boost::asio::ip::tcp::endpoint client_;     ///< the client: peer_, or what a PROXY header says
    boost::asio::ip::tcp::endpoint local_;
    std::string client_text_; ///< client_ as IP:PORT, made once for every line of the connection
    const std::chrono::steady_clock::time_point started_ = std::chrono::steady_clock::now();
    const char* timer_reason_ = "";
    bool more_to_read_ = false; ///< the last read filled its room: read again before waiting
    bool draining_ = false;
    bool closed_ = false;

private:
    /// Before on_start(): the PROXY header, when the forward asks for one.
    void begin();
    /// After the PROXY header (if any): the TLS handshake on a tls or https forward, then
    /// on_start(). `first` is what was read behind the header.
    void start_protocol(std::string_view first);
    void continue_handshake();
    /// A 400 in the clear for plain HTTP sent to an https port, as far as the socket takes it.
    void answer_plain_http();
    void read_proxy_header();
    void on_proxy_readable(const boost::system::error_code& ec);
    /// Takes `bytes` (all of the header received so far) as far as the parser can.
    void parse_proxy_header(std::string_view bytes);

    std::string proxy_in_; ///< a header that came in pieces; at most proxy::max_header_length
    std::uint64_t proxy_read_ = 0; ///< bytes read before the protocol started, for a refusal's line
    bool protocol_started_ = false;
    bool log_unstarted_ = true; ///< close() writes the line of a connection no protocol saw
    std::uint64_t core_out_ = 0; ///< bytes the core itself wrote before any protocol started
};

} // namespace portunusd
