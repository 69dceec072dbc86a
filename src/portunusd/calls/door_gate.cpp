// SPDX-License-Identifier: MPL-2.0
// Concurrency limits, queueing and door reopening for one forward.
#include "portunusd/calls/door_gate.hpp"

#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>

#include <spdlog/spdlog.h>

namespace portunusd {

door_gate::door_gate(std::string door_path, unsigned max_concurrency, std::size_t queue,
                     std::chrono::milliseconds call_timeout, caller_pool& pool)
    : path_(std::move(door_path)), max_concurrency_(max_concurrency), queue_limit_(queue),
      call_timeout_(call_timeout), pool_(pool)
{
}

bool door_gate::submit(std::string request, completion done, boost::asio::any_io_executor loop)
{
    return submit(std::move(request), {}, std::move(done), std::move(loop));
}

bool door_gate::submit(std::string head, std::string body, completion done, boost::asio::any_io_executor loop)
{
    job j{std::move(head), std::move(body), std::move(done), std::move(loop),
          std::chrono::steady_clock::now() + call_timeout_};
    std::unique_lock lock(mutex_);
    if (running_ < max_concurrency_) {
        ++running_;
        lock.unlock();
        start(std::move(j));
        return true;
    }
    if (waiting_.size() >= queue_limit_) return false;
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

void door_gate::start(job j)
{
    if (j.loop && start_on_loop(j)) return;
    start_on_pool(std::move(j));
}

// The event-loop path: send on a connection of this loop (never blocks), wait for the reply
// with Asio, receive it on the loop. A loop with no connection free adopts an idle one of the
// door handle or opens one without blocking. Anything unusual (the door not open yet, a full
// accept queue, a send that failed, a door revoked under the call) goes to the caller pool,
// which knows how to open, reopen and retry.
bool door_gate::start_on_loop(job& j)
{
#if defined(PORTUNUS_DOOR_ILLUMOS)
    static_cast<void>(j);
    return false; // door_call(3C) blocks: the caller pool is the only way on illumos
#else
    // A call whose time ran out in the queue fails on the pool, the one place that reports it.
    if (std::chrono::steady_clock::now() >= j.deadline) return false;
    if (j.request.size() + j.body.size() <= portunus::loop_client::batch_call_max) {
        if (auto link = batch_link_for(j.loop)) {
            enqueue(link, std::move(j));
            return true;
        }
    }
    auto c = take_loop_connection(j.loop);
    if (!c) return false;
    c->gate = shared_from_this();
    c->j = std::move(j);
    c->started = std::chrono::steady_clock::now();
    c->timed_out = false;
    c->deadline.set_earlier(c->j.deadline, c);
    if (c->connecting)
        wait_for_greeting(c);
    else
        send_call(c);
    return true;
#endif
}

#if !defined(PORTUNUS_DOOR_ILLUMOS)
door_gate::loop_connection::loop_connection(const boost::asio::any_io_executor& loop, portunus::loop_client d,
                                            portunus::unique_fd f, std::uint64_t gen, bool opening)
    : door(std::move(d)), fd(std::move(f)), context(&boost::asio::query(loop, boost::asio::execution::context)),
      deadline(loop), generation(gen), connecting(opening)
{
}

void door_gate::loop_connection::on_deadline()
{
    if (!gate || timed_out) return;
    timed_out = true;
    readiness.cancel(); // the waiting handler reports ETIMEDOUT and drops the connection
}

std::shared_ptr<door_gate::loop_connection> door_gate::take_loop_connection(const boost::asio::any_io_executor& loop)
{
    const auto* context = &boost::asio::query(loop, boost::asio::execution::context);
    std::lock_guard lock(door_mutex_);
    for (auto& slot : loop_slots_) {
        if (slot.context != context) continue;
        while (!slot.idle.empty()) {
            auto c = std::move(slot.idle.back());
            slot.idle.pop_back();
            if (c->generation == generation_) return c;
            // Opened before the door was reopened: it reaches an instance that is gone.
        }
        break;
    }
    if (!door_.is_open()) return nullptr;
    std::shared_ptr<loop_connection> c;
    if (portunus::unique_fd fd = portunus::loop_client{door_}.take_connection()) {
        spdlog::debug("door {}: an event loop took a door connection of its own", path_);
        c = std::make_shared<loop_connection>(loop, portunus::loop_client{door_}, std::move(fd), generation_, false);
    } else {
        std::error_code ec;
        fd = portunus::loop_client{door_}.begin_connection(ec);
        if (ec) return nullptr;
        c = std::make_shared<loop_connection>(loop, portunus::loop_client{door_}, std::move(fd), generation_, true);
    }
    boost::system::error_code ec;
    c->readiness = boost::asio::use_service<edge_poller>(*c->context).add(c->fd.get(), ec);
    if (ec) {
        spdlog::warn("door {}: cannot watch a door connection: {}", path_, ec.message());
        return nullptr; // the caller pool serves this call
    }
    return c;
}

void door_gate::put_loop_connection(std::shared_ptr<loop_connection> c)
{
    const auto* context = c->context;
    std::lock_guard lock(door_mutex_);
    if (c->generation != generation_) return;
    for (auto& slot : loop_slots_) {
        if (slot.context == context) {
            slot.idle.push_back(std::move(c));
            return;
        }
    }
    loop_slots_.push_back({context, {}, {}});
    loop_slots_.back().idle.push_back(std::move(c));
}

void door_gate::wait_for_greeting(const std::shared_ptr<loop_connection>& c)
{
    c->readiness.async_wait(edge_poller::wait_for::read,
                            [c](const boost::system::error_code& e) { c->gate->on_greeting(c, e); });
}

void door_gate::on_greeting(const std::shared_ptr<loop_connection>& c, const boost::system::error_code& e)
{
    if (e) return finish(c, {portunus::make_door_error(c->timed_out ? ETIMEDOUT : EINTR), {}, {}}, false);
    std::error_code ec;
    c->door.finish_connection(c->fd, ec);
    if (ec == std::errc::resource_unavailable_try_again) return wait_for_greeting(c);
    if (ec) return hand_to_pool(c); // the door was replaced or is gone: the pool reopens it
    c->connecting = false;
    spdlog::debug("door {}: an event loop opened a door connection of its own", path_);
    send_call(c);
}

void door_gate::send_call(const std::shared_ptr<loop_connection>& c)
{
    std::error_code ec;
    const std::string_view pieces[2] = {c->j.request, c->j.body};
    c->door.begin_call(c->fd, pieces, ec);
    if (ec) return hand_to_pool(c);
    wait_for_reply(c);
}

void door_gate::wait_for_reply(const std::shared_ptr<loop_connection>& c)
{
    c->readiness.async_wait(edge_poller::wait_for::read,
                            [c](const boost::system::error_code& e) { c->gate->on_reply(c, e); });
}

void door_gate::hand_to_pool(const std::shared_ptr<loop_connection>& c)
{
    const auto self = c->gate; // keeps this gate alive until the end
    c->deadline.cancel();
    c->gate.reset();
    job j = std::move(c->j);
    j.loop = {};
    start_on_pool(std::move(j));
}

void door_gate::on_reply(const std::shared_ptr<loop_connection>& c, const boost::system::error_code& e)
{
    if (e) return finish(c, {portunus::make_door_error(c->timed_out ? ETIMEDOUT : EINTR), {}, {}}, false);
    call_outcome out;
    auto result = c->door.end_call(c->fd, out.ec);
    if (out.ec == std::errc::resource_unavailable_try_again) {
        // Readiness came before the reply.
        return wait_for_reply(c);
    }
    // EBADF: revoked before it ran, so the pool may reopen the door and retry.
    if (out.ec == std::errc::bad_file_descriptor) return hand_to_pool(c);
    if (!out.ec) out.reply.assign(result.data.view());
    const bool reusable = !out.ec;
    finish(c, std::move(out), reusable);
}

// The end of a call made on the loop: the connection goes back to the loop's idle set if it
// can carry another call (before the completion runs, which may start the next call at once).
void door_gate::finish(const std::shared_ptr<loop_connection>& c, call_outcome out, bool reusable)
{
    const auto self = c->gate; // keeps this gate alive until the end
    c->gate.reset();
    job j = std::move(c->j);
    forget_door_after(out.ec);
    if (reusable) {
        c->deadline.clear();
        put_loop_connection(c);
    } else {
        c->deadline.cancel(); // and the socket closes with its late reply, if any
    }
    out.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - c->started);
    j.done(std::move(out));
    if (auto next = next_or_release()) start_next(std::move(*next));
}
#endif

#if !defined(PORTUNUS_DOOR_ILLUMOS)
door_gate::batch_link::batch_link(const boost::asio::any_io_executor& l, portunus::loop_client d, portunus::unique_fd f,
                                  std::uint64_t gen)
    : door(std::move(d)), fd(std::move(f)), loop(l), deadline(l), generation(gen)
{
}

void door_gate::batch_link::on_deadline()
{
    if (auto g = gate) g->expire(shared_from_this());
}

// The loop's batch link, made on first use from a door connection the loop already has (or an
// idle one of the door handle). None when the door is not open, does not take batches, or no
// connection is at hand yet: the call then goes the single-call way, which opens connections,
// and a later call turns one of them into the link.
std::shared_ptr<door_gate::batch_link> door_gate::batch_link_for(const boost::asio::any_io_executor& loop)
{
    const auto* context = &boost::asio::query(loop, boost::asio::execution::context);
    std::lock_guard lock(door_mutex_);
    loop_slot* slot = nullptr;
    for (auto& s : loop_slots_) {
        if (s.context == context) slot = &s;
    }
    if (slot != nullptr && slot->batch) {
        if (!slot->batch->retired && slot->batch->generation == generation_) return slot->batch;
        slot->batch->retired = true;
        if (slot->batch->outstanding.empty()) slot->batch->readiness.cancel();
        slot->batch.reset();
    }
    if (!door_.is_open() || !portunus::loop_client{door_}.accepts_batches()) return nullptr;
    portunus::unique_fd fd;
    edge_poller::registration readiness;
    if (slot != nullptr) {
        while (!slot->idle.empty() && !fd) {
            auto c = std::move(slot->idle.back());
            slot->idle.pop_back();
            if (c->generation != generation_) continue;
            fd = std::move(c->fd);
            readiness = std::move(c->readiness);
        }
    }
    if (!fd) {
        fd = portunus::loop_client{door_}.take_connection();
        if (!fd) return nullptr;
        boost::system::error_code ec;
        readiness =
            boost::asio::use_service<edge_poller>(boost::asio::query(loop, boost::asio::execution::context)).add(fd.get(), ec);
        if (ec) {
            spdlog::warn("door {}: cannot watch a door connection: {}", path_, ec.message());
            return nullptr;
        }
    }
    auto link = std::make_shared<batch_link>(loop, portunus::loop_client{door_}, std::move(fd), generation_);
    link->readiness = std::move(readiness);
    if (slot == nullptr) {
        loop_slots_.push_back({context, {}, {}});
        slot = &loop_slots_.back();
    }
    slot->batch = link;
    spdlog::debug("door {}: an event loop batches its calls on a door connection of its own", path_);
    wait_for_answers(link);
    return link;
}

void door_gate::enqueue(const std::shared_ptr<batch_link>& link, job j)
{
    std::uint32_t tag = link->next_tag++;
    while (link->outstanding.count(tag) != 0) tag = link->next_tag++; // after 2^32 calls

    if (!j.body.empty()) {
        // A batch entry is one piece; a small body is cheaper to join than to send alone.
        j.request += j.body;
        j.body = {};
    }
    if (link->unsent.empty() || link->unsent.back().first.size() + portunus::loop_client::batch_call_overhead +
                                        j.request.size() >
                                    portunus::loop_client::batch_body_max)
        link->unsent.emplace_back();
    portunus::loop_client::append_batch_call(link->unsent.back().first, tag, j.request);
    link->unsent.back().second.push_back(tag);
    if (link->outstanding.empty()) link->gate = shared_from_this();
    link->deadline.set_earlier(j.deadline, link);
    link->outstanding.emplace(tag, batch_link::pending{std::move(j), std::chrono::steady_clock::now()});
    if (link->flush_posted || link->write_waiting) return;
    link->flush_posted = true;
    // Posted: the other calls this turn of the loop makes join the same message.
    boost::asio::post(link->loop, [link] {
        link->flush_posted = false;
        if (auto g = link->gate) g->flush(link);
    });
}

void door_gate::flush(const std::shared_ptr<batch_link>& link)
{
    // Sent even when the link was retired meanwhile (its door handle replaced): a door that is
    // gone refuses the send, and those calls go to the pool below.
    while (!link->unsent.empty()) {
        std::error_code ec;
        link->door.send_batch(link->fd, link->unsent.front().first, ec);
        if (ec == std::errc::resource_unavailable_try_again) {
            // The application is not reading: send the rest once it does.
            link->write_waiting = true;
            link->readiness.async_wait(edge_poller::wait_for::write, [link](const boost::system::error_code&) {
                link->write_waiting = false;
                if (auto g = link->gate) g->flush(link);
            });
            return;
        }
        if (ec) {
            // None of the unsent calls reached the door: the pool retries them. The ones sent
            // before may still be answered (a revoked door answers those it has not run with
            // EBADF and finishes the others), so the link reads on until its connection ends.
            spdlog::debug("door {}: the batch connection of an event loop refused a send: {}", path_, ec.message());
            const auto self = link->gate;
            link->retired = true;
            requeue_unsent(link);
            settle(link);
            return;
        }
        link->unsent.pop_front();
    }
}

// With no call outstanding a link holds no gate and no deadline, and a retired one stops
// waiting for answers, which lets it go.
void door_gate::settle(const std::shared_ptr<batch_link>& link)
{
    if (!link->outstanding.empty()) return;
    link->gate.reset();
    link->deadline.clear();
    if (link->retired) link->readiness.cancel();
}

void door_gate::requeue_unsent(const std::shared_ptr<batch_link>& link)
{
    std::vector<job> unsent;
    for (auto& [body, tags] : link->unsent) {
        for (const auto tag : tags) {
            const auto it = link->outstanding.find(tag);
            if (it == link->outstanding.end()) continue; // timed out already
            unsent.push_back(std::move(it->second.j));
            link->outstanding.erase(it);
        }
    }
    link->unsent.clear();
    for (auto& j : unsent) {
        j.loop = {};
        start_on_pool(std::move(j));
    }
}

void door_gate::wait_for_answers(const std::shared_ptr<batch_link>& link)
{
    link->readiness.async_wait(edge_poller::wait_for::read,
                               [link](const boost::system::error_code& e) { on_answers(link, e); });
}

// Static: answers may come after every call of the link timed out (and its gate let go).
void door_gate::on_answers(const std::shared_ptr<batch_link>& link, const boost::system::error_code& e)
{
    if (e) return; // cancelled: the link is retired
    std::error_code ec;
    link->door.receive_batch_replies(
        link->fd,
        [&link](std::uint32_t tag, std::error_code error, std::string_view bytes) {
            if (auto g = link->gate) g->answer(link, tag, error, bytes);
        },
        ec);
    if (ec == std::errc::resource_unavailable_try_again) {
        if (!(link->retired && link->outstanding.empty())) wait_for_answers(link);
        return;
    }
    link->retired = true;
    if (auto g = link->gate) return g->break_link(link, ec);
}

void door_gate::answer(const std::shared_ptr<batch_link>& link, std::uint32_t tag, std::error_code ec,
                       std::string_view bytes)
{
    const auto it = link->outstanding.find(tag);
    if (it == link->outstanding.end()) return; // timed out already: the late answer is dropped
    batch_link::pending p = std::move(it->second);
    link->outstanding.erase(it);
    const auto self = link->gate; // keeps this gate alive until the end
    settle(link);
    if (ec == std::errc::bad_file_descriptor) {
        // Revoked before it ran: the pool opens the door again and retries.
        p.j.loop = {};
        return start_on_pool(std::move(p.j));
    }
    call_outcome out;
    out.ec = ec;
    if (!ec) out.reply.assign(bytes);
    out.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - p.started);
    complete(std::move(p.j), std::move(out));
}

