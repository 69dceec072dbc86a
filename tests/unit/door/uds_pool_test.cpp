// SPDX-License-Identifier: MPL-2.0
// uds backend only: how pool threads wait on connections between calls, seen from /proc.
#include "door_test_support.hpp"
#include "server_process.hpp"

#include <signal.h>
#include <sys/syscall.h>

#include <string>
#include <thread>
#include <vector>

namespace {

using namespace portunus;
using namespace portunus::test;

} // namespace

// After a call, the thread that served it waits for the next call on the same connection in a
// blocking receive (the fast path for an event loop that reuses its connections), but only while
// another thread is free to take calls on other connections, and only for a second.
TEST_CASE("a thread waits on its last connection for the next call, and gives it back when quiet", "[door][pool]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "block", .park = true});
    const auto client = open_door(dir.file("door"));
    REQUIRE(eventually([&] { return server.task_count() == 2; }, 2s));
    REQUIRE(eventually([&] { return server.tasks_in_syscall(SYS_epoll_wait) == 2; }, 2s));
    std::error_code ec;
    REQUIRE(client.call("ping", ec).data.view() == "ping");
    CHECK(eventually([&] { return server.tasks_in_syscall(SYS_recvmsg) == 1; }, 2s));
    CHECK(server.tasks_in_syscall(SYS_epoll_wait) == 1); // the other one is free
    CHECK(server.task_count() == 2);

    // Calls on that connection keep going to that thread: no thread is added.
    int failures = 0;
    for (int i = 0; i < 200; ++i) {
        const std::string request = "again " + std::to_string(i);
        if (client.call(request, ec).data.view() != request || ec) ++failures;
    }
    CHECK(failures == 0);
    CHECK(server.task_count() == 2);

    // A call on another connection is not held up by the waiting thread.
    const auto other = open_door(dir.file("door"));
    std::error_code blocked_ec;
    {
        std::jthread blocked([&] { other.call("block", {}, 10s, blocked_ec); });
        scope_exit unblock([&] { server.release_all(); });
        REQUIRE(server.wait_lines("enter", 1, 5s));
        const auto start = steady::now();
        CHECK(client.call("while one blocks", {}, 2s, ec).data.view() == "while one blocks");
        CHECK_FALSE(ec);
        CHECK(elapsed_ms(start) < 500.0);
        server.release(1);
    }
    CHECK_FALSE(blocked_ec);

    // Quiet connections are handed back to epoll after about a second.
    const auto quiet = steady::now();
    CHECK(eventually([&] { return server.tasks_in_syscall(SYS_recvmsg) == 0; }, 3s));
    CHECK(elapsed_ms(quiet) >= 800.0);
    CHECK(client.call("after the quiet", {}, 2s, ec).data.view() == "after the quiet");
    CHECK_FALSE(ec);
}

TEST_CASE("in a capped pool no thread waits on a connection between calls", "[door][pool]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "echo", .park = true, .max_threads = 4});
    const auto client = open_door(dir.file("door"));
    std::error_code ec;
    for (int i = 0; i < 20; ++i) REQUIRE(client.call("ping", ec).data.view() == "ping");
    std::this_thread::sleep_for(100ms);
    CHECK(server.tasks_in_syscall(SYS_recvmsg) == 0);
    CHECK(server.tasks_in_syscall(SYS_epoll_wait) == server.task_count());
}

// A thread that waits for the next call on its last connection sits in a blocking receive, not
// in epoll_wait where revoke's wake-up is seen: the read shutdown of revoke must end that wait
// at once, not after the second a quiet connection is kept for.
TEST_CASE("revoke ends at once a thread's wait for the next call on its connection", "[door][lifecycle]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    server_process server(path, {.mode = "echo"});
    const auto client = open_door(path);
    std::error_code ec;
    REQUIRE(client.call("ping", ec).data.view() == "ping");
    REQUIRE(eventually([&] { return server.tasks_in_syscall(SYS_recvmsg) == 1; }, 2s));
    const auto start = steady::now();
    REQUIRE(server.kill(SIGTERM));
    const auto status = server.wait_exit(5s);
    const double took = elapsed_ms(start);
    INFO("exit took " << took << " ms");
    CHECK(exited_cleanly(status));
    CHECK(took < 500.0);
    client.call("after exit", ec);
    CHECK_DOOR_ERROR(ec, std::errc::bad_file_descriptor);
}
