// SPDX-License-Identifier: MPL-2.0
// door_gate and its call engines against in-process doors: which engine ran, read from counters.
#include "portunusd/calls/door_gate.hpp"

#include "run_until.hpp"

#include <portunus/door.hpp>

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using portunusd::call_outcome;
using portunusd::door_gate;
using portunusd_test::run_until;

namespace {

struct temp_path {
    temp_path()
    {
        char name[] = "/tmp/portunusd-gate-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        dir = name;
    }
    ~temp_path() { std::filesystem::remove_all(dir); }
    temp_path(const temp_path&) = delete;
    temp_path& operator=(const temp_path&) = delete;
    [[nodiscard]] std::string file(const char* name) const { return dir + "/" + name; }
    std::string dir;
};

// A door that answers `prefix` and the request, after `delay`.
portunus::door_server serve(const std::string& path, std::string prefix = {},
                            std::chrono::milliseconds delay = 0ms, std::atomic<bool>* hold = nullptr)
{
    std::error_code ec;
    auto server = portunus::door_server::create(
        [prefix, delay, hold](portunus::door_request& r) {
            if (delay.count() > 0) std::this_thread::sleep_for(delay);
            while (hold != nullptr && hold->load()) std::this_thread::sleep_for(1ms);
            return portunus::door_reply{prefix + std::string(r.data), {}};
        },
        {}, ec);
    REQUIRE_FALSE(ec);
    server.attach(path, ec);
    REQUIRE_FALSE(ec);
    return server;
}

// A SEQPACKET socket bound at `path` and nothing more: no server behind it.
int bound_socket(const std::string& path)
{
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    return fd;
}

// Submits one call and runs the loop (if any) until it ends.
std::optional<call_outcome> call(door_gate& gate, boost::asio::io_context* loop, std::string request,
                                 std::chrono::milliseconds limit = 3s)
{
    auto got = std::make_shared<std::optional<call_outcome>>();
    auto done_flag = std::make_shared<std::atomic<bool>>(false);
    const bool admitted = gate.submit(
        std::move(request),
        [got, done_flag](call_outcome out) {
            *got = std::move(out);
            done_flag->store(true);
        },
        loop != nullptr ? loop->get_executor() : boost::asio::any_io_executor{});
    REQUIRE(admitted);
    if (loop != nullptr) {
        run_until(*loop, [&] { return done_flag->load(); }, limit);
    } else {
        const auto deadline = std::chrono::steady_clock::now() + limit;
        while (!done_flag->load() && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    }
    if (!done_flag->load()) return std::nullopt;
    return *got;
}

} // namespace

TEST_CASE("door_gate: a call without a loop goes to the caller pool", "[door_gate]")
{
    temp_path dir;
    auto server = serve(dir.file("door"), "pool:");
    portunusd::caller_pool pool;
    auto gate = std::make_shared<door_gate>(dir.file("door"), 4, 4, 2000ms, pool);
    const auto out = call(*gate, nullptr, "hello");
    REQUIRE(out);
    CHECK_FALSE(out->ec);
    CHECK(out->reply == "pool:hello");
    const auto s = gate->stats();
    CHECK(s.caller_pool.started == 1);
    CHECK(s.caller_pool.completed == 1);
    CHECK(s.loop_connection.started == 0);
    CHECK(s.batch_link.started == 0);
}

#if !defined(PORTUNUS_DOOR_ILLUMOS)
TEST_CASE("door_gate: calls from a loop take the batch link when small, a loop connection when large",
          "[door_gate]")
{
    temp_path dir;
    auto server = serve(dir.file("door"));
    portunusd::caller_pool pool;
    boost::asio::io_context loop;
    auto gate = std::make_shared<door_gate>(dir.file("door"), 4, 4, 2000ms, pool);
    // The door is not open yet: the first call opens it on the pool.
    auto out = call(*gate, &loop, "first");
    REQUIRE(out);
    CHECK(out->reply == "first");
    CHECK(gate->stats().caller_pool.completed == 1);
    CHECK(gate->stats().caller_pool.handed_to_pool == 0);

    for (int i = 0; i < 3; ++i) {
        out = call(*gate, &loop, "small " + std::to_string(i));
        REQUIRE(out);
        CHECK_FALSE(out->ec);
        CHECK(out->reply == "small " + std::to_string(i));
    }
    CHECK(gate->stats().batch_link.completed == 3);

    const std::string large(100 * 1024, 'L');
    out = call(*gate, &loop, large);
    REQUIRE(out);
    CHECK_FALSE(out->ec);
    CHECK(out->reply == large);
    const auto s = gate->stats();
    CHECK(s.loop_connection.started == 1);
    CHECK(s.loop_connection.completed == 1);
    CHECK(s.caller_pool.started == 1);
    gate->abandon_calls();
}
#endif

TEST_CASE("door_gate: admits max_concurrency calls, queues `queue` more and refuses the rest", "[door_gate]")
{
    temp_path dir;
    std::atomic<bool> hold{true};
    auto server = serve(dir.file("door"), {}, 0ms, &hold);
    portunusd::caller_pool pool;
    auto gate = std::make_shared<door_gate>(dir.file("door"), 1, 1, 5000ms, pool);
    std::atomic<int> done{0};
    const auto count = [&done](const call_outcome& out) {
        CHECK_FALSE(out.ec);
        ++done;
    };
    REQUIRE(gate->submit("a", count));
    REQUIRE(gate->submit("b", count));
    CHECK_FALSE(gate->submit("c", count));
    CHECK(gate->in_flight() == 1);
    CHECK(gate->queued() == 1);
    hold = false;
    const auto deadline = std::chrono::steady_clock::now() + 3s;
    while (done.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    CHECK(done.load() == 2);
    CHECK(gate->in_flight() == 0);
    CHECK(gate->stats().caller_pool.completed == 2);
}

TEST_CASE("door_gate: a replaced door is opened again and the call retried once", "[door_gate]")
{
    temp_path dir;
    auto first = serve(dir.file("door"), "first:");
    portunusd::caller_pool pool;
    boost::asio::io_context loop;
    auto gate = std::make_shared<door_gate>(dir.file("door"), 4, 4, 2000ms, pool);
    const bool from_loop = GENERATE(false, true);
    INFO("from a loop: " << from_loop);
    auto out = call(*gate, nullptr, "a");
    REQUIRE(out);
    CHECK(out->reply == "first:a");
    if (from_loop) {
        out = call(*gate, &loop, "b");
        REQUIRE(out);
        CHECK(out->reply == "first:b");
    }
    auto second = serve(dir.file("door"), "second:");
    first.revoke();
    out = call(*gate, from_loop ? &loop : nullptr, "c");
    REQUIRE(out);
    CHECK_FALSE(out->ec);
    CHECK(out->reply == "second:c");
    const auto s = gate->stats();
    CHECK(s.caller_pool.retried + s.loop_connection.retried + s.batch_link.retried == 1);
    gate->abandon_calls();
}

TEST_CASE("door_gate: a call past its deadline fails with ETIMEDOUT", "[door_gate]")
{
    temp_path dir;
    auto server = serve(dir.file("door"), {}, 600ms);
    portunusd::caller_pool pool;
    boost::asio::io_context loop;
    auto gate = std::make_shared<door_gate>(dir.file("door"), 4, 4, 200ms, pool);
    const bool from_loop = GENERATE(false, true);
    INFO("from a loop: " << from_loop);
    if (from_loop) {
        // Opened by a first call that is allowed to finish (the door answers slowly).
        auto patient = std::make_shared<door_gate>(dir.file("door"), 4, 4, 2000ms, pool);
        REQUIRE(call(*patient, &loop, "open"));
    }
    const auto start = std::chrono::steady_clock::now();
    const auto out = call(*gate, from_loop ? &loop : nullptr, "slow");
    REQUIRE(out);
    CHECK(out->ec == std::errc::timed_out);
    CHECK(std::chrono::steady_clock::now() - start < 550ms);
    gate->abandon_calls();
}

TEST_CASE("door_gate: a door that fails to open is not retried", "[door_gate]")
{
    temp_path dir;
    // A socket file nobody listens on any more: what a crashed application leaves behind.
    const std::string stale = dir.file("stale");
    ::close(bound_socket(stale));

    portunusd::caller_pool pool;
    auto gate = std::make_shared<door_gate>(stale, 4, 4, 2000ms, pool);
    const auto out = call(*gate, nullptr, "anyone?");
    REQUIRE(out);
    CHECK(out->ec == std::errc::bad_file_descriptor);
    // Opening again at once would only find the same stale file.
    CHECK(gate->stats().caller_pool.retried == 0);
    CHECK(gate->stats().caller_pool.completed == 1);
}

TEST_CASE("door_gate: a door that never greets ends by the deadline and holds up no other gate", "[door_gate]")
{
    temp_path dir;
    // A bare listening socket: connections wait in its backlog and are never greeted.
    const std::string mute_path = dir.file("mute");
    const int mute = bound_socket(mute_path);
    REQUIRE(::listen(mute, 16) == 0);
    auto server = serve(dir.file("door"));

    portunusd::caller_pool pool;
    boost::asio::io_context loop;
    auto stuck = std::make_shared<door_gate>(mute_path, 4, 4, 300ms, pool);
    auto fine = std::make_shared<door_gate>(dir.file("door"), 4, 4, 2000ms, pool);
    std::atomic<bool> stuck_done{false};
    std::error_code stuck_ec;
    const auto start = std::chrono::steady_clock::now();
    REQUIRE(stuck->submit("x", [&](call_outcome out) {
        stuck_ec = out.ec;
        stuck_done = true;
    }, loop.get_executor()));
    // While the mute door's open waits, the other gate's calls go through.
    const auto out = call(*fine, &loop, "through");
    REQUIRE(out);
    CHECK(out->reply == "through");
    CHECK(std::chrono::steady_clock::now() - start < 250ms);
    REQUIRE(run_until(loop, [&] { return stuck_done.load(); }, 3s));
    CHECK(stuck_ec == std::errc::timed_out);
    CHECK(std::chrono::steady_clock::now() - start < 1500ms);
    ::close(mute);
}

TEST_CASE("door_gate: its snapshot counts calls, peak and refusals, and tells the door's state", "[door_gate]")
{
    temp_path dir;
    const auto path = dir.file("door");
    portunusd::caller_pool pool;
    auto gate = std::make_shared<door_gate>(path, 1, 1, 2000ms, pool);

    auto s = gate->snapshot();
    CHECK(s.path == path);
    CHECK(s.state == "missing");
    CHECK(s.calls == 0);

    // No door yet: the call fails, and the path is still missing.
    auto out = call(*gate, nullptr, "a");
    REQUIRE(out);
    CHECK(out->ec);
    s = gate->snapshot();
    CHECK(s.state == "missing");
    CHECK(s.calls == 1);
    CHECK(s.errors == 1);

    {
        std::atomic<bool> hold{true};
        auto server = serve(path, "x:", 0ms, &hold);
        CHECK(gate->snapshot().state == "unopened");
        std::atomic<int> done{0};
        REQUIRE(gate->submit("b", [&done](const call_outcome&) { ++done; }));
        REQUIRE(gate->submit("c", [&done](const call_outcome&) { ++done; }));
        CHECK_FALSE(gate->submit("d", [&done](const call_outcome&) { ++done; }));
        s = gate->snapshot();
        CHECK(s.in_flight == 1);
        CHECK(s.queued == 1);
        CHECK(s.queue_full == 1);
        hold = false;
        const auto deadline = std::chrono::steady_clock::now() + 3s;
        while (done.load() < 2 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
        REQUIRE(done.load() == 2);
        s = gate->snapshot();
        CHECK(s.state == "open");
        CHECK(s.server_pid == ::getpid());
        CHECK(s.calls == 3);
        CHECK(s.errors == 1);
        CHECK(s.peak_in_flight == 1);
        CHECK(s.in_flight == 0);
        CHECK(s.queued == 0);
    }
    // The server revoked its door on the way out: nothing is at the path any more.
    CHECK(gate->snapshot().state == "missing");

    // A socket file that nobody serves: the call fails and the door counts as failing until
    // another file takes the path.
    const int fd = bound_socket(path);
    out = call(*gate, nullptr, "e");
    REQUIRE(out);
    CHECK(out->ec);
    CHECK(gate->snapshot().state == "failing");
    // The new door is renamed over the old file while that is still open, so it cannot get its
    // inode number.
    auto again = serve(path, "y:");
    ::close(fd);
    CHECK(gate->snapshot().state == "unopened");
    out = call(*gate, nullptr, "f");
    REQUIRE(out);
    CHECK(out->reply == "y:f");
    s = gate->snapshot();
    CHECK(s.state == "open");
    CHECK(s.errors == 2);
}
