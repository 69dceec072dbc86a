// SPDX-License-Identifier: MPL-2.0
// Typed value access and message wording shared by every table of the configuration schema.
#include "portunusd/config/config_reader.hpp"

#include "portunusd/config/config_values.hpp"

#include <algorithm>
#include <climits>

namespace portunusd::config_detail {
namespace {

int clamp_to_int(std::uint64_t n) noexcept
{
    if (n < 1)
        return 1;
    return n > INT_MAX ? INT_MAX : static_cast<int>(n);
}

std::string list_choices(std::span<const std::string_view> choices)
{
    std::string out;
    for (std::size_t i = 0; i < choices.size(); ++i) {
        if (i > 0)
            out += i + 1 == choices.size() ? " or " : ", ";
        out += choices[i];
    }
    return out;
}

}  // namespace

position position_of(const toml::source_region& region) noexcept
{
    return {clamp_to_int(region.begin.line), clamp_to_int(region.begin.column)};
}

std::string_view describe_type(const toml::node& node) noexcept
{
    switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a floating-point number";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    case toml::node_type::none: break;
    }
    return "nothing";
}

void diagnostics::error(position where, std::string message)
{
    errors_.push_back({source_, where.line, where.column, std::move(message)});
}

void diagnostics::warning(position where, std::string message)
{
    warnings_.push_back({source_, where.line, where.column, "warning: " + std::move(message)});
}

std::vector<config_error> diagnostics::take_sorted()
{
    sort_by_position(errors_);
    return std::move(errors_);
}

std::vector<config_error> diagnostics::take_sorted_warnings()
{
    sort_by_position(warnings_);
    return std::move(warnings_);
}

const toml::node* table_reader::find(std::string_view key) const
{
    return table_.get(key);
}

position table_reader::where(std::string_view key) const
{
    if (const toml::node* node = find(key))
        return position_of(node->source());
    return position_of(table_.source());
}

void table_reader::error(std::string_view key, std::string message)
{
    diag_.error(where(key), std::string{key} + ": " + message);
}

std::optional<std::string> table_reader::string(std::string_view key)
{
    const toml::node* node = find(key);
    if (!node)
        return std::nullopt;
    if (const auto* s = node->as_string())
        return s->get();
    error(key, "expected a string, found " + std::string{describe_type(*node)});
    return std::nullopt;
}

std::optional<bool> table_reader::boolean(std::string_view key)
{
    const toml::node* node = find(key);
    if (!node)
        return std::nullopt;
    if (const auto* b = node->as_boolean())
        return b->get();
    error(key, "expected a boolean (true or false), found " + std::string{describe_type(*node)});
    return std::nullopt;
}

std::optional<std::int64_t> table_reader::integer(std::string_view key)
{
    const toml::node* node = find(key);
    if (!node)
        return std::nullopt;
    if (const auto* i = node->as_integer())
        return i->get();
    error(key, "expected an integer, found " + std::string{describe_type(*node)});
    return std::nullopt;
}

std::optional<std::int64_t> table_reader::integer(std::string_view key, std::int64_t min, std::int64_t max)
{
    const auto value = integer(key);
    if (value && (*value < min || *value > max)) {
        error(key, std::to_string(*value) + " is out of range; expected " + std::to_string(min) + ".." +
                       std::to_string(max));
        return std::nullopt;
    }
    return value;
}

std::optional<std::chrono::milliseconds> table_reader::duration(std::string_view key, bool zero_allowed)
{
    const toml::node* node = find(key);
    if (!node)
        return std::nullopt;
    parsed<std::chrono::milliseconds> result;
    if (const auto* s = node->as_string())
        result = parse_duration(s->get(), zero_allowed);
    else if (const auto* i = node->as_integer())
        result = duration_from_seconds(i->get(), zero_allowed);
    else
        result.error = R"(expected a duration (a string such as "30s", or a whole number of seconds), found )" +
                       std::string{describe_type(*node)};
    if (!result.value)
        error(key, std::move(result.error));
    return result.value;
}

std::optional<std::uint64_t> table_reader::byte_size(std::string_view key)
{
    const toml::node* node = find(key);
    if (!node)
        return std::nullopt;
    parsed<std::uint64_t> result;
    if (const auto* s = node->as_string())
        result = parse_byte_size(s->get());
    else if (const auto* i = node->as_integer())
        result = byte_size_from_integer(i->get());
    else
        result.error = R"(expected a size (a string such as "200M", or a whole number of bytes), found )" +
                       std::string{describe_type(*node)};
    if (!result.value)
        error(key, std::move(result.error));
    return result.value;
}

