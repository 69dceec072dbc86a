// SPDX-License-Identifier: MPL-2.0
// Parsing and formatting of control requests and replies.
#include "portunusd/control/control_protocol.hpp"

#include "portunusd/config/config_values.hpp"

#include <algorithm>
#include <array>
#include <vector>

namespace portunusd {
namespace {

using config_detail::escape_control_bytes;
using config_detail::quote;

constexpr std::string_view version_prefix = "portunus-control/";
// A foreign status line is shown to the operator; a hostile one must not fill the terminal.
constexpr std::size_t max_shown_version = 32;
constexpr std::size_t max_shown_summary = 512;
// Nine digits hold every drain up to 24 h in milliseconds and cannot overflow while read.
constexpr std::size_t max_drain_digits = 9;

control_request_parse request_error(std::string message)
{
    return {std::nullopt, std::move(message)};
}

std::vector<std::string_view> split_words(std::string_view line)
{
    std::vector<std::string_view> words;
    std::size_t start = 0;
    for (;;) {
        const auto space = line.find(' ', start);
        words.push_back(line.substr(start, space == std::string_view::npos ? std::string_view::npos : space - start));
        if (space == std::string_view::npos) return words;
        start = space + 1;
    }
}

std::optional<control_command> command_named(std::string_view word)
{
    constexpr std::array all{control_command::status, control_command::status_json, control_command::reload,
                             control_command::stop, control_command::restart};
    for (const control_command c : all)
        if (to_string(c) == word) return c;
    return std::nullopt;
}

control_request_parse parse_drain(std::string_view word)
{
    const bool digits = !word.empty() && word.size() <= max_drain_digits &&
                        std::all_of(word.begin(), word.end(), [](char c) { return c >= '0' && c <= '9'; });
    std::int64_t ms = 0;
    if (digits)
        for (const char c : word) ms = ms * 10 + (c - '0');
    if (!digits || ms > control_max_drain.count())
        return request_error("stop: drain timeout " + quote(word) + " is not a number of milliseconds from 0 to " +
                             std::to_string(control_max_drain.count()));
    return {control_request{control_command::stop, std::chrono::milliseconds{ms}, {}}, {}};
}

// Escaped first and then cut at exactly `limit` bytes, so that showing a shown text again
// leaves it as it is (a reply read and written again stays the same).
std::string shown(std::string_view text, std::size_t limit)
{
    std::string out = escape_control_bytes(text);
    if (out.size() <= limit) return out;
    out.resize(limit);
    return out + "...";
}

} // namespace

std::string_view to_string(control_command c) noexcept
{
    switch (c) {
    case control_command::status: return "status";
    case control_command::status_json: return "status-json";
    case control_command::reload: return "reload";
    case control_command::stop: return "stop";
    case control_command::restart: return "restart";
    }
    return "status";
}

std::string_view to_string(control_status s) noexcept
{
    switch (s) {
    case control_status::ok: return "ok";
    case control_status::error: return "error";
    case control_status::refused: return "refused";
    }
    return "error";
}

control_request_parse parse_control_request(std::string_view bytes)
{
    if (bytes.size() > control_max_request)
        return request_error("request of " + std::to_string(bytes.size()) + " bytes; at most " +
                             std::to_string(control_max_request) + " are read");
    // The version first: a client of another protocol or version learns that, whatever else
    // is wrong with its bytes.
    const auto end = bytes.find('\n');
    const std::string_view line = bytes.substr(0, end);
    const std::string_view version = line.substr(0, line.find(' '));
    if (version.substr(0, version_prefix.size()) != version_prefix)
        return request_error("not a control request: it must start with " + std::string{control_protocol_token});
    if (version != control_protocol_token)
        return request_error("unsupported protocol version " + quote(version.substr(version_prefix.size())) +
                             "; this daemon speaks " + std::string{control_protocol_token});
    if (end == std::string_view::npos) return request_error("request does not end with a line feed");
    if (end + 1 != bytes.size()) return request_error("request has bytes after its line");

    const auto words = split_words(line);
    if (std::any_of(words.begin(), words.end(), [](std::string_view w) { return w.empty(); }))
        return request_error("request words must be separated by exactly one space");
    if (words.size() < 2) return request_error("no command; expected status, status-json, reload, stop or restart");

    const auto command = command_named(words[1]);
    if (!command)
        return request_error("unknown command " + quote(words[1]) +
                             "; expected status, status-json, reload, stop or restart");
    if (*command == control_command::restart) {
        // An app name as the configuration allows it: 1 to 64 of A-Z a-z 0-9 . _ -
        const bool valid = words.size() == 3 && !words[2].empty() && words[2].size() <= 64 &&
                           std::all_of(words[2].begin(), words[2].end(), [](char c) {
                               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                                      c == '.' || c == '_' || c == '-';
                           });
        if (!valid) return request_error("restart takes one argument, the name of an [[app]]");
        control_request r{control_command::restart, std::nullopt, std::string{words[2]}};
        return {std::move(r), {}};
    }
    if (*command == control_command::stop) {
        if (words.size() > 3) return request_error("stop takes at most one argument, a drain timeout in milliseconds");
        if (words.size() == 3) return parse_drain(words[2]);
        return {control_request{control_command::stop, std::nullopt, {}}, {}};
    }
    if (words.size() > 2) return request_error(std::string{words[1]} + " takes no argument");
    return {control_request{*command, std::nullopt, {}}, {}};
}

std::string format_control_request(const control_request& r)
{
    std::string out{control_protocol_token};
    out += ' ';
    out += to_string(r.command);
    if (r.command == control_command::stop && r.drain) {
        out += ' ';
        out += std::to_string(r.drain->count());
    }
    if (r.command == control_command::restart) {
        out += ' ';
        out += r.app;
    }
    out += '\n';
    return out;
}

std::string format_control_reply(const control_reply& r)
{
    std::string out{control_protocol_token};
    out += ' ';
    out += to_string(r.status);
    if (!r.summary.empty()) {
        out += ' ';
        out += shown(r.summary, max_shown_summary);
    }
    out += '\n';
    out += r.body;
    return out;
}

control_reply_parse parse_control_reply(std::string_view bytes)
{
    control_reply_parse out;
    const auto end = bytes.find('\n');
    const std::string_view line = bytes.substr(0, end);
    const auto space = line.find(' ');
    const std::string_view version = line.substr(0, space);
    const std::string_view rest = space == std::string_view::npos ? std::string_view{} : line.substr(space + 1);

    if (version.substr(0, version_prefix.size()) != version_prefix || end == std::string_view::npos) {
        out.error = bytes.empty() ? "the door gave an empty answer"
                                  : "the door's answer is not a control reply: " + quote(bytes.substr(0, 64));
        return out;
    }
    if (version != control_protocol_token) {
        out.foreign_version = shown(version, max_shown_version);
        out.summary = shown(rest, max_shown_summary);
        return out;
    }

    const auto status_end = rest.find(' ');
    const std::string_view status = rest.substr(0, status_end);
    control_reply reply;
    if (status == "ok")
        reply.status = control_status::ok;
    else if (status == "error")
        reply.status = control_status::error;
    else if (status == "refused")
        reply.status = control_status::refused;
    else {
        out.error = "the control reply has an unknown status " + quote(status);
        return out;
    }
    if (status_end != std::string_view::npos) reply.summary = shown(rest.substr(status_end + 1), max_shown_summary);
    reply.body = std::string{bytes.substr(end + 1)};
    out.value = std::move(reply);
    return out;
}

} // namespace portunusd
