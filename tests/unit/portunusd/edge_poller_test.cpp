// SPDX-License-Identifier: MPL-2.0
// edge_poller: waits complete on readiness, early edges are kept, cancel and removal, many fds.
#include "portunusd/net/edge_poller.hpp"

#include "run_until.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <vector>

using namespace std::chrono_literals;
using portunusd_test::run_until;
using portunusd::edge_poller;
using wait_for = edge_poller::wait_for;

namespace {

long fd_count()
{
    long n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/fd")) ++n;
    return n;
}

struct socket_pair {
    portunus::unique_fd a, b;
    socket_pair()
    {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        a = portunus::unique_fd(fds[0]);
        b = portunus::unique_fd(fds[1]);
    }
};

void put(const portunus::unique_fd& fd, char c = 'x') { REQUIRE(::write(fd.get(), &c, 1) == 1); }

void drain(const portunus::unique_fd& fd)
{
    char buf[4096];
    while (::read(fd.get(), buf, sizeof buf) > 0) {
    }
}

struct result {
    int calls = 0;
    boost::system::error_code ec;
};

edge_poller::registration watch(edge_poller& poller, const portunus::unique_fd& fd)
{
    boost::system::error_code ec;
    auto reg = poller.add(fd.get(), ec);
    REQUIRE_FALSE(ec);
    REQUIRE(reg.registered());
    return reg;
}

edge_poller::callback record(result& r)
{
    return [&r](const boost::system::error_code& ec) {
        ++r.calls;
        r.ec = ec;
    };
}

} // namespace

TEST_CASE("a read wait completes when data arrives, and not before")
{
    const long fds_before = fd_count();
    {
        boost::asio::io_context loop(1);
        auto& poller = boost::asio::use_service<edge_poller>(loop);
        socket_pair p;
        auto reg = watch(poller, p.a);

        // Registration sees the socket writable at once; reading has to wait.
        run_until(loop, [] { return false; }, 50ms);
        result r;
        reg.async_wait(wait_for::read, record(r));
        run_until(loop, [] { return false; }, 100ms);
        CHECK(r.calls == 0);
        put(p.b);
        REQUIRE(run_until(loop, [&] { return r.calls == 1; }));
        CHECK_FALSE(r.ec);

        // Every new arrival is a new edge, however often the same descriptor waits.
        for (int i = 0; i < 100; ++i) {
            drain(p.a);
            result again;
            reg.async_wait(wait_for::read, record(again));
            put(p.b);
            REQUIRE(run_until(loop, [&] { return again.calls == 1; }));
        }
    }
    CHECK(fd_count() == fds_before);
}

TEST_CASE("an edge that came while nobody waited completes the next wait at once")
{
    boost::asio::io_context loop(1);
    auto& poller = boost::asio::use_service<edge_poller>(loop);
    socket_pair p;
    auto reg = watch(poller, p.a);
    result first;
    reg.async_wait(wait_for::read, record(first));
    put(p.b);
    REQUIRE(run_until(loop, [&] { return first.calls == 1; }));
    // Data arrives, the loop sees the edge, and only then does somebody wait for it.
    put(p.b);
    run_until(loop, [] { return false; }, 50ms);
    result late;
    reg.async_wait(wait_for::read, record(late));
    CHECK(late.calls == 0); // never from inside async_wait itself
    REQUIRE(run_until(loop, [&] { return late.calls == 1; }));
    CHECK_FALSE(late.ec);
}

TEST_CASE("a hang-up that came with the last bytes keeps the read side ready")
{
    // The data and the FIN arrive before anybody looks: one edge for both. The reader takes
    // the data (a short read) and waits again; no new edge will ever come, so the wait must
    // complete on what the poller already saw, and the next read reports the end.
    boost::asio::io_context loop(1);
    auto& poller = boost::asio::use_service<edge_poller>(loop);
    socket_pair p;
    auto reg = watch(poller, p.a);
    put(p.b);
    ::shutdown(p.b.get(), SHUT_WR);
    result first;
    reg.async_wait(wait_for::read, record(first));
    REQUIRE(run_until(loop, [&] { return first.calls == 1; }));
    char c;
    REQUIRE(::read(p.a.get(), &c, 1) == 1);
    for (int i = 0; i < 3; ++i) {
        result after_end;
        reg.async_wait(wait_for::read, record(after_end));
        REQUIRE(run_until(loop, [&] { return after_end.calls == 1; }));
        CHECK(::read(p.a.get(), &c, 1) == 0);
    }
}

