// SPDX-License-Identifier: MPL-2.0
// fork and exec with only async-signal-safe calls in the child, and its errors sent back through a pipe.
#include "portunusd/supervise/child_process.hpp"

#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/syscall.h>
#endif

#include <cerrno>
#include <climits>
#include <cstring>

namespace portunusd {

namespace {

// What the child reports when it cannot exec: the step and errno, written whole in one write()
// (less than PIPE_BUF, so atomic) to a pipe that execve() closes on success.
struct child_failure {
    int step;
    int error;
};

enum step : int { step_dup, step_session, step_groups, step_gid, step_uid, step_chdir, step_exec };

const char* step_text(int s)
{
    switch (s) {
    case step_dup: return "setting up its standard descriptors";
    case step_session: return "starting a session";
    case step_groups: return "setting its groups";
    case step_gid: return "switching group";
    case step_uid: return "switching user";
    case step_chdir: return "entering its working directory";
    default: return "exec";
    }
}

// Every descriptor from `lowest` up, except `keep`. close_range() where the kernel has it;
// otherwise each possible number, which only async-signal-safe calls can do.
void close_from(int lowest, int keep) noexcept
{
#if defined(__linux__) && defined(SYS_close_range)
    if (keep > lowest) {
        if (::syscall(SYS_close_range, static_cast<unsigned>(lowest), static_cast<unsigned>(keep - 1), 0U) == 0 &&
            ::syscall(SYS_close_range, static_cast<unsigned>(keep + 1), ~0U, 0U) == 0)
            return;
    } else if (::syscall(SYS_close_range, static_cast<unsigned>(lowest), ~0U, 0U) == 0) {
        return;
    }
#endif
    rlimit rl{};
    const long max = ::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                         ? static_cast<long>(rl.rlim_cur)
                         : 65536;
    for (long fd = lowest; fd < max; ++fd)
        if (fd != keep) ::close(static_cast<int>(fd));
}

[[noreturn]] void fail_in_child(int report, int s) noexcept
{
    const child_failure f{s, errno};
    [[maybe_unused]] const ssize_t n = ::write(report, &f, sizeof f);
    ::_exit(127);
}

} // namespace

std::vector<gid_t> groups_of(const std::string& user, gid_t primary)
{
    int count = 32;
    std::vector<gid_t> groups(static_cast<std::size_t>(count));
    for (int tries = 0; tries < 8; ++tries) {
        int n = count;
        if (::getgrouplist(user.c_str(), primary, groups.data(), &n) >= 0) {
            groups.resize(static_cast<std::size_t>(n));
            return groups;
        }
        count = n > count ? n : count * 2;
        groups.resize(static_cast<std::size_t>(count));
    }
    return {primary};
}

std::string set_account(spawn_spec& spec, const std::optional<std::string>& user,
                        const std::optional<std::string>& group)
{
    std::vector<char> buf(16384);
    if (user) {
        passwd pw{};
        passwd* found = nullptr;
        const int rc = ::getpwnam_r(user->c_str(), &pw, buf.data(), buf.size(), &found);
        if (found == nullptr) return "unknown user '" + *user + "'" + (rc != 0 ? std::string(": ") + std::strerror(rc) : "");
        spec.uid = pw.pw_uid;
        spec.gid = pw.pw_gid;
        spec.groups = groups_of(pw.pw_name, pw.pw_gid);
    }
    if (group) {
        ::group gr{};
        ::group* found = nullptr;
        const int rc = ::getgrnam_r(group->c_str(), &gr, buf.data(), buf.size(), &found);
        if (found == nullptr) return "unknown group '" + *group + "'" + (rc != 0 ? std::string(": ") + std::strerror(rc) : "");
        spec.gid = gr.gr_gid;
        if (user) spec.groups = groups_of(*user, gr.gr_gid);
    }
    // Already who it should be: no switch, which needs no privilege either.
    if (spec.uid.value_or(::geteuid()) == ::geteuid() && spec.gid.value_or(::getegid()) == ::getegid()) {
        spec.uid.reset();
        spec.gid.reset();
        spec.groups.clear();
    }
    return {};
}

std::optional<spawned_child> spawn(const spawn_spec& spec, std::string& error)
{
    const std::string name = spec.argv.empty() ? std::string("(no command)") : spec.argv.front();
    const auto fail = [&](const std::string& why) {
        error = "cannot start " + name + ": " + why;
        return std::nullopt;
    };
    if (spec.argv.empty()) return fail("empty command");

    // Everything the child needs is built here: after fork() it may only call async-signal-safe
    // functions, and allocating is not one.
    std::vector<char*> argv;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    std::vector<std::string> env_strings;
    for (const auto& [k, v] : spec.environment) env_strings.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);

