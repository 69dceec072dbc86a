// SPDX-License-Identifier: MPL-2.0
// The server's thread pool seen from /proc: high-water growth, the cap, reaping and failing handlers.
#include "door_test_support.hpp"
#include "server_process.hpp"

#include <sys/syscall.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace portunus;
using namespace portunus::test;

// Samples /proc/PID/task until stopped and keeps the largest count seen.
class task_sampler {
public:
    explicit task_sampler(const server_process& server)
        : thread_([this, &server](const std::stop_token& stop) {
              while (!stop.stop_requested()) {
                  const long n = server.task_count();
                  long seen = most_.load();
                  while (n > seen && !most_.compare_exchange_weak(seen, n)) {
                  }
                  std::this_thread::sleep_for(1ms);
              }
          })
    {
    }
    long stop()
    {
        thread_.request_stop();
        thread_.join();
        return most_.load();
    }

private:
    std::atomic<long> most_{0};
    std::jthread thread_;
};

} // namespace

TEST_CASE("a handler that throws fails only its call, with EINTR, and the pool stays whole", "[door][pool]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "throw", .park = true});
    const auto client = open_door(dir.file("door"));
    // The parked main thread and the pool's first thread.
    REQUIRE(eventually([&] { return server.task_count() == 2; }, 2s));

    std::error_code ec;
    client.call("throw, please", ec);
    CHECK_DOOR_ERROR(ec, std::errc::interrupted);
    int succeeded = 0;
    for (int i = 0; i < 20; ++i) {
        const std::string request = "fine " + std::to_string(i);
        if (client.call(request, ec).data.view() == request && !ec) ++succeeded;
    }
    CHECK(succeeded == 20);
    client.call("throw again", ec);
    CHECK_DOOR_ERROR(ec, std::errc::interrupted);
    CHECK(client.call("and on", ec).data.view() == "and on");
    CHECK(server.task_count() == 2);
}

TEST_CASE("the pool grows to one thread more than the calls in flight, and no further", "[door][pool]")
{
    const int k = GENERATE(1, 4, 16);
    INFO(k << " calls in flight");
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "block", .park = true});
    const auto client = open_door(dir.file("door"));
    REQUIRE(eventually([&] { return server.task_count() == 2; }, 2s));

    std::vector<std::error_code> errors(static_cast<std::size_t>(k));
    std::vector<std::string> replies(static_cast<std::size_t>(k));
    bool settled = false;
    long while_blocked = -1;
    {
        std::vector<std::jthread> callers;
        for (std::size_t i = 0; i < errors.size(); ++i) {
            callers.emplace_back([&, i] { replies[i] = client.call("block", {}, 10s, errors[i]).data.str(); });
        }
        scope_exit unblock([&] { server.release_all(); });
        REQUIRE(server.wait_lines("enter", static_cast<std::size_t>(k), 5s));
        // Every thread is spawned before its handler runs, so the count is final by now; the
        // poll only allows for /proc catching up.
        settled = eventually([&] { return server.task_count() == k + 1; }, 2s);
        std::this_thread::sleep_for(100ms);
        while_blocked = server.task_count();
        server.release(static_cast<std::size_t>(k));
    }
    CHECK(settled);
    CHECK(while_blocked == k + 1);
    for (std::size_t i = 0; i < errors.size(); ++i) {
        CHECK_FALSE(errors[i]);
        CHECK(replies[i] == "released");
    }

    // Threads are reused: sequential calls never need a new one.
    int failures = 0;
    for (int i = 0; i < 1000; ++i) {
        const std::string request = "sequential " + std::to_string(i);
        std::error_code ec;
        if (client.call(request, ec).data.view() != request || ec) ++failures;
    }
    CHECK(failures == 0);
    CHECK(server.task_count() == k + 1);
}

TEST_CASE("a capped pool serves every call and never exceeds its cap", "[door][pool]")
{
    leak_check leaks;
    temp_dir dir;
    constexpr int calls = 16;
    constexpr unsigned cap = 4;
    constexpr long sleep_ms = 100;
    server_process server(dir.file("door"), {.mode = "sleep", .park = true, .max_threads = cap, .sleep_ms = sleep_ms});
    const auto client = open_door(dir.file("door"));
    std::atomic<int> succeeded{0};
    std::atomic<int> failed{0};
    const auto start = steady::now();
    task_sampler sampler(server);
    {
        std::vector<std::jthread> callers;
        for (int i = 0; i < calls; ++i) {
            callers.emplace_back([&, i] {
                const std::string request = "capped " + std::to_string(i);
                std::error_code ec;
                if (client.call(request, {}, 20s, ec).data.view() == request && !ec) ++succeeded;
                else ++failed;
            });
        }
    }
    const double took = elapsed_ms(start);
    const long most = sampler.stop();
    INFO("most threads seen: " << most << ", took " << took << " ms");
    CHECK(failed == 0);
    CHECK(succeeded == calls);
    // With the parked main thread in the pool, /proc/PID/task is exactly the pool.
    CHECK(most <= static_cast<long>(cap));
    CHECK(most == static_cast<long>(cap)); // and the pool did grow to the cap
    // At most `cap` handlers at once: 16 calls of 100 ms need four rounds.
    CHECK(took >= (calls / cap) * sleep_ms * 0.9);
}

