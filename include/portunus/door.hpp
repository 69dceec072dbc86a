// SPDX-License-Identifier: MPL-2.0
// The door API: call a door by path, or create, attach and serve one; same on every backend.
#pragma once

#include <portunus/door_error.hpp>
#include <portunus/unique_fd.hpp>

#include <sys/types.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace portunus {

/// Door attribute bits, with the illumos values (sys/door.h).
enum door_attributes : std::uint32_t {
    door_attr_local = 0x04,       ///< output only: this process created the door
    door_attr_revoked = 0x08,     ///< output only: the door was revoked
    door_attr_refuse_desc = 0x40, ///< calls carrying descriptors fail with ENOTSUP
};

/// The most descriptors one call or reply may carry (Linux SCM_MAX_FD). More is E2BIG.
inline constexpr std::size_t door_max_descriptors = 253;

/// Bytes that own their storage: heap memory, or a read-only mapping of a sealed memfd for large
/// payloads (no copy). Move-only.
class door_buffer {
public:
    door_buffer() noexcept = default;
    explicit door_buffer(std::string_view bytes);
    /// Takes ownership of a read-only mapping of `map_length` bytes whose first `size` are data.
    static door_buffer adopt_mapping(void* address, std::size_t size, std::size_t map_length) noexcept;
    /// Takes ownership of `block` (from new char[]), whose data are the `size` bytes at `offset`.
    static door_buffer adopt_heap(char* block, std::size_t offset, std::size_t size) noexcept;
    door_buffer(door_buffer&& other) noexcept;
    door_buffer& operator=(door_buffer&& other) noexcept;
    door_buffer(const door_buffer&) = delete;
    door_buffer& operator=(const door_buffer&) = delete;
    ~door_buffer();

    [[nodiscard]] const char* data() const noexcept { return data_; }
    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
    [[nodiscard]] std::string_view view() const noexcept { return {data_, size_}; }
    [[nodiscard]] std::string str() const { return std::string(view()); }

private:
    void release() noexcept;
    char* data_ = nullptr;
    std::size_t size_ = 0;
    std::size_t map_length_ = 0; // non-zero: data_ is an mmap()ed region
    char* heap_ = nullptr;       // set: data_ lies inside this new[]ed block, which owns it
};

/// What a call returns: the reply bytes and any descriptors the server passed back.
struct door_result {
    door_buffer data;
    std::vector<unique_fd> fds;
};

/// Who made a call, as the kernel saw the caller's process.
struct door_credentials {
    uid_t uid = static_cast<uid_t>(-1);
    gid_t gid = static_cast<gid_t>(-1);
    pid_t pid = -1;
};

/// door_info(3C) in portable form.
struct door_info {
    pid_t target = -1;             ///< server process id; -1 once it has exited
    std::uint32_t attributes = 0;  ///< door_attributes bits
    std::uint64_t uniquifier = 0;  ///< identifies this door instance (changes on restart)
};

/// A client's reference to one door instance (like an fd from open(2) on illumos). Copies share
/// the reference. Thread-safe: any number of threads may call() at once, none waits for another.
/// Once the door it refers to is revoked or replaced, calls fail with EBADF: open the path again.
class door_client {
public:
    door_client() = default;

    /// Opens the door at `path`. ENOENT if the path does not exist; EBADF if nothing serves it.
    static door_client open(const std::string& path, std::error_code& ec);
    /// Like open(), but fails with ETIMEDOUT once `timeout` passes before the door answers (a
    /// userland door's server that is stopped, or a socket that never greets); a timeout of 0
    /// waits for ever. Opening a native door never waits, so illumos ignores the deadline.
    static door_client open(const std::string& path, std::chrono::milliseconds timeout, std::error_code& ec);

    /// Calls the door: `data` and `fds` in, reply out. The descriptors are always consumed
    /// (closed after sending, as DOOR_RELEASE does), whether or not the call succeeds.
    door_result call(std::string_view data, std::vector<unique_fd> fds, std::error_code& ec) const;
    door_result call(std::string_view data, std::error_code& ec) const { return call(data, {}, ec); }

