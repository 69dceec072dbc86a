// SPDX-License-Identifier: MPL-2.0
// The uds wire codec against named adversarial cases, round trips and every truncation.
#include "door/uds/wire_format.hpp"

#include "door_test_support.hpp"

#include <portunus/door_error.hpp>

#include <array>
#include <cerrno>
#include <climits>
#include <limits>
#include <memory>
#include <cstring>
#include <string>
#include <vector>

namespace {

using namespace portunus::uds;
using bytes = std::vector<std::byte>;

constexpr std::size_t max_inline = wire_inline_max;

wire_header header(message_type type, std::uint64_t size = 0, std::uint32_t nfds = 0, std::uint32_t flags = 0,
                   std::int32_t error = 0)
{
    wire_header h;
    h.type = type;
    h.size = size;
    h.nfds = nfds;
    h.flags = flags;
    h.error = error;
    return h;
}

// A header followed by `body` filler bytes; the header is what encode_header writes, so every
// adversarial case below starts from a well-formed message and breaks exactly one thing.
bytes message(const wire_header& h, std::size_t body = 0)
{
    bytes m(wire_header_size + body, std::byte{0x5a});
    encode_header(h, std::span<std::byte, wire_header_size>(m.data(), wire_header_size));
    return m;
}

bytes hello_message(const wire_hello& hello)
{
    bytes m = message(header(message_type::hello, wire_hello_size), wire_hello_size);
    encode_hello(hello, std::span<std::byte, wire_hello_size>(m.data() + wire_header_size, wire_hello_size));
    return m;
}

template <typename T>
bytes poke(bytes m, std::size_t offset, T value)
{
    std::memcpy(m.data() + offset, &value, sizeof value);
    return m;
}

bytes first(const bytes& m, std::size_t n) { return bytes(m.begin(), m.begin() + static_cast<std::ptrdiff_t>(n)); }

bytes append(bytes m, std::size_t extra)
{
    m.resize(m.size() + extra, std::byte{0});
    return m;
}

// Field offsets, as the format fixes them: magic 0, version 4, type 6, flags 8, nfds 12,
// size 16, error 24, reserved 28.
constexpr std::size_t at_magic = 0, at_version = 4, at_type = 6, at_flags = 8, at_reserved = 28;

struct bad_case {
    std::string name;
    bytes message;
    std::size_t fds_received;
    int expected;
    std::uint16_t peer_version;
};

std::vector<bad_case> bad_cases()
{
    const bytes call5 = message(header(message_type::call, 5), 5);
    const bytes error_ebadf = message(header(message_type::error, 0, 0, 0, EBADF));
    const wire_hello some_hello{4242, 0, 77};
    return {
        {"empty message", {}, 0, EPROTO, 0},
        {"seven bytes: magic and half a version", first(call5, 7), 0, EPROTO, 0},
        {"eight bytes: magic and version 1 only", first(call5, 8), 0, EPROTO, 1},
        {"header cut at 31 bytes", first(error_ebadf, 31), 0, EPROTO, 1},
        {"bad magic", poke<std::uint32_t>(call5, at_magic, 0x524f4451), 0, EPROTO, 0},
        {"byte-swapped magic", poke<std::uint32_t>(call5, at_magic, 0x50444f52), 0, EPROTO, 0},
        {"all zero header", bytes(wire_header_size, std::byte{0}), 0, EPROTO, 0},
        {"version 0", poke<std::uint16_t>(call5, at_version, 0), 0, EPROTONOSUPPORT, 0},
        {"version 2", poke<std::uint16_t>(call5, at_version, 2), 0, EPROTONOSUPPORT, 2},
        {"version 2 in only eight bytes", first(poke<std::uint16_t>(call5, at_version, 2), 8), 0,
         EPROTONOSUPPORT, 2},
        {"version 2 with a longer header", append(poke<std::uint16_t>(call5, at_version, 2), 64), 3,
         EPROTONOSUPPORT, 2},
        {"version 0xffff", poke<std::uint16_t>(call5, at_version, 0xffff), 0, EPROTONOSUPPORT, 0xffff},
        {"type 0", poke<std::uint16_t>(call5, at_type, 0), 0, EPROTO, 1},
        {"type 8 (one past reply_batch)", poke<std::uint16_t>(call5, at_type, 8), 0, EPROTO, 1},
        {"type 0xffff", poke<std::uint16_t>(call5, at_type, 0xffff), 0, EPROTO, 1},
        {"nonzero reserved word", poke<std::uint32_t>(call5, at_reserved, 1), 0, EPROTO, 1},
        {"reserved word high bit", poke<std::uint32_t>(call5, at_reserved, 0x80000000u), 0, EPROTO, 1},
        {"unknown flag bit", poke<std::uint32_t>(call5, at_flags, 2), 0, EPROTO, 1},
        {"nfds 1 but no descriptor arrived", message(header(message_type::call, 5, 1), 5), 0, EPROTO, 1},
        {"descriptors arrived but nfds 0", call5, 2, EPROTO, 1},
        {"nfds 2 but 3 arrived", message(header(message_type::call, 5, 2), 5), 3, EPROTO, 1},
        {"nfds 254 (over the SCM_RIGHTS limit)", message(header(message_type::call, 0, 254)), 254, EPROTO, 1},
        {"nfds 0xffffffff", message(header(message_type::call, 0, 0xffffffffu)), 0, EPROTO, 1},
        {"call size larger than its body", message(header(message_type::call, 6), 5), 0, EPROTO, 1},
        {"call size smaller than its body", message(header(message_type::call, 4), 5), 0, EPROTO, 1},
        {"call size 2^64-1", message(header(message_type::call, ~std::uint64_t{0}), 5), 0, EPROTO, 1},
        {"reply body with a trailing byte", append(message(header(message_type::reply, 3), 3), 1), 0, EPROTO, 1},
        {"inline call one byte over the maximum", message(header(message_type::call, max_inline + 1), max_inline + 1),
         0, EPROTO, 1},
        {"memfd call at exactly the inline maximum",
         message(header(message_type::call, max_inline, 0, flag_payload_in_memfd)), 0, EPROTO, 1},
        {"memfd call with a small size", message(header(message_type::call, 10, 0, flag_payload_in_memfd)), 0, EPROTO,
         1},
        {"memfd call with size 0", message(header(message_type::call, 0, 0, flag_payload_in_memfd)), 0, EPROTO, 1},
        {"memfd call that also carries a body",
         message(header(message_type::call, max_inline + 1, 0, flag_payload_in_memfd), 1), 0, EPROTO, 1},
        {"call with its error field set", message(header(message_type::call, 0, 0, 0, EBADF)), 0, EPROTO, 1},
        {"reply with its error field set", message(header(message_type::reply, 2, 0, 0, -1), 2), 0, EPROTO, 1},
        {"error with errno 0", message(header(message_type::error, 0, 0, 0, 0)), 0, EPROTO, 1},
        {"error with a negative errno", message(header(message_type::error, 0, 0, 0, -EBADF)), 0, EPROTO, 1},
        {"error with a body", message(header(message_type::error, 1, 0, 0, EBADF), 1), 0, EPROTO, 1},
        {"error with a size but no body", message(header(message_type::error, 1, 0, 0, EBADF)), 0, EPROTO, 1},
        {"error carrying a descriptor", message(header(message_type::error, 0, 1, 0, EBADF)), 1, EPROTO, 1},
        {"error with the memfd flag", message(header(message_type::error, 0, 0, flag_payload_in_memfd, EBADF)), 0,
         EPROTO, 1},
        {"hello with a 15-byte body", message(header(message_type::hello, 15), 15), 0, EPROTO, 1},
        {"hello with a 17-byte body", message(header(message_type::hello, 17), 17), 0, EPROTO, 1},
        {"hello without a body", message(header(message_type::hello, 0)), 0, EPROTO, 1},
        {"hello whose size disagrees with its body", poke<std::uint64_t>(hello_message(some_hello), 16, 15), 0, EPROTO,
         1},
        {"hello carrying a descriptor", message(header(message_type::hello, 16, 1), 16), 1, EPROTO, 1},
        {"hello with the memfd flag", message(header(message_type::hello, 16, 0, flag_payload_in_memfd), 16), 0,
         EPROTO, 1},
        {"payload without its memfd", message(header(message_type::payload, max_inline + 1, 0)), 0, EPROTO, 1},
        {"payload with two descriptors", message(header(message_type::payload, max_inline + 1, 2)), 2, EPROTO, 1},
        {"payload with a small size", message(header(message_type::payload, 100, 1)), 1, EPROTO, 1},
        {"payload with a body", message(header(message_type::payload, max_inline + 1, 1), 8), 1, EPROTO, 1},
        {"payload with the memfd flag", message(header(message_type::payload, max_inline + 1, 1, flag_payload_in_memfd)),
         1, EPROTO, 1},
        {"empty call batch", message(header(message_type::call_batch, 0)), 0, EPROTO, 1},
        {"call batch with a descriptor", message(header(message_type::call_batch, 12, 1), 12), 1, EPROTO, 1},
        {"call batch over the inline maximum", message(header(message_type::call_batch, max_inline + 1), max_inline + 1),
         0, EPROTO, 1},
        {"call batch size unlike its body", message(header(message_type::call_batch, 13), 12), 0, EPROTO, 1},
        {"call batch with the memfd flag", message(header(message_type::call_batch, max_inline + 1, 0,
                                                          flag_payload_in_memfd), 12), 0, EPROTO, 1},
        {"call batch with an error", message(header(message_type::call_batch, 12, 0, 0, EBADF), 12), 0, EPROTO, 1},
        {"memfd reply batch without its entry header",
         message(header(message_type::reply_batch, max_inline + 1, 0, flag_payload_in_memfd)), 0, EPROTO, 1},
        {"memfd reply batch that would fit inline",
         message(header(message_type::reply_batch, max_inline - 12, 0, flag_payload_in_memfd), 12), 0, EPROTO, 1},
        {"memfd reply batch larger than any file can be (its size plus the entry header would wrap)",
         message(header(message_type::reply_batch, std::numeric_limits<std::uint64_t>::max() - 1, 0,
                        flag_payload_in_memfd), 12), 0, EPROTO, 1},
        {"memfd call larger than any file can be",
         message(header(message_type::call, std::uint64_t{1} << 63, 0, flag_payload_in_memfd)), 0, EPROTO, 1},
        {"payload too small even for a batch reply", message(header(message_type::payload, max_inline - 12, 1)), 1,
         EPROTO, 1},
    };
}

struct valid_case {
    std::string name;
    bytes message;
    std::size_t fds;
    wire_header expected;
};

std::vector<valid_case> valid_cases()
{
    const auto h = [](message_type type, std::uint64_t size, std::uint32_t nfds, std::uint32_t flags,
                      std::int32_t error) { return header(type, size, nfds, flags, error); };
    const wire_hello hello{31337, 0x40, 0x0123456789abcdefULL};
    return {
        {"hello", hello_message(hello), 0, h(message_type::hello, wire_hello_size, 0, 0, 0)},
        {"empty call", message(h(message_type::call, 0, 0, 0, 0)), 0, h(message_type::call, 0, 0, 0, 0)},
        {"small call", message(h(message_type::call, 5, 0, 0, 0), 5), 0, h(message_type::call, 5, 0, 0, 0)},
        {"call with 3 descriptors", message(h(message_type::call, 9, 3, 0, 0), 9), 3,
         h(message_type::call, 9, 3, 0, 0)},
        {"call with 253 descriptors", message(h(message_type::call, 0, 253, 0, 0)), 253,
         h(message_type::call, 0, 253, 0, 0)},
        {"inline call at the maximum", message(h(message_type::call, max_inline, 0, 0, 0), max_inline), 0,
         h(message_type::call, max_inline, 0, 0, 0)},
        {"memfd call one past the inline maximum",
         message(h(message_type::call, max_inline + 1, 2, flag_payload_in_memfd, 0)), 2,
         h(message_type::call, max_inline + 1, 2, flag_payload_in_memfd, 0)},
        {"empty reply", message(h(message_type::reply, 0, 0, 0, 0)), 0, h(message_type::reply, 0, 0, 0, 0)},
        {"reply with a descriptor", message(h(message_type::reply, 7, 1, 0, 0), 7), 1,
         h(message_type::reply, 7, 1, 0, 0)},
        {"memfd reply of 64 MiB", message(h(message_type::reply, 64u << 20, 0, flag_payload_in_memfd, 0)), 0,
         h(message_type::reply, 64u << 20, 0, flag_payload_in_memfd, 0)},
        {"error EBADF", message(h(message_type::error, 0, 0, 0, EBADF)), 0, h(message_type::error, 0, 0, 0, EBADF)},
        {"error EPROTONOSUPPORT", message(h(message_type::error, 0, 0, 0, EPROTONOSUPPORT)), 0,
         h(message_type::error, 0, 0, 0, EPROTONOSUPPORT)},
        {"payload", message(h(message_type::payload, max_inline + 1, 1, 0, 0)), 1,
         h(message_type::payload, max_inline + 1, 1, 0, 0)},
        {"call batch", message(h(message_type::call_batch, 20, 0, 0, 0), 20), 0, h(message_type::call_batch, 20, 0, 0, 0)},
        {"reply batch at the inline maximum", message(h(message_type::reply_batch, max_inline, 0, 0, 0), max_inline), 0,
         h(message_type::reply_batch, max_inline, 0, 0, 0)},
        {"memfd reply batch tipped over by its entry header",
         message(h(message_type::reply_batch, max_inline - 11, 0, flag_payload_in_memfd, 0), 12), 0,
         h(message_type::reply_batch, max_inline - 11, 0, flag_payload_in_memfd, 0)},
        {"payload of such a reply", message(h(message_type::payload, max_inline - 11, 1, 0, 0)), 1,
         h(message_type::payload, max_inline - 11, 1, 0, 0)},
    };
}

std::error_code decode(const bytes& m, std::size_t fds, wire_header& out, std::uint16_t& version)
{
    // An exactly-sized copy, so that a read past the end is a sanitizer error, not a silent pass.
    const auto exact = std::make_unique<std::byte[]>(m.size() == 0 ? 1 : m.size());
    if (!m.empty()) std::memcpy(exact.get(), m.data(), m.size());
    return decode_header(std::span<const std::byte>(exact.get(), m.size()), fds, out, version);
}

} // namespace

