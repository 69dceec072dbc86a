// SPDX-License-Identifier: MPL-2.0
// door_server on userland doors: a listening socket and a high-water thread pool over one epoll set.
#include "door/uds/server_impl.hpp"
#include "door/pool_signals.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

namespace portunus {
namespace {

// Tags for the epoll events that are not connections.
char listener_tag;
char wake_tag;
char work_tag;

std::uint64_t new_uniquifier()
{
    static std::atomic<std::uint64_t> counter{0};
    static const std::uint64_t base = [] {
        std::random_device rd;
        return (std::uint64_t{rd()} << 32) ^ rd();
    }();
    return base ^ (++counter * 0x9e3779b97f4a7c15ULL) ^ static_cast<std::uint64_t>(::getpid());
}

// Bounds how long a pool thread can be held by a peer that stops reading its reply: the door's
// callers are local processes, but they need not be well behaved.
constexpr timeval peer_send_timeout{10, 0};
// How long a thread waits for the next call on its last connection before handing it back to
// epoll (see serve_connection); it also bounds a peer that stalls mid-message.
constexpr std::chrono::milliseconds stick_timeout{1000};

} // namespace

uds::wire_hello door_server::impl::hello() const
{
    return {static_cast<std::int32_t>(::getpid()),
            (options.refuse_descriptors ? std::uint32_t{door_attr_refuse_desc} : 0u) | uds::wire_attr_batches,
            uniquifier};
}

void door_server::impl::spawn_locked()
{
    pool.add_idle();
    try {
        const detail::pool_signal_scope pool_mask; // the new thread starts with it
        std::thread([self = shared_from_this()] { self->run(false); }).detach();
    } catch (const std::system_error&) {
        // No thread to be had: the caller that wanted it waits for a busy one instead, which is
        // what a capped pool does anyway.
        pool.remove_idle();
    }
}

void door_server::impl::run(bool parked)
{
    const int timeout = (!parked && options.idle_timeout.count() > 0)
                            ? static_cast<int>(std::min<long long>(options.idle_timeout.count(), 1 << 30))
                            : -1;
    for (;;) {
        epoll_event ev{};
        const int n = ::epoll_wait(epoll_fd.get(), &ev, 1, timeout);
        if (n < 0) {
            if (errno == EINTR) continue;
            break;
        }
        if (n == 0) {
            std::unique_lock lock(mutex);
            if (pool.reap_spare()) {
                changed.notify_all();
                return; // reaped
            }
            continue;
        }
        if (ev.data.ptr == &wake_tag) break;
        if (ev.data.ptr == &work_tag) {
            help_with_work();
            continue;
        }
        if (ev.data.ptr == &listener_tag) {
            accept_all();
            continue;
        }
        auto* c = static_cast<connection*>(ev.data.ptr);
        bool queued = false;
        if (!serve_connection(*c, queued)) {
            close_connection(c);
        } else if (!revoked_flag.load()) {
            arm(*c);
        }
        if (queued) run_work(); // the calls of the batch just read
        // After revoke a kept connection stays disarmed; finish_locked() answers and closes it.
    }

    std::unique_lock lock(mutex);
    pool.remove_idle();
    if (pool.total() == 0) finish_locked();
    changed.notify_all();
    if (parked) changed.wait(lock, [this] { return pool.total() == 0; });
}

// Serves the calls of one connection that epoll reported readable; false when it is finished.
// After a call, the thread stays with its connection and waits for the next call in a blocking
// receive, as long as another thread is free to take calls on other connections: a caller
// that makes call after call on one connection (an event loop does) then costs this side one
// receive and one send per call, instead of an epoll wait, a receive, a receive that finds
// nothing and a re-arm. Only in an uncapped pool, where a thread is added whenever the last
// free one starts a call; in a capped one a thread held by a quiet connection could make a
// call on another wait. A quiet connection is handed back to epoll after `stick_timeout`.
bool door_server::impl::serve_connection(connection& c, bool& queued)
{
    bool sticking = false; // bound to c (see pool_accounting), neither free nor busy
    bool keep = true;
    for (;;) {
        uds::received_message m;
        if (!receive_call(c, m, keep, sticking ? 0 : MSG_DONTWAIT)) break;
        if (m.header.type == uds::message_type::call_batch) {
            // Its calls go to the work queue; this thread takes them once the connection is
            // re-armed, so that the client's next batch can be read meanwhile.
            keep = queue_batch(c, m);
            queued = keep;
            break;
        }
        if (!sticking) {
            // Only a real call takes the thread out of the free set, so a client closing its
            // connection cannot make the pool grow.
            std::lock_guard lock(mutex);
            if (pool.idle_to_busy()) spawn_locked();
        }
        keep = serve_call(c, m);
        if (sticking) {
            // Its calls change no count (see pool_accounting), so no mutex between them.
            if (keep && !revoked_flag.load(std::memory_order_relaxed)) continue;
            break;
        }
        {
            std::lock_guard lock(mutex);
            sticking = keep && pool.may_stick();
            if (sticking)
                pool.busy_to_sticky();
            else
                pool.busy_to_idle();
            changed.notify_all();
        }
        if (!sticking) return keep;
    }
    if (sticking) {
        // The connection went quiet (EAGAIN after SO_RCVTIMEO), closed or failed.
        std::lock_guard lock(mutex);
        pool.sticky_to_idle();
        changed.notify_all();
    }
    return keep;
}

void door_server::impl::accept_all()
{
    // A pool that reaps idle threads sooner than stick_timeout does not keep them stuck longer.
    const auto stick = (options.idle_timeout.count() > 0 && options.idle_timeout < stick_timeout)
                           ? options.idle_timeout
                           : stick_timeout;
    const timeval receive_timeout{static_cast<time_t>(stick.count() / 1000),
                                  static_cast<suseconds_t>((stick.count() % 1000) * 1000)};
    for (;;) {
        unique_fd fd(::accept4(listen_fd.get(), nullptr, nullptr, SOCK_CLOEXEC));
        if (!fd) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            break; // EAGAIN, or descriptors exhausted: try again on the next readiness event
        }
        auto c = std::make_shared<connection>();
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            c->caller.uid = cred.uid;
            c->caller.gid = cred.gid;
            c->caller.pid = cred.pid;
        }
        ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &receive_timeout, sizeof receive_timeout);
        ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &peer_send_timeout, sizeof peer_send_timeout);
        connection* raw = c.get();
        {
            // Checked before the hello: a client that never saw a hello reports EBADF ("nothing
            // ran, reopen"), whereas a hello followed by a close would read as EINTR.
            std::lock_guard lock(mutex);
            if (pool.revoked()) return;
            if (uds::send_hello(fd.get(), hello())) continue;
            c->fd = std::move(fd);
            connections.emplace(raw, std::move(c));
        }
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLONESHOT;
        ev.data.ptr = raw;
        ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_ADD, raw->fd.get(), &ev);
    }
    if (!revoked_flag.load()) {
        epoll_event ev{};
        ev.events = EPOLLIN | EPOLLONESHOT;
        ev.data.ptr = &listener_tag;
        ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_MOD, listen_fd.get(), &ev);
    }
}

