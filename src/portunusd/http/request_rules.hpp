// SPDX-License-Identifier: MPL-2.0
// The request parser's pure rules, one complete line or header section at a time (internal).
#pragma once

#include "portunusd/http/request.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>

namespace portunusd::http::detail {

/// Checks a request line (without its CRLF) and fills method, target (normalized origin-form, or
/// "*") and version_minor (1 for every HTTP/1.x above 1.0). `authority` is the authority of an
/// absolute-form target, empty otherwise. Precedence: syntax (400) before version support (505)
/// before method support (501) before the target's form and escapes (400).
std::error_code parse_request_line(std::string_view line, request& out, std::string& authority);

/// Applies an absolute-form target's authority: the value of the Host field, which is added at
/// the front if the request had none (HTTP/1.0). Call after check_header_section().
void apply_authority(request& r, std::string_view authority);

/// Splits a field line (without its CRLF) into its name and its OWS-trimmed value, both views
/// into `line`.
std::error_code parse_field_line(std::string_view line, std::string_view& name, std::string_view& value);

/// How the body is delimited once the header section is accepted.
struct body_framing {
    bool chunked = false;
    std::uint64_t length = 0; ///< Content-Length, when not chunked (0 when absent)
};

/// Applies the rules that need the whole header section: Host, framing (Content-Length,
/// Transfer-Encoding), the body limit, keep-alive and Expect. Sets r.keep_alive,
/// r.expect_continue and r.was_chunked.
std::error_code check_header_section(request& r, std::size_t max_body, body_framing& framing);

/// `uri-host [ ":" port ]` (RFC 9110 §7.2), without the list separator ',' that would betray two
/// Host fields folded into one.
bool is_valid_host(std::string_view value) noexcept;

/// Parses `chunk-size *chunk-ext` (without CRLF); `extension_bytes` is the length of the
/// extension part, which the caller bounds across the whole body.
std::error_code parse_chunk_size_line(std::string_view line, std::uint64_t& size, std::size_t& extension_bytes);

} // namespace portunusd::http::detail
