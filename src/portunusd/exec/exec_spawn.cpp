// SPDX-License-Identifier: MPL-2.0
// Spawning without fork(): clone(CLONE_VM | CLONE_VFORK) on Linux, vfork() elsewhere, and only
// raw system calls in the child.
#include "portunusd/exec/exec_spawn.hpp"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>

// Linux builds use clone(); the illumos compile check and other systems take the vfork() path.
#if defined(__linux__) && !defined(PORTUNUS_DOOR_ILLUMOS)
#define PORTUNUSD_EXEC_CLONE 1
#include <sched.h>
#include <sys/syscall.h>
#else
#define PORTUNUSD_EXEC_CLONE 0
#endif

namespace portunusd {

namespace {

enum step : int { step_none, step_session, step_dup, step_groups, step_gid, step_uid, step_chdir, step_exec };

const char* step_text(int s)
{
    switch (s) {
    case step_session: return "starting a session";
    case step_dup: return "setting up its standard descriptors";
    case step_groups: return "setting its groups";
    case step_gid: return "switching group";
    case step_uid: return "switching user";
    case step_chdir: return "entering /";
    default: return "exec";
    }
}

// Everything the child reads, prepared by the parent; the child writes `step` and `error` back
// through the memory it shares with the suspended parent.
struct child_args {
    char* const* argv;
    char* const* envp;
    int socket;
    int error_out;
    const spawn_spec* spec;
    int step = step_none;
    int error = 0;
};

#if PORTUNUSD_EXEC_CLONE
// The child shares the daemon's memory, and glibc believes it is still the daemon: its
// set*id() wrappers would signal every thread of the daemon to change their credentials too
// (the setxid broadcast), and its sigaction() and dup2() are intercepted under ASan. System
// calls made directly touch only the child.
long sys(long number, long a = 0, long b = 0, long c = 0, long d = 0) noexcept
{
    return ::syscall(number, a, b, c, d);
}

void reset_signals() noexcept
{
    // The kernel's struct sigaction, all zero: SIG_DFL, no flags, no restorer, an empty mask,
    // whichever of the layouts the architecture has. The kernel's sigset_t is 8 bytes.
    alignas(8) static const unsigned char dfl[64] = {};
    for (int s = 1; s < 65; ++s)
        if (s != SIGKILL && s != SIGSTOP) sys(SYS_rt_sigaction, s, reinterpret_cast<long>(dfl), 0, 8);
}

void unblock_signals() noexcept
{
    alignas(8) static const unsigned char none[8] = {};
    sys(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(none), 0, 8);
}

bool move_to(int from, int to) noexcept { return sys(SYS_dup3, from, to, 0) >= 0; }
void close_others() noexcept
{
    // Every descriptor the daemon makes is close-on-exec already; this also covers any a
    // library opened without it. Kernels before 5.9 lack close_range: close-on-exec remains.
#if defined(SYS_close_range)
    sys(SYS_close_range, 3, static_cast<long>(~0U), 0);
#endif
}
bool set_session() noexcept { return sys(SYS_setsid) >= 0; }
bool set_groups(const std::vector<gid_t>& g) noexcept
{
    return sys(SYS_setgroups, static_cast<long>(g.size()), reinterpret_cast<long>(g.data())) == 0;
}
bool set_gid(gid_t gid) noexcept { return sys(SYS_setresgid, gid, gid, gid) == 0; }
bool set_uid(uid_t uid) noexcept { return sys(SYS_setresuid, uid, uid, uid) == 0; }
bool enter(const char* dir) noexcept { return sys(SYS_chdir, reinterpret_cast<long>(dir)) == 0; }
void run(child_args& a) noexcept
{
    sys(SYS_execve, reinterpret_cast<long>(a.argv[0]), reinterpret_cast<long>(a.argv),
        reinterpret_cast<long>(a.envp));
}
[[noreturn]] void leave() noexcept
{
    for (;;) sys(SYS_exit_group, 127);
}
#else
// vfork() children on illumos: credentials belong to the process there, so setuid() changes
// the child alone, and these calls are async-signal-safe.
void reset_signals() noexcept
{
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; ++s)
        if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &dfl, nullptr);
}
void unblock_signals() noexcept
{
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}
bool move_to(int from, int to) noexcept { return ::dup2(from, to) >= 0; }
void close_others() noexcept {} // every descriptor of the daemon's is close-on-exec
bool set_session() noexcept { return ::setsid() >= 0; }
bool set_groups(const std::vector<gid_t>& g) noexcept { return ::setgroups(static_cast<int>(g.size()), g.data()) == 0; }
bool set_gid(gid_t gid) noexcept { return ::setgid(gid) == 0; }
bool set_uid(uid_t uid) noexcept { return ::setuid(uid) == 0; }
bool enter(const char* dir) noexcept { return ::chdir(dir) == 0; }
void run(child_args& a) noexcept { ::execve(a.argv[0], a.argv, a.envp); }
[[noreturn]] void leave() noexcept { ::_exit(127); }
#endif