bool door_server::impl::receive_call(connection& c, uds::received_message& m, bool& keep, int flags)
{
    if (auto ec = uds::receive_message(c.fd.get(), uds::thread_receive_buffer(), m, flags)) {
        keep = ec.value() == EAGAIN;
        if (ec.value() == EPROTO || ec.value() == EPROTONOSUPPORT || ec.value() == E2BIG)
            c.send_error(ec.value());
        return false;
    }
    const bool batch = m.header.type == uds::message_type::call_batch;
    if (m.header.type != uds::message_type::call && !batch) {
        c.send_error(EPROTO);
        keep = false;
        return false;
    }
    if (revoked_flag.load()) {
        if (batch)
            answer_batch(c, m, EBADF);
        else
            keep = !c.send_error(EBADF);
        return false;
    }
    if (options.refuse_descriptors && !m.fds.empty()) {
        keep = !c.send_error(ENOTSUP);
        return false;
    }
    return true;
}

bool door_server::impl::serve_call(connection& c, uds::received_message& m)
{
    door_request request{m.data, std::move(m.fds), c.caller};
    door_reply reply;
    if (const int error = invoke_handler(request, reply)) return !c.send_error(error);
    if (reply.fds.size() > door_max_descriptors) return !c.send_error(E2BIG);
    std::vector<int> raw(reply.fds.size());
    for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = reply.fds[i].get();
    return !c.send(uds::message_type::reply, reply.bytes(), raw);
}

