// SPDX-License-Identifier: MPL-2.0
// Dropping root after the listening sockets are bound.
#pragma once

#include <optional>
#include <string>

#include <sys/types.h>

namespace portunusd {

/// Whom the daemon runs as once privileges are dropped.
struct account {
    uid_t uid = 0;
    gid_t gid = 0;
    std::string name; ///< empty when no user was named
};

/// Looks up `user` and `group` as drop_privileges() would (neither: the current ids). Returns
/// an error message, or empty on success.
std::string resolve_account(const std::optional<std::string>& user, const std::optional<std::string>& group,
                            account& out);

/// Switches to `user` (and `group`, or the user's primary group) for good, supplementary groups
/// included. Nothing to do when neither is set. Returns an error message, or empty on success.
/// With `keep_setid`, the daemon keeps exactly the right to change credentials (Linux:
/// CAP_SETUID and CAP_SETGID), which only a forked child uses, to become an app's user before
/// exec, and the right to signal processes of other users (CAP_KILL), to stop its apps;
/// everything else is dropped.
std::string drop_privileges(const std::optional<std::string>& user, const std::optional<std::string>& group,
                            bool keep_setid = false);

/// Once the listeners are bound and the control door is made: on illumos, net_privaddr (which
/// an SMF method_credential grants so that the daemon can bind ports below 1024 without being
/// root) and file_dac_write (granted so that it can make its own directory under /var/run)
/// leave every privilege set, so a reload can no longer bind such a port (a restart can).
/// Nothing to do elsewhere. Returns an error message, or empty on success.
std::string drop_startup_privileges();

} // namespace portunusd
