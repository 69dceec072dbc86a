// SPDX-License-Identifier: MPL-2.0
// Accepting metrics clients on the main loop, capped, and closing them all on stop.
#include "portunusd/metrics/metrics_listener.hpp"

#include "portunusd/metrics/metrics_connection.hpp"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/v6_only.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <exception>

namespace portunusd {

namespace asio = boost::asio;

/// The listening socket and what its pending handlers share; lives as long as one of them.
class metrics_listener::acceptor : public std::enable_shared_from_this<acceptor> {
public:
    acceptor(asio::io_context& io, std::shared_ptr<const metrics_sources> sources)
        : socket_(io), retry_(io), sources_(std::move(sources)), open_(std::make_shared<metrics_connection_set>())
    {
    }

    std::string bind(const listen_address& where)
    {
        boost::system::error_code ec;
        const auto address = where.any ? asio::ip::address(asio::ip::address_v6::any())
                                       : asio::ip::make_address(where.host, ec);
        const asio::ip::tcp::endpoint endpoint(address, where.port);
        if (!ec) socket_.open(endpoint.protocol(), ec);
        // "*" takes IPv4 as well through the IPv6 wildcard; an explicit "::" stays IPv6 only.
        if (!ec && address.is_v6()) socket_.set_option(asio::ip::v6_only(!where.any), ec);
        if (!ec) socket_.set_option(asio::socket_base::reuse_address(true), ec);
        if (!ec && ::fcntl(socket_.native_handle(), F_SETFD, FD_CLOEXEC) != 0)
            ec.assign(errno, boost::system::system_category());
        if (!ec) socket_.bind(endpoint, ec);
        if (!ec) socket_.listen(asio::socket_base::max_listen_connections, ec);
        // accept4() runs after a readiness wait, which may be stale.
        if (!ec) socket_.non_blocking(true, ec);
        if (ec) {
            boost::system::error_code ignored;
            socket_.close(ignored);
            return "cannot bind metrics_listen " + where.text + ": " + ec.message();
        }
        local_ = socket_.local_endpoint(ec);
        return {};
    }

    asio::ip::tcp::endpoint local_endpoint() const { return local_; }

    std::string endpoint_text() const
    {
        const auto a = local_.address();
        return (a.is_v6() ? "[" + a.to_string() + "]" : a.to_string()) + ":" + std::to_string(local_.port());
    }

    void do_accept()
    {
        if (stopped_) return;
        socket_.async_wait(asio::ip::tcp::acceptor::wait_read,
                           [self = shared_from_this()](const boost::system::error_code& ec) { self->on_readable(ec); });
    }

    void stop()
    {
        stopped_ = true;
        boost::system::error_code ignored;
        retry_.cancel();
        socket_.close(ignored);
        open_->close_all();
    }

private:
    void on_readable(const boost::system::error_code& ec)
    {
        if (stopped_ || ec == asio::error::operation_aborted) return;
        try {
            if (ec) return pause(ec.message());
            // A burst is taken in one wake-up, bounded so that the loop's other work is not held up.
            for (int burst = 0; burst < 64; ++burst) {
                const int fd = ::accept4(socket_.native_handle(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                    if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO) continue;
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    // EMFILE/ENFILE, ENOBUFS, ENOMEM: back off rather than spin on a full table.
                    return pause(std::strerror(errno));
                }
                admit(fd);
            }
            do_accept();
        } catch (const std::exception& e) {
            // Memory ran out: a socket accepted on the way was closed by its owner's unwinding.
            try {
                pause(e.what());
            } catch (const std::exception&) {
                stopped_ = true;
            }
        }
    }

    void admit(int fd)
    {
        if (open_->size() >= max_connections) {
            // Closed at once: a flood of scrapers must not grow what the daemon holds.
            ::close(fd);
            ++refused_;
            const auto now = std::chrono::steady_clock::now();
            if (now - last_refusal_log_ >= std::chrono::seconds(10)) {
                spdlog::warn("metrics_listen {}: {} connection(s) open, the most allowed; {} closed at once",
                             endpoint_text(), max_connections, refused_);
                last_refusal_log_ = now;
                refused_ = 0;
            }
            return;
        }
        asio::ip::tcp::socket client(socket_.get_executor());
        boost::system::error_code ec;
        client.assign(local_.protocol(), fd, ec);
        if (ec) {
            ::close(fd);
            spdlog::warn("metrics_listen {}: {}", endpoint_text(), ec.message());
            return;
        }
        std::make_shared<metrics_connection>(std::move(client), sources_, open_)->start();
    }

    void pause(const std::string& why)
    {
        spdlog::warn("metrics_listen {}: accept: {}; pausing 100 ms", endpoint_text(), why);
        retry_.expires_after(std::chrono::milliseconds(100));
        retry_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
            if (!e) self->do_accept();
        });
    }

    asio::ip::tcp::acceptor socket_;
    asio::steady_timer retry_;
    std::shared_ptr<const metrics_sources> sources_;
    std::shared_ptr<metrics_connection_set> open_;
    asio::ip::tcp::endpoint local_;
    std::uint64_t refused_ = 0;
    std::chrono::steady_clock::time_point last_refusal_log_{};
    bool stopped_ = false;
};

metrics_listener::metrics_listener(asio::io_context& io, listen_address where,
                                   std::function<daemon_snapshot()> snapshot)
    : io_(io), where_(std::move(where)), snapshot_(std::move(snapshot))
{
}

metrics_listener::~metrics_listener()
{
    stop();
}

std::string metrics_listener::start()
{
    if (acceptor_) return {};
    auto sources = std::make_shared<metrics_sources>();
    sources->snapshot = snapshot_;
    auto a = std::make_shared<acceptor>(io_, std::move(sources));
    if (auto error = a->bind(where_); !error.empty()) return error;
    acceptor_ = std::move(a);
    asio::dispatch(io_, [a = acceptor_] { a->do_accept(); });
    spdlog::info("metrics_listen {}: serving /metrics and /health", acceptor_->endpoint_text());
    return {};
}

void metrics_listener::stop()
{
    if (!acceptor_) return;
    auto a = std::move(acceptor_);
    // The acceptor and its connections belong to the loop: stopped there, or here when the
    // loop does not run (start-up, or after it returned).
    if (io_.get_executor().running_in_this_thread() || io_.stopped())
        a->stop();
    else
        asio::post(io_, [a] { a->stop(); });
}

asio::ip::tcp::endpoint metrics_listener::local_endpoint() const
{
    return acceptor_ ? acceptor_->local_endpoint() : asio::ip::tcp::endpoint{};
}

} // namespace portunusd
