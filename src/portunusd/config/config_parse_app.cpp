// SPDX-License-Identifier: MPL-2.0
// The [[app]] part of the schema: every key, its defaults, and the checks across apps.
#include "portunusd/config/config_parse_app.hpp"

#include "portunusd/config/config_values.hpp"

#include <algorithm>
#include <limits>
#include <map>
#include <string>
#include <utility>

namespace portunusd::config_detail {
namespace {

using namespace std::string_view_literals;

constexpr std::array required_app_keys{"name"sv, "door"sv, "command"sv};
constexpr std::array start_modes{"always"sv, "on_demand"sv};
constexpr std::int64_t max_instances = 64;

// One [[app]] as read, with what the checks across apps need to know about it.
struct app_draft {
    app_config cfg;
    bool has_name = false;
    bool has_door = false;
    position name_at;
};

}  // namespace

file_position file_position_of(position p) noexcept
{
    return {p.line, p.column};
}

std::optional<std::vector<std::string>> read_command(table_reader& r, diagnostics& diag, file_position& at)
{
    const toml::node* node = r.find("command");
    if (!node)
        return std::nullopt;
    const toml::array* array = node->as_array();
    if (!array) {
        r.error("command", R"(expected an array of strings, the program and its arguments, such as )"
                           R"(["/usr/local/bin/app", "-v"]; found )" + std::string{describe_type(*node)});
        return std::nullopt;
    }
    if (array->empty()) {
        r.error("command", "the array is empty; expected at least the absolute path of the program");
        return std::nullopt;
    }
    std::vector<std::string> argv;
    for (std::size_t i = 0; i < array->size(); ++i) {
        const toml::node& element = *array->get(i);
        const position element_at = position_of(element.source());
        const std::string label = "command[" + std::to_string(i) + "]: ";
        const auto* arg = element.as_string();
        if (!arg)
            diag.error(element_at, label + "expected a string, found " + std::string{describe_type(element)});
        // execve() takes C strings: a NUL would cut the argument short without a word.
        else if (arg->get().find('\0') != std::string::npos)
            diag.error(element_at, label + "contains a NUL byte");
        // PATH is not searched, so that which program runs does not depend on an environment.
        else if (i == 0 && (arg->get().empty() || arg->get().front() != '/'))
            diag.error(element_at, label + quote(arg->get()) + " is not an absolute path; the program is not "
                                           "looked up in PATH");
        else
            argv.push_back(arg->get());
    }
    if (argv.size() != array->size())
        return std::nullopt;
    at = file_position_of(position_of(array->get(0)->source()));
    return argv;
}

namespace {

std::optional<std::string> read_working_directory(table_reader& r)
{
    auto dir = r.string("working_directory");
    if (!dir)
        return dir;
    if (dir->find('\0') != std::string::npos)
        r.error("working_directory", "path contains a NUL byte");
    // A relative path would resolve against whatever directory the daemon happens to run in.
    else if (dir->empty() || dir->front() != '/')
        r.error("working_directory", quote(*dir) + " is not an absolute path");
    else
        return dir;
    return std::nullopt;
}

// The variables, in the order of the file: toml++ keeps a table's keys sorted by name.
std::optional<std::vector<std::pair<std::string, std::string>>> read_environment(table_reader& r, diagnostics& diag)
{
    const toml::node* node = r.find("environment");
    if (!node)
        return std::nullopt;
    const toml::table* table = node->as_table();
    if (!table) {
        r.error("environment", R"(expected a table of strings such as { LANG = "C.UTF-8" }, found )" +
                                   std::string{describe_type(*node)});
        return std::nullopt;
    }
    struct variable {
        position at;
        std::string name;
        std::string value;
    };
    std::vector<variable> variables;
    for (auto&& [key, value] : *table) {
        const std::string_view name = key.str();
        const position value_at = position_of(value.source());
        const auto* text = value.as_string();
        if (!is_valid_env_name(name))
            diag.error(position_of(key.source()), "environment: " + quote(name) +
                                                      " is not a valid variable name; use A-Z a-z 0-9 _, "
                                                      "not starting with a digit");
        else if (!text)
            diag.error(value_at, "environment: " + std::string{name} + ": expected a string, found " +
                                     std::string{describe_type(value)});
        else if (text->get().find('\0') != std::string::npos)
            diag.error(value_at, "environment: " + std::string{name} + ": the value contains a NUL byte");
        else
            variables.push_back({position_of(key.source()), std::string{name}, text->get()});
    }
    if (variables.size() != table->size())
        return std::nullopt;
    std::stable_sort(variables.begin(), variables.end(), [](const variable& a, const variable& b) {
        return a.at.line != b.at.line ? a.at.line < b.at.line : a.at.column < b.at.column;
    });
    std::vector<std::pair<std::string, std::string>> out;
    for (variable& v : variables)
        out.emplace_back(std::move(v.name), std::move(v.value));
    return out;
}

// start, start_timeout and idle_stop, which depends on start.
void read_start_keys(table_reader& r, app_config& app)
{
    const auto start = r.one_of("start", start_modes);
    if (start)
        app.start = *start == "on_demand" ? app_start::on_demand : app_start::always;
    if (auto v = r.duration("start_timeout"))
        app.start_timeout = *v;
    if (auto v = r.duration("idle_stop", true)) {
        app.idle_stop = *v;
        // Only a call that finds an app stopped starts it again, and only on demand. An invalid
        // start has been reported already; which one was meant is anyone's guess.
        if (app.start == app_start::always && (start || !r.find("start")))
            r.error("idle_stop", R"(applies only to start = "on_demand"; an app started "always" is never )"
                                 R"(stopped for being idle)");
    }
}

void read_restart_keys(table_reader& r, app_config& app)
{
    const auto delay = r.duration("restart_delay");
    const auto max_delay = r.duration("restart_max_delay");
    if (delay)
        app.restart_delay = *delay;
    if (max_delay)
        app.restart_max_delay = *max_delay;
    const bool both_valid = (delay || !r.find("restart_delay")) && (max_delay || !r.find("restart_max_delay"));
    if (!both_valid || app.restart_delay <= app.restart_max_delay)
        return;
    // The message goes to the key written; with both written, to the first delay.
    if (delay)
        r.error("restart_delay", format_duration(app.restart_delay) + " is longer than restart_max_delay (" +
                                     format_duration(app.restart_max_delay) + (max_delay ? ")" : ", the default)"));
    else
        r.error("restart_max_delay", format_duration(app.restart_max_delay) + " is shorter than restart_delay (" +
                                         format_duration(app.restart_delay) + ", the default)");
}

// The door, and that the door of its last instance fits in a socket address too.
void read_door(table_reader& r, app_draft& a)
{
    auto door = r.door_path("door");
    if (!door)
        return;
    a.cfg.door = std::move(*door);
    a.cfg.door_at = file_position_of(r.where("door"));
    a.has_door = true;
    const std::vector<std::string> doors = app_instance_doors(a.cfg);
    if (doors.back().size() > max_door_path)
        r.error("door", "the door of instance " + std::to_string(a.cfg.instances) + ", " + quote(doors.back()) +
                            ", is " + std::to_string(doors.back().size()) + " bytes long; at most " +
                            std::to_string(max_door_path) + " fit in the sun_path of a Unix socket address");
}

app_draft read_app(const toml::table& table, diagnostics& diag, std::span<const other_table> elsewhere)
{
    app_draft a;
    const position header = position_of(table.source());
    a.cfg.line = header.line;
    a.cfg.column = header.column;

    table_reader r{table, diag};
    r.reject_unknown_keys(app_keys, "in [[app]]", elsewhere);
    r.require(required_app_keys, "[[app]]");

    if (auto name = r.name("name")) {
        a.cfg.name = std::move(*name);
        a.has_name = true;
        a.name_at = r.where("name");
    }
    // Read before the door, whose instance doors it decides.
    if (auto v = r.integer("instances", 1, max_instances))
        a.cfg.instances = static_cast<unsigned>(*v);
    read_door(r, a);
    if (auto command = read_command(r, diag, a.cfg.command_at))
        a.cfg.command = std::move(*command);
    if (auto user = r.account("user")) {
        a.cfg.user = std::move(user);
        a.cfg.user_at = file_position_of(r.where("user"));
    }
    if (auto group = r.account("group")) {
        a.cfg.group = std::move(group);
        a.cfg.group_at = file_position_of(r.where("group"));
    }
    if (auto dir = read_working_directory(r)) {
        a.cfg.working_directory = std::move(*dir);
        a.cfg.working_directory_at = file_position_of(r.where("working_directory"));
    }
    if (auto environment = read_environment(r, diag))
        a.cfg.environment = std::move(*environment);
    read_start_keys(r, a.cfg);
    read_restart_keys(r, a.cfg);
    if (auto v = r.integer("max_calls", 0, std::numeric_limits<std::int64_t>::max()))
        a.cfg.max_calls = static_cast<std::uint64_t>(*v);
    if (auto v = r.byte_size("max_memory"))
        a.cfg.max_memory = *v;
    if (auto v = r.boolean("upgrade_on_change"))
        a.cfg.upgrade_on_change = *v;
    if (auto v = r.duration("stop_timeout"))
        a.cfg.stop_timeout = *v;
    return a;
}

std::string describe_app(const app_draft& a)
{
    const std::string line = " at line " + std::to_string(a.cfg.line);
    return a.has_name ? "app " + quote(a.cfg.name) + line : "the [[app]]" + line;
}

// Which door of an app a path is: its own (0) or that of instance i.
std::string describe_door(std::size_t instance, const std::string& path)
{
    return instance == 0 ? quote(path) : "the door of instance " + std::to_string(instance) + ", " + quote(path) + ",";
}

void check_across_apps(const std::vector<app_draft>& drafts, diagnostics& diag)
{
    std::map<std::string_view, const app_draft*> by_name;
    // Every door an app serves, its own (0) and its instances' (1..N), so that no two apps serve one.
    std::map<std::string, std::pair<const app_draft*, std::size_t>> by_door;
    for (const app_draft& a : drafts) {
        if (a.has_name) {
            const auto [first, inserted] = by_name.emplace(a.cfg.name, &a);
            if (!inserted)
                diag.error(a.name_at, "name: duplicate app name " + quote(a.cfg.name) + "; first used at line " +
                                          std::to_string(first->second->name_at.line));
        }
        if (!a.has_door)
            continue;
        std::vector<std::string> doors = app_instance_doors(a.cfg);
        if (a.cfg.instances > 1)
            doors.insert(doors.begin(), a.cfg.door);
        for (std::size_t i = 0; i < doors.size(); ++i) {
            const auto [earlier, inserted] = by_door.emplace(doors[i], std::pair{&a, i});
            if (inserted)
                continue;
            const auto [other, j] = earlier->second;
            const std::string theirs = j == 0 ? "the door" : "the door of instance " + std::to_string(j);
            diag.error({a.cfg.door_at.line, a.cfg.door_at.column},
                       "door: " + describe_door(i, doors[i]) + " is also " + theirs + " of " + describe_app(*other));
            break;  // one clash says enough about an app's doors
        }
    }
}

}  // namespace

std::vector<app_config> read_apps(const toml::table& root, diagnostics& diag, std::span<const other_table> elsewhere)
{
    std::vector<app_draft> drafts;
    if (const toml::node* node = root.get("app"))
        for (const toml::table* table : tables_of(*node, "app", diag))
            drafts.push_back(read_app(*table, diag, elsewhere));
    check_across_apps(drafts, diag);
    std::vector<app_config> apps;
    for (app_draft& a : drafts)
        apps.push_back(std::move(a.cfg));
    return apps;
}

}  // namespace portunusd::config_detail
