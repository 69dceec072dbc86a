// SPDX-License-Identifier: MPL-2.0
// exec_session: one connection of an exec forward, handed to a new process as its stdin and stdout.
#pragma once

#include "portunusd/exec/exec_forward.hpp"
#include "portunusd/session/session_core.hpp"

#include <sys/types.h>

#include <memory>
#include <string>
#include <string_view>

namespace portunusd {

/// Waits for a slot under max_concurrency (in the forward's queue), starts the program on the
/// socket, and closes when the program exits, with its exit status as the access-log result.
/// call_timeout runs from the start of the connection: past it a queued connection is closed,
/// and a running program's process group is killed (SIGKILL) and its connection shut down.
/// The daemon never reads or writes the socket. Runs on the socket's loop.
class exec_session final : public session_core {
public:
    exec_session(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                 session_registry& registry, std::shared_ptr<exec_forward> exec);

    /// What tcp_listener runs for each connection of an exec forward: the forward's `room` is
    /// its exec_forward.
    static void start_new(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                          session_registry& registry);

    /// What the access log says of a wait status: "exit N" or "signal N".
    static std::string status_text(int status);

private:
    void on_start(std::string_view first) override;
    void on_readable(const boost::system::error_code&) override {}
    void on_timeout(const char* reason) override;
    void on_closed(std::string_view reason) override;
    [[nodiscard]] bool idle() const noexcept override { return pid_ < 0; }

    void on_turn();
    void run();
    void on_exit(int status);
    void cannot_start(const std::string& error);
    void give_back();

    std::shared_ptr<exec_forward> exec_;
    std::unique_ptr<spawn_job> job_; ///< the child may read it until it is reaped
    std::uint64_t queue_ticket_ = 0; ///< its place in the forward's queue while it waits there
    pid_t pid_ = -1;          ///< the running child, until it is reaped
    bool holds_slot_ = false; ///< of exec_'s max_concurrency
};

} // namespace portunusd
