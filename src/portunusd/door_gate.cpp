// SPDX-License-Identifier: MPL-2.0
// Concurrency limits, queueing and door reopening for one forward.
#include "portunusd/door_gate.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

namespace portunusd {

door_gate::door_gate(std::string door_path, unsigned max_concurrency, std::size_t queue,
                     std::chrono::milliseconds call_timeout, caller_pool& pool)
    : path_(std::move(door_path)), max_concurrency_(max_concurrency), queue_limit_(queue),
      call_timeout_(call_timeout), pool_(pool)
{
}

bool door_gate::submit(std::string request, completion done, boost::asio::any_io_executor loop)
{
    std::unique_lock lock(mutex_);
    if (running_ < max_concurrency_) {
        ++running_;
        lock.unlock();
        start({std::move(request), std::move(done), std::move(loop)});
        return true;
    }
    if (waiting_.size() >= queue_limit_) return false;
    waiting_.push_back({std::move(request), std::move(done), std::move(loop)});
    return true;
}

std::size_t door_gate::in_flight() const
{
    std::lock_guard lock(mutex_);
    return running_;
}

std::size_t door_gate::queued() const
{
    std::lock_guard lock(mutex_);
    return waiting_.size();
}

void door_gate::start(job j)
{
    if (j.loop && start_on_loop(j)) return;
    start_on_pool(std::move(j));
}

// The event-loop path: send on an idle pooled connection (never blocks), wait for the reply
// with Asio, receive it on the loop. Anything unusual (no idle connection, a send that failed,
// a door revoked under the call) goes to the caller pool, which knows how to reopen and retry.
bool door_gate::start_on_loop(job& j)
{
#if defined(PORTUNUS_DOOR_ILLUMOS)
    static_cast<void>(j);
    return false; // door_call(3C) blocks: the caller pool is the only way on illumos
#else
    portunus::door_client door;
    {
        std::lock_guard lock(door_mutex_);
        if (!door_.is_open()) return false;
        door = door_;
    }
    std::error_code ec;
    portunus::unique_fd conn = door.begin_call(j.request, ec);
    if (ec || !conn) return false;

    const auto loop = j.loop; // j is moved below, in the same expression
    auto call = std::make_shared<loop_call>(loop_call{shared_from_this(), std::move(door), std::move(j),
                                                     boost::asio::posix::stream_descriptor(loop, conn.release()),
                                                     boost::asio::steady_timer(loop, call_timeout_),
                                                     std::chrono::steady_clock::now()});
    call->timer.async_wait([call](const boost::system::error_code& e) {
        if (e) return;
        boost::system::error_code ignored;
        call->socket.cancel(ignored);
    });
    wait_for_reply(call);
    return true;
#endif
}

#if !defined(PORTUNUS_DOOR_ILLUMOS)
void door_gate::wait_for_reply(const std::shared_ptr<loop_call>& call)
{
    call->socket.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                            [call](const boost::system::error_code& e) { call->gate->on_reply(call, e); });
}

void door_gate::on_reply(const std::shared_ptr<loop_call>& call, const boost::system::error_code& e)
{
    call_outcome out;
    if (e) {
        out.ec = portunus::make_door_error(ETIMEDOUT); // the socket closes: a late reply is dropped
    } else {
        portunus::unique_fd conn(call->socket.release());
        auto result = call->door.end_call(conn, out.ec);
        if (out.ec == std::errc::resource_unavailable_try_again) {
            // Readiness was reported before the reply was there: wait for the real one.
            boost::system::error_code ignored;
            call->socket.assign(conn.release(), ignored);
            return wait_for_reply(call);
        }
        if (out.ec == std::errc::bad_file_descriptor) {
            // Revoked before it ran: the pool reopens the door and retries.
            call->timer.cancel();
            call->j.loop = {};
            return start_on_pool(std::move(call->j));
        }
        if (!out.ec) out.reply.assign(result.data.view());
    }
    call->timer.cancel();
    if (out.ec && out.ec != std::errc::timed_out && out.ec != std::errc::interrupted) {
        std::lock_guard lock(door_mutex_);
        door_ = {};
    }
    out.duration =
        std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - call->started);
    call->j.done(std::move(out));
    if (auto next = next_or_release()) start(std::move(*next));
}
#endif

void door_gate::start_on_pool(job j)
{
    pool_.submit([self = shared_from_this(), j = std::move(j)]() mutable {
        // The thread that finishes a call takes the next queued one itself: handing it to the
        // pool instead would find no idle thread (this one is not idle yet) and grow the pool.
        for (;;) {
            call_outcome outcome = self->call(j.request);
            j.done(std::move(outcome));
            auto next = self->next_or_release();
            if (!next) return;
            j = std::move(*next);
        }
    });
}

std::optional<door_gate::job> door_gate::next_or_release()
{
    std::lock_guard lock(mutex_);
    if (waiting_.empty()) {
        --running_;
        return std::nullopt;
    }
    job next = std::move(waiting_.front());
    waiting_.pop_front();
    return next;
}

portunus::door_client door_gate::current_door(std::error_code& ec, bool reopen)
{
    std::lock_guard lock(door_mutex_);
    if (door_.is_open() && !reopen) return door_;
    door_ = portunus::door_client::open(path_, ec);
    return door_;
}

call_outcome door_gate::call(const std::string& request)
{
    const auto started = std::chrono::steady_clock::now();
    call_outcome out;
    portunus::door_client door = current_door(out.ec, false);
    if (!out.ec) {
        auto result = door.call(request, {}, call_timeout_, out.ec);
        // EBADF means the call never ran: the application restarted or was upgraded since the
        // door was opened. Open the path again and retry once.
        if (out.ec == std::errc::bad_file_descriptor) {
            door = current_door(out.ec, true);
            if (!out.ec) result = door.call(request, {}, call_timeout_, out.ec);
        }
        if (!out.ec) out.reply.assign(result.data.view());
    }
    if (out.ec && out.ec != std::errc::timed_out && out.ec != std::errc::interrupted) {
        // Forget a door that failed to open so that the next request tries again from scratch.
        std::lock_guard lock(door_mutex_);
        door_ = {};
    }
    out.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
    return out;
}

} // namespace portunusd
