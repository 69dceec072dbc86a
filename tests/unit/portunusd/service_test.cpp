// SPDX-License-Identifier: MPL-2.0
// Tests of the service room: which passed socket fits which forward, and notifications received
// on a real datagram socket (path and abstract).
#include "portunusd/config/config_values.hpp"
#include "portunusd/service/passed_sockets.hpp"
#include "portunusd/service/service_notifier.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

using namespace portunusd;
using portunusd::config_detail::parse_listen_address;

namespace {

listen_address listen_at(const std::string& text)
{
    auto parsed = parse_listen_address(text);
    REQUIRE(parsed.value);
    return *parsed.value;
}

// A socket bound to an ephemeral port of `host`; listening when asked. Returns the descriptor.
int bound_socket(int type, const char* host, bool listening, std::uint16_t& port)
{
    const bool v6 = std::string(host).find(':') != std::string::npos;
    const int fd = ::socket(v6 ? AF_INET6 : AF_INET, type | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_storage address{};
    socklen_t size = 0;
    if (v6) {
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&address);
        in6->sin6_family = AF_INET6;
        REQUIRE(::inet_pton(AF_INET6, host, &in6->sin6_addr) == 1);
        size = sizeof *in6;
    } else {
        auto* in = reinterpret_cast<sockaddr_in*>(&address);
        in->sin_family = AF_INET;
        REQUIRE(::inet_pton(AF_INET, host, &in->sin_addr) == 1);
        size = sizeof *in;
    }
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), size) == 0);
    if (listening) REQUIRE(::listen(fd, 4) == 0);
    size = sizeof address;
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size) == 0);
    port = ntohs(v6 ? reinterpret_cast<sockaddr_in6*>(&address)->sin6_port
                    : reinterpret_cast<sockaddr_in*>(&address)->sin_port);
    return fd;
}

} // namespace

TEST_CASE("service: a passed socket fits the forward of its protocol and address", "[service]")
{
    std::uint16_t tcp_port = 0, udp_port = 0, idle_port = 0, any_port = 0;
    const int tcp = bound_socket(SOCK_STREAM, "127.0.0.1", true, tcp_port);
    const int udp = bound_socket(SOCK_DGRAM, "127.0.0.1", false, udp_port);
    const int idle = bound_socket(SOCK_STREAM, "127.0.0.1", false, idle_port);
    const int any = bound_socket(SOCK_STREAM, "::", true, any_port);
    auto passed = passed_sockets::adopt({{tcp, "web"}, {udp, "dns"}, {idle, ""}, {any, "all"}});
    REQUIRE(passed.size() == 4);

    const auto at = [](std::uint16_t port) { return listen_at("127.0.0.1:" + std::to_string(port)); };
    // Wrong protocol, address or port: nothing.
    CHECK_FALSE(passed.claim(protocol::udp, at(tcp_port)).fd);
    CHECK_FALSE(passed.claim(protocol::tcp, at(udp_port)).fd);
    CHECK_FALSE(passed.claim(protocol::tcp, listen_at("127.0.0.2:" + std::to_string(tcp_port))).fd);
    CHECK_FALSE(passed.claim(protocol::tcp, listen_at("[::1]:" + std::to_string(tcp_port))).fd);
    // A stream socket that does not listen serves no forward.
    CHECK_FALSE(passed.claim(protocol::tcp, at(idle_port)).fd);
    // An explicit IPv4 wildcard is not "[::]".
    CHECK_FALSE(passed.claim(protocol::tcp, listen_at("0.0.0.0:" + std::to_string(any_port))).fd);

    auto web = passed.claim(protocol::http, at(tcp_port));
    CHECK(web.fd.get() == tcp);
    CHECK(web.name == "web");
    CHECK(web.label() == "fd " + std::to_string(tcp) + " (web)");
    CHECK(passed.claim(protocol::udp, at(udp_port)).fd.get() == udp);
    CHECK(passed.claim(protocol::tcp, listen_at("*:" + std::to_string(any_port))).fd.get() == any);
    // Claimed once.
    CHECK_FALSE(passed.claim(protocol::http, at(tcp_port)).fd);

    const auto left = passed.close_unclaimed();
    REQUIRE(left.size() == 1);
    CHECK(left[0] == "fd " + std::to_string(idle) + ", tcp 127.0.0.1:" + std::to_string(idle_port) + ", not listening");
    CHECK(::fcntl(idle, F_GETFD) == -1); // closed
    CHECK(passed.empty());
}

TEST_CASE("service: adopting makes a passed descriptor close-on-exec", "[service]")
{
    std::uint16_t port = 0;
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0); // without CLOEXEC, as a manager passes it
    REQUIRE(fd >= 0);
    ::close(bound_socket(SOCK_STREAM, "127.0.0.1", false, port));
    auto passed = passed_sockets::adopt({{fd, ""}});
    CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    CHECK(passed.close_unclaimed().size() == 1);
}

