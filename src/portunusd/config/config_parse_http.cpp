// SPDX-License-Identifier: MPL-2.0
// The http part of the schema: request limits, [[forward.map]] routes and the checks between maps.
#include "portunusd/config/config_parse_http.hpp"

#include "portunusd/config/config_values.hpp"
// Header-only constants and character classes: a map is checked by the rules the request
// parser applies, so it never names a method that no request can carry.
#include "portunusd/http/request_parser.hpp"
#include "portunusd/http/syntax.hpp"

#include <algorithm>
#include <map>
#include <string>
#include <vector>

namespace portunusd::config_detail {
namespace {

using namespace std::string_view_literals;

constexpr std::array required_map_keys{"prefix"sv, "door"sv};
constexpr std::array limit_keys{"max_header_bytes"sv, "max_headers"sv, "max_body"sv, "header_timeout"sv,
                                "max_requests"sv};

constexpr std::int64_t min_header_bytes = 1024;
constexpr std::int64_t max_header_bytes_limit = 1024 * 1024;
constexpr std::int64_t max_headers_limit = 1'000;
constexpr std::int64_t max_body_limit = 1024 * 1024 * 1024;
constexpr std::int64_t max_requests_limit = 1'000'000;

constexpr std::string_view method_forms = R"(expected a method such as "GET", a list such as ["GET", "POST"], or "*")";

// A [[forward.map]] whose method and prefix are valid, as the checks between maps need it.
struct map_draft {
    std::vector<std::string> methods;  ///< empty: "*"
    std::string prefix;
    position header;  ///< of its [[forward.map]] header
};

std::string ascii_upper(std::string_view s)
{
    std::string out{s};
    std::transform(out.begin(), out.end(), out.begin(),
                   [](char c) { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c; });
    return out;
}

// Reports why `method` can never match a request, if it cannot.
bool check_method(const std::string& method, position at, diagnostics& diag)
{
    std::string problem;
    if (!http::syntax::is_token(method))
        problem = quote(method) + " is not a valid method; " + std::string{method_forms};
    // Methods are case-sensitive (RFC 9110 9.1): "get" would never match a client's GET.
    else if (ascii_upper(method) != method)
        problem = quote(method) + " has lowercase letters; methods are case-sensitive; did you mean " +
                  quote(ascii_upper(method)) + "?";
    else if (method.size() > http::max_method_length)
        problem = quote(method) + " is longer than " + std::to_string(http::max_method_length) +
                  " characters; portunusd answers such requests with 501";
    else if (method == "CONNECT")
        problem = "CONNECT is never relayed; a tunnel cannot be carried one door call at a time, so "
                  "portunusd answers it with 501";
    if (problem.empty())
        return true;
    diag.error(at, "method: " + problem);
    return false;
}

// The methods of a map, empty for "*" (also the default), or nullopt after reporting why not.
std::optional<std::vector<std::string>> read_methods(table_reader& r, diagnostics& diag)
{
    const toml::node* node = r.find("method");
    if (!node)
        return std::vector<std::string>{};
    if (const auto* one = node->as_string()) {
        if (one->get() == "*")
            return std::vector<std::string>{};
        if (!check_method(one->get(), position_of(one->source()), diag))
            return std::nullopt;
        return std::vector<std::string>{one->get()};
    }
    const toml::array* list = node->as_array();
    if (!list) {
        r.error("method", std::string{method_forms} + ", found " + std::string{describe_type(*node)});
        return std::nullopt;
    }
    if (list->empty()) {
        r.error("method", R"(the list is empty; list at least one method, or write "*" for any method)");
        return std::nullopt;
    }
    std::vector<std::string> methods;
    bool valid = true;
    for (const toml::node& element : *list) {
        const position at = position_of(element.source());
        const auto* s = element.as_string();
        if (!s) {
            diag.error(at, "method: expected a string, found " + std::string{describe_type(element)});
            valid = false;
        } else if (s->get() == "*" && list->size() > 1) {
            diag.error(at, R"(method: "*" already means any method; list the methods or write "*" alone)");
            valid = false;
        } else if (s->get() == "*") {
            return std::vector<std::string>{};
        } else if (!check_method(s->get(), at, diag)) {
            valid = false;
        } else if (std::find(methods.begin(), methods.end(), s->get()) != methods.end()) {
            diag.error(at, "method: " + quote(s->get()) + " is listed twice");
            valid = false;
        } else {
            methods.push_back(s->get());
        }
    }
    if (!valid)
        return std::nullopt;
    return methods;
}

// Why `prefix` can never match a request path, or an empty string.
std::string prefix_problem(const std::string& prefix)
{
    if (prefix.empty() || prefix.front() != '/')
        return quote(prefix) + R"( does not start with "/"; a prefix is a path such as "/api")";
    if (prefix.find('?') != std::string::npos)
        return quote(prefix) + R"( contains "?"; a prefix matches the path, never the query)";
    if (prefix.find('#') != std::string::npos)
        return quote(prefix) + R"( contains "#"; clients never send the fragment)";
    const bool blank = std::any_of(prefix.begin(), prefix.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f;
    });
    if (blank)
        return quote(prefix) + " contains a space or control character, which no request path can; "
                               "write it percent-encoded, as clients send it";
    // Request paths are matched after their dot segments are resolved, so a prefix that still
    // has one could never match anything.
    std::size_t start = 1;
    for (;;) {
        const std::size_t end = prefix.find('/', start);
        const std::string_view segment = std::string_view{prefix}.substr(start, end - start);
        if (segment == "." || segment == "..")
            return quote(prefix) + " contains the dot segment " + quote(segment) +
                   "; request paths are resolved before matching, so it could never match";
        if (end == std::string::npos)
            break;
        start = end + 1;
    }
    return {};
}

std::optional<std::string> read_prefix(table_reader& r)
{
    auto prefix = r.string("prefix");
    if (!prefix)
        return prefix;
    std::string problem = prefix_problem(*prefix);
    if (problem.empty())
        return prefix;
    r.error("prefix", std::move(problem));
    return std::nullopt;
}

// Reads one [[forward.map]]; adds it to `f.maps` if valid, and to `drafts` if its method and
// prefix are (a map whose door is wrong can still duplicate another).
void read_map(const toml::table& table, forward_config& f, std::vector<map_draft>& drafts, diagnostics& diag,
              std::span<const other_table> elsewhere)
{
    const position header = position_of(table.source());
    table_reader r{table, diag};
    r.reject_unknown_keys(http_map_keys, "in [[forward.map]]", elsewhere);
    r.require(required_map_keys, "[[forward.map]]");
    auto methods = read_methods(r, diag);
    auto prefix = read_prefix(r);
    auto door = r.door_path("door");
    if (methods && prefix)
        drafts.push_back({*methods, *prefix, header});
    if (!methods || !prefix || !door)
        return;
    const position door_at = r.where("door");
    f.maps.push_back({{std::move(*methods), std::move(*prefix), std::move(*door)}, header.line, header.column,
                      door_at.line, door_at.column});
}

std::string routing_key(const std::string& prefix)
{
    return prefix.size() > 1 && prefix.back() == '/' ? prefix.substr(0, prefix.size() - 1) : prefix;
}

std::string same_prefix(const map_draft& earlier, const map_draft& later)
{
    if (earlier.prefix == later.prefix)
        return "same prefix " + quote(later.prefix) + " and ";
    return "prefixes " + quote(later.prefix) + " and " + quote(earlier.prefix) +
           R"( differ only in a trailing "/", and both take )";
}

// Of the maps with one prefix, the router hands a request to the first that takes its method:
// a later map for the same method never serves, and neither does a map listing methods after
// a "*" map of its prefix.
void check_between_maps(const std::vector<map_draft>& drafts, diagnostics& diag)
{
    struct seen_prefix {
        std::map<std::string, const map_draft*> by_method;
        const map_draft* any = nullptr;
    };
    // Keyed by prefix so that many maps cost n log n, not n squared.
    std::map<std::string, seen_prefix> seen;
    for (const map_draft& d : drafts) {
        seen_prefix& s = seen[routing_key(d.prefix)];
        const auto report = [&](const map_draft& earlier, const std::string& what) {
            diag.error(d.header, "map duplicates the one at line " + std::to_string(earlier.header.line) + ": " +
                                     same_prefix(earlier, d) + what);
        };
        if (d.methods.empty()) {
            if (s.any)
                report(*s.any, R"(any method ("*"))");
            else
                s.any = &d;
            continue;
        }
        const auto shared = std::find_if(d.methods.begin(), d.methods.end(),
                                         [&s](const std::string& m) { return s.by_method.count(m) != 0; });
        if (shared != d.methods.end())
            report(*s.by_method.find(*shared)->second, "method " + *shared);
        else if (s.any)
            diag.error(d.header, "map comes after the \"*\" map at line " + std::to_string(s.any->header.line) +
                                       " for prefix " + quote(routing_key(d.prefix)) +
                                       ", which takes every request first; move this map above it");
        for (const std::string& m : d.methods)
            s.by_method.emplace(m, &d);
    }
}

// Returns whether a "map" key is present and not an empty array.
bool read_maps(table_reader& r, std::optional<protocol> proto, forward_config& f, diagnostics& diag,
               std::span<const other_table> elsewhere)
{
    const toml::node* node = r.find("map");
    if (!node)
        return false;
    if (proto && *proto != protocol::http) {
        diag.error(r.where("map"), "[[forward.map]] is only for http forwards");
        return true;
    }
    const toml::array* array = node->as_array();
    if (array && array->empty())
        return false;
    if (!array) {
        const std::string found = node->is_table() ? "a table ([forward.map])" : std::string{describe_type(*node)};
        r.error("map", "expected an array of tables ([[forward.map]]), found " + found);
        return true;
    }
    std::vector<map_draft> drafts;
    for (const toml::node& element : *array) {
        const toml::table* table = element.as_table();
        if (!table) {
            diag.error(position_of(element.source()),
                       "map: expected a table, found " + std::string{describe_type(element)});
            continue;
        }
        read_map(*table, f, drafts, diag, elsewhere);
    }
    check_between_maps(drafts, diag);
    return true;
}

void read_limits(table_reader& r, std::optional<protocol> proto, forward_config& f, diagnostics& diag)
{
    // A tcp forward behind a balancer waits for the PROXY header as http waits for a head.
    const bool proxied_tcp = (proto == protocol::tcp || proto == protocol::pass) && f.proxy_protocol;
    if (proxied_tcp)
        if (auto v = r.duration("header_timeout"))
            f.header_timeout = *v;
    if (proto && *proto != protocol::http) {
        for (std::string_view key : limit_keys) {
            if (r.find(key) && !(proxied_tcp && key == "header_timeout"))
                diag.error(r.where(key), std::string{key} + " does not apply to " + std::string{protocol_name(f)} +
                                             " forwards; it is for http only");
        }
        return;
    }
    if (auto v = r.integer("max_header_bytes", min_header_bytes, max_header_bytes_limit))
        f.max_header_bytes = static_cast<std::size_t>(*v);
    if (auto v = r.integer("max_headers", 1, max_headers_limit))
        f.max_headers = static_cast<std::size_t>(*v);
    if (auto v = r.integer("max_body", 0, max_body_limit))
        f.max_body = static_cast<std::size_t>(*v);
    if (auto v = r.duration("header_timeout"))
        f.header_timeout = *v;
    if (auto v = r.integer("max_requests", 1, max_requests_limit))
        f.max_requests = static_cast<std::size_t>(*v);
}

}  // namespace

bool read_http_keys(table_reader& r, std::optional<protocol> proto, forward_config& f, diagnostics& diag,
                    std::span<const other_table> map_elsewhere)
{
    read_limits(r, proto, f, diag);
    return read_maps(r, proto, f, diag, map_elsewhere);
}

}  // namespace portunusd::config_detail
