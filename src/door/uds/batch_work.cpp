// SPDX-License-Identifier: MPL-2.0
// The uds server's batch work queue: call_batch calls served by the pool's threads, answered in reply_batch messages.
#include "door/uds/server_impl.hpp"

#include <unistd.h>

#include <algorithm>

namespace portunus {
namespace {

using uds::server_connection;

// Answers the batch calls `tags` with one error, in as few messages as fit (error entries are
// larger than empty calls, so the answers to one batch may need two).
void send_errors(server_connection& c, const std::vector<std::uint32_t>& tags, int errno_value)
{
    std::string body;
    for (const auto tag : tags) {
        if (body.size() + uds::batch_reply_entry_header > uds::wire_inline_max) {
            c.send(uds::message_type::reply_batch, body, {});
            body.clear();
        }
        uds::append_batch_reply(body, tag, errno_value, {});
    }
    if (!body.empty()) c.send(uds::message_type::reply_batch, body, {});
}

// Held answers past this size are sent at once.
constexpr std::size_t held_limit = 64 * 1024;

void flush_held(server_connection& c)
{
    std::string out;
    {
        std::lock_guard lock(c.held_mutex);
        out.swap(c.held);
    }
    if (!out.empty()) c.send(uds::message_type::reply_batch, out, {});
}

} // namespace

// Answers every call of a batch with the same error, in one message: EBADF (revoked, nothing
// ran), or EPROTO for a batch that does not decode (and then the connection is done for).
void door_server::impl::answer_batch(connection& c, const uds::received_message& m, int errno_value)
{
    std::vector<uds::batch_entry> entries;
    if (uds::batch_entries(m, entries)) {
        c.send_error(EPROTO);
        return;
    }
    std::vector<std::uint32_t> tags;
    for (const auto& e : entries) tags.push_back(e.tag);
    send_errors(c, tags, errno_value);
}

bool door_server::impl::queue_batch(connection& c, const uds::received_message& m)
{
    std::vector<uds::batch_entry> entries;
    if (uds::batch_entries(m, entries)) {
        c.send_error(EPROTO);
        return false;
    }
    std::lock_guard lock(mutex);
    const auto it = connections.find(&c);
    if (it == connections.end()) return false;
    for (const auto& e : entries) work.push_back({it->second, e.tag, std::string(e.data)});
    return true;
}

// A thread woken through work_fd first sends the answers that busy threads hold back, then
// helps with the queue.
void door_server::impl::help_with_work()
{
    std::vector<std::shared_ptr<connection>> held;
    {
        std::lock_guard lock(mutex);
        work_wake_pending = false;
        held.swap(holders);
    }
    for (auto& h : held) flush_held(*h);
    run_work();
}

// Serves queued batch calls until none is left. Only a free thread reads a connection, and it
// serves the queue before it reads again, so the queue holds at most a batch (128 KiB) per
// thread that read one: a client cannot make it grow except by making the pool grow, which a
// door's callers can do anyway (max_threads caps it). Each call is a call as any other for the
// pool: taking it makes the thread busy, taking the last free slot adds a thread (the
// high-water rule), and while more calls wait one free thread is woken to help, so that a slow
// call never holds up the calls queued behind it for longer than it takes a thread to wake.
// Answers finished back to back for one connection leave together (see `holders`).
void door_server::impl::run_work()
{
    std::shared_ptr<connection> holding; // whose answers this thread holds back
    for (;;) {
        uds::work_item w;
        bool helper = false; // a thread is or will be awake to send what this one holds
        if (!take_work(w, holding != nullptr, helper)) break;
        // Held answers wait for this call only if a helper can send them should it be slow
        // (with every thread busy in a capped pool, none can).
        if (holding && (holding != w.c || !helper)) stop_holding(holding);
        door_reply reply;
        const std::int32_t error = run_work_item(w, reply);
        answer_work_item(w, error, error == 0 ? reply.bytes() : std::string_view(), holding);
        std::lock_guard lock(mutex);
        pool.busy_to_idle();
        changed.notify_all();
    }
    stop_holding(holding);
}

// Takes the next queued call, if any, and wakes a free thread to help when more calls wait or
// `holding` answers wait to be sent.
bool door_server::impl::take_work(uds::work_item& w, bool holding, bool& helper)
{
    bool wake = false;
    {
        std::lock_guard lock(mutex);
        if (work.empty()) return false;
        w = std::move(work.front());
        work.pop_front();
        if (pool.idle_to_busy()) spawn_locked();
        if ((!work.empty() || holding) && pool.idle() > 0 && !work_wake_pending) {
            work_wake_pending = true;
            wake = true;
        }
        helper = work_wake_pending;
    }
    if (wake) {
        const std::uint64_t one = 1;
        [[maybe_unused]] auto n = ::write(work_fd.get(), &one, sizeof one);
    }
    return true;
}

// The call's errno value, 0 when `reply` is its answer.
std::int32_t door_server::impl::run_work_item(const uds::work_item& w, door_reply& reply)
{
    if (revoked_flag.load()) return EBADF;
    door_request request{w.data, {}, w.c->caller};
    if (const int error = invoke_handler(request, reply)) return error;
    // Entry lengths are 32 bits.
    if (reply.bytes().size() > 0xffffffffu) return E2BIG;
    // A batch reply carries no descriptors; a handler that returns some fails the call.
    if (!reply.fds.empty()) return ENOTSUP;
    return 0;
}

// Adds the answer to the connection's held answers, or sends it at once with what was held
// when it is too large to wait; `holding` becomes its connection while the answers may wait for
// the next call of the same batch, which this thread will take.
void door_server::impl::answer_work_item(const uds::work_item& w, std::int32_t error, std::string_view data,
                                         std::shared_ptr<connection>& holding)
{
    const std::size_t entry = uds::batch_reply_entry_header + data.size();
    bool hold = false;
    if (entry <= held_limit) {
        std::string full; // what was held, when this answer would not fit beside it
        std::size_t held_size;
        {
            std::lock_guard lock(w.c->held_mutex);
            if (w.c->held.size() + entry > uds::wire_inline_max) full.swap(w.c->held);
            uds::append_batch_reply(w.c->held, w.tag, error, data);
            held_size = w.c->held.size();
        }
        if (!full.empty()) w.c->send(uds::message_type::reply_batch, full, {});
        std::lock_guard lock(mutex);
        hold = held_size < held_limit && !work.empty() && work.front().c == w.c &&
               (work_wake_pending || pool.idle() > 0);
        if (hold && std::find(holders.begin(), holders.end(), w.c) == holders.end()) holders.push_back(w.c);
    } else {
        flush_held(*w.c);
        w.c->send_batch_reply(w.tag, error, data);
    }
    holding = w.c;
    if (!hold) stop_holding(holding);
}

void door_server::impl::stop_holding(std::shared_ptr<connection>& holding)
{
    if (!holding) return;
    flush_held(*holding);
    std::lock_guard lock(mutex);
    std::erase(holders, holding);
    holding.reset();
}

// The queued calls of one connection are answered together.
void door_server::impl::refuse_work_locked()
{
    while (!work.empty()) {
        const auto c = work.front().c;
        std::vector<std::uint32_t> tags;
        for (auto it = work.begin(); it != work.end();) {
            if (it->c != c) {
                ++it;
                continue;
            }
            tags.push_back(it->tag);
            it = work.erase(it);
        }
        send_errors(*c, tags, EBADF);
    }
}

} // namespace portunus
