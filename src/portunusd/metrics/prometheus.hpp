// SPDX-License-Identifier: MPL-2.0
// The /metrics page: a daemon snapshot and the process's stats in the Prometheus text format.
#pragma once

#include "portunusd/metrics/process_stats.hpp"
#include "portunusd/metrics/snapshot.hpp"

#include <string>
#include <string_view>

namespace portunusd {

/// The Content-Type of the text exposition format this page follows.
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

/// The whole page in the text exposition format 0.0.4: a HELP and a TYPE line for every family,
/// each family's samples together, counters ending in _total, base units. Per forward the
/// labels are forward and protocol, per door forward and door. Label values are escaped as the
/// format requires (backslash, double quote, newline); the snapshot's text may hold anything.
/// Pure.
std::string render_prometheus(const daemon_snapshot& snapshot, const process_stats& process);

/// Appends `value` escaped for a label value: \ becomes \\, " becomes \", a newline \n.
void append_label_value(std::string& out, std::string_view value);

} // namespace portunusd
