// SPDX-License-Identifier: MPL-2.0
// door_server on native illumos doors: a private door_xcreate(3C) pool grown at the high-water mark.
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

enum class after_call { reply, quit };

// What the door procedure does once the C++ part of a call is over, in plain values only.
struct staged_reply {
    after_call action = after_call::reply;
    char* data = nullptr;
    std::size_t size = 0;
    door_desc_t* descs = nullptr;
    uint_t desc_count = 0;
    bool last = false; // the door is revoked and no longer counts this thread
};
static_assert(std::is_trivially_destructible_v<staged_reply>);

staged_reply quit() noexcept
{
    staged_reply r;
    r.action = after_call::quit;
    return r;
}

// Per-thread state with trivial destructors: a pool thread ends inside libc, so it frees what it
// holds itself before it quits, and no thread-exit machinery is relied upon.
struct reply_storage {
    void* memory;
    std::size_t capacity;
};
thread_local reply_storage tl_reply{nullptr, 0};
thread_local ucred_t* tl_ucred = nullptr;
thread_local const void* tl_serving = nullptr; // the door whose call this thread is running

// A large reply is not kept pinned by a thread that may then wait idle for hours.
constexpr std::size_t reply_storage_kept = 64 * 1024;

void release_thread_storage() noexcept
{
    std::free(tl_reply.memory);
    tl_reply = {nullptr, 0};
    if (tl_ucred != nullptr) ::ucred_free(tl_ucred);
    tl_ucred = nullptr;
}

// Every client can read the door's cookie with door_info(3C): it must not give away a heap
// address, so the server pointer travels masked with a per-process random value.
std::uintptr_t cookie_mask() noexcept
{
    static const std::uintptr_t mask = [] {
        std::uintptr_t m = 0;
        ::arc4random_buf(&m, sizeof m);
        return m;
    }();
    return mask;
}

void* to_cookie(door_server::impl* d) noexcept
{
    return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(d) ^ cookie_mask());
}

door_server::impl& from_cookie(void* cookie) noexcept
{
    return *reinterpret_cast<door_server::impl*>(reinterpret_cast<std::uintptr_t>(cookie) ^ cookie_mask());
}

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

door_credentials read_caller() noexcept
{
    door_credentials caller;
    // door_ucred() allocates a ucred_t on first use and refills the same one after that.
    if (::door_ucred(&tl_ucred) == 0) {
        caller.uid = ::ucred_geteuid(tl_ucred);
        caller.gid = ::ucred_getegid(tl_ucred);
        caller.pid = ::ucred_getpid(tl_ucred);
    }
    return caller;
}

