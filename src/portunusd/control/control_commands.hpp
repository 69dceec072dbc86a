// SPDX-License-Identifier: MPL-2.0
// control_commands: what the control door does with a request, from its bytes to the reply,
// through the server's control_actions; who may ask is decided here too. Pure but for the
// actions it calls, so tests drive it with fakes.
#pragma once

#include "portunusd/control/control_actions.hpp"
#include "portunusd/control/control_protocol.hpp"

#include <sys/types.h>

#include <string>
#include <string_view>

namespace portunusd {

/// Root and the daemon's own effective uid may steer it; nobody else, whatever the door's mode.
constexpr bool control_caller_allowed(uid_t caller, uid_t daemon_euid) noexcept
{
    return caller == 0 || caller == daemon_euid;
}

/// The summary of the reply to a caller control_caller_allowed() turns away.
std::string control_refusal(uid_t daemon_euid);

/// Runs `request`: its action is called once, on this thread, with the command's deadline; an
/// action that gives up (or is missing) is an error reply. `pid` is the daemon's, which `stop`
/// names.
control_reply run_control_request(const control_request& request, const control_actions& actions, long pid);

/// parse_control_request(), then run_control_request(); a malformed request is an error reply.
control_reply answer_control_request(std::string_view bytes, const control_actions& actions, long pid);

/// The reply to a finished reload: ok with added, changed and removed forwards; or error with
/// every configuration error (nothing changed) or every forward that could not be bound.
control_reply reload_reply(const reload_report& report);

} // namespace portunusd
