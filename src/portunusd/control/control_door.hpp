// SPDX-License-Identifier: MPL-2.0
// control_door: the door `portunus status|reload|stop` calls, served by the daemon itself.
#pragma once

#include "portunusd/control/control_actions.hpp"

#include <portunus/door.hpp>

#include <sys/types.h>

#include <memory>
#include <optional>
#include <string>

namespace portunusd {

/// The daemon's control door. Its calls run on the door's own small thread pool, never on an
/// event loop, and reach the server only through `control_actions`. Only root and the daemon's
/// effective uid (at the time of each call) are served; anyone else gets a refusal and the log
/// a warning, even if the file's mode would let them in.
class control_door {
public:
    /// Creates the door at `path`: makes its directory (mode 0755, owned by the caller) if
    /// missing, attaches a door_server whose file is mode 0600, chowned to `owner`/`group` when
    /// given (the daemon creates it as root, then drops privileges to that user). A door another
    /// live process serves at `path` is left alone and is an error. Returns nullptr and sets
    /// `error` ("cannot create control door /path: ...").
    static std::unique_ptr<control_door> open(const std::string& path, control_actions actions,
                                              std::optional<uid_t> owner, std::optional<gid_t> group,
                                              std::string& error);

    /// Revokes the door, waits for the calls in flight and removes its file if it is still ours.
    ~control_door();

    control_door(const control_door&) = delete;
    control_door& operator=(const control_door&) = delete;

    [[nodiscard]] const std::string& path() const noexcept { return path_; }

private:
    control_door(std::string path, control_actions actions);
    portunus::door_reply handle(portunus::door_request& request);

    std::string path_;
    control_actions actions_;
    // Last: it is destroyed first, and its destructor waits for the handlers that use the above.
    portunus::door_server server_;
};

} // namespace portunusd
