// SPDX-License-Identifier: MPL-2.0
// The proxy_protocol keys of [[forward]]: defaults, values, every error at its value, and that
// a change of them counts as a changed forward on reload.
#include "config_test_support.hpp"

namespace {

using namespace std::chrono_literals;
using namespace portunusd;
using namespace portunusd::test;

std::string forward(std::string_view proto, std::string_view extra)
{
    return "[[forward]]\nprotocol = \"" + std::string(proto) + "\"\nlisten = \"127.0.0.1:7007\"\n" +
           "door = \"/var/run/echo.door\"\n" + std::string(extra);
}

std::string errors_of(const std::string& text)
{
    const config_result r = parse_config_string(text, "test.toml");
    CHECK_FALSE(r.value);
    return render(r.errors);
}

} // namespace

TEST_CASE("proxy_protocol is off by default", "[proxy]")
{
    const config c = parse_ok(minimal_forward);
    CHECK_FALSE(c.forwards[0].proxy_protocol);
    CHECK(c.forwards[0].proxy_protocol_from.empty());
}

TEST_CASE("proxy_protocol with its sources, on tcp and http", "[proxy]")
{
    for (const std::string_view proto : {"tcp", "http"}) {
        const config c = parse_ok(forward(proto, "proxy_protocol = true\n"
                                                 "proxy_protocol_from = [\"10.0.0.0/8\", \"127.0.0.1\", \"::1/128\"]\n"
                                                 "header_timeout = \"2s\"\n"));
        const forward_config& f = c.forwards[0];
        CHECK(f.proxy_protocol);
        REQUIRE(f.proxy_protocol_from.size() == 3);
        CHECK(proxy::to_string(f.proxy_protocol_from[0]) == "10.0.0.0/8");
        CHECK(proxy::to_string(f.proxy_protocol_from[1]) == "127.0.0.1/32");
        CHECK(proxy::to_string(f.proxy_protocol_from[2]) == "::1/128");
        CHECK(f.header_timeout == 2s);
    }
    // Turned off for a while, its sources kept for later.
    const config off = parse_ok(forward("tcp", "proxy_protocol = false\nproxy_protocol_from = [\"::/0\"]\n"));
    CHECK_FALSE(off.forwards[0].proxy_protocol);
}

TEST_CASE("proxy_protocol errors point at their values", "[proxy]")
{
    CHECK(errors_of(forward("tcp", "proxy_protocol = true\n")) ==
          "test.toml:5:18: proxy_protocol: proxy_protocol = true needs proxy_protocol_from, the balancers allowed to "
          "send the header; write [\"0.0.0.0/0\", \"::/0\"] to trust every source\n");
    CHECK(errors_of(forward("tcp", "proxy_protocol = true\nproxy_protocol_from = []\n")) ==
          "test.toml:6:23: proxy_protocol_from: the list is empty; to trust every source write [\"0.0.0.0/0\", "
          "\"::/0\"]\n");
    CHECK(errors_of(forward("http", "proxy_protocol = true\nproxy_protocol_from = \"10.0.0.0/8\"\n")) ==
          "test.toml:6:23: proxy_protocol_from: expected a list of addresses or networks such as [\"10.0.0.0/8\", "
          "\"::1\"], found a string\n");
    CHECK(errors_of(forward("http", "proxy_protocol = true\nproxy_protocol_from = [\"10.1.0.0/8\", 7, \"x\"]\n")) ==
          "test.toml:6:24: proxy_protocol_from: 10.1.0.0/8 has host bits set past the prefix; did you mean "
          "10.0.0.0/8?\n"
          "test.toml:6:38: proxy_protocol_from: expected a string, found an integer\n"
          "test.toml:6:41: proxy_protocol_from: \"x\" is not an IPv4 or IPv6 address\n");
    CHECK(errors_of(forward("tcp", "proxy_protocol = \"yes\"\nproxy_protocol_from = [\"::1\"]\n")) ==
          "test.toml:5:18: proxy_protocol: expected a boolean (true or false), found a string\n");
    CHECK(errors_of(forward("tcp", "proxy_protocol_from = [\"::1\"]\n")) ==
          "test.toml:5:23: proxy_protocol_from: has no effect without proxy_protocol = true\n");
    CHECK(errors_of(forward("udp", "proxy_protocol = true\nproxy_protocol_from = [\"::1\"]\n")) ==
          "test.toml:5:18: proxy_protocol does not apply to udp forwards\n"
          "test.toml:6:23: proxy_protocol_from does not apply to udp forwards\n");
    // header_timeout belongs to a tcp forward only when it waits for a PROXY header.
    CHECK(errors_of(forward("tcp", "header_timeout = \"2s\"\n")) ==
          "test.toml:5:18: header_timeout does not apply to tcp forwards; it is for http only\n");
}

TEST_CASE("a change of the proxy keys changes the forward for reload", "[proxy]")
{
    const config a = parse_ok(forward("http", "proxy_protocol = true\nproxy_protocol_from = [\"10.0.0.0/8\"]\n"));
    const config b = parse_ok(forward("http", "proxy_protocol = true\nproxy_protocol_from = [\"10.0.0.0/9\"]\n"));
    const config c = parse_ok(forward("http", "\n\nproxy_protocol = true\nproxy_protocol_from = [\"10.0.0.0/8\"]\n"));
    const config off = parse_ok(forward("http", ""));
    CHECK_FALSE(a.forwards[0] == b.forwards[0]);
    CHECK_FALSE(a.forwards[0] == off.forwards[0]);
    CHECK(a.forwards[0] == c.forwards[0]);
}
