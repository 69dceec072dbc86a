// SPDX-License-Identifier: MPL-2.0
// The request parser on valid requests: fields as read, every split of the input, pipelining,
// limits at their exact bounds, and the incremental contract (100-continue, early 413, reset).
#include "http_test_support.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using namespace http_test;

struct valid_case {
    std::string name;
    std::string input;
    request expected;
};

request make(std::string method, std::string target, int minor, std::vector<header_field> headers,
             std::string body = {}, bool keep_alive = true, bool chunked = false, bool expect_continue = false)
{
    request r;
    r.method = std::move(method);
    r.target = std::move(target);
    r.version_minor = minor;
    r.headers = std::move(headers);
    r.body = std::move(body);
    r.keep_alive = keep_alive;
    r.was_chunked = chunked;
    r.expect_continue = expect_continue;
    return r;
}

std::vector<valid_case> corpus()
{
    return {
        {"simple GET", "GET /index.html HTTP/1.1\r\nHost: example.org\r\nUser-Agent: t/1\r\n\r\n",
         make("GET", "/index.html", 1, {{"Host", "example.org"}, {"User-Agent", "t/1"}})},
        {"values trimmed, names kept", "GET / HTTP/1.1\r\nhOsT:\t a.org \t\r\nX-Empty:\r\nX-Inner: a  b\r\n\r\n",
         make("GET", "/", 1, {{"hOsT", "a.org"}, {"X-Empty", ""}, {"X-Inner", "a  b"}})},
        {"POST with Content-Length", "POST /form?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello=world",
         make("POST", "/form?x=1", 1, {{"Host", "a"}, {"Content-Length", "11"}}, "hello=world")},
        {"body with CRLF and NUL inside", "PUT /b HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n\r\n" + std::string("\r\n\0\r\n\n", 6),
         make("PUT", "/b", 1, {{"Host", "a"}, {"Content-Length", "6"}}, std::string("\r\n\0\r\n\n", 6))},
        {"chunked with extensions and trailers",
         "POST /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
         "5;name=value\r\nhello\r\nA ; q=\"a;b\"\r\n, world!!!\r\n0\r\nDigest: x\r\n\r\n",
         make("POST", "/up", 1, {{"Host", "a"}, {"Transfer-Encoding", "chunked"}}, "hello, world!!!", true, true)},
        {"chunked, empty body", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
         make("POST", "/", 1, {{"Host", "a"}, {"Transfer-Encoding", "chunked"}}, "", true, true)},
        {"HTTP/1.0 default close", "GET / HTTP/1.0\r\n\r\n", make("GET", "/", 0, {}, "", false)},
        {"HTTP/1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n",
         make("GET", "/", 0, {{"Connection", "Keep-Alive"}}, "", true)},
        {"HTTP/1.1 close among options", "GET / HTTP/1.1\r\nHost: a\r\nConnection: TE, close\r\n\r\n",
         make("GET", "/", 1, {{"Host", "a"}, {"Connection", "TE, close"}}, "", false)},
        {"100-continue", "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nok",
         make("PUT", "/f", 1, {{"Host", "a"}, {"Expect", "100-Continue"}, {"Content-Length", "2"}}, "ok", true, false,
              true)},
        {"leading empty line", "\r\nOPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", make("OPTIONS", "*", 1, {{"Host", "a"}})},
        {"absolute-form", "GET HTTPS://a.example/p HTTP/1.1\r\nHost: b.example\r\n\r\n",
         make("GET", "/p", 1, {{"Host", "a.example"}})},
        {"normalized target", "GET //a/./b/%2e%2e/%63?q=/../%7e HTTP/1.1\r\nHost: a\r\n\r\n",
         make("GET", "/a/c?q=/../%7e", 1, {{"Host", "a"}})},
        {"HTTP/1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", make("GET", "/", 1, {{"Host", "a"}})},
    };
}

std::string concat(const std::vector<valid_case>& cases)
{
    std::string all;
    for (const valid_case& c : cases) all += c.input;
    return all;
}

} // namespace

