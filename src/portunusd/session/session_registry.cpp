// SPDX-License-Identifier: MPL-2.0
// The registry of open sessions, which stop and drain walk.
#include "portunusd/session/session_registry.hpp"

#include <vector>

namespace portunusd {

void session_registry::add(const std::shared_ptr<session_base>& s)
{
    std::lock_guard lock(mutex_);
    sessions_.emplace(s.get(), s);
}

void session_registry::remove(const session_base* s)
{
    std::lock_guard lock(mutex_);
    sessions_.erase(s);
}

void session_registry::drain_all()
{
    std::vector<std::shared_ptr<session_base>> all;
    {
        std::lock_guard lock(mutex_);
        for (auto& [key, weak] : sessions_)
            if (auto s = weak.lock()) all.push_back(std::move(s));
    }
    for (auto& s : all) s->drain();
}

std::size_t session_registry::size() const
{
    std::lock_guard lock(mutex_);
    return sessions_.size();
}

} // namespace portunusd
