// SPDX-License-Identifier: MPL-2.0
// A door's life as clients see it: no server, a dying server, revoke and door_info.
#include "door_test_support.hpp"
#include "server_process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

namespace {

using namespace portunus;
using namespace portunus::test;

bool path_exists(const std::string& path)
{
    struct stat st {};
    return ::lstat(path.c_str(), &st) == 0;
}

} // namespace

TEST_CASE("opening a path that does not exist fails with ENOENT", "[door][lifecycle]")
{
    leak_check leaks;
    temp_dir dir;
    std::error_code ec;
    const auto client = door_client::open(dir.file("missing"), ec);
    CHECK_DOOR_ERROR(ec, std::errc::no_such_file_or_directory);
    CHECK_FALSE(client.is_open());
}

TEST_CASE("opening the stale socket of a SIGKILLed server fails with EBADF", "[door][lifecycle]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    {
        server_process server(path, {.park = true});
        REQUIRE(server.kill(SIGKILL));
        REQUIRE(server.wait_exit(5s));
    }
    struct stat st {};
    REQUIRE(::lstat(path.c_str(), &st) == 0);
    REQUIRE(S_ISSOCK(st.st_mode)); // nobody removed it: a SIGKILLed server cannot
    std::error_code ec;
    const auto client = door_client::open(path, ec);
    CHECK_DOOR_ERROR(ec, std::errc::bad_file_descriptor);
    CHECK_FALSE(client.is_open());
}

TEST_CASE("opening something that is not a door fails with EBADF", "[door][lifecycle]")
{
    leak_check leaks;
    temp_dir dir;
    const auto file = dir.file("plain");
    {
        const unique_fd fd(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
        REQUIRE(fd);
    }
    REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
    for (const auto& path : {file, dir.path(), dir.file("fifo")}) {
        INFO("path: " << path);
        std::error_code ec;
        const auto client = door_client::open(path, ec);
        CHECK_DOOR_ERROR(ec, std::errc::bad_file_descriptor);
        CHECK_FALSE(client.is_open());
    }
}

TEST_CASE("calls on a handle fail with EBADF once its server is gone", "[door][lifecycle]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");

    SECTION("the server revoked its door on SIGTERM and exited")
    {
        server_process server(path, {});
        const auto client = open_door(path);
        std::error_code ec;
        REQUIRE(client.call("before", ec).data.view() == "before");
        REQUIRE(server.kill(SIGTERM));
        CHECK(exited_cleanly(server.wait_exit(5s)));
        CHECK_FALSE(path_exists(path));
        // The first call goes out on the pooled connection, the second has to reconnect: both
        // paths must say EBADF.
        client.call("after", ec);
        CHECK_DOOR_ERROR(ec, std::errc::bad_file_descriptor);
        client.call("after again", ec);
        CHECK_DOOR_ERROR(ec, std::errc::bad_file_descriptor);
        const auto info = client.info(ec);
        CHECK(info.target == -1);
        CHECK((info.attributes & door_attr_revoked) != 0);
    }
    SECTION("the server was SIGKILLed")
    {
        server_process server(path, {.park = true});
        const auto client = open_door(path);
        std::error_code ec;
        REQUIRE(client.call("before", ec).data.view() == "before");
        REQUIRE(server.kill(SIGKILL));
        const auto status = server.wait_exit(5s);
        CHECK((status && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL));
        client.call("after", ec);
        CHECK_DOOR_ERROR(ec, std::errc::bad_file_descriptor);
        client.call("after again", ec);
        CHECK_DOOR_ERROR(ec, std::errc::bad_file_descriptor);
        CHECK(client.info(ec).target == -1);
    }
}

TEST_CASE("SIGKILL of the server mid-call fails the blocked call with EINTR within 1 s", "[door][lifecycle]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "block", .park = true});
    const auto client = open_door(dir.file("door"));
    std::error_code ec;
    steady::time_point returned{};
    {
        // The deadline only keeps a broken backend from hanging the suite; it is far above 1 s.
        std::jthread caller([&] {
            client.call("block", {}, 10s, ec);
            returned = steady::now();
        });
        scope_exit unblock([&] { server.release_all(); });
        REQUIRE(server.wait_lines("enter", 1, 5s));
        const auto killed = steady::now();
        REQUIRE(server.kill(SIGKILL));
        caller.join();
        const double latency = std::chrono::duration<double, std::milli>(returned - killed).count();
        WARN("EINTR arrived " << latency << " ms after SIGKILL");
        CHECK(latency < 1000.0);
    }
    CHECK_DOOR_ERROR(ec, std::errc::interrupted);
    const auto status = server.wait_exit(5s);
    CHECK((status && WIFSIGNALED(*status) && WTERMSIG(*status) == SIGKILL));
}

