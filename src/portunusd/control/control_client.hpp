// SPDX-License-Identifier: MPL-2.0
// control_client: the `portunus` side of the control door: finding it, one exchange with it,
// and every way that can fail put into words.
#pragma once

#include "portunusd/control/control_protocol.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace portunusd {

inline constexpr std::string_view default_control_door = "/var/run/portunusd/control.door";
inline constexpr const char* control_door_variable = "PORTUNUS_CONTROL_DOOR";

/// The control door to use: `flag` (--control) if given, else the variable's value if set and
/// not empty, else default_control_door.
std::string control_door_path(const char* flag, const char* variable);

/// One request and its answer.
struct control_exchange {
    /// Set when the daemon answered in this protocol version (whatever the status).
    std::optional<control_reply> reply;
    /// Otherwise one line, naming the path and saying what went wrong: the door is missing,
    /// refused us, is not a door, is served by nobody, answered in another version, ...
    std::string error;
};

/// Opens the control door at `path`, sends `request` and waits at most `timeout` for the reply.
/// Blocks; no threads of its own.
control_exchange call_control_door(const std::string& path, const control_request& request,
                                   std::chrono::milliseconds timeout);

/// Words a failure to open or call the door at `path`, looking at the path to tell a missing
/// door, a refusal, a file that is not a door and a door that nobody serves apart.
std::string describe_control_door_error(const std::string& path, const std::error_code& ec);

/// True once process `pid` has exited: it no longer exists, or it is a zombie its parent has
/// not reaped yet. A process we may not signal still exists.
bool process_gone(long pid);

} // namespace portunusd