// Copies the reply where it outlives this call's C++ objects: door_return() reads it after they
// are gone. Descriptors come first, where malloc()'s alignment suits door_desc_t. Borrowed bytes
// (static, or inline call arguments, which stay on this thread's stack until door_return() has
// copied the reply out) are not copied, unless `may_borrow` is false: the request came in a
// memory object, whose mapping goes with the call's C++ objects. A large reply goes in a memory
// object of its own, passed last with DOOR_RELEASE, and the data are a payload_header.
bool stage_reply(door_reply& reply, bool may_borrow, staged_reply& r) noexcept
{
    if (reply.fds.size() > door_max_descriptors) {
        // The caller must see E2BIG, as with the uds backend, and a server cannot fail a call
        // with an errno of its choosing. So one descriptor more than the limit is sent, with no
        // data, and the client refuses that reply with E2BIG (take_results()); the rest are
        // closed here. 254 is well within the kernel's own door_max_desc (1024), above which
        // door_return() itself would fail.
        reply.fds.resize(door_max_descriptors + 1);
        reply.data.clear();
        reply.borrowed.reset();
        may_borrow = true;
    }
    try {
        const std::string_view bytes_out = reply.bytes();
        if (reply.fds.size() <= door_max_descriptors && illumos::needs_memory_object(bytes_out, reply.fds.size())) {
            int error = 0;
            unique_fd object = illumos::make_memory_object(bytes_out, error);
            if (!object) return false;
            reply.fds.push_back(std::move(object));
            illumos::payload_header header;
            header.size = bytes_out.size();
            reply.data.assign(reinterpret_cast<const char*>(&header), sizeof header);
            reply.borrowed.reset();
        } else if (reply.borrowed && !may_borrow) {
            reply.data.assign(bytes_out.data(), bytes_out.size());
            reply.borrowed.reset();
        }
    } catch (...) {
        return false; // no memory: the call fails as if the handler had thrown
    }
    const std::size_t count = reply.fds.size();
    const std::size_t desc_bytes = count * sizeof(door_desc_t);
    const std::size_t copied = reply.borrowed ? 0 : reply.data.size();
    const std::size_t need = desc_bytes + copied;
    if (need > tl_reply.capacity) {
        std::free(tl_reply.memory);
        tl_reply.memory = std::malloc(need);
        tl_reply.capacity = tl_reply.memory != nullptr ? need : 0;
        if (tl_reply.memory == nullptr) return false;
    }
    auto* const descs = static_cast<door_desc_t*>(tl_reply.memory);
    for (std::size_t i = 0; i < count; ++i) {
        descs[i] = door_desc_t{};
        // DOOR_RELEASE: the kernel closes our copy once it is passed, or discarded with the reply.
        descs[i].d_attributes = DOOR_DESCRIPTOR | DOOR_RELEASE;
        descs[i].d_data.d_desc.d_descriptor = reply.fds[i].release();
    }
    const std::string_view data = reply.bytes();
    char* bytes = const_cast<char*>(data.data()); // door_return() only reads it
    if (!reply.borrowed) {
        bytes = static_cast<char*>(tl_reply.memory) + desc_bytes;
        if (!data.empty()) std::memcpy(bytes, data.data(), data.size());
    }
    r.data = data.empty() ? nullptr : bytes;
    r.size = data.size();
    r.descs = count != 0 ? descs : nullptr;
    r.desc_count = static_cast<uint_t>(count);
    return true;
}

} // namespace

