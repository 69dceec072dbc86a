// SPDX-License-Identifier: MPL-2.0
// The request-target in the one shape that routing and applications share: a normalized path.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace portunusd::http {

/// An origin-form target (`/path` with an optional `?query`) with its path normalized, so that
/// two spellings of one resource compare equal byte for byte:
///  - percent-escapes of unreserved characters (ALPHA, DIGIT, "-", ".", "_", "~") are decoded;
///    every other escape is kept, its hex digits uppercased ("%2f" becomes "%2F");
///  - repeated slashes are merged, except that a trailing slash is kept;
///  - "." and ".." segments are removed (RFC 3986 §5.2.4), escaped ones included, never
///    climbing above "/";
///  - the query, from the first "?", is kept byte for byte.
/// nullopt when the target does not start with "/", holds a malformed escape ("%zz", "%4")
/// or would hold a NUL ("%00" or a raw one). The result is its own normalization.
std::optional<std::string> normalize_target(std::string_view origin_form);

/// An absolute-form target split at its authority.
struct absolute_target {
    std::string_view authority; ///< `uri-host [ ":" port ]`, never empty, never with userinfo
    std::string_view rest;      ///< path and query as sent; empty or starting with "/" or "?"
};

/// Splits `http://authority[/path][?query]` (scheme case-insensitive; https alike). nullopt for
/// any other scheme, an empty host, userinfo, or an authority that is not a valid Host value.
std::optional<absolute_target> split_absolute_form(std::string_view target) noexcept;

} // namespace portunusd::http
