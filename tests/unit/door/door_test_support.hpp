// SPDX-License-Identifier: MPL-2.0
// Fixtures shared by the door tests: leak checks, temporary directories, pipes and bounded waits.
#pragma once

#include <portunus/door.hpp>

#include <catch2/catch.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

namespace portunus::test {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

/// Payloads above this size leave the call's inline data on every backend (the uds backend's
/// sealed memfd, illumos's memory object): 128 KiB on both.
inline constexpr std::size_t inline_threshold = 128 * 1024;

/// Deterministic bytes that are not all alike, so a shifted or truncated copy cannot compare equal.
std::string pattern(std::size_t size, std::uint32_t seed);

/// The harness reads /proc, whose layout differs: Linux lists threads in /proc/PID/task and a
/// thread's blocking system call in .../task/TID/syscall; illumos lists LWPs in /proc/PID/lwp
/// and has binary status files. PORTUNUS_TEST_ILLUMOS_PROC selects the illumos layout (set on
/// illumos, and by the illumos compile check so that these paths are compiled on Linux too).
#if defined(__sun) && !defined(PORTUNUS_TEST_ILLUMOS_PROC)
#define PORTUNUS_TEST_ILLUMOS_PROC 1
#endif
/// The directory that lists the threads of `pid` ("self" for this process).
std::string proc_threads_dir(const std::string& pid);
/// The directory of `pid`'s open descriptors; on Linux its entries are symbolic links to what
/// they refer to, on illumos the links are in /proc/PID/path/.
std::string proc_fd_links_dir(const std::string& pid);

/// Entries in a directory such as /proc/self/fd, or -1 if it cannot be read (the process is gone).
long count_entries(const std::string& directory);
/// A wait status of a process that exited with status 0.
bool exited_cleanly(const std::optional<int>& status);

/// Waits until `fd` is readable; false once `deadline` passes.
bool wait_readable(int fd, steady::time_point deadline);

/// Milliseconds from `since` until now.
double elapsed_ms(steady::time_point since);

/// Calls `done` every millisecond until it returns true or `timeout` has passed; the last result.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds timeout);

/// Records how many descriptors and threads this process has; on destruction checks that both
/// counts are back (threads get a short settle poll: a joined thread can linger in /proc briefly).
/// Declare it first in a test case so that it is destroyed last.
class leak_check {
public:
    leak_check();
    ~leak_check();
    leak_check(const leak_check&) = delete;
    leak_check& operator=(const leak_check&) = delete;

private:
    long fds_;
    long tasks_;
};

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it.
class temp_dir {
public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    [[nodiscard]] const std::string& path() const noexcept { return path_; }
    [[nodiscard]] std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

private:
    std::string path_;
};

/// Opens the door at `path` and requires success.
door_client open_door(const std::string& path);

/// A pipe: [0] read end, [1] write end, both close-on-exec.
std::pair<unique_fd, unique_fd> make_pipe();

/// Reads from `fd` until EOF or until `timeout` passes (then `complete` is false).
std::string read_until_eof(int fd, std::chrono::milliseconds timeout, bool& complete);
/// Reads exactly `size` bytes from `fd` or fails (returns fewer) once `timeout` passes.
std::string read_exactly(int fd, std::size_t size, std::chrono::milliseconds timeout);
/// Writes all of `bytes` to `fd`.
bool write_all(int fd, std::string_view bytes);

/// Runs a function when the scope ends; used to unblock helper calls before threads are joined.
template <typename F>
class scope_exit {
public:
    explicit scope_exit(F f) : f_(std::move(f)) {}
    ~scope_exit() { f_(); }
    scope_exit(const scope_exit&) = delete;
    scope_exit& operator=(const scope_exit&) = delete;

private:
    F f_;
};

} // namespace portunus::test

/// Checks that `ec` is the door error `expected` (a std::errc) in portunus::door_category().
#define CHECK_DOOR_ERROR(ec, expected)                                                                      \
    do {                                                                                                    \
        const std::error_code checked_door_error_ = (ec); /* evaluated once: it may be a call */            \
        INFO("error_code: " << checked_door_error_.category().name() << ':' << checked_door_error_.value()   \
                            << " (" << checked_door_error_.message() << ')');                                \
        CHECK(checked_door_error_ == (expected));                                                           \
        CHECK(&checked_door_error_.category() == &::portunus::door_category());                             \
    } while (false)
