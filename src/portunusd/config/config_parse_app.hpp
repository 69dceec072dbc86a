// SPDX-License-Identifier: MPL-2.0
// The [[app]] tables: the applications the daemon supervises, and the checks between them.
#pragma once

#include "portunusd/config/config_reader.hpp"

#include <array>
#include <span>
#include <string_view>
#include <vector>

namespace portunusd::config_detail {

/// The keys of an [[app]] table.
inline constexpr std::array<std::string_view, 17> app_keys{
    "name", "door", "command", "user", "group", "working_directory", "environment", "start", "start_timeout",
    "idle_stop", "instances", "restart_delay", "restart_max_delay", "max_calls", "max_memory",
    "upgrade_on_change", "stop_timeout",
};

/// The program and its arguments ("command", of an [[app]] or an exec [[forward]]): an array of
/// strings without NUL bytes whose first is an absolute path. `at` gets the position of command[0].
std::optional<std::vector<std::string>> read_command(table_reader& r, diagnostics& diag, file_position& at);

file_position file_position_of(position p) noexcept;

/// Reads every [[app]] of `root`, if any, and checks them against each other: names and doors,
/// instance doors included, are unique. `elsewhere` points keys misplaced in an app to their
/// home. The apps are complete only when no error was reported.
std::vector<app_config> read_apps(const toml::table& root, diagnostics& diag, std::span<const other_table> elsewhere);

}  // namespace portunusd::config_detail
