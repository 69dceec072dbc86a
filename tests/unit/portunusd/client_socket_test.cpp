// SPDX-License-Identifier: MPL-2.0
// client_socket: non-blocking reads and writes, waits that register lazily, close and reset.
#include "portunusd/net/client_socket.hpp"

#include "run_until.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <vector>

using namespace std::chrono_literals;
using portunusd_test::run_until;
using portunusd::client_socket;
using wait_for = portunusd::edge_poller::wait_for;

namespace {

/// A connected TCP pair on 127.0.0.1: the accepted side non-blocking, as the listener makes it.
struct tcp_pair {
    portunus::unique_fd server, client;
    tcp_pair()
    {
        portunus::unique_fd listener(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(listener);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::bind(listener.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener.get(), 1) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(listener.get(), reinterpret_cast<sockaddr*>(&addr), &len) == 0);
        client = portunus::unique_fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
        REQUIRE(::connect(client.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        server = portunus::unique_fd(::accept4(listener.get(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC));
        REQUIRE(server);
    }
};

} // namespace

TEST_CASE("client_socket reads without blocking and waits for the next bytes")
{
    boost::asio::io_context loop(1);
    tcp_pair p;
    client_socket s(loop.get_executor(), std::move(p.server));
    char buf[64];
    CHECK(s.receive(buf, sizeof buf) == -1);
    CHECK(errno == EAGAIN);
    bool woken = false;
    s.async_wait(wait_for::read, [&](const boost::system::error_code& ec) {
        CHECK_FALSE(ec);
        woken = true;
    });
    run_until(loop, [] { return false; }, 50ms);
    CHECK_FALSE(woken);
    REQUIRE(::write(p.client.get(), "ping", 4) == 4);
    REQUIRE(run_until(loop, [&] { return woken; }));
    CHECK(s.receive(buf, sizeof buf) == 4);
    ::shutdown(p.client.get(), SHUT_WR);
    CHECK(run_until(loop, [&] { return s.receive(buf, sizeof buf) == 0; }));
}

TEST_CASE("client_socket sends what fits and resumes when the peer reads")
{
    boost::asio::io_context loop(1);
    tcp_pair p;
    client_socket s(loop.get_executor(), std::move(p.server));
    const std::vector<char> big(8 << 20, 'z'); // far more than the socket buffers hold
    boost::system::error_code ec;
    std::size_t sent = s.send_some(big.data(), big.size(), ec);
    REQUIRE_FALSE(ec);
    REQUIRE(sent > 0);
    REQUIRE(sent < big.size());
    std::size_t received = 0;
    std::vector<char> sink(1 << 16);
    while (sent < big.size()) {
        bool writable = false;
        s.async_wait(wait_for::write, [&](const boost::system::error_code& e) { writable = !e; });
        // The client reads a little at a time; the wait may also be woken by an older edge.
        while (!writable) {
            const ssize_t n = ::recv(p.client.get(), sink.data(), sink.size(), MSG_DONTWAIT);
            if (n > 0) received += static_cast<std::size_t>(n);
            loop.restart();
            loop.run_for(1ms);
        }
        sent += s.send_some(big.data() + sent, big.size() - sent, ec);
        REQUIRE_FALSE(ec);
    }
    s.close();
    for (;;) {
        const ssize_t n = ::recv(p.client.get(), sink.data(), sink.size(), 0);
        if (n <= 0) break;
        received += static_cast<std::size_t>(n);
    }
    CHECK(received == big.size());
}

TEST_CASE("closing drops a pending wait; reset_on_close resets the peer")
{
    boost::asio::io_context loop(1);
    tcp_pair p;
    {
        client_socket s(loop.get_executor(), std::move(p.server));
        bool ran = false;
        s.async_wait(wait_for::read, [&](const boost::system::error_code&) { ran = true; });
        const std::vector<char> some(4096, 'q');
        boost::system::error_code ec;
        REQUIRE(s.send_some(some.data(), some.size(), ec) == some.size());
        s.reset_on_close();
        s.close();
        CHECK_FALSE(s.is_open());
        run_until(loop, [] { return false; }, 50ms);
        CHECK_FALSE(ran);
    }
    // SO_LINGER 0: the connection ends with a reset, not the FIN of an orderly close (bytes that
    // had already reached the client's side are still read first).
    char buf[8192];
    ssize_t n = 0;
    int err = 0;
    for (int i = 0; i < 200; ++i) {
        n = ::recv(p.client.get(), buf, sizeof buf, MSG_DONTWAIT);
        err = errno;
        if (n == 0 || (n < 0 && err != EAGAIN)) break;
        if (n < 0) ::usleep(10000);
    }
    CHECK(n == -1);
    CHECK(err == ECONNRESET);
}
