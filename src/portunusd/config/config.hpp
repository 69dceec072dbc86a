// SPDX-License-Identifier: MPL-2.0
// The daemon's configuration: the portunusd.toml schema as plain values, and the parser that
// validates a whole file and reports every problem as FILE:LINE:COL: message.
#pragma once

#include "portunusd/proxy/address_set.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <sys/types.h>

namespace portunusd {

enum class protocol { tcp, udp, http, pass, exec };

/// "tcp", "udp", "http", "pass" or "exec", as written in the configuration file.
std::string_view to_string(protocol p) noexcept;

/// TLS termination on a forward written `protocol = "tls"` (a tcp forward) or `"https"` (an
/// http forward). The PEM texts are read by load_config() from the two files, so that a
/// reload after a certificate was renewed in place sees a change (forwards compare with ==).
struct tls_settings {
    std::string certificate;     ///< absolute path: the server's certificate, then its chain
    std::string private_key;     ///< absolute path: its unencrypted key
    std::string min_version = "1.2"; ///< "1.2" or "1.3"
    std::chrono::milliseconds handshake_timeout{10'000};
    std::string certificate_pem; ///< the file's contents (empty until load_config() read it)
    std::string private_key_pem;

    bool operator==(const tls_settings&) const = default;
};

/// Where a forward listens. `host` is the canonical form of the address ("127.0.0.1", "::1",
/// "0.0.0.0", "::"), or "*" for every IPv4 and IPv6 address (then `any` is true). An explicit
/// "[::]" means IPv6 only; binding it with IPV6_V6ONLY keeps it apart from "0.0.0.0".
struct listen_address {
    std::string host;
    std::uint16_t port = 0;
    bool any = false;
    std::string text;  ///< as written in the file, for messages and default names

    bool operator==(const listen_address&) const = default;
};

/// What one [[forward.map]] of an http forward says: requests under `prefix` whose method is
/// one of `methods` (empty: any method, written "*") go to `door`.
struct http_map_route {
    std::vector<std::string> methods;
    std::string prefix;
    std::string door;

    bool operator==(const http_map_route&) const = default;
};

/// One [[forward.map]] and where it stands in the file.
struct http_map : http_map_route {
    int line = 1;  ///< of the [[forward.map]] header
    int column = 1;
    int door_line = 1;
    int door_column = 1;