// Runs the application's handler for one call, single or batched: 0 when `reply` is the answer,
// otherwise the call's errno value.
int door_server::impl::invoke_handler(door_request& request, door_reply& reply)
{
    try {
        reply = handler(request);
        return 0;
    } catch (...) {
        // As if the server thread had quit mid-call (EINTR), but the pool keeps its thread.
        return EINTR;
    }
}

void door_server::impl::arm(connection& c)
{
    epoll_event again{};
    again.events = EPOLLIN | EPOLLONESHOT;
    again.data.ptr = &c;
    ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_MOD, c.fd.get(), &again);
}

void door_server::impl::close_connection(connection* c)
{
    ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_DEL, c->fd.get(), nullptr);
    std::lock_guard lock(mutex);
    connections.erase(c);
}

// Shutting the read side makes any later send from a client fail with EPIPE (reported as
// EBADF), and calls already queued are answered EBADF, so no caller is left waiting on a door
// whose threads are leaving. A call being served keeps its connection's write side for the reply.
void door_server::impl::refuse_pending_locked()
{
    for (auto& [raw, c] : connections) {
        ::shutdown(c->fd.get(), SHUT_RD);
        uds::received_message m;
        while (!uds::receive_message(c->fd.get(), uds::thread_receive_buffer(), m, MSG_DONTWAIT)) {
            if (m.header.type == uds::message_type::call_batch)
                answer_batch(*c, m, EBADF);
            else
                c->send_error(EBADF);
        }
    }
    refuse_work_locked();
}

// Runs when the last pool thread leaves after revoke, so nothing else touches the sockets.
void door_server::impl::finish_locked()
{
    holders.clear();
    listen_fd.reset();
    refuse_pending_locked();
    connections.clear();
}

void door_server::impl::revoke()
{
    std::lock_guard lock(mutex);
    if (!pool.revoke()) return;
    revoked_flag.store(true);
    if (attached) {
        struct stat st {};
        // Remove the name only while it is still ours: a newer instance may have replaced it.
        if (::stat(path.c_str(), &st) == 0 && st.st_dev == path_dev && st.st_ino == path_ino)
            ::unlink(path.c_str());
        ::shutdown(listen_fd.get(), SHUT_RDWR);
    }
    refuse_pending_locked();
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(wake_fd.get(), &one, sizeof one);
    if (pool.total() == 0) finish_locked();
    changed.notify_all();
}

door_server door_server::create(door_handler handler, door_options options, std::error_code& ec)
{
    ec.clear();
    auto i = std::make_shared<impl>();
    i->handler = std::move(handler);
    i->options = options;
    i->pool = uds::pool_accounting(options.max_threads);
    i->uniquifier = new_uniquifier();
    i->epoll_fd.reset(::epoll_create1(EPOLL_CLOEXEC));
    i->wake_fd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    i->work_fd.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!i->epoll_fd || !i->wake_fd || !i->work_fd) {
        ec = make_door_error(errno);
        return {};
    }
    // Level-triggered on purpose: once revoke writes it, every thread that waits sees it.
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = &wake_tag;
    if (::epoll_ctl(i->epoll_fd.get(), EPOLL_CTL_ADD, i->wake_fd.get(), &ev) != 0) {
        ec = make_door_error(errno);
        return {};
    }
    // Edge-triggered: each write wakes one waiting thread, and nobody needs to read it back
    // (the counter cannot overflow at one increment per batch).
    epoll_event work_ev{};
    work_ev.events = EPOLLIN | EPOLLET;
    work_ev.data.ptr = &work_tag;
    if (::epoll_ctl(i->epoll_fd.get(), EPOLL_CTL_ADD, i->work_fd.get(), &work_ev) != 0) {
        ec = make_door_error(errno);
        return {};
    }
    {
        std::lock_guard lock(i->mutex);
        i->spawn_locked();
        if (i->pool.total() == 0) {
            ec = make_door_error(EAGAIN);
            return {};
        }
    }
    door_server s;
    s.impl_ = std::move(i);
    return s;
}