// Call-side pool rules, shared by the door procedure below.
namespace {

void enter_call(door_server::impl& d) noexcept
{
    bool grow = false;
    {
        std::lock_guard lock(d.mutex_);
        if (d.idle_ > 0) --d.idle_;
        d.idle_low_ = std::min(d.idle_low_, d.idle_);
        ++d.in_flight_;
        // The high-water rule: the call that takes the last idle thread adds one before it runs.
        if (d.idle_ == 0 && !d.revoking_ && (d.options_.max_threads == 0 || d.threads_ < d.options_.max_threads)) {
            ++d.threads_;
            grow = true;
        }
    }
    if (grow && !d.start_thread()) d.thread_gone(false);
}

// The caller must see EINTR, as the header promises for a failed handler, and the kernel reports
// that only when the serving thread quits: a new thread takes this one's place first, so the pool
// stays whole (and retire calls sent during revocation still find a thread to take them).
staged_reply abandon_call(door_server::impl& d) noexcept
{
    if (d.start_thread()) {
        release_thread_storage();
        return quit();
    }
    // No thread to be had: rather than shrink the pool, this one stays and answers empty.
    std::lock_guard lock(d.mutex_);
    ++d.idle_;
    return {};
}

staged_reply leave_call(door_server::impl& d, bool ok, const staged_reply& r) noexcept
{
    {
        std::lock_guard lock(d.mutex_);
        --d.in_flight_;
        if (d.revoked_) {
            // Only a thread whose own handler revoked the door gets here: revoke() could not
            // retire it. It leaves the count now and must not touch `d` again, which may be gone
            // by the time door_return() runs; afterwards it stays blocked on the revoked door.
            --d.threads_;
            d.changed_.notify_all();
            if (!ok) {
                release_thread_storage();
                return quit();
            }
            staged_reply final_reply = r;
            final_reply.last = true;
            return final_reply;
        }
        if (ok) {
            ++d.idle_;
            return r;
        }
    }
    return abandon_call(d);
}

staged_reply run_call(void* cookie, char* argp, std::size_t arg_size, door_desc_t* dp, uint_t n_desc) noexcept
{
    door_server::impl& d = from_cookie(cookie);
    if (tl_reply.capacity > reply_storage_kept) {
        std::free(tl_reply.memory);
        tl_reply = {nullptr, 0};
    }
    if (d.is_retire_call(argp, arg_size, n_desc)) {
        d.retire_this_thread();
        release_thread_storage();
        return quit();
    }
    const door_credentials caller = read_caller();
    enter_call(d);
    staged_reply r;
    {
        // Keeps the server alive through the bookkeeping below even if the handler destroys the
        // last door_server that refers to it.
        const std::shared_ptr<door_server::impl> keep = d.weak_from_this().lock();
        bool ok = false;
        tl_serving = &d;
        try {
            door_request request;
            if (arg_size != 0) request.data = std::string_view(argp, arg_size);
            request.caller = caller;
            illumos::adopt_descriptors(dp, n_desc, request.fds);
            // A large request is in a memory object, mapped here for the handler's whole run.
            door_buffer payload;
            int payload_error = 0;
            const bool in_object = illumos::take_payload(request.data, request.fds, payload, payload_error);
            if (in_object) request.data = payload.view();
            if (payload_error == 0 && !(d.options_.refuse_descriptors && !request.fds.empty())) {
                door_reply reply = d.handler_(request);
                ok = stage_reply(reply, !in_object, r);
            }
            // Otherwise the call fails (EINTR, the only way an illumos server can fail one): its
            // memory object was bad, or it carried descriptors to a door that refuses them,
            // which the kernel already stops (DOOR_REFUSE_DESC); this is a second fence.
        } catch (...) {
            ok = false;
        }
        tl_serving = nullptr;
        r = leave_call(d, ok, r);
    }
    return r;
}

// door_return() came back, so the reply was not delivered and the caller is still waiting for
// this thread (door_return() in usr/src/uts/common/fs/doorfs/door_sys.c returns the error of
// door_results() to the server and leaves the caller asleep). The caller must not see an empty
// success: the call is failed the only way a server can fail one, by this thread quitting (the
// caller gets EINTR) after a replacement is started.
staged_reply reply_failed(void* cookie, const staged_reply& r, int error) noexcept
{
    // door_results() refuses E2BIG (the caller passed no result buffer, more than door_max_desc
    // descriptors, or door_copy() could not lock a page of the caller's result buffer), EMFILE
    // and EFAULT before it takes the reply's descriptors; our copies are still open. After
    // EINVAL it has already released the DOOR_RELEASE ones.
    if (error == E2BIG || error == EMFILE || error == EFAULT)
        for (uint_t i = 0; i < r.desc_count; ++i) ::close(r.descs[i].d_data.d_desc.d_descriptor);
    if (r.last) {
        release_thread_storage();
        return quit();
    }
    door_server::impl& d = from_cookie(cookie);
    if (r.size == 0 && r.desc_count == 0) {
        // Not even an empty reply gets through (EINVAL: a forkall() child): this thread is done.
        d.thread_gone(true); // leave_call() counted it idle
        release_thread_storage();
        return quit();
    }
    {
        std::lock_guard lock(d.mutex_);
        --d.idle_; // leave_call() counted this thread idle
    }
    return abandon_call(d);
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

// The door procedure. Only plain values live in this frame: door_return() does not come back
// when it succeeds and unwinds nothing, so every C++ object of the call is gone before it runs
// (run_call() has returned), and run_call() is noexcept, so no exception can reach libc.
static void portunus_illumos_door_procedure(void* cookie, char* argp, size_t arg_size, door_desc_t* dp,
                                            uint_t n_desc)
{
    portunus::staged_reply r = portunus::run_call(cookie, argp, arg_size, dp, n_desc);
    while (r.action == portunus::after_call::reply) {
        ::door_return(r.data, r.size, r.descs, r.desc_count);
        r = portunus::reply_failed(cookie, r, errno);
    }
    // Returning ends this thread inside libc, and the kernel fails the caller's door_call() with
    // EINTR: the only way a door server can fail a call.
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
    const bool from_handler = tl_serving == this;
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
    if (tl_serving == this) return; // a handler cannot wait for its own call to end
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
    const int fd = ::door_xcreate(&portunus_illumos_door_procedure, to_cookie(d.get()), attributes,
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
