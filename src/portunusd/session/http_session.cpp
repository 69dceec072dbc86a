// SPDX-License-Identifier: MPL-2.0
// The http relay: framing, routing, door calls, response checks, keep-alive and pipelining.
#include "portunusd/session/http_session.hpp"

#include "portunusd/http/http_error.hpp"
#include "portunusd/http/request.hpp"
#include "portunusd/http/response_check.hpp"
#include "portunusd/http/http_router.hpp"
#include "portunusd/net/net_text.hpp"

#include <boost/asio.hpp>
#include <spdlog/spdlog.h>

#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>

namespace portunusd {

namespace asio = boost::asio;

namespace {

// The most one read takes; the parser asks for more reads when a request is longer.
constexpr std::size_t read_size = 16384;

// The names of the fields the daemon adds; client-sent ones are dropped so they cannot be forged.
constexpr std::array<std::string_view, 3> forwarded_names{"Forwarded", "X-Forwarded-For", "X-Forwarded-Proto"};

http::parser_limits limits_of(const forward_config& f)
{
    http::parser_limits l;
    l.max_header_bytes = f.max_header_bytes;
    l.max_headers = f.max_headers;
    l.max_body = f.max_body;
    l.max_request_line = std::min<std::size_t>(f.max_header_bytes, 8192);
    return l;
}

int status_for(const std::error_code& ec)
{
    if (ec == std::errc::bad_file_descriptor || ec == std::errc::no_such_file_or_directory ||
        ec == std::errc::connection_refused || ec == std::errc::permission_denied)
        return 503; // nobody serves the door (yet): the application is down or restarting
    if (ec == std::errc::timed_out) return 504;
    return 502; // EINTR (died mid-call), protocol errors: a bad gateway in HTTP terms
}

} // namespace

http_session::http_session(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                           session_registry& registry)
    : session_core(std::move(c), std::move(forward), limit, registry), parser_(limits_of(forward_->config)),
      // A header section at its limit can always be buffered whole, and a read is never refused
      // for less than a block.
      read_ahead_limit_(std::max<std::size_t>(forward_->config.max_header_bytes, read_size))
{
}

void http_session::on_start(std::string_view first)
{
    ex_.started = std::chrono::steady_clock::now();
    // The whole header section must arrive within header_timeout, however slowly it is
    // trickled in: that is the defence against slowloris.
    arm_timer(forward_->config.header_timeout, "header timeout");
    if (first.empty()) return do_read();
    // What came behind a PROXY header: at most its bound, so well within read_ahead_limit_.
    in_.assign(first);
    forward_->stats->received(first.size());
    process();
}

// Waiting for readability and then reading into the thread's block means an idle connection
// holds no receive buffer at all.
void http_session::do_read()
{
    if (reading_ || closed_) return;
    reading_ = true;
    if (more_to_read_) {
        // The last read filled the block: bytes may be waiting that no new edge will announce.
        more_to_read_ = false;
        asio::post(socket_.executor(), [self = self_as<http_session>()] { self->on_readable({}); });
        return;
    }
    wait_readable();
}

void http_session::read_ahead()
{
    // After the client's FIN every read would report it again.
    if (!peer_done_ && buffered() < read_ahead_limit_) do_read();
}

void http_session::on_readable(const boost::system::error_code& ec)
{
    if (ec || closed_) return on_read(ec ? ec : asio::error::operation_aborted, {});
    const auto r = read_block(read_size);
    if (r.error == EAGAIN) {
        reading_ = false;
        return do_read();
    }
    if (r.error) return on_read(boost::system::error_code(r.error, boost::system::system_category()), {});
    if (r.bytes.empty()) return on_read(asio::error::eof, {});
    on_read({}, r.bytes);
}

void http_session::on_read(const boost::system::error_code& ec, std::string_view bytes)
{
    reading_ = false;
    if (closed_) return;
    if (ec) {
        // A client may shut down its sending side after the request (nc -N does): answer it.
        if (ec == asio::error::eof && phase_ == phase::answering) {
            peer_done_ = true;
            return;
        }
        if (phase_ != phase::answering && request_started()) {
            take_partial_request();
            ex_.status = 400;
            ex_.result = "client closed mid-request";
        }
        return close(ec == asio::error::eof ? "client closed" : io_error("read", ec.message()));
    }
    if (phase_ == phase::idle) {
        // First bytes of the next request on a kept-alive connection: its header clock starts.
        phase_ = phase::head;
        ex_.started = std::chrono::steady_clock::now();
        arm_timer(forward_->config.header_timeout, "header timeout");
    }
    if (in_start_ > 0 && in_start_ >= buffered()) {
        // Consumed bytes are dropped here, once the rest to move is no more than they are,
        // rather than on every request: moving costs at most what was consumed, and the buffer
        // stays under twice the read-ahead limit plus a read.
        in_.erase(0, in_start_);
        in_start_ = 0;
    }
    in_.append(bytes);
    forward_->stats->received(bytes.size());
    if (phase_ == phase::answering) return read_ahead();
    process();
}

void http_session::process()
{
    if (closed_ || phase_ == phase::answering) return;
    if (draining_ && buffered() == 0) return close("shutdown");
    std::size_t consumed = 0;
    const auto status = parser_.parse(std::string_view(in_).substr(in_start_), consumed);
    in_start_ += consumed;
    request_in_ += consumed;
    if (in_start_ == in_.size()) {
        in_.clear();
        in_start_ = 0;
    }
    switch (status) {
    case http::parse_status::need_more:
        if (parser_.headers_done()) {
            if (phase_ == phase::head) {
                phase_ = phase::body;
                if (parser_.get().expect_continue && !send_continue()) return;
            }
            // The body comes at its own pace, but each read must make progress.
            arm_timer(forward_->config.read_timeout, "body read timeout");
        }
        return do_read();
    case http::parse_status::error: {
        // The request line may have been read: log what it was, not the previous request.
        take_partial_request();
        const auto ec = parser_.error();
        return refuse(http::status_code(ec), ec.message(), {}, true);
    }
    case http::parse_status::complete: break;
    }
    deadline_.clear();
    http::request request = parser_.take();
    parser_.reset();
    dispatch(std::move(request));
}

bool http_session::send_continue()
{
    // Route first: a client told to go on would upload a body only to get 404 or 405. Refusing
    // now closes the connection, since the body was never read.
    const auto& r = parser_.get();
    const auto m = forward_->router->match(r.method, r.target);
    if (m.outcome != route_match::result::found) {
        take_partial_request();
        const int code = m.outcome == route_match::result::method_not_allowed ? 405
                         : m.outcome == route_match::result::not_found    ? 404
                                                                          : 400;
        refuse(code, "refused before 100-continue", code == 405 ? "Allow: " + m.allow + "\r\n" : "", true);
        return false;
    }
    // Nothing else is being written while a request is still read; write() waits for this to
    // finish all the same, so the two can never interleave.
    continue_writing_ = true;
    static constexpr std::string_view go_on = "HTTP/1.1 100 Continue\r\n\r\n";
    send_bytes(go_on.data(), go_on.size(), 0,
               [self = self_as<http_session>()](const boost::system::error_code&, std::size_t) {
                   self->continue_writing_ = false;
                   if (!self->pending_.empty()) {
                       auto [bytes, close_after] = std::move(self->pending_.front());
                       self->pending_.clear();
                       self->write(std::move(bytes), close_after);
                   }
               });
    return true;
}

void http_session::take_partial_request()
{
    const auto& r = parser_.get();
    ex_.method = r.method;
    ex_.target = r.target;
    ex_.version_minor = r.version_minor;
    ex_.in = request_in_ + buffered();
    request_in_ = 0;
}

void http_session::dispatch(http::request request)
{
    phase_ = phase::answering;
    ex_.method = request.method;
    ex_.target = request.target;
    ex_.version_minor = request.version_minor;
    ex_.in = request_in_;
    request_in_ = 0;
    ++served_;
    forward_->stats->request();
    const bool last = !request.keep_alive || draining_ || served_ >= forward_->config.max_requests;
    const auto m = forward_->router->match(request.method, request.target);
    switch (m.outcome) {
    case route_match::result::bad_path: return refuse(400, "bad path", {}, last);
    case route_match::result::not_found: return refuse(404, "no route", {}, last);
    case route_match::result::method_not_allowed:
        return refuse(405, "method not allowed", "Allow: " + m.allow + "\r\n", last);
    case route_match::result::found: break;
    }
    if (last) request.keep_alive = false;
    // Until the door answers: a client that resets the connection meanwhile still leaves its
    // line (499, as nginx says it), written when the connection closes.
    ex_.status = 499;
    ex_.result = "client closed during the call";

    // The body goes behind the head as it is: an upload of many megabytes is held once.
    std::string head = http::serialize_head_for_application(request, forwarded_fields(), forwarded_names);
    std::string body = std::move(request.body);
    request.body = {};

    const std::size_t gate = forward_->choose(m.target);
    // With several instances, a bodiless request may run once more on another one (see
    // on_reply); its head is kept for that.
    std::optional<std::string> retry_head;
    if (forward_->targets[m.target].size() > 1 && body.empty()) retry_head = head;
    auto shared_request = std::make_shared<http::request>(std::move(request));
    const bool queued =
        submit_call(shared_request, m.target, gate, std::move(head), std::move(body), std::move(retry_head), 1);
    if (!queued) {
        forward_->stats->failed(failure_kind::queue_full);
        std::uint64_t suppressed = 0;
        if (forward_->overflow_log.allow(suppressed))
            spdlog::warn("forward {}: door {} queue full, answering 503 ({} more since last warning)",
                         forward_->config.name, forward_->gates[gate]->door_path(), suppressed);
        refuse(503, "queue full", "Retry-After: 1\r\n", !shared_request->keep_alive);
    }
    // Keep reading while the door works, so a client closing early is noticed and pipelined
    // requests are buffered; they are parsed only after this response is written.
    read_ahead();
}

const std::array<http::header_field, 3>& http_session::forwarded_fields()
{
    if (forwarded_) return *forwarded_;
    if (local_.address().is_unspecified()) {
        // A wildcard listener: which of the host's addresses the client reached is known only
        // to this connection's socket.
        asio::ip::tcp::endpoint here;
        socklen_t len = static_cast<socklen_t>(here.capacity());
        if (::getsockname(socket_.native_handle(), here.data(), &len) == 0) {
            here.resize(len);
            local_ = here;
        }
    }
    // The client: behind a balancer that sent a PROXY header, the one it names.
    const auto addr = client_.address();
    // RFC 7239 quotes IPv6 addresses, which contain colons.
    const std::string forwarded_for = addr.is_v6() ? "\"[" + addr.to_string() + "]\"" : addr.to_string();
    // What the client spoke to the daemon: an application building absolute URLs needs it.
    const std::string scheme{forward_->config.tls ? "https" : "http"};
    forwarded_.emplace(std::array<http::header_field, 3>{
        http::header_field{"Forwarded", "for=" + forwarded_for + ";proto=" + scheme + ";by=\"" +
                                            address_text(local_.address()) + ":" + std::to_string(local_.port()) +
                                            "\""},
        http::header_field{"X-Forwarded-For", addr.to_string()},
        http::header_field{"X-Forwarded-Proto", scheme}});
    return *forwarded_;
}

bool http_session::submit_call(const std::shared_ptr<http::request>& request, std::size_t target, std::size_t gate,
                               std::string head, std::string body, std::optional<std::string> retry_head,
                               unsigned tries)
{
    auto self = self_as<http_session>();
    return forward_->gates[gate]->submit(
        std::move(head), std::move(body),
        [self, request, target, gate, tries, retry = std::move(retry_head)](call_outcome o) mutable {
            asio::dispatch(self->socket_.executor(),
                           [self, request, target, gate, tries, retry = std::move(retry), o = std::move(o)]() mutable {
                               self->on_reply(request, target, gate, std::move(retry), tries, std::move(o));
                           });
        },
        socket_.executor());
}

void http_session::on_reply(const std::shared_ptr<http::request>& shared_request, std::size_t target,
                            std::size_t gate, std::optional<std::string> retry_head, unsigned tries,
                            call_outcome outcome)
{
    if (closed_) return;
    // Another instance takes the call when this one's door is gone (the call never ran: it may
    // try each instance in turn), or when it died mid-call on a GET or HEAD, which changes
    // nothing and so may run once more.
    const bool never_ran = outcome.ec && failure_of(outcome.ec) == failure_kind::door_gone;
    const bool idempotent = shared_request->method == "GET" || shared_request->method == "HEAD";
    if (retry_head && tries < forward_->targets[target].size() &&
        (never_ran || (outcome.ec == std::errc::interrupted && idempotent))) {
        const std::size_t other = forward_->choose(target, gate);
        if (other != gate) {
            std::optional<std::string> again;
            if (never_ran) again = *retry_head;
            if (submit_call(shared_request, target, other, std::move(*retry_head), {}, std::move(again), tries + 1))
                return;
        }
    }
    http::request& request = *shared_request;
    const bool last = !request.keep_alive;
    forward_->stats->call_ended(outcome);
    if (outcome.ec) {
        std::uint64_t suppressed = 0;
        if (forward_->failure_log.allow(suppressed))
            spdlog::warn("forward {}: door {}: {} ({} more since last warning)", forward_->config.name,
                         forward_->gates[gate]->door_path(), outcome.ec.message(), suppressed);
        const int code = status_for(outcome.ec);
        return refuse(code, outcome.ec.message(), code == 503 ? "Retry-After: 1\r\n" : "", last);
    }
    const auto facts = http::check_response(outcome.reply, request.method);
    if (!facts.valid) {
        forward_->stats->failed(failure_kind::other);
        spdlog::warn("forward {}: door {} sent an invalid response: {}", forward_->config.name,
                     forward_->gates[gate]->door_path(), facts.problem);
        return refuse(502, facts.problem, {}, last);
    }
    std::string reply = std::move(outcome.reply);
    if (request.method == "HEAD") reply.resize(facts.header_bytes);
    ex_.status = facts.status;
    ex_.result = "door";
    // Without framing only the end of the connection can mark the end of the body.
    write(std::move(reply), last || !facts.framed || facts.close);
}

void http_session::refuse(int status, std::string_view result, std::string_view extra_headers, bool close_after)
{
    forward_->stats->daemon_response(status);
    if (status == 413 || status == 414 || status == 431) forward_->stats->failed(failure_kind::too_large);
    ex_.status = status;
    ex_.result = result;
    const auto reason = http::reason_phrase(status);
    std::string body = std::to_string(status) + " " + std::string(reason) + "\n";
    std::string r = "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason) +
                    "\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: " + std::to_string(body.size()) +
                    "\r\n" + std::string(extra_headers) +
                    // HTTP/1.0 closes unless told otherwise, so keep-alive must be said there.
                    (close_after ? "Connection: close\r\n" : ex_.version_minor == 0 ? "Connection: keep-alive\r\n" : "") +
                    "\r\n";
    if (ex_.method != "HEAD") r += body;
    phase_ = phase::answering;
    write(std::move(r), close_after);
}

void http_session::write(std::string bytes, bool close_after)
{
    if (continue_writing_) {
        pending_.emplace_back(std::move(bytes), close_after);
        return;
    }
    out_ = std::move(bytes);
    close_after_write_ = close_after;
    // A client that stops reading must not hold the connection forever; send_bytes() moves the
    // deadline on as long as it takes some of the response.
    arm_timer(forward_->config.read_timeout, "write timeout");
    send_bytes(out_.data(), out_.size(), 0, [self = self_as<http_session>()](const boost::system::error_code& ec,
                                                                            std::size_t n) { self->on_write(ec, n); });
}

void http_session::send_bytes(const char* data, std::size_t n, std::size_t sent, send_done done)
{
    boost::system::error_code ec;
    if (!closed_) {
        const std::size_t took = socket_.send_some(data + sent, n - sent, ec);
        sent += took;
        if (data == out_.data()) {
            ex_.out = sent;
            // The write timeout bounds a pause, not the transfer: a slow reader that keeps
            // taking its response keeps its connection, as with nginx's send_timeout.
            if (took > 0 && sent < n) arm_timer(forward_->config.read_timeout, "write timeout");
        }
    }
    if (!closed_ && !ec && sent < n) {
        auto resume = [self = self_as<http_session>(), data, n, sent, d = std::move(done)](
                          const boost::system::error_code& e) mutable {
            if (e) return d(e, sent);
            self->send_bytes(data, n, sent, std::move(d));
        };
        socket_.async_wait(edge_poller::wait_for::write, std::move(resume));
        return;
    }
    if (closed_) ec = asio::error::operation_aborted;
    // Posted, as Asio's own writes complete: a pipelined run of local answers must not recurse.
    asio::post(socket_.executor(), [d = std::move(done), ec, sent] { d(ec, sent); });
}

void http_session::on_write(const boost::system::error_code& ec, std::size_t n)
{
    if (closed_) return;
    deadline_.clear();
    forward_->stats->sent(n);
    ex_.out = n;
    end_exchange();
    out_.clear();
    phase_ = phase::idle;
    if (ec) return close(io_error("write", ec.message()));
    if (close_after_write_) return close("done");
    if (draining_) return close("shutdown");
    if (peer_done_ && buffered() == 0) return close("client closed");
    ex_.started = std::chrono::steady_clock::now();
    if (buffered() == 0) {
        // An idle connection keeps no buffer that pipelining grew.
        if (in_.capacity() > read_size) std::string().swap(in_);
        arm_timer(forward_->config.idle_timeout, "idle timeout");
    } else {
        // A pipelined request was already buffered: its header clock starts now.
        phase_ = phase::head;
        arm_timer(forward_->config.header_timeout, "header timeout");
    }
    process();
}

void http_session::on_timeout(const char* reason)
{
    // A request that has started but not finished gets a 408 if nothing is being written; an
    // idle connection just closes.
    if (phase_ != phase::answering && request_started()) {
        take_partial_request();
        return refuse(408, reason, {}, true);
    }
    if (!out_.empty()) socket_.reset_on_close(); // the client stopped reading its response
    close(reason);
}

void http_session::on_closed(std::string_view)
{
    // A request answered but not (wholly) written, or cut short by the client, still gets its line.
    end_exchange();
}

void http_session::end_exchange()
{
    if (ex_.status == 0) return;
    log_access(http_access_fields{ex_.method, ex_.target, ex_.status}, ex_.in, ex_.out, ex_.result, ex_.started);
    // The next request (or a timeout before it) must not be logged under this one's name;
    // clear() keeps the strings' room, so the next request's copy allocates nothing.
    ex_.method.clear();
    ex_.target.clear();
    ex_.version_minor = 1;
    ex_.status = 0;
    ex_.in = ex_.out = 0;
}

} // namespace portunusd