TEST_CASE("revoke lets calls in flight finish, fails new calls with EBADF and removes the path", "[door][lifecycle]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    server_process server(path, {.mode = "block"});
    const auto client = open_door(path);
    constexpr int in_flight = 3;
    std::vector<std::error_code> errors(in_flight);
    std::vector<std::string> replies(in_flight);
    {
        std::vector<std::jthread> callers;
        for (int i = 0; i < in_flight; ++i) {
            callers.emplace_back([&, i] {
                const auto result = client.call("block", {}, 10s, errors[i]);
                replies[i] = result.data.str();
            });
        }
        scope_exit unblock([&] { server.release_all(); });
        REQUIRE(server.wait_lines("enter", in_flight, 5s));

        REQUIRE(server.kill(SIGTERM));
        CHECK(eventually([&] { return !path_exists(path); }, 2s));

        // Every connection of this handle is busy, so a new call has to reconnect.
        std::error_code ec;
        const auto start = steady::now();
        client.call("new call", {}, 2s, ec);
        CHECK_DOOR_ERROR(ec, std::errc::bad_file_descriptor);
        CHECK(elapsed_ms(start) < 1000.0);
        door_client::open(path, ec);
        CHECK_DOOR_ERROR(ec, std::errc::no_such_file_or_directory);

        server.release(in_flight);
    }
    for (int i = 0; i < in_flight; ++i) {
        INFO("call in flight #" << i);
        CHECK_FALSE(errors[i]);
        CHECK(replies[i] == "released");
    }
    CHECK(exited_cleanly(server.wait_exit(5s)));
    std::error_code ec;
    client.call("after exit", ec);
    CHECK_DOOR_ERROR(ec, std::errc::bad_file_descriptor);
}

TEST_CASE("serve() gives up on a call that outlives its drain limit, or at a second stop signal",
          "[door][lifecycle]")
{
    temp_dir dir;
    const auto path = dir.file("door");
    for (const bool second_signal : {false, true}) {
        INFO((second_signal ? "second SIGTERM" : "drain limit of 300 ms"));
        server_options options{.mode = "block"};
        options.drain_limit_ms = second_signal ? 60'000 : 300;
        server_process server(path, options);
        const auto client = open_door(path);
        std::error_code call_error;
        std::jthread caller([&] { client.call("block", {}, 10s, call_error); });
        REQUIRE(server.wait_lines("enter", 1, 5s));
        const auto start = steady::now();
        REQUIRE(server.kill(SIGTERM));
        if (second_signal) {
            // The call never ends: serve() waits until told twice.
            CHECK_FALSE(server.wait_exit(500ms));
            REQUIRE(server.kill(SIGTERM));
        }
        const auto status = server.wait_exit(5s);
        REQUIRE(status);
        CHECK(WIFEXITED(*status));
        CHECK(WEXITSTATUS(*status) == 1);
        CHECK(elapsed_ms(start) < (second_signal ? 3000.0 : 2000.0));
        if (!second_signal) CHECK(elapsed_ms(start) >= 250.0);
        caller.join();
        CHECK(call_error); // the server went away mid-call
        server.release_all();
    }
}

// After revoke, the pool threads that were idle leave at once; a call sent on a connection the
// client already holds is then read by nobody until one of the calls in flight finishes. On
// illumos such a call fails with EBADF at once.
TEST_CASE("revoke fails a new call on an already open connection with EBADF at once",
          "[door][lifecycle][regression]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    server_process server(path, {.mode = "block"});
    const auto idle_client = open_door(path);
    std::error_code ec;
    REQUIRE(idle_client.call("ping", ec).data.view() == "ping"); // its connection is now idle
    const auto busy_client = open_door(path);
    std::error_code blocked_ec;
    std::string blocked_reply;
    double waited = 0;
    {
        std::jthread blocked([&] { blocked_reply = busy_client.call("block", {}, 10s, blocked_ec).data.str(); });
        scope_exit unblock([&] { server.release_all(); });
        REQUIRE(server.wait_lines("enter", 1, 5s));
        REQUIRE(server.kill(SIGTERM));
        REQUIRE(eventually([&] { return !path_exists(path); }, 2s));

        const auto start = steady::now();
        idle_client.call("ping", {}, 1500ms, ec);
        waited = elapsed_ms(start);
        server.release(1);
    }
    INFO("the call waited " << waited << " ms");
    CHECK_DOOR_ERROR(ec, std::errc::bad_file_descriptor);
    CHECK(waited < 500.0);
    CHECK_FALSE(blocked_ec);
    CHECK(blocked_reply == "released");
}

TEST_CASE("door_client::info names the serving process and follows its instance", "[door][lifecycle]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    server_process first(path, {.park = true});
    const auto first_client = open_door(path);
    std::error_code ec;
    const auto first_info = first_client.info(ec);
    REQUIRE_FALSE(ec);
    CHECK(first_info.target == first.pid());
    CHECK((first_info.attributes & door_attr_revoked) == 0);
    CHECK((first_info.attributes & door_attr_local) == 0);
    CHECK(first_client.path() == path);

    server_process second(path, {});
    const auto second_client = open_door(path);
    const auto second_info = second_client.info(ec);
    CHECK(second_info.target == second.pid());
    CHECK(second_info.uniquifier != first_info.uniquifier);

    // The old handle still reaches the old instance, as an illumos door fd would.
    CHECK(first_client.call("old", ec).data.view() == "old");
    CHECK_FALSE(ec);

    REQUIRE(first.kill(SIGKILL));
    REQUIRE(first.wait_exit(5s));
    const auto gone = first_client.info(ec);
    CHECK(gone.target == -1);
    CHECK((gone.attributes & door_attr_revoked) != 0);
    first_client.call("old", ec);
    CHECK_DOOR_ERROR(ec, std::errc::bad_file_descriptor);
    CHECK(second_client.call("new", ec).data.view() == "new");
}
