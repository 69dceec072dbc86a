// SPDX-License-Identifier: MPL-2.0
// The PROXY header parser: every field of v1 and v2, both families, LOCAL and UNKNOWN, each
// header cut at every byte, garbage and oversize headers.
#include "portunusd/proxy/proxy_header.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace portunusd::proxy;
using namespace std::string_literals;

const std::string signature("\r\n\r\n\0\r\nQUIT\n", 12);

std::string be16(std::size_t v)
{
    return {static_cast<char>((v >> 8) & 0xff), static_cast<char>(v & 0xff)};
}

// A v2 header: signature, version 2 with `command`, `fam_transport`, then `body` (addresses
// and TLVs), whose length goes into the length field unless `length` says otherwise.
std::string v2(int command, int fam_transport, const std::string& body, long length = -1)
{
    return signature + static_cast<char>(0x20 | command) + static_cast<char>(fam_transport) +
           be16(length < 0 ? body.size() : static_cast<std::size_t>(length)) + body;
}

std::string bytes(std::initializer_list<int> b)
{
    std::string s;
    for (const int c : b) s += static_cast<char>(c);
    return s;
}

const std::string inet_block = bytes({192, 0, 2, 1, 198, 51, 100, 7}) + be16(56324) + be16(443);
const std::string inet6_block = bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}) +
                                bytes({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}) + be16(65535) +
                                be16(0);

endpoint v4(std::initializer_list<int> a, std::uint16_t port)
{
    endpoint e;
    e.fam = family::inet;
    std::size_t i = 0;
    for (const int b : a) e.address[i++] = static_cast<std::uint8_t>(b);
    e.port = port;
    return e;
}

endpoint v6(std::initializer_list<int> a, std::uint16_t port)
{
    endpoint e = v4(a, port);
    e.fam = family::inet6;
    return e;
}

parse_result complete(std::string_view in)
{
    const parse_result r = parse_header(in);
    INFO(r.error);
    REQUIRE(r.status == parse_status::complete);
    return r;
}

void require_error(std::string_view in, std::string_view why)
{
    const parse_result r = parse_header(in);
    REQUIRE(r.status == parse_status::error);
    CHECK(r.error == why);
}

// Every strict prefix of a valid header asks for more; the whole reports its own length
// whatever follows it.
void require_splits(const std::string& header)
{
    for (std::size_t n = 0; n < header.size(); ++n) {
        INFO("cut after " << n << " bytes");
        REQUIRE(parse_header(std::string_view(header).substr(0, n)).status == parse_status::need_more);
    }
    const parse_result whole = complete(header);
    CHECK(whole.length == header.size());
    const parse_result with_stream = complete(header + "GET / HTTP/1.1\r\n\r\n");
    CHECK(with_stream.length == header.size());
    CHECK(with_stream.value == whole.value);
}

} // namespace

TEST_CASE("v1 TCP4 gives every field", "[proxy]")
{
    const std::string h = "PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\r\n";
    const parse_result r = complete(h + "rest");
    CHECK(r.length == h.size());
    CHECK(r.value.version == 1);
    CHECK(r.value.has_addresses);
    CHECK(r.value.source == v4({192, 0, 2, 1}, 56324));
    CHECK(r.value.destination == v4({198, 51, 100, 7}, 443));
    require_splits(h);
}

TEST_CASE("v1 TCP6 gives every field", "[proxy]")
{
    const std::string h = "PROXY TCP6 2001:db8::1 2001:db8::2 65535 0\r\n";
    const parse_result r = complete(h);
    CHECK(r.value.has_addresses);
    CHECK(r.value.source == v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 65535));
    CHECK(r.value.destination == v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 0));
    require_splits(h);
}

TEST_CASE("v1 UNKNOWN keeps the connection's addresses and ignores the rest of its line", "[proxy]")
{
    for (const std::string& h : {"PROXY UNKNOWN\r\n"s, "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n"s}) {
        const parse_result r = complete(h);
        CHECK(r.value.version == 1);
        CHECK_FALSE(r.value.has_addresses);
        require_splits(h);
    }
}

