// SPDX-License-Identifier: MPL-2.0
// Normalizes request-targets, so that one resource has one spelling for routing and applications.
#include "portunusd/http/target.hpp"

#include "portunusd/http/request_rules.hpp"
#include "portunusd/http/syntax.hpp"

#include <vector>

namespace portunusd::http {
namespace {

constexpr bool is_unreserved(unsigned char c) noexcept
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '-' || c == '.' ||
           c == '_' || c == '~';
}

// Decodes the escapes of unreserved characters and uppercases the others, so that the segment
// compares equal to every other spelling of it; false for a malformed escape or a NUL.
bool append_canonical_segment(std::string_view segment, std::string& out)
{
    static constexpr char hex_digits[] = "0123456789ABCDEF";
    for (std::size_t i = 0; i < segment.size(); ++i) {
        const char c = segment[i];
        if (c == '\0') return false;
        if (c != '%') {
            out += c;
            continue;
        }
        if (segment.size() - i < 3) return false;
        const int high = syntax::hex_value(segment[i + 1]);
        const int low = syntax::hex_value(segment[i + 2]);
        if (high < 0 || low < 0) return false;
        const auto decoded = static_cast<unsigned char>(high * 16 + low);
        // An application that decodes the path would find a NUL that C strings cut at.
        if (decoded == 0) return false;
        if (is_unreserved(decoded)) {
            out += static_cast<char>(decoded);
        } else {
            out += '%';
            out += hex_digits[high];
            out += hex_digits[low];
        }
        i += 2;
    }
    return true;
}

} // namespace

std::optional<std::string> normalize_target(std::string_view origin_form)
{
    if (origin_form.empty() || origin_form.front() != '/') return std::nullopt;
    const std::size_t query_start = origin_form.find('?');
    const std::string_view path = origin_form.substr(0, query_start);
    const std::string_view query =
        query_start == std::string_view::npos ? std::string_view() : origin_form.substr(query_start);

    // Segments are made canonical before the dot segments are looked for, so "%2e%2E" is "..";
    // an escaped slash stays inside its segment and never separates.
    std::string decoded;
    decoded.reserve(path.size());
    std::vector<std::size_t> ends; // end offset in `decoded` of each kept segment
    bool trailing_slash = false;
    std::size_t start = 1;
    for (;;) {
        const std::size_t slash = path.find('/', start);
        const bool last = slash == std::string_view::npos;
        const std::string_view raw = path.substr(start, last ? std::string_view::npos : slash - start);
        const std::size_t begin = decoded.size();
        if (!append_canonical_segment(raw, decoded)) return std::nullopt;
        const std::string_view segment = std::string_view(decoded).substr(begin);
        if (segment.empty() || segment == "." || segment == "..") {
            if (segment == ".." && !ends.empty()) ends.pop_back();
            decoded.resize(ends.empty() ? 0 : ends.back());
            // "/a/" and "/a/b/.." name a directory; merging slashes must not lose that.
            trailing_slash = last;
        } else {
            ends.push_back(decoded.size());
            trailing_slash = false;
        }
        if (last) break;
        start = slash + 1;
    }

    std::string out;
    out.reserve(decoded.size() + ends.size() + 1 + query.size());
    std::size_t from = 0;
    for (const std::size_t end : ends) {
        out += '/';
        out.append(decoded, from, end - from);
        from = end;
    }
    if (out.empty() || trailing_slash) out += '/';
    out.append(query);
    return out;
}

std::optional<absolute_target> split_absolute_form(std::string_view target) noexcept
{
    std::string_view rest;
    if (target.size() >= 7 && syntax::iequals(target.substr(0, 7), "http://"))
        rest = target.substr(7);
    else if (target.size() >= 8 && syntax::iequals(target.substr(0, 8), "https://"))
        rest = target.substr(8);
    else
        return std::nullopt;
    const std::size_t end = rest.find_first_of("/?");
    const std::string_view authority = rest.substr(0, end);
    // Userinfo ('@') fails the Host syntax; RFC 9110 §4.2.4 deprecates it in http URIs, and a
    // Host field cannot carry it.
    if (authority.empty() || authority.front() == ':' || !detail::is_valid_host(authority)) return std::nullopt;
    return absolute_target{authority, end == std::string_view::npos ? std::string_view() : rest.substr(end)};
}

} // namespace portunusd::http
