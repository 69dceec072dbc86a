// SPDX-License-Identifier: MPL-2.0
// http_session: one client connection of an http forward: parse, route, call, relay, repeat.
#pragma once

#include "portunusd/net/client_socket.hpp"
#include "portunusd/session/connection_limit.hpp"
#include "portunusd/session/forward_state.hpp"
#include "portunusd/http/request_parser.hpp"
#include "portunusd/net/lazy_deadline.hpp"
#include "portunusd/session/tcp_session.hpp"

#include <boost/asio.hpp>

#include <array>
#include <chrono>
#include <optional>
#include <memory>
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
class http_session : public session_base, public std::enable_shared_from_this<http_session> {
public:
    http_session(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                 session_registry& registry);

    void start();
    void drain() override;
    /// The deadline set by arm_timer() passed.
    void on_deadline();

private:
    void do_read();
    /// While a request is answered, reads the next one's bytes up to read_ahead_limit_ only: a
    /// client that pipelines far ahead waits in TCP flow control, not in the daemon's memory.
    void read_ahead();
    [[nodiscard]] std::size_t buffered() const noexcept { return in_.size() - in_start_; }
    void on_readable(const boost::system::error_code& ec);
    void on_read(const boost::system::error_code& ec, const char* data, std::size_t n);
    const std::array<http::header_field, 3>& forwarded_fields();
    void process();
    void dispatch(http::request request);
    void on_reply(http::request request, std::size_t gate, call_outcome outcome);
    void respond_local(int status, std::string_view extra_headers, bool close_after);
    void write(std::string bytes, bool close_after);
    using send_done = std::function<void(const boost::system::error_code&, std::size_t)>;
    /// Sends data[sent, n) as the socket takes it; `done` runs on the loop, never inside.
    /// `data` must stay valid until then.
    void send_bytes(const char* data, std::size_t n, std::size_t sent, send_done done);
    void on_write(const boost::system::error_code& ec, std::size_t n);
    void arm_timer(std::chrono::milliseconds after, const char* reason);
    void close(std::string_view reason);
    void log_request(int status, std::size_t bytes_out, std::string_view note);

    client_socket socket_;
    lazy_deadline deadline_;
    std::shared_ptr<forward_state> forward_;
    connection_slot slot_;
    session_registry& registry_;
    http::request_parser parser_;
    /// Received bytes; those before in_start_ are consumed. A request taken from the front
    /// moves in_start_ instead of the rest of a pipeline, which moves only when a read appends.
    std::string in_;
    std::size_t in_start_ = 0;
    const std::size_t read_ahead_limit_;
    std::string out_;      ///< the response being written
    const boost::asio::ip::tcp::endpoint peer_;
    boost::asio::ip::tcp::endpoint local_;
    std::string peer_text_;
    std::optional<std::array<http::header_field, 3>> forwarded_; ///< computed for the first request
    std::string method_, target_; ///< of the request being answered, for the access log
    int version_minor_ = 1;
    bool continue_writing_ = false; ///< the interim 100 response is being written
    std::vector<std::pair<std::string, bool>> pending_; ///< a response waiting for that write
    std::chrono::steady_clock::time_point request_started_;
    std::size_t request_bytes_ = 0;
    std::size_t served_ = 0;
    const char* timer_reason_ = "";
    bool reading_ = false;
    bool more_to_read_ = false; ///< the last read filled its block: read again before waiting
    bool in_request_ = false;  ///< bytes of a request are expected or arriving: header_timeout runs
    bool peer_done_ = false;   ///< the client shut down its side while a request was answered
    bool busy_ = false;        ///< a request is being answered (call or write in flight)
    bool sent_continue_ = false;
    bool close_after_write_ = false;
    bool draining_ = false;
    bool closed_ = false;
};

} // namespace portunusd
