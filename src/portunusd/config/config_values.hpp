// SPDX-License-Identifier: MPL-2.0
// The small grammars inside configuration values (durations, listen addresses, names) and the
// helpers that word error messages; pure functions, free of toml++, so tests can pin them.
#pragma once

#include "portunusd/config/config.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace portunusd::config_detail {

/// A value, or the reason it was rejected (a message without the key name in front).
template <class T>
struct parsed {
    std::optional<T> value;
    std::string error;
};

inline constexpr std::chrono::milliseconds max_duration = std::chrono::hours{24};

/// `text` with control bytes written as \xNN, so a hostile file cannot put terminal escapes
/// into a message.
std::string escape_control_bytes(std::string_view text);

/// `text` in double quotes, with control bytes, quotes and backslashes escaped and anything past
/// 64 bytes cut, so a hostile file cannot put megabytes into a log line either.
std::string quote(std::string_view text);

/// "0755", "1777": the permission bits of a file mode as chmod takes them.
std::string octal_mode(unsigned mode);

/// Optimal string alignment distance (an adjacent swap costs 1), ignoring ASCII case.
std::size_t edit_distance(std::string_view a, std::string_view b);

/// The candidate closest to `word` if it is close enough to be a likely typo.
std::optional<std::string_view> suggest(std::string_view word,
                                        std::span<const std::string_view> candidates);

/// "500ms", "30s", "5m", "2h": the shortest exact spelling of `d`.
std::string format_duration(std::chrono::milliseconds d);

/// "<positive integer><unit>" with unit ms, s, m or h; 1ms..24h, or 0..24h if `zero_allowed`.
parsed<std::chrono::milliseconds> parse_duration(std::string_view text, bool zero_allowed);

/// The integer form of a duration: a number of seconds, with the same bounds.
parsed<std::chrono::milliseconds> duration_from_seconds(std::int64_t seconds, bool zero_allowed);

/// "IPv4:port", "[IPv6]:port" or "*:port", port 1..65535. Host names are refused: resolving
/// them at start-up would make the listening set depend on DNS.
parsed<listen_address> parse_listen_address(std::string_view text);

/// True when two listen addresses cannot both be bound for one protocol: the same address, or
/// one is a wildcard that covers the other, on the same port.
bool listen_addresses_overlap(const listen_address& a, const listen_address& b);

/// A spot toml++ 3.3 must not parse (see config_toml_guard.cpp), with the error to report.
struct toml_defect {
    std::size_t statement_offset;  ///< where its statement's line starts; all before it is safe
    int line;
    int column;
    std::string message;
};

/// The first such spot in `text`, if any. Never reports anything in valid TOML.
std::optional<toml_defect> find_toml_defect(std::string_view text);

/// [A-Za-z0-9_.-]{1,64}: safe in logs, metrics labels and file names.
bool is_valid_forward_name(std::string_view name);

/// [A-Za-z_][A-Za-z0-9_]*: a name every shell and getenv() takes.
bool is_valid_env_name(std::string_view name);

/// 1 EiB: far beyond any memory, and small enough that no size in range overflows.
inline constexpr std::uint64_t max_byte_size = std::uint64_t{1} << 60;

/// "<whole number>" bytes, or with a unit K, M, G or T (powers of 1024) such as "512K" or
/// "200M"; 0..max_byte_size.
parsed<std::uint64_t> parse_byte_size(std::string_view text);

/// The integer form of a size: a number of bytes, with the same bounds.
parsed<std::uint64_t> byte_size_from_integer(std::int64_t bytes);

}  // namespace portunusd::config_detail
