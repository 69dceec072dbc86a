// SPDX-License-Identifier: MPL-2.0
// child_process: starting an application as another user, with nothing of the daemon's but a pipe for its output.
#pragma once

#include <portunus/unique_fd.hpp>

#include <sys/types.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace portunusd {

/// Who and what to run.
struct spawn_spec {
    std::vector<std::string> argv; ///< argv[0] is an absolute path; no PATH search
    std::vector<std::pair<std::string, std::string>> environment; ///< the whole environment
    std::string working_directory = "/";
    /// Set: switch to these ids (and supplementary groups) in the child before exec.
    std::optional<uid_t> uid;
    std::optional<gid_t> gid;
    std::vector<gid_t> groups; ///< supplementary groups, with uid
};

/// A started child: its pid and the read end of the pipe its stdout and stderr share.
struct spawned_child {
    pid_t pid = -1;
    portunus::unique_fd output; ///< non-blocking, close-on-exec
};

/// Looks up the supplementary groups of `user` (for spawn_spec::groups), outside any child:
/// the lookup reads files and may allocate, which a forked child of a threaded process must not.
std::vector<gid_t> groups_of(const std::string& user, gid_t primary);

/// Fills the ids of `spec` for `user` and `group` (either may be absent: the other's, or the
/// user's primary group). Returns an error message, or empty.
std::string set_account(spawn_spec& spec, const std::optional<std::string>& user,
                        const std::optional<std::string>& group);

/// Forks and execs `spec`. The child starts with a clean signal mask and default dispositions,
/// in a session of its own (a signal meant for the daemon's group never reaches it), stdin
/// from /dev/null, stdout and stderr into the returned pipe, and no other descriptor of the
/// daemon's. Every failure up to and including execve() is reported here, synchronously, as
/// "cannot start ARGV0: REASON"; the child then never ran the program.
std::optional<spawned_child> spawn(const spawn_spec& spec, std::string& error);

} // namespace portunusd
