// SPDX-License-Identifier: MPL-2.0
// Errors of the HTTP layer: one value per rejected construct, each with its response status.
#pragma once

#include <string_view>
#include <system_error>
#include <type_traits>

namespace portunusd::http {

/// Why a request was refused. Several values share a status code so that the access log can say
/// what was wrong while the client only sees the status. Every error ends the connection: once
/// framing is in doubt, nothing after the offending byte can be trusted.
enum class http_error {
    // 400 Bad Request
    bad_line_ending = 1,                   ///< a CR not followed by LF, or an LF without its CR
    bad_request_line,                      ///< not `METHOD SP target SP version`, or a bad method
    bad_target,                            ///< forbidden byte in the target, or a form not allowed
    bad_version,                           ///< not `HTTP/` DIGIT `.` DIGIT
    bad_header,                            ///< field line without a token name and a colon, or CTL in a value
    obsolete_line_folding,                 ///< a field line starting with SP or HTAB
    missing_host,                          ///< HTTP/1.1 without Host
    duplicate_host,                        ///< more than one Host field line
    bad_host,                              ///< Host value is not `uri-host [ ":" port ]`
    bad_content_length,                    ///< Content-Length is not a list of digits
    conflicting_content_length,            ///< Content-Length values differ
    content_length_with_transfer_encoding, ///< both framings present (rejected, never guessed)
    bad_transfer_encoding,                 ///< malformed, chunked not final, chunked twice, or HTTP/1.0
    bad_chunk,                             ///< malformed chunk size line, extension or data terminator
    // 413 Content Too Large
    body_too_large,
    // 414 URI Too Long
    request_line_too_long,
    // 417 Expectation Failed
    expectation_failed,
    // 431 Request Header Fields Too Large
    header_section_too_large,
    too_many_headers,
    // 501 Not Implemented
    method_not_implemented,                ///< CONNECT, or a method longer than any we route
    transfer_coding_not_implemented,       ///< a coding other than chunked (gzip, ...) before chunked
    // 505 HTTP Version Not Supported
    version_not_supported,
};

/// The category named "http"; messages explain the rejected construct.
const std::error_category& http_category() noexcept;

inline std::error_code make_error_code(http_error e) noexcept
{
    return {static_cast<int>(e), http_category()};
}

/// The response status for `e` (400, 413, 414, 417, 431, 501 or 505).
int status_code(http_error e) noexcept;

/// The status for an error from the http category; 500 for anything else.
int status_code(const std::error_code& ec) noexcept;

/// The standard reason phrase of a status code ("Bad Request"); "Unknown" for codes not listed.
std::string_view reason_phrase(int status) noexcept;

} // namespace portunusd::http

template <>
struct std::is_error_code_enum<portunusd::http::http_error> : std::true_type {};
