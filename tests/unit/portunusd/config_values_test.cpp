// SPDX-License-Identifier: MPL-2.0
// Tests of the value grammars: listen addresses, durations, names, suggestions and quoting.
#include "portunusd/config/config_values.hpp"

#include <catch2/catch.hpp>

#include <cstdint>
#include <string>

using namespace std::chrono_literals;
using namespace portunusd;

TEST_CASE("config: listen address forms", "[config][listen]")
{
    struct ok_case {
        std::string_view text;
        std::string_view host;
        std::uint16_t port;
        bool any;
    };
    const ok_case cases[] = {
        {"127.0.0.1:7007", "127.0.0.1", 7007, false},
        {"0.0.0.0:80", "0.0.0.0", 80, false},
        {"255.255.255.255:65535", "255.255.255.255", 65535, false},
        {"10.1.2.3:1", "10.1.2.3", 1, false},
        {"[::1]:8080", "::1", 8080, false},
        {"[::]:53", "::", 53, false},
        {"[0:0:0:0:0:0:0:1]:8080", "::1", 8080, false},
        {"[2001:DB8::1]:443", "2001:db8::1", 443, false},
        {"[::ffff:192.0.2.1]:80", "::ffff:192.0.2.1", 80, false},
        {"*:7007", "*", 7007, true},
        {"127.0.0.1:08080", "127.0.0.1", 8080, false},
    };
    for (const ok_case& c : cases) {
        INFO(c.text);
        const auto r = config_detail::parse_listen_address(c.text);
        CHECK(r.error.empty());
        REQUIRE(r.value);
        CHECK(r.value->host == c.host);
        CHECK(r.value->port == c.port);
        CHECK(r.value->any == c.any);
        CHECK(r.value->text == c.text);
    }

    const std::string_view refused[] = {
        "",          "7007",          "*",           "localhost:80", "127.0.0.1",   "127.0.0.1:",
        "127.1:80",  "1.2.3.4.5:80",  "::1:80",      "[::1]",        "[::1]:",      "[::1]x:80",
        "[]:80",     "[127.0.0.1]:80", "*:0",        "*:65536",      "*:+80",       "*:99999999999999999999999",
        ":80",       " 127.0.0.1:80", "127.0.0.1:80 ", "[*]:80",     "[fe80::1%lo]:80",
    };
    for (std::string_view text : refused) {
        INFO(text);
        const auto r = config_detail::parse_listen_address(text);
        CHECK_FALSE(r.value);
        CHECK_FALSE(r.error.empty());
    }
}

TEST_CASE("config: listen overlap rules", "[config][listen]")
{
    const auto addr = [](std::string_view text) { return *config_detail::parse_listen_address(text).value; };
    struct overlap_case {
        std::string_view a;
        std::string_view b;
        bool overlap;
    };
    const overlap_case cases[] = {
        {"127.0.0.1:80", "127.0.0.1:80", true},  {"127.0.0.1:80", "127.0.0.1:81", false},
        {"127.0.0.1:80", "127.0.0.2:80", false}, {"*:80", "127.0.0.1:80", true},
        {"*:80", "[::1]:80", true},              {"*:80", "*:80", true},
        {"0.0.0.0:80", "10.0.0.1:80", true},     {"0.0.0.0:80", "[::1]:80", false},
        {"[::]:80", "[::1]:80", true},           {"[::]:80", "0.0.0.0:80", false},
        {"[::]:80", "10.0.0.1:80", false},       {"*:80", "*:81", false},
    };
    for (const overlap_case& c : cases) {
        INFO(c.a << " vs " << c.b);
        CHECK(config_detail::listen_addresses_overlap(addr(c.a), addr(c.b)) == c.overlap);
        CHECK(config_detail::listen_addresses_overlap(addr(c.b), addr(c.a)) == c.overlap);
    }
}