    // Compares the route only: a map that merely moved in the file (a comment added above it)
    // routes the same, and reload must not count its forward as changed.
    using http_map_route::operator==;
};

/// Where a value stands in the file, for the checks made after parsing. Lines and columns start at 1.
struct file_position {
    int line = 1;
    int column = 1;
};

/// Every setting of one [[forward]] table with its defaults applied. Reload compares these
/// with ==, so a key added here is picked up by SIGHUP without further ado; what must not
/// count as a change (positions in the file) lives in forward_config instead.
struct forward_settings {
    std::string name;  ///< explicit, or "<protocol>:<listen as written>"
    protocol proto = protocol::tcp;
    listen_address listen;
    std::string door;  ///< absolute path, at most max_door_path bytes; empty only on an http forward with maps
    unsigned max_concurrency = 64;
    std::size_t queue = 256;
    std::chrono::milliseconds read_timeout{30'000};
    std::chrono::milliseconds idle_timeout{60'000};
    std::chrono::milliseconds call_timeout{30'000};
    std::size_t max_request = 65'536;
    bool once = false;
    // tcp and http: each connection starts with a PROXY protocol header (v1 or v2), read within
    // header_timeout, from a source in proxy_protocol_from; its client is the connection's.
    bool proxy_protocol = false;
    std::vector<proxy::cidr> proxy_protocol_from; ///< not empty when proxy_protocol is set
    // http only (header_timeout: also tcp with proxy_protocol).
    std::vector<http_map> maps;          ///< routes by method and path prefix; `door` is the catch-all
    std::size_t max_header_bytes = 32'768; ///< request line + header section
    std::size_t max_headers = 100;
    std::size_t max_body = 1 << 20;
    std::chrono::milliseconds header_timeout{10'000}; ///< the whole header section must arrive within it
    std::size_t max_requests = 1'000;     ///< requests served on one connection before it is closed
    // pass only: the door call lasts until the application is done with the connection, not
    // just until it has taken the socket.
    bool pass_hold = false;
    // exec only: each connection is the stdin and stdout of a new process (inetd's nowait).
    std::vector<std::string> command;  ///< argv; command[0] an absolute path to an executable file
    std::optional<std::string> user;   ///< default: the daemon's own account
    std::optional<std::string> group;  ///< default: the user's primary group
    // tls and https: TLS terminated here, then served as tcp and http are.
    std::optional<tls_settings> tls;

    bool operator==(const forward_settings&) const = default;
};

/// The protocol as the operator wrote it: "tls" and "https" for the TLS forms of tcp and
/// http, else to_string(proto). Names forwards in logs, access lines and metrics.
std::string_view protocol_name(const forward_settings& f) noexcept;

/// One [[forward]] table: its settings and where it stands in the file.
struct forward_config : forward_settings {
    int line = 1;    ///< of the [[forward]] header, for messages at run time
    int column = 1;
    int door_line = 1;  ///< of the door value, for check_door_paths()
    int door_column = 1;
    // exec only, of the values check_apps() reports on.
    file_position command_at;  ///< of command[0]
    file_position user_at;
    file_position group_at;
    // tls and https only.
    file_position certificate_at;
    file_position private_key_at;

    // Compares the settings only: a forward that merely moved in the file is unchanged.
    using forward_settings::operator==;
};

/// How an [[app]] is started.
enum class app_start { always, on_demand };

/// Every setting of one [[app]] table with its defaults applied: an application the daemon
/// starts, keeps alive and stops. Compared with == on reload, like forward_settings.
struct app_settings {
    std::string name;                  ///< required, unique among apps
    std::string door;                  ///< absolute path; forwards and routes that name it are served by this app
    std::vector<std::string> command;  ///< argv; command[0] an absolute path to an executable file
    std::optional<std::string> user;   ///< default: the daemon's own account after the privilege drop
    std::optional<std::string> group;  ///< default: the user's primary group
    std::string working_directory = "/";
    std::vector<std::pair<std::string, std::string>> environment; ///< in file order; the only variables it gets
    app_start start = app_start::always;
    std::chrono::milliseconds start_timeout{10'000}; ///< from start to its door answering
    std::chrono::milliseconds idle_stop{0};          ///< 0: never; else stop after this long without a call
    unsigned instances = 1;                          ///< processes, each with its own door (door.1, door.2...)
    std::chrono::milliseconds restart_delay{100};     ///< first delay after a crash, doubled per crash in a row
    std::chrono::milliseconds restart_max_delay{30'000};
    std::uint64_t max_calls = 0;                     ///< 0: no limit; else recycle an instance after this many calls
    std::uint64_t max_memory = 0;                    ///< bytes; 0: no limit; else recycle above this resident size
    bool upgrade_on_change = false;                  ///< replace instances when command[0] changes on disk
    std::chrono::milliseconds stop_timeout{10'000};   ///< SIGTERM, then SIGKILL after this long

    bool operator==(const app_settings&) const = default;
};

/// One [[app]] table: its settings and where it stands in the file.
struct app_config : app_settings {
    int line = 1;
    int column = 1;
    // Of the values check_door_paths() and check_apps() report on.
    file_position door_at;
    file_position command_at;  ///< of command[0]
    file_position user_at;
    file_position group_at;
    file_position working_directory_at;

    // Compares the settings only: an app that merely moved in the file is unchanged.
    using app_settings::operator==;
};

/// The doors an app's instances serve: `door` itself when it runs one instance, else
/// door.1 ... door.N. Forwards and routes name `door`.
std::vector<std::string> app_instance_doors(const app_settings& app);

/// The [daemon] table with every default applied.
struct daemon_config {
    std::optional<std::string> user;
    std::optional<std::string> group;
    unsigned threads = 1;            ///< default: number of CPUs capped at 4
    std::string log_level = "info";  ///< trace|debug|info|warn|error|off
    std::string log = "stderr";      ///< stderr|syslog
    std::string access_log = "off";  ///< off|stderr|syslog|absolute file path
    std::size_t max_connections = 10'000;
    std::chrono::milliseconds drain_timeout{10'000};
    /// After a stop is asked for, how long the daemon still accepts and serves while /health
    /// answers 503, so that a balancer's health check takes it out before it refuses anyone.
    std::chrono::milliseconds stop_grace{0};
    std::chrono::milliseconds read_timeout{30'000};
    std::chrono::milliseconds idle_timeout{60'000};
    std::chrono::milliseconds call_timeout{30'000};
    bool allow_insecure_door_dir = false;
    /// The control door `portunus status|reload|stop` calls; empty when "off".
    std::string control_door = "/var/run/portunusd/control.door";
    /// False while control_door is the default: then a daemon that cannot create it (not
    /// root, say) runs without one and says so, where a path the operator chose is an error.
    bool control_door_explicit = false;
    /// Where GET /metrics and /health are served; none by default.
    std::optional<listen_address> metrics_listen;
};

struct config {
    std::string source;  ///< the file name given to the parser
    daemon_config daemon;
    std::vector<forward_config> forwards;  ///< at least one, in file order
    std::vector<app_config> apps;          ///< in file order; may be empty
};

/// One problem found in a configuration. Lines and columns start at 1.
struct config_error {
    std::string source;
    int line = 1;
    int column = 1;
    std::string message;

    /// "FILE:LINE:COL: message", the form editors and `portunusd -n` understand.
    std::string to_string() const;
    /// The same without a leading "warning: ", for a log that labels each line's level itself.
    std::string log_text() const;
};

/// Either a valid configuration (and no errors) or every error found, sorted by line and column.
/// Warnings (messages that start with "warning: ") come either way: problems the daemon starts
/// despite, such as a door directory that the applications have not created yet.
struct config_result {
    std::optional<config> value;
    std::vector<config_error> errors;
    std::vector<config_error> warnings;
};

/// Sorts by line, then column; problems at one spot keep their order.
void sort_by_position(std::vector<config_error>& problems);

/// The errors and the warnings of `result` together, sorted: what `portunusd -n` prints.
std::vector<config_error> all_problems(const config_result& result);

/// sun_path holds 108 bytes on Linux and illumos, one of them the terminating NUL.
inline constexpr std::size_t max_door_path = 107;
/// 65535 minus the IPv4 and UDP headers: the largest payload a UDP datagram can carry.
inline constexpr std::size_t max_udp_request = 65'507;

/// Parses and validates `text`; `source_name` only labels the errors. Never throws except
/// std::bad_alloc. Pure: touches neither the file system nor the network.
config_result parse_config_string(std::string_view text, const std::string& source_name);

/// Reads `path` and parses it like parse_config_string(). An unreadable file gives one error,
/// "PATH:1:1: cannot read: <reason>".
config_result parse_config_file(const std::string& path);

/// Checks the directory of every forward's, map's and app's door: unless
/// allow_insecure_door_dir is set, it must be writable by neither its group nor others (whoever
/// can write there can replace the door with their own), and it must be a directory. One that
/// does not exist yet is a warning for a forward's or a map's door (the applications, started
/// after the daemon, need it) and an error for an app's (the daemon starts the app at once).
/// Touches the file system, so it is kept out of parsing; errors and warnings point at each
/// door value and come sorted together like the parser's.
std::vector<config_error> check_door_paths(const config& cfg);

/// Checks what each [[app]] and exec [[forward]] needs of this machine: its user and group exist, command[0] is an
/// executable regular file and (apps) working_directory a directory. Looks up accounts and touches the
/// file system, so it is kept out of parsing; errors point at each value, sorted.
std::vector<config_error> check_apps(const config& cfg);

/// What start-up and every reload read: parse_config_file(), then check_door_paths() and
/// check_apps() on whatever of the file was valid, so that every problem is reported in one
/// round (only a TOML syntax error stops the rest: nothing after it can be read). Either a
/// configuration that passed all of them or the errors of all of them, sorted together.
config_result load_config(const std::string& path);

/// One line saying which credential changes starting the apps takes, for `portunusd -n`:
/// none, or the privileges and the accounts that need them. `daemon_uid` is the uid the
/// daemon runs as once it has dropped privileges. Looks up accounts; changes nothing.
std::string privileges_needed(const config& cfg, uid_t daemon_uid);

/// An account the daemon starts processes as, as the file names it: an [[app]]'s or an exec
/// forward's `user` and `group` (at least one of them set).
struct started_account {
    std::optional<std::string> user;
    std::optional<std::string> group;
};
/// Every [[app]] and then every exec forward that names a user or group, in the file's order.
std::vector<started_account> started_accounts(const config& cfg);

}  // namespace portunusd
