// SPDX-License-Identifier: MPL-2.0
// edge_poller's slots and registrations, the same whichever way the descriptors are watched.
#include "portunusd/net/edge_poller.hpp"

#include <utility>

namespace portunusd {

void edge_poller::shutdown()
{
    // Pending callbacks own what they wait for (a session owns its registration): drop them
    // outside the lock, which breaks those cycles without running anything.
    std::vector<callback> dropped;
    std::lock_guard lock(mutex_);
    stopped_ = true;
    for (auto& s : slots_)
        for (auto& w : s.waiter)
            if (w) dropped.push_back(std::move(w));
    waiting_ = 0;
    // `dropped` is declared before the lock, so it is destroyed after the lock is released.
}

edge_poller::registration edge_poller::add(int fd, boost::system::error_code& ec)
{
    std::uint32_t index;
    std::uint32_t generation;
    {
        std::lock_guard lock(mutex_);
        if (free_.empty()) {
            index = static_cast<std::uint32_t>(slots_.size());
            slots_.emplace_back();
        } else {
            index = free_.back();
            free_.pop_back();
        }
        slot& s = slots_[index];
        s.fd = fd;
        s.ready[0] = s.ready[1] = false;
        s.ended[0] = s.ended[1] = false;
        generation = ++s.generation;
    }
    watch(index, generation, fd, ec);
    if (ec) {
        release(index, generation);
        return {};
    }
    return registration(this, index, generation);
}

edge_poller::slot* edge_poller::find(std::uint32_t index, std::uint32_t generation) noexcept
{
    if (index >= slots_.size()) return nullptr;
    slot& s = slots_[index];
    return s.fd >= 0 && s.generation == generation ? &s : nullptr;
}

int edge_poller::release(std::uint32_t index, std::uint32_t generation) noexcept
{
    callback dropped[2]; // destroyed after the lock is released: they may own registrations
    std::lock_guard lock(mutex_);
    slot* s = find(index, generation);
    if (!s) return -1;
    for (std::size_t i = 0; i < 2; ++i) {
        if (!s->waiter[i]) continue;
        dropped[i] = std::move(s->waiter[i]);
        s->waiter[i] = nullptr;
        --waiting_;
    }
    forget_watch(*s);
    const int fd = s->fd;
    s->fd = -1;
    free_.push_back(index);
    return fd;
}

edge_poller::registration::registration(registration&& other) noexcept
    : poller_(other.poller_), slot_(other.slot_), generation_(other.generation_)
{
    other.poller_ = nullptr;
}

edge_poller::registration& edge_poller::registration::operator=(registration&& other) noexcept
{
    if (this != &other) {
        remove();
        poller_ = other.poller_;
        slot_ = other.slot_;
        generation_ = other.generation_;
        other.poller_ = nullptr;
    }
    return *this;
}

void edge_poller::registration::async_wait(wait_for what, callback done)
{
    poller_->start_wait(slot_, what, std::move(done));
}

void edge_poller::registration::cancel()
{
    if (poller_) poller_->cancel_waits(slot_);
}

void edge_poller::registration::remove() noexcept { drop(true); }

void edge_poller::registration::forget() noexcept { drop(false); }

void edge_poller::registration::drop(bool tell_kernel) noexcept
{
    // Emptied first: the waits that release() drops may own, and so destroy, this object.
    edge_poller* const p = poller_;
    if (!p) return;
    poller_ = nullptr;
    const std::uint32_t index = slot_;
    const std::uint32_t generation = generation_;
    // Before release(): until then the owner, and so its descriptor, is certainly alive.
    if (tell_kernel) {
        int fd = -1;
        {
            std::lock_guard lock(p->mutex_);
            if (const auto* s = p->find(index, generation)) fd = s->fd;
        }
        if (fd >= 0) p->unwatch(fd);
    }
    p->release(index, generation);
}

} // namespace portunusd
