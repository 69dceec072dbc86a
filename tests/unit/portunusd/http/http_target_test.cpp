// SPDX-License-Identifier: MPL-2.0
// The request-target as routing and the application see it: normalized paths, absolute-form
// turned into origin-form plus Host, and HTTP/1.x versions above 1.1 read as 1.1.
#include "http_test_support.hpp"

#include "portunusd/http/syntax.hpp"
#include "portunusd/http/target.hpp"

#include <catch2/catch.hpp>

#include <optional>
#include <string>
#include <vector>

namespace {

using namespace http_test;
using namespace std::string_literals;
namespace syntax = portunusd::http::syntax;

struct normalize_case {
    const char* name;
    std::string input;
    std::optional<std::string> expected; // nullopt: cannot be normalized
};

std::vector<normalize_case> normalize_cases()
{
    const std::optional<std::string> refused;
    return {
        // The bypasses of a "/static" prefix.
        {"encoded unreserved letter", "/%73tatic/a.txt", "/static/a.txt"},
        {"leading double slash", "//static/a.txt", "/static/a.txt"},
        {"leading dot segment", "/./static/a.txt", "/static/a.txt"},
        {"out and back in", "/static/../static/a.txt", "/static/a.txt"},
        {"encoded dot-dot", "/static/sub/%2e%2e/a.txt", "/static/a.txt"},

        // Dot segments (RFC 3986 §5.2.4), never above the root.
        {"root", "/", "/"},
        {"dot at the root", "/.", "/"},
        {"dot-dot at the root", "/..", "/"},
        {"dot-dot past the root", "/a/b/../../..", "/"},
        {"dot-dot past the root, then a path", "/../../etc/passwd", "/etc/passwd"},
        {"mixed-case encoded dot-dot", "/%2e%2E/x", "/x"},
        {"encoded single dot", "/a/%2E/b", "/a/b"},
        {"half-encoded dot-dot", "/a/.%2e/b", "/b"},
        {"trailing dot keeps the directory", "/a/b/.", "/a/b/"},
        {"trailing dot-dot keeps the directory", "/a/b/..", "/a/"},
        {"dot-dot back to the root", "/a/..", "/"},
        {"trailing slash kept", "/a/", "/a/"},
        {"dot-like names are names", "/.a/..b/.../a..", "/.a/..b/.../a.."},
        {"dot-dot before an encoded slash is a name", "/static/..%2fsecret", "/static/..%2Fsecret"},

        // Repeated slashes.
        {"inner double slash", "/a//b", "/a/b"},
        {"many slashes", "///a////b///", "/a/b/"},
        {"slashes only", "////", "/"},
        {"empty segment before dot-dot", "/a//../b", "/b"},

        // Percent-escapes: unreserved decoded, the rest kept with uppercase hex.
        {"encoded tilde", "/%7E", "/~"},
        {"lowercase encoded tilde", "/%7e", "/~"},
        {"every unreserved class", "/%41%5a%61%7A%30%39%2D%2E%5F%7E", "/AZaz09-._~"},
        {"encoded slash kept", "/a%2Fb", "/a%2Fb"},
        {"lowercase encoded slash uppercased", "/a%2fb", "/a%2Fb"},
        {"encoded percent kept, not decoded twice", "/%2541", "/%2541"},
        {"encoded space kept", "/a%20b", "/a%20b"},
        {"encoded UTF-8 uppercased", "/caf%c3%a9", "/caf%C3%A9"},
        {"raw UTF-8 kept", "/caf\xc3\xa9", "/caf\xc3\xa9"},
        {"encoded reserved characters kept", "/%3f%23%3B%40", "/%3F%23%3B%40"},

        // The query is not touched, not even its dot segments or escapes.
        {"query with dot segments", "/a?x=/../y", "/a?x=/../y"},
        {"query with double slash and escapes", "/a/./b?//%7e%zz", "/a/b?//%7e%zz"},
        {"empty query", "/a/..?", "/?"},
        {"query after dot-dot at the root", "/..?q", "/?q"},
        {"question mark only in the query counts", "/%3F?a?b", "/%3F?a?b"},

        // Cannot be normalized.
        {"bad hex", "/%zz", refused},
        {"second digit bad", "/%4g", refused},
        {"cut escape", "/a%4", refused},
        {"lone percent", "/a%", refused},
        {"encoded NUL", "/a.txt%00.html", refused},
        {"raw NUL", "/a\0b"s, refused},
        {"bad escape after a good one", "/%41/%x1", refused},
        {"not origin-form", "a/b", refused},
        {"empty", "", refused},
        {"query only", "?a", refused},
        {"asterisk", "*", refused},
    };
}

} // namespace

TEST_CASE("normalize_target: the table of named cases", "[http][target]")
{
    for (const normalize_case& c : normalize_cases()) {
        INFO("case: " << c.name << " input: " << c.input);
        const std::optional<std::string> got = normalize_target(c.input);
        CHECK(got == c.expected);
        // Normalizing again changes nothing.
        if (got) CHECK(normalize_target(*got) == got);
    }
}