TEST_CASE("service: LISTEN_PID of another process touches nothing and the variables go", "[service]")
{
    const int fd3_before = ::fcntl(3, F_GETFD);
    ::setenv("LISTEN_PID", "1", 1);
    ::setenv("LISTEN_FDS", "1", 1);
    ::setenv("LISTEN_FDNAMES", "x", 1);
    const auto passed = passed_sockets::take_from_environment();
    CHECK(passed.empty());
    CHECK(std::getenv("LISTEN_PID") == nullptr);
    CHECK(std::getenv("LISTEN_FDS") == nullptr);
    CHECK(std::getenv("LISTEN_FDNAMES") == nullptr);
    // fd 3, if this process has one, was left as it was (not closed, not made close-on-exec).
    CHECK(::fcntl(3, F_GETFD) == fd3_before);
}

TEST_CASE("service: LISTEN_* variables are read as a service manager writes them", "[service]")
{
    using verdict = listen_variables::verdict;
    const auto v = parse_listen_variables("42", "3", "web:dns:metrics", 42);
    CHECK(v.what == verdict::take);
    CHECK(v.count == 3);
    CHECK(v.names == std::vector<std::string>{"web", "dns", "metrics"});
    CHECK_FALSE(v.names_mismatch);

    // Names are optional; empty ones are names too (systemd writes "unknown" for unnamed ones).
    CHECK(parse_listen_variables("42", "2", nullptr, 42).names.empty());
    CHECK(parse_listen_variables("42", "2", ":b", 42).names == std::vector<std::string>{"", "b"});
    CHECK(parse_listen_variables("42", "0", nullptr, 42).what == verdict::take);
    CHECK(parse_listen_variables("42", "1024", nullptr, 42).what == verdict::take);

    const auto mismatch = parse_listen_variables("42", "2", "a:b:c", 42);
    CHECK(mismatch.what == verdict::take);
    CHECK(mismatch.names_mismatch);
    CHECK(mismatch.names.empty());
    // A name list far longer than any count stops being read at the limit.
    std::string many;
    for (int i = 0; i < 5000; ++i) many += "n:";
    const auto long_list = parse_listen_variables("42", "1", many.c_str(), 42);
    CHECK(long_list.names_mismatch);

    CHECK(parse_listen_variables(nullptr, "1", "a", 42).what == verdict::none);
    CHECK(parse_listen_variables("42", nullptr, "a", 42).what == verdict::none);
    CHECK(parse_listen_variables("41", "1", "a", 42).what == verdict::not_ours);
    for (const char* bad_count : {"", "-1", "1025", "1x", " 1", "+1", "99999999999999999999999"})
        CHECK(parse_listen_variables("42", bad_count, nullptr, 42).what == verdict::malformed);
    for (const char* bad_pid : {"", "x", "42 ", "0x2a"})
        CHECK(parse_listen_variables(bad_pid, "1", nullptr, 42).what == verdict::malformed);
}

TEST_CASE("service: notifications reach a datagram socket by path and by abstract name", "[service]")
{
    for (const bool abstract : {false, true}) {
        const std::string name = abstract ? "@pd-unit-notify-" + std::to_string(::getpid())
                                          : "/tmp/pd-unit-notify-" + std::to_string(::getpid());
        const int listener = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        REQUIRE(listener >= 0);
        sockaddr_un address{};
        address.sun_family = AF_UNIX;
        name.copy(address.sun_path, name.size());
        if (abstract) address.sun_path[0] = '\0';
        const auto size = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size() + (abstract ? 0 : 1));
        if (!abstract) ::unlink(name.c_str());
        REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&address), size) == 0);

        service_notifier notifier(name);
        REQUIRE(notifier.enabled());
        notifier.ready("serving\n2 forwards");
        char buffer[512];
        const auto n = ::recv(listener, buffer, sizeof buffer, MSG_DONTWAIT);
        REQUIRE(n > 0);
        CHECK(std::string(buffer, static_cast<std::size_t>(n)) ==
              "READY=1\nSTATUS=serving 2 forwards\nMAINPID=" + std::to_string(::getpid()) + "\n");
        notifier.stopping("SIGTERM");
        const auto m = ::recv(listener, buffer, sizeof buffer, MSG_DONTWAIT);
        CHECK(std::string(buffer, static_cast<std::size_t>(m > 0 ? m : 0)) == "STOPPING=1\nSTATUS=SIGTERM\n");
        ::close(listener);
        if (!abstract) ::unlink(name.c_str());
        // Nobody listens now: the send fails, quietly, and returns.
        CHECK_FALSE(notifier.send("READY=1\n"));
    }
    CHECK_FALSE(service_notifier("relative").enabled());
    CHECK_FALSE(service_notifier("").enabled());
}
