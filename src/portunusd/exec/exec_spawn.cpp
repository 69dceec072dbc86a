// SPDX-License-Identifier: MPL-2.0
// Spawning without fork(): clone(CLONE_VM) on Linux, vfork() elsewhere, with only raw system
// calls in the child, which reads nothing but a plain struct the parent prepared.
#include "portunusd/exec/exec_spawn.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>

// x86-64 and arm64 Linux: the child runs beside the daemon in its memory (clone(CLONE_VM)
// without CLONE_VFORK) and makes its system calls with inline assembly, which touches no errno
// or any other memory the daemon's threads use. Other Linux builds suspend the caller as vfork
// does (CLONE_VFORK, syscall()); the illumos compile check and other systems use vfork().
#if defined(__linux__) && !defined(PORTUNUS_DOOR_ILLUMOS)
#include <sched.h>
#include <sys/syscall.h>
#if defined(__x86_64__) || defined(__aarch64__)
#define PORTUNUSD_EXEC_BESIDE 1
#else
#define PORTUNUSD_EXEC_BESIDE 0
#endif
#define PORTUNUSD_EXEC_CLONE 1
#else
#define PORTUNUSD_EXEC_BESIDE 0
#define PORTUNUSD_EXEC_CLONE 0
#include <grp.h>
#endif

#if defined(__GNUC__)
#if defined(__has_attribute) && __has_attribute(no_stack_protector)
#define PORTUNUSD_CHILD_CODE \
    __attribute__((no_sanitize("address", "undefined"), no_stack_protector, always_inline)) inline
#else
#define PORTUNUSD_CHILD_CODE __attribute__((no_sanitize("address", "undefined"), always_inline)) inline
#endif
#if defined(__has_attribute) && __has_attribute(no_stack_protector)
#define PORTUNUSD_CHILD_ENTRY __attribute__((no_sanitize("address", "undefined"), no_stack_protector, noinline))
#else
#define PORTUNUSD_CHILD_ENTRY __attribute__((no_sanitize("address", "undefined"), noinline))
#endif
#else
#define PORTUNUSD_CHILD_CODE inline
#define PORTUNUSD_CHILD_ENTRY
#endif

namespace portunusd {

enum spawn_step : int { step_none, step_session, step_dup, step_groups, step_gid, step_uid, step_chdir, step_exec };

// Everything the child reads, as plain values and pointers into memory that outlives it; it
// writes `step` and `error` only, before it exits 127.
struct spawn_job::args {
    const char* path = nullptr;
    char* const* argv = nullptr;
    char* const* envp = nullptr;
    const char* directory = "/";
    const gid_t* groups = nullptr;
    long group_count = 0;
    bool set_uid = false;
    bool set_gid = false;
    uid_t uid = 0;
    gid_t gid = 0;
    int socket = -1;
    int error_out = -1;
    volatile int step = step_none;
    volatile int error = 0;
};

spawn_job::spawn_job() : args_(std::make_unique<args>()) {}
spawn_job::~spawn_job() = default;

namespace {

const char* step_text(int s)
{
    switch (s) {
    case step_session: return "starting a session";
    case step_dup: return "setting up its standard descriptors";
    case step_groups: return "setting its groups";
    case step_gid: return "switching group";
    case step_uid: return "switching user";
    case step_chdir: return "entering its directory";
    default: return "exec";
    }
}

#if PORTUNUSD_EXEC_CLONE
// Returns the result or -errno, as the kernel does. In a child that shares the daemon's
// memory nothing but the child's stack may be written: glibc's wrappers set errno (the
// daemon's thread's), and its set*id() would even signal every thread of the daemon to change
// credentials too (the setxid broadcast).
#if PORTUNUSD_EXEC_BESIDE && defined(__x86_64__)
PORTUNUSD_CHILD_CODE long sys(long n, long a = 0, long b = 0, long c = 0, long d = 0) noexcept
{
    long ret;
    register long r10 __asm__("r10") = d;
    __asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10) : "rcx", "r11", "memory");
    return ret;
}
#elif PORTUNUSD_EXEC_BESIDE && defined(__aarch64__)
PORTUNUSD_CHILD_CODE long sys(long n, long a = 0, long b = 0, long c = 0, long d = 0) noexcept
{
    register long x8 __asm__("x8") = n;
    register long x0 __asm__("x0") = a;
    register long x1 __asm__("x1") = b;
    register long x2 __asm__("x2") = c;
    register long x3 __asm__("x3") = d;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory", "cc");
    return x0;
}
#else
// The caller is suspended (CLONE_VFORK): the errno syscall() sets is its own, unused meanwhile.
PORTUNUSD_CHILD_CODE long sys(long n, long a = 0, long b = 0, long c = 0, long d = 0) noexcept
{
    const long r = ::syscall(n, a, b, c, d);
    return r < 0 ? -errno : r;
}
#endif

