// SPDX-License-Identifier: MPL-2.0
// The uds client's idle connections: every descriptor given back is taken again or closed, never lost or leaked.
#include "door/uds/idle_connections.hpp"

#include "door_test_support.hpp"

#include <sys/socket.h>

#include <set>
#include <thread>
#include <vector>

namespace {

using namespace portunus;
using namespace portunus::test;

unique_fd new_socket()
{
    unique_fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    return fd;
}

TEST_CASE("idle connections: a thread takes back what it gave, then what others gave", "[door][client]")
{
    leak_check leaks;
    uds::idle_connections idle;
    CHECK_FALSE(idle.take());

    unique_fd a = new_socket();
    const int a_number = a.get();
    idle.give_back(std::move(a));
    unique_fd again = idle.take();
    CHECK(again.get() == a_number); // its own shelf's spare, not a new descriptor
    CHECK_FALSE(idle.take());

    // Several on this thread's shelf: the spare and the list behind it.
    std::set<int> given;
    for (int i = 0; i < 5; ++i) {
        unique_fd fd = new_socket();
        given.insert(fd.get());
        idle.give_back(std::move(fd));
    }
    std::set<int> taken;
    std::vector<unique_fd> out;
    while (unique_fd fd = idle.take()) {
        taken.insert(fd.get());
        out.push_back(std::move(fd));
    }
    CHECK(taken == given);
}

TEST_CASE("idle connections: one given back on another thread is found, the rest closed with the set", "[door][client]")
{
    leak_check leaks;
    std::set<int> given;
    {
        uds::idle_connections idle;
        std::thread([&] {
            for (int i = 0; i < 3; ++i) {
                unique_fd fd = new_socket();
                given.insert(fd.get());
                idle.give_back(std::move(fd));
            }
        }).join();
        unique_fd found = idle.take();
        REQUIRE(found);
        CHECK(given.count(found.get()) == 1);
        // The two still on the other thread's shelf are closed when `idle` goes (leak_check).
    }
    {
        uds::idle_connections idle;
        idle.give_back(new_socket()); // the shelf's spare, which only the destructor closes
        idle.give_back(new_socket());
    }
}

TEST_CASE("idle connections: a shelf keeps at most max_per_shelf beyond its spare", "[door][client]")
{
    leak_check leaks;
    uds::idle_connections idle;
    constexpr std::size_t offered = uds::idle_connections::max_per_shelf + 5;
    for (std::size_t i = 0; i < offered; ++i) idle.give_back(new_socket());
    std::size_t kept = 0;
    std::vector<unique_fd> out;
    while (unique_fd fd = idle.take()) {
        ++kept;
        out.push_back(std::move(fd));
    }
    CHECK(kept == uds::idle_connections::max_per_shelf + 1);
}

} // namespace
