// SPDX-License-Identifier: MPL-2.0
// exec_spawn: starting one program on one connection, without copying the daemon.
#pragma once

#include "portunusd/supervise/child_process.hpp"

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

namespace portunusd {

/// What one child needs until it has called execve(): its arguments, environment and stack,
/// and where it reports a failure before exec. Owned by the caller until the child is reaped:
/// the child may still be reading it (or writing its failure) while the caller goes on.
class spawn_job {
public:
    spawn_job();
    ~spawn_job();
    spawn_job(const spawn_job&) = delete;
    spawn_job& operator=(const spawn_job&) = delete;

    /// After the child was reaped: "STEP: REASON" when it failed before the program ran (it
    /// exited 127 then), else empty.
    [[nodiscard]] std::string failure() const;

    struct args; ///< what the child reads, defined where it runs (exec_spawn.cpp)

private:
    friend class exec_program;
    std::unique_ptr<args> args_;
    std::vector<std::string> env_;
    std::vector<char*> envp_;
    std::unique_ptr<unsigned char[]> stack_;
};

/// What every child of one exec forward runs, prepared once: the C strings execve() takes and
/// the account to switch to. Immutable after construction; any thread may spawn from it.
class exec_program {
public:
    /// `spec` as supervise's set_account() filled it (argv, ids, groups, base environment).
    explicit exec_program(spawn_spec spec);

    /// Starts the program with `socket` as its stdin and stdout and `error_out` as its stderr,
    /// `extra_env` ("NAME=value") after the base environment. The child runs in a session of its
    /// own, with an empty signal mask, every disposition at its default, no descriptor but 0, 1
    /// and 2, in "/". The daemon's memory is never copied: on Linux (x86-64, arm64) the child
    /// shares it until execve() and the caller goes on at once, elsewhere the caller is
    /// suspended until then (vfork). Returns the pid, or -1 with `error` set when no child was
    /// made. `job` and this program must outlive the child's reaping; the child is the
    /// caller's to reap.
    pid_t spawn(int socket, int error_out, std::vector<std::string> extra_env, spawn_job& job,
                std::string& error) const;

    [[nodiscard]] const std::string& path() const noexcept { return spec_.argv.front(); }

private:
    spawn_spec spec_;
    std::vector<std::string> env_strings_;
    std::vector<char*> argv_;
};

} // namespace portunusd
