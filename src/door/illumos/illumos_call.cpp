// SPDX-License-Identifier: MPL-2.0
// The native backend's door procedure: a call from the kernel to the handler and its reply through door_return().
#include "door/illumos/illumos_door.hpp"
#include "door/illumos/illumos_payload.hpp"
#include "door/illumos/illumos_server_impl.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <type_traits>

namespace portunus {

namespace {

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

void* door_cookie(door_server::impl* d) noexcept
{
    return reinterpret_cast<void*>(reinterpret_cast<std::uintptr_t>(d) ^ cookie_mask());
}

door_server::impl& server_from_cookie(void* cookie) noexcept
{
    return *reinterpret_cast<door_server::impl*>(reinterpret_cast<std::uintptr_t>(cookie) ^ cookie_mask());
}

bool serving_call_of(const door_server::impl* d) noexcept { return tl_serving == d; }

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
    door_server::impl& d = server_from_cookie(cookie);
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
    door_server::impl& d = server_from_cookie(cookie);
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

// The door procedure. Only plain values live in this frame: door_return() does not come back
// when it succeeds and unwinds nothing, so every C++ object of the call is gone before it runs
// (run_call() has returned), and run_call() is noexcept, so no exception can reach libc.
void portunus_illumos_door_procedure(void* cookie, char* argp, size_t arg_size, door_desc_t* dp,
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
