// SPDX-License-Identifier: MPL-2.0
// The keys of [[forward]] that only exec forwards take, and the keys exec forwards refuse.
#pragma once

#include "portunusd/config/config_reader.hpp"

#include <array>
#include <optional>
#include <string_view>

namespace portunusd::config_detail {

/// Keys of a [[forward]] table that only exec forwards take.
inline constexpr std::array<std::string_view, 3> exec_forward_keys{"command", "user", "group"};

/// Reads the exec keys of one [[forward]] table into `f`. On an exec forward "command" is
/// required and the keys that describe a door call or a read by the daemon (door, max_request,
/// once, proxy_protocol, proxy_protocol_from, read_timeout, idle_timeout) are refused: the
/// program reads the connection itself. On any other forward each exec key present is refused,
/// with a word on udp, which exec does not serve. `proto` is nullopt when the protocol is
/// missing or invalid: the values are then checked but not whether they apply.
void read_exec_keys(table_reader& r, std::optional<protocol> proto, forward_config& f, diagnostics& diag);

}  // namespace portunusd::config_detail
