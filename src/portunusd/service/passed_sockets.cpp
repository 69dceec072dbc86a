// SPDX-License-Identifier: MPL-2.0
// Socket activation without libsystemd: LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES, fds from 3.
#include "portunusd/service/passed_sockets.hpp"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string_view>

namespace portunusd {

namespace {

// The first descriptor a service manager passes (SD_LISTEN_FDS_START).
constexpr int first_passed_fd = 3;
// More than any unit would pass; a larger count is a mistake, not a reason to touch 10^6 fds.
constexpr long most_passed_fds = 1024;

bool parse_number(std::string_view text, long& out)
{
    if (text.empty()) return false;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

void describe_socket(passed_socket& s)
{
    int value = 0;
    socklen_t size = sizeof value;
    if (::getsockopt(s.fd.get(), SOL_SOCKET, SO_TYPE, &value, &size) != 0) return; // not a socket
    s.type = value;
    size = sizeof value;
    value = 0;
    if (::getsockopt(s.fd.get(), SOL_SOCKET, SO_ACCEPTCONN, &value, &size) == 0) s.listening = value != 0;
    sockaddr_storage address{};
    socklen_t address_size = sizeof address;
    if (::getsockname(s.fd.get(), reinterpret_cast<sockaddr*>(&address), &address_size) != 0) return;
    s.family = address.ss_family;
    char text[INET6_ADDRSTRLEN] = {};
    if (s.family == AF_INET) {
        const auto* in = reinterpret_cast<const sockaddr_in*>(&address);
        ::inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        s.port = ntohs(in->sin_port);
        s.host = text;
    } else if (s.family == AF_INET6) {
        const auto* in6 = reinterpret_cast<const sockaddr_in6*>(&address);
        ::inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        s.port = ntohs(in6->sin6_port);
        s.host = text;
    }
}

void unset_listen_variables()
{
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
}

} // namespace

std::string passed_socket::label() const
{
    return "fd " + std::to_string(number) + (name.empty() ? "" : " (" + name + ")");
}

std::string passed_socket::describe() const
{
    std::string text = label() + ", ";
    if (type == 0) return text + "not a socket";
    if (family != AF_INET && family != AF_INET6)
        return text + (family == AF_UNIX ? "a unix-domain socket" : "a socket of family " + std::to_string(family));
    const std::string where = family == AF_INET6 ? "[" + host + "]:" + std::to_string(port)
                                                 : host + ":" + std::to_string(port);
    if (type == SOCK_STREAM) return text + "tcp " + where + (listening ? "" : ", not listening");
    if (type == SOCK_DGRAM) return text + "udp " + where;
    return text + "socket of type " + std::to_string(type) + " at " + where;
}

bool socket_fits(const passed_socket& s, protocol proto, const listen_address& listen)
{
    if (proto == protocol::udp ? s.type != SOCK_DGRAM : (s.type != SOCK_STREAM || !s.listening)) return false;
    if ((s.family != AF_INET && s.family != AF_INET6) || s.port != listen.port) return false;
    // "*" is any address of either family; an explicit wildcard or address must be the same
    // one (the configuration keeps addresses in inet_ntop's canonical form).
    if (listen.any) return s.host == "::" || s.host == "0.0.0.0";
    const bool v6 = listen.host.find(':') != std::string::npos;
    return (s.family == AF_INET6) == v6 && s.host == listen.host;
}

passed_sockets passed_sockets::take_from_environment()
{
    const char* pid_text = std::getenv("LISTEN_PID");
    const char* fds_text = std::getenv("LISTEN_FDS");
    const char* names_text = std::getenv("LISTEN_FDNAMES");
    const std::string names = names_text != nullptr ? names_text : "";
    if (pid_text == nullptr || fds_text == nullptr) {
        unset_listen_variables();
        return {};
    }
    long pid = 0;
    long count = 0;
    const bool parsed = parse_number(pid_text, pid) && parse_number(fds_text, count);
    const std::string pid_copy = pid_text;
    const std::string fds_copy = fds_text;
    unset_listen_variables();
    if (!parsed || count < 0 || count > most_passed_fds) {
        spdlog::warn("ignoring passed sockets: LISTEN_PID={} LISTEN_FDS={} is not a pid and a count up to {}",
                     pid_copy, fds_copy, most_passed_fds);
        return {};
    }
    if (pid != static_cast<long>(::getpid())) {
        // Meant for another process (a shell or wrapper above us that exported them): the
        // descriptors, if any, are not ours to take or close.
        spdlog::info("ignoring LISTEN_FDS={}: LISTEN_PID={} is not this process ({})", count, pid, ::getpid());
        return {};
    }
    std::vector<std::string> split;
    for (std::size_t start = 0; !names.empty();) {
        const auto colon = names.find(':', start);
        split.push_back(names.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
        if (colon == std::string::npos) break;
        start = colon + 1;
    }
    if (!split.empty() && split.size() != static_cast<std::size_t>(count)) {
        spdlog::warn("LISTEN_FDNAMES has {} name(s) for {} socket(s); names ignored", split.size(), count);
        split.clear();
    }
    std::vector<std::pair<int, std::string>> descriptors;
    for (long i = 0; i < count; ++i)
        descriptors.emplace_back(first_passed_fd + static_cast<int>(i),
                                 split.empty() ? std::string() : split[static_cast<std::size_t>(i)]);
    return adopt(std::move(descriptors));
}

passed_sockets passed_sockets::adopt(std::vector<std::pair<int, std::string>> descriptors)
{
    passed_sockets out;
    for (auto& [number, name] : descriptors) {
        const int flags = ::fcntl(number, F_GETFD);
        if (flags < 0) {
            spdlog::warn("passed descriptor {} is not open: {}", number, std::strerror(errno));
            continue;
        }
        // Rule 12: every descriptor the daemon holds is CLOEXEC, so no app inherits a listener.
        ::fcntl(number, F_SETFD, flags | FD_CLOEXEC);
        passed_socket s;
        s.fd = portunus::unique_fd(number);
        s.number = number;
        s.name = std::move(name);
        describe_socket(s);
        spdlog::debug("passed socket {}", s.describe());
        out.sockets_.push_back(std::move(s));
    }
    return out;
}

passed_socket passed_sockets::claim(protocol proto, const listen_address& listen)
{
    for (auto it = sockets_.begin(); it != sockets_.end(); ++it) {
        if (!socket_fits(*it, proto, listen)) continue;
        spdlog::info("{} {}: using the passed socket {}", to_string(proto), listen.text, it->label());
        passed_socket s = std::move(*it);
        sockets_.erase(it);
        return s;
    }
    return {};
}

std::vector<std::string> passed_sockets::close_unclaimed()
{
    std::vector<std::string> closed;
    for (auto& s : sockets_) closed.push_back(s.describe());
    sockets_.clear();
    return closed;
}

} // namespace portunusd