TEST_CASE("v1 at its 107-byte limit, and one byte past it", "[proxy]")
{
    // The longest line the spec allows: UNKNOWN with two full-length IPv6 addresses.
    const std::string a = "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff";
    const std::string longest = "PROXY UNKNOWN " + a + " " + a + " 65535 65535\r\n";
    REQUIRE(longest.size() == max_v1_length);
    CHECK(complete(longest).length == max_v1_length);
    const std::string too_long = "PROXY UNKNOWN " + a + " " + a + " 65535 655355\r\n";
    require_error(too_long, "PROXY v1: no CRLF within 107 bytes");
    require_error(too_long.substr(0, max_v1_length), "PROXY v1: no CRLF within 107 bytes");
    CHECK(parse_header(too_long.substr(0, max_v1_length - 1)).status == parse_status::need_more);
}

TEST_CASE("v1 refuses every malformed line", "[proxy]")
{
    const std::pair<std::string, std::string_view> cases[] = {
        {"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\n", "PROXY v1: control or non-ASCII byte in the line"},
        {"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\rX", "PROXY v1: CR without LF"},
        {"PROXY TCP5 192.0.2.1 198.51.100.7 56324 443\r\n", "PROXY v1: expected TCP4, TCP6 or UNKNOWN"},
        {"PROXY tcp4 192.0.2.1 198.51.100.7 56324 443\r\n", "PROXY v1: expected TCP4, TCP6 or UNKNOWN"},
        {"PROXY \r\n", "PROXY v1: expected TCP4, TCP6 or UNKNOWN"},
        {"PROXY UNKNOWNX\r\n", "PROXY v1: expected TCP4, TCP6 or UNKNOWN"},
        {"PROXY TCP4 192.0.2.1 198.51.100.7 56324\r\n",
         "PROXY v1: expected source, destination, source port and destination port"},
        {"PROXY TCP4  192.0.2.1 198.51.100.7 56324 443\r\n", "PROXY v1: bad IPv4 address"},
        {"PROXY TCP4 192.0.2.256 198.51.100.7 56324 443\r\n", "PROXY v1: bad IPv4 address"},
        {"PROXY TCP4 192.0.2 198.51.100.7 56324 443\r\n", "PROXY v1: bad IPv4 address"},
        {"PROXY TCP4 2001:db8::1 198.51.100.7 56324 443\r\n", "PROXY v1: bad IPv4 address"},
        {"PROXY TCP6 192.0.2.1 2001:db8::2 56324 443\r\n", "PROXY v1: bad IPv6 address"},
        {"PROXY TCP6 2001:db8::1 2001:db8:::2 56324 443\r\n", "PROXY v1: bad IPv6 address"},
        {"PROXY TCP4 192.0.2.1 198.51.100.7 65536 443\r\n", "PROXY v1: bad port"},
        {"PROXY TCP4 192.0.2.1 198.51.100.7 056324 443\r\n", "PROXY v1: bad port"},
        {"PROXY TCP4 192.0.2.1 198.51.100.7 -1 443\r\n", "PROXY v1: bad port"},
        {"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443 \r\n", "PROXY v1: bad port"},
        {"PROXY TCP4 192.0.2.1 198.51.100.7 56324 \r\n", "PROXY v1: bad port"},
        {"PROXY TCP4 192.0.2.1 198.51.100.7 56324 443\0\r\n"s, "PROXY v1: control or non-ASCII byte in the line"},
        {"PROXY TCP4 192.0.2.1 198.51.100.7 56324 44\xff\r\n", "PROXY v1: control or non-ASCII byte in the line"},
    };
    for (const auto& [input, why] : cases) {
        INFO(input);
        require_error(input, why);
    }
}

TEST_CASE("v2 PROXY over INET gives every field, TLVs skipped", "[proxy]")
{
    for (const int transport : {0x11, 0x12, 0x10}) {
        const std::string tlvs = bytes({0x01, 0, 2}) + "h2" + bytes({0x04, 0, 0}); // ALPN, NOOP
        const std::string h = v2(1, transport, inet_block + tlvs);
        const parse_result r = complete(h);
        CHECK(r.length == 16 + 12 + tlvs.size());
        CHECK(r.value.version == 2);
        CHECK(r.value.has_addresses);
        CHECK(r.value.source == v4({192, 0, 2, 1}, 56324));
        CHECK(r.value.destination == v4({198, 51, 100, 7}, 443));
        require_splits(h);
    }
}

