// SPDX-License-Identifier: MPL-2.0
// The uds server's pool accounting alone: each transition, the invariant, and the high-water, reap and stick rules.
#include "door/uds/pool_accounting.hpp"

#include <catch2/catch.hpp>

#include <cstddef>

namespace {

using portunus::uds::pool_accounting;

struct counts {
    std::size_t total;
    std::size_t idle;
    std::size_t busy;
    std::size_t sticky;
};

void require_counts(const pool_accounting& p, counts want)
{
    CHECK(p.total() == want.total);
    CHECK(p.idle() == want.idle);
    CHECK(p.busy() == want.busy);
    CHECK(p.sticky() == want.sticky);
    REQUIRE(p.idle() + p.busy() + p.sticky() == p.total());
}

pool_accounting pool_of(std::size_t idle, std::size_t max_threads = 0)
{
    pool_accounting p(max_threads);
    for (std::size_t i = 0; i < idle; ++i) p.add_idle();
    return p;
}

} // namespace

TEST_CASE("pool accounting: a new pool is empty, and threads join and leave as idle", "[door][pool_accounting]")
{
    pool_accounting p;
    require_counts(p, {0, 0, 0, 0});
    CHECK_FALSE(p.revoked());
    p.add_idle();
    p.add_idle();
    require_counts(p, {2, 2, 0, 0});
    p.remove_idle();
    require_counts(p, {1, 1, 0, 0});
    p.remove_idle();
    require_counts(p, {0, 0, 0, 0});
}

TEST_CASE("pool accounting: the high-water rule starts a thread when the last idle one takes a call",
          "[door][pool_accounting]")
{
    auto p = pool_of(2);
    CHECK_FALSE(p.idle_to_busy()); // one idle thread is left
    require_counts(p, {2, 1, 1, 0});
    CHECK(p.idle_to_busy()); // that was the last one
    require_counts(p, {2, 0, 2, 0});
    CHECK(p.must_start_another());
    p.add_idle(); // the thread it starts
    CHECK_FALSE(p.must_start_another());
    require_counts(p, {3, 1, 2, 0});
    p.busy_to_idle();
    p.busy_to_idle();
    require_counts(p, {3, 3, 0, 0});
}

TEST_CASE("pool accounting: a failed start leaves the pool as it was", "[door][pool_accounting]")
{
    auto p = pool_of(1);
    REQUIRE(p.idle_to_busy());
    p.add_idle();
    p.remove_idle(); // the thread could not be started
    require_counts(p, {1, 0, 1, 0});
    CHECK(p.must_start_another()); // the next taker tries again
}

TEST_CASE("pool accounting: a capped pool stops starting threads at the cap", "[door][pool_accounting]")
{
    auto p = pool_of(1, 2);
    REQUIRE(p.idle_to_busy()); // 1 of 2
    p.add_idle();
    CHECK_FALSE(p.idle_to_busy()); // 2 of 2: callers wait instead
    require_counts(p, {2, 0, 2, 0});
    CHECK_FALSE(p.must_start_another());
}

TEST_CASE("pool accounting: a revoked pool starts no thread and reaps none", "[door][pool_accounting]")
{
    auto p = pool_of(3);
    REQUIRE(p.revoke());
    CHECK_FALSE(p.revoke()); // once
    CHECK(p.revoked());
    CHECK_FALSE(p.reap_spare());
    CHECK_FALSE(p.idle_to_busy());
    CHECK_FALSE(p.idle_to_busy());
    CHECK_FALSE(p.idle_to_busy()); // the last idle slot, yet no new thread
    require_counts(p, {3, 0, 3, 0});
    CHECK_FALSE(p.may_stick());
}

TEST_CASE("pool accounting: reaping never takes the last idle thread", "[door][pool_accounting]")
{
    auto p = pool_of(3);
    REQUIRE_FALSE(p.idle_to_busy());
    require_counts(p, {3, 2, 1, 0});
    CHECK(p.reap_spare());
    require_counts(p, {2, 1, 1, 0});
    // A busy thread does not count: the one idle thread is what lets the next call start.
    CHECK_FALSE(p.reap_spare());
    require_counts(p, {2, 1, 1, 0});
}

TEST_CASE("pool accounting: a thread sticks to its connection only while another is idle in an uncapped pool",
          "[door][pool_accounting]")
{
    SECTION("uncapped, another idle: it sticks, and the idle one still follows the high-water rule")
    {
        auto p = pool_of(2);
        REQUIRE_FALSE(p.idle_to_busy());
        REQUIRE(p.may_stick());
        p.busy_to_sticky();
        require_counts(p, {2, 1, 0, 1});
        // A call on another connection takes the last idle slot: it must start another thread.
        CHECK(p.idle_to_busy());
        require_counts(p, {2, 0, 1, 1});
        // With no idle thread left, the busy one may not stick when its call is done.
        CHECK_FALSE(p.may_stick());
        p.busy_to_idle();
        require_counts(p, {2, 1, 0, 1});
    }
    SECTION("uncapped, no other idle: it goes back to idle")
    {
        auto p = pool_of(1);
        REQUIRE(p.idle_to_busy());
        CHECK_FALSE(p.may_stick());
        p.busy_to_idle();
        require_counts(p, {1, 1, 0, 0});
    }
    SECTION("capped: never")
    {
        auto p = pool_of(2, 4);
        REQUIRE_FALSE(p.idle_to_busy());
        CHECK_FALSE(p.may_stick());
    }
    SECTION("a quiet connection hands its thread back as idle")
    {
        auto p = pool_of(2);
        REQUIRE_FALSE(p.idle_to_busy());
        p.busy_to_sticky();
        p.sticky_to_idle();
        require_counts(p, {2, 2, 0, 0});
    }
}