TEST_CASE("decode_header rejects each adversarial message with the right error", "[door][wire]")
{
    portunus::test::leak_check leaks;
    for (const auto& c : bad_cases()) {
        INFO("case: " << c.name);
        wire_header out;
        std::uint16_t version = 0xbeef;
        const auto ec = decode(c.message, c.fds_received, out, version);
        CHECK(ec.value() == c.expected);
        CHECK(&ec.category() == &portunus::door_category());
        CHECK(version == c.peer_version);
    }
}

TEST_CASE("decode_header accepts every valid message type and keeps its fields", "[door][wire]")
{
    portunus::test::leak_check leaks;
    for (const auto& c : valid_cases()) {
        INFO("case: " << c.name);
        wire_header out;
        std::uint16_t version = 0;
        const auto ec = decode(c.message, c.fds, out, version);
        INFO(ec.message());
        REQUIRE_FALSE(ec);
        CHECK(version == wire_version);
        CHECK(out.type == c.expected.type);
        CHECK(out.flags == c.expected.flags);
        CHECK(out.nfds == c.expected.nfds);
        CHECK(out.size == c.expected.size);
        CHECK(out.error == c.expected.error);
    }
}

TEST_CASE("every valid message cut at every byte is rejected cleanly", "[door][wire]")
{
    portunus::test::leak_check leaks;
    for (const auto& c : valid_cases()) {
        INFO("case: " << c.name);
        std::size_t rejected = 0;
        std::size_t tried = 0;
        for (std::size_t cut = 0; cut < c.message.size(); ++cut) {
            // The 128 KiB message is cut everywhere in its header and near its end; cutting it
            // at each of its 131 072 body bytes would only repeat the size check many times.
            if (c.message.size() > 4096 && cut >= 64 && cut + 64 < c.message.size()) continue;
            ++tried;
            wire_header out;
            std::uint16_t version = 0xbeef;
            const auto ec = decode(first(c.message, cut), c.fds, out, version);
            if (ec.value() == EPROTO && version == (cut < 8 ? 0 : wire_version)) ++rejected;
            else FAIL_CHECK("cut at " << cut << " gave " << ec.value() << ", peer version " << version);
        }
        CHECK(rejected == tried);
    }
}

