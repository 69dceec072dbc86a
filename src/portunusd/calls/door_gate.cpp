// SPDX-License-Identifier: MPL-2.0
// Admission for one forward's door: concurrency limit, bounded queue, deadlines, and the door handle its engines share.
#include "portunusd/calls/door_gate.hpp"

#include <boost/asio/post.hpp>

#include <sys/stat.h>

#include <algorithm>
#include <thread>

namespace portunusd {

door_gate::door_gate(std::string door_path, unsigned max_concurrency, std::size_t queue,
                     std::chrono::milliseconds call_timeout, caller_pool& pool, std::size_t loops)
    : path_(std::move(door_path)), max_concurrency_(max_concurrency), queue_limit_(queue),
      call_timeout_(call_timeout), counters_(loops), pool_engine_(*this, pool)
#if !defined(PORTUNUS_DOOR_ILLUMOS)
      ,
      loop_engine_(*this), batch_engine_(*this, loop_engine_)
#endif
{
    pool_engine_.count_per_loop(loops);
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    loop_engine_.count_per_loop(loops);
    batch_engine_.count_per_loop(loops);
#endif
}

door_gate::~door_gate() = default;

bool door_gate::submit(std::string request, completion done, boost::asio::any_io_executor loop)
{
    return submit(std::move(request), {}, std::move(done), std::move(loop));
}

bool door_gate::submit(std::string head, std::string body, completion done, boost::asio::any_io_executor loop)
{
    return admit(call_job{std::move(head), std::move(body), std::move(done), std::move(loop),
                          std::chrono::steady_clock::now() + call_timeout_, false, {}});
}

bool door_gate::submit_passing(std::string request, std::shared_ptr<const portunus::unique_fd> passed,
                               completion done)
{
    return admit(call_job{std::move(request), {}, std::move(done), {}, std::chrono::steady_clock::now() + call_timeout_,
                          false, std::move(passed)});
}

bool door_gate::admit(call_job j)
{
    std::unique_lock lock(mutex_);
    if (running_ < max_concurrency_) {
        if (++running_ > peak_running_) peak_running_ = running_;
        lock.unlock();
        start(std::move(j));
        return true;
    }
    if (waiting_.size() >= queue_limit_) {
        ++refused_queue_full_;
        return false;
    }
    waiting_.push_back(std::move(j));
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

gate_stats door_gate::stats() const noexcept
{
    gate_stats s;
    s.caller_pool = pool_engine_.stats();
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    s.loop_connection = loop_engine_.stats();
    s.batch_link = batch_engine_.stats();
#endif
    return s;
}

void door_gate::abandon_calls() noexcept
{
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    batch_engine_.abandon_calls();
#endif
}

// A call from an event loop is offered to the loop's engines first (userland doors: a small
// call to the batch link, any call to a connection of the loop); the caller pool takes the rest.
// A call whose time ran out in the queue fails on the pool, the one place that reports it.
void door_gate::start(call_job j)
{
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    if (j.loop && !j.passed && std::chrono::steady_clock::now() < j.deadline) {
        if (batch_engine_.start(j) || loop_engine_.start(j)) return;
    }
#endif
    j.loop = {};
    pool_engine_.start(j);
}

void door_gate::start_next(call_job j)
{
    // A queued call that came from another event loop must start on that loop: its connections
    // and batch link are that loop's alone.
    if (j.loop) {
        auto loop = j.loop;
        boost::asio::post(loop, [self = shared_from_this(), j = std::move(j)]() mutable { self->start(std::move(j)); });
        return;
    }
    start(std::move(j));
}

std::optional<call_job> door_gate::next_or_release()
{
    std::lock_guard lock(mutex_);
    if (waiting_.empty()) {
        --running_;
        return std::nullopt;
    }
    call_job next = std::move(waiting_.front());
    waiting_.pop_front();
    return next;
}

void door_gate::complete(call_job j, call_outcome out)
{
    if (auto next = finish(j, std::move(out))) start_next(std::move(*next));
}

std::optional<call_job> door_gate::finish(call_job& j, call_outcome out)
{
    forget_door_after(out.ec);
    counters_.add(calls_ended_);
    if (out.ec) counters_.add(calls_failed);
    j.done(std::move(out));
    return next_or_release();
}

bool door_gate::should_retry(call_engine& from, call_job& j, const std::error_code& ec, std::uint64_t generation)
{
    if (ec != std::errc::bad_file_descriptor || j.retried) return false;
    j.retried = true;
    from.count_retried();
    counters_.add(calls_reopened);
    // The next open sees the path as it is now; callers that failed on the same handle share it.
    std::lock_guard lock(door_mutex_);
    if (generation_ == generation) {
        door_ = {};
        ++generation_;
    }
    return true;
}

void door_gate::hand_to_pool(call_engine& from, call_job j, const std::error_code& ec, std::uint64_t generation)
{
    if (!should_retry(from, j, ec, generation)) from.count_handed_to_pool();
    j.loop = {};
    pool_engine_.start(j);
}

// Errors that belong to one call (its timeout, its handler failing, descriptors it may not
// carry) leave the door as it is; any other error makes the next request open it again from
// scratch (a door that failed to open, or one that went away).
void door_gate::forget_door_after(const std::error_code& ec)
{
    if (!ec) {
        // Only a load on the hot path: the store happens once after a failure.
        if (last_failure_.load(std::memory_order_relaxed) != 0) last_failure_.store(0, std::memory_order_relaxed);
        return;
    }
    if (ec == std::errc::timed_out || ec == std::errc::interrupted || ec == std::errc::not_supported) return;
    struct stat st {};
    const bool there = ::stat(path_.c_str(), &st) == 0;
    std::lock_guard lock(door_mutex_);
    door_ = {};
    ++generation_;
    failed_file_ = there ? file_identity::of(st) : file_identity{};
    last_failure_.store(ec.value() != 0 ? ec.value() : EIO, std::memory_order_relaxed);
}

door_snapshot door_gate::snapshot() const
{
    door_snapshot s;
    s.path = path_;
    {
        std::lock_guard lock(mutex_);
        s.in_flight = running_;
        s.queued = waiting_.size();
        s.peak_in_flight = peak_running_;
        s.queue_full = refused_queue_full_;
    }
    s.calls = counters_.sum(calls_ended_);
    s.errors = counters_.sum(calls_failed);
    s.reopens = counters_.sum(calls_reopened);
    struct stat st {};
    const bool there = ::stat(path_.c_str(), &st) == 0;
    std::lock_guard lock(door_mutex_);
    s.server_pid = server_pid_;
    const bool failed = last_failure_.load(std::memory_order_relaxed) != 0;
    if (!there)
        s.state = "missing";
    else if (failed && file_identity::of(st) == failed_file_)
        s.state = "failing";
    else if (door_.is_open())
        s.state = "open";
    else
        s.state = "unopened";
    return s;
}

// Opening waits for the application's greeting, which a stopped or hung application never
// sends: it runs outside door_mutex_, which the event loops take, and within the call's
// deadline. Callers that open at once each open their own; the first to finish is kept.
portunus::door_client door_gate::current_door(std::error_code& ec, std::chrono::steady_clock::time_point deadline,
                                              std::uint64_t& generation)
{
    std::uint64_t seen = 0;
    {
        std::lock_guard lock(door_mutex_);
        generation = generation_;
        if (door_.is_open()) return door_;
        seen = generation_;
    }
    const auto left = time_left(deadline);
    if (left.count() == 0) {
        ec = portunus::make_door_error(ETIMEDOUT);
        return {};
    }
    auto opened = portunus::door_client::open(path_, left, ec);
    if (ec && starter_ &&
        (ec == std::errc::no_such_file_or_directory || ec == std::errc::bad_file_descriptor ||
         ec == std::errc::connection_refused)) {
        // An application started on demand: wake it and wait for its door (on this pool
        // thread, which may wait), within its start_timeout and the call's own deadline.
        if (const auto start = starter_(); start.count() > 0) {
            const auto until = std::min(deadline, std::chrono::steady_clock::now() + start);
            while (ec && std::chrono::steady_clock::now() < until) {
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
                const auto wait = time_left(until);
                if (wait.count() == 0) break;
                ec.clear();
                opened = portunus::door_client::open(path_, wait, ec);
            }
        }
    }
    if (ec) return {};
    std::lock_guard lock(door_mutex_);
    // Another caller opened the door meanwhile: share its handle (and its connections).
    if (generation_ != seen && door_.is_open()) {
        generation = generation_;
        return door_;
    }
    door_ = std::move(opened);
    generation = ++generation_;
    std::error_code ignored; // the pid is for status only; a door that cannot say has none
    const auto info = door_.info(ignored);
    server_pid_ = ignored ? 0 : static_cast<long>(info.target);
    return door_;
}

} // namespace portunusd
