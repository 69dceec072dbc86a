// SPDX-License-Identifier: MPL-2.0
// service_notifier: the daemon's state told to a service manager over NOTIFY_SOCKET.
#pragma once

#include <portunus/unique_fd.hpp>

#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <string>
#include <string_view>

namespace portunusd {

/// Sends systemd-style notifications ("READY=1\nSTATUS=...") to the AF_UNIX datagram socket
/// named by NOTIFY_SOCKET: a path, or "@name" for an abstract socket. Every send is
/// non-blocking; a failure is logged once as a warning, later ones at debug level, and never
/// reported to the caller. Without a socket every call does nothing. Any thread.
class service_notifier {
public:
    /// Reads NOTIFY_SOCKET (and leaves the environment alone).
    service_notifier();
    /// The socket named by `name` ("" for none), for tests.
    explicit service_notifier(std::string_view name);
    service_notifier(const service_notifier&) = delete;
    service_notifier& operator=(const service_notifier&) = delete;

    [[nodiscard]] bool enabled() const noexcept { return fd_.valid(); }
    /// READY=1 with the daemon's pid: every listener serves (at start, or after a reload).
    void ready(std::string_view status);
    /// RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC now): a reload begins.
    void reloading(std::string_view status);
    /// STOPPING=1: a drain begins.
    void stopping(std::string_view status);
    /// STATUS= alone.
    void status(std::string_view status);
    /// One datagram as given. True when the kernel took it.
    bool send(std::string_view message);

private:
    portunus::unique_fd fd_;
    sockaddr_un address_{};
    socklen_t address_size_ = 0;
    std::atomic<bool> warned_{false};
};

/// "STATUS=text\n" with any line break in `text` made a space (one message is one line per field).
std::string status_line(std::string_view text);

} // namespace portunusd
