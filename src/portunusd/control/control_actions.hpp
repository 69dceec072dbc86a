// SPDX-License-Identifier: MPL-2.0
// control_actions: what the control door may ask of the running server, as blocking calls.
#pragma once

#include "portunusd/metrics/snapshot.hpp"

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace portunusd {

/// The outcome of a reload asked for over the control door.
struct reload_report {
    bool ok = false;
    /// When !ok: every problem, "FILE:LINE:COL: message" for the configuration's own errors;
    /// the running configuration was kept.
    std::vector<std::string> errors;
    std::vector<std::string> added, changed, removed; ///< forward names
    /// Forwards of the new configuration that could not be bound (the rest was applied).
    std::vector<std::string> bind_errors;
};

/// Each function is called on a control-door thread, never on an event loop. It hands the work
/// to the server's control strand and waits for the answer at most `deadline` (std::nullopt
/// after that, or when the daemon is already stopping and cannot answer).
struct control_actions {
    std::function<std::optional<daemon_snapshot>(std::chrono::milliseconds deadline)> status;
    std::function<std::optional<reload_report>(std::chrono::milliseconds deadline)> reload;
    /// Begins a graceful drain; `drain_timeout` replaces the configured one when given. True once
    /// the drain has begun (or had begun already).
    std::function<bool(std::optional<std::chrono::milliseconds> drain_timeout, std::chrono::milliseconds deadline)>
        stop;
    /// Replaces the processes of the [[app]] named so, each new one started before its old one
    /// stops. False: no app of that name.
    std::function<std::optional<bool>(const std::string& app, std::chrono::milliseconds deadline)> restart;
};

} // namespace portunusd
