// SPDX-License-Identifier: MPL-2.0
// What `portunus status` prints: a daemon_snapshot as an aligned table, or as JSON.
#pragma once

#include "portunusd/metrics/snapshot.hpp"

#include <string>

namespace portunusd {

/// The human report: a header (version, pid, uptime, configuration, serving or draining), then
/// one row per forward with its doors beneath it and its failures by kind when there are any,
/// then one row per supervised application, if any.
/// Pure: times are computed from the snapshot alone and shown in UTC; text taken from the
/// configuration has its control bytes escaped.
std::string render_status_text(const daemon_snapshot& s);

/// The whole snapshot as one line of JSON and a line feed, in the shape portunus(1) documents
/// field by field (that shape is a stable interface: add fields, never rename or drop one).
std::string render_status_json(const daemon_snapshot& s);

} // namespace portunusd
