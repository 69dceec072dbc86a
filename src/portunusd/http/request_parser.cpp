// SPDX-License-Identifier: MPL-2.0
// The request parser's state machine: line framing, limits, and the body in both framings.
#include "portunusd/http/request_parser.hpp"

#include "portunusd/http/request_rules.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

namespace portunusd::http {
namespace {

// A body of known length is collected into one buffer of exactly its size: growing it as bytes
// arrive would copy it at every doubling and, at the last one, hold it twice. The reservation
// is address space, not memory (a large block is mapped on demand and its pages are used only
// as bytes arrive), and max_body bounds it.

// A limit configured as "as large as possible" must not wrap to a tiny one.
constexpr std::size_t with_crlf(std::size_t limit) noexcept
{
    return limit > std::numeric_limits<std::size_t>::max() - 2 ? limit : limit + 2;
}

} // namespace

request_parser::request_parser(parser_limits limits) : limits_(limits) {}

void request_parser::reset() noexcept
{
    // clear() rather than a fresh request keeps the buffers of a request read through get().
    request_.method.clear();
    request_.target.clear();
    request_.version_minor = 1;
    request_.headers.clear();
    request_.body.clear();
    request_.keep_alive = true;
    request_.expect_continue = false;
    request_.was_chunked = false;
    authority_.clear();
    error_.clear();
    phase_ = phase::request_line;
    headers_done_ = false;
    scanned_ = 0;
    empty_lines_ = 0;
    section_bytes_ = 0;
    section_fields_ = 0;
    remaining_ = 0;
    extension_bytes_ = 0;
}

// Finds the next line within `limit` bytes (CRLF included). Only the window up to the limit is
// searched, and bytes already searched on an earlier call are not searched again, so a client
// trickling a long line costs linear time and the verdict never depends on how bytes were split.
request_parser::line_result request_parser::next_line(std::string_view input, std::size_t& pos, std::size_t limit,
                                                      std::string_view& line)
{
    const std::size_t available = input.size() - pos;
    const std::size_t window = std::min(available, limit);
    const char* begin = input.data() + pos;
    const std::size_t from = std::min(scanned_, window);
    const void* lf = window > from ? std::memchr(begin + from, '\n', window - from) : nullptr;
    if (lf == nullptr) {
        scanned_ = window;
        return available >= limit ? line_result::too_long : line_result::need_more;
    }
    scanned_ = 0;
    const auto length = static_cast<std::size_t>(static_cast<const char*>(lf) - begin);
    // Strict CRLF everywhere: a bare LF or CR is a line end to some parsers and data to others,
    // which is exactly the disagreement request smuggling needs.
    if (length == 0 || begin[length - 1] != '\r') return line_result::bad_ending;
    line = std::string_view(begin, length - 1);
    if (line.find('\r') != std::string_view::npos) return line_result::bad_ending;
    pos += length + 1;
    return line_result::found;
}

parse_status request_parser::fail(std::error_code ec)
{
    error_ = ec;
    phase_ = phase::failed;
    return parse_status::error;
}

std::error_code request_parser::line_error(line_result r, http_error too_long, http_error bad_ending) noexcept
{
    switch (r) {
    case line_result::too_long: return too_long;
    case line_result::bad_ending: return bad_ending;
    default: return {};
    }
}

std::error_code request_parser::on_request_line(std::string_view line)
{
    // RFC 9112 §2.2: a few empty lines before a request are tolerated (some clients send CRLF
    // after a POST body); an endless stream of them is not a request.
    if (line.empty()) return ++empty_lines_ > max_leading_empty_lines ? http_error::bad_request_line : std::error_code{};
    if (const std::error_code ec = detail::parse_request_line(line, request_, authority_)) return ec;
    phase_ = phase::headers;
    return {};
}

std::error_code request_parser::on_header_line(std::string_view line)
{
    if (line.empty()) return on_headers_end();
    std::string_view name;
    std::string_view value;
    if (const std::error_code ec = detail::parse_field_line(line, name, value)) return ec;
    if (request_.headers.size() >= limits_.max_headers) return http_error::too_many_headers;
    request_.headers.push_back({std::string(name), std::string(value)});
    return {};
}

std::error_code request_parser::on_headers_end()
{
    detail::body_framing framing;
    if (const std::error_code ec = detail::check_header_section(request_, limits_.max_body, framing)) return ec;
    detail::apply_authority(request_, authority_);
    headers_done_ = true;
    if (framing.chunked) {
        phase_ = phase::chunk_size;
    } else if (framing.length > 0) {
        remaining_ = framing.length;
        try {
            request_.body.reserve(static_cast<std::size_t>(framing.length));
        } catch (const std::bad_alloc&) {
            return http_error::body_too_large; // the address space for it is not to be had now
        }
        phase_ = phase::identity_body;
    } else {
        phase_ = phase::done;
    }
    return {};
}

std::error_code request_parser::on_chunk_size_line(std::string_view line)
{
    std::uint64_t size = 0;
    std::size_t extension_bytes = 0;
    if (const std::error_code ec = detail::parse_chunk_size_line(line, size, extension_bytes)) return ec;
    extension_bytes_ += extension_bytes;
    if (extension_bytes_ > max_chunk_extension_bytes) return http_error::bad_chunk;
    if (size > limits_.max_body - request_.body.size()) return http_error::body_too_large;
    if (size == 0) {
        section_bytes_ = 0;
        section_fields_ = 0;
        phase_ = phase::trailers;
    } else {
        remaining_ = size;
        phase_ = phase::chunk_data;
    }
    return {};
}

std::error_code request_parser::on_trailer_line(std::string_view line)
{
    if (line.empty()) {
        phase_ = phase::done;
        return {};
    }
    // Trailers are checked like header fields, then dropped: nothing in them may change framing,
    // and the application is told about the body through Content-Length alone.
    std::string_view name;
    std::string_view value;
    if (const std::error_code ec = detail::parse_field_line(line, name, value)) return ec;
    if (++section_fields_ > limits_.max_headers) return http_error::too_many_headers;
    return {};
}

parse_status request_parser::parse(std::string_view input, std::size_t& consumed)
{
    std::size_t pos = 0;
    std::string_view line;
    for (;;) {
        const std::size_t line_start = pos;
        line_result r = line_result::found;
        std::error_code ec;
        switch (phase_) {
        case phase::done:
            consumed = pos;
            return parse_status::complete;
        case phase::failed:
            consumed = pos;
            return parse_status::error;
        case phase::request_line:
            r = next_line(input, pos, with_crlf(limits_.max_request_line), line);
            ec = r == line_result::found ? on_request_line(line)
                                         : line_error(r, http_error::request_line_too_long, http_error::bad_line_ending);
            break;
        case phase::headers:
        case phase::trailers:
            r = next_line(input, pos, limits_.max_header_bytes - section_bytes_, line);
            if (r == line_result::found) {
                section_bytes_ += pos - line_start;
                ec = phase_ == phase::headers ? on_header_line(line) : on_trailer_line(line);
            } else {
                ec = line_error(r, http_error::header_section_too_large, http_error::bad_line_ending);
            }
            break;
        case phase::identity_body:
        case phase::chunk_data: {
            const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, input.size() - pos));
            request_.body.append(input.substr(pos, n));
            pos += n;
            remaining_ -= n;
            if (remaining_ > 0) r = line_result::need_more;
            else phase_ = phase_ == phase::identity_body ? phase::done : phase::chunk_data_end;
            break;
        }
        case phase::chunk_data_end:
            // Exactly CRLF after the data: anything else means the chunk sizes lie.
            r = next_line(input, pos, 2, line);
            if (r == line_result::found) phase_ = phase::chunk_size;
            else ec = line_error(r, http_error::bad_chunk, http_error::bad_chunk);
            break;
        case phase::chunk_size:
            r = next_line(input, pos, max_chunk_size_digits + (max_chunk_extension_bytes - extension_bytes_) + 2, line);
            ec = r == line_result::found ? on_chunk_size_line(line)
                                         : line_error(r, http_error::bad_chunk, http_error::bad_chunk);
            break;
        }
        if (ec) {
            consumed = line_start;
            return fail(ec);
        }
        if (r == line_result::need_more) {
            consumed = pos;
            return parse_status::need_more;
        }
    }
}

} // namespace portunusd::http
