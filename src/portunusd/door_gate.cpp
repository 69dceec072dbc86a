// SPDX-License-Identifier: MPL-2.0
// Concurrency limits, queueing and door reopening for one forward.
#include "portunusd/door_gate.hpp"

namespace portunusd {

door_gate::door_gate(std::string door_path, unsigned max_concurrency, std::size_t queue,
                     std::chrono::milliseconds call_timeout, caller_pool& pool)
    : path_(std::move(door_path)), max_concurrency_(max_concurrency), queue_limit_(queue),
      call_timeout_(call_timeout), pool_(pool)
{
}

bool door_gate::submit(std::string request, completion done)
{
    std::unique_lock lock(mutex_);
    if (running_ < max_concurrency_) {
        ++running_;
        lock.unlock();
        start({std::move(request), std::move(done)});
        return true;
    }
    if (waiting_.size() >= queue_limit_) return false;
    waiting_.push_back({std::move(request), std::move(done)});
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
