// SPDX-License-Identifier: MPL-2.0
// metrics_connection: one client of the metrics listener, one request, then a close.
#pragma once

#include "portunusd/http/request_parser.hpp"
#include "portunusd/metrics/metrics_routes.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace portunusd {

class metrics_connection;

/// The open connections of one metrics listener, so that stopping it closes them all and the
/// listener can cap their number. Used on the listener's loop only.
class metrics_connection_set {
public:
    std::size_t size() const noexcept { return open_.size(); }
    void add(const std::shared_ptr<metrics_connection>& c);
    void remove(const metrics_connection* c) noexcept;
    /// Closes every connection still open; each removes itself.
    void close_all();

private:
    std::unordered_map<const metrics_connection*, std::weak_ptr<metrics_connection>> open_;
};

/// Reads one request head within request_timeout, answers it with metrics_response() (or a
/// refusal), writes the answer within write_timeout, then shuts its sending side and drains
/// what the client still sends for at most linger_timeout, so that a close with unread bytes
/// cannot reset the answer away. Every handler runs on the socket's loop; none lets an
/// exception out.
class metrics_connection : public std::enable_shared_from_this<metrics_connection> {
public:
    static constexpr std::size_t max_head = 8192; ///< request line and header section; past it: 431
    static constexpr std::size_t max_body = 1024; ///< a body (of a request answered 405); past it: 413
    static constexpr std::chrono::seconds request_timeout{5};
    static constexpr std::chrono::seconds write_timeout{10};
    static constexpr std::chrono::seconds linger_timeout{2};

    metrics_connection(boost::asio::ip::tcp::socket socket, std::shared_ptr<const metrics_sources> sources,
                       std::shared_ptr<metrics_connection_set> set);

    /// Joins the set and starts reading.
    void start();

    /// Cancels the deadline, closes the socket and leaves the set, once; `reason` goes to the
    /// debug log.
    void close(std::string_view reason) noexcept;

private:
    enum class phase : std::uint8_t { reading, writing, lingering, closed };

    void do_read();
    void on_read(const boost::system::error_code& ec, std::size_t n);
    void answer(std::string response);
    void on_write(const boost::system::error_code& ec);
    void do_linger();
    void arm(std::chrono::seconds after);

    boost::asio::ip::tcp::socket socket_;
    boost::asio::steady_timer deadline_;
    std::shared_ptr<const metrics_sources> sources_;
    std::shared_ptr<metrics_connection_set> set_;
    http::request_parser parser_;
    std::array<char, max_head + max_body + 1> buf_; ///< unconsumed bytes at the front
    std::size_t have_ = 0;                          ///< bytes in buf_
    std::size_t received_ = 0;                      ///< bytes of the request so far
    std::uint64_t generation_ = 0;                  ///< of the armed deadline
    std::string response_;
    phase phase_ = phase::reading;
};

} // namespace portunusd