void door_gate::expire(const std::shared_ptr<batch_link>& link)
{
    const auto self = link->gate;
    const auto now = std::chrono::steady_clock::now();
    std::vector<batch_link::pending> expired;
    for (auto it = link->outstanding.begin(); it != link->outstanding.end();) {
        if (now >= it->second.j.deadline) {
            expired.push_back(std::move(it->second));
            it = link->outstanding.erase(it);
        } else {
            link->deadline.set_earlier(it->second.j.deadline, link);
            ++it;
        }
    }
    if (link->outstanding.empty()) settle(link);
    // The application still runs these calls; their answers will find no tag and be dropped.
    for (auto& p : expired)
        complete(std::move(p.j), {portunus::make_door_error(ETIMEDOUT), {},
                                  std::chrono::duration_cast<std::chrono::microseconds>(now - p.started)});
}

// The connection failed: calls that never left go to the pool (which reopens the door if it
// must), calls sent on it are lost with it (EINTR when the application died or closed it).
void door_gate::break_link(const std::shared_ptr<batch_link>& link, std::error_code ec)
{
    const auto self = link->gate;
    link->retired = true;
    link->readiness.cancel();
    requeue_unsent(link);
    std::vector<job> lost;
    for (auto& [tag, p] : link->outstanding) lost.push_back(std::move(p.j));
    link->outstanding.clear();
    link->gate.reset();
    link->deadline.cancel();
    if (!self) return;
    spdlog::debug("door {}: the batch connection of an event loop failed: {}", path_, ec.message());
    const auto lost_ec = ec == std::errc::bad_file_descriptor ? portunus::make_door_error(EINTR) : ec;
    for (auto& j : lost) complete(std::move(j), {lost_ec, {}, {}});
}

