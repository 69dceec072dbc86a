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

/// Checks `response` for a request made with `method`. A response is framed by a
/// Content-Length that matches the bytes that follow (a mismatch is invalid: relaying it would
/// desynchronise the connection), by chunked transfer coding, or by having no body (1xx, 204,
/// 304, or any response to HEAD).
response_facts check_response(std::string_view response, std::string_view method);

} // namespace portunusd::http