TEST_CASE("split_absolute_form: authority and origin-form", "[http][target]")
{
    struct row {
        const char* name;
        const char* target;
        const char* authority; // nullptr: refused
        const char* rest;
    };
    const row rows[] = {
        {"host, port, path and query", "http://host:8080/p?q", "host:8080", "/p?q"},
        {"uppercase scheme, no path", "HTTP://h", "h", ""},
        {"https", "https://a.example/x", "a.example", "/x"},
        {"mixed-case https", "hTtPs://a.example", "a.example", ""},
        {"query without a path", "http://h?q", "h", "?q"},
        {"IPv6 literal", "http://[::1]:8080/x", "[::1]:8080", "/x"},
        {"userinfo", "http://user@h/", nullptr, nullptr},
        {"userinfo with password", "http://u:p@h/", nullptr, nullptr},
        {"another scheme", "ftp://h/", nullptr, nullptr},
        {"no authority", "http:///x", nullptr, nullptr},
        {"port without host", "http://:80/x", nullptr, nullptr},
        {"bad port", "http://h:8o/", nullptr, nullptr},
        {"two hosts", "http://a,b/", nullptr, nullptr},
        {"scheme only", "http://", nullptr, nullptr},
        {"no slashes", "http:h", nullptr, nullptr},
        {"origin-form", "/x", nullptr, nullptr},
    };
    for (const row& r : rows) {
        INFO("case: " << r.name);
        const std::optional<absolute_target> got = split_absolute_form(r.target);
        if (r.authority == nullptr) {
            CHECK_FALSE(got.has_value());
        } else {
            REQUIRE(got.has_value());
            CHECK(got->authority == r.authority);
            CHECK(got->rest == r.rest);
        }
    }
}

namespace {

struct parse_case {
    const char* name;
    std::string input;
    std::string target;                // what the session routes and the application receives
    std::optional<std::string> host;   // the Host value after parsing; nullopt: no Host field
    int version_minor = 1;
    http_error error{};                // set: the request is refused with it
};

parse_case accepted(const char* name, std::string input, std::string target, std::optional<std::string> host,
                    int minor = 1)
{
    return {name, std::move(input), std::move(target), std::move(host), minor, {}};
}

parse_case refused(const char* name, std::string input, http_error e)
{
    return {name, std::move(input), {}, {}, 1, e};
}

std::vector<parse_case> parse_cases()
{
    using e = http_error;
    const std::string h = "Host: x\r\n\r\n";
    return {
        accepted("encoded prefix", "GET /%73tatic/a.txt HTTP/1.1\r\n" + h, "/static/a.txt", "x"),
        accepted("double slash", "GET //static/a.txt HTTP/1.1\r\n" + h, "/static/a.txt", "x"),
        accepted("dot segment", "GET /./static/a.txt HTTP/1.1\r\n" + h, "/static/a.txt", "x"),
        accepted("dot-dot", "GET /static/../static/a.txt HTTP/1.1\r\n" + h, "/static/a.txt", "x"),
        accepted("encoded dot-dot", "GET /static/sub/%2e%2e/a.txt HTTP/1.1\r\n" + h, "/static/a.txt", "x"),
        accepted("above the root", "GET /../a HTTP/1.1\r\n" + h, "/a", "x"),
        accepted("query kept", "GET /a/../b?x=/../y&z=%7e HTTP/1.1\r\n" + h, "/b?x=/../y&z=%7e", "x"),
        accepted("asterisk-form is left alone", "OPTIONS * HTTP/1.1\r\n" + h, "*", "x"),

        // Absolute-form: origin-form for the application, the authority as its Host.
        accepted("absolute-form", "GET http://evil.example/abs HTTP/1.1\r\n" + h, "/abs", "evil.example"),
        accepted("absolute-form with port and query", "GET http://host:8080/p?q HTTP/1.1\r\n" + h, "/p?q", "host:8080"),
        accepted("absolute-form, uppercase scheme, no path", "GET HTTP://h HTTP/1.1\r\n" + h, "/", "h"),
        accepted("absolute-form, query without path", "GET http://h?q HTTP/1.1\r\n" + h, "/?q", "h"),
        accepted("absolute-form https normalized", "GET https://h/s/%2e%2E/%73 HTTP/1.1\r\n" + h, "/s", "h"),
        accepted("absolute-form, Host field case kept", "GET http://a.b/ HTTP/1.1\r\nhOsT: x\r\n\r\n", "/", "a.b"),
        accepted("absolute-form in HTTP/1.0 adds Host", "GET http://h:81/x HTTP/1.0\r\n\r\n", "/x", "h:81", 0),
        accepted("OPTIONS on a bare authority is asterisk-form", "OPTIONS http://h HTTP/1.1\r\n" + h, "*", "h"),
        accepted("OPTIONS on a path stays a path", "OPTIONS http://h/ HTTP/1.1\r\n" + h, "/", "h"),
        accepted("OPTIONS with a query stays a path", "OPTIONS http://h?q HTTP/1.1\r\n" + h, "/?q", "h"),

        // Versions.
        accepted("HTTP/1.0 stays 1.0", "GET / HTTP/1.0\r\n\r\n", "/", std::nullopt, 0),
        accepted("HTTP/1.1", "GET / HTTP/1.1\r\n" + h, "/", "x"),
        accepted("HTTP/1.2 is read as 1.1", "GET / HTTP/1.2\r\n" + h, "/", "x"),
        accepted("HTTP/1.9 is read as 1.1", "GET / HTTP/1.9\r\n" + h, "/", "x"),
        refused("HTTP/1.2 needs Host like 1.1", "GET / HTTP/1.2\r\n\r\n", e::missing_host),
        refused("HTTP/2.0", "GET / HTTP/2.0\r\n" + h, e::version_not_supported),
        refused("HTTP/3.1", "GET / HTTP/3.1\r\n" + h, e::version_not_supported),
        refused("HTTP/0.9", "GET / HTTP/0.9\r\n\r\n", e::version_not_supported),

        // Targets that cannot be normalized, or forms not served.
        refused("bad escape", "GET /%zz HTTP/1.1\r\n" + h, e::bad_target),
        refused("encoded NUL", "GET /a%00 HTTP/1.1\r\n" + h, e::bad_target),
        refused("cut escape", "GET /a% HTTP/1.1\r\n" + h, e::bad_target),
        refused("bad escape in absolute-form", "GET http://h/%g1 HTTP/1.1\r\n" + h, e::bad_target),
        refused("userinfo in absolute-form", "GET http://user@h/ HTTP/1.1\r\n" + h, e::bad_target),
        refused("ftp absolute-form", "GET ftp://h/ HTTP/1.1\r\n" + h, e::bad_target),
        refused("absolute-form without host", "GET http://:80/ HTTP/1.1\r\n" + h, e::bad_target),
        refused("absolute-form still needs a valid Host field", "GET http://h/ HTTP/1.1\r\nHost: a,b\r\n\r\n",
                e::bad_host),
        refused("absolute-form still needs Host in 1.1", "GET http://h/ HTTP/1.1\r\n\r\n", e::missing_host),
    };
}

} // namespace

