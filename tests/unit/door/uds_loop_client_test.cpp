// SPDX-License-Identifier: MPL-2.0
// uds backend only: the event-loop interface (loop_client) over real connections.
#include "door/uds/loop_client.hpp"
#include "door/uds/wire_format.hpp"

#include "door_test_support.hpp"
#include "server_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <string>
#include <vector>

namespace {

using namespace portunus;
using namespace portunus::test;

} // namespace

TEST_CASE("the event-loop interface sends without blocking and finishes when readable", "[door][round_trip]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {});
    const auto client = open_door(dir.file("door"));
    // open() left one idle connection in the pool; the loop takes it for good.
    unique_fd conn = loop_client{client}.take_connection();
    REQUIRE(conn);
    CHECK((::fcntl(conn.get(), F_GETFL) & O_NONBLOCK) != 0);
    std::error_code ec;
    // Nothing was sent yet: the receive must say so at once instead of blocking.
    loop_client{client}.end_call(conn, ec);
    CHECK(ec == std::errc::resource_unavailable_try_again);
    // The same connection carries call after call, whatever the size of the payload.
    for (const std::size_t size : {std::size_t{5}, std::size_t{20000}, uds::wire_inline_max + 1, std::size_t{7}}) {
        INFO("request of " << size << " bytes");
        const std::string request = pattern(size, 11);
        loop_client{client}.begin_call(conn, request, ec);
        REQUIRE_FALSE(ec);
        door_result result;
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
        for (;;) {
            pollfd p{conn.get(), POLLIN, 0};
            REQUIRE(::poll(&p, 1, 5000) == 1);
            result = loop_client{client}.end_call(conn, ec);
            if (ec != std::errc::resource_unavailable_try_again) break;
            REQUIRE(std::chrono::steady_clock::now() < deadline);
        }
        REQUIRE_FALSE(ec);
        CHECK(result.data.view() == request);
    }
    // The connection is the caller's now: the pool is empty, and call() opens another.
    CHECK_FALSE(loop_client{client}.take_connection());
    const auto again = client.call("blocking", ec);
    REQUIRE_FALSE(ec);
    CHECK(again.data.view() == "blocking");
}

TEST_CASE("an event loop opens connections of its own without blocking", "[door][round_trip]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {});
    const auto client = open_door(dir.file("door"));
    std::error_code ec;
    std::vector<unique_fd> conns;
    for (int i = 0; i < 3; ++i) {
        unique_fd conn = loop_client{client}.begin_connection(ec);
        REQUIRE_FALSE(ec);
        REQUIRE(conn);
        CHECK((::fcntl(conn.get(), F_GETFL) & O_NONBLOCK) != 0);
        // The greeting comes when a server thread accepts; until then: EAGAIN, never a block.
        for (;;) {
            loop_client{client}.finish_connection(conn, ec);
            if (ec != std::errc::resource_unavailable_try_again) break;
            pollfd p{conn.get(), POLLIN, 0};
            REQUIRE(::poll(&p, 1, 5000) == 1);
        }
        REQUIRE_FALSE(ec);
        conns.push_back(std::move(conn));
    }
    // Each carries calls at the same time as the others.
    for (std::size_t i = 0; i < conns.size(); ++i) {
        loop_client{client}.begin_call(conns[i], "call " + std::to_string(i), ec);
        REQUIRE_FALSE(ec);
    }
    for (std::size_t i = 0; i < conns.size(); ++i) {
        door_result result;
        for (;;) {
            pollfd p{conns[i].get(), POLLIN, 0};
            REQUIRE(::poll(&p, 1, 5000) == 1);
            result = loop_client{client}.end_call(conns[i], ec);
            if (ec != std::errc::resource_unavailable_try_again) break;
        }
        REQUIRE_FALSE(ec);
        CHECK(result.data.view() == "call " + std::to_string(i));
    }
}

TEST_CASE("a connection opened by an event loop to a replaced door reports EBADF", "[door][round_trip]")
{
    leak_check leaks;
    temp_dir dir;
    auto first = std::make_unique<server_process>(dir.file("door"), server_options{});
    const auto client = open_door(dir.file("door"));
    // Another instance takes over the path: the handle's instance is no longer reachable there.
    server_process second(dir.file("door"), {});
    first.reset();
    std::error_code ec;
    unique_fd conn = loop_client{client}.begin_connection(ec);
    if (!ec) {
        for (;;) {
            loop_client{client}.finish_connection(conn, ec);
            if (ec != std::errc::resource_unavailable_try_again) break;
            pollfd p{conn.get(), POLLIN, 0};
            REQUIRE(::poll(&p, 1, 5000) == 1);
        }
    }
    CHECK(ec == std::errc::bad_file_descriptor);
    door_client none;
    CHECK_FALSE(loop_client{none}.begin_connection(ec));
    CHECK(ec == std::errc::bad_file_descriptor);
}

TEST_CASE("the event-loop interface reports a door that went away", "[door][round_trip]")
{
    leak_check leaks;
    temp_dir dir;
    unique_fd conn;
    door_client client;
    {
        server_process server(dir.file("door"), {});
        client = open_door(dir.file("door"));
        conn = loop_client{client}.take_connection();
        REQUIRE(conn);
    }
    // The server exited: a send on its connection reports EBADF (nothing ran, reopen).
    std::error_code ec;
    loop_client{client}.begin_call(conn, "late", ec);
    CHECK(ec == std::errc::bad_file_descriptor);
    // No handle, no connection: EBADF as well, never a crash.
    door_client none;
    loop_client{none}.begin_call(conn, "x", ec);
    CHECK(ec == std::errc::bad_file_descriptor);
    loop_client{none}.end_call(conn, ec);
    CHECK(ec == std::errc::bad_file_descriptor);
    CHECK_FALSE(loop_client{none}.take_connection());
}
