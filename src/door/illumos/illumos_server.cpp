// SPDX-License-Identifier: MPL-2.0
// door_server on native illumos doors: creating, attaching, revoking and parking a door with a private door_xcreate(3C) pool.
#include "door/illumos/illumos_door.hpp"
#include "door/illumos/illumos_payload.hpp"
#include "door/illumos/illumos_server_impl.hpp"
#include "door/pool_signals.hpp"

#include <pthread.h>
#include <stropts.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <type_traits>

namespace portunus {

namespace {

// S_IFDOOR in illumos <sys/stat.h>, spelled out so the compile check needs no stand-in for it.
constexpr mode_t door_file_type = 0xD000;

// Every pool thread: bound, detached, with a stack sized for the largest inline call plus the
// handler's budget (illumos_payload.hpp; the default would be 2 MiB with no budget stated), and
// with every asynchronous signal blocked from its first instruction (pool_signals.hpp).
bool start_detached(void* (*start)(void*), void* arg) noexcept
{
    pthread_attr_t attr;
    if (::pthread_attr_init(&attr) != 0) return false;
    ::pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    ::pthread_attr_setscope(&attr, PTHREAD_SCOPE_SYSTEM); // bound, as door_server_create(3C) asks
    if (::pthread_attr_setstacksize(&attr, illumos::pool_stack_size) != 0) {
        ::pthread_attr_destroy(&attr);
        return false;
    }
    const detail::pool_signal_scope pool_mask; // inherited by the new thread
    pthread_t id;
    const bool started = ::pthread_create(&id, &attr, start, arg) == 0;
    ::pthread_attr_destroy(&attr);
    return started;
}

} // namespace
} // namespace portunus

extern "C" {

static void* portunus_illumos_pool_thread(void* arg)
{
    auto& d = *static_cast<portunus::door_server::impl*>(arg);
    // door_return() is no cancellation point and re-waits on EINTR: a cancelled pool thread would
    // spin in it forever.
    ::pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, nullptr);
    if (::door_bind(d.door_fd_.get()) != 0) {
        d.thread_gone(false);
        return nullptr;
    }
    d.thread_waiting();
    ::door_return(nullptr, 0, nullptr, 0);
    // Reached only when the thread cannot wait on the door at all (a forkall() child).
    d.thread_gone(true);
    return nullptr;
}

static int portunus_illumos_create_thread(door_info_t*, void* (*start)(void*), void* start_arg, void* cookie)
{
    auto& d = *static_cast<portunus::door_server::impl*>(cookie);
    d.thread_starting();
    if (portunus::start_detached(start, start_arg)) return 1;
    d.thread_gone(false);
    return -1;
}

static void portunus_illumos_setup_thread(void* cookie)
{
    ::pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, nullptr);
    static_cast<portunus::door_server::impl*>(cookie)->thread_waiting();
}

} // extern "C"

