// SPDX-License-Identifier: MPL-2.0
// The "http" error category and the status code and reason phrase behind each error.
#include "portunusd/http/http_error.hpp"

#include <string>

namespace portunusd::http {
namespace {

class http_error_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "http"; }

    std::string message(int value) const override
    {
        switch (static_cast<http_error>(value)) {
        case http_error::bad_line_ending: return "line not ended by CRLF (bare CR or LF)";
        case http_error::bad_request_line: return "malformed request line";
        case http_error::bad_target: return "malformed request target";
        case http_error::bad_version: return "malformed HTTP version";
        case http_error::bad_header: return "malformed header field";
        case http_error::obsolete_line_folding: return "obsolete line folding in header section";
        case http_error::missing_host: return "HTTP/1.1 request without Host";
        case http_error::duplicate_host: return "more than one Host field";
        case http_error::bad_host: return "malformed Host value";
        case http_error::bad_content_length: return "malformed Content-Length";
        case http_error::conflicting_content_length: return "conflicting Content-Length values";
        case http_error::content_length_with_transfer_encoding:
            return "both Content-Length and Transfer-Encoding";
        case http_error::bad_transfer_encoding: return "unusable Transfer-Encoding";
        case http_error::bad_chunk: return "malformed chunked body";
        case http_error::body_too_large: return "request body over the limit";
        case http_error::request_line_too_long: return "request line over the limit";
        case http_error::expectation_failed: return "unsupported expectation";
        case http_error::header_section_too_large: return "header section over the limit";
        case http_error::too_many_headers: return "more header fields than the limit";
        case http_error::method_not_implemented: return "method not implemented";
        case http_error::transfer_coding_not_implemented: return "transfer coding not implemented";
        case http_error::version_not_supported: return "HTTP version not supported";
        }
        // Appended, not "literal" + string: GCC 12 at -O3 reports a false -Wrestrict on that form.
        std::string text = "unknown http error ";
        text += std::to_string(value);
        return text;
    }
};

} // namespace

const std::error_category& http_category() noexcept
{
    static const http_error_category category;
    return category;
}

int status_code(http_error e) noexcept
{
    switch (e) {
    case http_error::body_too_large: return 413;
    case http_error::request_line_too_long: return 414;
    case http_error::expectation_failed: return 417;
    case http_error::header_section_too_large:
    case http_error::too_many_headers: return 431;
    case http_error::method_not_implemented:
    case http_error::transfer_coding_not_implemented: return 501;
    case http_error::version_not_supported: return 505;
    default: return 400;
    }
}

int status_code(const std::error_code& ec) noexcept
{
    if (ec.category() != http_category()) return 500;
    return status_code(static_cast<http_error>(ec.value()));
}

std::string_view reason_phrase(int status) noexcept
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

} // namespace portunusd::http
