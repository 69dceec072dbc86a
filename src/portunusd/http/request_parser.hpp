// SPDX-License-Identifier: MPL-2.0
// Incremental HTTP/1.1 request parser: bytes in, complete / need-more / error out; no I/O.
#pragma once

#include "portunusd/http/http_error.hpp"
#include "portunusd/http/request.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace portunusd::http {

/// Bounds enforced while parsing, so a client can never make the daemon buffer more than these.
struct parser_limits {
    std::size_t max_request_line = 8192;  ///< request line without CRLF; over it: 414
    std::size_t max_header_bytes = 32768; ///< header section with every CRLF; over it: 431
    std::size_t max_headers = 100;        ///< field lines; over it: 431 (trailers have the same two limits)
    std::size_t max_body = 1 << 20;       ///< content after de-chunking; over it: 413
};

/// Fixed bounds that are not worth a configuration key.
inline constexpr std::size_t max_method_length = 32;        ///< longer methods: 501
inline constexpr std::size_t max_leading_empty_lines = 4;   ///< CRLFs tolerated before a request line
inline constexpr std::size_t max_chunk_size_digits = 16;    ///< fits 64 bits; more digits: 400
inline constexpr std::size_t max_chunk_extension_bytes = 4096; ///< per request, all chunks together

enum class parse_status { complete, need_more, error };

/// Parses one request at a time from a connection's byte stream (RFC 9112), rejecting every
/// construct that two HTTP implementations could frame differently:
///  - every line must end in CRLF; a bare CR or bare LF anywhere is 400;
///  - up to max_leading_empty_lines empty lines before the request line are skipped;
///  - request line: exactly `METHOD SP target SP HTTP/D.D`; HTTP/1.x above 1.0 is read as 1.1,
///    other majors are 505; CONNECT 501 (a tunnel cannot be relayed one call at a time); `*`
///    only with OPTIONS; absolute-form only for http and https, without userinfo;
///  - the target is normalized (normalize_target()); one that cannot be is 400. An
///    absolute-form target becomes its origin-form, and its authority the Host value;
///  - field lines: token name directly followed by `:`; obs-fold, NUL, CTLs and DEL are 400;
///  - exactly one Host in HTTP/1.1 (at most one in 1.0), with a valid uri-host[:port] value;
///  - Content-Length: digits only; repeats (lines or list elements) must agree;
///  - Transfer-Encoding with Content-Length, in HTTP/1.0, with chunked not last or twice: 400;
///    any coding other than chunked: 501;
///  - Expect: only 100-continue (417 otherwise; ignored in HTTP/1.0, as RFC 9110 requires).
/// A header block or trailer over its limits is 431; a body over max_body is 413 as soon as the
/// Content-Length or chunk size says so, before the content arrives.
/// Not thread-safe; one per connection.
class request_parser {
public:
    explicit request_parser(parser_limits limits = {});

    /// Parses `input`: the bytes received so far that earlier calls did not consume. The caller
    /// keeps the unconsumed tail, appends what arrives and calls again with the whole tail; the
    /// parser relies on that (it does not rescan bytes it already looked at). Sets `consumed` to
    /// the bytes taken from the front of `input` (whole lines and body bytes; never more than
    /// input.size()). Returns:
    ///  - complete: get() is the request; bytes past `consumed` belong to the next request
    ///    (pipelining): take() or read it, reset(), then call again with them;
    ///  - need_more: everything usable was consumed; call again when more bytes arrive;
    ///  - error: error() says why and which status to answer; the connection must then close.
    /// After complete or error, further calls consume nothing and return the same status until
    /// reset().
    parse_status parse(std::string_view input, std::size_t& consumed);

    /// True once the header section was accepted, even while the body is still coming. With
    /// get().expect_continue and a need_more result, the session sends `HTTP/1.1 100 Continue`.
    bool headers_done() const noexcept { return headers_done_; }

    /// The request: complete after parse() returned complete; while need_more with
    /// headers_done(), everything but the body.
    const request& get() const noexcept { return request_; }

    /// Moves the request out; the parser must be reset() before it parses again.
    request take() noexcept { return std::move(request_); }

    /// The reason for the last error result; empty otherwise.
    std::error_code error() const noexcept { return error_; }

    /// Prepares for the next request on the same connection; limits are kept.
    void reset() noexcept;

private:
    enum class phase : std::uint8_t {
        request_line, headers, identity_body, chunk_size, chunk_data, chunk_data_end, trailers, done, failed
    };
    enum class line_result : std::uint8_t { found, need_more, too_long, bad_ending };

    line_result next_line(std::string_view input, std::size_t& pos, std::size_t limit, std::string_view& line);
    static std::error_code line_error(line_result r, http_error too_long, http_error bad_ending) noexcept;
    parse_status fail(std::error_code ec);
    std::error_code on_request_line(std::string_view line);
    std::error_code on_header_line(std::string_view line);
    std::error_code on_headers_end();
    std::error_code on_chunk_size_line(std::string_view line);
    std::error_code on_trailer_line(std::string_view line);

    parser_limits limits_;
    request request_;
    std::string authority_;            ///< of an absolute-form target; becomes the Host value
    std::error_code error_;
    phase phase_ = phase::request_line;
    bool headers_done_ = false;
    std::size_t scanned_ = 0;          ///< bytes of the pending partial line known to hold no LF
    std::size_t empty_lines_ = 0;      ///< skipped before the request line
    std::size_t section_bytes_ = 0;    ///< header section or trailer section so far
    std::size_t section_fields_ = 0;   ///< trailer fields so far (headers count request_.headers)
    std::uint64_t remaining_ = 0;      ///< content bytes still due (Content-Length or current chunk)
    std::size_t extension_bytes_ = 0;  ///< chunk extensions so far
};

} // namespace portunusd::http
