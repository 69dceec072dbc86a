// SPDX-License-Identifier: MPL-2.0
// One parsed HTTP/1.x request, and the bytes an application receives for it.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portunusd::http {

struct header_field {
    std::string name;  ///< as sent (case preserved)
    std::string value; ///< as sent, leading and trailing SP/HTAB removed

    friend bool operator==(const header_field&, const header_field&) = default;
};

/// A request accepted by request_parser. Framing has already been decided and checked: `body` is
/// the complete, de-chunked content; trailer fields were dropped.
struct request {
    std::string method;
    std::string target;                ///< normalized origin-form (normalize_target()), or "*"
    int version_minor = 1;             ///< HTTP/1.0, or HTTP/1.1 for every later HTTP/1.x
    std::vector<header_field> headers; ///< every field line, in order (including framing fields)
    std::string body;
    bool keep_alive = true;            ///< 1.1: unless `Connection: close`; 1.0: only with `keep-alive`
    bool expect_continue = false;      ///< HTTP/1.1 with `Expect: 100-continue`
    bool was_chunked = false;

    /// The first field named `name` (ASCII case-insensitive), or nullptr. The pointer lives as
    /// long as `headers` is not modified.
    const header_field* find(std::string_view name) const noexcept;

    friend bool operator==(const request&, const request&) = default;
};

/// The fields the daemon consumes itself and never shows an application: framing
/// (Content-Length, Transfer-Encoding), hop-by-hop fields (Connection, Keep-Alive, TE, Trailer,
/// Upgrade, HTTP2-Settings, Proxy-*) and Expect (100-continue is answered by the daemon).
/// Case-insensitive.
bool is_daemon_field(std::string_view name) noexcept;

/// The request as one application sees it, in this order:
///  - the request line `METHOD SP target SP HTTP/1.0|HTTP/1.1`, with the normalized target;
///  - every header field in order, `name: value`, except daemon fields (is_daemon_field), fields
///    named by a Connection option (Host excepted: an option cannot remove the origin) and
///    fields named in `drop_names` (case-insensitive; the daemon passes the names of the
///    `extra` fields so a client cannot forge them);
///  - `Connection: keep-alive` or `Connection: close`, always exactly one, saying what the daemon
///    will do with the connection after this response;
///  - `Content-Length: N` when the client sent a body framing (Content-Length or chunked, even
///    for an empty body): the application never sees chunked, and a request without
///    Content-Length has no body;
///  - the `extra` fields in order (Forwarded, X-Forwarded-For, ...);
///  - CRLF, then the body.
/// Pure; one allocation.
std::string serialize_for_application(const request& r, std::span<const header_field> extra,
                                      std::span<const std::string_view> drop_names);
/// The same without the body: everything up to and including the empty line, for a body that
/// is sent behind it as it is (a large upload is then never copied). Pure; one allocation.
std::string serialize_head_for_application(const request& r, std::span<const header_field> extra,
                                           std::span<const std::string_view> drop_names);

} // namespace portunusd::http
