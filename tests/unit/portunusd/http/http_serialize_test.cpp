// SPDX-License-Identifier: MPL-2.0
// Golden outputs of serialize_for_application: what an application receives for a request.
#include "http_test_support.hpp"

#include <catch2/catch.hpp>

#include <array>
#include <string>
#include <vector>

namespace {

using namespace http_test;

request parsed(const std::string& input)
{
    const outcome o = parse_whole(input);
    REQUIRE(o.requests.size() == 1);
    return o.requests[0];
}

const std::array<std::string_view, 3> forwarded_names{"Forwarded", "X-Forwarded-For", "X-Forwarded-Proto"};

} // namespace

TEST_CASE("a plain GET gains only the connection verdict", "[http][serialize]")
{
    const request r = parsed("GET /a?b=c HTTP/1.1\r\nHost: example.org\r\nAccept: */*\r\n\r\n");
    CHECK(serialize_for_application(r, {}, {}) ==
          "GET /a?b=c HTTP/1.1\r\n"
          "Host: example.org\r\n"
          "Accept: */*\r\n"
          "Connection: keep-alive\r\n"
          "\r\n");
}

TEST_CASE("a chunked POST arrives de-chunked without hop-by-hop fields and with the daemon fields",
          "[http][serialize]")
{
    const request r = parsed("POST /up HTTP/1.1\r\n"
                             "Host: example.org\r\n"
                             "Connection: close, X-Hop\r\n"
                             "X-Hop: secret\r\n"
                             "Keep-Alive: timeout=5\r\n"
                             "TE: trailers\r\n"
                             "Trailer: Digest\r\n"
                             "Upgrade: websocket\r\n"
                             "Proxy-Authorization: Basic eA==\r\n"
                             "Expect: 100-continue\r\n"
                             "x-forwarded-for: 6.6.6.6\r\n"
                             "Transfer-Encoding: chunked\r\n"
                             "Content-Type: text/plain\r\n"
                             "\r\n"
                             "5\r\nhello\r\n6\r\n world\r\n0\r\nDigest: x\r\n\r\n");
    const std::vector<header_field> extra{{"Forwarded", "for=192.0.2.7;proto=http"},
                                          {"X-Forwarded-For", "192.0.2.7"},
                                          {"X-Forwarded-Proto", "http"}};
    CHECK(serialize_for_application(r, extra, forwarded_names) ==
          "POST /up HTTP/1.1\r\n"
          "Host: example.org\r\n"
          "Content-Type: text/plain\r\n"
          "Connection: close\r\n"
          "Content-Length: 11\r\n"
          "Forwarded: for=192.0.2.7;proto=http\r\n"
          "X-Forwarded-For: 192.0.2.7\r\n"
          "X-Forwarded-Proto: http\r\n"
          "\r\n"
          "hello world");
}

TEST_CASE("HTTP/1.0 keep-alive with an empty body keeps its Content-Length", "[http][serialize]")
{
    const request r = parsed("POST /x HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n");
    CHECK(serialize_for_application(r, {}, {}) ==
          "POST /x HTTP/1.0\r\n"
          "Connection: keep-alive\r\n"
          "Content-Length: 0\r\n"
          "\r\n");
}

TEST_CASE("HTTP/1.0 without options is told the connection closes", "[http][serialize]")
{
    const request r = parsed("GET / HTTP/1.0\r\nUser-Agent: old\r\n\r\n");
    CHECK(serialize_for_application(r, {}, {}) ==
          "GET / HTTP/1.0\r\n"
          "User-Agent: old\r\n"
          "Connection: close\r\n"
          "\r\n");
}

TEST_CASE("a Connection option cannot remove Host and repeated Content-Length becomes one", "[http][serialize]")
{
    const request r = parsed("PUT /k HTTP/1.1\r\nConnection: Host, Accept\r\nHost: a\r\nAccept: x\r\n"
                             "Content-Length: 2\r\nContent-Length: 2\r\n\r\nhi");
    CHECK(serialize_for_application(r, {}, {}) ==
          "PUT /k HTTP/1.1\r\n"
          "Host: a\r\n"
          "Connection: keep-alive\r\n"
          "Content-Length: 2\r\n"
          "\r\n"
          "hi");
}

TEST_CASE("what the application receives parses back to the same request", "[http][serialize]")
{
    const request r = parsed("POST /r HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n");
    const request again = parsed(serialize_for_application(r, {}, {}));
    CHECK(again.method == r.method);
    CHECK(again.target == r.target);
    CHECK(again.body == r.body);
    CHECK(again.keep_alive == r.keep_alive);
    CHECK_FALSE(again.was_chunked);
}

TEST_CASE("daemon fields are recognised in any case", "[http][serialize]")
{
    for (const char* name : {"content-length", "TRANSFER-ENCODING", "Connection", "keep-alive", "te", "Trailer",
                             "upgrade", "Proxy-Connection", "proxy-authorization", "Expect", "HTTP2-Settings"})
        CHECK(is_daemon_field(name));
    for (const char* name : {"Host", "Content-Type", "Proxy", "Tea", "X-Upgrade", "Cookie"}) CHECK_FALSE(is_daemon_field(name));
}
