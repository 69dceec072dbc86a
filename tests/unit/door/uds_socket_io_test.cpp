// SPDX-License-Identifier: MPL-2.0
// The uds message layer over a socketpair, with a hostile peer that breaks the memfd and fd rules.
#include "door/uds/socket_io.hpp"

#include "door_test_support.hpp"
#include "raw_socket.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace portunus;
using namespace portunus::test;
using namespace portunus::uds;

struct socket_pair {
    unique_fd sender;
    unique_fd receiver;
    socket_pair()
    {
        int ends[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, ends) == 0);
        sender.reset(ends[0]);
        receiver.reset(ends[1]);
    }
};

std::vector<std::byte> header_bytes(message_type type, std::uint64_t size, std::uint32_t nfds, std::uint32_t flags)
{
    wire_header h;
    h.type = type;
    h.size = size;
    h.nfds = nfds;
    h.flags = flags;
    std::vector<std::byte> m(wire_header_size);
    encode_header(h, std::span<std::byte, wire_header_size>(m.data(), wire_header_size));
    return m;
}

std::string pattern(std::size_t size)
{
    std::string s(size, '\0');
    std::uint32_t x = 2463534242u;
    for (auto& c : s) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<char>(x);
    }
    return s;
}

// A memfd of `size` bytes with exactly the seals given, so a test can leave out the ones that
// make a payload trustworthy.
unique_fd memfd_with_seals(std::size_t size, int seals)
{
    unique_fd fd(::memfd_create("door-test", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    REQUIRE(fd);
    REQUIRE(::ftruncate(fd.get(), static_cast<off_t>(size)) == 0);
    if (seals != 0) REQUIRE(::fcntl(fd.get(), F_ADD_SEALS, seals) == 0);
    return fd;
}

std::error_code receive(int sock, received_message& out)
{
    static thread_local std::vector<std::byte> buffer(wire_header_size + wire_inline_max);
    return receive_message(sock, buffer, out, MSG_DONTWAIT);
}

// A memfd call whose payload message breaks one rule: the receiver must refuse it and keep none
// of the descriptors that came with it.
void check_bad_payload(unique_fd payload_fd, std::size_t header_size)
{
    socket_pair p;
    auto [read_end, write_end] = make_pipe();
    REQUIRE(raw_send(p.sender.get(), header_bytes(message_type::call, header_size, 1, flag_payload_in_memfd),
                     {write_end.get()}));
    REQUIRE(raw_send(p.sender.get(), header_bytes(message_type::payload, header_size, 1, 0), {payload_fd.get()}));
    payload_fd.reset();
    write_end.reset();
    received_message m;
    const auto ec = receive(p.receiver.get(), m);
    CHECK_DOOR_ERROR(ec, std::errc::protocol_error);
    CHECK(m.fds.empty());
    // The only write end left was the one passed along; EOF proves the receiver closed it.
    bool complete = false;
    read_until_eof(read_end.get(), 1s, complete);
    CHECK(complete);
}

} // namespace

TEST_CASE("send_message and receive_message carry bytes and descriptors", "[door][socket]")
{
    leak_check leaks;
    socket_pair p;
    auto [read_end, write_end] = make_pipe();
    const int fds[] = {write_end.get(), read_end.get()};
    REQUIRE_FALSE(send_message(p.sender.get(), message_type::reply, "some bytes\0and more", fds));
    received_message m;
    REQUIRE_FALSE(receive(p.receiver.get(), m));
    CHECK(m.header.type == message_type::reply);
    CHECK(m.data == "some bytes\0and more");
    REQUIRE(m.fds.size() == 2);
    for (const auto& fd : m.fds) CHECK((::fcntl(fd.get(), F_GETFD) & FD_CLOEXEC) != 0);
    // The received write end is the same pipe.
    REQUIRE(write_all(m.fds[0].get(), "x"));
    CHECK(read_exactly(read_end.get(), 1, 1s) == "x");
}

TEST_CASE("payloads over the inline maximum arrive through a sealed memfd", "[door][socket]")
{
    leak_check leaks;
    socket_pair p;
    const std::string data = pattern(wire_inline_max + 1);
    REQUIRE_FALSE(send_message(p.sender.get(), message_type::call, data, {}));
    received_message m;
    REQUIRE_FALSE(receive(p.receiver.get(), m));
    CHECK(m.header.type == message_type::call);
    CHECK((m.header.flags & flag_payload_in_memfd) != 0);
    CHECK(m.mapped.data() != nullptr);
    CHECK(m.data.size() == data.size());
    CHECK(m.data == data);
}

TEST_CASE("data in pieces arrives as one message, inline or through a memfd", "[door][socket]")
{
    leak_check leaks;
    socket_pair p;
    const std::string head = "POST / HTTP/1.1\r\n\r\n";
    for (const std::size_t body_size : {std::size_t{0}, std::size_t{100}, wire_inline_max - head.size(),
                                        wire_inline_max - head.size() + 1, 3 * wire_inline_max}) {
        INFO("body of " << body_size << " bytes");
        const std::string body = pattern(body_size);
        const std::string_view pieces[] = {head, {}, body};
        REQUIRE_FALSE(send_message(p.sender.get(), message_type::call, pieces, {}));
        received_message m;
        REQUIRE_FALSE(receive(p.receiver.get(), m));
        CHECK(((m.header.flags & flag_payload_in_memfd) != 0) == (head.size() + body_size > wire_inline_max));
        CHECK(m.data == head + body);
    }
    const std::string_view too_many[door_client::door_max_pieces + 1] = {};
    CHECK_DOOR_ERROR(send_message(p.sender.get(), message_type::call, too_many, {}), std::errc::argument_list_too_long);
}

TEST_CASE("small messages in pieces arrive whole on both sides of the flat-send limit", "[door][socket]")
{
    // Messages of up to 512 bytes without descriptors leave through one send() of a copy; the
    // rest through sendmsg(). Either way the receiver sees the same bytes.
    leak_check leaks;
    socket_pair p;
    constexpr std::size_t limit = 512 - wire_header_size; // the largest body sent flat
    for (const std::size_t total : {std::size_t{1}, limit - 1, limit, limit + 1, std::size_t{600}}) {
        INFO("message of " << total << " bytes");
        const std::string body = pattern(total);
        const std::string_view pieces[] = {std::string_view(body).substr(0, total / 3), {},
                                           std::string_view(body).substr(total / 3)};
        REQUIRE_FALSE(send_message(p.sender.get(), message_type::reply, pieces, {}));
        received_message m;
        REQUIRE_FALSE(receive(p.receiver.get(), m));
        CHECK(m.header.type == message_type::reply);
        CHECK(m.data == body);
        CHECK(m.fds.empty());
    }
}

TEST_CASE("make_sealed_memfd seals its contents against every change", "[door][socket]")
{
    leak_check leaks;
    std::error_code ec;
    const std::string data = pattern(5000);
    const unique_fd fd = make_sealed_memfd(data, ec);
    REQUIRE_FALSE(ec);
    const int seals = ::fcntl(fd.get(), F_GET_SEALS);
    CHECK((seals & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL)) ==
          (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL));
    CHECK(::pwrite(fd.get(), "x", 1, 0) < 0);
    CHECK(::ftruncate(fd.get(), 1) != 0);
    const door_buffer mapped = map_sealed_memfd(fd.get(), data.size(), ec);
    REQUIRE_FALSE(ec);
    CHECK(mapped.view() == data);
}

