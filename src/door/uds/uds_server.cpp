// SPDX-License-Identifier: MPL-2.0
// door_server on userland doors: a listening socket and a high-water thread pool over one epoll set.
#include "door/uds/socket_io.hpp"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <unordered_map>

namespace portunus {
namespace {

struct connection {
    unique_fd fd;
    door_credentials caller;
    // Answers to batch calls that are finished but not sent yet (reply_batch entries), so that
    // answers finished back to back leave in one message. Guarded by held_mutex.
    std::mutex held_mutex;
    std::string held;
    // Held across each send: several threads answer the calls of one batch connection, and an
    // answer through a memfd is two messages that nothing may come between.
    std::mutex send_mutex;
};

std::error_code send_error(connection& c, int errno_value)
{
    std::lock_guard lock(c.send_mutex);
    return uds::send_error(c.fd.get(), errno_value);
}

std::error_code send_message(connection& c, uds::message_type type, std::string_view data, std::span<const int> fds)
{
    std::lock_guard lock(c.send_mutex);
    return uds::send_message(c.fd.get(), type, data, fds);
}

std::error_code send_batch_reply(connection& c, std::uint32_t tag, std::int32_t error, std::string_view data)
{
    std::lock_guard lock(c.send_mutex);
    return uds::send_batch_reply(c.fd.get(), tag, error, data);
}

// Answers the batch calls `tags` with one error, in as few messages as fit (error entries are
// larger than empty calls, so the answers to one batch may need two).
void send_errors(connection& c, const std::vector<std::uint32_t>& tags, int errno_value)
{
    std::string body;
    for (const auto tag : tags) {
        if (body.size() + uds::batch_reply_entry_header > uds::wire_inline_max) {
            send_message(c, uds::message_type::reply_batch, body, {});
            body.clear();
        }
        uds::append_batch_reply(body, tag, errno_value, {});
    }
    if (!body.empty()) send_message(c, uds::message_type::reply_batch, body, {});
}

// Held answers past this size are sent at once.
constexpr std::size_t held_limit = 64 * 1024;

void flush_held(connection& c)
{
    std::string out;
    {
        std::lock_guard lock(c.held_mutex);
        out.swap(c.held);
    }
    if (!out.empty()) send_message(c, uds::message_type::reply_batch, out, {});
}

// Tags for the epoll events that are not connections.
char listener_tag;
char wake_tag;
char work_tag;

// One call of a call_batch, waiting for a thread. The connection is shared: its calls may be
// served by several threads, and it may be closed (by its client) while some still wait.
struct work_item {
    std::shared_ptr<connection> c;
    std::uint32_t tag = 0;
    std::string data;
};

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

// Every pool thread waits in epoll_wait on one set that holds the listening socket, a wake
// eventfd and every connection (EPOLLONESHOT, so one call is served by exactly one thread).
// The high-water rule lives in call_started_locked(): a thread that takes the last idle slot to run a call
// first adds a thread, exactly as libc's depletion callback does on illumos.
struct door_server::impl : std::enable_shared_from_this<impl> {
    door_handler handler;
    door_options options;
    unique_fd epoll_fd;
    unique_fd wake_fd;
    unique_fd listen_fd;
    std::string path;
    dev_t path_dev = 0;
    ino_t path_ino = 0;
    std::uint64_t uniquifier = new_uniquifier();

    mutable std::mutex mutex;
    std::condition_variable changed;
    std::size_t total = 0; // pool threads, parked callers included
    std::size_t idle = 0;   // pool threads free to take a call on any connection (in epoll_wait)
    std::size_t sticky = 0; // pool threads waiting for the next call on their last connection
    std::size_t busy = 0;
    bool revoked = false;
    bool attached = false;
    std::atomic<bool> revoked_flag{false};
    std::unordered_map<connection*, std::shared_ptr<connection>> connections;
    // Calls of batches not yet taken by a thread (guarded by mutex). work_fd, edge-triggered in
    // the epoll set, wakes one free thread to help when a thread takes a call and more wait.
    std::deque<work_item> work;
    unique_fd work_fd;
    bool work_wake_pending = false;
    // Connections whose answers a busy thread holds back while it runs the next call of the
    // same batch; the helper woken through work_fd sends them, so that a slow call holds back
    // the answers finished before it only until another thread gets the CPU.
    std::vector<std::shared_ptr<connection>> holders;

