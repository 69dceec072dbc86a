// SPDX-License-Identifier: MPL-2.0
// Dropping root after the listening sockets are bound.
#pragma once

#include <optional>
#include <string>

namespace portunusd {

/// Switches to `user` (and `group`, or the user's primary group) for good, supplementary groups
/// included. Nothing to do when neither is set. Returns an error message, or empty on success.
std::string drop_privileges(const std::optional<std::string>& user, const std::optional<std::string>& group);

} // namespace portunusd
