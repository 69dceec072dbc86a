// SPDX-License-Identifier: MPL-2.0
// CIDR blocks: the forms proxy_protocol_from takes, the ones it refuses, and matching.
#include "portunusd/proxy/address_set.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>

#include <array>
#include <string>
#include <vector>

namespace {

using namespace portunusd::proxy;

std::vector<cidr> networks(std::initializer_list<const char*> texts)
{
    std::vector<cidr> out;
    for (const char* t : texts) {
        const parsed_cidr p = parse_cidr(t);
        INFO(t << ": " << p.error);
        REQUIRE(p.value);
        out.push_back(*p.value);
    }
    return out;
}

bool matches(const std::vector<cidr>& nets, const char* address)
{
    std::array<std::uint8_t, 16> b{};
    if (::inet_pton(AF_INET, address, b.data()) == 1) return contains(nets, std::span(b.data(), 4));
    REQUIRE(::inet_pton(AF_INET6, address, b.data()) == 1);
    return contains(nets, b);
}

} // namespace

TEST_CASE("cidr: networks and plain addresses, written canonically", "[proxy]")
{
    const std::pair<const char*, const char*> cases[] = {
        {"10.0.0.0/8", "10.0.0.0/8"},     {"127.0.0.1", "127.0.0.1/32"},   {"0.0.0.0/0", "0.0.0.0/0"},
        {"::1", "::1/128"},               {"::/0", "::/0"},                {"2001:DB8::/32", "2001:db8::/32"},
        {"192.168.1.128/25", "192.168.1.128/25"}, {"::ffff:10.0.0.0/104", "::ffff:10.0.0.0/104"},
    };
    for (const auto& [text, canonical] : cases) {
        const parsed_cidr p = parse_cidr(text);
        INFO(text << ": " << p.error);
        REQUIRE(p.value);
        CHECK(to_string(*p.value) == canonical);
    }
}

TEST_CASE("cidr: refused forms say why", "[proxy]")
{
    const std::pair<const char*, const char*> cases[] = {
        {"", "\"\" is not an IPv4 or IPv6 address"},
        {"10.0.0.0/33", "the prefix length after \"/\" must be 0..32"},
        {"::/129", "the prefix length after \"/\" must be 0..128"},
        {"10.0.0.0/", "the prefix length after \"/\" must be 0..32"},
        {"10.0.0.0/08", "the prefix length after \"/\" must be 0..32"},
        {"10.0.0.0/-1", "the prefix length after \"/\" must be 0..32"},
        {"10.0.0/8", "\"10.0.0\" is not an IPv4 or IPv6 address"},
        {"localhost", "\"localhost\" is not an IPv4 or IPv6 address"},
        {"[::1]", "\"[::1]\" is not an IPv4 or IPv6 address"},
        {"10.1.2.3/8", "10.1.2.3/8 has host bits set past the prefix; did you mean 10.0.0.0/8?"},
        {"2001:db8::1/32", "2001:db8::1/32 has host bits set past the prefix; did you mean 2001:db8::/32?"},
    };
    for (const auto& [text, why] : cases) {
        const parsed_cidr p = parse_cidr(text);
        INFO(text);
        CHECK_FALSE(p.value);
        CHECK(p.error == why);
    }
}

TEST_CASE("cidr: matching by prefix, per family, IPv4-mapped as IPv4", "[proxy]")
{
    const auto nets = networks({"10.0.0.0/8", "192.168.1.128/25", "::1", "2001:db8::/32"});
    CHECK(matches(nets, "10.0.0.1"));
    CHECK(matches(nets, "10.255.255.255"));
    CHECK_FALSE(matches(nets, "11.0.0.0"));
    CHECK(matches(nets, "192.168.1.128"));
    CHECK(matches(nets, "192.168.1.255"));
    CHECK_FALSE(matches(nets, "192.168.1.127"));
    CHECK(matches(nets, "::1"));
    CHECK_FALSE(matches(nets, "::2"));
    CHECK(matches(nets, "2001:db8:ffff::1"));
    CHECK_FALSE(matches(nets, "2001:db9::"));
    CHECK(matches(nets, "::ffff:10.1.2.3"));
    CHECK_FALSE(matches(nets, "::ffff:127.0.0.1"));
    CHECK_FALSE(matches(nets, "127.0.0.1"));
    CHECK_FALSE(matches({}, "10.0.0.1"));
    const auto everyone = networks({"0.0.0.0/0", "::/0"});
    CHECK(matches(everyone, "203.0.113.9"));
    CHECK(matches(everyone, "fe80::1"));
    const auto only_v4 = networks({"0.0.0.0/0"});
    CHECK_FALSE(matches(only_v4, "fe80::1"));
    // A sub-byte prefix compares only its bits.
    const auto odd = networks({"172.16.0.0/12"});
    CHECK(matches(odd, "172.31.255.255"));
    CHECK_FALSE(matches(odd, "172.32.0.0"));
}
