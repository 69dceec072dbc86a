// SPDX-License-Identifier: MPL-2.0
// app_registry: which supervised app serves a door path, readable from any thread.
#pragma once

#include "portunusd/supervise/app_supervisor.hpp"

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace portunusd {

/// The door gates ask it, from caller-pool threads, whether an app starts on demand behind a
/// door that would not open; the server updates it on the main loop at start and on reload.
class app_registry {
public:
    /// Replaces the whole set (the server's current apps).
    void set(const std::vector<std::shared_ptr<app_supervisor>>& apps)
    {
        std::map<std::string, entry> next;
        for (const auto& app : apps)
            if (app->config().start == app_start::on_demand)
                next[app->config().door] = {app, app->config().start_timeout};
        std::lock_guard lock(mutex_);
        by_door_ = std::move(next);
    }

    /// Wakes the on-demand app behind `door`, if any, and returns how long its start may take
    /// (zero when no app starts on demand there: the door is simply not served).
    std::chrono::milliseconds wake(const std::string& door) const
    {
        std::shared_ptr<app_supervisor> app;
        std::chrono::milliseconds timeout{0};
        {
            std::lock_guard lock(mutex_);
            const auto it = by_door_.find(door);
            if (it == by_door_.end()) return timeout;
            app = it->second.app.lock();
            timeout = it->second.start_timeout;
        }
        if (!app) return std::chrono::milliseconds{0};
        app->wake();
        return timeout;
    }

private:
    struct entry {
        std::weak_ptr<app_supervisor> app;
        std::chrono::milliseconds start_timeout{0};
    };
    mutable std::mutex mutex_;
    std::map<std::string, entry> by_door_; // guarded by mutex_
};

} // namespace portunusd