TEST_CASE("valid requests are read field by field", "[http][parser]")
{
    for (const valid_case& c : corpus()) {
        INFO("case: " << c.name);
        const outcome whole = parse_whole(c.input);
        REQUIRE(whole.last == parse_status::complete);
        REQUIRE(whole.requests.size() == 1);
        CHECK(whole.consumed == c.input.size());
        const request& r = whole.requests[0];
        CHECK(r.method == c.expected.method);
        CHECK(r.target == c.expected.target);
        CHECK(r.version_minor == c.expected.version_minor);
        CHECK(r.headers == c.expected.headers);
        CHECK(r.body == c.expected.body);
        CHECK(r.keep_alive == c.expected.keep_alive);
        CHECK(r.was_chunked == c.expected.was_chunked);
        CHECK(r.expect_continue == c.expected.expect_continue);
    }
}

TEST_CASE("every split of a valid request gives the same request", "[http][parser][split]")
{
    for (const valid_case& c : corpus()) {
        INFO("case: " << c.name);
        const outcome whole = parse_whole(c.input);
        for (std::size_t at = 0; at <= c.input.size(); ++at) {
            INFO("split at " << at);
            CHECK(parse_split(c.input, at) == whole);
        }
        CHECK(parse_bytewise(c.input) == whole);
        // Three pieces around the end of the header section, where the phase changes.
        const std::size_t end = c.input.find("\r\n\r\n");
        for (std::size_t a = end > 3 ? end - 3 : 0; a < end + 4 && a <= c.input.size(); ++a)
            for (std::size_t b = a; b <= c.input.size(); ++b) CHECK(feed(c.input, {a, b}) == whole);
    }
}

TEST_CASE("pipelined requests come out in order with exact consumed counts", "[http][parser][pipelining]")
{
    const std::vector<valid_case> all = corpus();
    for (std::size_t n : {2U, 3U}) {
        for (std::size_t first = 0; first + n <= all.size(); ++first) {
            const std::vector<valid_case> group(all.begin() + static_cast<std::ptrdiff_t>(first),
                                                all.begin() + static_cast<std::ptrdiff_t>(first + n));
            const std::string stream = concat(group);
            INFO("requests " << first << ".." << first + n - 1);

            // One buffer, parsed by hand to see each call's consumed count.
            request_parser parser;
            std::string_view rest = stream;
            for (const valid_case& c : group) {
                std::size_t consumed = 0;
                REQUIRE(parser.parse(rest, consumed) == parse_status::complete);
                CHECK(consumed == c.input.size());
                CHECK(parser.get().body == c.expected.body);
                CHECK(parser.get().target == c.expected.target);
                rest.remove_prefix(consumed);
                parser.reset();
            }
            std::size_t consumed = 1;
            CHECK(parser.parse(rest, consumed) == parse_status::need_more);
            CHECK(consumed == 0);

            const outcome whole = parse_whole(stream, {}, true);
            REQUIRE(whole.requests.size() == n);
            CHECK(whole.consumed == stream.size());
            for (std::size_t at = 0; at <= stream.size(); ++at) CHECK(parse_split(stream, at, {}, true) == whole);
            CHECK(parse_bytewise(stream, {}, true) == whole);
        }
    }
}

