// SPDX-License-Identifier: MPL-2.0
// caller_pool: growth at the high-water mark, reuse, reaping of idle threads, clean shutdown.
#include "portunusd/calls/caller_pool.hpp"

#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

using namespace std::chrono_literals;
using portunusd::caller_pool;

namespace {

long task_count()
{
    long n = 0;
    for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator("/proc/self/task")) ++n;
    return n;
}

/// Jobs that block until released, so a test controls how many run at once.
struct gate {
    std::mutex mutex;
    std::condition_variable changed;
    int running = 0;
    bool open = false;

    void job()
    {
        std::unique_lock lock(mutex);
        ++running;
        changed.notify_all();
        changed.wait(lock, [this] { return open; });
        --running;
        changed.notify_all();
    }
    bool wait_running(int n)
    {
        std::unique_lock lock(mutex);
        return changed.wait_for(lock, 5s, [&] { return running == n; });
    }
    void release()
    {
        std::lock_guard lock(mutex);
        open = true;
        changed.notify_all();
    }
};

template <typename Predicate>
bool eventually(Predicate p, std::chrono::milliseconds within = 5s)
{
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (!p()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(5ms);
    }
    return true;
}

} // namespace

TEST_CASE("the caller pool grows to the peak of concurrent jobs and no further", "[caller_pool]")
{
    const long tasks_before = task_count();
    {
        caller_pool pool(10s);
        gate g;
        for (int i = 0; i < 6; ++i) pool.submit([&] { g.job(); });
        REQUIRE(g.wait_running(6));
        CHECK(pool.threads() == 6);
        g.release();
        REQUIRE(g.wait_running(0));
        // Sequential jobs reuse the idle threads instead of adding any.
        std::atomic<int> done{0};
        for (int i = 0; i < 20; ++i) {
            pool.submit([&] { ++done; });
            REQUIRE(eventually([&] { return done == i + 1; }));
        }
        CHECK(pool.threads() == 6);
    }
    CHECK(eventually([&] { return task_count() == tasks_before; }));
}

TEST_CASE("idle caller threads leave after the idle timeout and come back on demand", "[caller_pool]")
{
    const long tasks_before = task_count();
    {
        caller_pool pool(100ms);
        gate g;
        for (int i = 0; i < 4; ++i) pool.submit([&] { g.job(); });
        REQUIRE(g.wait_running(4));
        g.release();
        CHECK(eventually([&] { return pool.threads() == 0; }));
        CHECK(eventually([&] { return task_count() == tasks_before; }));
        std::atomic<bool> ran{false};
        pool.submit([&] { ran = true; });
        CHECK(eventually([&] { return ran.load(); }));
    }
    CHECK(eventually([&] { return task_count() == tasks_before; }));
}

TEST_CASE("destroying the caller pool waits for every job submitted", "[caller_pool]")
{
    std::atomic<int> done{0};
    {
        caller_pool pool(10s);
        gate g;
        pool.submit([&] { g.job(); });
        REQUIRE(g.wait_running(1));
        for (int i = 0; i < 5; ++i) pool.submit([&] { ++done; });
        g.release();
    }
    CHECK(done == 5);
}
