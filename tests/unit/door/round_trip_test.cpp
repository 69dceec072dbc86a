// SPDX-License-Identifier: MPL-2.0
// Calls through a real server process: bytes, descriptors, large payloads, limits and credentials.
#include "door_test_support.hpp"
#include "server_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace portunus;
using namespace portunus::test;

std::vector<unique_fd> duplicates(int fd, std::size_t count)
{
    std::vector<unique_fd> fds;
    for (std::size_t i = 0; i < count; ++i) {
        fds.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
        REQUIRE(fds.back());
    }
    return fds;
}

} // namespace

TEST_CASE("bytes round-trip through a real door server", "[door][round_trip]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {});
    const auto client = open_door(dir.file("door"));
    const std::vector<std::string> payloads{
        "", "x", std::string("nul\0inside\0", 11), std::string(1, '\0'), pattern(4096, 7), pattern(65537, 9)};
    for (const auto& request : payloads) {
        INFO("request of " << request.size() << " bytes");
        std::error_code ec;
        const auto result = client.call(request, ec);
        REQUIRE_FALSE(ec);
        CHECK(result.data.size() == request.size());
        CHECK(result.data.view() == request);
        CHECK(result.fds.empty());
    }
}

TEST_CASE("a borrowed reply carries static bytes or the request's own, inline and in a memfd", "[door][round_trip]")
{
    leak_check leaks;
    temp_dir dir;
    server_options options;
    options.mode = "borrow";
    server_process server(dir.file("door"), options);
    const auto client = open_door(dir.file("door"));
    std::error_code ec;
    auto result = client.call("static", ec);
    REQUIRE_FALSE(ec);
    CHECK(result.data.view() == "a static reply, sent without a copy");
    // Sizes on both sides of the inline limit: the largest answers come from a mapped memfd.
    for (const std::size_t size : {std::size_t{1}, std::size_t{2}, std::size_t{70000},
                                    inline_threshold + 1, inline_threshold + 2, std::size_t{3} << 20}) {
        INFO("request of " << size << " bytes");
        const std::string request = pattern(size, static_cast<std::uint32_t>(size));
        result = client.call(request, ec);
        REQUIRE_FALSE(ec);
        CHECK(result.data.view() == std::string_view(request).substr(1));
    }
}

