// SPDX-License-Identifier: MPL-2.0
// Batches of tagged calls on one connection, through a real server process.
#include "door/uds/loop_client.hpp"
#include "door/uds/wire_format.hpp"

#include "door_test_support.hpp"
#include "server_process.hpp"

#include <poll.h>

#include <csignal>

#include <map>
#include <string>
#include <vector>

namespace {

using namespace portunus;
using namespace portunus::test;

struct answer {
    std::error_code error;
    std::string bytes;
    double at_ms = 0;
};

// Reads answers until `count` have come or `timeout` passed; the map is keyed by tag.
std::map<std::uint32_t, answer> collect(const door_client& client, const unique_fd& conn, std::size_t count,
                                        std::chrono::milliseconds timeout, std::error_code& final_error)
{
    std::map<std::uint32_t, answer> got;
    const auto start = steady::now();
    final_error.clear();
    while (got.size() < count && elapsed_ms(start) < static_cast<double>(timeout.count())) {
        pollfd p{conn.get(), POLLIN, 0};
        if (::poll(&p, 1, 50) != 1) continue;
        std::error_code ec;
        loop_client{client}.receive_batch_replies(
            conn,
            [&](std::uint32_t tag, std::error_code e, std::string_view bytes) {
                got[tag] = {e, std::string(bytes), elapsed_ms(start)};
            },
            ec);
        if (ec != std::errc::resource_unavailable_try_again) {
            final_error = ec;
            break;
        }
    }
    return got;
}

// Collects the answers to the tags of `expected` (within 5 s) and checks each one's bytes.
void expect_answers(const door_client& client, const unique_fd& conn, const std::map<std::uint32_t, std::string>& expected)
{
    std::error_code final_error;
    const auto got = collect(client, conn, expected.size(), 5s, final_error);
    CHECK_FALSE(final_error);
    REQUIRE(got.size() == expected.size());
    for (const auto& [tag, bytes] : expected) {
        INFO("tag " << tag);
        REQUIRE(got.count(tag) == 1);
        CHECK_FALSE(got.at(tag).error);
        CHECK(got.at(tag).bytes == bytes);
    }
}

} // namespace

TEST_CASE("a batch of calls comes back as one answer per tag, large ones included", "[door][batch]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {});
    const auto client = open_door(dir.file("door"));
    REQUIRE(loop_client{client}.accepts_batches());
    std::error_code ec;
    // The batch attribute is the transport's business, not a door attribute.
    CHECK((client.info(ec).attributes & uds::wire_attr_batches) == 0);
    unique_fd conn = loop_client{client}.take_connection();
    REQUIRE(conn);

    // 40 small echo calls, and one as large as a batch can be: its reply, with the longer reply
    // entry header, no longer fits in a message and comes back through a memfd.
    std::string body;
    std::map<std::uint32_t, std::string> sent;
    for (std::uint32_t tag = 100; tag < 140; ++tag) {
        sent[tag] = "call " + std::to_string(tag);
        loop_client::append_batch_call(body, tag, sent[tag]);
    }
    const std::string big(loop_client::batch_body_max - uds::batch_call_entry_header, 'b');
    sent[7] = big;
    std::string big_body;
    loop_client::append_batch_call(big_body, 7, big);
    loop_client{client}.send_batch(conn, body, ec);
    REQUIRE_FALSE(ec);
    loop_client{client}.send_batch(conn, big_body, ec);
    REQUIRE_FALSE(ec);
    expect_answers(client, conn, sent);
}

TEST_CASE("borrowed replies in a batch each carry their own call's bytes", "[door][batch]")
{
    leak_check leaks;
    temp_dir dir;
    server_options options;
    options.mode = "borrow";
    server_process server(dir.file("door"), options);
    const auto client = open_door(dir.file("door"));
    unique_fd conn = loop_client{client}.take_connection();
    REQUIRE(conn);
    // Held answers are sent after the calls they borrow from are gone: each must have been
    // copied into the held batch while its call was still alive.
    std::string body;
    std::map<std::uint32_t, std::string> expected;
    for (std::uint32_t tag = 1; tag <= 30; ++tag) {
        const std::string call = "#borrowed answer " + std::to_string(tag) + std::string(tag * 100, 'x');
        loop_client::append_batch_call(body, tag, call);
        expected[tag] = call.substr(1);
    }
    loop_client::append_batch_call(body, 99, "static");
    expected[99] = "a static reply, sent without a copy";
    std::error_code ec;
    loop_client{client}.send_batch(conn, body, ec);
    REQUIRE_FALSE(ec);
    expect_answers(client, conn, expected);
}