TEST_CASE("limits hold at their exact bounds", "[http][parser][limits]")
{
    parser_limits limits;
    limits.max_request_line = 32;
    limits.max_header_bytes = 64;
    limits.max_headers = 3;
    limits.max_body = 8;

    const std::string line_at_limit = "GET /" + std::string(32 - 14, 'a') + " HTTP/1.0\r\n";
    REQUIRE(line_at_limit.size() == 34);
    CHECK(parse_whole(line_at_limit + "\r\n", limits).last == parse_status::complete);
    const std::string line_over = "GET /" + std::string(32 - 13, 'a') + " HTTP/1.0\r\n\r\n";
    CHECK(parse_whole(line_over, limits).error == http_error::request_line_too_long);
    // The verdict comes as soon as the limit is passed, without waiting for the line end.
    CHECK(parse_whole(std::string(34, 'G'), limits).error == http_error::request_line_too_long);
    CHECK(parse_whole(std::string(33, 'G'), limits).last == parse_status::need_more);

    // 3 fields + final CRLF = 64 bytes exactly.
    const std::string fields = "Host: a\r\nX-1: " + std::string(20, 'v') + "\r\nX-2: " + std::string(19, 'v') + "\r\n";
    REQUIRE(fields.size() + 2 == 64);
    CHECK(parse_whole("GET / HTTP/1.1\r\n" + fields + "\r\n", limits).last == parse_status::complete);
    CHECK(parse_whole("GET / HTTP/1.1\r\n" + fields + "X: \r\n\r\n", limits).error == http_error::header_section_too_large);
    const std::string four_fields = "Host: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n";
    CHECK(parse_whole("GET / HTTP/1.1\r\n" + four_fields, limits).error == http_error::too_many_headers);

    CHECK(parse_whole("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 8\r\n\r\n12345678", limits).last ==
          parse_status::complete);
    CHECK(parse_whole("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 9\r\n\r\n", limits).error ==
          http_error::body_too_large);
    const std::string chunked = "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK(parse_whole(chunked + "5\r\n12345\r\n3\r\n678\r\n0\r\n\r\n", limits).last == parse_status::complete);
    CHECK(parse_whole(chunked + "5\r\n12345\r\n4\r\n", limits).error == http_error::body_too_large);
}

TEST_CASE("the incremental contract", "[http][parser]")
{
    request_parser parser;
    std::size_t consumed = 0;

    SECTION("100-continue: headers are done and the body is still due")
    {
        const std::string head = "PUT /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n";
        CHECK_FALSE(parser.headers_done());
        REQUIRE(parser.parse(head, consumed) == parse_status::need_more);
        CHECK(consumed == head.size());
        CHECK(parser.headers_done());
        CHECK(parser.get().expect_continue);
        CHECK(parser.get().find("host")->value == "a");
        REQUIRE(parser.parse("abc", consumed) == parse_status::complete);
        CHECK(consumed == 3);
        CHECK(parser.get().body == "abc");
    }
    SECTION("a body over the limit is refused before it is sent")
    {
        REQUIRE(parser.parse("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2000000\r\n\r\n", consumed) ==
                parse_status::error);
        CHECK(parser.error() == http_error::body_too_large);
        CHECK(status_code(parser.error()) == 413);
        CHECK_FALSE(parser.headers_done());
    }
    SECTION("partial lines stay unconsumed")
    {
        REQUIRE(parser.parse("GET / HTTP/1.1\r\nHo", consumed) == parse_status::need_more);
        CHECK(consumed == 16);
        CHECK_FALSE(parser.headers_done());
    }
    SECTION("after complete or error the parser holds its verdict until reset")
    {
        const std::string get = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        REQUIRE(parser.parse(get, consumed) == parse_status::complete);
        CHECK(parser.parse(get, consumed) == parse_status::complete);
        CHECK(consumed == 0);
        const request taken = parser.take();
        CHECK(taken.method == "GET");
        parser.reset();
        CHECK(parser.get().method.empty());
        REQUIRE(parser.parse("BAD\r\n", consumed) == parse_status::error);
        CHECK(parser.parse(get, consumed) == parse_status::error);
        CHECK(consumed == 0);
        parser.reset();
        CHECK(!parser.error());
        CHECK(parser.parse(get, consumed) == parse_status::complete);
        CHECK(consumed == get.size());
    }
    SECTION("a request never reads past its own end")
    {
        const std::string two = "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nokGET / HTTP/1.1\r\n";
        REQUIRE(parser.parse(two, consumed) == parse_status::complete);
        CHECK(two.substr(consumed) == "GET / HTTP/1.1\r\n");
    }
}
