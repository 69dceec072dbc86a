// SPDX-License-Identifier: MPL-2.0
// The control protocol: the one-line requests `portunus` sends to the control door and the
// replies it gets, as pure functions over bytes (no I/O), so both ends and the fuzzer share them.
#pragma once

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace portunusd {

/// The version this build speaks, and the token that starts every request and reply with it.
inline constexpr int control_protocol_version = 1;
inline constexpr std::string_view control_protocol_token = "portunus-control/1";
/// Requests are one short line; anything longer is refused before it is parsed.
inline constexpr std::size_t control_max_request = 4096;
/// The longest drain a `stop` may ask for, the same bound as drain_timeout in the configuration.
inline constexpr std::chrono::milliseconds control_max_drain{std::chrono::hours{24}};

/// How long the daemon waits for the server on each command before it answers that the server
/// did not; a client waits a little longer for the answer.
inline constexpr std::chrono::milliseconds control_status_deadline{10'000};
inline constexpr std::chrono::milliseconds control_reload_deadline{30'000};
inline constexpr std::chrono::milliseconds control_stop_deadline{10'000};

/// The prefixes of a reload reply's body lines (portunus(1) documents them; `portunus reload`
/// exits 96 when an "error: " line says the configuration was refused).
inline constexpr std::string_view reload_added = "added: ";
inline constexpr std::string_view reload_changed = "changed: ";
inline constexpr std::string_view reload_removed = "removed: ";
inline constexpr std::string_view reload_error = "error: ";
inline constexpr std::string_view reload_not_bound = "not bound: ";

enum class control_command { status, status_json, reload, stop, restart };

/// The command's word on the wire: "status", "status-json", "reload", "stop", "restart".
std::string_view to_string(control_command c) noexcept;

struct control_request {
    control_command command = control_command::status;
    /// stop only: the drain timeout that replaces the configured one.
    std::optional<std::chrono::milliseconds> drain;
    /// restart only: the [[app]] to replace.
    std::string app;

    bool operator==(const control_request&) const = default;
};

/// A request, or why it is not one. `error` is one line, safe to show (input bytes escaped).
struct control_request_parse {
    std::optional<control_request> value;
    std::string error;
};

/// Parses "portunus-control/1 COMMAND [ARG]\n": exactly one line of at most
/// control_max_request bytes, words separated by one space. A request of another version is an
/// error that names both versions.
control_request_parse parse_control_request(std::string_view bytes);

/// The wire form of `r`, which parse_control_request() reads back as `r`.
std::string format_control_request(const control_request& r);

enum class control_status { ok, error, refused };

std::string_view to_string(control_status s) noexcept;

/// A reply: "portunus-control/1 STATUS[ SUMMARY]\n" then the body. The summary is one line that
/// says what went wrong (error, refused); it sits on the first line because that line's shape is
/// what every version of the protocol keeps, so a client of another version can still show it.
struct control_reply {
    control_status status = control_status::ok;
    std::string summary;
    std::string body;

    bool operator==(const control_reply&) const = default;
};

/// The wire form of `r`. Line breaks and control bytes in the summary are escaped so that it
/// stays one line, and it is cut at 512 bytes.
std::string format_control_reply(const control_reply& r);

/// What a client makes of the bytes a control door answered.
struct control_reply_parse {
    std::optional<control_reply> value;
    /// Set when the reply is a control reply of another version: "portunus-control/N" as sent
    /// (escaped, cut short), with `summary` holding the rest of its first line (its status and
    /// summary, whose grammar that version decides).
    std::string foreign_version;
    std::string summary;
    /// When neither: why the bytes are not a control reply.
    std::string error;
};

control_reply_parse parse_control_reply(std::string_view bytes);

} // namespace portunusd
