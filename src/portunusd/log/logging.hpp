// SPDX-License-Identifier: MPL-2.0
// Logging set-up: the daemon log (stderr or syslog) and the optional access log.
#pragma once

#include "portunusd/config/config.hpp"

#include <spdlog/spdlog.h>

#include <memory>
#include <string>

namespace portunusd {

/// Installs the daemon logger as spdlog's default and the access logger, from `cfg`.
/// `extra_verbosity` (from -v/-d) lowers the level below the configured one. Returns an error
/// message, or empty on success. Call again on reload; safe while other threads log.
std::string setup_logging(const daemon_config& cfg, int extra_verbosity);

/// The access logger, or null when access_log = "off".
std::shared_ptr<spdlog::logger> access_logger();

} // namespace portunusd