TEST_CASE("a memfd payload without the write seal is refused", "[door][socket]")
{
    leak_check leaks;
    check_bad_payload(memfd_with_seals(wire_inline_max + 1, F_SEAL_SHRINK | F_SEAL_GROW), wire_inline_max + 1);
}

TEST_CASE("an unsealed memfd payload is refused", "[door][socket]")
{
    leak_check leaks;
    check_bad_payload(memfd_with_seals(wire_inline_max + 1, 0), wire_inline_max + 1);
}

TEST_CASE("a memfd payload whose size differs from the header is refused", "[door][socket]")
{
    leak_check leaks;
    check_bad_payload(memfd_with_seals(wire_inline_max + 2, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE),
                      wire_inline_max + 1);
}

TEST_CASE("a payload descriptor that is not a memfd is refused", "[door][socket]")
{
    leak_check leaks;
    auto [other_read, other_write] = make_pipe();
    check_bad_payload(std::move(other_read), wire_inline_max + 1);
}

TEST_CASE("a memfd call followed by something other than its payload is refused", "[door][socket]")
{
    leak_check leaks;
    socket_pair p;
    REQUIRE(raw_send(p.sender.get(), header_bytes(message_type::call, wire_inline_max + 1, 0, flag_payload_in_memfd)));
    REQUIRE(raw_send(p.sender.get(), header_bytes(message_type::call, 0, 0, 0)));
    received_message m;
    CHECK_DOOR_ERROR(receive(p.receiver.get(), m), std::errc::protocol_error);
}

