// SPDX-License-Identifier: MPL-2.0
// server: the listeners of every forward, reload, drain, and the event loop's threads.
#pragma once

#include "portunusd/calls/caller_pool.hpp"
#include "portunusd/config/config.hpp"
#include "portunusd/control/control_actions.hpp"
#include "portunusd/exec/exec_children.hpp"
#include "portunusd/metrics/snapshot.hpp"
#include "portunusd/session/connection_limit.hpp"
#include "portunusd/net/event_loops.hpp"
#include "portunusd/service/passed_sockets.hpp"
#include "portunusd/service/service_notifier.hpp"
#include "portunusd/session/tcp_listener.hpp"
#include "portunusd/session/tcp_session.hpp"
#include "portunusd/session/udp_relay.hpp"
#include "portunusd/supervise/app_registry.hpp"
#include "portunusd/supervise/app_supervisor.hpp"

#include <boost/asio.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace portunusd {

/// One forward as the server runs it: its listener (tcp or udp) and its shared state.
struct running_forward {
    std::shared_ptr<forward_state> state;
    std::shared_ptr<tcp_listener> tcp;
    std::shared_ptr<udp_relay> udp;
};

/// Owns the event loop and every listener. Start-up: bind() then run(). reload() and
/// begin_stop() may be called from the loop's signal handler.
class server {
public:
    explicit server(config cfg);
    ~server();

    /// Sockets a service manager opened (LISTEN_FDS): bind() uses them for the forwards they
    /// fit, instead of binding, and closes the rest with a warning. Before bind().
    void adopt(passed_sockets passed) { passed_ = std::move(passed); }
    /// Binds every forward's socket. Returns one message per failure ("cannot bind ...").
    std::vector<std::string> bind();
    /// Runs the event loops, one per configured thread, until stopped; returns the exit status
    /// (0 after a clean stop).
    int run();
    /// Stops every event loop now, without draining. Any thread.
    void stop_now() noexcept { loops_.stop(); }
    /// Applies a new, already validated configuration without dropping connections of
    /// forwards whose listen address stays. `done`, if given, gets what changed once every new
    /// listener is bound (or could not be). On the control strand.
    void reload(config next, std::function<void(reload_report)> done = {});
    /// Where the configuration came from, and the -v count its log settings keep on reload.
    void set_config_file(std::string file, int verbosity);
    /// Reads the configuration file again and applies it; an invalid one is reported (to the log
    /// and to `done`) and the running one kept. On the control strand.
    void reload_file(std::function<void(reload_report)> done = {});
    /// After stop_grace (while /health answers 503), stops accepting, lets calls in flight
    /// finish within drain_timeout (or `drain`, if given), then stops the loop.
    void begin_stop(const char* why, std::optional<std::chrono::milliseconds> drain = std::nullopt);
    [[nodiscard]] bool draining() const noexcept { return stopping_; }
    /// Every forward's state and counters now. On the main loop (the control strand runs there).
    [[nodiscard]] daemon_snapshot snapshot() const;
    /// Replaces the app's process without a failed call (portunus restart). False: no such app.
    bool restart_app(const std::string& name);

    [[nodiscard]] boost::asio::io_context& io() noexcept { return loops_.main(); }
    /// The strand that serialises reload, stop and drain; signal handlers must run on it.
    [[nodiscard]] boost::asio::strand<boost::asio::io_context::executor_type>& control() noexcept { return control_; }
    /// Door calls running or queued, across every forward.
    [[nodiscard]] std::size_t calls_in_flight() const;
    [[nodiscard]] const config& current() const noexcept { return config_; }

private:
    static std::string key_of(const forward_config& f);
    std::shared_ptr<forward_state> make_state(const forward_config& f, std::shared_ptr<forward_stats> stats);
    bool open_forward(const forward_config& f, std::shared_ptr<forward_stats> stats, std::string& error,
                      running_forward& out, boost::system::error_code* cause = nullptr);
    void bind_added(std::vector<forward_config> pending, int retries, reload_report report,
                    std::function<void(reload_report)> done);
    void start_forward(running_forward& r);
    [[nodiscard]] std::string serving_status() const;
    void stop_forward(running_forward& r);
    void start_drain(const char* why, std::chrono::milliseconds timeout);
    void check_drained();
    void note_instances(const std::vector<app_config>& apps);
    void start_apps();
    void reconcile_apps(const std::vector<app_config>& next);
    /// An [[app]] as written, and a supervisor per instance.
    struct app_entry {
        app_config config;
        std::vector<std::shared_ptr<app_supervisor>> instances;
    };
    app_entry make_app(const app_config& a);
    void update_registry();
    void wait_for_children();
    void stop_apps_then_exit();

    config config_;
    // Destruction runs bottom-up: the caller pool is joined first (its jobs post to the loops),
    // then the loops destroy pending handlers, which may destroy sessions that still use limit_
    // and sessions_, so those two must outlive loops_.
    connection_limit limit_;
    session_registry sessions_;
    event_loops loops_;
    boost::asio::strand<boost::asio::io_context::executor_type> control_;
    caller_pool callers_;
    std::map<std::string, running_forward> forwards_;
    /// Every gate made, the current forwards' and those that earlier configurations left to
    /// their open sessions, so that exit can release the calls all of them still wait for.
    std::vector<std::weak_ptr<door_gate>> gates_made_;
    boost::asio::steady_timer drain_timer_;
    boost::asio::steady_timer drain_poll_;
    boost::asio::steady_timer rebind_timer_;
    bool stopping_ = false;
    // Supervised apps by name, on the main loop; the registry lets door gates wake them.
    std::map<std::string, app_entry> apps_;
    std::vector<std::shared_ptr<app_supervisor>> apps_leaving_; ///< removed or replaced, until they exit
    std::shared_ptr<app_registry> registry_ = std::make_shared<app_registry>();
    std::map<std::string, std::vector<std::string>> instances_by_door_; ///< an app's door -> its instances' doors
    boost::asio::signal_set children_;
    /// Every exec forward's children, reaped by the same SIGCHLD handler as the apps.
    std::shared_ptr<exec_children> exec_children_ = std::make_shared<exec_children>();
    bool watching_children_ = false;
    bool waiting_for_children_ = false;
    std::string config_file_;
    int verbosity_ = 0;
    passed_sockets passed_;    ///< until bind() has given them to forwards
    service_notifier notify_;  ///< READY, RELOADING, STOPPING for a service manager
    std::chrono::system_clock::time_point started_ = std::chrono::system_clock::now();
    std::chrono::steady_clock::time_point started_steady_ = std::chrono::steady_clock::now();
    std::chrono::system_clock::time_point config_loaded_ = started_;
};

} // namespace portunusd