TEST_CASE("v2 PROXY over INET6 gives every field", "[proxy]")
{
    const std::string h = v2(1, 0x21, inet6_block);
    const parse_result r = complete(h);
    CHECK(r.length == 16 + 36);
    CHECK(r.value.source == v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, 65535));
    CHECK(r.value.destination == v6({0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2}, 0));
    require_splits(h);
}

TEST_CASE("v2 LOCAL, UNSPEC and UNIX keep the connection's addresses", "[proxy]")
{
    // LOCAL: whatever the family says, and whatever the block holds, is discarded.
    for (const std::string& h : {v2(0, 0x00, ""), v2(0, 0x11, inet_block), v2(0, 0xff, "xyz"), v2(1, 0x00, ""),
                                v2(1, 0x00, bytes({0x04, 0, 1, 0})), v2(1, 0x31, std::string(216, '\0'))}) {
        const parse_result r = complete(h);
        CHECK(r.value.version == 2);
        CHECK_FALSE(r.value.has_addresses);
        require_splits(h);
    }
}

TEST_CASE("v2 refuses every malformed header", "[proxy]")
{
    std::string wrong_version = v2(1, 0x11, inet_block);
    wrong_version[12] = 0x11;
    const std::pair<std::string, std::string_view> cases[] = {
        {wrong_version, "PROXY v2: unsupported version"},
        {v2(2, 0x11, inet_block), "PROXY v2: unknown command"},
        {v2(0xf, 0x11, inet_block), "PROXY v2: unknown command"},
        {v2(1, 0x41, inet_block), "PROXY v2: unknown address family or transport"},
        {v2(1, 0x13, inet_block), "PROXY v2: unknown address family or transport"},
        {v2(1, 0x11, inet_block.substr(0, 11)), "PROXY v2: length too short for the address family"},
        {v2(1, 0x21, inet_block), "PROXY v2: length too short for the address family"},
        {v2(1, 0x31, std::string(215, '\0')), "PROXY v2: length too short for the address family"},
        {v2(1, 0x11, inet_block + bytes({0x04, 0})), "PROXY v2: truncated TLV"},
        {v2(1, 0x11, inet_block + bytes({0x04, 0, 2, 0})), "PROXY v2: TLV runs past the header"},
        {v2(1, 0x11, inet_block + std::string(4096, '\0')), "PROXY v2: header longer than 4096 bytes"},
    };
    for (const auto& [input, why] : cases) {
        INFO(input.size() << " bytes");
        require_error(input, why);
    }
}

TEST_CASE("v2 length up to the bound, refused past it before its bytes arrive", "[proxy]")
{
    const std::size_t room = max_header_length - 16 - 12 - 3;
    const std::string largest = v2(1, 0x11, inet_block + bytes({0x04}) + be16(room) + std::string(room, 'x'));
    REQUIRE(largest.size() == max_header_length);
    CHECK(complete(largest).length == max_header_length);
    // The fixed part alone announces too much: no need to wait for the rest.
    require_error(v2(1, 0x11, "", max_header_length - 15), "PROXY v2: header longer than 4096 bytes");
    require_error(v2(0, 0x00, "", 65535), "PROXY v2: header longer than 4096 bytes");
}

TEST_CASE("anything else is refused at its first wrong byte", "[proxy]")
{
    for (const std::string& input : {"GET / HTTP/1.1\r\n\r\n"s, "P"s + "ROXX"s, "PROXY"s + "\t"s, "\r\n\r\n\0\r\nQUIx"s,
                                    "\x16\x03\x01"s, "\0"s, "proxy TCP4"s}) {
        INFO(input);
        require_error(input, "not a PROXY protocol header");
    }
    CHECK(parse_header("").status == parse_status::need_more);
    CHECK(parse_header("PROX").status == parse_status::need_more);
    CHECK(parse_header(signature.substr(0, 7)).status == parse_status::need_more);
}
