// SPDX-License-Identifier: MPL-2.0
// Raw SOCK_SEQPACKET peers against the real client and server: other versions and broken messages.
#include "door/uds/wire_format.hpp"

#include "door_test_support.hpp"
#include "raw_socket.hpp"
#include "server_process.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace portunus;
using namespace portunus::test;
using namespace portunus::uds;
using bytes = std::vector<std::byte>;

bytes encode(message_type type, std::string_view body = {}, std::uint32_t nfds = 0, std::int32_t error = 0,
             std::uint16_t version = wire_version)
{
    wire_header h;
    h.type = type;
    h.size = body.size();
    h.nfds = nfds;
    h.error = error;
    bytes m(wire_header_size + body.size());
    encode_header(h, std::span<std::byte, wire_header_size>(m.data(), wire_header_size));
    std::memcpy(m.data() + 4, &version, sizeof version);
    if (!body.empty()) std::memcpy(m.data() + wire_header_size, body.data(), body.size());
    return m;
}

bytes hello_bytes(std::int32_t pid, std::uint16_t version = wire_version)
{
    std::array<std::byte, wire_hello_size> body;
    encode_hello({pid, 0, 0x1234}, body);
    return encode(message_type::hello, {reinterpret_cast<const char*>(body.data()), body.size()}, 0, 0, version);
}

// A door path served by a test-written peer: each connection it accepts is handed to `serve`,
// then closed. Every wait inside is bounded, so a client that misbehaves cannot hang it.
class fake_door {
public:
    fake_door(const std::string& path, std::function<void(int)> serve) : serve_(std::move(serve))
    {
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        REQUIRE(path.size() < sizeof addr.sun_path);
        std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
        listener_.reset(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
        REQUIRE(listener_);
        REQUIRE(::bind(listener_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(listener_.get(), 16) == 0);
        thread_ = std::jthread([this](const std::stop_token& stop) { run(stop); });
    }

private:
    void run(const std::stop_token& stop)
    {
        while (!stop.stop_requested()) {
            pollfd p{listener_.get(), POLLIN, 0};
            if (::poll(&p, 1, 20) <= 0) continue;
            unique_fd conn(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (conn) serve_(conn.get());
        }
    }

    std::function<void(int)> serve_;
    unique_fd listener_;
    std::jthread thread_; // last: stopped and joined before the listener closes
};

// Waits (bounded) until the peer closes `conn`, so the fake side never closes first by accident.
void wait_for_close(int conn)
{
    for (int i = 0; i < 50; ++i) {
        const auto m = raw_receive(conn, 100ms);
        if (m.eof || m.reset || (!m.timed_out && m.bytes.empty())) return;
    }
}

// Reads the hello a real server sends on accept and checks it.
wire_hello expect_hello(int conn)
{
    const auto m = raw_receive(conn, 5s);
    REQUIRE_FALSE(m.timed_out);
    wire_header h;
    std::uint16_t version = 0;
    REQUIRE_FALSE(decode_header(m.bytes, m.fds.size(), h, version));
    REQUIRE(h.type == message_type::hello);
    wire_hello hello;
    REQUIRE_FALSE(decode_hello(std::span(m.bytes).subspan(wire_header_size), hello));
    return hello;
}

// Reads one message that must be a well-formed version-1 error, and returns its errno.
int expect_error(int conn)
{
    const auto m = raw_receive(conn, 5s);
    REQUIRE_FALSE(m.timed_out);
    REQUIRE_FALSE(m.eof);
    wire_header h;
    std::uint16_t version = 0;
    const auto ec = decode_header(m.bytes, m.fds.size(), h, version);
    INFO("decode: " << ec.message());
    REQUIRE_FALSE(ec);
    CHECK(version == wire_version);
    REQUIRE(h.type == message_type::error);
    return h.error;
}

bool expect_eof(int conn) { return raw_receive(conn, 5s).eof; }

// The server's descriptor count once it has stopped changing (connections it is closing settle).
long settled_fd_count(const server_process& server)
{
    long count = -1;
    eventually(
        [&] {
            const long before = server.fd_count();
            std::this_thread::sleep_for(20ms);
            count = server.fd_count();
            return before == count;
        },
        2s);
    return count;
}

} // namespace

TEST_CASE("opening a door whose server speaks protocol version 2 fails with EPROTONOSUPPORT", "[door][protocol]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    {
        fake_door peer(path, [](int conn) {
            raw_send(conn, hello_bytes(::getpid(), 2));
            wait_for_close(conn);
        });
        std::error_code ec;
        const auto client = door_client::open(path, ec);
        CHECK_DOOR_ERROR(ec, std::errc::protocol_not_supported);
        CHECK_FALSE(client.is_open());
    }
}

TEST_CASE("opening a door whose hello is malformed fails with EPROTO", "[door][protocol]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    fake_door peer(path, [](int conn) {
        raw_send(conn, hello_bytes(0)); // a hello must name a process
        wait_for_close(conn);
    });
    std::error_code ec;
    const auto client = door_client::open(path, ec);
    CHECK_DOOR_ERROR(ec, std::errc::protocol_error);
}