TEST_CASE("a handler that returns descriptors fails only its batch call, with ENOTSUP", "[door][batch]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "fds"});
    const auto client = open_door(dir.file("door"));
    unique_fd conn = loop_client{client}.take_connection();
    REQUIRE(conn);
    // "fds" mode hands back a pipe unless told "noextra": a reply with descriptors cannot travel
    // in a batch, so that call must fail, and only that one.
    std::string body;
    loop_client::append_batch_call(body, 1, "noextra ");
    loop_client::append_batch_call(body, 2, "with a pipe");
    std::error_code ec;
    loop_client{client}.send_batch(conn, body, ec);
    REQUIRE_FALSE(ec);
    std::error_code final_error;
    const auto got = collect(client, conn, 2, 5s, final_error);
    CHECK_FALSE(final_error);
    REQUIRE(got.size() == 2);
    CHECK_FALSE(got.at(1).error);
    CHECK(got.at(1).bytes == "received 0");
    CHECK(got.at(2).error == std::errc::not_supported);
}

// A slow call first: the calls behind it are taken by other threads. A slow call last: the thread
// that ran the fast ones before it holds their answers back to send them together, and must
// not keep them from the caller while the slow one runs.
// In a pool capped at one thread no helper could send held answers, so none are held.
TEST_CASE("a slow call in a batch holds up neither the calls behind it nor the answers before it", "[door][batch]")
{
    const auto [slow, max_threads] = GENERATE(std::pair{1u, 0u}, std::pair{9u, 0u}, std::pair{9u, 1u});
    INFO("the slow call is number " << slow << " of 9, max_threads " << max_threads);
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "block", .max_threads = max_threads});
    const auto client = open_door(dir.file("door"));
    unique_fd conn = loop_client{client}.take_connection();
    REQUIRE(conn);
    std::string body;
    for (std::uint32_t tag = 1; tag <= 9; ++tag)
        loop_client::append_batch_call(body, tag, tag == slow ? "block" : "fast " + std::to_string(tag));
    std::error_code ec;
    loop_client{client}.send_batch(conn, body, ec);
    REQUIRE_FALSE(ec);
    std::map<std::uint32_t, answer> fast;
    std::error_code final_error;
    {
        scope_exit unblock([&] { server.release_all(); });
        REQUIRE(server.wait_lines("enter", 1, 5s));
        fast = collect(client, conn, 8, 3s, final_error);
        server.release(1);
    }
    CHECK_FALSE(final_error);
    CHECK(fast.size() == 8);
    CHECK(fast.count(slow) == 0); // still blocked while the others were answered
    for (const auto& [tag, a] : fast) {
        CHECK_FALSE(a.error);
        CHECK(a.bytes == "fast " + std::to_string(tag));
    }
    const auto last = collect(client, conn, 1, 5s, final_error);
    REQUIRE(last.count(slow) == 1);
    CHECK(last.at(slow).bytes == "released");
}