TEST_CASE("idle threads are reaped back to one after a burst", "[door][pool]")
{
    leak_check leaks;
    temp_dir dir;
    constexpr int burst = 8;
    server_process server(dir.file("door"),
                          {.mode = "sleep", .park = true, .idle_timeout_ms = 200, .sleep_ms = 300});
    const auto client = open_door(dir.file("door"));
    std::atomic<int> succeeded{0};
    task_sampler sampler(server);
    {
        std::vector<std::jthread> callers;
        for (int i = 0; i < burst; ++i) {
            callers.emplace_back([&, i] {
                const std::string request = "burst " + std::to_string(i);
                std::error_code ec;
                if (client.call(request, {}, 20s, ec).data.view() == request && !ec) ++succeeded;
            });
        }
    }
    const long peak = sampler.stop();
    const auto burst_done = steady::now();
    const bool reaped = eventually([&] { return server.task_count() == 1; }, 5s);
    const double took = elapsed_ms(burst_done);
    WARN("pool peak " << peak << " threads; back to 1 thread " << took << " ms after the burst");
    CHECK(succeeded == burst);
    CHECK(peak == burst + 1);
    CHECK(reaped);
    CHECK(took >= 150.0); // nobody is reaped before it has been idle for the timeout

    // The parked main thread is left, and it still serves (and grows the pool again).
    std::error_code ec;
    CHECK(client.call("after reaping", {}, 5s, ec).data.view() == "after reaping");
    CHECK_FALSE(ec);
}

// Reaping checks only that more than one thread is left, not that one of them is idle. With a
// call in flight for longer than the idle timeout, the spare thread the high-water rule added
// for it is reaped, and the next call waits for the busy one although the pool is uncapped.
TEST_CASE("reaping never takes the last idle thread while a call is in flight", "[door][pool][regression]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "block", .idle_timeout_ms = 100});
    const auto idle_client = open_door(dir.file("door"));
    std::error_code ec;
    REQUIRE(idle_client.call("ping", ec).data.view() == "ping");
    const auto busy_client = open_door(dir.file("door"));
    std::error_code blocked_ec;
    double waited = 0;
    std::string reply;
    {
        std::jthread blocked([&] { busy_client.call("block", {}, 10s, blocked_ec); });
        scope_exit unblock([&] { server.release_all(); });
        REQUIRE(server.wait_lines("enter", 1, 5s));
        std::this_thread::sleep_for(600ms); // several idle timeouts
        const auto start = steady::now();
        reply = idle_client.call("ping", {}, 1500ms, ec).data.str();
        waited = elapsed_ms(start);
        server.release(1);
    }
    INFO("the call waited " << waited << " ms");
    CHECK_FALSE(ec);
    CHECK(reply == "ping");
    CHECK(waited < 500.0);
    CHECK_FALSE(blocked_ec);
}

// A hangup on a connection is dispatched like a call: the thread that reads the EOF takes an
// idle slot, and if it was the last one the high-water rule spawns a thread for a call that
// does not exist. Clients that open and close handles while calls are in flight then grow the
// pool past "calls in flight + 1" for good (threads are never reaped by default).
TEST_CASE("closing client connections does not grow the pool", "[door][pool][regression]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "block", .park = true});
    const auto client = open_door(dir.file("door"));
    REQUIRE(eventually([&] { return server.task_count() == 2; }, 2s));
    std::error_code blocked_ec;
    long after_closes = -1;
    {
        std::jthread blocked([&] { client.call("block", {}, 10s, blocked_ec); });
        scope_exit unblock([&] { server.release_all(); });
        REQUIRE(server.wait_lines("enter", 1, 5s));
        REQUIRE(server.task_count() == 2); // one call in flight, one idle thread
        // Opening takes no pool thread away (the hello is sent by whoever accepts); closing
        // should not either.
        for (int i = 0; i < 10; ++i) open_door(dir.file("door"));
        std::this_thread::sleep_for(100ms);
        after_closes = server.task_count();
        server.release(1);
    }
    CHECK_FALSE(blocked_ec);
    CHECK(after_closes == 2);
}
