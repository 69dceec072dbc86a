// SPDX-License-Identifier: MPL-2.0
// http_session: one client connection of an http forward: parse, route, call, relay, repeat.
#pragma once

#include "portunusd/http/request_parser.hpp"
#include "portunusd/session/session_core.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace portunusd {

/// HTTP/1.1 with keep-alive and pipelining: requests are answered strictly in order, one door
/// call at a time per connection; bytes of the next request wait in the buffer meanwhile, and
/// past a bound in the client's socket.
/// Everything runs on the connection's event loop, which one thread runs. The socket is a
/// client_socket, watched by the loop's edge_poller: a kept-alive request costs its read and
/// its write, and no re-arm.
///
/// Each request gets one access-log line, written by end_exchange() once its response has been
/// written, or by close() when the connection ends before that; a connection that ends between
/// requests writes none.
class http_session final : public session_core {
public:
    http_session(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                 session_registry& registry);

private:
    /// Where the connection is in its request-response cycle, and so which deadline runs.
    /// Orthogonal to it, and flags of their own: a read may be outstanding in any phase
    /// (reading_: the next request is read ahead while one is answered), the client may have
    /// shut down its side (peer_done_), the interim 100 may be in flight (continue_writing_),
    /// and the response being written may be the connection's last (close_after_write_).
    enum class phase {
        idle,      ///< between requests on a kept-alive connection: idle_timeout runs
        head,      ///< a request's head is expected or arriving: header_timeout runs
        body,      ///< its head was accepted (and 100 Continue sent, if asked): read_timeout per read
        answering, ///< a door call or the response's write is in flight
    };

    /// The request being answered: what its line and its response need.
    struct exchange {
        std::string method, target;
        int version_minor = 1;
        int status = 0;     ///< 0 until an answer was chosen
        std::string result; ///< "door", or why the daemon answered itself
        std::uint64_t in = 0, out = 0;
        std::chrono::steady_clock::time_point started;
    };

    void on_start(std::string_view first) override;
    void on_readable(const boost::system::error_code& ec) override;
    void on_timeout(const char* reason) override;
    void on_closed(std::string_view reason) override;
    [[nodiscard]] bool idle() const noexcept override { return phase_ != phase::answering; }

    void do_read();
    /// While a request is answered, reads the next one's bytes up to read_ahead_limit_ only: a
    /// client that pipelines far ahead waits in TCP flow control, not in the daemon's memory.
    void read_ahead();
    [[nodiscard]] std::size_t buffered() const noexcept { return in_.size() - in_start_; }
    /// Bytes of a request have arrived that no answer has taken yet.
    [[nodiscard]] bool request_started() const noexcept { return request_in_ + buffered() > 0; }
    void on_read(const boost::system::error_code& ec, std::string_view bytes);
    const std::array<http::header_field, 3>& forwarded_fields();
    void process();
    /// Sends 100 Continue, or refuses a request that no route would take; false when refused.
    bool send_continue();
    /// The request as far as the parser got, for an answer that is not the door's.
    void take_partial_request();
    void dispatch(http::request request);
    /// Submits one call to `gate`, one of `target`'s instances, as its `tries`-th try;
    /// `retry_head` is kept for a try on another instance (see on_reply).
    bool submit_call(const std::shared_ptr<http::request>& request, std::size_t target, std::size_t gate,
                     std::string head, std::string body, std::optional<std::string> retry_head, unsigned tries);
    void on_reply(const std::shared_ptr<http::request>& request, std::size_t target, std::size_t gate,
                  std::optional<std::string> retry_head, unsigned tries, call_outcome outcome);
    /// Answers with a response the daemon makes itself.
    void refuse(int status, std::string_view result, std::string_view extra_headers, bool close_after);
    void write(std::string bytes, bool close_after);
    using send_done = std::function<void(const boost::system::error_code&, std::size_t)>;
    /// Sends data[sent, n) as the socket takes it; `done` runs on the loop, never inside.
    /// `data` must stay valid until then.
    void send_bytes(const char* data, std::size_t n, std::size_t sent, send_done done);
    void on_write(const boost::system::error_code& ec, std::size_t n);
    /// Writes the answered request's line, once, and forgets the request.
    void end_exchange();

    http::request_parser parser_;
    /// Received bytes; those before in_start_ are consumed. A request taken from the front
    /// moves in_start_ instead of the rest of a pipeline, which moves only when a read appends.
    std::string in_;
    std::size_t in_start_ = 0;
    std::uint64_t request_in_ = 0; ///< bytes the parser took of the request being read
    const std::size_t read_ahead_limit_;
    std::string out_; ///< the response being written
    std::optional<std::array<http::header_field, 3>> forwarded_; ///< computed for the first request
    exchange ex_;
    std::vector<std::pair<std::string, bool>> pending_; ///< a response waiting for the 100's write
    std::size_t served_ = 0;
    phase phase_ = phase::head;
    bool reading_ = false;
    bool peer_done_ = false; ///< the client shut down its side while a request was answered
    bool continue_writing_ = false;
    bool close_after_write_ = false;
};

} // namespace portunusd