void door_gate::complete(job j, call_outcome out)
{
    forget_door_after(out.ec);
    j.done(std::move(out));
    if (auto next = next_or_release()) start_next(std::move(*next));
}
#endif

void door_gate::start_next(job j)
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

door_gate::~door_gate()
{
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    // An idle batch link keeps waiting for answers (to notice a dead application): on its own
    // loop, stop that, so that its connection closes with this gate.
    for (auto& slot : loop_slots_) {
        if (!slot.batch) continue;
        auto link = std::move(slot.batch);
        auto loop = link->loop;
        boost::asio::post(loop, [link] {
            link->retired = true;
            link->readiness.cancel();
        });
    }
#endif
}

void door_gate::abandon_calls() noexcept
{
#if !defined(PORTUNUS_DOOR_ILLUMOS)
    for (auto& slot : loop_slots_) {
        if (!slot.batch) continue;
        slot.batch->outstanding.clear();
        slot.batch->unsent.clear();
        slot.batch->gate.reset();
    }
#endif
}

// Errors that belong to one call (its timeout, its handler failing, descriptors it may not
// carry) leave the door as it is; any other error makes the next request open it again from
// scratch (a door that failed to open, or one that went away).
void door_gate::forget_door_after(const std::error_code& ec)
{
    if (!ec || ec == std::errc::timed_out || ec == std::errc::interrupted || ec == std::errc::not_supported) return;
    std::lock_guard lock(door_mutex_);
    door_ = {};
    ++generation_;
}

