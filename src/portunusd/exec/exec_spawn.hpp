// SPDX-License-Identifier: MPL-2.0
// exec_spawn: starting one program on one connection, without copying the daemon (vfork semantics).
#pragma once

#include "portunusd/supervise/child_process.hpp"

#include <sys/types.h>

#include <string>
#include <vector>

namespace portunusd {

/// What every child of one exec forward runs, prepared once: the C strings execve() takes and
/// the account to switch to. Immutable after make(); any thread may spawn from it.
class exec_program {
public:
    /// `spec` as supervise's set_account() filled it (argv, ids, groups, base environment).
    explicit exec_program(spawn_spec spec);

    /// Starts the program with `socket` as its stdin and stdout and `error_out` as its stderr,
    /// `extra_env` ("NAME=value") after the base environment. The child runs in a session of its
    /// own, with an empty signal mask, every disposition at its default, no descriptor but 0, 1
    /// and 2, in "/". The calling thread is suspended until the child has called execve() (or
    /// failed to): the daemon's memory is never copied. Returns the pid, or -1 when no child
    /// was made; `error` is set ("STEP: REASON") when none was made or the child failed before
    /// the program ran (it exits 127 then). A child is the caller's to reap, failed or not.
    pid_t spawn(int socket, int error_out, const std::vector<std::string>& extra_env, std::string& error) const;

    [[nodiscard]] const std::string& path() const noexcept { return spec_.argv.front(); }

private:
    spawn_spec spec_;
    std::vector<std::string> env_strings_;
    std::vector<char*> argv_;
};

} // namespace portunusd
