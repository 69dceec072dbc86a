// SPDX-License-Identifier: MPL-2.0
// setgroups/setgid/setuid in the only safe order.
#include "portunusd/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
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

std::string drop_privileges(const std::optional<std::string>& user, const std::optional<std::string>& group)
{
    if (!user && !group) return {};
    account who;
    if (auto error = resolve_account(user, group, who); !error.empty()) return error;
    const uid_t uid = who.uid;
    const gid_t gid = who.gid;
    const std::string& user_name = who.name;
    if (::geteuid() != 0) {
        // Without root the only "switch" that can work is to who we already are.
        if (uid == ::geteuid() && gid == ::getegid()) return {};
        return "must start as root to switch to user/group (running as uid " + std::to_string(::geteuid()) + ")";
    }
    // Groups first: after setuid() we could no longer change them.
    if (user ? ::initgroups(user_name.c_str(), gid) != 0 : ::setgroups(1, &gid) != 0)
        return std::string("setting supplementary groups: ") + std::strerror(errno);
    if (::setgid(gid) != 0) return std::string("setgid: ") + std::strerror(errno);
    if (::setuid(uid) != 0) return std::string("setuid: ") + std::strerror(errno);
    // Make sure root cannot be regained: a setuid() that "succeeded" but left a way back is a bug.
    if (uid != 0 && ::setuid(0) == 0) return "dropping root failed: could regain uid 0";
    return {};
}

} // namespace portunusd
