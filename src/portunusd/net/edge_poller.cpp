// SPDX-License-Identifier: MPL-2.0
// An edge-triggered epoll set per event loop, nested in Asio's reactor as one descriptor.
#include "portunusd/net/edge_poller.hpp"

#include <boost/asio/post.hpp>

#if defined(PORTUNUSD_EDGE_POLLER_EPOLL)
#include <sys/epoll.h>
#endif

#include <array>
#include <cerrno>
#include <system_error>

namespace portunusd {

namespace asio = boost::asio;

namespace {

#if defined(PORTUNUSD_EDGE_POLLER_EPOLL)
std::uint64_t pack(std::uint32_t slot, std::uint32_t generation)
{
    return (std::uint64_t{generation} << 32) | slot;
}

portunus::unique_fd new_epoll()
{
    portunus::unique_fd fd(::epoll_create1(EPOLL_CLOEXEC));
    if (!fd) throw std::system_error(errno, std::system_category(), "epoll_create1");
    return fd;
}
#endif

constexpr std::size_t side(edge_poller::wait_for w) { return static_cast<std::size_t>(w); }

} // namespace

#if defined(PORTUNUSD_EDGE_POLLER_EPOLL)
edge_poller::edge_poller(asio::execution_context& context)
    : asio::execution_context::service(context), loop_(static_cast<asio::io_context&>(context)),
      epoll_(new_epoll()), epoll_waiter_(loop_, epoll_.get())
{
}

edge_poller::~edge_poller()
{
    epoll_waiter_.release(); // epoll_ closes it
}
#else
edge_poller::edge_poller(asio::execution_context& context)
    : asio::execution_context::service(context), loop_(static_cast<asio::io_context&>(context))
{
}

edge_poller::~edge_poller() = default;
#endif

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
#if defined(PORTUNUSD_EDGE_POLLER_EPOLL)
    waiting_ = 0;
#endif
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
#if !defined(PORTUNUSD_EDGE_POLLER_EPOLL)
        s.view = std::make_unique<asio::posix::stream_descriptor>(loop_);
        s.view->assign(fd, ec);
#endif
    }
#if defined(PORTUNUSD_EDGE_POLLER_EPOLL)
    // EPOLLRDHUP, EPOLLHUP and EPOLLERR count as readiness: the next read or write reports them.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = pack(index, generation);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
        ec.assign(errno, boost::system::system_category());
    else
        ec.clear();
#endif
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
#if defined(PORTUNUSD_EDGE_POLLER_EPOLL)
        --waiting_;
#endif
    }
#if !defined(PORTUNUSD_EDGE_POLLER_EPOLL)
    if (s->view) {
        s->view->release(); // the descriptor is the caller's
        s->view.reset();
    }
#endif
    const int fd = s->fd;
    s->fd = -1;
    free_.push_back(index);
    return fd;
}

#if defined(PORTUNUSD_EDGE_POLLER_EPOLL)

void edge_poller::start_wait(std::uint32_t index, wait_for what, callback done)
{
    bool now = false;
    {
        std::lock_guard lock(mutex_);
        if (stopped_) return;
        slot& s = slots_[index];
        if (s.ready[side(what)] || s.ended[side(what)]) {
            s.ready[side(what)] = false;
            now = true;
        } else {
            s.waiter[side(what)] = std::move(done);
            ++waiting_;
            if (!armed_) arm();
        }
    }
    // An edge came since the last completion: complete at once, but never from inside the
    // caller, which may not expect its own handler to run before it returns.
    if (now) asio::post(loop_, [d = std::move(done)] { d({}); });
}

void edge_poller::cancel_waits(std::uint32_t index)
{
    callback aborted[2];
    {
        std::lock_guard lock(mutex_);
        slot& s = slots_[index];
        for (std::size_t i = 0; i < 2; ++i) {
            if (!s.waiter[i]) continue;
            aborted[i] = std::move(s.waiter[i]);
            s.waiter[i] = nullptr;
            --waiting_;
        }
    }
    for (auto& a : aborted)
        if (a) asio::post(loop_, [d = std::move(a)] { d(asio::error::operation_aborted); });
}

// Called with mutex_ held.
void edge_poller::arm()
{
    armed_ = true;
    epoll_waiter_.async_wait(asio::posix::stream_descriptor::wait_read,
                             [this](const boost::system::error_code& ec) { on_events(ec); });
}

void edge_poller::deliver(std::uint32_t index, std::uint32_t generation, std::uint32_t events)
{
    const bool readable = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    const bool writable = (events & (EPOLLOUT | EPOLLHUP | EPOLLERR)) != 0;
    callback ready[2];
    {
        std::lock_guard lock(mutex_);
        slot* s = find(index, generation);
        if (!s) return; // removed since the kernel queued the event
        const bool side_ready[2] = {readable, writable};
        // A short read does not mean more will come with an edge of its own when the peer's
        // FIN arrived with the data: that end stays readable for good.
        if ((events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0) s->ended[side(wait_for::read)] = true;
        if ((events & (EPOLLHUP | EPOLLERR)) != 0) s->ended[side(wait_for::write)] = true;
        for (std::size_t i = 0; i < 2; ++i) {
            if (!side_ready[i]) continue;
            if (s->waiter[i]) {
                ready[i] = std::move(s->waiter[i]);
                s->waiter[i] = nullptr;
                --waiting_;
            } else {
                s->ready[i] = true;
            }
        }
    }
    for (auto& r : ready)
        if (r) r({});
}

void edge_poller::on_events(const boost::system::error_code& ec)
{
    {
        std::lock_guard lock(mutex_);
        armed_ = false;
        if (ec || stopped_) return;
    }
    std::array<epoll_event, 64> events{};
    int n;
    do {
        do {
            n = ::epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), 0);
        } while (n < 0 && errno == EINTR);
        for (int i = 0; i < n; ++i)
            deliver(static_cast<std::uint32_t>(events[i].data.u64 & 0xffffffffu),
                    static_cast<std::uint32_t>(events[i].data.u64 >> 32), events[i].events);
    } while (n == static_cast<int>(events.size()));
    std::lock_guard lock(mutex_);
    if (waiting_ > 0 && !armed_ && !stopped_) arm();
}

#else // Asio's reactor underneath

void edge_poller::start_wait(std::uint32_t index, wait_for what, callback done)
{
    std::lock_guard lock(mutex_);
    if (stopped_) return;
    slots_[index].view->async_wait(what == wait_for::read ? asio::posix::stream_descriptor::wait_read
                                                          : asio::posix::stream_descriptor::wait_write,
                                   std::move(done));
}

void edge_poller::cancel_waits(std::uint32_t index)
{
    std::lock_guard lock(mutex_);
    boost::system::error_code ignored;
    slots_[index].view->cancel(ignored);
}

#endif

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
#if defined(PORTUNUSD_EDGE_POLLER_EPOLL)
    // Before release(): until then the owner, and so its descriptor, is certainly alive.
    if (tell_kernel) {
        int fd = -1;
        {
            std::lock_guard lock(p->mutex_);
            if (const auto* s = p->find(index, generation)) fd = s->fd;
        }
        if (fd >= 0) ::epoll_ctl(p->epoll_.get(), EPOLL_CTL_DEL, fd, nullptr);
    }
#else
    static_cast<void>(tell_kernel);
#endif
    p->release(index, generation);
}

} // namespace portunusd