    void run(bool parked);
    void spawn_locked();
    void call_started_locked();
    void accept_all();
    bool serve_connection(connection& c, bool& queued);
    bool queue_batch(connection& c, const uds::received_message& m);
    void arm(connection& c);
    void answer_batch(connection& c, const uds::received_message& m, int errno_value);
    void run_work();
    bool receive_call(connection& c, uds::received_message& m, bool& keep, int flags);
    bool serve_call(connection& c, uds::received_message& m);
    void refuse_pending_locked();
    void close_connection(connection* c);
    void finish_locked();
    void revoke();
    uds::wire_hello hello() const
    {
        return {static_cast<std::int32_t>(::getpid()),
                (options.refuse_descriptors ? std::uint32_t{door_attr_refuse_desc} : 0u) | uds::wire_attr_batches,
                uniquifier};
    }
};

void door_server::impl::spawn_locked()
{
    ++total;
    ++idle;
    try {
        std::thread([self = shared_from_this()] { self->run(false); }).detach();
    } catch (const std::system_error&) {
        // No thread to be had: the caller that wanted it waits for a busy one instead, which is
        // what a capped pool does anyway.
        --total;
        --idle;
    }
}

// A thread that left the free set starts a call. The high-water rule: when it took the last
// free slot, a thread is added first, as libc's depletion callback does on illumos.
void door_server::impl::call_started_locked()
{
    ++busy;
    if (idle == 0 && !revoked && (options.max_threads == 0 || total < options.max_threads)) spawn_locked();
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
            // Only a spare may go: the last idle thread is what lets the next call start at once.
            if (!revoked && idle > 1) {
                --total;
                --idle;
                changed.notify_all();
                return; // reaped
            }
            continue;
        }
        if (ev.data.ptr == &wake_tag) break;
        if (ev.data.ptr == &work_tag) {
            std::vector<std::shared_ptr<connection>> held;
            {
                std::lock_guard lock(mutex);
                work_wake_pending = false;
                held.swap(holders);
            }
            for (auto& h : held) flush_held(*h);
            run_work();
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
    --total;
    --idle;
    if (total == 0) finish_locked();
    changed.notify_all();
    if (parked) changed.wait(lock, [this] { return total == 0; });
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
    bool sticking = false; // between calls on c, neither free nor busy
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
        {
            // Only a real call takes the thread out of the free set, so a client closing its
            // connection cannot make the pool grow.
            std::lock_guard lock(mutex);
            if (sticking)
                --sticky;
            else
                --idle;
            sticking = false;
            call_started_locked();
        }
        keep = serve_call(c, m);
        {
            std::lock_guard lock(mutex);
            --busy;
            sticking = keep && !revoked && options.max_threads == 0 && idle > 0;
            if (sticking)
                ++sticky;
            else
                ++idle;
            changed.notify_all();
        }
        if (!sticking) return keep;
    }
    if (sticking) {
        // The connection went quiet (EAGAIN after SO_RCVTIMEO), closed or failed.
        std::lock_guard lock(mutex);
        --sticky;
        ++idle;
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
            if (revoked) return;
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
            send_error(c, ec.value());
        return false;
    }
    const bool batch = m.header.type == uds::message_type::call_batch;
    if (m.header.type != uds::message_type::call && !batch) {
        send_error(c, EPROTO);
        keep = false;
        return false;
    }
    if (revoked_flag.load()) {
        if (batch)
            answer_batch(c, m, EBADF);
        else
            keep = !send_error(c, EBADF);
        return false;
    }
    if (options.refuse_descriptors && !m.fds.empty()) {
        keep = !send_error(c, ENOTSUP);
        return false;
    }
    return true;
}

bool door_server::impl::serve_call(connection& c, uds::received_message& m)
{
    door_request request{m.data, std::move(m.fds), c.caller};
    door_reply reply;
    try {
        reply = handler(request);
    } catch (...) {
        // As if the server thread had quit mid-call (EINTR), but the pool keeps its thread.
        return !send_error(c, EINTR);
    }
    if (reply.fds.size() > door_max_descriptors) return !send_error(c, E2BIG);
    std::vector<int> raw(reply.fds.size());
    for (std::size_t i = 0; i < raw.size(); ++i) raw[i] = reply.fds[i].get();
    return !send_message(c, uds::message_type::reply, reply.data, raw);
}

// Answers every call of a batch with the same error, in one message: EBADF (revoked, nothing
// ran), or EPROTO for a batch that does not decode (and then the connection is done for).
void door_server::impl::answer_batch(connection& c, const uds::received_message& m, int errno_value)
{
    std::vector<uds::batch_entry> entries;
    if (uds::batch_entries(m, entries)) {
        send_error(c, EPROTO);
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
        send_error(c, EPROTO);
        return false;
    }
    std::lock_guard lock(mutex);
    const auto it = connections.find(&c);
    if (it == connections.end()) return false;
    for (const auto& e : entries) work.push_back({it->second, e.tag, std::string(e.data)});
    return true;
}

void door_server::impl::arm(connection& c)
{
    epoll_event again{};
    again.events = EPOLLIN | EPOLLONESHOT;
    again.data.ptr = &c;
    ::epoll_ctl(epoll_fd.get(), EPOLL_CTL_MOD, c.fd.get(), &again);
}

// Serves queued batch calls until none is left. Only a free thread reads a connection, and it
// serves the queue before it reads again, so the queue holds at most a batch (128 KiB) per
// thread that read one: a client cannot make it grow except by making the pool grow, which a
// door's callers can do anyway (max_threads caps it). Each call is a call as any other for the pool:
// taking it makes the thread busy, taking the last free slot adds a thread (the high-water
// rule), and while more calls wait one free thread is woken to help, so that a slow call never
// holds up the calls queued behind it for longer than it takes a thread to wake. Answers
// finished back to back for one connection leave together (see `holders`).
void door_server::impl::run_work()
{
    std::shared_ptr<connection> holding; // whose answers this thread holds back
    const auto stop_holding = [&] {
        if (!holding) return;
        flush_held(*holding);
        std::lock_guard lock(mutex);
        std::erase(holders, holding);
        holding.reset();
    };
    for (;;) {
        work_item w;
        bool wake = false;
        bool helper = false; // a thread is or will be awake to send what this one holds
        {
            std::lock_guard lock(mutex);
            if (work.empty()) break;
            w = std::move(work.front());
            work.pop_front();
            --idle;
            call_started_locked();
            if ((!work.empty() || holding) && idle > 0 && !work_wake_pending) {
                work_wake_pending = true;
                wake = true;
            }
            helper = work_wake_pending;
        }
        if (wake) {
            const std::uint64_t one = 1;
            [[maybe_unused]] auto n = ::write(work_fd.get(), &one, sizeof one);
        }
        // Held answers wait for this call only if a helper can send them should it be slow
        // (with every thread busy in a capped pool, none can).
        if (holding && (holding != w.c || !helper)) stop_holding();
        std::int32_t error = 0;
        door_reply reply;
        if (revoked_flag.load()) {
            error = EBADF;
        } else {
            door_request request{w.data, {}, w.c->caller};
            try {
                reply = handler(request);
                // A batch reply carries no descriptors; a handler that returns some fails the call.
                if (!reply.fds.empty()) error = ENOTSUP;
                // Entry lengths are 32 bits.
                if (reply.data.size() > 0xffffffffu) error = E2BIG;
            } catch (...) {
                error = EINTR;
            }
        }
        if (error != 0) reply.data.clear();
        const std::size_t entry = uds::batch_reply_entry_header + reply.data.size();
        bool hold = false;
        if (entry <= held_limit) {
            std::string full; // what was held, when this answer would not fit beside it
            std::size_t held_size;
            {
                std::lock_guard lock(w.c->held_mutex);
                if (w.c->held.size() + entry > uds::wire_inline_max) full.swap(w.c->held);
                uds::append_batch_reply(w.c->held, w.tag, error, reply.data);
                held_size = w.c->held.size();
            }
            if (!full.empty()) send_message(*w.c, uds::message_type::reply_batch, full, {});
            std::lock_guard lock(mutex);
            hold = held_size < held_limit && !work.empty() && work.front().c == w.c &&
                   (work_wake_pending || idle > 0);
            if (hold && std::find(holders.begin(), holders.end(), w.c) == holders.end()) holders.push_back(w.c);
        } else {
            flush_held(*w.c);
            send_batch_reply(*w.c, w.tag, error, reply.data);
        }
        holding = w.c;
        if (!hold) stop_holding();
        std::lock_guard lock(mutex);
        --busy;
        ++idle;
        changed.notify_all();
    }
    stop_holding();
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
                send_error(*c, EBADF);
        }
    }
    // The queued calls of one connection are answered together.
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
    if (revoked) return;
    revoked = true;
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
    if (total == 0) finish_locked();
    changed.notify_all();
}

door_server door_server::create(door_handler handler, door_options options, std::error_code& ec)
{
    ec.clear();
    auto i = std::make_shared<impl>();
    i->handler = std::move(handler);
    i->options = options;
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
        if (i->total == 0) {
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
        if (d.revoked) {
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
        if (impl_->revoked) return;
        ++impl_->total;
        ++impl_->idle;
    }
    impl_->run(true);
}

std::size_t door_server::thread_count() const noexcept
{
    if (!impl_) return 0;
    std::lock_guard lock(impl_->mutex);
    return impl_->total;
}

door_info door_server::info() const noexcept
{
    door_info info;
    if (!impl_) return info;
    std::lock_guard lock(impl_->mutex);
    info.target = ::getpid();
    info.uniquifier = impl_->uniquifier;
    info.attributes = door_attr_local | (impl_->options.refuse_descriptors ? door_attr_refuse_desc : 0u) |
                      (impl_->revoked ? door_attr_revoked : 0u);
    return info;
}

door_server::~door_server()
{
    if (!impl_) return;
    impl_->revoke();
    std::unique_lock lock(impl_->mutex);
    impl_->changed.wait(lock, [this] { return impl_->total == 0; });
}

} // namespace portunus
