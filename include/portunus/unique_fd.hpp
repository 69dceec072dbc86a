// SPDX-License-Identifier: MPL-2.0
// unique_fd: the one owner of a file descriptor.
#pragma once

#include <unistd.h>

#include <utility>

namespace portunus {

/// Move-only owner of a descriptor; closes it on destruction. Not thread-safe.
class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : fd_(fd) {}
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    unique_fd(unique_fd&& other) noexcept : fd_(other.release()) {}
    unique_fd& operator=(unique_fd&& other) noexcept
    {
        if (this != &other) reset(other.release());
        return *this;
    }
    ~unique_fd() { reset(); }

    /// The descriptor, still owned by this object; -1 when empty.
    [[nodiscard]] int get() const noexcept { return fd_; }
    [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
    explicit operator bool() const noexcept { return valid(); }

    /// Gives up ownership without closing.
    [[nodiscard]] int release() noexcept { return std::exchange(fd_, -1); }

    /// Closes the current descriptor (if any) and owns `fd` instead.
    void reset(int fd = -1) noexcept
    {
        // close() errors are not actionable here: the descriptor is gone either way on Linux
        // and illumos, so retrying would risk closing a descriptor another thread just opened.
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

} // namespace portunus