TEST_CASE("a payload message on its own is refused and its memfd closed", "[door][socket]")
{
    leak_check leaks;
    socket_pair p;
    std::error_code ec;
    unique_fd memfd = make_sealed_memfd(pattern(wire_inline_max + 1), ec);
    REQUIRE_FALSE(ec);
    REQUIRE(raw_send(p.sender.get(), header_bytes(message_type::payload, wire_inline_max + 1, 1, 0), {memfd.get()}));
    memfd.reset();
    received_message m;
    CHECK_DOOR_ERROR(receive(p.receiver.get(), m), std::errc::protocol_error);
    CHECK(m.fds.empty());
}

TEST_CASE("descriptors that come with a malformed header are closed", "[door][socket]")
{
    leak_check leaks;
    socket_pair p;
    auto [read_end, write_end] = make_pipe();
    // The header says no descriptors, three arrive.
    const unique_fd a(::dup(write_end.get())), b(::dup(write_end.get()));
    REQUIRE(raw_send(p.sender.get(), header_bytes(message_type::call, 0, 0, 0), {write_end.get(), a.get(), b.get()}));
    write_end.reset();
    received_message m;
    CHECK_DOOR_ERROR(receive(p.receiver.get(), m), std::errc::protocol_error);
    CHECK(m.fds.empty());
}

TEST_CASE("a message longer than the receive buffer is refused", "[door][socket]")
{
    leak_check leaks;
    socket_pair p;
    REQUIRE_FALSE(send_message(p.sender.get(), message_type::call, std::string(100, 'x'), {}));
    std::vector<std::byte> small(wire_header_size + 50);
    received_message m;
    CHECK_DOOR_ERROR(receive_message(p.receiver.get(), small, m, MSG_DONTWAIT), std::errc::protocol_error);
}

TEST_CASE("a message of another protocol version is reported as such", "[door][socket]")
{
    leak_check leaks;
    socket_pair p;
    auto bytes = header_bytes(message_type::call, 0, 0, 0);
    const std::uint16_t version = 2;
    std::memcpy(bytes.data() + 4, &version, sizeof version);
    REQUIRE(raw_send(p.sender.get(), bytes));
    received_message m;
    CHECK_DOOR_ERROR(receive(p.receiver.get(), m), std::errc::protocol_not_supported);
}

TEST_CASE("a closed peer reads as ECONNRESET", "[door][socket]")
{
    leak_check leaks;
    socket_pair p;
    p.sender.reset();
    received_message m;
    const auto ec = receive(p.receiver.get(), m);
    CHECK(ec == std::errc::connection_reset);
}
