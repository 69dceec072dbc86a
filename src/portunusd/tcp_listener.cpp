// SPDX-License-Identifier: MPL-2.0
// Accepting tcp connections, pausing at max_connections and on descriptor exhaustion.
#include "portunusd/tcp_listener.hpp"

#include "portunusd/http_session.hpp"

#include <spdlog/spdlog.h>

namespace portunusd {

namespace asio = boost::asio;

tcp_listener::tcp_listener(event_loops& loops, asio::ip::tcp::acceptor acceptor,
                           std::shared_ptr<forward_state> forward, connection_limit& limit, session_registry& registry)
    : loops_(loops), acceptor_(std::move(acceptor)), retry_(acceptor_.get_executor()), forward_(std::move(forward)),
      limit_(limit), registry_(registry), waiting_(loops.main())
{
    boost::system::error_code ignored;
    local_ = acceptor_.local_endpoint(ignored);
}

void tcp_listener::start()
{
    asio::dispatch(acceptor_.get_executor(), [self = shared_from_this()] { self->do_accept(); });
}

void tcp_listener::stop()
{
    asio::dispatch(acceptor_.get_executor(), [self = shared_from_this()] {
        self->stopped_ = true;
        boost::system::error_code ignored;
        self->retry_.cancel();
        self->acceptor_.close(ignored);
        self->waiting_.close(ignored);
    });
}

void tcp_listener::set_forward(std::shared_ptr<forward_state> forward)
{
    std::lock_guard lock(mutex_);
    forward_ = std::move(forward);
}

std::shared_ptr<forward_state> tcp_listener::forward() const
{
    std::lock_guard lock(mutex_);
    return forward_;
}

void tcp_listener::do_accept()
{
    if (stopped_) return;
    auto self = shared_from_this();
    acceptor_.async_accept(loops_.next(), peer_, [self](const boost::system::error_code& ec,
                                                                  asio::ip::tcp::socket socket) {
        self->on_accept(ec, std::move(socket));
    });
}

void tcp_listener::on_accept(const boost::system::error_code& ec, asio::ip::tcp::socket socket)
{
    if (stopped_ || ec == asio::error::operation_aborted) return;
    if (ec) {
        // EMFILE/ENFILE and the like: back off briefly rather than spinning on a full table.
        spdlog::warn("accept on {}: {}; pausing 100 ms", forward()->config.listen.text, ec.message());
        retry_.expires_after(std::chrono::milliseconds(100));
        retry_.async_wait([self = shared_from_this()](const boost::system::error_code& e) {
            if (!e) self->do_accept();
        });
        return;
    }
    // Replies that span segments must not wait for the client's delayed ACK. A `once` reply
    // needs no option: close() pushes out whatever Nagle held back.
    if (!forward()->config.once) {
        boost::system::error_code ignored;
        socket.set_option(asio::ip::tcp::no_delay(true), ignored);
    }
    waiting_ = std::move(socket);
    admit();
}

void tcp_listener::admit()
{
    if (stopped_) {
        boost::system::error_code ignored;
        waiting_.close(ignored);
        return;
    }
    // At max_connections the listener holds this one connection unserved and stops accepting:
    // further clients wait in the kernel's backlog instead of being refused, and nothing spins.
    auto self = shared_from_this();
    if (!limit_.try_open([self] { asio::post(self->acceptor_.get_executor(), [self] { self->admit(); }); })) return;
    accepted_connection c{std::move(waiting_), peer_, local_};
    auto fwd = forward();
    if (fwd->config.proto == protocol::http)
        std::make_shared<http_session>(std::move(c), std::move(fwd), limit_, registry_)->start();
    else
        std::make_shared<tcp_session>(std::move(c), std::move(fwd), limit_, registry_)->start();
    do_accept();
}

} // namespace portunusd
