// SPDX-License-Identifier: MPL-2.0
// libFuzzer target for the HTTP request parser: verdicts independent of how bytes arrive, limits
// kept, what an application receives parsing back to the same request, and normalized targets
// that are canonical.
#include "portunusd/http/request_parser.hpp"
#include "portunusd/http/target.hpp"

#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using namespace portunusd::http;

struct outcome {
    std::vector<request> requests;
    parse_status last = parse_status::need_more;
    std::error_code error;
    std::size_t consumed = 0;

    friend bool operator==(const outcome&, const outcome&) = default;
};

void require(bool condition)
{
    if (!condition) std::abort();
}

// Feeds `input` in pieces ending at `cuts` (ascending), like a session's read buffer, reading
// pipelined requests until the bytes run out or an error.
outcome feed(std::string_view input, const std::vector<std::size_t>& cuts, const parser_limits& limits)
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
            require(consumed <= buffer.size());
            out.consumed += consumed;
            buffer.erase(0, consumed);
            out.last = status;
            if (status == parse_status::need_more) break;
            if (status == parse_status::error) {
                out.error = parser.error();
                return out;
            }
            out.requests.push_back(parser.take());
            parser.reset();
        }
    }
    return out;
}

std::uint64_t fnv1a(std::string_view s)
{
    std::uint64_t h = 14695981039346656037ULL;
    for (const char c : s) h = (h ^ static_cast<unsigned char>(c)) * 1099511628211ULL;
    return h;
}

// A normalized path starts with "/", has no empty, "." or ".." segment (escaped or not), no
// escape of an unreserved character or with lowercase hex, and normalizing it again changes
// nothing; the query is the input's.
void check_normalized(std::string_view input, const std::string& out)
{
    require(!out.empty() && out.front() == '/');
    const std::string_view path = std::string_view(out).substr(0, out.find('?'));
    const std::string_view query = std::string_view(out).substr(path.size());
    const std::size_t input_query = input.find('?');
    require(query == (input_query == std::string_view::npos ? std::string_view() : input.substr(input_query)));
    require(path.find("//") == std::string_view::npos);
    require(path.find("/./") == std::string_view::npos && path.find("/../") == std::string_view::npos);
    require(path != "/." && !path.ends_with("/.") && !path.ends_with("/.."));
    require(path.find('\0') == std::string_view::npos);
    for (std::size_t i = path.find('%'); i != std::string_view::npos; i = path.find('%', i + 1)) {
        require(i + 2 < path.size());
        const auto hex = [](char c) { return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F'); };
        require(hex(path[i + 1]) && hex(path[i + 2]));
        const int v = (path[i + 1] <= '9' ? path[i + 1] - '0' : path[i + 1] - 'A' + 10) * 16 +
                      (path[i + 2] <= '9' ? path[i + 2] - '0' : path[i + 2] - 'A' + 10);
        const bool unreserved = (v >= '0' && v <= '9') || (v >= 'a' && v <= 'z') || (v >= 'A' && v <= 'Z') ||
                                v == '-' || v == '.' || v == '_' || v == '~';
        require(v != 0 && !unreserved);
    }
    require(normalize_target(out) == out);
}

void check_target(std::string_view input)
{
    // The first line as a whole, and the target inside it when it reads as a request line, so
    // request seeds reach the normalizer with their real targets.
    const std::string_view line = input.substr(0, input.find('\n'));
    std::string_view target;
    if (const std::size_t space = line.find(' '); space != std::string_view::npos) {
        target = line.substr(space + 1);
        target = target.substr(0, target.find(' '));
    }
    for (const std::string_view candidate : {line, target}) {
        if (const std::optional<std::string> out = normalize_target(candidate)) check_normalized(candidate, *out);
        else require(candidate.empty() || candidate.front() != '/' || candidate.find('%') != std::string_view::npos ||
                     candidate.find('\0') != std::string_view::npos);
        if (const auto absolute = split_absolute_form(candidate)) {
            require(!absolute->authority.empty() && absolute->authority.find('@') == std::string_view::npos);
            require(absolute->rest.empty() || absolute->rest.front() == '/' || absolute->rest.front() == '?');
        }
    }
}

void check_request(const request& r, const parser_limits& limits)
{
    require(r.body.size() <= limits.max_body);
    // An absolute-form HTTP/1.0 request without Host gains one, carrying the target's authority.
    require(r.headers.size() <= limits.max_headers + 1);
    require(!r.method.empty() && r.method.size() <= max_method_length && r.method != "CONNECT");
    require(!r.target.empty());
    if (r.target != "*") require(normalize_target(r.target) == r.target);
    require(r.version_minor == 0 || r.version_minor == 1);
    require(!r.expect_continue || r.version_minor == 1);
    if (r.version_minor == 1) require(r.find("Host") != nullptr);
    if (r.was_chunked) require(r.find("Content-Length") == nullptr && r.version_minor == 1);
    if (!r.was_chunked && r.find("Transfer-Encoding") == nullptr && r.find("Content-Length") == nullptr)
        require(r.body.empty());

    // The application's view is itself a valid request with the same meaning.
    const std::string app = serialize_for_application(r, {}, {});
    parser_limits roomy;
    roomy.max_request_line = limits.max_request_line;
    roomy.max_header_bytes = app.size() + 2;
    roomy.max_headers = r.headers.size() + 2;
    roomy.max_body = r.body.size();
    request_parser again(roomy);
    std::size_t consumed = 0;
    require(again.parse(app, consumed) == parse_status::complete);
    require(consumed == app.size());
    const request& back = again.get();
    require(back.method == r.method && back.target == r.target && back.version_minor == r.version_minor);
    require(back.body == r.body && back.keep_alive == r.keep_alive && !back.was_chunked && !back.expect_continue);
}

void check(std::string_view input, const parser_limits& limits)
{
    const outcome whole = feed(input, {}, limits);
    require(whole.consumed <= input.size());
    for (const request& r : whole.requests) check_request(r, limits);
    if (whole.last == parse_status::error) {
        require(whole.error.category() == http_category());
        const int status = status_code(whole.error);
        require(status == 400 || status == 413 || status == 414 || status == 417 || status == 431 || status == 501 ||
                status == 505);
    } else {
        require(whole.last == parse_status::need_more && !whole.error);
    }

    // The split point comes from the input itself, so the seeds stay plain HTTP; small inputs
    // are also fed byte by byte, which visits every boundary.
    const std::uint64_t h = fnv1a(input);
    const std::size_t a = static_cast<std::size_t>(h % (input.size() + 1));
    const std::size_t b = a + static_cast<std::size_t>((h >> 32) % (input.size() - a + 1));
    require(feed(input, {a}, limits) == whole);
    require(feed(input, {a, b}, limits) == whole);
    if (input.size() <= 1024) {
        std::vector<std::size_t> every;
        for (std::size_t i = 1; i < input.size(); ++i) every.push_back(i);
        require(feed(input, every, limits) == whole);
    }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    check_target(input);
    check(input, parser_limits{});
    // Tight limits put every bound within the fuzzer's reach.
    parser_limits tight;
    tight.max_request_line = 48;
    tight.max_header_bytes = 160;
    tight.max_headers = 6;
    tight.max_body = 40;
    check(input, tight);
    return 0;
}
