// SPDX-License-Identifier: MPL-2.0
// pass_session: one client connection of a pass forward, handed to the application whole.
#pragma once

#include "portunusd/session/session_core.hpp"

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace portunusd {

/// Hands its socket to the forward's door in one call and ends when that call does: at the
/// hand-off, or, with pass_hold, when the application is done. The daemon never reads the
/// client's stream (only a PROXY header, in session_core) and never writes to it. Its one
/// access-log line says `passed` or why not. All of it runs on the socket's loop but the
/// call's completion, which shuts a failed socket down on a pool thread.
class pass_session final : public session_core {
public:
    using session_core::session_core;

    /// What tcp_listener runs for each connection of a pass forward.
    static void start_new(accepted_connection c, std::shared_ptr<forward_state> forward, connection_limit& limit,
                          session_registry& registry);

private:
    void on_start(std::string_view first) override;
    void on_readable(const boost::system::error_code&) override {}
    void on_timeout(const char* reason) override { close(reason); }
    void on_closed(std::string_view reason) override;
    [[nodiscard]] bool idle() const noexcept override { return !calling_; }

    /// The call ended: `refusal` is the application's reason for not taking the socket.
    void on_answer(const call_outcome& outcome);
    [[nodiscard]] std::string header_for(int fd, std::string_view early) const;

    bool calling_ = false;
};

} // namespace portunusd