TEST_CASE("config: durations", "[config][duration]")
{
    struct ok_case {
        std::string_view text;
        std::chrono::milliseconds value;
    };
    const ok_case cases[] = {
        {"1ms", 1ms},       {"500ms", 500ms}, {"1500ms", 1500ms}, {"30s", 30s},
        {"5m", 5min},       {"2h", 2h},       {"24h", 24h},       {"1440m", 24h},
        {"86400s", 24h},    {"86400000ms", 24h}, {"007s", 7s},
    };
    for (const ok_case& c : cases) {
        INFO(c.text);
        const auto r = config_detail::parse_duration(c.text, false);
        CHECK(r.error.empty());
        CHECK(r.value == c.value);
    }

    const std::string_view refused[] = {
        "", "0s", "0ms", "0", "30", "s", "ms", "-1s", "+1s", "1.5s", "30 s", " 30s", "30s ", "30S",
        "1d", "1h30m", "25h", "1441m", "86401s", "86400001ms", "99999999999999999999999999h", "1sec",
    };
    for (std::string_view text : refused) {
        INFO(text);
        const auto r = config_detail::parse_duration(text, false);
        CHECK_FALSE(r.value);
        CHECK_FALSE(r.error.empty());
    }

    CHECK(config_detail::parse_duration("0s", true).value == 0ms);
    CHECK(config_detail::duration_from_seconds(0, true).value == 0ms);
    CHECK_FALSE(config_detail::duration_from_seconds(0, false).value);
    CHECK(config_detail::duration_from_seconds(1, false).value == 1s);
    CHECK(config_detail::duration_from_seconds(86'400, false).value == 24h);
    CHECK_FALSE(config_detail::duration_from_seconds(86'401, false).value);
    CHECK_FALSE(config_detail::duration_from_seconds(-1, true).value);
    CHECK_FALSE(config_detail::duration_from_seconds(INT64_MIN, true).value);
    CHECK_FALSE(config_detail::duration_from_seconds(INT64_MAX, true).value);

    CHECK(config_detail::format_duration(0ms) == "0s");
    CHECK(config_detail::format_duration(1ms) == "1ms");
    CHECK(config_detail::format_duration(1500ms) == "1500ms");
    CHECK(config_detail::format_duration(90s) == "90s");
    CHECK(config_detail::format_duration(5min) == "5m");
    CHECK(config_detail::format_duration(24h) == "24h");
}

TEST_CASE("config: suggestions", "[config]")
{
    using config_detail::edit_distance;
    using config_detail::suggest;
    CHECK(edit_distance("", "") == 0);
    CHECK(edit_distance("abc", "") == 3);
    CHECK(edit_distance("threads", "thread") == 1);
    CHECK(edit_distance("thraeds", "threads") == 1);
    CHECK(edit_distance("Threads", "threads") == 0);
    CHECK(edit_distance("kitten", "sitting") == 3);

    const std::string_view keys[] = {"threads", "log", "log_level", "listen", "once"};
    CHECK(suggest("thread", keys) == "threads");
    CHECK(suggest("log_levle", keys) == "log_level");
    CHECK(suggest("lsiten", keys) == "listen");
    CHECK(suggest("lo", keys) == "log");
    CHECK_FALSE(suggest("colour", keys));
    CHECK(suggest("one", keys) == "once");
    CHECK_FALSE(suggest("lst", keys));  // a short word gets one edit at most
    CHECK_FALSE(suggest(std::string(200, 'x'), keys));
}

TEST_CASE("config: quoting keeps messages printable and short", "[config]")
{
    using config_detail::quote;
    CHECK(quote("abc") == R"("abc")");
    CHECK(quote("a\"b\\c") == R"("a\"b\\c")");
    CHECK(quote(std::string_view{"a\0b\x1b[31m\x7f", 9}) == R"("a\x00b\x1b[31m\x7f")");
    CHECK(quote("caf\xc3\xa9") == "\"caf\xc3\xa9\"");
    CHECK(quote(std::string(100, 'x')) == "\"" + std::string(64, 'x') + "...\"");
}

TEST_CASE("config: forward names", "[config]")
{
    using config_detail::is_valid_forward_name;
    CHECK(is_valid_forward_name("echo"));
    CHECK(is_valid_forward_name("A-z_0.9"));
    CHECK(is_valid_forward_name(std::string(64, 'n')));
    CHECK_FALSE(is_valid_forward_name(""));
    CHECK_FALSE(is_valid_forward_name(std::string(65, 'n')));
    CHECK_FALSE(is_valid_forward_name("tcp:echo"));
    CHECK_FALSE(is_valid_forward_name("a b"));
    CHECK_FALSE(is_valid_forward_name("caf\xc3\xa9"));
}