TEST_CASE("a client reports what a broken server answers", "[door][protocol]")
{
    struct answer_case {
        const char* name;
        bytes answer; // empty: close the connection without answering
        std::errc expected;
    };
    const bytes bad_magic = [] {
        bytes m = encode(message_type::reply, "abc");
        m[0] = std::byte{0};
        return m;
    }();
    const std::vector<answer_case> cases{
        {"garbage", bad_magic, std::errc::protocol_error},
        {"a version-2 reply", encode(message_type::reply, "abc", 0, 0, 2), std::errc::protocol_not_supported},
        {"a hello instead of a reply", hello_bytes(::getpid()), std::errc::protocol_error},
        {"a call instead of a reply", encode(message_type::call, "abc"), std::errc::protocol_error},
        {"an error reply passes its errno on", encode(message_type::error, {}, 0, EAGAIN),
         std::errc::resource_unavailable_try_again},
        {"the server goes away mid-call", {}, std::errc::interrupted},
    };
    for (const auto& c : cases) {
        INFO("case: " << c.name);
        leak_check leaks;
        temp_dir dir;
        const auto path = dir.file("door");
        fake_door peer(path, [&](int conn) {
            raw_send(conn, hello_bytes(::getpid()));
            (void)raw_receive(conn, 5s); // the call; its content does not matter here
            if (!c.answer.empty()) {
                raw_send(conn, c.answer);
                wait_for_close(conn);
            }
        });
        const auto client = open_door(path);
        std::error_code ec;
        client.call("question", {}, 5s, ec);
        CHECK_DOOR_ERROR(ec, c.expected);
    }
}

TEST_CASE("a raw version-2 call gets a version-1 error back and the server keeps serving", "[door][protocol]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    server_process server(path, {});
    const long server_fds = settled_fd_count(server);
    {
        const unique_fd raw = raw_connect(path);
        REQUIRE(raw);
        expect_hello(raw.get());
        REQUIRE(raw_send(raw.get(), encode(message_type::call, "from the future", 0, 0, 2)));
        CHECK(expect_error(raw.get()) == EPROTONOSUPPORT);
        CHECK(expect_eof(raw.get()));
    }
    const auto client = open_door(path);
    std::error_code ec;
    CHECK(client.call("still here", ec).data.view() == "still here");
    CHECK_FALSE(ec);
    CHECK(eventually([&] { return server.fd_count() == server_fds + 1; }, 2s)); // + the client's connection
}

TEST_CASE("malformed calls get EPROTO and the server keeps none of their descriptors", "[door][protocol]")
{
    struct call_case {
        const char* name;
        bytes message;
        std::size_t fds;
    };
    const std::vector<call_case> cases{
        {"descriptors the header does not announce", encode(message_type::call, "abc"), 3},
        {"fewer descriptors than announced", encode(message_type::call, "abc", 4), 2},
        {"bad magic", [] {
             bytes m = encode(message_type::call, "abc");
             m[1] = std::byte{0};
             return m;
         }(),
         1},
        {"a reply sent as a call", encode(message_type::reply, "abc", 1), 1},
        {"a payload message with no call before it", encode(message_type::payload, {}, 1), 1},
        {"a short message", bytes(12, std::byte{0x50}), 2},
    };
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    server_process server(path, {});
    const long server_fds = settled_fd_count(server);
    for (const auto& c : cases) {
        INFO("case: " << c.name);
        auto [read_end, write_end] = make_pipe();
        {
            const unique_fd raw = raw_connect(path);
            REQUIRE(raw);
            expect_hello(raw.get());
            std::vector<unique_fd> copies;
            std::vector<int> fds;
            for (std::size_t i = 0; i < c.fds; ++i) {
                copies.emplace_back(::dup(write_end.get()));
                fds.push_back(copies.back().get());
            }
            REQUIRE(raw_send(raw.get(), c.message, fds));
            copies.clear();
            write_end.reset();
            CHECK(expect_error(raw.get()) == EPROTO);
            CHECK(expect_eof(raw.get()));
        }
        // EOF on the pipe: no copy of its write end survived in the server.
        bool complete = false;
        read_until_eof(read_end.get(), 2s, complete);
        CHECK(complete);
    }
    CHECK(eventually([&] { return server.fd_count() == server_fds; }, 2s));
    const auto client = open_door(path);
    std::error_code ec;
    CHECK(client.call("still serving", ec).data.view() == "still serving");
}