    /// Like call(), but fails with ETIMEDOUT once `timeout` passes with no reply. The server is
    /// not interrupted; its reply is discarded. (uds backend; illumos ignores the deadline.)
    door_result call(std::string_view data, std::vector<unique_fd> fds,
                     std::chrono::milliseconds timeout, std::error_code& ec) const;

    /// Like call() with a timeout, for data given in up to `door_max_pieces` pieces that the server
    /// receives as one: a large body and the few bytes before it need not be copied together
    /// first. (Userland doors write the pieces straight into the message or its memfd; illumos
    /// joins them, since door_call(3C) takes one buffer.)
    static constexpr std::size_t door_max_pieces = 4;
    door_result call(std::span<const std::string_view> pieces, std::vector<unique_fd> fds,
                     std::chrono::milliseconds timeout, std::error_code& ec) const;


    /// door_info(3C) for the door this handle refers to.
    door_info info(std::error_code& ec) const;

    [[nodiscard]] const std::string& path() const noexcept;
    [[nodiscard]] bool is_open() const noexcept { return impl_ != nullptr; }

    struct impl;

private:
    friend class loop_client; // the userland backend's event-loop interface (internal)
    std::shared_ptr<impl> impl_;
};

/// One call as the server sees it. `data` is valid only while the handler runs; the handler owns
/// `fds`.
struct door_request {
    std::string_view data;
    std::vector<unique_fd> fds;
    door_credentials caller;
};

/// A handler's answer: bytes and descriptors (closed here once sent).
struct door_reply {
    std::string data;
    std::vector<unique_fd> fds;
    /// Set instead of `data` to answer without copying the bytes into the reply, as
    /// door_return(3C) answers from any memory. They are read after the handler returns, until
    /// the reply is sent: static data, or any part of the request's `data` (which lives until
    /// then), never a local of the handler.
    std::optional<std::string_view> borrowed{};

    /// The bytes the caller receives.
    [[nodiscard]] std::string_view bytes() const noexcept { return borrowed ? *borrowed : std::string_view(data); }
};

/// Serves one call. Runs on a pool thread; may run on several threads at once. An exception
/// that escapes it fails that call with EINTR for the caller and leaves the pool whole.
using door_handler = std::function<door_reply(door_request&)>;

/// How a door's server thread pool behaves. The defaults are illumos's.
struct door_options {
    /// Calls carrying descriptors fail with ENOTSUP (DOOR_REFUSE_DESC).
    bool refuse_descriptors = false;
    /// 0: no cap (a thread is added whenever a call takes the last idle one). N: at most N pool
    /// threads; further callers wait for one to free up, none fails.
    unsigned max_threads = 0;
    /// 0: threads are never reaped. Otherwise a thread idle this long exits, down to one thread.
    std::chrono::milliseconds idle_timeout{0};
};

/// A door created by this process, and its pool of server threads. Move-only; destroying it
/// revokes the door and waits for the calls in flight.
class door_server {
public:
    door_server() = default;
    door_server(door_server&&) noexcept;
    door_server& operator=(door_server&&) noexcept;
    ~door_server();

    /// Creates the door and its first, parked, server thread.
    static door_server create(door_handler handler, door_options options, std::error_code& ec);

    /// Makes the door reachable at `path`. A live door or a stale door already there is replaced
    /// (calls in flight on the old one finish): atomically on userland doors; on illumos the old
    /// one is detached first, and open() fails with EBADF until the new one is attached.
    /// Anything else there is refused with EEXIST.
    void attach(const std::string& path, std::error_code& ec);

    /// New calls fail with EBADF; calls in flight finish. Removes the path if it still names
    /// this door. Idempotent.
    void revoke() noexcept;

    /// The calling thread joins the pool (door_return(NULL, 0, NULL, 0)). Returns once the door
    /// is revoked and no call is in flight. Parked threads are never reaped. While parked, the
    /// thread blocks the signals the process has handlers for (its mask is restored on return).
    void park();

    /// Server threads in the pool right now (parked callers of park() included).
    [[nodiscard]] std::size_t thread_count() const noexcept;

    [[nodiscard]] door_info info() const noexcept;
    [[nodiscard]] bool valid() const noexcept { return impl_ != nullptr; }

    struct impl;

private:
    std::shared_ptr<impl> impl_;
};

} // namespace portunus