    int out[2];
    if (::pipe2(out, O_CLOEXEC) != 0) return fail(std::string("pipe: ") + std::strerror(errno));
    portunus::unique_fd out_read(out[0]), out_write(out[1]);
    int rep[2];
    if (::pipe2(rep, O_CLOEXEC) != 0) return fail(std::string("pipe: ") + std::strerror(errno));
    portunus::unique_fd report_read(rep[0]), report_write(rep[1]);
    portunus::unique_fd null_in(::open("/dev/null", O_RDONLY | O_CLOEXEC));
    if (!null_in) return fail(std::string("/dev/null: ") + std::strerror(errno));

    const pid_t pid = ::fork();
    if (pid < 0) return fail(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
        const int report = report_write.get();
        // A clean slate of signals: the daemon blocks and handles some, which an exec keeps.
        sigset_t none;
        sigemptyset(&none);
        ::sigprocmask(SIG_SETMASK, &none, nullptr);
        struct sigaction dfl {};
        dfl.sa_handler = SIG_DFL;
        sigemptyset(&dfl.sa_mask);
        for (int s = 1; s < NSIG; ++s)
            if (s != SIGKILL && s != SIGSTOP) ::sigaction(s, &dfl, nullptr);
        if (::setsid() < 0) fail_in_child(report, step_session);
        // The report pipe is moved out of the way of 0..2 first.
        int report_fd = report;
        if (report_fd <= 2) {
            report_fd = ::fcntl(report, F_DUPFD_CLOEXEC, 3);
            if (report_fd < 0) ::_exit(127);
        }
        if (::dup2(null_in.get(), 0) < 0 || ::dup2(out_write.get(), 1) < 0 || ::dup2(out_write.get(), 2) < 0)
            fail_in_child(report_fd, step_dup);
        close_from(3, report_fd);
        if (spec.uid || spec.gid) {
            if (spec.uid && ::setgroups(spec.groups.size(), spec.groups.data()) != 0)
                fail_in_child(report_fd, step_groups);
            if (spec.gid && ::setgid(*spec.gid) != 0) fail_in_child(report_fd, step_gid);
            if (spec.uid && ::setuid(*spec.uid) != 0) fail_in_child(report_fd, step_uid);
        }
        if (::chdir(spec.working_directory.c_str()) != 0) fail_in_child(report_fd, step_chdir);
        ::execve(argv[0], argv.data(), envp.data());
        fail_in_child(report_fd, step_exec);
    }

    out_write.reset();
    report_write.reset();
    child_failure f{};
    ssize_t n;
    do {
        n = ::read(report_read.get(), &f, sizeof f);
    } while (n < 0 && errno == EINTR);
    if (n == static_cast<ssize_t>(sizeof f)) {
        int status = 0;
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        return fail(std::string(step_text(f.step)) + ": " + std::strerror(f.error));
    }
    ::fcntl(out_read.get(), F_SETFL, ::fcntl(out_read.get(), F_GETFL) | O_NONBLOCK);
    return spawned_child{pid, std::move(out_read)};
}

} // namespace portunusd
