// SPDX-License-Identifier: MPL-2.0
// app_supervisor: one [[app]]'s process: started always or on the first call, restarted with
// backoff after a crash, stopped when idle, replaced without a failed call.
#pragma once

#include "portunusd/config/config.hpp"
#include "portunusd/metrics/snapshot.hpp"
#include "portunusd/net/file_identity.hpp"
#include "portunusd/supervise/child_process.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

namespace portunusd {

/// Calls made to an app's door so far and running now, summed over every gate that calls it:
/// what idle_stop and max_calls decide on. Called on the main loop.
struct app_load {
    std::uint64_t calls_ended = 0;
    std::uint64_t in_flight = 0;
};

/// Runs one app on the daemon's main loop. Every member but wake() is called on that loop.
class app_supervisor : public std::enable_shared_from_this<app_supervisor> {
public:
    enum class state { stopped, starting, serving, backing_off, stopping, idle };

    /// `load` reports the calls its doors have had (see app_load).
    app_supervisor(boost::asio::io_context& main, app_config cfg, std::function<app_load()> load);
    ~app_supervisor();
    app_supervisor(const app_supervisor&) = delete;
    app_supervisor& operator=(const app_supervisor&) = delete;

    /// Starts it now if `start = "always"`; an on-demand app waits for wake().
    void begin();
    /// An on-demand app is wanted: start it unless it runs or is starting. Any thread.
    void wake();
    /// Starts a replacement, waits for its door, then stops the old process (which finishes the
    /// calls it has): no call fails. Without a running process, a plain start.
    void restart(const char* why);
    /// SIGTERM, then SIGKILL after stop_timeout; no restart after. `done` runs once it exited.
    void stop(std::function<void()> done = {});
    /// A child may have exited (SIGCHLD): reaps ours without waiting.
    void reap();

    [[nodiscard]] const app_config& config() const noexcept { return cfg_; }
    [[nodiscard]] state current() const noexcept { return state_; }
    [[nodiscard]] pid_t pid() const noexcept { return child_ ? child_->pid : -1; }
    [[nodiscard]] app_snapshot snapshot() const;
    /// Told (on the main loop) when a process starts serving the door (true) and when the
    /// process new calls go to exits (false), so callers can stop choosing a dead instance.
    void on_serving(std::function<void(const std::string& door, bool serving)> hook) { serving_hook_ = std::move(hook); }

private:
    struct running {
        pid_t pid = -1;
        boost::asio::posix::stream_descriptor output;
        boost::asio::steady_timer kill_timer;
        std::string partial; // output after the last newline
        std::chrono::steady_clock::time_point started;
        std::uint64_t calls_at_start = 0;
        bool stopping = false;
        bool exited = false;
        running(boost::asio::io_context& io, spawned_child c);
    };
    using file_id = file_identity;

    void start_process(const char* why);
    void read_output(const std::shared_ptr<running>& r);
    void flush_line(running& r, std::string_view line);
    void watch_door(std::shared_ptr<running> r, std::optional<file_id> before,
                    std::chrono::steady_clock::time_point deadline);
    void exited(const std::shared_ptr<running>& r, int status);
    void schedule_restart();
    void terminate(const std::shared_ptr<running>& r);
    void tick();
    void set_state(state s);

    boost::asio::io_context& io_;
    app_config cfg_;
    std::function<app_load()> load_;
    std::shared_ptr<running> child_;  // the process new calls go to
    std::shared_ptr<running> retiring_; // a replaced process finishing its calls
    state state_ = state::stopped;
    boost::asio::steady_timer restart_timer_;
    boost::asio::steady_timer door_timer_;
    boost::asio::steady_timer tick_timer_;
    std::chrono::milliseconds delay_;
    std::uint64_t restarts_ = 0;
    std::uint64_t starts_ = 0;
    std::string last_exit_;
    std::chrono::steady_clock::time_point last_call_seen_;
    std::uint64_t calls_seen_ = 0;
    std::function<void()> stopped_;
    std::function<void(const std::string&, bool)> serving_hook_;
    bool stop_asked_ = false;
    std::optional<file_id> exe_; // of command[0] when the serving process started
};

[[nodiscard]] const char* to_string(app_supervisor::state s) noexcept;

} // namespace portunusd
