// SPDX-License-Identifier: MPL-2.0
// door_client::call with a deadline: against a slow handler and against a pool with no free thread.
#include "door_test_support.hpp"
#include "server_process.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

namespace {

using namespace portunus;
using namespace portunus::test;

// The state letter of /proc/PID/stat ('T' once stopped), or 0.
char process_state(pid_t pid)
{
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
    const auto end = text.rfind(')'); // the command name may hold spaces and parentheses
    return end != std::string::npos && end + 2 < text.size() ? text[end + 2] : '\0';
}

} // namespace

TEST_CASE("a call with a timeout gives up with ETIMEDOUT and the handle stays usable", "[door][timeout]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "sleep", .sleep_ms = 400});
    const auto client = open_door(dir.file("door"));
    std::error_code ec;
    auto start = steady::now();
    client.call("too slow", {}, 50ms, ec);
    const double gave_up = elapsed_ms(start);
    CHECK_DOOR_ERROR(ec, std::errc::timed_out);
    CHECK(gave_up >= 45.0);
    CHECK(gave_up < 300.0);

    start = steady::now();
    const auto result = client.call("patient", {}, 5s, ec);
    REQUIRE_FALSE(ec);
    CHECK(result.data.view() == "patient");
    CHECK(elapsed_ms(start) >= 350.0);
    CHECK(client.call("no deadline", ec).data.view() == "no deadline");
    CHECK_FALSE(ec);
}

// The deadline is applied only while waiting for the reply. A call that needs a new connection
// first waits for the server's hello with no bound at all, so with every pool thread busy (here
// the pool is capped at one) the call overruns its timeout until a thread frees up.
TEST_CASE("a call's timeout also bounds connecting to a busy server", "[door][timeout][regression]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "block", .max_threads = 1});
    const auto waiting = open_door(dir.file("door"));
    const auto blocker = open_door(dir.file("door"));
    std::error_code blocked_ec;
    std::error_code late_ec;
    std::atomic<bool> late_finished{false};
    double late_ms = 0;
    bool in_time = false;
    {
        std::jthread blocked([&] { blocker.call("block", {}, 10s, blocked_ec); });
        scope_exit unblock([&] { server.release_all(); });
        REQUIRE(server.wait_lines("enter", 1, 5s));

        // With a connection at hand, the timeout works.
        std::error_code ec;
        const auto start = steady::now();
        waiting.call("ping", {}, 200ms, ec);
        CHECK_DOOR_ERROR(ec, std::errc::timed_out);
        CHECK(elapsed_ms(start) < 1000.0);

        // That connection was dropped with the late reply; this call has to connect.
        std::jthread late([&] {
            const auto t0 = steady::now();
            waiting.call("ping", {}, 200ms, late_ec);
            late_ms = elapsed_ms(t0);
            late_finished = true;
        });
        in_time = eventually([&] { return late_finished.load(); }, 1500ms);
        server.release(1); // frees the only pool thread, so the late call ends either way
    }
    INFO("the call took " << late_ms << " ms");
    CHECK(in_time);
    CHECK_DOOR_ERROR(late_ec, std::errc::timed_out);
    CHECK(late_ms < 1000.0);
    CHECK_FALSE(blocked_ec);
}

// Opening waits for the server's greeting. A socket that is listened on but never greets (a
// stopped application, or anything else bound at the path) must not hold the opener for ever.
TEST_CASE("open with a timeout gives up on a listener that never greets", "[door][timeout][open]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("mute");
    unique_fd listener(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    REQUIRE(listener);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    REQUIRE(::bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(listener.get(), 16) == 0);

    std::error_code ec;
    const auto start = steady::now();
    const auto client = door_client::open(path, 150ms, ec);
    const double gave_up = elapsed_ms(start);
    CHECK_DOOR_ERROR(ec, std::errc::timed_out);
    CHECK_FALSE(client.is_open());
    CHECK(gave_up >= 140.0);
    CHECK(gave_up < 1000.0);
}

TEST_CASE("open with a timeout gives up on a stopped server, and succeeds once it runs again",
          "[door][timeout][open]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "echo"});
    REQUIRE(server.kill(SIGSTOP));
    scope_exit resume([&] { server.kill(SIGCONT); });
    // kill() returns before the target has stopped: a server thread still running could greet.
    REQUIRE(eventually([&] { return process_state(server.pid()) == 'T'; }, 2s));

    std::error_code ec;
    const auto start = steady::now();
    door_client::open(dir.file("door"), 150ms, ec);
    const double gave_up = elapsed_ms(start);
    CHECK_DOOR_ERROR(ec, std::errc::timed_out);
    CHECK(gave_up < 1000.0);

    REQUIRE(server.kill(SIGCONT));
    const auto client = door_client::open(dir.file("door"), 5s, ec);
    REQUIRE_FALSE(ec);
    CHECK(client.call("awake", ec).data.view() == "awake");
    CHECK_FALSE(ec);
}
