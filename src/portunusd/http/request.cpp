// SPDX-License-Identifier: MPL-2.0
// Field lookup and the application's view of a request (framing and hop-by-hop fields removed).
#include "portunusd/http/request.hpp"

#include "portunusd/http/syntax.hpp"

#include <array>
#include <charconv>

namespace portunusd::http {
namespace {

using syntax::iequals;

constexpr std::array<std::string_view, 9> daemon_fields{
    "Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "TE", "Trailer", "Upgrade",
    "Expect", "HTTP2-Settings"};

bool named_by_connection(const request& r, std::string_view name)
{
    // Host is what routes the request; letting a client strip it through a Connection option
    // would hand the application a request it cannot place.
    if (iequals(name, "Host")) return false;
    for (const header_field& f : r.headers) {
        if (!iequals(f.name, "Connection")) continue;
        const bool listed = !syntax::for_each_list_element(f.value, [&](std::string_view option) {
            return !iequals(option, name);
        });
        if (listed) return true;
    }
    return false;
}

bool kept(const request& r, const header_field& f, std::span<const std::string_view> drop_names)
{
    if (is_daemon_field(f.name)) return false;
    for (const std::string_view d : drop_names)
        if (iequals(f.name, d)) return false;
    return !named_by_connection(r, f.name);
}

void append_field(std::string& out, std::string_view name, std::string_view value)
{
    out.append(name).append(": ").append(value).append("\r\n");
}

} // namespace

const header_field* request::find(std::string_view name) const noexcept
{
    for (const header_field& f : headers)
        if (iequals(f.name, name)) return &f;
    return nullptr;
}

bool is_daemon_field(std::string_view name) noexcept
{
    if (name.size() >= 6 && iequals(name.substr(0, 6), "Proxy-")) return true;
    for (const std::string_view d : daemon_fields)
        if (iequals(name, d)) return true;
    return false;
}

namespace {

std::string serialize(const request& r, std::span<const header_field> extra, std::span<const std::string_view> drop_names,
                      bool with_body)
{
    constexpr std::string_view version_10 = " HTTP/1.0\r\n";
    constexpr std::string_view version_11 = " HTTP/1.1\r\n";
    const std::string_view connection = r.keep_alive ? "keep-alive" : "close";
    const bool with_length = r.was_chunked || !r.body.empty() || r.find("Content-Length") != nullptr;
    std::array<char, 24> length_digits{};
    const auto length_end =
        std::to_chars(length_digits.data(), length_digits.data() + length_digits.size(), r.body.size()).ptr;
    const std::string_view length(length_digits.data(), static_cast<std::size_t>(length_end - length_digits.data()));

    // Sized up front so the message is built in one allocation, bodies of a megabyte included.
    std::size_t size = r.method.size() + 1 + r.target.size() + version_11.size();
    for (const header_field& f : r.headers)
        if (kept(r, f, drop_names)) size += f.name.size() + f.value.size() + 4;
    size += std::string_view("Connection").size() + connection.size() + 4;
    if (with_length) size += std::string_view("Content-Length").size() + length.size() + 4;
    for (const header_field& f : extra) size += f.name.size() + f.value.size() + 4;
    size += 2 + (with_body ? r.body.size() : 0);

    std::string out;
    out.reserve(size);
    out.append(r.method).append(" ").append(r.target).append(r.version_minor == 0 ? version_10 : version_11);
    for (const header_field& f : r.headers)
        if (kept(r, f, drop_names)) append_field(out, f.name, f.value);
    append_field(out, "Connection", connection);
    if (with_length) append_field(out, "Content-Length", length);
    for (const header_field& f : extra) append_field(out, f.name, f.value);
    out.append("\r\n");
    if (with_body) out.append(r.body);
    return out;
}

} // namespace

std::string serialize_for_application(const request& r, std::span<const header_field> extra,
                                      std::span<const std::string_view> drop_names)
{
    return serialize(r, extra, drop_names, true);
}

std::string serialize_head_for_application(const request& r, std::span<const header_field> extra,
                                           std::span<const std::string_view> drop_names)
{
    return serialize(r, extra, drop_names, false);
}

} // namespace portunusd::http