TEST_CASE("a valid message with one byte more is rejected", "[door][wire]")
{
    portunus::test::leak_check leaks;
    for (const auto& c : valid_cases()) {
        INFO("case: " << c.name);
        wire_header out;
        std::uint16_t version = 0;
        CHECK(decode(append(c.message, 1), c.fds, out, version).value() == EPROTO);
    }
}

TEST_CASE("the hello body round-trips and decode_hello rejects bad bodies", "[door][wire]")
{
    portunus::test::leak_check leaks;
    const wire_hello sent{31337, 0x40, 0xfedcba9876543210ULL};
    std::array<std::byte, wire_hello_size> body;
    encode_hello(sent, body);
    wire_hello got;
    REQUIRE_FALSE(decode_hello(body, got));
    CHECK(got.pid == sent.pid);
    CHECK(got.attributes == sent.attributes);
    CHECK(got.uniquifier == sent.uniquifier);

    struct hello_case {
        const char* name;
        bytes body;
    };
    const auto with_pid = [&](std::int32_t pid) {
        bytes b(body.begin(), body.end());
        std::memcpy(b.data(), &pid, sizeof pid);
        return b;
    };
    const std::vector<hello_case> cases{
        {"empty", {}},
        {"15 bytes", bytes(body.begin(), body.end() - 1)},
        {"17 bytes", append(bytes(body.begin(), body.end()), 1)},
        {"pid 0", with_pid(0)},
        {"negative pid", with_pid(-1)},
        {"most negative pid", with_pid(INT32_MIN)},
    };
    for (const auto& c : cases) {
        INFO("case: " << c.name);
        const auto exact = std::make_unique<std::byte[]>(c.body.size() + 1);
        if (!c.body.empty()) std::memcpy(exact.get(), c.body.data(), c.body.size());
        wire_hello out;
        const auto ec = decode_hello(std::span<const std::byte>(exact.get(), c.body.size()), out);
        CHECK(ec.value() == EPROTO);
        CHECK(&ec.category() == &portunus::door_category());
    }
    for (std::size_t cut = 0; cut < body.size(); ++cut) {
        INFO("hello body cut at " << cut);
        wire_hello out;
        CHECK(decode_hello(std::span<const std::byte>(body.data(), cut), out).value() == EPROTO);
    }
}

