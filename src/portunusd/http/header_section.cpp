// SPDX-License-Identifier: MPL-2.0
// Field lines and the rules over the whole header section: Host, framing, keep-alive, Expect.
#include "portunusd/http/http_error.hpp"
#include "portunusd/http/request_rules.hpp"
#include "portunusd/http/syntax.hpp"

#include <limits>

namespace portunusd::http::detail {
namespace {

using syntax::iequals;

// unreserved / sub-delims without ',' / '%': the characters of a reg-name or IPv4 address.
bool is_host_char(char c) noexcept
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    switch (c) {
    case '-': case '.': case '_': case '~': case '!': case '$': case '&': case '\'': case '(':
    case ')': case '*': case '+': case ';': case '=': case '%': return true;
    default: return false;
    }
}

bool is_port(std::string_view s) noexcept
{
    for (const char c : s)
        if (!syntax::is_digit(c)) return false;
    return true;
}

bool is_valid_reg_name(std::string_view s) noexcept
{
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (!is_host_char(s[i])) return false;
        if (s[i] == '%' && (i + 2 >= s.size() || syntax::hex_value(s[i + 1]) < 0 || syntax::hex_value(s[i + 2]) < 0))
            return false;
    }
    return true;
}

// Content-Length as a saturating number: every value over the body limit is refused with 413
// anyway, and saturation keeps "99999999999999999999" from wrapping to something small.
std::error_code content_length(const request& r, bool& present, std::uint64_t& length)
{
    constexpr std::uint64_t saturated = std::numeric_limits<std::uint64_t>::max();
    present = false;
    bool conflict = false;
    for (const header_field& f : r.headers) {
        if (!iequals(f.name, "Content-Length")) continue;
        // A list of identical values ("5, 5") is what an upstream that folds repeated lines
        // produces; RFC 9110 §8.6 lets a recipient take the single value.
        const bool well_formed = syntax::for_each_list_element(f.value, [&](std::string_view element) {
            if (element.empty()) return false;
            std::uint64_t value = 0;
            for (const char c : element) {
                if (!syntax::is_digit(c)) return false;
                const auto digit = static_cast<std::uint64_t>(c - '0');
                value = value > (saturated - digit) / 10 ? saturated : value * 10 + digit;
            }
            if (present && value != length) conflict = true;
            present = true;
            length = value;
            return true;
        });
        if (!well_formed) return http_error::bad_content_length;
    }
    if (conflict) return http_error::conflicting_content_length;
    return {};
}

std::error_code transfer_encoding(const request& r)
{
    std::size_t codings = 0;
    std::size_t chunked = 0;
    bool last_chunked = false;
    bool other = false;
    for (const header_field& f : r.headers) {
        if (!iequals(f.name, "Transfer-Encoding")) continue;
        // Parameters are refused along with any other non-token: chunked takes none, and the
        // daemon decodes no other coding.
        const bool well_formed = syntax::for_each_list_element(f.value, [&](std::string_view coding) {
            if (coding.empty()) return true;
            if (!syntax::is_token(coding)) return false;
            ++codings;
            last_chunked = iequals(coding, "chunked");
            if (last_chunked)
                ++chunked;
            else
                other = true;
            return true;
        });
        if (!well_formed) return http_error::bad_transfer_encoding;
    }
    // Without chunked last the body length cannot be known (RFC 9112 §6.3): that is a framing
    // error, which outranks not implementing a coding.
    if (codings == 0 || !last_chunked || chunked > 1) return http_error::bad_transfer_encoding;
    if (other) return http_error::transfer_coding_not_implemented;
    return {};
}

} // namespace

bool is_valid_host(std::string_view value) noexcept
{
    std::string_view host = value;
    std::string_view port;
    if (!value.empty() && value.front() == '[') {
        const std::size_t close = value.find(']');
        if (close == std::string_view::npos || close == 1) return false;
        for (const char c : value.substr(1, close - 1))
            if (!is_host_char(c) && c != ':') return false;
        const std::string_view after = value.substr(close + 1);
        if (!after.empty() && after.front() != ':') return false;
        return is_port(after.empty() ? after : after.substr(1));
    }
    const std::size_t colon = value.find(':');
    if (colon != std::string_view::npos) {
        host = value.substr(0, colon);
        port = value.substr(colon + 1);
    }
    return is_valid_reg_name(host) && is_port(port);
}