namespace portunus {

door_server::impl::~impl() { stop_reaper(); }

bool door_server::impl::start_thread() noexcept
{
    return start_detached(&portunus_illumos_pool_thread, this);
}

void door_server::impl::thread_starting() noexcept
{
    std::lock_guard lock(mutex_);
    ++threads_;
}

void door_server::impl::thread_waiting() noexcept
{
    std::lock_guard lock(mutex_);
    ++idle_;
}

void door_server::impl::thread_gone(bool was_waiting) noexcept
{
    std::lock_guard lock(mutex_);
    --threads_;
    if (was_waiting) --idle_;
    changed_.notify_all();
}

void door_server::impl::attach(const std::string& path, std::error_code& ec)
{
    std::lock_guard guard(path_mutex_);
    {
        std::lock_guard lock(mutex_);
        if (revoking_) {
            ec = make_door_error(EBADF);
            return;
        }
    }
    if (!path_.empty()) {
        ec = make_door_error(EBUSY);
        return;
    }
    struct stat st {};
    bool created = false;
    if (::lstat(path.c_str(), &st) != 0) {
        if (errno != ENOENT) {
            ec = make_door_error(errno);
            return;
        }
        // fattach() needs an existing file, and the door takes its owner and mode from it: 0644
        // whatever the umask, so anyone may open (and so call) the door, as with the uds
        // backend's 0666 socket, and the owner has the write permission fattach() demands.
        unique_fd file(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
        if (!file) {
            ec = make_door_error(errno);
            return;
        }
        created = true;
        if (::fchmod(file.get(), 0644) != 0) {
            ec = make_door_error(errno);
            ::unlink(path.c_str());
            return;
        }
    } else if ((st.st_mode & S_IFMT) == door_file_type) {
        // A live door, or a stale one whose server exited. illumos has no atomic replacement
        // (the uds backend renames over the path): between fdetach() and fattach() the path
        // names the plain file underneath, where clients find no door (EBADF) and retry.
        if (::fdetach(path.c_str()) != 0 && errno != EINVAL) {
            ec = make_door_error(errno);
            return;
        }
    } else {
        ec = make_door_error(EEXIST); // never hide a file that is not a door
        return;
    }
    std::string remembered = path; // may throw: before anything is attached
    if (::fattach(door_fd_.get(), path.c_str()) != 0) {
        ec = make_door_error(errno);
        if (created) ::unlink(path.c_str());
        return;
    }
    path_ = std::move(remembered);
}

bool door_server::impl::names_this_door(const std::string& path) const noexcept
{
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 || (st.st_mode & S_IFMT) != door_file_type) return false;
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
    door_info_t di{};
    return fd && ::door_info(fd.get(), &di) == 0 && (di.di_attributes & DOOR_LOCAL) != 0 &&
           di.di_uniquifier == uniquifier_;
}

void door_server::impl::detach() noexcept
{
    std::lock_guard guard(path_mutex_);
    if (path_.empty()) return;
    // Only while the path still names this door: a newer instance may have been attached over
    // it. illumos has no compare-and-detach, so a replacement in the instant between the check
    // and fdetach() would be undone. The plain file underneath is ours (attach() refuses any
    // other), and removing it leaves the path as the uds backend does.
    if (names_this_door(path_) && ::fdetach(path_.c_str()) == 0) ::unlink(path_.c_str());
    path_.clear();
}

void door_server::impl::revoke() noexcept
{
    const bool from_handler = serving_call_of(this);
    {
        std::unique_lock lock(mutex_);
        if (revoking_) {
            // Another thread is revoking; if that is one of this door's handlers, its own call is
            // the last in flight. From inside a handler, waiting would wait for ourselves.
            if (!from_handler) changed_.wait(lock, [this] { return revoked_ && in_flight_ == 0; });
            return;
        }
        revoking_ = true; // from here on the pool only shrinks and attach() refuses
    }
    stop_reaper();
    detach(); // the path stops naming the door before the door stops answering
    retire_threads(from_handler ? 1 : 0);
    ::door_revoke(door_fd_.release()); // also closes the descriptor
    std::lock_guard lock(mutex_);
    revoked_ = true;
    changed_.notify_all();
}

void door_server::impl::park()
{
    if (serving_call_of(this)) return; // a handler cannot wait for its own call to end
    std::unique_lock lock(mutex_);
    const bool stand_in = !revoking_;
    if (stand_in) {
        ++parkers_;
        ++threads_;
        lock.unlock();
        // The calling thread cannot wait in door_return() itself: each call is built at the top
        // of the waiting thread's stack, over the frames of park()'s callers, so door_return()
        // could never come back here. A pool thread stands in for it while it is parked.
        const bool started = start_thread();
        lock.lock();
        if (!started) {
            --threads_;
            changed_.notify_all();
        }
    }
    changed_.wait(lock, [this] { return revoked_ && in_flight_ == 0; });
    if (stand_in) --parkers_;
}

door_server door_server::create(door_handler handler, door_options options, std::error_code& ec)
{
    ec.clear();
    auto d = std::make_shared<impl>();
    d->handler_ = std::move(handler);
    d->options_ = options;
    ::arc4random_buf(d->retire_token_.data(), d->retire_token_.size());
    // DOOR_NO_CANCEL: a caller interrupted by a signal must not get a thread running C++
    // cancelled. door_xcreate() makes the door DOOR_PRIVATE and starts its first thread, bound
    // and waiting, before it returns.
    uint_t attributes = DOOR_NO_CANCEL | DOOR_NO_DEPLETION_CB;
    if (options.refuse_descriptors) attributes |= DOOR_REFUSE_DESC;
    const int fd = ::door_xcreate(&portunus_illumos_door_procedure, door_cookie(d.get()), attributes,
                                  &portunus_illumos_create_thread, &portunus_illumos_setup_thread, d.get(), 1);
    if (fd < 0) {
        ec = make_door_error(errno);
        return {};
    }
    d->door_fd_.reset(fd);
    door_info_t di{};
    if (::door_info(fd, &di) == 0) d->uniquifier_ = di.di_uniquifier;
    if (options.idle_timeout.count() > 0) {
        try {
            const detail::pool_signal_scope pool_mask; // the reaper's retire calls are door calls too
            d->reaper_ = std::thread([raw = d.get()] { raw->reap_loop(); });
        } catch (const std::system_error&) {
            d->revoke();
            ec = make_door_error(EAGAIN);
            return {};
        }
    }
    door_server s;
    s.impl_ = std::move(d);
    return s;
}

void door_server::attach(const std::string& path, std::error_code& ec)
{
    ec.clear();
    if (!impl_) {
        ec = make_door_error(EBADF);
        return;
    }
    impl_->attach(path, ec);
}

void door_server::revoke() noexcept
{
    if (impl_) impl_->revoke();
}

void door_server::park()
{
    if (!impl_) return;
    const std::shared_ptr<impl> keep = impl_;
    keep->park();
}

std::size_t door_server::thread_count() const noexcept
{
    if (!impl_) return 0;
    std::lock_guard lock(impl_->mutex_);
    return impl_->threads_;
}

door_info door_server::info() const noexcept
{
    door_info out;
    if (!impl_) return out;
    std::lock_guard lock(impl_->mutex_);
    out.target = ::getpid();
    out.uniquifier = impl_->uniquifier_;
    out.attributes = door_attr_local | (impl_->options_.refuse_descriptors ? door_attr_refuse_desc : 0u) |
                     (impl_->revoked_ ? door_attr_revoked : 0u);
    return out;
}

// Revoking waits for every other pool thread to finish its call and retire, so no call is in
// flight when this returns, unless it runs inside one of this door's own handlers.
door_server::~door_server()
{
    if (impl_) impl_->revoke();
}

} // namespace portunus
