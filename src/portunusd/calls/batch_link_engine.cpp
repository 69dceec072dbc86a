// SPDX-License-Identifier: MPL-2.0
// Small door calls of an event loop, several per message on the loop's batch link, answered one by one by tag.
#include "portunusd/calls/batch_link_engine.hpp"

#include "portunusd/calls/door_gate.hpp"
#include "portunusd/calls/loop_connection_engine.hpp"

#include <boost/asio/post.hpp>

#include <spdlog/spdlog.h>

namespace portunusd {

batch_link::batch_link(const boost::asio::any_io_executor& l, portunus::loop_client d, portunus::unique_fd f,
                       std::uint64_t gen)
    : door(std::move(d)), fd(std::move(f)), loop(l), deadline(l), generation(gen)
{
}

void batch_link::on_deadline()
{
    if (auto g = gate) batch_link_engine::of(*g).expire(shared_from_this());
}

batch_link_engine& batch_link_engine::of(door_gate& gate) noexcept { return gate.batch_engine_; }

batch_link_engine::~batch_link_engine()
{
    // An idle batch link keeps waiting for answers (to notice a dead application): on its own
    // loop, stop that, so that its connection closes with the gate.
    for (auto& l : links_) {
        if (!l.link) continue;
        auto link = std::move(l.link);
        auto loop = link->loop;
        boost::asio::post(loop, [link] {
            link->retired = true;
            link->readiness.cancel();
        });
    }
}

void batch_link_engine::abandon_calls() noexcept
{
    for (auto& l : links_) {
        if (!l.link) continue;
        l.link->outstanding.clear();
        l.link->unsent.clear();
        l.link->gate.reset();
    }
}

bool batch_link_engine::start(call_job& j)
{
    if (j.request.size() + j.body.size() > portunus::loop_client::batch_call_max) return false;
    auto link = link_for(j.loop);
    if (!link) return false;
    count_started();
    enqueue(link, std::move(j));
    return true;
}

// The loop's batch link, made on first use from a door connection the loop already has (or an
// idle one of the door handle). None when the door is not open, does not take batches, or no
// connection is at hand yet: the call then goes the single-call way, which opens connections,
// and a later call turns one of them into the link.
std::shared_ptr<batch_link> batch_link_engine::link_for(const boost::asio::any_io_executor& loop)
{
    const auto* context = &boost::asio::query(loop, boost::asio::execution::context);
    std::lock_guard lock(gate_.door_mutex_);
    loop_link* slot = nullptr;
    for (auto& l : links_) {
        if (l.context == context) slot = &l;
    }
    if (slot != nullptr && slot->link) {
        if (!slot->link->retired && slot->link->generation == gate_.generation_) return slot->link;
        slot->link->retired = true;
        if (slot->link->outstanding.empty()) slot->link->readiness.cancel();
        slot->link.reset();
    }
    const portunus::loop_client door(gate_.door_);
    if (!door.is_open() || !door.accepts_batches()) return nullptr;
    auto [fd, readiness] = connections_.take_idle_locked(context, gate_.generation_);
    if (!fd) {
        fd = door.take_connection();
        if (!fd) return nullptr;
        boost::system::error_code ec;
        readiness =
            boost::asio::use_service<edge_poller>(boost::asio::query(loop, boost::asio::execution::context)).add(fd.get(), ec);
        if (ec) {
            spdlog::warn("door {}: cannot watch a door connection: {}", gate_.path_, ec.message());
            return nullptr;
        }
    }
    auto link = std::make_shared<batch_link>(loop, door, std::move(fd), gate_.generation_);
    link->readiness = std::move(readiness);
    if (slot == nullptr) {
        links_.push_back({context, {}});
        slot = &links_.back();
    }
    slot->link = link;
    spdlog::debug("door {}: an event loop batches its calls on a door connection of its own", gate_.path_);
    wait_for_answers(link);
    return link;
}

void batch_link_engine::enqueue(const std::shared_ptr<batch_link>& link, call_job j)
{
    std::uint32_t tag = link->next_tag++;
    while (link->outstanding.count(tag) != 0) tag = link->next_tag++; // after 2^32 calls

    if (!j.body.empty()) {
        // A batch entry is one piece; a small body is cheaper to join than to send alone.
        j.request += j.body;
        j.body = {};
    }
    using portunus::loop_client;
    if (link->unsent.empty() ||
        link->unsent.back().first.size() + loop_client::batch_call_overhead + j.request.size() > loop_client::batch_body_max)
        link->unsent.emplace_back();
    loop_client::append_batch_call(link->unsent.back().first, tag, j.request);
    link->unsent.back().second.push_back(tag);
    if (link->outstanding.empty()) link->gate = gate_.shared_from_this();
    link->deadline.set_earlier(j.deadline, link);
    link->outstanding.emplace(tag, batch_link::pending{std::move(j), std::chrono::steady_clock::now()});
    if (link->flush_posted || link->write_waiting) return;
    link->flush_posted = true;
    // Posted: the other calls this turn of the loop makes join the same message.
    boost::asio::post(link->loop, [link] {
        link->flush_posted = false;
        if (auto g = link->gate) of(*g).flush(link);
    });
}

void batch_link_engine::flush(const std::shared_ptr<batch_link>& link)
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
                if (auto g = link->gate) of(*g).flush(link);
            });
            return;
        }
        if (ec) {
            // None of the unsent calls reached the door: the pool makes them. The ones sent
            // before may still be answered (a revoked door answers those it has not run with
            // EBADF and finishes the others), so the link reads on until its connection ends.
            spdlog::debug("door {}: the batch connection of an event loop refused a send: {}", gate_.path_,
                          ec.message());
            const auto self = link->gate;
            link->retired = true;
            requeue_unsent(link, ec);
            settle(link);
            return;
        }
        link->unsent.pop_front();
    }
}

