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
        value = 0;
        size = sizeof value;
        if (::getsockopt(s.fd.get(), IPPROTO_IPV6, IPV6_V6ONLY, &value, &size) == 0) s.v6_only = value != 0;
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
    const std::string only = v6_only ? " (IPv6 only)" : "";
    if (type == SOCK_STREAM) return text + "tcp " + where + only + (listening ? "" : ", not listening");
    if (type == SOCK_DGRAM) return text + "udp " + where + only;
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

listen_variables parse_listen_variables(const char* pid, const char* fds, const char* names, long own_pid)
{
    listen_variables v;
    if (pid == nullptr || fds == nullptr) return v;
    if (!parse_number(pid, v.pid) || !parse_number(fds, v.count) || v.count < 0 ||
        v.count > listen_variables::most_passed_fds) {
        v.what = listen_variables::verdict::malformed;
        return v;
    }
    if (v.pid != own_pid) {
        v.what = listen_variables::verdict::not_ours;
        return v;
    }
    v.what = listen_variables::verdict::take;
    const std::string_view list = names != nullptr ? names : "";
    std::vector<std::string> split;
    for (std::size_t start = 0; !list.empty();) {
        const auto colon = list.find(':', start);
        split.emplace_back(list.substr(start, colon == std::string_view::npos ? std::string_view::npos : colon - start));
        if (colon == std::string_view::npos) break;
        // More names than the most descriptors there may be: no need to read on.
        if (split.size() > static_cast<std::size_t>(listen_variables::most_passed_fds)) break;
        start = colon + 1;
    }
    if (!split.empty() && split.size() != static_cast<std::size_t>(v.count))
        v.names_mismatch = true;
    else
        v.names = std::move(split);
    return v;
}

passed_sockets passed_sockets::take_from_environment()
{
    const char* pid_text = std::getenv("LISTEN_PID");
    const char* fds_text = std::getenv("LISTEN_FDS");
    const std::string pid_copy = pid_text != nullptr ? pid_text : "";
    const std::string fds_copy = fds_text != nullptr ? fds_text : "";
    const listen_variables v = parse_listen_variables(pid_text, fds_text, std::getenv("LISTEN_FDNAMES"), ::getpid());
    unset_listen_variables();
    switch (v.what) {
    case listen_variables::verdict::none: return {};
    case listen_variables::verdict::malformed:
    {
        passed_sockets out;
        out.note(spdlog::level::warn,
                 fmt::format("ignoring passed sockets: LISTEN_PID={} LISTEN_FDS={} is not a pid and a count up to {}",
                             pid_copy, fds_copy, listen_variables::most_passed_fds));
        return out;
    }
    case listen_variables::verdict::not_ours:
        // Meant for another process (a shell or wrapper above us that exported them): the
        // descriptors, if any, are not ours to take or close.
    {
        passed_sockets out;
        out.note(spdlog::level::info,
                 fmt::format("ignoring LISTEN_FDS={}: LISTEN_PID={} is not this process ({})", v.count, v.pid, ::getpid()));
        return out;
    }
    case listen_variables::verdict::take: break;
    }
    std::vector<std::pair<int, std::string>> descriptors;
    for (long i = 0; i < v.count; ++i)
        descriptors.emplace_back(listen_variables::first_passed_fd + static_cast<int>(i),
                                 v.names.empty() ? std::string() : v.names[static_cast<std::size_t>(i)]);
    passed_sockets out = adopt(std::move(descriptors));
    if (v.names_mismatch)
        out.note(spdlog::level::warn,
                 fmt::format("LISTEN_FDNAMES does not have one name for each of the {} socket(s); names ignored", v.count));
    return out;
}

void passed_sockets::note(spdlog::level::level_enum level, std::string text)
{
    notes_.emplace_back(level, std::move(text));
}

void passed_sockets::log_notes()
{
    for (const auto& [level, text] : notes_) spdlog::log(level, "{}", text);
    notes_.clear();
}

passed_sockets passed_sockets::adopt(std::vector<std::pair<int, std::string>> descriptors)
{
    passed_sockets out;
    for (auto& [number, name] : descriptors) {
        const int flags = ::fcntl(number, F_GETFD);
        if (flags < 0) {
            out.note(spdlog::level::warn, fmt::format("passed descriptor {} is not open: {}", number, std::strerror(errno)));
            continue;
        }
        // Rule 12: every descriptor the daemon holds is CLOEXEC, so no app inherits a listener.
        ::fcntl(number, F_SETFD, flags | FD_CLOEXEC);
        passed_socket s;
        s.fd = portunus::unique_fd(number);
        s.number = number;
        s.name = std::move(name);
        describe_socket(s);
        out.note(spdlog::level::debug, "passed socket " + s.describe());
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
