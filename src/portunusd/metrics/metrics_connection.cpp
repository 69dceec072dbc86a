// SPDX-License-Identifier: MPL-2.0
// One metrics request: read the head under a deadline, answer, close without losing the answer.
#include "portunusd/metrics/metrics_connection.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <exception>
#include <utility>

namespace portunusd {

namespace asio = boost::asio;

void metrics_connection_set::add(const std::shared_ptr<metrics_connection>& c)
{
    open_.emplace(c.get(), c);
}

void metrics_connection_set::remove(const metrics_connection* c) noexcept
{
    open_.erase(c);
}

void metrics_connection_set::close_all()
{
    // close() removes each from open_, so walk a copy.
    const auto open = open_;
    for (const auto& [key, weak] : open)
        if (const auto c = weak.lock()) c->close("listener stopped");
    open_.clear();
}

metrics_connection::metrics_connection(asio::ip::tcp::socket socket, std::shared_ptr<const metrics_sources> sources,
                                       std::shared_ptr<metrics_connection_set> set)
    : socket_(std::move(socket)), deadline_(socket_.get_executor()), sources_(std::move(sources)),
      set_(std::move(set)), parser_(http::parser_limits{max_head, max_head, 100, max_body})
{
}

void metrics_connection::start()
{
    set_->add(shared_from_this());
    arm(request_timeout);
    do_read();
}

void metrics_connection::arm(std::chrono::seconds after)
{
    const std::uint64_t generation = ++generation_;
    deadline_.expires_after(after);
    deadline_.async_wait([self = shared_from_this(), generation](const boost::system::error_code& ec) {
        // A wait replaced by a later one, or cancelled by close(), is not ours any more.
        if (ec || generation != self->generation_) return;
        switch (self->phase_) {
        case phase::reading: return self->close("no complete request in time");
        case phase::writing: return self->close("the client did not take the answer in time");
        case phase::lingering: return self->close("linger done");
        case phase::closed: return;
        }
    });
}

void metrics_connection::do_read()
{
    // Never more than one byte past the limit: that byte is what tells a head too large.
    const std::size_t room = max_head + max_body + 1 - received_;
    socket_.async_read_some(asio::buffer(buf_.data() + have_, std::min(room, buf_.size() - have_)),
                            [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                                self->on_read(ec, n);
                            });
}

void metrics_connection::on_read(const boost::system::error_code& ec, std::size_t n)
{
    if (phase_ != phase::reading) return;
    if (ec) return close(ec == asio::error::eof ? "closed by the client" : "read failed");
    try {
        have_ += n;
        received_ += n;
        std::size_t consumed = 0;
        const auto status = parser_.parse(std::string_view(buf_.data(), have_), consumed);
        std::memmove(buf_.data(), buf_.data() + consumed, have_ - consumed);
        have_ -= consumed;
        if (status == http::parse_status::error) {
            spdlog::debug("metrics: request refused: {}", parser_.error().message());
            return answer(refusal_response(http::status_code(parser_.error())));
        }
        if (status == http::parse_status::need_more) {
            if (received_ <= max_head + (parser_.headers_done() ? max_body : 0)) return do_read();
            return answer(refusal_response(parser_.headers_done() ? 413 : 431));
        }
        const auto& request = parser_.get();
        std::string response;
        try {
            response = metrics_response(request.method, request.target, *sources_);
        } catch (const std::exception& e) {
            spdlog::error("metrics: {} {}: {}", request.method, request.target, e.what());
            response = refusal_response(500);
        }
        answer(std::move(response));
    } catch (const std::exception& e) {
        spdlog::error("metrics: {}", e.what());
        close("failed");
    }
}

void metrics_connection::answer(std::string response)
{
    phase_ = phase::writing;
    response_ = std::move(response);
    arm(write_timeout);
    asio::async_write(socket_, asio::buffer(response_),
                      [self = shared_from_this()](const boost::system::error_code& ec, std::size_t) {
                          self->on_write(ec);
                      });
}

void metrics_connection::on_write(const boost::system::error_code& ec)
{
    if (phase_ != phase::writing) return;
    if (ec) return close("write failed");
    phase_ = phase::lingering;
    response_ = {};
    boost::system::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
    try {
        arm(linger_timeout);
        do_linger();
    } catch (const std::exception&) {
        close("failed");
    }
}

void metrics_connection::do_linger()
{
    socket_.async_read_some(asio::buffer(buf_), [self = shared_from_this()](const boost::system::error_code& ec,
                                                                            std::size_t) {
        if (self->phase_ != phase::lingering) return;
        if (ec) return self->close("done");
        try {
            self->do_linger();
        } catch (const std::exception&) {
            self->close("failed");
        }
    });
}

void metrics_connection::close(std::string_view reason) noexcept
{
    if (phase_ == phase::closed) return;
    phase_ = phase::closed;
    ++generation_;
    boost::system::error_code ignored;
    deadline_.cancel();
    socket_.close(ignored);
    set_->remove(this);
    try {
        spdlog::debug("metrics: connection closed: {}", reason);
    } catch (...) {
    }
}

} // namespace portunusd
