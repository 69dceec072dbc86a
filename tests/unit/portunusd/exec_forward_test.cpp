// SPDX-License-Identifier: MPL-2.0
// exec_forward's admission: max_concurrency slots, the queue behind them, and a queued connection that leaves.
#include "portunusd/exec/exec_forward.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include <memory>
#include <vector>

namespace {

using namespace portunusd;
using admission = exec_forward::admission;

forward_config one_slot_one_place()
{
    forward_config f;
    f.name = "exec-test";
    f.proto = protocol::exec;
    f.command = {"/bin/true"};
    f.max_concurrency = 1;
    f.queue = 1;
    return f;
}

TEST_CASE("exec admission: slots, then the queue, then refusal; a withdrawn place is free again", "[exec]")
{
    boost::asio::io_context main;
    exec_forward forward(one_slot_one_place(), std::make_shared<exec_children>(), main);
    std::vector<int> turns;
    std::uint64_t ticket = 0;

    CHECK(forward.admit([&] { turns.push_back(1); }, ticket) == admission::run);
    CHECK(forward.running() == 1);
    std::uint64_t second = 0;
    CHECK(forward.admit([&] { turns.push_back(2); }, second) == admission::queued);
    CHECK(second != 0);
    std::uint64_t third = 0;
    CHECK(forward.admit([&] { turns.push_back(3); }, third) == admission::refused);

    // The queued connection closes (its call_timeout, a drain): its place is free at once.
    CHECK(forward.withdraw(second));
    CHECK_FALSE(forward.withdraw(second));
    std::uint64_t fourth = 0;
    CHECK(forward.admit([&] { turns.push_back(4); }, fourth) == admission::queued);

    // The running child ends: the slot goes to the first still queued, never to a withdrawn one.
    forward.release();
    CHECK(turns == std::vector<int>{4});
    CHECK(forward.running() == 1);
    CHECK_FALSE(forward.withdraw(fourth)); // its turn came: it must give the slot back itself
    forward.release();
    CHECK(forward.running() == 0);
}

} // namespace
