// SPDX-License-Identifier: MPL-2.0
// The http error category: its name, a message per value, and the status behind each value.
#include "portunusd/http/http_error.hpp"

#include <catch2/catch.hpp>

#include <set>
#include <string>

using namespace portunusd::http;

TEST_CASE("every http error has a distinct message and a 4xx/5xx status with a reason phrase", "[http][error]")
{
    CHECK(std::string(http_category().name()) == "http");
    std::set<std::string> messages;
    for (int v = static_cast<int>(http_error::bad_line_ending); v <= static_cast<int>(http_error::version_not_supported);
         ++v) {
        const auto e = static_cast<http_error>(v);
        const std::error_code ec = e;
        INFO("value " << v << ": " << ec.message());
        CHECK(ec.category() == http_category());
        CHECK(messages.insert(ec.message()).second);
        const int status = status_code(e);
        CHECK(status_code(ec) == status);
        CHECK(status >= 400);
        CHECK(status < 600);
        CHECK(reason_phrase(status) != "Unknown");
    }
}

TEST_CASE("statuses of the errors that are not 400", "[http][error]")
{
    CHECK(status_code(http_error::bad_chunk) == 400);
    CHECK(status_code(http_error::body_too_large) == 413);
    CHECK(status_code(http_error::request_line_too_long) == 414);
    CHECK(status_code(http_error::expectation_failed) == 417);
    CHECK(status_code(http_error::header_section_too_large) == 431);
    CHECK(status_code(http_error::too_many_headers) == 431);
    CHECK(status_code(http_error::method_not_implemented) == 501);
    CHECK(status_code(http_error::transfer_coding_not_implemented) == 501);
    CHECK(status_code(http_error::version_not_supported) == 505);
    CHECK(status_code(std::make_error_code(std::errc::io_error)) == 500);
    CHECK(reason_phrase(431) == "Request Header Fields Too Large");
    CHECK(reason_phrase(413) == "Content Too Large");
    CHECK(reason_phrase(299) == "Unknown");
}
