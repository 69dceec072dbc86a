// SPDX-License-Identifier: MPL-2.0
// setgroups/setgid/setuid in the only safe order.
#include "portunusd/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>
#if defined(__sun) || defined(PORTUNUS_DOOR_ILLUMOS)
#define PORTUNUS_PRIVILEGES_ILLUMOS 1
#include <priv.h>
#elif defined(__linux__)
#define PORTUNUS_PRIVILEGES_LINUX 1
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#endif

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <vector>

namespace portunusd {

std::string resolve_account(const std::optional<std::string>& user, const std::optional<std::string>& group,
                            account& out)
{
    std::vector<char> buf(16384);
    out.uid = ::getuid();
    out.gid = ::getgid();
    out.name.clear();
    if (user) {
        passwd pw{};
        passwd* found = nullptr;
        const int rc = ::getpwnam_r(user->c_str(), &pw, buf.data(), buf.size(), &found);
        if (found == nullptr) return "unknown user '" + *user + "'" + (rc != 0 ? std::string(": ") + std::strerror(rc) : "");
        out.uid = pw.pw_uid;
        out.gid = pw.pw_gid;
        out.name = pw.pw_name;
    }
    if (group) {
        ::group gr{};
        ::group* found = nullptr;
        const int rc = ::getgrnam_r(group->c_str(), &gr, buf.data(), buf.size(), &found);
        if (found == nullptr) return "unknown group '" + *group + "'" + (rc != 0 ? std::string(": ") + std::strerror(rc) : "");
        out.gid = gr.gr_gid;
    }
    return {};
}

std::string drop_privileges(const std::optional<std::string>& user, const std::optional<std::string>& group,
                            bool keep_setid)
{
    if (!user && !group) return {};
    account who;
    if (auto error = resolve_account(user, group, who); !error.empty()) return error;
    const uid_t uid = who.uid;
    const gid_t gid = who.gid;
    const std::string& user_name = who.name;
    if (::geteuid() != 0) {
        // Without root the only "switch" that can work is to who we already are.
        // That is how a service manager that starts the daemon as its account already (SMF's
        // method_credential, systemd's User=) and a config naming the same account agree.
        if (uid == ::geteuid() && gid == ::getegid()) return {};
        return "the daemon runs as uid " + std::to_string(::geteuid()) + " gid " + std::to_string(::getegid()) +
               ", not root, so it cannot become " + (user ? "user '" + *user + "'" : std::string("that account")) +
               (group ? " group '" + *group + "'" : std::string()) + " (uid " + std::to_string(uid) + " gid " +
               std::to_string(gid) + "): name the account it runs as in [daemon] user/group, or start it as root";
    }
    // Groups first: after setuid() we could no longer change them.
    if (user ? ::initgroups(user_name.c_str(), gid) != 0 : ::setgroups(1, &gid) != 0)
        return std::string("setting supplementary groups: ") + std::strerror(errno);
    if (::setgid(gid) != 0) return std::string("setgid: ") + std::strerror(errno);
    if (keep_setid && uid != 0) {
#if defined(PORTUNUS_PRIVILEGES_LINUX)
        // Across setuid() the capabilities survive only when asked to; then every one is dropped
        // but the two that let a forked child become an app's user and the one that lets the
        // daemon stop it.
        if (::prctl(PR_SET_KEEPCAPS, 1L, 0L, 0L, 0L) != 0) return std::string("PR_SET_KEEPCAPS: ") + std::strerror(errno);
#elif defined(PORTUNUS_PRIVILEGES_ILLUMOS)
        // A privilege-aware process keeps its privilege sets across setuid(); they are cut
        // down to what is needed right after it.
        if (::setpflags(PRIV_AWARE, 1) != 0) return std::string("setpflags(PRIV_AWARE): ") + std::strerror(errno);
#else
        return "keeping the right to start apps as other users is not implemented on this system; run every app as "
               "the daemon's user";
#endif
    }
    if (::setuid(uid) != 0) return std::string("setuid: ") + std::strerror(errno);
#if defined(PORTUNUS_PRIVILEGES_ILLUMOS)
    if (keep_setid && uid != 0) {
        // The basic set every process has, plus proc_setid (a forked child becomes the app's
        // user) and proc_owner (the daemon signals an app of another user); children inherit
        // only the basic set. Compile-checked here, not yet run on illumos (docs/illumos.md).
        priv_set_t* keep = ::priv_str_to_set("basic", ",", nullptr);
        priv_set_t* basic = ::priv_str_to_set("basic", ",", nullptr);
        std::string error;
        if (keep == nullptr || basic == nullptr) {
            error = std::string("priv_str_to_set: ") + std::strerror(errno);
        } else if (::priv_addset(keep, PRIV_PROC_SETID) != 0 || ::priv_addset(keep, PRIV_PROC_OWNER) != 0) {
            error = std::string("priv_addset: ") + std::strerror(errno);
        } else if (::setppriv(PRIV_SET, PRIV_PERMITTED, keep) != 0 || ::setppriv(PRIV_SET, PRIV_EFFECTIVE, keep) != 0 ||
                   ::setppriv(PRIV_SET, PRIV_INHERITABLE, basic) != 0 || ::setppriv(PRIV_SET, PRIV_LIMIT, keep) != 0) {
            error = std::string("setppriv: ") + std::strerror(errno);
        }
        if (keep != nullptr) ::priv_freeset(keep);
        if (basic != nullptr) ::priv_freeset(basic);
        if (!error.empty()) return error;
    }
#endif
#if defined(PORTUNUS_PRIVILEGES_LINUX)
    if (keep_setid && uid != 0) {
        ::prctl(PR_SET_KEEPCAPS, 0L, 0L, 0L, 0L);
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2]{};
        // CAP_KILL too: an app that runs as another user is stopped by the daemon's signals.
        const std::uint32_t setid = (1U << CAP_SETUID) | (1U << CAP_SETGID) | (1U << CAP_KILL);
        data[0].effective = setid;
        data[0].permitted = setid;
        if (::syscall(SYS_capset, &header, data) != 0) return std::string("capset: ") + std::strerror(errno);
    }
#endif
    // Make sure root cannot be regained: a setuid() that "succeeded" but left a way back is a bug
    // (with CAP_SETUID kept it can, by design, and the check would only say so).
    if (uid != 0 && !keep_setid && ::setuid(0) == 0) return "dropping root failed: could regain uid 0";
    return {};
}

std::string drop_startup_privileges()
{
#if defined(PORTUNUS_PRIVILEGES_ILLUMOS)
    // Only a process that holds them without being root has anything to drop here (a root
    // daemon lost them in setuid()); priv_set() on a set that lacks one changes nothing.
    // Compile-checked here, not yet run on illumos (docs/illumos.md).
    if (::priv_set(PRIV_OFF, PRIV_ALLSETS, PRIV_NET_PRIVADDR, PRIV_FILE_DAC_WRITE, nullptr) != 0)
        return std::string("dropping net_privaddr and file_dac_write: ") + std::strerror(errno);
#endif
    return {};
}

} // namespace portunusd