TEST_CASE("a write wait completes once a full socket drains")
{
    boost::asio::io_context loop(1);
    auto& poller = boost::asio::use_service<edge_poller>(loop);
    socket_pair p;
    auto reg = watch(poller, p.a);
    std::vector<char> block(65536, 'y');
    while (::write(p.a.get(), block.data(), block.size()) > 0) {
    }
    REQUIRE(errno == EAGAIN);
    // The writable edge of the registration itself may be pending: take it, then wait for real.
    for (int attempt = 0; attempt < 3; ++attempt) {
        result r;
        reg.async_wait(wait_for::write, record(r));
        if (!run_until(loop, [&] { return r.calls == 1; }, 100ms)) {
            reg.cancel();
            REQUIRE(run_until(loop, [&] { return r.calls == 1; }));
            break;
        }
    }
    result r;
    reg.async_wait(wait_for::write, record(r));
    run_until(loop, [] { return false; }, 100ms);
    CHECK(r.calls == 0);
    drain(p.b);
    REQUIRE(run_until(loop, [&] { return r.calls == 1; }));
    CHECK_FALSE(r.ec);
}

TEST_CASE("cancel completes pending waits with operation_aborted; removal drops them")
{
    boost::asio::io_context loop(1);
    auto& poller = boost::asio::use_service<edge_poller>(loop);
    socket_pair p;
    auto reg = watch(poller, p.a);
    result r;
    reg.async_wait(wait_for::read, record(r));
    reg.cancel();
    REQUIRE(run_until(loop, [&] { return r.calls == 1; }));
    CHECK(r.ec == boost::asio::error::operation_aborted);

    result dropped;
    reg.async_wait(wait_for::read, record(dropped));
    reg.remove();
    CHECK_FALSE(reg.registered());
    put(p.b);
    run_until(loop, [] { return false; }, 100ms);
    CHECK(dropped.calls == 0);
}

TEST_CASE("a freed slot reused by another descriptor gets none of the old one's events")
{
    boost::asio::io_context loop(1);
    auto& poller = boost::asio::use_service<edge_poller>(loop);
    socket_pair old_pair;
    socket_pair new_pair;
    auto old_reg = watch(poller, old_pair.a);
    put(old_pair.b); // an edge queued for the old registration
    old_reg.forget();
    old_pair.a.reset(); // closing takes it out of the kernel's set
    auto new_reg = watch(poller, new_pair.a);
    result r;
    new_reg.async_wait(wait_for::read, record(r));
    run_until(loop, [] { return false; }, 100ms);
    CHECK(r.calls == 0);
    put(new_pair.b);
    REQUIRE(run_until(loop, [&] { return r.calls == 1; }));
}

TEST_CASE("hundreds of descriptors wait at once and each is woken exactly once")
{
    boost::asio::io_context loop(1);
    auto& poller = boost::asio::use_service<edge_poller>(loop);
    constexpr int n = 300; // more than one epoll_wait batch
    std::vector<socket_pair> pairs(n);
    std::vector<edge_poller::registration> regs;
    std::vector<result> results(n);
    for (auto& p : pairs) regs.push_back(watch(poller, p.a));
    for (int i = 0; i < n; ++i) regs[i].async_wait(wait_for::read, record(results[i]));
    for (auto& p : pairs) put(p.b);
    REQUIRE(run_until(loop, [&] {
        for (const auto& r : results)
            if (r.calls == 0) return false;
        return true;
    }));
    run_until(loop, [] { return false; }, 50ms);
    for (const auto& r : results) CHECK(r.calls == 1);
}

TEST_CASE("stopping the loop drops waits that own their registration")
{
    // A pending callback that owns the registration it waits on is a cycle; the poller's
    // shutdown must break it, or the registration (and what it belongs to) would leak.
    socket_pair p;
    std::weak_ptr<edge_poller::registration> watched;
    {
        boost::asio::io_context loop(1);
        auto& poller = boost::asio::use_service<edge_poller>(loop);
        auto reg = std::make_shared<edge_poller::registration>(watch(poller, p.a));
        watched = reg;
        reg->async_wait(wait_for::read, [reg](const boost::system::error_code&) {});
        reg.reset();
        CHECK_FALSE(watched.expired());
    }
    CHECK(watched.expired());
}
