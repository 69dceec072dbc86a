// SPDX-License-Identifier: MPL-2.0
// edge_poller on Linux: an edge-triggered epoll set per event loop, nested in Asio's reactor as one descriptor.
#include "portunusd/net/edge_poller.hpp"

#if defined(PORTUNUSD_EDGE_POLLER_EPOLL)

#include <boost/asio/post.hpp>

#include <sys/epoll.h>

#include <array>
#include <cerrno>
#include <system_error>
#include <utility>

namespace portunusd {

namespace asio = boost::asio;

namespace {

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

constexpr std::size_t side(edge_poller::wait_for w) { return static_cast<std::size_t>(w); }

} // namespace

edge_poller::edge_poller(asio::execution_context& context)
    : asio::execution_context::service(context), loop_(static_cast<asio::io_context&>(context)),
      epoll_(new_epoll()), epoll_waiter_(loop_, epoll_.get())
{
}

edge_poller::~edge_poller()
{
    epoll_waiter_.release(); // epoll_ closes it
}

void edge_poller::watch(std::uint32_t index, std::uint32_t generation, int fd, boost::system::error_code& ec)
{
    // EPOLLRDHUP, EPOLLHUP and EPOLLERR count as readiness: the next read or write reports them.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = pack(index, generation);
    if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &ev) != 0)
        ec.assign(errno, boost::system::system_category());
    else
        ec.clear();
}

void edge_poller::unwatch(int fd) noexcept { ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, fd, nullptr); }

// The set holds nothing per slot beyond the kernel's entry, which unwatch() or close() removes.
void edge_poller::forget_watch(slot& s) noexcept { static_cast<void>(s); }

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

} // namespace portunusd

#endif
