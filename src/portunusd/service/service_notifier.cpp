// SPDX-License-Identifier: MPL-2.0
// The readiness protocol without libsystemd: a few lines of text in one datagram.
#include "portunusd/service/service_notifier.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace portunusd {

service_notifier::service_notifier() : service_notifier([] {
    const char* name = std::getenv("NOTIFY_SOCKET");
    return std::string_view(name != nullptr ? name : "");
}())
{
}

service_notifier::service_notifier(std::string_view name)
{
    if (name.empty()) return;
    // "@name" is an abstract socket: sun_path starts with a NUL, and the address length, not a
    // terminator, says where the name ends.
    const bool abstract = name.front() == '@';
    if ((!abstract && name.front() != '/') || name.size() >= sizeof address_.sun_path || name.size() < 2) {
        spdlog::warn("NOTIFY_SOCKET '{}' is neither an absolute path nor @name; no notifications sent", name);
        return;
    }
    address_.sun_family = AF_UNIX;
    std::memcpy(address_.sun_path, name.data(), name.size());
    if (abstract) address_.sun_path[0] = '\0';
    address_size_ = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (abstract ? 0 : 1));
    fd_.reset(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd_) spdlog::warn("NOTIFY_SOCKET: socket: {}; no notifications sent", std::strerror(errno));
}

std::string status_line(std::string_view text)
{
    std::string line = "STATUS=";
    for (const char c : text) line += (c == '\n' || c == '\r') ? ' ' : c;
    line += '\n';
    return line;
}

bool service_notifier::send(std::string_view message)
{
    if (!fd_) return false;
    ssize_t n = -1;
    do {
        n = ::sendto(fd_.get(), message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL,
                     reinterpret_cast<const sockaddr*>(&address_), address_size_);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) {
        spdlog::debug("notified the service manager: {}", message.substr(0, message.find('\n')));
        return true;
    }
    const int error = errno;
    // A manager that went away or is slow must not fill the log, nor slow the daemon down.
    if (!warned_.exchange(true))
        spdlog::warn("cannot notify the service manager: {}; further failures are logged at debug level",
                     std::strerror(error));
    else
        spdlog::debug("cannot notify the service manager: {}", std::strerror(error));
    return false;
}

void service_notifier::ready(std::string_view status)
{
    if (!fd_) return;
    send("READY=1\n" + status_line(status) + "MAINPID=" + std::to_string(::getpid()) + "\n");
}

void service_notifier::reloading(std::string_view status)
{
    if (!fd_) return;
    timespec now{};
    ::clock_gettime(CLOCK_MONOTONIC, &now);
    const auto usec = static_cast<unsigned long long>(now.tv_sec) * 1'000'000ULL +
                      static_cast<unsigned long long>(now.tv_nsec) / 1'000ULL;
    send("RELOADING=1\nMONOTONIC_USEC=" + std::to_string(usec) + "\n" + status_line(status));
}

void service_notifier::stopping(std::string_view status)
{
    if (!fd_) return;
    send("STOPPING=1\n" + status_line(status));
}

void service_notifier::status(std::string_view status)
{
    if (!fd_) return;
    send(status_line(status));
}

} // namespace portunusd
