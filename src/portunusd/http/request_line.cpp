// SPDX-License-Identifier: MPL-2.0
// The request line: method, request-target and HTTP version (RFC 9112 §3).
#include "portunusd/http/request_parser.hpp"
#include "portunusd/http/request_rules.hpp"
#include "portunusd/http/syntax.hpp"
#include "portunusd/http/target.hpp"

namespace portunusd::http::detail {
namespace {

// Visible ASCII except '#' (a fragment is never sent), plus obs-text, which some clients send
// unencoded in paths and which the application may decode as it likes. SP, CTLs and DEL would
// let a target be read as something else by the next parser.
bool is_target_char(unsigned char c) noexcept
{
    return (c > 0x20 && c < 0x7f && c != '#') || c >= 0x80;
}

} // namespace

std::error_code parse_request_line(std::string_view line, request& out, std::string& authority)
{
    const std::size_t first = line.find(' ');
    if (first == std::string_view::npos) return http_error::bad_request_line;
    const std::size_t second = line.find(' ', first + 1);
    if (second == std::string_view::npos) return http_error::bad_request_line;
    const std::string_view method = line.substr(0, first);
    const std::string_view target = line.substr(first + 1, second - first - 1);
    const std::string_view version = line.substr(second + 1);

    // Exactly one SP between the parts: "GET  / HTTP/1.1" gives an empty target and a second
    // SP inside the version, both refused, where a lenient reader would skip the extra space.
    if (!syntax::is_token(method) || target.empty()) return http_error::bad_request_line;
    for (const char c : target)
        if (!is_target_char(static_cast<unsigned char>(c))) return http_error::bad_target;
    // HTTP-name is case-sensitive and each version number is exactly one digit (RFC 9112 §2.3).
    if (version.size() != 8 || version.substr(0, 5) != "HTTP/" || !syntax::is_digit(version[5]) ||
        version[6] != '.' || !syntax::is_digit(version[7]))
        return http_error::bad_version;
    // RFC 9110 §2.5: a later 1.x minor version is read as the highest one implemented, 1.1.
    if (version[5] != '1') return http_error::version_not_supported;

    // Methods are case-sensitive; only the exact name CONNECT asks for a tunnel.
    if (method.size() > max_method_length || method == "CONNECT") return http_error::method_not_implemented;

    // Routing and the application see one normalized origin-form, so a prefix cannot be
    // reached, or missed, through another spelling of the same path.
    std::optional<std::string> normalized;
    authority.clear();
    if (target == "*") {
        if (method != "OPTIONS") return http_error::bad_target;
        normalized.emplace(target);
    } else if (target.front() == '/') {
        normalized = normalize_target(target);
    } else if (const std::optional<absolute_target> absolute = split_absolute_form(target)) {
        // RFC 9112 §3.2.2: the target's authority replaces Host, once the header section is read.
        authority.assign(absolute->authority);
        // RFC 9112 §3.2.4: OPTIONS on a bare authority asks about the server, as "*" does.
        // Otherwise a leading "/" gives "/" for an empty path and "/?q" for a bare query; before
        // a path it is a repeated slash, which normalization merges.
        if (method == "OPTIONS" && absolute->rest.empty())
            normalized.emplace("*");
        else
            normalized = normalize_target("/" + std::string(absolute->rest));
    }
    if (!normalized) return http_error::bad_target;

    out.method.assign(method);
    out.target = std::move(*normalized);
    out.version_minor = version[7] == '0' ? 0 : 1;
    return {};
}

} // namespace portunusd::http::detail
