// SPDX-License-Identifier: MPL-2.0
// control_bridge: the control door's requests, carried from its threads to the server's control strand.
#pragma once

#include "portunusd/control/control_actions.hpp"

#include <atomic>
#include <memory>

namespace portunusd {

class server;

/// Makes the control_actions a control door calls: each posts its work to the server's
/// control strand and waits for the answer within its deadline. Once the event loops have
/// stopped, nothing posted would ever run: close() makes every wait, present and future, end
/// at once, so that a control door thread never holds up the daemon's exit.
class control_bridge {
public:
    explicit control_bridge(server& srv);
    ~control_bridge();
    control_bridge(const control_bridge&) = delete;
    control_bridge& operator=(const control_bridge&) = delete;

    [[nodiscard]] control_actions actions();
    /// After the loops stopped; any thread.
    void close() noexcept;

private:
    server& server_;
    std::shared_ptr<struct bridge_state> state_;
};

} // namespace portunusd
