// SPDX-License-Identifier: MPL-2.0
// response_check: what the daemon must know about an application's HTTP response before relaying it. Pure.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace portunusd::http {

/// The facts about a response that decide how it is relayed.
struct response_facts {
    bool valid = false;          ///< a status line and a complete header section
    int status = 0;
    std::size_t header_bytes = 0; ///< status line + fields + the blank line
    bool framed = false;          ///< the client can find its end without the connection closing
    bool close = false;           ///< the response says `Connection: close`
    std::string problem;          ///< why it is not valid, for the log
};

/// Checks `response` for a request made with `method`. Only final responses (200..599) are
/// valid. A response is framed by a Content-Length that matches the bytes that follow, by
/// chunked coding whose framing ends exactly at the end of the bytes, or by having no body
/// (204, 304 — which must then carry no bytes after the header — or any response to HEAD).
/// Anything that could make the client read part of it as another response is invalid.
response_facts check_response(std::string_view response, std::string_view method);

} // namespace portunusd::http
