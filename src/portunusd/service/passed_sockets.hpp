// SPDX-License-Identifier: MPL-2.0
// passed_sockets: listening sockets a service manager opened for the daemon (LISTEN_FDS).
#pragma once

#include "portunusd/config/config.hpp"

#include <portunus/unique_fd.hpp>

#include <spdlog/common.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace portunusd {

/// One descriptor handed in, and what it is.
struct passed_socket {
    portunus::unique_fd fd;
    int number = -1;        ///< the descriptor as passed, for messages
    std::string name;       ///< its LISTEN_FDNAMES entry, if any
    int type = 0;           ///< SO_TYPE: SOCK_STREAM, SOCK_DGRAM, ...; 0 when not a socket
    bool listening = false; ///< SO_ACCEPTCONN
    int family = 0;         ///< AF_INET, AF_INET6, ...
    std::string host;       ///< the bound address as text, for AF_INET and AF_INET6
    std::uint16_t port = 0;
    bool v6_only = false;   ///< IPV6_V6ONLY on an AF_INET6 socket: it takes no IPv4 client

    /// "fd 3 (web)": the descriptor and its name, for the operator.
    [[nodiscard]] std::string label() const;
    /// "fd 3 (web), tcp 127.0.0.1:8080": what it is, too.
    [[nodiscard]] std::string describe() const;
};

/// The sockets handed in at start-up, until forwards claim them. Main thread, before the loops run.
class passed_sockets {
public:
    passed_sockets() = default;
    /// Reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES, then removes them from the environment
    /// (so that nothing the daemon starts inherits them). Descriptors from 3 on become owned
    /// and CLOEXEC. Variables meant for another process (LISTEN_PID is not ours) or malformed
    /// ones are ignored: then no descriptor is touched. Call it before the daemon opens any
    /// file: a passed number that is not open would otherwise be the daemon's own log by then.
    /// So nothing is logged here: what there is to say waits for log_notes().
    static passed_sockets take_from_environment();
    /// Describes and owns the given descriptors (number, name); what take_from_environment() does
    /// once it has checked the variables.
    static passed_sockets adopt(std::vector<std::pair<int, std::string>> descriptors);

    /// The socket that serves `listen` for `proto` (tcp and http: a listening stream socket;
    /// udp: a datagram socket) bound to exactly that address and port, "*" taking either
    /// wildcard. Its `fd` is empty when none fits; a socket is claimed once.
    passed_socket claim(protocol proto, const listen_address& listen);
    /// Closes every socket no forward claimed; returns their descriptions.
    std::vector<std::string> close_unclaimed();

    /// Logs what taking the sockets found (once logging is set up), then forgets it.
    void log_notes();

    [[nodiscard]] std::size_t size() const noexcept { return sockets_.size(); }
    [[nodiscard]] bool empty() const noexcept { return sockets_.empty(); }

private:
    void note(spdlog::level::level_enum level, std::string text);

    std::vector<passed_socket> sockets_;
    std::vector<std::pair<spdlog::level::level_enum, std::string>> notes_;
};

/// What LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES say, read without touching a descriptor.
struct listen_variables {
    enum class verdict {
        none,      ///< LISTEN_PID or LISTEN_FDS is not set: nothing was passed
        malformed, ///< not a pid and a count from 0 to most_passed_fds: ignore them
        not_ours,  ///< LISTEN_PID names another process: its descriptors are not ours to touch
        take,      ///< descriptors first_passed_fd .. first_passed_fd + count - 1 are ours
    };
    static constexpr int first_passed_fd = 3; ///< SD_LISTEN_FDS_START
    /// More than any unit would pass; a larger count is a mistake, not a reason to touch 10^6 fds.
    static constexpr long most_passed_fds = 1024;

    verdict what = verdict::none;
    long pid = 0;
    long count = 0;
    /// One per descriptor when LISTEN_FDNAMES has exactly `count` names separated by ':', else empty.
    std::vector<std::string> names;
    /// LISTEN_FDNAMES was set with another number of names than `count` (so none is used).
    bool names_mismatch = false;
};

/// Reads the three variables' values (null: not set) as this process `own_pid` should. Pure,
/// so that it can be fuzzed: take_from_environment() is this plus getenv, unsetenv and logging.
listen_variables parse_listen_variables(const char* pid, const char* fds, const char* names, long own_pid);

/// Whether the passed socket `s` serves `listen` for `proto` (see passed_sockets::claim()).
bool socket_fits(const passed_socket& s, protocol proto, const listen_address& listen);

} // namespace portunusd