// The kernel's struct sigaction, all zero: SIG_DFL, no flags, no restorer, an empty mask, in
// whichever layout the architecture has; the kernel's sigset_t is 8 bytes.
alignas(8) const unsigned char kernel_default_action[64] = {};
alignas(8) const unsigned char kernel_empty_set[8] = {};

PORTUNUSD_CHILD_CODE void reset_signals() noexcept
{
    for (long s = 1; s < 65; ++s)
        if (s != SIGKILL && s != SIGSTOP)
            sys(SYS_rt_sigaction, s, reinterpret_cast<long>(kernel_default_action), 0, 8);
}
PORTUNUSD_CHILD_CODE void unblock_signals() noexcept
{
    sys(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(kernel_empty_set), 0, 8);
}
PORTUNUSD_CHILD_CODE long move_to(int from, int to) noexcept { return sys(SYS_dup3, from, to, 0); }
PORTUNUSD_CHILD_CODE void close_others() noexcept
{
    // Every descriptor the daemon makes is close-on-exec already; this also covers any a
    // library opened without it. Kernels before 5.9 lack close_range: close-on-exec remains.
#if defined(SYS_close_range)
    sys(SYS_close_range, 3, static_cast<long>(~0U), 0);
#endif
}
PORTUNUSD_CHILD_CODE long new_session() noexcept { return sys(SYS_setsid); }
PORTUNUSD_CHILD_CODE long set_groups(const gid_t* g, long n) noexcept
{
    return sys(SYS_setgroups, n, reinterpret_cast<long>(g));
}
PORTUNUSD_CHILD_CODE long set_gid(gid_t gid) noexcept { return sys(SYS_setresgid, gid, gid, gid); }
PORTUNUSD_CHILD_CODE long set_uid(uid_t uid) noexcept { return sys(SYS_setresuid, uid, uid, uid); }
PORTUNUSD_CHILD_CODE long enter(const char* dir) noexcept { return sys(SYS_chdir, reinterpret_cast<long>(dir)); }
PORTUNUSD_CHILD_CODE long run(const spawn_job::args& a) noexcept
{
    return sys(SYS_execve, reinterpret_cast<long>(a.path), reinterpret_cast<long>(a.argv),
               reinterpret_cast<long>(a.envp));
}
[[noreturn]] PORTUNUSD_CHILD_CODE void leave() noexcept
{
    for (;;) sys(SYS_exit_group, 127);
}
#else
// vfork() children (illumos): the caller is suspended, and credentials belong to the process
// there, so setuid() changes the child alone; each of these is async-signal-safe.
inline void reset_signals() noexcept
{
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    for (int s = 1; s < NSIG; ++s)
        if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &dfl, nullptr);
}
inline void unblock_signals() noexcept
{
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
}
inline long result(int r) noexcept { return r < 0 ? -errno : r; }
inline long move_to(int from, int to) noexcept { return result(::dup2(from, to)); }
inline void close_others() noexcept {} // every descriptor of the daemon's is close-on-exec
inline long new_session() noexcept { return result(::setsid()); }
inline long set_groups(const gid_t* g, long n) noexcept { return result(::setgroups(static_cast<int>(n), g)); }
inline long set_gid(gid_t gid) noexcept { return result(::setgid(gid)); }
inline long set_uid(uid_t uid) noexcept { return result(::setuid(uid)); }
inline long enter(const char* dir) noexcept { return result(::chdir(dir)); }
inline long run(const spawn_job::args& a) noexcept { return result(::execve(a.path, a.argv, a.envp)); }
[[noreturn]] inline void leave() noexcept { ::_exit(127); }
#endif

