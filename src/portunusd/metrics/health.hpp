// SPDX-License-Identifier: MPL-2.0
// health: whether the daemon, or one forward of it, should get traffic, decided from a snapshot.
#pragma once

#include "portunusd/metrics/snapshot.hpp"

#include <string>
#include <string_view>

namespace portunusd {

/// The answer to a health check: the HTTP status and a body of one line per reason.
struct health_verdict {
    int status = 200;
    std::string body = "ok\n";

    bool operator==(const health_verdict&) const = default;
};

/// GET /health: 200 "ok" while the daemon serves, 503 "draining" once it drains. Pure.
health_verdict daemon_health(const daemon_snapshot& s);

/// GET /health/NAME: 404 "no such forward" when no forward has that name; 503 "draining" while
/// the daemon drains; 503 with one line per door that is missing or failing ("door missing:
/// /path"); else 200 "ok". An unopened door counts as healthy: nothing has needed it yet. Pure.
health_verdict forward_health(const daemon_snapshot& s, std::string_view name);

} // namespace portunusd
