// SPDX-License-Identifier: MPL-2.0
// The request parser against a table of named hostile and borderline requests, each fed whole,
// split at every byte and byte by byte, always with the same verdict.
#include "http_test_support.hpp"

#include <catch2/catch.hpp>

#include <string>
#include <vector>

namespace {

using namespace http_test;
using namespace std::string_literals;

struct adversarial_case {
    std::string name;
    std::string input;
    parse_status status;
    http_error error{};
    int http_status = 0;
    parser_limits limits{};
};

adversarial_case ok(std::string name, std::string input)
{
    return {std::move(name), std::move(input), parse_status::complete};
}

adversarial_case incomplete(std::string name, std::string input)
{
    return {std::move(name), std::move(input), parse_status::need_more};
}

adversarial_case rejected(std::string name, std::string input, http_error e, int status, parser_limits limits = {})
{
    return {std::move(name), std::move(input), parse_status::error, e, status, limits};
}

const std::string host = "Host: example.org\r\n";
const std::string get = "GET / HTTP/1.1\r\n" + host;
const std::string post_chunked = "POST /p HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n";

parser_limits small_body()
{
    parser_limits l;
    l.max_body = 16;
    return l;
}

std::vector<adversarial_case> cases()
{
    using e = http_error;
    return {
        // Accepted, sometimes narrowly.
        ok("simple GET", get + "\r\n"),
        ok("HTTP/1.0 needs no Host", "GET / HTTP/1.0\r\n\r\n"),
        ok("four leading empty lines are skipped", "\r\n\r\n\r\n\r\n" + get + "\r\n"),
        ok("OPTIONS in asterisk-form", "OPTIONS * HTTP/1.1\r\n" + host + "\r\n"),
        ok("absolute-form", "GET http://example.org/x?y HTTP/1.1\r\n" + host + "\r\n"),
        ok("HTTP/1.2 is read as HTTP/1.1", "GET / HTTP/1.2\r\n" + host + "\r\n"),
        ok("dot segments above the root stay at the root", "GET /../../x HTTP/1.1\r\n" + host + "\r\n"),
        ok("empty Host value", "GET / HTTP/1.1\r\nHost:\r\n\r\n"),
        ok("Host as IPv6 literal with port", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n"),
        ok("repeated identical Content-Length lines",
           "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc"),
        ok("Content-Length list of one value", "POST / HTTP/1.1\r\n" + host + "Content-Length: 3, 003\r\n\r\nabc"),
        ok("Transfer-Encoding is case-insensitive and trimmed",
           "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:  CHUNKED \t\r\n\r\n0\r\n\r\n"),
        ok("chunk extensions, token and quoted", post_chunked + "3 ;a=b;c ; d = \"x\\\"y\"\r\nabc\r\n0;z\r\n\r\n"),
        ok("trailers are dropped", post_chunked + "1\r\nx\r\n0\r\nChecksum: abc\r\nX-T: 1\r\n\r\n"),
        ok("Expect 100-continue in HTTP/1.0 is ignored", "GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"),
        ok("value with obs-text", get + "X-Name: caf\xc3\xa9\r\n\r\n"),

        // Incomplete: the parser must wait, never guess the end.
        incomplete("no empty line after headers", get),
        incomplete("body shorter than Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nabc"),
        incomplete("missing final CRLF after last chunk", post_chunked + "0\r\n"),
        incomplete("chunk data cut short", post_chunked + "5\r\nab"),
        incomplete("only empty lines", "\r\n\r\n"),

        // Line endings.
        rejected("bare LF ends the request line", "GET / HTTP/1.1\n" + host + "\r\n", e::bad_line_ending, 400),
        rejected("bare LF ends a field line", get + "X: 1\n\r\n", e::bad_line_ending, 400),
        rejected("bare CR in the request line", "GET /\r HTTP/1.1\r\n" + host + "\r\n", e::bad_line_ending, 400),
        rejected("bare CR in a field value", get + "X: a\rb\r\n\r\n", e::bad_line_ending, 400),
        rejected("five leading empty lines", "\r\n\r\n\r\n\r\n\r\n" + get + "\r\n", e::bad_request_line, 400),

        // Request line.
        rejected("HTTP/0.9 request line", "GET /\r\n", e::bad_request_line, 400),
        rejected("two spaces after the method", "GET  / HTTP/1.1\r\n" + host + "\r\n", e::bad_request_line, 400),
        rejected("tab as separator", "GET\t/ HTTP/1.1\r\n" + host + "\r\n", e::bad_request_line, 400),
        rejected("method not a token", "G(T / HTTP/1.1\r\n" + host + "\r\n", e::bad_request_line, 400),
        rejected("NUL in the method", "G\0T / HTTP/1.1\r\n"s + host + "\r\n", e::bad_request_line, 400),
        rejected("very long method", std::string(33, 'M') + " / HTTP/1.1\r\n" + host + "\r\n",
                 e::method_not_implemented, 501),
        rejected("CONNECT in authority-form", "CONNECT example.org:443 HTTP/1.1\r\n" + host + "\r\n",
                 e::method_not_implemented, 501),
        rejected("NUL in the target", "GET /a\0b HTTP/1.1\r\n"s + host + "\r\n", e::bad_target, 400),
        rejected("DEL in the target", "GET /a\x7f HTTP/1.1\r\n" + host + "\r\n", e::bad_target, 400),
        rejected("fragment in the target", "GET /a#b HTTP/1.1\r\n" + host + "\r\n", e::bad_target, 400),
        rejected("asterisk-form with GET", "GET * HTTP/1.1\r\n" + host + "\r\n", e::bad_target, 400),
        rejected("authority-form with GET", "GET example.org:80 HTTP/1.1\r\n" + host + "\r\n", e::bad_target, 400),
        rejected("absolute-form with another scheme", "GET ftp://example.org/ HTTP/1.1\r\n" + host + "\r\n",
                 e::bad_target, 400),
        rejected("absolute-form without authority", "GET http:///x HTTP/1.1\r\n" + host + "\r\n", e::bad_target, 400),
        rejected("absolute-form with userinfo", "GET http://u@example.org/ HTTP/1.1\r\n" + host + "\r\n",
                 e::bad_target, 400),
        rejected("absolute-form with an empty host", "GET http://:80/ HTTP/1.1\r\n" + host + "\r\n", e::bad_target,
                 400),
        rejected("malformed percent-escape", "GET /a%zz HTTP/1.1\r\n" + host + "\r\n", e::bad_target, 400),
        rejected("percent-escape cut short", "GET /a%4 HTTP/1.1\r\n" + host + "\r\n", e::bad_target, 400),
        rejected("encoded NUL", "GET /a%00b HTTP/1.1\r\n" + host + "\r\n", e::bad_target, 400),
        rejected("lowercase http/1.1", "GET / http/1.1\r\n" + host + "\r\n", e::bad_version, 400),
        rejected("HTTP/1.10", "GET / HTTP/1.10\r\n" + host + "\r\n", e::bad_version, 400),
        rejected("space after the version", "GET / HTTP/1.1 \r\n" + host + "\r\n", e::bad_version, 400),
        rejected("HTTP/2.0", "GET / HTTP/2.0\r\n" + host + "\r\n", e::version_not_supported, 505),
        rejected("HTTP/3.0", "GET / HTTP/3.0\r\n" + host + "\r\n", e::version_not_supported, 505),
        rejected("HTTP/0.9 with a version", "GET / HTTP/0.9\r\n\r\n", e::version_not_supported, 505),
        rejected("request line over the limit", "GET /" + std::string(8200, 'a') + " HTTP/1.1\r\n" + host + "\r\n",
                 e::request_line_too_long, 414),

        // Field lines.
        rejected("space before the colon", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding : chunked\r\n\r\n",
                 e::bad_header, 400),
        rejected("field line without colon", get + "Nonsense\r\n\r\n", e::bad_header, 400),
        rejected("empty field name", get + ": value\r\n\r\n", e::bad_header, 400),
        rejected("non-ASCII in a field name", get + "X-Caf\xc3\xa9: 1\r\n\r\n", e::bad_header, 400),
        rejected("obs-fold", get + "X: a\r\n b\r\n\r\n", e::obsolete_line_folding, 400),
        rejected("whitespace line before the first field",
                 "GET / HTTP/1.1\r\n Transfer-Encoding: chunked\r\n" + host + "\r\n", e::obsolete_line_folding, 400),
        rejected("NUL in a field value", get + "X: a\0b\r\n\r\n"s, e::bad_header, 400),
        rejected("DEL in a field value", get + "X: a\x7f\r\n\r\n", e::bad_header, 400),
        rejected("vertical tab before chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding:\x0b" "chunked\r\n\r\n",
                 e::bad_header, 400),

        // Host.
        rejected("HTTP/1.1 without Host", "GET / HTTP/1.1\r\n\r\n", e::missing_host, 400),
        rejected("two Host fields", get + "host: other.org\r\n\r\n", e::duplicate_host, 400),
        rejected("two Host fields in HTTP/1.0", "GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n", e::duplicate_host, 400),
        rejected("Host folded into a list", "GET / HTTP/1.1\r\nHost: a.org,b.org\r\n\r\n", e::bad_host, 400),
        rejected("Host with userinfo", "GET / HTTP/1.1\r\nHost: user@a.org\r\n\r\n", e::bad_host, 400),
        rejected("Host with a path", "GET / HTTP/1.1\r\nHost: a.org/x\r\n\r\n", e::bad_host, 400),
        rejected("Host with a bad port", "GET / HTTP/1.1\r\nHost: a.org:8o\r\n\r\n", e::bad_host, 400),

        // Content-Length.
        rejected("Content-Length: +5", "POST / HTTP/1.1\r\n" + host + "Content-Length: +5\r\n\r\nhello",
                 e::bad_content_length, 400),
        rejected("Content-Length: 0x10", "POST / HTTP/1.1\r\n" + host + "Content-Length: 0x10\r\n\r\n",
                 e::bad_content_length, 400),
        rejected("Content-Length: -1", "POST / HTTP/1.1\r\n" + host + "Content-Length: -1\r\n\r\n",
                 e::bad_content_length, 400),
        rejected("empty Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length:\r\n\r\n",
                 e::bad_content_length, 400),
        rejected("space inside Content-Length", "POST / HTTP/1.1\r\n" + host + "Content-Length: 1 0\r\n\r\n",
                 e::bad_content_length, 400),
        rejected("empty Content-Length list element", "POST / HTTP/1.1\r\n" + host + "Content-Length: 3,,3\r\n\r\n",
                 e::bad_content_length, 400),
        rejected("differing Content-Length lines",
                 "POST / HTTP/1.1\r\n" + host + "Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
                 e::conflicting_content_length, 400),
        rejected("differing Content-Length list", "POST / HTTP/1.1\r\n" + host + "Content-Length: 3, 4\r\n\r\n",
                 e::conflicting_content_length, 400),
        rejected("Content-Length over the body limit, before the body",
                 "POST / HTTP/1.1\r\n" + host + "Content-Length: 1048577\r\n\r\n", e::body_too_large, 413),
        rejected("Content-Length too big for 64 bits",
                 "POST / HTTP/1.1\r\n" + host + "Content-Length: 99999999999999999999999\r\n\r\n", e::body_too_large, 413),

        // Transfer-Encoding and the smuggling shapes.
        rejected("CL.TE", "POST / HTTP/1.1\r\n" + host + "Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nG",
                 e::content_length_with_transfer_encoding, 400),
        rejected("TE.CL", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n",
                 e::content_length_with_transfer_encoding, 400),
        rejected("TE.TE with xchunked", post_chunked.substr(0, post_chunked.size() - 2) + "Transfer-Encoding: xchunked\r\n\r\n",
                 e::bad_transfer_encoding, 400),
        rejected("xchunked alone", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: xchunked\r\n\r\n",
                 e::bad_transfer_encoding, 400),
        rejected("chunked twice", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, chunked\r\n\r\n",
                 e::bad_transfer_encoding, 400),
        rejected("chunked not last", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked, gzip\r\n\r\n",
                 e::bad_transfer_encoding, 400),
        rejected("chunked with a parameter", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked;q=1\r\n\r\n",
                 e::bad_transfer_encoding, 400),
        rejected("empty Transfer-Encoding", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: ,\r\n\r\n",
                 e::bad_transfer_encoding, 400),
        rejected("Transfer-Encoding in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                 e::bad_transfer_encoding, 400),
        rejected("gzip before chunked", "POST / HTTP/1.1\r\n" + host + "Transfer-Encoding: gzip, chunked\r\n\r\n",
                 e::transfer_coding_not_implemented, 501),

        // Chunked body.
        rejected("huge chunk size", post_chunked + "ffffffffffffffffff\r\n", e::bad_chunk, 400),
        rejected("16-digit chunk size over the body limit", post_chunked + "ffffffffffffffff\r\n", e::body_too_large, 413),
        rejected("chunks adding up over the body limit", post_chunked + "10\r\n0123456789abcdef\r\n1\r\n",
                 e::body_too_large, 413, small_body()),
        rejected("chunk size with leading space", post_chunked + " 5\r\nhello\r\n0\r\n\r\n", e::bad_chunk, 400),
        rejected("chunk size with trailing space", post_chunked + "5 \r\nhello\r\n0\r\n\r\n", e::bad_chunk, 400),
        rejected("chunk size with 0x prefix", post_chunked + "0x5\r\nhello\r\n0\r\n\r\n", e::bad_chunk, 400),
        rejected("negative chunk size", post_chunked + "-5\r\nhello\r\n0\r\n\r\n", e::bad_chunk, 400),
        rejected("empty chunk size", post_chunked + "\r\nhello\r\n0\r\n\r\n", e::bad_chunk, 400),
        rejected("bare LF after the chunk size", post_chunked + "5\nhello\r\n0\r\n\r\n", e::bad_chunk, 400),
        rejected("bare LF inside a chunk extension", post_chunked + "5;a\nb\r\nhello\r\n0\r\n\r\n", e::bad_chunk, 400),
        rejected("chunk data longer than its size", post_chunked + "5\r\nhelloX\r\n0\r\n\r\n", e::bad_chunk, 400),
        rejected("no CRLF after chunk data", post_chunked + "5\r\nhello0\r\n\r\n", e::bad_chunk, 400),
        rejected("bare LF after chunk data", post_chunked + "5\r\nhello\n0\r\n\r\n", e::bad_chunk, 400),
        rejected("chunk extensions over the limit", post_chunked + "1;x=" + std::string(4100, 'a') + "\r\n",
                 e::bad_chunk, 400),
        rejected("unterminated quoted extension", post_chunked + "1;x=\"abc\r\nx\r\n0\r\n\r\n", e::bad_chunk, 400),
        rejected("extension without name", post_chunked + "1;=a\r\nx\r\n0\r\n\r\n", e::bad_chunk, 400),
        rejected("obs-fold in a trailer", post_chunked + "0\r\nX: a\r\n b\r\n\r\n", e::obsolete_line_folding, 400),
        rejected("malformed trailer", post_chunked + "0\r\nnot a field\r\n\r\n", e::bad_header, 400),

        // Limits on the header section.
        rejected("header section over the limit", get + "X: " + std::string(32768, 'v') + "\r\n\r\n",
                 e::header_section_too_large, 431),
        rejected("too many fields", get + [] {
            std::string s;
            for (int i = 0; i < 100; ++i) s += "X-" + std::to_string(i) + ": 1\r\n";
            return s;
        }() + "\r\n", e::too_many_headers, 431),
        rejected("too many trailer fields", post_chunked + "0\r\n" + [] {
            std::string s;
            for (int i = 0; i < 101; ++i) s += "T: 1\r\n";
            return s;
        }() + "\r\n", e::too_many_headers, 431),

        // Expect.
        rejected("unknown expectation", get + "Expect: 200-ok\r\n\r\n", e::expectation_failed, 417),
        rejected("unknown expectation in HTTP/1.0", "GET / HTTP/1.0\r\nExpect: x\r\n\r\n", e::expectation_failed, 417),
    };
}

} // namespace

TEST_CASE("adversarial requests get the same verdict however they are split", "[http][adversarial]")
{
    const std::vector<adversarial_case> table = cases();
    REQUIRE(table.size() >= 40);
    for (const adversarial_case& c : table) {
        INFO("case: " << c.name);
        const outcome whole = parse_whole(c.input, c.limits);
        CHECK(whole.last == c.status);
        if (c.status == parse_status::error) {
            CHECK(whole.error == make_error_code(c.error));
            CHECK(status_code(whole.error) == c.http_status);
            CHECK(whole.requests.empty());
        } else {
            CHECK(!whole.error);
            CHECK(whole.requests.size() == (c.status == parse_status::complete ? 1U : 0U));
            if (c.status == parse_status::complete) CHECK(whole.consumed == c.input.size());
        }
        CHECK(whole.consumed <= c.input.size());
        // Long cases are split at a sample of offsets to keep the run short; the rest at all.
        const std::size_t step = c.input.size() > 2000 ? 97 : 1;
        for (std::size_t at = 0; at <= c.input.size(); at += step) {
            INFO("split at " << at);
            CHECK(parse_split(c.input, at, c.limits) == whole);
        }
        if (c.input.size() <= 2000) CHECK(parse_bytewise(c.input, c.limits) == whole);
    }
}

TEST_CASE("a completed hostile-looking request is read as intended", "[http][adversarial]")
{
    const outcome trailers = parse_whole(post_chunked + "1\r\nx\r\n0\r\nChecksum: abc\r\n\r\n");
    REQUIRE(trailers.requests.size() == 1);
    CHECK(trailers.requests[0].body == "x");
    CHECK(trailers.requests[0].find("Checksum") == nullptr);

    const outcome extensions = parse_whole(post_chunked + "3 ;a=b;c ; d = \"x\\\"y\"\r\nabc\r\n0;z\r\n\r\n");
    REQUIRE(extensions.requests.size() == 1);
    CHECK(extensions.requests[0].body == "abc");

    const outcome http10 = parse_whole("GET / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n");
    REQUIRE(http10.requests.size() == 1);
    CHECK_FALSE(http10.requests[0].expect_continue);
    CHECK_FALSE(http10.requests[0].keep_alive);
}
