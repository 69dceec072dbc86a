// SPDX-License-Identifier: MPL-2.0
// Typed, error-collecting access to toml++ tables: the vocabulary config_parse.cpp is written in.
#pragma once

#include "portunusd/config/config.hpp"

#include <toml++/toml.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace portunusd::config_detail {

/// Where a node or key starts, clamped to 1 because nodes toml++ creates implicitly may carry 0.
struct position {
    int line = 1;
    int column = 1;
};
position position_of(const toml::source_region& region) noexcept;

/// "a string", "an integer", ...: the article matters in "expected X, found Y".
std::string_view describe_type(const toml::node& node) noexcept;

/// Collects every problem of one file; the parser never stops at the first.
class diagnostics {
public:
    explicit diagnostics(std::string source) : source_(std::move(source)) {}

    void error(position where, std::string message);
    /// A problem that does not stop the daemon; its message gets the prefix "warning: ".
    void warning(position where, std::string message);
    /// True while no error was reported; warnings do not count.
    bool empty() const noexcept { return errors_.empty(); }
    const std::string& source() const noexcept { return source_; }

    /// Sorted by line, then column; errors at one spot keep the order they were found in.
    std::vector<config_error> take_sorted();
    /// The warnings, sorted the same way.
    std::vector<config_error> take_sorted_warnings();

private:
    std::string source_;
    std::vector<config_error> errors_;
    std::vector<config_error> warnings_;
};

/// Keys that belong in another table, so a misplaced key can be pointed to its home.
struct other_table {
    std::span<const std::string_view> keys;
    std::string_view name;  ///< "in [daemon]", "at top level": completes "it belongs ..."
};

/// Reads the values of one TOML table. Every accessor returns nullopt both when the key is
/// absent and when it is invalid; in the second case it has already reported why, at the value.
class table_reader {
public:
    table_reader(const toml::table& table, diagnostics& diag) noexcept : table_(table), diag_(diag) {}

    const toml::node* find(std::string_view key) const;
    position where(std::string_view key) const;

    std::optional<std::string> string(std::string_view key);
    std::optional<bool> boolean(std::string_view key);
    std::optional<std::int64_t> integer(std::string_view key);
    std::optional<std::int64_t> integer(std::string_view key, std::int64_t min, std::int64_t max);
    std::optional<std::chrono::milliseconds> duration(std::string_view key, bool zero_allowed = false);
    /// A number of bytes: a string such as "200M" (parse_byte_size()) or a whole number.
    std::optional<std::uint64_t> byte_size(std::string_view key);
    /// A string that must be one of `choices`; the message lists them and suggests the closest.
    std::optional<std::string> one_of(std::string_view key, std::span<const std::string_view> choices);
    /// The path of a door: absolute, not ending in "/", at most max_door_path bytes, no NUL.
    std::optional<std::string> door_path(std::string_view key);
    /// The name of a forward or an app: [A-Za-z0-9_.-]{1,64}.
    std::optional<std::string> name(std::string_view key);
    /// A user or group name: not empty, without blanks, control bytes, ":" or "/". Whether the
    /// account exists is for start-up to find out.
    std::optional<std::string> account(std::string_view key);

    /// Reports `key: message` at the key's value.
    void error(std::string_view key, std::string message);

    /// Reports each of `keys` the table lacks, at the table's header: "`header` is missing ...".
    void require(std::span<const std::string_view> keys, std::string_view header);

    /// Reports every key not in `known` as "unknown key K <context>", at the key. A key that
    /// belongs in one of `elsewhere` is pointed there; otherwise a close known key is suggested.
    void reject_unknown_keys(std::span<const std::string_view> known, std::string_view context,
                             std::span<const other_table> elsewhere = {});

private:
    const toml::table& table_;
    diagnostics& diag_;
};

/// The tables of `node`, the value of the array of tables `key` ([[key]]); reports any other
/// shape, and each element that is not a table, at where it stands.
std::vector<const toml::table*> tables_of(const toml::node& node, std::string_view key, diagnostics& diag);

/// Checks a parsed document against the schema; the value is set only when no error was found.
config_result validate_config(const toml::table& root, const std::string& source_name);

/// What validate_config() builds, whether or not `diag` got errors: every forward, map and app
/// with the values that were valid (a door that was not is empty). The checks that touch the
/// file system run on it, so that their problems come in the same report as the parser's.
config draft_config(const toml::table& root, const std::string& source_name, diagnostics& diag);

/// check_door_paths() and check_apps(), reporting into `diag` so that load_config() can sort
/// the errors of both together.
void check_door_directories(const config& cfg, diagnostics& diag);
void check_app_resources(const config& cfg, diagnostics& diag);
/// Reads the certificate and key of every tls and https forward into its tls_settings and
/// checks that they make a TLS context; errors point at the certificate or private_key value.
void read_tls_files(config& cfg, diagnostics& diag);

/// Reads a regular file of at most `max_bytes` into `text` without blocking on a FIFO; returns
/// an empty string, or why it could not.
std::string read_regular_file(const std::string& path, std::string& text, std::size_t max_bytes);

}  // namespace portunusd::config_detail
