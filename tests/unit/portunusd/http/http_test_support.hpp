// SPDX-License-Identifier: MPL-2.0
// Feeds byte streams to a request_parser the way a session does, whole or in pieces.
#pragma once

#include "portunusd/http/request_parser.hpp"

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace http_test {

using namespace portunusd::http;

/// What the parser made of one stream: every request it completed, then how it stopped.
struct outcome {
    std::vector<request> requests;
    parse_status last = parse_status::need_more; ///< need_more or error (complete only when stopping at one)
    std::error_code error;
    std::size_t consumed = 0;                    ///< over the whole stream

    friend bool operator==(const outcome&, const outcome&) = default;
};

/// Feeds `input` in pieces that end at each of `cuts` (ascending, then the rest), keeping the
/// unconsumed tail like a session's buffer. With `pipelined`, resets after each complete request
/// and goes on; otherwise stops at the first complete one.
inline outcome feed(std::string_view input, const std::vector<std::size_t>& cuts, parser_limits limits = {},
                    bool pipelined = false)
{
    outcome out;
    request_parser parser(limits);
    std::string buffer;
    std::size_t from = 0;
    for (std::size_t i = 0; i <= cuts.size(); ++i) {
        const std::size_t to = i < cuts.size() ? cuts[i] : input.size();
        buffer.append(input.substr(from, to - from));
        from = to;
        for (;;) {
            std::size_t consumed = 0;
            const parse_status status = parser.parse(buffer, consumed);
            if (consumed > buffer.size()) throw std::logic_error("consumed past the input");
            out.consumed += consumed;
            buffer.erase(0, consumed);
            out.last = status;
            if (status == parse_status::need_more) break;
            if (status == parse_status::error) {
                out.error = parser.error();
                return out;
            }
            out.requests.push_back(parser.take());
            if (!pipelined) return out;
            parser.reset();
        }
    }
    return out;
}

inline outcome parse_whole(std::string_view input, parser_limits limits = {}, bool pipelined = false)
{
    return feed(input, {}, limits, pipelined);
}

inline outcome parse_split(std::string_view input, std::size_t at, parser_limits limits = {}, bool pipelined = false)
{
    return feed(input, {at}, limits, pipelined);
}

inline outcome parse_bytewise(std::string_view input, parser_limits limits = {}, bool pipelined = false)
{
    std::vector<std::size_t> cuts;
    for (std::size_t i = 1; i < input.size(); ++i) cuts.push_back(i);
    return feed(input, cuts, limits, pipelined);
}

} // namespace http_test
