// SPDX-License-Identifier: MPL-2.0
// The pass header: round trips, named bad cases, every truncation, and pass calls through a real door.
#include <portunus/pass.hpp>
#include <portunus/server.hpp>

#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

namespace {

using portunus::pass_endpoint;
using portunus::pass_header;

pass_endpoint v4(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d, std::uint16_t port)
{
    pass_endpoint e;
    e.family = 4;
    e.address[0] = a;
    e.address[1] = b;
    e.address[2] = c;
    e.address[3] = d;
    e.port = port;
    return e;
}

pass_header sample(bool with_origin, std::string early = {})
{
    pass_header h;
    h.hold = with_origin;
    h.peer = v4(127, 0, 0, 1, 40000);
    h.local.family = 6;
    h.local.address[15] = 1;
    h.local.port = 8080;
    if (with_origin) h.origin = v4(192, 0, 2, 7, 51234);
    h.forward = "files";
    h.early = std::move(early);
    return h;
}

} // namespace

TEST_CASE("pass header: round trips, with and without origin and early bytes", "[pass]")
{
    for (const auto& h : {sample(false), sample(true), sample(true, "GET / HTTP/1.1\r\n"), sample(false, std::string(5000, 'x'))}) {
        const auto bytes = portunus::serialize_pass_header(h);
        const auto parsed = portunus::parse_pass_header(bytes);
        REQUIRE(parsed.error.empty());
        REQUIRE(parsed.value);
        CHECK(*parsed.value == h);
        CHECK(parsed.value->client() == (h.origin ? *h.origin : h.peer));
    }
    CHECK(sample(false).peer.text() == "127.0.0.1:40000");
    CHECK(sample(false).local.text() == "[::1]:8080");
}

TEST_CASE("pass header: every truncation of the header is refused, none crashes", "[pass]")
{
    const auto bytes = portunus::serialize_pass_header(sample(true));
    const std::size_t header_length = portunus::pass_fixed_length + 5;
    REQUIRE(bytes.size() == header_length);
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        const auto parsed = portunus::parse_pass_header(std::string_view(bytes).substr(0, n));
        INFO("cut at " << n);
        CHECK_FALSE(parsed.value);
        CHECK_FALSE(parsed.error.empty());
    }
    // Early bytes cut anywhere are still a header: they are whatever the daemon had read.
    const auto with_early = portunus::serialize_pass_header(sample(false, "abcdef"));
    for (std::size_t n = header_length; n <= with_early.size(); ++n) {
        const auto parsed = portunus::parse_pass_header(std::string_view(with_early).substr(0, n));
        REQUIRE(parsed.value);
        CHECK(parsed.value->early == std::string("abcdef").substr(0, n - header_length));
    }
}

TEST_CASE("pass header: named bad cases", "[pass]")
{
    const auto good = portunus::serialize_pass_header(sample(true));
    struct bad_case {
        const char* name;
        std::size_t at;
        char value;
    };
    const bad_case cases[] = {
        {"wrong magic", 0, 'X'},
        {"version 0", 4, 0},
        {"version 2", 4, 2},
        {"unknown flag", 5, 0x04},
        {"length below the fixed part", 7, 10},
        {"length past the data", 6, 0x7f},
        {"peer family 5", 8, 5},
        {"local family 0", 27, 0},
        {"origin family 9", 46, 9},
        {"IPv4 peer with bytes past its fourth", 8 + 1 + 8, 1},
        {"name longer than the header says", 65, 100},
    };
    for (const auto& c : cases) {
        std::string b = good;
        b[c.at] = c.value;
        const auto parsed = portunus::parse_pass_header(b);
        INFO(c.name);
        CHECK_FALSE(parsed.value);
        CHECK_FALSE(parsed.error.empty());
    }
    // Origin bytes without the origin flag would make two spellings of one header.
    std::string b = portunus::serialize_pass_header(sample(false));
    b[50] = 1;
    CHECK_FALSE(portunus::parse_pass_header(b).value);
    // Bytes a later minor version adds between the name and the header's end are skipped.
    std::string longer = portunus::serialize_pass_header(sample(false, "early"));
    const std::size_t end = portunus::pass_fixed_length + 5;
    longer.insert(end, "XYZ");
    longer[6] = 0;
    longer[7] = static_cast<char>(end + 3);
    const auto parsed = portunus::parse_pass_header(longer);
    REQUIRE(parsed.value);
    CHECK(parsed.value->early == "early");
    CHECK(parsed.value->forward == "files");
}

TEST_CASE("pass calls through a door: the handler gets the socket; anything else is refused unrun", "[pass]")
{
    std::atomic<int> ran{0};
    std::error_code ec;
    auto server = portunus::door_server::create(
        portunus::pass_door_handler([&ran](portunus::unique_fd socket, const pass_header& h) {
            ++ran;
            const std::string hello = "hi " + h.forward + " " + h.early;
            CHECK(::write(socket.get(), hello.data(), hello.size()) == static_cast<ssize_t>(hello.size()));
        }),
        {}, ec);
    REQUIRE_FALSE(ec);
    const std::string path = "/tmp/portunus-pass-test-" + std::to_string(::getpid()) + ".door";
    server.attach(path, ec);
    REQUIRE_FALSE(ec);
    auto client = portunus::door_client::open(path, ec);
    REQUIRE_FALSE(ec);

    for (const bool hold : {true, false}) {
        int pair[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
        portunus::unique_fd ours(pair[0]);
        auto h = sample(hold, "x");
        std::vector<portunus::unique_fd> fds;
        fds.emplace_back(pair[1]);
        const auto reply = client.call(portunus::serialize_pass_header(h), std::move(fds), ec);
        REQUIRE_FALSE(ec);
        CHECK(reply.data.empty());
        char buf[64] = {};
        const ssize_t n = ::read(ours.get(), buf, sizeof buf); // blocks until the handler wrote
        CHECK(std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0) == "hi files x");
        // The handler's copy closes when it returns: the stream ends.
        CHECK(::read(ours.get(), buf, sizeof buf) == 0);
    }
    CHECK(ran == 2);

    // Not a header, no descriptor, two descriptors: refused without running the handler, and
    // the descriptors sent are closed.
    int pair[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) == 0);
    portunus::unique_fd ours(pair[0]);
    std::vector<portunus::unique_fd> fds;
    fds.emplace_back(pair[1]);
    auto reply = client.call("GET / HTTP/1.1\r\n\r\n", std::move(fds), ec);
    REQUIRE_FALSE(ec);
    CHECK(reply.data.view().substr(0, 7) == "EPROTO ");
    char buf[8];
    CHECK(::read(ours.get(), buf, sizeof buf) == 0);
    reply = client.call(portunus::serialize_pass_header(sample(false)), ec);
    REQUIRE_FALSE(ec);
    CHECK(reply.data.view().substr(0, 7) == "EPROTO ");
    CHECK(ran == 2);
    CHECK(portunus::pass_connections_open() == 0);
    server.revoke();
}