TEST_CASE("revoke answers the batch calls that have not run with EBADF", "[door][batch]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    server_process server(path, {.mode = "block", .max_threads = 1});
    const auto client = open_door(path);
    unique_fd conn = loop_client{client}.take_connection();
    REQUIRE(conn);
    std::string body;
    loop_client::append_batch_call(body, 1, "block");
    loop_client::append_batch_call(body, 2, "queued a");
    loop_client::append_batch_call(body, 3, "queued b");
    std::error_code ec;
    loop_client{client}.send_batch(conn, body, ec);
    REQUIRE_FALSE(ec);
    std::map<std::uint32_t, answer> got;
    std::error_code final_error;
    {
        scope_exit unblock([&] { server.release_all(); });
        // One thread, busy with the first call: the other two wait in the queue.
        REQUIRE(server.wait_lines("enter", 1, 5s));
        REQUIRE(server.kill(SIGTERM));
        got = collect(client, conn, 2, 3s, final_error);
        server.release(1);
    }
    CHECK(got.size() == 2);
    for (const std::uint32_t tag : {2u, 3u}) {
        INFO("tag " << tag);
        REQUIRE(got.count(tag) == 1);
        CHECK(got.at(tag).error == std::errc::bad_file_descriptor);
    }
    // The call in flight finishes normally.
    const auto last = collect(client, conn, 1, 5s, final_error);
    REQUIRE(last.count(1) == 1);
    CHECK_FALSE(last.at(1).error);
    CHECK(last.at(1).bytes == "released");
    CHECK(exited_cleanly(server.wait_exit(5s)));
}

TEST_CASE("a malformed batch gets EPROTO and the server keeps serving", "[door][batch]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {});
    const auto client = open_door(dir.file("door"));
    unique_fd conn = loop_client{client}.take_connection();
    REQUIRE(conn);
    std::string body;
    loop_client::append_batch_call(body, 1, "whole");
    body.resize(body.size() - 2); // the entry's length now runs past the end
    std::error_code ec;
    loop_client{client}.send_batch(conn, body, ec);
    REQUIRE_FALSE(ec);
    std::error_code final_error;
    const auto got = collect(client, conn, 1, 3s, final_error);
    CHECK(got.empty());
    CHECK(final_error == std::errc::protocol_error);
    CHECK(client.call("still there", ec).data.view() == "still there");
    CHECK_FALSE(ec);
}

// Several threads answer the calls of one connection at once: answers through a memfd (two
// messages) must not be split by another thread's answers, and answers held together must
// never outgrow one message.
TEST_CASE("many large and small answers to one connection's batches all arrive intact", "[door][batch]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {});
    const auto client = open_door(dir.file("door"));
    unique_fd conn = loop_client{client}.take_connection();
    REQUIRE(conn);
    std::map<std::uint32_t, std::string> sent;
    std::uint32_t tag = 1;
    std::error_code ec;
    std::error_code final_error;
    std::map<std::uint32_t, answer> got;
    for (int round = 0; round < 30; ++round) {
        std::string body;
        // One call whose echo needs a memfd, or two that fill most of a message each.
        if (round % 2 == 0) {
            sent[tag] = std::string(loop_client::batch_body_max - 4 * 64 - uds::batch_call_entry_header * 5,
                                    static_cast<char>('a' + round % 26));
            loop_client::append_batch_call(body, tag, sent[tag]);
            ++tag;
        } else {
            for (int k = 0; k < 2; ++k, ++tag) {
                sent[tag] = std::string(60 * 1024, static_cast<char>('A' + (round + k) % 26));
                loop_client::append_batch_call(body, tag, sent[tag]);
            }
        }
        for (int k = 0; k < 4 && round % 2 == 0; ++k, ++tag) {
            sent[tag] = std::string(64, static_cast<char>('0' + k));
            loop_client::append_batch_call(body, tag, sent[tag]);
        }
        loop_client{client}.send_batch(conn, body, ec);
        for (int tries = 0; ec == std::errc::resource_unavailable_try_again && tries < 100; ++tries) {
            // The server is blocked sending answers nobody reads yet: take some, then retry.
            auto more = collect(client, conn, 1, 5s, final_error);
            got.merge(more);
            loop_client{client}.send_batch(conn, body, ec);
        }
        REQUIRE_FALSE(ec);
    }
    auto rest = collect(client, conn, sent.size() - got.size(), 20s, final_error);
    got.merge(rest);
    CHECK_FALSE(final_error);
    REQUIRE(got.size() == sent.size());
    for (const auto& [t, bytes] : sent) {
        INFO("tag " << t);
        CHECK_FALSE(got.at(t).error);
        CHECK(got.at(t).bytes == bytes);
    }
}