// Fields a message type does not use carry no meaning, so a strict decoder rejects them when
// set, as it already does for the error field of calls and replies. Hello and payload messages
// are not held to that (see the report that goes with this case).
TEST_CASE("unused error field in hello and payload messages is rejected", "[door][wire][regression]")
{
    portunus::test::leak_check leaks;
    const wire_hello hello{4242, 0, 1};
    const bytes hello_with_error = poke<std::int32_t>(hello_message(hello), 24, EBADF);
    const bytes payload_with_error = message(header(message_type::payload, max_inline + 1, 1, 0, EBADF));
    wire_header out;
    std::uint16_t version = 0;
    CHECK(decode(hello_with_error, 0, out, version).value() == EPROTO);
    CHECK(decode(payload_with_error, 1, out, version).value() == EPROTO);
}

TEST_CASE("decode_batch splits well-formed bodies and rejects each malformed one", "[door][wire][batch]")
{
    portunus::test::leak_check leaks;
    std::string calls;
    append_batch_call(calls, 1, "first");
    append_batch_call(calls, 0xffffffffu, "");
    append_batch_call(calls, 7, std::string(300, 'x'));
    std::vector<batch_entry> out;
    REQUIRE_FALSE(decode_batch(message_type::call_batch, calls, out));
    REQUIRE(out.size() == 3);
    CHECK(out[0].tag == 1);
    CHECK(out[0].data == "first");
    CHECK(out[1].tag == 0xffffffffu);
    CHECK(out[1].data.empty());
    CHECK(out[2].data == std::string(300, 'x'));

    std::string replies;
    append_batch_reply(replies, 3, 0, "ok");
    append_batch_reply(replies, 4, EBADF, {});
    REQUIRE_FALSE(decode_batch(message_type::reply_batch, replies, out));
    REQUIRE(out.size() == 2);
    CHECK(out[0].data == "ok");
    CHECK(out[1].error == EBADF);

    std::string with_bytes;
    append_batch_reply(with_bytes, 5, EINTR, "no bytes may come with an error");
    std::string negative;
    append_batch_reply(negative, 5, -1, {});
    const struct {
        const char* name;
        message_type type;
        std::string body;
    } bad[] = {
        {"no entry", message_type::call_batch, ""},
        {"a cut entry header", message_type::call_batch, calls.substr(0, 5)},
        {"a length past the end", message_type::call_batch, calls.substr(0, 12)},
        {"a call body read as replies with bytes left over", message_type::reply_batch, calls.substr(0, 13)},
        {"an error with bytes", message_type::reply_batch, with_bytes},
        {"a negative error", message_type::reply_batch, negative},
        {"a call type that is not a batch", message_type::call, calls},
    };
    for (const auto& c : bad) {
        INFO("case: " << c.name);
        const auto ec = decode_batch(c.type, c.body, out);
        CHECK(ec.value() == EPROTO);
        CHECK(out.empty());
    }
    // Every cut of a valid body that is not at an entry boundary is malformed.
    for (std::size_t cut = 1; cut < calls.size(); ++cut) {
        const bool boundary = cut == 13 || cut == 21;
        INFO("cut at " << cut);
        CHECK(static_cast<bool>(decode_batch(message_type::call_batch, calls.substr(0, cut), out)) == !boundary);
    }
}