TEST_CASE("descriptors travel to the server and back, and work on both sides", "[door][round_trip]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "fds"});
    const auto client = open_door(dir.file("door"));

    auto [read_end, write_end] = make_pipe();
    std::vector<unique_fd> fds;
    fds.push_back(std::move(write_end));
    std::error_code ec;
    auto result = client.call("write:hello through the door", std::move(fds), ec);
    REQUIRE_FALSE(ec);
    CHECK(result.data.view() == "received 1");
    // The server wrote through the write end it was given, before replying.
    CHECK(read_exactly(read_end.get(), 22, 2s) == "hello through the door");

    // It handed the same write end back, plus a pipe of its own.
    REQUIRE(result.fds.size() == 2);
    for (const auto& fd : result.fds) CHECK((::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
    REQUIRE(write_all(result.fds[0].get(), "and back"));
    CHECK(read_exactly(read_end.get(), 8, 2s) == "and back");
    result.fds[0].reset();
    bool complete = false;
    // Every write end of our pipe is closed now: the server kept no copy of the one it was passed.
    CHECK(read_until_eof(read_end.get(), 2s, complete).empty());
    CHECK(complete);

    const auto from_server = read_until_eof(result.fds[1].get(), 2s, complete);
    CHECK(complete);
    CHECK(from_server == "from server " + std::to_string(server.pid()) + "\n");
}

TEST_CASE("64 MiB request and 64 MiB reply arrive intact", "[door][round_trip][large]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {});
    const auto client = open_door(dir.file("door"));
    const std::string request = pattern(64u << 20, 0x5eed);
    std::error_code ec;
    const auto result = client.call(request, ec);
    REQUIRE_FALSE(ec);
    REQUIRE(result.data.size() == request.size());
    CHECK(std::memcmp(result.data.data(), request.data(), request.size()) == 0);
}

TEST_CASE("payload sizes around the inline threshold arrive intact", "[door][round_trip]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {});
    const auto client = open_door(dir.file("door"));
    constexpr std::size_t threshold = inline_threshold;
    for (const std::size_t size : {threshold - 1, threshold, threshold + 1, 2 * threshold}) {
        INFO("payload of " << size << " bytes");
        const std::string request = pattern(size, static_cast<std::uint32_t>(size));
        std::error_code ec;
        const auto result = client.call(request, ec);
        REQUIRE_FALSE(ec);
        CHECK(result.data.size() == size);
        CHECK(result.data.view() == request);
    }
}

TEST_CASE("253 descriptors in one call are accepted and come back", "[door][round_trip][limits]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "fds"});
    const auto client = open_door(dir.file("door"));
    auto [read_end, write_end] = make_pipe();
    auto fds = duplicates(write_end.get(), door_max_descriptors);
    write_end.reset();
    std::error_code ec;
    auto result = client.call("noextra write:.", std::move(fds), ec);
    REQUIRE_FALSE(ec);
    CHECK(result.data.view() == "received 253");
    // The server wrote one byte through each of them.
    CHECK(read_exactly(read_end.get(), 253, 2s) == std::string(253, '.'));
    REQUIRE(result.fds.size() == door_max_descriptors);
    REQUIRE(write_all(result.fds[252].get(), "!"));
    CHECK(read_exactly(read_end.get(), 1, 2s) == "!");
}

TEST_CASE("254 descriptors fail with E2BIG and are closed anyway", "[door][round_trip][limits]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "fds"});
    const auto client = open_door(dir.file("door"));
    auto [read_end, write_end] = make_pipe();
    auto fds = duplicates(write_end.get(), door_max_descriptors + 1);
    write_end.reset();
    std::error_code ec;
    const auto result = client.call("write:x", std::move(fds), ec);
    CHECK_DOOR_ERROR(ec, std::errc::argument_list_too_long);
    CHECK(result.fds.empty());
    // Nothing reached the server, and all 254 copies of the write end are closed.
    bool complete = false;
    CHECK(read_until_eof(read_end.get(), 2s, complete).empty());
    CHECK(complete);

    // The door is still fine.
    const auto again = client.call("noextra", ec);
    REQUIRE_FALSE(ec);
    CHECK(again.data.view() == "received 0");
}

TEST_CASE("a reply with 254 descriptors fails with E2BIG for the caller", "[door][round_trip][limits]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "fds"});
    const auto client = open_door(dir.file("door"));
    auto [read_end, write_end] = make_pipe();
    // 253 handed back plus the server's own pipe: one over the limit.
    auto fds = duplicates(write_end.get(), door_max_descriptors);
    write_end.reset();
    std::error_code ec;
    const auto result = client.call("give them all back", std::move(fds), ec);
    CHECK_DOOR_ERROR(ec, std::errc::argument_list_too_long);
    CHECK(result.fds.empty());
    bool complete = false;
    read_until_eof(read_end.get(), 2s, complete);
    CHECK(complete);
    const auto again = client.call("noextra", ec);
    REQUIRE_FALSE(ec);
    CHECK(again.data.view() == "received 0");
}

TEST_CASE("a door that refuses descriptors fails calls carrying them with ENOTSUP", "[door][round_trip][limits]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "fds", .refuse_descriptors = true});
    const auto client = open_door(dir.file("door"));
    std::error_code ec;
    CHECK((client.info(ec).attributes & door_attr_refuse_desc) != 0);

    auto [read_end, write_end] = make_pipe();
    std::vector<unique_fd> fds;
    fds.push_back(std::move(write_end));
    auto refused = client.call("write:x", std::move(fds), ec);
    CHECK_DOOR_ERROR(ec, std::errc::not_supported);
    bool complete = false;
    CHECK(read_until_eof(read_end.get(), 2s, complete).empty()); // consumed, never written to
    CHECK(complete);

    const auto plain = client.call("noextra", ec);
    REQUIRE_FALSE(ec);
    CHECK(plain.data.view() == "received 0");
}

TEST_CASE("a door that refuses descriptors takes requests up to the inline maximum, and E2BIG past it", "[door][round_trip][limits]")
{
    // Larger requests travel with a memory object's descriptor, which such a door cannot take
    // on illumos (DOOR_REFUSE_DESC); uds keeps the same limit. Replies may be of any size.
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "fds", .refuse_descriptors = true});
    const auto client = open_door(dir.file("door"));
    std::error_code ec;
    const auto fits = client.call(std::string(inline_threshold, 'a'), ec);
    REQUIRE_FALSE(ec);
    CHECK(fits.data.view() == "received 0");
    const auto past = client.call(std::string(inline_threshold + 1, 'a'), ec);
    CHECK_DOOR_ERROR(ec, std::errc::argument_list_too_long);
    CHECK(past.data.empty());
    const auto after = client.call("noextra", ec); // the door is as it was
    REQUIRE_FALSE(ec);
    CHECK(after.data.view() == "received 0");
}

TEST_CASE("the handler sees the caller's uid, gid and pid", "[door][round_trip]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {.mode = "credentials"});
    const auto client = open_door(dir.file("door"));
    std::error_code ec;
    const auto result = client.call("who am I", ec);
    REQUIRE_FALSE(ec);
    CHECK(result.data.str() == std::to_string(::getuid()) + " " + std::to_string(::getgid()) + " " +
                                   std::to_string(::getpid()));
}

TEST_CASE("32 threads calling through one door_client all get their own replies", "[door][round_trip][concurrency]")
{
    leak_check leaks;
    temp_dir dir;
    server_process server(dir.file("door"), {});
    const auto client = open_door(dir.file("door"));
    constexpr int threads = 32;
    constexpr int calls = 200;
    std::atomic<int> succeeded{0};
    std::atomic<int> failed{0};
    std::atomic<int> mismatched{0};
    {
        std::vector<std::jthread> workers;
        for (int t = 0; t < threads; ++t) {
            workers.emplace_back([&, t] {
                for (int i = 0; i < calls; ++i) {
                    const std::string request = "thread " + std::to_string(t) + " call " + std::to_string(i);
                    std::error_code ec;
                    const auto result = client.call(request, ec);
                    if (ec) ++failed;
                    else if (result.data.view() != request) ++mismatched;
                    else ++succeeded;
                }
            });
        }
    }
    CHECK(failed == 0);
    CHECK(mismatched == 0);
    CHECK(succeeded == threads * calls);
}