TEST_CASE("the parser hands out normalized targets, whole and split at every byte", "[http][target][parser]")
{
    for (const parse_case& c : parse_cases()) {
        INFO("case: " << c.name);
        const outcome whole = parse_whole(c.input);
        if (c.error != http_error{}) {
            CHECK(whole.last == parse_status::error);
            CHECK(whole.error == make_error_code(c.error));
        } else {
            REQUIRE(whole.last == parse_status::complete);
            REQUIRE(whole.requests.size() == 1);
            const request& r = whole.requests[0];
            CHECK(r.target == c.target);
            CHECK(r.version_minor == c.version_minor);
            const header_field* host = r.find("Host");
            CHECK((host != nullptr) == c.host.has_value());
            if (host != nullptr && c.host) CHECK(host->value == *c.host);
            // Exactly one Host after a replacement.
            std::size_t hosts = 0;
            for (const header_field& f : r.headers) hosts += syntax::iequals(f.name, "Host") ? 1U : 0U;
            CHECK(hosts == (c.host ? 1U : 0U));
        }
        for (std::size_t at = 0; at <= c.input.size(); ++at) {
            INFO("split at " << at);
            CHECK(parse_split(c.input, at) == whole);
        }
        CHECK(parse_bytewise(c.input) == whole);
    }
}

TEST_CASE("the application receives the normalized origin-form, the authority as Host, and HTTP/1.1",
          "[http][target][serialize]")
{
    const auto app = [](const std::string& input) {
        const outcome o = parse_whole(input);
        REQUIRE(o.requests.size() == 1);
        return serialize_for_application(o.requests[0], {}, {});
    };
    CHECK(app("GET http://evil.example/abs?q=1 HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n") ==
          "GET /abs?q=1 HTTP/1.1\r\n"
          "Host: evil.example\r\n"
          "Accept: */*\r\n"
          "Connection: keep-alive\r\n"
          "\r\n");
    CHECK(app("GET /%73tatic//sub/%2e%2e/a%2fb.txt?x=%2e%2e HTTP/1.2\r\nHost: x\r\n\r\n") ==
          "GET /static/a%2Fb.txt?x=%2e%2e HTTP/1.1\r\n"
          "Host: x\r\n"
          "Connection: keep-alive\r\n"
          "\r\n");
    CHECK(app("GET http://h/x HTTP/1.0\r\n\r\n") ==
          "GET /x HTTP/1.0\r\n"
          "Host: h\r\n"
          "Connection: close\r\n"
          "\r\n");
}