// With no call outstanding a link holds no gate and no deadline, and a retired one stops
// waiting for answers, which lets it go.
void batch_link_engine::settle(const std::shared_ptr<batch_link>& link)
{
    if (!link->outstanding.empty()) return;
    link->gate.reset();
    link->deadline.clear();
    if (link->retired) link->readiness.cancel();
}

void batch_link_engine::requeue_unsent(const std::shared_ptr<batch_link>& link, const std::error_code& ec)
{
    std::vector<call_job> unsent;
    for (auto& [body, tags] : link->unsent) {
        for (const auto tag : tags) {
            const auto it = link->outstanding.find(tag);
            if (it == link->outstanding.end()) continue; // timed out already
            unsent.push_back(std::move(it->second.j));
            link->outstanding.erase(it);
        }
    }
    link->unsent.clear();
    for (auto& j : unsent) gate_.hand_to_pool(*this, std::move(j), ec, link->generation);
}

void batch_link_engine::wait_for_answers(const std::shared_ptr<batch_link>& link)
{
    link->readiness.async_wait(edge_poller::wait_for::read,
                               [link](const boost::system::error_code& e) { on_answers(link, e); });
}

// Static: answers may come after every call of the link timed out (and its gate let go).
void batch_link_engine::on_answers(const std::shared_ptr<batch_link>& link, const boost::system::error_code& e)
{
    if (e) return; // cancelled: the link is retired
    std::error_code ec;
    link->door.receive_batch_replies(
        link->fd,
        [&link](std::uint32_t tag, std::error_code error, std::string_view bytes) {
            if (auto g = link->gate) of(*g).answer(link, tag, error, bytes);
        },
        ec);
    if (ec == std::errc::resource_unavailable_try_again) {
        if (!(link->retired && link->outstanding.empty())) wait_for_answers(link);
        return;
    }
    link->retired = true;
    if (auto g = link->gate) return of(*g).break_link(link, ec);
}

void batch_link_engine::answer(const std::shared_ptr<batch_link>& link, std::uint32_t tag, std::error_code ec,
                               std::string_view bytes)
{
    const auto it = link->outstanding.find(tag);
    if (it == link->outstanding.end()) return; // timed out already: the late answer is dropped
    batch_link::pending p = std::move(it->second);
    link->outstanding.erase(it);
    const auto self = link->gate; // keeps the gate, and so this engine, alive until the end
    settle(link);
    // Revoked before it ran: the pool opens the door again and retries.
    if (ec == std::errc::bad_file_descriptor) return self->hand_to_pool(*this, std::move(p.j), ec, link->generation);
    call_outcome out;
    out.ec = ec;
    if (!ec) out.reply.assign(bytes);
    out.duration = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - p.started);
    count_completed();
    self->complete(std::move(p.j), std::move(out));
}

void batch_link_engine::expire(const std::shared_ptr<batch_link>& link)
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
    for (auto& p : expired) {
        count_completed();
        self->complete(std::move(p.j), {portunus::make_door_error(ETIMEDOUT), {},
                                        std::chrono::duration_cast<std::chrono::microseconds>(now - p.started)});
    }
}

// The connection failed: calls that never left go to the pool (which reopens the door if it
// must), calls sent on it are lost with it (EINTR when the application died or closed it).
void batch_link_engine::break_link(const std::shared_ptr<batch_link>& link, std::error_code ec)
{
    const auto self = link->gate;
    link->retired = true;
    link->readiness.cancel();
    requeue_unsent(link, {});
    std::vector<call_job> lost;
    for (auto& [tag, p] : link->outstanding) lost.push_back(std::move(p.j));
    link->outstanding.clear();
    link->gate.reset();
    link->deadline.cancel();
    if (!self) return;
    spdlog::debug("door {}: the batch connection of an event loop failed: {}", gate_.path_, ec.message());
    const auto lost_ec = ec == std::errc::bad_file_descriptor ? portunus::make_door_error(EINTR) : ec;
    for (auto& j : lost) {
        count_completed();
        self->complete(std::move(j), {lost_ec, {}, {}});
    }
}

} // namespace portunusd