// The child, up to execve(). Signals stay blocked (the parent blocked them all before it made
// the child) until the dispositions are back to their defaults, so no handler of the daemon's
// ever runs in the child.
[[noreturn]] PORTUNUSD_CHILD_ENTRY void child_steps(spawn_job::args& a) noexcept
{
    long r = 0;
    int s = step_session;
    reset_signals();
    if ((r = new_session()) < 0) goto failed;
    s = step_dup;
    if ((r = move_to(a.socket, 0)) < 0 || (r = move_to(a.socket, 1)) < 0 || (r = move_to(a.error_out, 2)) < 0)
        goto failed;
    close_others();
    s = step_groups;
    if (a.set_uid && (r = set_groups(a.groups, a.group_count)) < 0) goto failed;
    s = step_gid;
    if (a.set_gid && (r = set_gid(a.gid)) < 0) goto failed;
    s = step_uid;
    if (a.set_uid && (r = set_uid(a.uid)) < 0) goto failed;
    s = step_chdir;
    if ((r = enter(a.directory)) < 0) goto failed;
    unblock_signals();
    s = step_exec;
    r = run(a);
failed:
    a.step = s;
    a.error = static_cast<int>(-r);
    leave();
}

#if PORTUNUSD_EXEC_CLONE
PORTUNUSD_CHILD_ENTRY int child_main(void* p) { child_steps(*static_cast<spawn_job::args*>(p)); }

// The child's stack until it has exec'd; it makes no calls but system calls.
constexpr std::size_t child_stack_size = 16 * 1024;
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

std::string spawn_job::failure() const
{
    if (args_->step == step_none) return {};
    return std::string(step_text(args_->step)) + ": " + std::strerror(args_->error);
}

exec_program::exec_program(spawn_spec spec) : spec_(std::move(spec))
{
    for (const auto& [k, v] : spec_.environment) env_strings_.push_back(k + "=" + v);
    for (auto& a : spec_.argv) argv_.push_back(a.data());
    argv_.push_back(nullptr);
}

pid_t exec_program::spawn(int socket, int error_out, std::vector<std::string> extra_env, spawn_job& job,
                          std::string& error) const
{
    job.env_ = std::move(extra_env);
    job.envp_.clear();
    job.envp_.reserve(env_strings_.size() + job.env_.size() + 1);
    for (const auto& e : env_strings_) job.envp_.push_back(const_cast<char*>(e.c_str()));
    for (auto& e : job.env_) job.envp_.push_back(e.data());
    job.envp_.push_back(nullptr);

    // Descriptors the child copies when it is made; the parent's copies may close after.
    portunus::unique_fd socket_copy, error_copy;
    spawn_job::args& a = *job.args_;
    a.path = argv_.front();
    a.argv = argv_.data();
    a.envp = job.envp_.data();
    a.directory = spec_.working_directory.c_str();
    a.groups = spec_.groups.data();
    a.group_count = static_cast<long>(spec_.groups.size());
    a.set_uid = spec_.uid.has_value();
    a.set_gid = spec_.gid.has_value();
    a.uid = spec_.uid.value_or(0);
    a.gid = spec_.gid.value_or(0);
    a.socket = above_stdio(socket, socket_copy);
    a.error_out = above_stdio(error_out, error_copy);
    a.step = step_none;
    a.error = 0;
    if (a.socket < 0 || a.error_out < 0) {
        error = std::string("dup: ") + std::strerror(errno);
        return -1;
    }
    // Every signal stays blocked from before the child exists until its dispositions are reset:
    // a handler of the daemon's must never run in it. The mask is this thread's, which the
    // child inherits; it is restored as soon as the child is made.
    sigset_t all, before;
    sigfillset(&all);
    ::pthread_sigmask(SIG_SETMASK, &all, &before);
#if PORTUNUSD_EXEC_CLONE
    if (!job.stack_) job.stack_.reset(new unsigned char[child_stack_size]);
    // Stacks grow down on every architecture Linux runs the daemon on.
    auto top = reinterpret_cast<std::uintptr_t>(job.stack_.get() + child_stack_size);
    top &= ~static_cast<std::uintptr_t>(63);
    const int flags = CLONE_VM | SIGCHLD | (PORTUNUSD_EXEC_BESIDE ? 0 : CLONE_VFORK);
    const pid_t pid = ::clone(child_main, reinterpret_cast<void*>(top), flags, &a);
#else
    const pid_t pid = ::vfork();
    if (pid == 0) child_steps(a);
#endif
    const int spawn_error = errno;
    ::pthread_sigmask(SIG_SETMASK, &before, nullptr);
    if (pid < 0) {
        error = std::string(PORTUNUSD_EXEC_CLONE ? "clone: " : "vfork: ") + std::strerror(spawn_error);
        return -1;
    }
    return pid;
}

} // namespace portunusd