std::error_code parse_field_line(std::string_view line, std::string_view& name, std::string_view& value)
{
    // A leading SP/HTAB continues the previous line (obs-fold) or, after the request line, hides
    // a field from readers that skip such lines; RFC 9112 §5.2 allows rejecting both.
    if (!line.empty() && syntax::is_ows(line.front())) return http_error::obsolete_line_folding;
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return http_error::bad_header;
    name = line.substr(0, colon);
    // Whitespace before the colon makes the name a non-token: "Transfer-Encoding : chunked" is
    // refused here rather than read as a field some other parser would not see (RFC 9112 §5.1).
    if (!syntax::is_token(name)) return http_error::bad_header;
    value = syntax::trim_ows(line.substr(colon + 1));
    for (const char c : value)
        if (!syntax::is_field_value_char(static_cast<unsigned char>(c))) return http_error::bad_header;
    return {};
}

std::error_code check_header_section(request& r, std::size_t max_body, body_framing& framing)
{
    framing = {};
    const header_field* host = nullptr;
    bool has_transfer_encoding = false;
    bool close = false;
    bool keep_alive = false;
    bool continue_expected = false;
    bool other_expectation = false;
    for (const header_field& f : r.headers) {
        if (iequals(f.name, "Host")) {
            if (host) return http_error::duplicate_host;
            host = &f;
        } else if (iequals(f.name, "Transfer-Encoding")) {
            has_transfer_encoding = true;
        } else if (iequals(f.name, "Connection")) {
            syntax::for_each_list_element(f.value, [&](std::string_view option) {
                close = close || iequals(option, "close");
                keep_alive = keep_alive || iequals(option, "keep-alive");
                return true;
            });
        } else if (iequals(f.name, "Expect")) {
            syntax::for_each_list_element(f.value, [&](std::string_view expectation) {
                if (iequals(expectation, "100-continue"))
                    continue_expected = true;
                else if (!expectation.empty())
                    other_expectation = true;
                return true;
            });
        }
    }
    if (!host && r.version_minor == 1) return http_error::missing_host;
    if (host && !is_valid_host(host->value)) return http_error::bad_host;

    bool has_length = false;
    std::uint64_t length = 0;
    if (const std::error_code ec = content_length(r, has_length, length)) return ec;
    if (has_transfer_encoding) {
        // Both framings at once is the CL.TE / TE.CL smuggling shape. RFC 9112 §6.1 would let
        // chunked win; refusing is safer because no reading of the bytes is then acted upon.
        if (has_length) return http_error::content_length_with_transfer_encoding;
        // HTTP/1.0 has no chunked coding; §6.1 says to treat such framing as faulty.
        if (r.version_minor == 0) return http_error::bad_transfer_encoding;
        if (const std::error_code ec = transfer_encoding(r)) return ec;
        framing.chunked = true;
    } else {
        if (length > max_body) return http_error::body_too_large;
        framing.length = length;
    }

    r.keep_alive = !close && (r.version_minor == 1 || keep_alive);
    r.was_chunked = framing.chunked;
    // RFC 9110 §10.1.1: a 100-continue expectation in HTTP/1.0 is ignored, any other is refused.
    if (other_expectation) return http_error::expectation_failed;
    r.expect_continue = continue_expected && r.version_minor == 1;
    return {};
}

void apply_authority(request& r, std::string_view authority)
{
    if (authority.empty()) return;
    // check_header_section() has refused a second Host, so the first is the only one.
    for (header_field& f : r.headers) {
        if (iequals(f.name, "Host")) {
            f.value.assign(authority);
            return;
        }
    }
    r.headers.insert(r.headers.begin(), header_field{"Host", std::string(authority)});
}

} // namespace portunusd::http::detail
