// SPDX-License-Identifier: MPL-2.0
// The keys of [[forward]] that only http forwards take, and their [[forward.map]] routes.
#pragma once

#include "portunusd/config/config_reader.hpp"

#include <array>
#include <optional>
#include <span>
#include <string_view>

namespace portunusd::config_detail {

/// Keys of a [[forward]] table that only http forwards take; "map" holds the [[forward.map]] tables.
inline constexpr std::array<std::string_view, 6> http_forward_keys{
    "map", "max_header_bytes", "max_headers", "max_body", "header_timeout", "max_requests",
};

/// The keys of a [[forward.map]] table.
inline constexpr std::array<std::string_view, 3> http_map_keys{"method", "prefix", "door"};

/// Reads the http-only keys of one [[forward]] table into `f`, checking every [[forward.map]]
/// and the maps against each other. `proto` is nullopt when the protocol is missing or invalid:
/// the values are then checked but not whether they apply. On a tcp or udp forward each key
/// present is reported as misplaced. `map_elsewhere` points keys misplaced in a map to their
/// home. Returns true when the forward has a "map" key that is not an empty array, whether or
/// not its tables are valid, so that the caller does not also demand a door.
bool read_http_keys(table_reader& r, std::optional<protocol> proto, forward_config& f, diagnostics& diag,
                    std::span<const other_table> map_elsewhere);

}  // namespace portunusd::config_detail
