// SPDX-License-Identifier: MPL-2.0
// Routing by method and path prefix: longest prefix, 404, 405 with Allow, normalized paths.
#include "portunusd/http/http_router.hpp"

#include <catch2/catch.hpp>

using portunusd::http_route;
using portunusd::http_router;
using portunusd::route_match;
using result = route_match::result;

namespace {

http_router sample(bool with_catch_all)
{
    return http_router({{{"GET"}, "/", 0},
                        {{"GET", "POST"}, "/api", 1},
                        {{"DELETE"}, "/api/admin", 2},
                        {{}, "/files/", 3},
                        {{"PUT"}, "/upload", 4},
                        {{"POST"}, "/upload", 5}},
                       with_catch_all ? std::optional<std::size_t>(9) : std::nullopt);
}

} // namespace

TEST_CASE("routing_path is the normalized path without the query", "[http][router]")
{
    struct row {
        const char* target;
        const char* path; // nullptr: rejected
    };
    const row rows[] = {
        {"/", "/"},
        {"/a/b?x=1", "/a/b"},
        {"/a/b#frag", "/a/b"},
        {"/a/./b", "/a/b"},
        {"/a/../b", "/b"},
        {"/a/b/..", "/a/"},
        {"/a/b/.", "/a/b/"},
        {"/a/", "/a/"},
        // Dot segments never climb above the root (RFC 3986 §5.2.4).
        {"/..", "/"},
        {"/a/../../etc/passwd", "/etc/passwd"},
        {"/%73tatic/a.txt", "/static/a.txt"},
        {"//static//a.txt", "/static/a.txt"},
        {"/static/sub/%2e%2E/a.txt", "/static/a.txt"},
        {"/a%2fb?c", "/a%2Fb"},
        {"/a?x=/../y", "/a"},
        {"http://example.org/a/../b?q", "/b"},
        {"HTTP://example.org/%73", "/s"},
        {"https://example.org", "/"},
        {"http://example.org?q", "/"},
        {"http://user@example.org/", nullptr},
        {"ftp://example.org/", nullptr},
        {"/%zz", nullptr},
        {"/a%00", nullptr},
        {"", nullptr},
        {"a/b", nullptr},
    };
    for (const auto& r : rows) {
        INFO(r.target);
        const auto p = portunusd::routing_path(r.target);
        if (r.path == nullptr) {
            CHECK_FALSE(p.has_value());
        } else {
            REQUIRE(p.has_value());
            CHECK(*p == r.path);
        }
    }
}

TEST_CASE("a prefix cannot be bypassed by another spelling of the path", "[http][router]")
{
    const http_router router({{{"GET"}, "/static", 1}, {{}, "/admin", 2}}, 9);
    for (const char* target : {"/static/a.txt", "/%73tatic/a.txt", "/%73%74%61%74%69%63/a.txt", "//static/a.txt",
                               "/./static/a.txt", "/static/../static/a.txt", "/static/sub/%2e%2e/a.txt",
                               "/x/../static/a.txt", "/../static/a.txt", "http://x/static/a.txt",
                               "HTTPS://x//static/./a.txt", "/static", "/static/"}) {
        INFO(target);
        const auto m = router.match("GET", target);
        CHECK(m.outcome == result::found);
        CHECK(m.target == 1);
    }
    for (const char* target : {"/%61dmin", "//admin/x", "/admin/./", "/public/%2e%2e/admin/users"}) {
        INFO(target);
        CHECK(router.match("DELETE", target).target == 2);
    }
    // Matching stays case-sensitive, and an encoded slash is not a segment boundary.
    for (const char* target : {"/STATIC/a.txt", "/Static", "/static%2Fa.txt", "/static%2fa.txt", "/staticx"}) {
        INFO(target);
        const auto m = router.match("GET", target);
        CHECK(m.outcome == result::found);
        CHECK(m.target == 9);
    }
}

TEST_CASE("prefixes are normalized like paths", "[http][router]")
{
    const http_router router({{{}, "/%73tatic", 1}, {{}, "/a%2fb", 2}}, 9);
    CHECK(router.match("GET", "/static/x").target == 1);
    CHECK(router.match("GET", "/%73tatic").target == 1);
    CHECK(router.match("GET", "/a%2Fb/x").target == 2);
    CHECK(router.match("GET", "/a%2fb").target == 2);
    CHECK(router.match("GET", "/a/b").target == 9);
}

TEST_CASE("the longest matching prefix wins", "[http][router]")
{
    const auto router = sample(false);
    CHECK(router.match("GET", "/api/users").target == 1);
    CHECK(router.match("GET", "/api").target == 1);
    CHECK(router.match("DELETE", "/api/admin/7").target == 2);
    CHECK(router.match("GET", "/index.html").target == 0);
    CHECK(router.match("GET", "/files/a.txt").target == 3);
    CHECK(router.match("PATCH", "/files/a.txt").target == 3); // no method list: any method
    // Prefixes end at a segment boundary: "/api" does not own "/apix".
    CHECK(router.match("GET", "/apix").target == 0);
    // Dot segments cannot climb into another route.
    CHECK(router.match("DELETE", "/files/../api/admin/x").target == 2);
}

TEST_CASE("a prefix without the method answers 405 with Allow", "[http][router]")
{
    const auto router = sample(false);
    auto m = router.match("DELETE", "/api/users");
    CHECK(m.outcome == result::method_not_allowed);
    CHECK(m.allow == "GET, POST, HEAD");

    m = router.match("GET", "/upload");
    CHECK(m.outcome == result::method_not_allowed);
    CHECK(m.allow == "PUT, POST");
    CHECK(router.match("PUT", "/upload").target == 4);
    CHECK(router.match("POST", "/upload/x").target == 5);
}

TEST_CASE("HEAD is served by a GET route", "[http][router]")
{
    const auto router = sample(false);
    const auto m = router.match("HEAD", "/api/x");
    CHECK(m.outcome == result::found);
    CHECK(m.target == 1);
}

TEST_CASE("no prefix: 404, or the catch-all door", "[http][router]")
{
    const http_router only_api({{{"GET"}, "/api", 0}}, std::nullopt);
    CHECK(only_api.match("GET", "/other").outcome == result::not_found);
    const http_router with_default({{{"GET"}, "/api", 0}}, 7);
    const auto m = with_default.match("POST", "/other");
    CHECK(m.outcome == result::found);
    CHECK(m.target == 7);
}

TEST_CASE("targets that are not paths are bad requests", "[http][router]")
{
    const auto router = sample(true);
    CHECK(router.match("GET", "/%zz").outcome == result::bad_path);
    CHECK(router.match("GET", "/a%00").outcome == result::bad_path);
    CHECK(router.match("GET", "http://u@h/").outcome == result::bad_path);
    CHECK(router.match("GET", "example.org:443").outcome == result::bad_path);
    CHECK(router.match("OPTIONS", "*").outcome == result::found);
}