void door_gate::start_on_pool(job j)
{
    pool_.submit([self = shared_from_this(), j = std::move(j)]() mutable {
        // The thread that finishes a call takes the next queued one itself: handing it to the
        // pool instead would find no idle thread (this one is not idle yet) and grow the pool.
        for (;;) {
            call_outcome outcome = self->call(j);
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

namespace {

// What is left of a deadline for a door operation; zero when it has passed (a zero timeout
// would mean "for ever" to door_client).
std::chrono::milliseconds time_left(std::chrono::steady_clock::time_point deadline)
{
    const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    return std::max(left, std::chrono::milliseconds{0});
}

} // namespace

// Opening waits for the application's greeting, which a stopped or hung application never
// sends: it runs outside door_mutex_, which the event loops take, and within the call's
// deadline. Callers that open at once each open their own; the first to finish is kept.
portunus::door_client door_gate::current_door(std::error_code& ec, bool reopen,
                                              std::chrono::steady_clock::time_point deadline)
{
    std::uint64_t seen = 0;
    {
        std::lock_guard lock(door_mutex_);
        if (door_.is_open() && !reopen) return door_;
        seen = generation_;
    }
    const auto left = time_left(deadline);
    if (left.count() == 0) {
        ec = portunus::make_door_error(ETIMEDOUT);
        return {};
    }
    auto opened = portunus::door_client::open(path_, left, ec);
    if (ec) return {};
    std::lock_guard lock(door_mutex_);
    // Another caller opened the door meanwhile: share its handle (and its connections).
    if (generation_ != seen && door_.is_open()) return door_;
    door_ = std::move(opened);
    ++generation_;
    return door_;
}

call_outcome door_gate::call(const job& j)
{
    const auto started = std::chrono::steady_clock::now();
    call_outcome out;
    portunus::door_client door = current_door(out.ec, false, j.deadline);
    const auto call_within_deadline = [&] {
        const auto left = time_left(j.deadline);
        if (left.count() == 0) {
            out.ec = portunus::make_door_error(ETIMEDOUT);
            return portunus::door_result{};
        }
        const std::string_view pieces[2] = {j.request, j.body};
        return door.call(pieces, {}, left, out.ec);
    };
    if (!out.ec) {
        auto result = call_within_deadline();
        // EBADF means the call never ran: the application restarted or was upgraded since the
        // door was opened. Open the path again and retry once.
        if (out.ec == std::errc::bad_file_descriptor) {
            door = current_door(out.ec, true, j.deadline);
            if (!out.ec) result = call_within_deadline();
        }
        if (!out.ec) out.reply.assign(result.data.view());
    }
    forget_door_after(out.ec);
    out.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
    return out;
}

} // namespace portunusd
