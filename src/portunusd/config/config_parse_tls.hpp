// SPDX-License-Identifier: MPL-2.0
// The keys of [[forward]] that only tls and https forwards take, and reading their PEM files.
#pragma once

#include "portunusd/config/config_reader.hpp"

#include <array>
#include <optional>
#include <string_view>

namespace portunusd::config_detail {

/// Keys of a [[forward]] table that only tls and https forwards take.
inline constexpr std::array<std::string_view, 4> tls_forward_keys{"certificate", "private_key", "tls_min_version",
                                                                  "handshake_timeout"};

/// Reads the TLS keys of one [[forward]] table into `f.tls` (set by the protocol "tls" or
/// "https"): certificate and private_key are required there, absolute paths. On any other
/// forward each TLS key present is refused. `proto` is nullopt when the protocol is missing or
/// invalid: the values are then checked but not whether they apply.
void read_tls_keys(table_reader& r, std::optional<protocol> proto, forward_config& f, diagnostics& diag);

}  // namespace portunusd::config_detail