void door_server::attach(const std::string& path, std::error_code& ec)
{
    ec.clear();
    if (!impl_) {
        ec = make_door_error(EBADF);
        return;
    }
    impl& d = *impl_;
    {
        std::lock_guard lock(d.mutex);
        if (d.pool.revoked()) {
            ec = make_door_error(EBADF);
            return;
        }
        if (d.attached) {
            ec = make_door_error(EBUSY);
            return;
        }
    }
    struct stat st {};
    if (::lstat(path.c_str(), &st) == 0 && !S_ISSOCK(st.st_mode)) {
        ec = make_door_error(EEXIST); // never replace a file that is not a door
        return;
    }
    // Bind under a temporary name in the same directory, then rename() over the real one: the
    // path always names a working door, the old one or the new one, never nothing.
    char suffix[32];
    std::snprintf(suffix, sizeof suffix, ".%d.%08llx~", static_cast<int>(::getpid()),
                  static_cast<unsigned long long>(d.uniquifier & 0xffffffffULL));
    const std::string temporary = path + suffix;
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (temporary.size() >= sizeof addr.sun_path) {
        ec = make_door_error(ENAMETOOLONG);
        return;
    }
    std::memcpy(addr.sun_path, temporary.c_str(), temporary.size() + 1);
    unique_fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        ec = make_door_error(errno);
        return;
    }
    ::unlink(temporary.c_str());
    if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::chmod(temporary.c_str(), 0666) != 0 || ::listen(fd.get(), SOMAXCONN) != 0 ||
        ::stat(temporary.c_str(), &st) != 0) {
        ec = make_door_error(errno);
        ::unlink(temporary.c_str());
        return;
    }
    if (::rename(temporary.c_str(), path.c_str()) != 0) {
        ec = make_door_error(errno);
        ::unlink(temporary.c_str());
        return;
    }
    std::lock_guard lock(d.mutex);
    d.path = path;
    d.path_dev = st.st_dev;
    d.path_ino = st.st_ino;
    d.listen_fd = std::move(fd);
    d.attached = true;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLONESHOT;
    ev.data.ptr = &listener_tag;
    ::epoll_ctl(d.epoll_fd.get(), EPOLL_CTL_ADD, d.listen_fd.get(), &ev);
}

void door_server::revoke() noexcept
{
    if (impl_) impl_->revoke();
}

void door_server::park()
{
    if (!impl_) return;
    {
        std::lock_guard lock(impl_->mutex);
        if (impl_->pool.revoked()) return;
        impl_->pool.add_idle();
    }
    // While it serves, the parked thread blocks the signals the application catches, so none
    // interrupts a handler on it; signals whose default action ends the process still do (an
    // application that parks its main thread may rely on SIGTERM's). Its own mask comes back
    // when park() returns. On illumos the caller only waits and a pool thread serves for it.
    const detail::pool_signal_scope pool_mask(detail::caught_signal_mask(), SIG_BLOCK);
    impl_->run(true);
}

std::size_t door_server::thread_count() const noexcept
{
    if (!impl_) return 0;
    std::lock_guard lock(impl_->mutex);
    return impl_->pool.total();
}

door_info door_server::info() const noexcept
{
    door_info info;
    if (!impl_) return info;
    std::lock_guard lock(impl_->mutex);
    info.target = ::getpid();
    info.uniquifier = impl_->uniquifier;
    info.attributes = door_attr_local | (impl_->options.refuse_descriptors ? door_attr_refuse_desc : 0u) |
                      (impl_->pool.revoked() ? door_attr_revoked : 0u);
    return info;
}

door_server::~door_server()
{
    if (!impl_) return;
    impl_->revoke();
    std::unique_lock lock(impl_->mutex);
    impl_->changed.wait(lock, [this] { return impl_->pool.total() == 0; });
}

} // namespace portunus
