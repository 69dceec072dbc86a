// SPDX-License-Identifier: MPL-2.0
// Door calls made on an event loop over connections the loop owns: send, wait on the edge_poller, receive.
#include "portunusd/calls/loop_connection_engine.hpp"

#include "portunusd/calls/door_gate.hpp"

#include <spdlog/spdlog.h>

namespace portunusd {

loop_connection::loop_connection(const boost::asio::any_io_executor& loop, portunus::loop_client d,
                                 portunus::unique_fd f, std::uint64_t gen, bool opening)
    : door(std::move(d)), fd(std::move(f)), context(&boost::asio::query(loop, boost::asio::execution::context)),
      deadline(loop), generation(gen), connecting(opening)
{
}

void loop_connection::on_deadline()
{
    if (!gate || timed_out) return;
    timed_out = true;
    readiness.cancel(); // the waiting handler reports ETIMEDOUT and drops the connection
}

// Send on a connection of this loop (never blocks), wait for the reply on the loop's
// edge_poller, receive it on the loop. Anything unusual (the door not open yet, a full accept
// queue, a send that failed, a door revoked under the call) goes to the caller pool, which
// knows how to open, reopen and retry.
bool loop_connection_engine::start(call_job& j)
{
    auto c = take(j.loop);
    if (!c) return false;
    count_started();
    c->gate = gate_.shared_from_this();
    c->j = std::move(j);
    c->started = std::chrono::steady_clock::now();
    c->timed_out = false;
    c->deadline.set_earlier(c->j.deadline, c);
    if (c->connecting)
        wait_for_greeting(c);
    else
        send_call(c);
    return true;
}

std::pair<portunus::unique_fd, edge_poller::registration>
loop_connection_engine::take_idle_locked(const boost::asio::execution_context* context, std::uint64_t generation)
{
    for (auto& l : loops_) {
        if (l.context != context) continue;
        while (!l.idle.empty()) {
            auto c = std::move(l.idle.back());
            l.idle.pop_back();
            if (c->generation == generation) return {std::move(c->fd), std::move(c->readiness)};
        }
        break;
    }
    return {};
}

// A loop with no connection free adopts an idle one of the door handle or opens one without
// blocking; none while the door is not open (the pool opens it).
std::shared_ptr<loop_connection> loop_connection_engine::take(const boost::asio::any_io_executor& loop)
{
    const auto* context = &boost::asio::query(loop, boost::asio::execution::context);
    std::lock_guard lock(gate_.door_mutex_);
    for (auto& l : loops_) {
        if (l.context != context) continue;
        while (!l.idle.empty()) {
            auto c = std::move(l.idle.back());
            l.idle.pop_back();
            if (c->generation == gate_.generation_) return c;
            // Opened before the door was reopened: it reaches an instance that is gone.
        }
        break;
    }
    if (!gate_.door_.is_open()) return nullptr;
    const portunus::loop_client door(gate_.door_);
    std::shared_ptr<loop_connection> c;
    if (portunus::unique_fd fd = door.take_connection()) {
        spdlog::debug("door {}: an event loop took a door connection of its own", gate_.path_);
        c = std::make_shared<loop_connection>(loop, door, std::move(fd), gate_.generation_, false);
    } else {
        std::error_code ec;
        fd = door.begin_connection(ec);
        if (ec) return nullptr;
        c = std::make_shared<loop_connection>(loop, door, std::move(fd), gate_.generation_, true);
    }
    boost::system::error_code ec;
    c->readiness = boost::asio::use_service<edge_poller>(*c->context).add(c->fd.get(), ec);
    if (ec) {
        spdlog::warn("door {}: cannot watch a door connection: {}", gate_.path_, ec.message());
        return nullptr; // the caller pool serves this call
    }
    return c;
}

void loop_connection_engine::put(std::shared_ptr<loop_connection> c)
{
    const auto* context = c->context;
    std::lock_guard lock(gate_.door_mutex_);
    if (c->generation != gate_.generation_) return;
    for (auto& l : loops_) {
        if (l.context == context) {
            l.idle.push_back(std::move(c));
            return;
        }
    }
    loops_.push_back({context, {}});
    loops_.back().idle.push_back(std::move(c));
}

void loop_connection_engine::wait_for_greeting(const std::shared_ptr<loop_connection>& c)
{
    c->readiness.async_wait(edge_poller::wait_for::read,
                            [this, c](const boost::system::error_code& e) { on_greeting(c, e); });
}

void loop_connection_engine::on_greeting(const std::shared_ptr<loop_connection>& c, const boost::system::error_code& e)
{
    if (e) return finish(c, {portunus::make_door_error(c->timed_out ? ETIMEDOUT : EINTR), {}, {}}, false);
    std::error_code ec;
    c->door.finish_connection(c->fd, ec);
    if (ec == std::errc::resource_unavailable_try_again) return wait_for_greeting(c);
    if (ec) return to_pool(c, ec); // the door was replaced or is gone: the pool reopens it
    c->connecting = false;
    spdlog::debug("door {}: an event loop opened a door connection of its own", gate_.path_);
    send_call(c);
}

void loop_connection_engine::send_call(const std::shared_ptr<loop_connection>& c)
{
    std::error_code ec;
    const std::string_view pieces[2] = {c->j.request, c->j.body};
    c->door.begin_call(c->fd, pieces, ec);
    if (ec) return to_pool(c, ec);
    wait_for_reply(c);
}

void loop_connection_engine::wait_for_reply(const std::shared_ptr<loop_connection>& c)
{
    c->readiness.async_wait(edge_poller::wait_for::read,
                            [this, c](const boost::system::error_code& e) { on_reply(c, e); });
}

void loop_connection_engine::on_reply(const std::shared_ptr<loop_connection>& c, const boost::system::error_code& e)
{
    if (e) return finish(c, {portunus::make_door_error(c->timed_out ? ETIMEDOUT : EINTR), {}, {}}, false);
    call_outcome out;
    auto result = c->door.end_call(c->fd, out.ec);
    if (out.ec == std::errc::resource_unavailable_try_again) return wait_for_reply(c); // readiness came first
    if (out.ec == std::errc::bad_file_descriptor) return to_pool(c, out.ec); // revoked before it ran
    if (!out.ec) out.reply.assign(result.data.view());
    const bool reusable = !out.ec;
    finish(c, std::move(out), reusable);
}

void loop_connection_engine::to_pool(const std::shared_ptr<loop_connection>& c, const std::error_code& ec)
{
    const auto self = c->gate; // keeps the gate, and so this engine, alive until the end
    c->deadline.cancel();
    c->gate.reset();
    self->hand_to_pool(*this, std::move(c->j), ec, c->generation);
}

// The end of a call: the connection goes back to the loop's idle set if it can carry another
// call (before the completion runs, which may start the next call at once).
void loop_connection_engine::finish(const std::shared_ptr<loop_connection>& c, call_outcome out, bool reusable)
{
    const auto self = c->gate; // keeps the gate, and so this engine, alive until the end
    c->gate.reset();
    call_job j = std::move(c->j);
    if (reusable) {
        c->deadline.clear();
        put(c);
    } else {
        c->deadline.cancel(); // and the socket closes with its late reply, if any
    }
    out.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - c->started);
    count_completed();
    self->complete(std::move(j), std::move(out));
}

} // namespace portunusd
