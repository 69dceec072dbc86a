// SPDX-License-Identifier: MPL-2.0
// edge_poller without epoll (illumos): each registration waits through Asio's reactor.
#include "portunusd/net/edge_poller.hpp"

#if !defined(PORTUNUSD_EDGE_POLLER_EPOLL)

#include <utility>

namespace portunusd {

namespace asio = boost::asio;

edge_poller::edge_poller(asio::execution_context& context)
    : asio::execution_context::service(context), loop_(static_cast<asio::io_context&>(context))
{
}

edge_poller::~edge_poller() = default;

void edge_poller::watch(std::uint32_t index, std::uint32_t generation, int fd, boost::system::error_code& ec)
{
    static_cast<void>(generation);
    std::lock_guard lock(mutex_);
    slot& s = slots_[index];
    s.view = std::make_unique<asio::posix::stream_descriptor>(loop_);
    s.view->assign(fd, ec);
}

// Asio's reactor forgets the descriptor when its view lets go of it (forget_watch()).
void edge_poller::unwatch(int fd) noexcept { static_cast<void>(fd); }

void edge_poller::forget_watch(slot& s) noexcept
{
    if (!s.view) return;
    s.view->release(); // the descriptor is the caller's
    s.view.reset();
}

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

} // namespace portunusd

#endif