TEST_CASE("the server itself refuses descriptors when told to, whatever the client checks", "[door][protocol]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    server_process server(path, {.mode = "fds", .refuse_descriptors = true});
    const unique_fd raw = raw_connect(path);
    REQUIRE(raw);
    const auto hello = expect_hello(raw.get());
    CHECK((hello.attributes & door_attr_refuse_desc) != 0);
    CHECK(hello.pid == server.pid());

    auto [read_end, write_end] = make_pipe();
    REQUIRE(raw_send(raw.get(), encode(message_type::call, "write:x", 1), {write_end.get()}));
    write_end.reset();
    CHECK(expect_error(raw.get()) == ENOTSUP);
    bool complete = false;
    CHECK(read_until_eof(read_end.get(), 2s, complete).empty()); // closed unused
    CHECK(complete);

    // The connection stays usable for calls without descriptors.
    REQUIRE(raw_send(raw.get(), encode(message_type::call, "noextra")));
    const auto m = raw_receive(raw.get(), 5s);
    wire_header h;
    std::uint16_t version = 0;
    REQUIRE_FALSE(decode_header(m.bytes, m.fds.size(), h, version));
    CHECK(h.type == message_type::reply);
    CHECK(std::string(reinterpret_cast<const char*>(m.bytes.data()) + wire_header_size, h.size) == "received 0");
}

// After revoke, the listening socket is shut down but a connection already in its backlog can
// still be accepted. A pool thread that takes the listener's event after revoke accepts it,
// sends it a hello, sees the door is revoked and closes it without a word about the call
// queued on it. The client then reads EOF after a valid hello, which the door contract reads as
// EINTR ("the call may have run"), although nothing ran: the answer must be EBADF (or no hello).
TEST_CASE("a call waiting in the accept backlog at revoke is answered with EBADF", "[door][protocol][regression]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    server_process server(path, {.mode = "block", .max_threads = 1});
    const auto blocker = open_door(path);
    std::error_code blocked_ec;
    bool hello_seen = false;
    bool eof = false;
    int error = 0;
    bool replied = false;
    {
        std::jthread blocked([&] { blocker.call("block", {}, 10s, blocked_ec); });
        scope_exit unblock([&] { server.release_all(); });
        REQUIRE(server.wait_lines("enter", 1, 5s));
        // The pool's only thread is busy, so this connection waits in the backlog with its call
        // already queued (SOCK_SEQPACKET lets a client send before it is accepted).
        const unique_fd raw = raw_connect(path);
        REQUIRE(raw);
        REQUIRE(raw_send(raw.get(), encode(message_type::call, "queued")));
        REQUIRE(server.kill(SIGTERM));
        struct stat st {};
        REQUIRE(eventually([&] { return ::lstat(path.c_str(), &st) != 0; }, 2s));
        std::this_thread::sleep_for(50ms); // revoke() shuts the listener right after the unlink
        server.release(1);
        for (int i = 0; i < 4 && !eof; ++i) {
            const auto m = raw_receive(raw.get(), 5s);
            if (m.timed_out) break;
            if (m.eof) {
                eof = true;
                break;
            }
            if (m.reset) continue; // the server closed with our call unread; read what it sent
            if (m.bytes.empty()) break;
            wire_header h;
            std::uint16_t version = 0;
            if (decode_header(m.bytes, m.fds.size(), h, version)) break;
            if (h.type == message_type::hello) hello_seen = true;
            if (h.type == message_type::error) error = h.error;
            if (h.type == message_type::reply) replied = true;
        }
    }
    INFO("hello seen: " << hello_seen << ", error: " << error << ", replied: " << replied << ", eof: " << eof);
    CHECK(eof);
    CHECK_FALSE(replied); // the door was revoked before the call was read: it must not run
    CHECK((!hello_seen || error == EBADF));
    CHECK_FALSE(blocked_ec);
    const auto status = server.wait_exit(5s);
    CHECK((status && WIFEXITED(*status) && WEXITSTATUS(*status) == 0));
}