#if defined(__GNUC__)
#define PORTUNUSD_NO_SANITIZE __attribute__((no_sanitize("address", "undefined")))
#else
#define PORTUNUSD_NO_SANITIZE
#endif

[[noreturn]] PORTUNUSD_NO_SANITIZE void fail(child_args& a, int s) noexcept
{
    a.step = s;
    a.error = errno;
    leave();
}

// The child, up to execve(). Signals stay blocked (the parent blocked them all) until the
// dispositions are back to their defaults, so no handler of the daemon's runs in the child.
[[noreturn]] PORTUNUSD_NO_SANITIZE void child_steps(child_args& a) noexcept
{
    reset_signals();
    if (!set_session()) fail(a, step_session);
    if (!move_to(a.socket, 0) || !move_to(a.socket, 1) || !move_to(a.error_out, 2)) fail(a, step_dup);
    close_others();
    const spawn_spec& spec = *a.spec;
    if (spec.uid && !set_groups(spec.groups)) fail(a, step_groups);
    if (spec.gid && !set_gid(*spec.gid)) fail(a, step_gid);
    if (spec.uid && !set_uid(*spec.uid)) fail(a, step_uid);
    if (!enter(spec.working_directory.c_str())) fail(a, step_chdir);
    unblock_signals();
    run(a);
    fail(a, step_exec);
}

#if PORTUNUSD_EXEC_CLONE
PORTUNUSD_NO_SANITIZE int child_main(void* p) { child_steps(*static_cast<child_args*>(p)); }

// The child's stack while it shares the parent's memory: one per thread, since a thread that
// spawns is suspended until its child has exec'd.
constexpr std::size_t child_stack_size = 64 * 1024;

pid_t start_child(child_args& a)
{
    thread_local std::unique_ptr<unsigned char[]> stack(new unsigned char[child_stack_size]);
    // Stacks grow down on every architecture Linux runs the daemon on.
    auto top = reinterpret_cast<std::uintptr_t>(stack.get() + child_stack_size);
    top &= ~static_cast<std::uintptr_t>(63);
    return ::clone(child_main, reinterpret_cast<void*>(top), CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
}
#else
pid_t start_child(child_args& a)
{
    const pid_t pid = ::vfork();
    if (pid == 0) child_steps(a);
    return pid;
}
#endif

// Descriptors 0..2 of the child are made from these: one already there would be overwritten
// before it is read.
int above_stdio(int fd, portunus::unique_fd& keep)
{
    if (fd > 2) return fd;
    keep = portunus::unique_fd(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
    return keep.get();
}

} // namespace

exec_program::exec_program(spawn_spec spec) : spec_(std::move(spec))
{
    for (const auto& [k, v] : spec_.environment) env_strings_.push_back(k + "=" + v);
    for (auto& a : spec_.argv) argv_.push_back(a.data());
    argv_.push_back(nullptr);
}

pid_t exec_program::spawn(int socket, int error_out, const std::vector<std::string>& extra_env,
                          std::string& error) const
{
    std::vector<char*> envp;
    envp.reserve(env_strings_.size() + extra_env.size() + 1);
    for (const auto& e : env_strings_) envp.push_back(const_cast<char*>(e.c_str()));
    for (const auto& e : extra_env) envp.push_back(const_cast<char*>(e.c_str()));
    envp.push_back(nullptr);

    portunus::unique_fd socket_copy, error_copy;
    child_args a{argv_.data(), envp.data(), above_stdio(socket, socket_copy), above_stdio(error_out, error_copy),
                 &spec_};
    if (a.socket < 0 || a.error_out < 0) {
        error = std::string("dup: ") + std::strerror(errno);
        return -1;
    }
    // Every signal stays blocked from before the child exists until its dispositions are reset:
    // a handler of the daemon's must never run in it (the pthread_sigmask() set is the thread's,
    // which the child inherits, and is restored once the child has left our memory).
    sigset_t all, before;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &before);
    const pid_t pid = start_child(a);
    const int clone_error = errno;
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    if (pid < 0) {
        error = std::string("clone: ") + std::strerror(clone_error);
        return -1;
    }
    if (a.step != step_none) error = std::string(step_text(a.step)) + ": " + std::strerror(a.error);
    return pid;
}

} // namespace portunusd
