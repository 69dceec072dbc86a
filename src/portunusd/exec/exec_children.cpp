// SPDX-License-Identifier: MPL-2.0
// Reaping exec children by pid with WNOHANG, so that the apps' own reaping is never disturbed.
#include "portunusd/exec/exec_children.hpp"

#include <boost/asio/post.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <cerrno>
#include <utility>
#include <vector>

namespace portunusd {

void exec_children::kill_all() noexcept
{
    std::unordered_map<pid_t, entry> left;
    {
        std::lock_guard lock(mutex_);
        for (const auto& [pid, e] : live_)
            if (::kill(-pid, SIGKILL) != 0) ::kill(pid, SIGKILL);
        // The daemon is exiting: what the sessions hold for children that may still share
        // its memory (exec_spawn) goes with the process, whose children are dying.
        left.swap(live_);
    }
}

bool exec_children::try_reap(pid_t pid, int& status) noexcept
{
    for (;;) {
        const pid_t got = ::waitpid(pid, &status, WNOHANG);
        if (got == pid) return true;
        if (got < 0 && errno == EINTR) continue;
        // ECHILD: reaped by someone else, which nothing in the daemon does; forget it.
        if (got < 0) {
            status = 0;
            return true;
        }
        return false;
    }
}

void exec_children::add(pid_t pid, boost::asio::any_io_executor loop, on_exit done)
{
    int status = 0;
    {
        std::lock_guard lock(mutex_);
        if (!try_reap(pid, status)) {
            live_.emplace(pid, entry{std::move(loop), std::move(done)});
            return;
        }
    }
    boost::asio::post(loop, [done = std::move(done), status] { done(status); });
}

void exec_children::reap()
{
    std::vector<std::pair<entry, int>> ended;
    {
        std::lock_guard lock(mutex_);
        for (auto it = live_.begin(); it != live_.end();) {
            int status = 0;
            if (try_reap(it->first, status)) {
                ended.emplace_back(std::move(it->second), status);
                it = live_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (auto& [e, status] : ended) boost::asio::post(e.loop, [done = std::move(e.done), s = status] { done(s); });
}

bool exec_children::signal(pid_t pid, int sig)
{
    std::lock_guard lock(mutex_);
    if (live_.find(pid) == live_.end()) return false;
    // The group takes whatever the program started too; a child that has not become a group
    // leader yet (it cannot be: spawn returns after its exec) is signalled alone.
    if (::kill(-pid, sig) != 0) ::kill(pid, sig);
    return true;
}

std::size_t exec_children::size() const
{
    std::lock_guard lock(mutex_);
    return live_.size();
}

} // namespace portunusd
