// SPDX-License-Identifier: MPL-2.0
// Health decisions: pure functions of a snapshot, so the listener only serves what they say.
#include "portunusd/metrics/health.hpp"

namespace portunusd {

health_verdict daemon_health(const daemon_snapshot& s)
{
    if (s.draining) return {503, "draining\n"};
    return {};
}

health_verdict forward_health(const daemon_snapshot& s, std::string_view name)
{
    for (const auto& f : s.forwards) {
        if (f.name != name) continue;
        if (s.draining) return {503, "draining\n"};
        std::string reasons;
        for (const auto& d : f.doors)
            if (d.state == "missing" || d.state == "failing") reasons += "door " + d.state + ": " + d.path + "\n";
        if (!reasons.empty()) return {503, std::move(reasons)};
        return {};
    }
    return {404, "no such forward\n"};
}

} // namespace portunusd