std::optional<std::string> table_reader::one_of(std::string_view key, std::span<const std::string_view> choices)
{
    auto value = string(key);
    if (!value || std::find(choices.begin(), choices.end(), *value) != choices.end())
        return value;
    std::string message = quote(*value) + " is not valid; expected " + list_choices(choices);
    if (const auto close = suggest(*value, choices))
        message += "; did you mean \"" + std::string{*close} + "\"?";
    error(key, std::move(message));
    return std::nullopt;
}

std::optional<std::string> table_reader::door_path(std::string_view key)
{
    auto door = string(key);
    if (!door)
        return door;
    std::string problem;
    if (door->find('\0') != std::string::npos)
        problem = "path contains a NUL byte";
    // A relative path would resolve against whatever directory the daemon happens to run in.
    else if (door->empty() || door->front() != '/')
        problem = quote(*door) + " is not an absolute path";
    else if (door->back() == '/')
        problem = quote(*door) + " ends in \"/\"; expected the path of a door, not a directory";
    else if (door->size() > max_door_path)
        problem = "path is " + std::to_string(door->size()) + " bytes long; at most " +
                  std::to_string(max_door_path) + " fit in the sun_path of a Unix socket address";
    if (problem.empty())
        return door;
    error(key, std::move(problem));
    return std::nullopt;
}

std::optional<std::string> table_reader::name(std::string_view key)
{
    auto value = string(key);
    if (!value || is_valid_forward_name(*value))
        return value;
    error(key, quote(*value) + " is not a valid name; use 1 to 64 of A-Z a-z 0-9 _ . -");
    return std::nullopt;
}

std::optional<std::string> table_reader::account(std::string_view key)
{
    auto value = string(key);
    if (!value)
        return value;
    // Names reach getpwnam()/getgrnam() and log lines; these bytes are never part of a valid one.
    const bool valid = !value->empty() && std::none_of(value->begin(), value->end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u <= 0x20 || u == 0x7f || c == ':' || c == '/';
    });
    if (!valid) {
        error(key, quote(*value) + " is not a valid " + std::string{key} + " name");
        return std::nullopt;
    }
    return value;
}

void table_reader::require(std::span<const std::string_view> keys, std::string_view header)
{
    for (std::string_view key : keys) {
        if (!find(key))
            diag_.error(position_of(table_.source()),
                        std::string{header} + " is missing the required key \"" + std::string{key} + "\"");
    }
}

void table_reader::reject_unknown_keys(std::span<const std::string_view> known, std::string_view context,
                                       std::span<const other_table> elsewhere)
{
    for (auto&& [key, value] : table_) {
        const std::string_view k = key.str();
        if (std::find(known.begin(), known.end(), k) != known.end())
            continue;
        std::string message = "unknown key " + quote(k) + " " + std::string{context};
        const auto home = std::find_if(elsewhere.begin(), elsewhere.end(), [k](const other_table& t) {
            return std::find(t.keys.begin(), t.keys.end(), k) != t.keys.end();
        });
        if (home != elsewhere.end())
            message += "; it belongs " + std::string{home->name};
        else if (const auto close = suggest(k, known))
            message += "; did you mean \"" + std::string{*close} + "\"?";
        diag_.error(position_of(key.source()), std::move(message));
    }
}

std::vector<const toml::table*> tables_of(const toml::node& node, std::string_view key, diagnostics& diag)
{
    std::vector<const toml::table*> tables;
    const std::string name{key};
    const toml::array* array = node.as_array();
    if (!array) {
        const std::string found = node.is_table() ? "a table ([" + name + "])" : std::string{describe_type(node)};
        diag.error(position_of(node.source()),
                   name + ": expected an array of tables ([[" + name + "]]), found " + found);
        return tables;
    }
    for (const toml::node& element : *array) {
        if (const toml::table* table = element.as_table())
            tables.push_back(table);
        else
            diag.error(position_of(element.source()),
                       name + ": expected a table, found " + std::string{describe_type(element)});
    }
    return tables;
}

}  // namespace portunusd::config_detail
