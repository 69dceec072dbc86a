// SPDX-License-Identifier: MPL-2.0
// Tests of [[app]]: every key, its defaults and errors, the checks across apps, the checks against
// this machine, the door-directory check of app doors and the privileges the apps need.
#include "config_test_support.hpp"

#include "portunusd/config/config_values.hpp"

#include <string>

namespace {

using namespace std::chrono_literals;
using namespace portunusd;
using namespace portunusd::test;

// A uid no account has, for a daemon whose group cannot be looked up.
constexpr uid_t unknown_uid = 4'000'000;

/// `app` after minimal_forward, which takes lines 1 to 5: an `app` that starts with a blank line
/// has its [[app]] header on line 7.
std::string with_forward(std::string_view app)
{
    return std::string{minimal_forward} + std::string{app};
}

std::string errors_of(const std::string& text)
{
    const config_result r = parse_config_string(text, "test.toml");
    CHECK_FALSE(r.value);
    return render(r.errors);
}

/// An [[app]] with the three required keys on lines 8 to 10 (after minimal_forward), running
/// `program`, then `more` from line 11 on.
std::string app_running(const std::string& program, std::string_view more = {})
{
    return "\n[[app]]\nname = \"web\"\ndoor = \"/run/web.door\"\ncommand = [\"" + program + "\", \"-v\"]\n" +
           std::string{more};
}

std::string valid_app(std::string_view more = {})
{
    return app_running("/usr/bin/true", more);
}

struct error_case {
    std::string_view what;
    std::string text;      ///< after minimal_forward, from line 6
    std::string expected;  ///< every error, without the "test.toml:" in front of each line
};

std::string prefixed(std::string_view lines)
{
    std::string out;
    std::size_t start = 0;
    while (start < lines.size()) {
        const std::size_t end = lines.find('\n', start);
        out += "test.toml:" + std::string{lines.substr(start, end - start + 1)};
        start = end + 1;
    }
    return out;
}

void check_cases(const std::vector<error_case>& cases)
{
    for (const error_case& c : cases) {
        INFO(c.what);
        CHECK(errors_of(with_forward(c.text)) == prefixed(c.expected));
    }
}

}  // namespace

TEST_CASE("config: an app with only the required keys gets the defaults", "[config][app]")
{
    const config cfg = parse_ok(with_forward(valid_app()));
    REQUIRE(cfg.apps.size() == 1);
    const app_config& a = cfg.apps[0];
    CHECK(a.name == "web");
    CHECK(a.door == "/run/web.door");
    CHECK(a.command == std::vector<std::string>{"/usr/bin/true", "-v"});
    CHECK_FALSE(a.user);
    CHECK_FALSE(a.group);
    CHECK(a.working_directory == "/");
    CHECK(a.environment.empty());
    CHECK(a.start == app_start::always);
    CHECK(a.start_timeout == 10s);
    CHECK(a.idle_stop == 0ms);
    CHECK(a.instances == 1);
    CHECK(a.restart_delay == 100ms);
    CHECK(a.restart_max_delay == 30s);
    CHECK(a.max_calls == 0);
    CHECK(a.max_memory == 0);
    CHECK_FALSE(a.upgrade_on_change);
    CHECK(a.stop_timeout == 10s);
    CHECK(a.line == 7);
    CHECK(a.column == 1);
    CHECK(a.door_at.line == 9);
    CHECK(a.door_at.column == 8);
    CHECK(a.command_at.line == 10);
    CHECK(a.command_at.column == 12);
    CHECK(app_instance_doors(a) == std::vector<std::string>{"/run/web.door"});
}

TEST_CASE("config: a file without apps", "[config][app]")
{
    CHECK(parse_ok(minimal_forward).apps.empty());
    CHECK(parse_ok("app = []\n" + std::string{minimal_forward}).apps.empty());
}

TEST_CASE("config: every app key is read", "[config][app]")
{
    const config cfg = parse_ok(with_forward(R"(
[[app]]
name = "api.v2"
door = "/run/api.door"
command = ["/opt/api/bin/api", "--port", "", "-v"]
user = "www-data"
group = "nogroup"
working_directory = "/srv/api"
start = "on_demand"
start_timeout = "2s"
idle_stop = "10m"
instances = 4
restart_delay = "1s"
restart_max_delay = 120
max_calls = 100000
max_memory = "200M"
upgrade_on_change = true
stop_timeout = "500ms"

[app.environment]
TZ = "UTC"
LANG = "C.UTF-8"
_private = ""
PATH = "/usr/bin:/bin"

[[app]]
name = "echo"
door = "/run/echo.door"
command = ["/opt/echo"]
environment = { Z9 = "z", A = "=a=" }
max_memory = 1048576
idle_stop = 0
start = "on_demand"
)"));
    REQUIRE(cfg.apps.size() == 2);
    const app_config& a = cfg.apps[0];
    CHECK(a.name == "api.v2");
    CHECK(a.door == "/run/api.door");
    CHECK(a.command == std::vector<std::string>{"/opt/api/bin/api", "--port", "", "-v"});
    CHECK(a.user == "www-data");
    CHECK(a.group == "nogroup");
    CHECK(a.working_directory == "/srv/api");
    CHECK(a.start == app_start::on_demand);
    CHECK(a.start_timeout == 2s);
    CHECK(a.idle_stop == 10min);
    CHECK(a.instances == 4);
    CHECK(a.restart_delay == 1s);
    CHECK(a.restart_max_delay == 2min);
    CHECK(a.max_calls == 100'000);
    CHECK(a.max_memory == 200u * 1024 * 1024);
    CHECK(a.upgrade_on_change);
    CHECK(a.stop_timeout == 500ms);
    // In the order of the file, not of the names.
    using variables = std::vector<std::pair<std::string, std::string>>;
    CHECK(a.environment == variables{{"TZ", "UTC"}, {"LANG", "C.UTF-8"}, {"_private", ""}, {"PATH", "/usr/bin:/bin"}});
    CHECK(a.user_at.line == 11);
    CHECK(a.user_at.column == 8);
    CHECK(a.group_at.line == 12);
    CHECK(a.working_directory_at.line == 13);
    CHECK(a.working_directory_at.column == 21);
    CHECK(app_instance_doors(a) ==
          std::vector<std::string>{"/run/api.door.1", "/run/api.door.2", "/run/api.door.3", "/run/api.door.4"});

    const app_config& b = cfg.apps[1];
    CHECK(b.environment == variables{{"Z9", "z"}, {"A", "=a="}});
    CHECK(b.max_memory == 1'048'576);
    CHECK(b.idle_stop == 0ms);
    CHECK(b.line == 31);
}

TEST_CASE("config: apps written as inline tables", "[config][app]")
{
    const config cfg = parse_ok(R"(app = [
  { name = "a", door = "/run/a.door", command = ["/bin/a"] },
  { name = "b", door = "/run/b.door", command = ["/bin/b"], instances = 2 },
])" + std::string{minimal_forward});
    REQUIRE(cfg.apps.size() == 2);
    CHECK(cfg.apps[1].instances == 2);
    CHECK(cfg.apps[1].line == 3);
    CHECK(cfg.apps[1].command_at.column == 50);
}

TEST_CASE("config: the required app keys", "[config][app]")
{
    const std::string long_door = "/run/" + std::string(100, 'd');
    check_cases({
        {"none of them", "\n[[app]]\nuser = \"root\"\n",
         "7:1: [[app]] is missing the required key \"name\"\n"
         "7:1: [[app]] is missing the required key \"door\"\n"
         "7:1: [[app]] is missing the required key \"command\"\n"},
        {"a name with a blank", "\n[[app]]\nname = \"web app\"\ndoor = \"/run/a\"\ncommand = [\"/a\"]\n",
         "8:8: name: \"web app\" is not a valid name; use 1 to 64 of A-Z a-z 0-9 _ . -\n"},
        {"a name of the wrong type", "\n[[app]]\nname = 7\ndoor = \"/run/a\"\ncommand = [\"/a\"]\n",
         "8:8: name: expected a string, found an integer\n"},
        {"a relative door", "\n[[app]]\nname = \"a\"\ndoor = \"a.door\"\ncommand = [\"/a\"]\n",
         "9:8: door: \"a.door\" is not an absolute path\n"},
        {"a door that is a directory", "\n[[app]]\nname = \"a\"\ndoor = \"/run/\"\ncommand = [\"/a\"]\n",
         "9:8: door: \"/run/\" ends in \"/\"; expected the path of a door, not a directory\n"},
        {"instance doors too long for a socket address",
         "\n[[app]]\nname = \"a\"\ndoor = \"" + long_door + "\"\ncommand = [\"/a\"]\ninstances = 10\n",
         "9:8: door: the door of instance 10, \"/run/" + std::string(59, 'd') +
             "...\", is 108 bytes long; at most 107 fit in the sun_path of a Unix socket address\n"},
        {"a command that is a string", "\n[[app]]\nname = \"a\"\ndoor = \"/run/a\"\ncommand = \"/bin/a -v\"\n",
         "10:11: command: expected an array of strings, the program and its arguments, such as "
         "[\"/usr/local/bin/app\", \"-v\"]; found a string\n"},
        {"an empty command", "\n[[app]]\nname = \"a\"\ndoor = \"/run/a\"\ncommand = []\n",
         "10:11: command: the array is empty; expected at least the absolute path of the program\n"},
        {"every way an argument can be wrong",
         "\n[[app]]\nname = \"a\"\ndoor = \"/run/a\"\ncommand = [\"app\", 1, \"a\\u0000b\"]\n",
         "10:12: command[0]: \"app\" is not an absolute path; the program is not looked up in PATH\n"
         "10:19: command[1]: expected a string, found an integer\n"
         "10:22: command[2]: contains a NUL byte\n"},
        {"an empty program", "\n[[app]]\nname = \"a\"\ndoor = \"/run/a\"\ncommand = [\"\"]\n",
         "10:12: command[0]: \"\" is not an absolute path; the program is not looked up in PATH\n"},
    });
    // Instance doors that just fit.
    CHECK(parse_ok(with_forward("\n[[app]]\nname = \"a\"\ndoor = \"" + long_door.substr(0, 104) +
                                "\"\ncommand = [\"/a\"]\ninstances = 10\n"))
              .apps.at(0)
              .instances == 10);
}

TEST_CASE("config: the optional app keys", "[config][app]")
{
    check_cases({
        {"user and group names", valid_app("user = \"a b\"\ngroup = \"x:y\"\n"),
         "11:8: user: \"a b\" is not a valid user name\n"
         "12:9: group: \"x:y\" is not a valid group name\n"},
        {"an empty user", valid_app("user = \"\"\n"), "11:8: user: \"\" is not a valid user name\n"},
        {"a relative working directory", valid_app("working_directory = \"srv\"\n"),
         "11:21: working_directory: \"srv\" is not an absolute path\n"},
        {"a working directory of the wrong type", valid_app("working_directory = 5\n"),
         "11:21: working_directory: expected a string, found an integer\n"},
        {"an environment that is not a table", valid_app("environment = \"A=1\"\n"),
         "11:15: environment: expected a table of strings such as { LANG = \"C.UTF-8\" }, found a string\n"},
        {"every way a variable can be wrong",
         valid_app("environment = { \"1X\" = \"a\", OK = 1, \"A-B\" = \"c\", NUL = \"a\\u0000\", \"\" = \"e\" }\n"),
         "11:17: environment: \"1X\" is not a valid variable name; use A-Z a-z 0-9 _, not starting with a digit\n"
         "11:34: environment: OK: expected a string, found an integer\n"
         "11:37: environment: \"A-B\" is not a valid variable name; use A-Z a-z 0-9 _, not starting with a digit\n"
         "11:56: environment: NUL: the value contains a NUL byte\n"
         "11:67: environment: \"\" is not a valid variable name; use A-Z a-z 0-9 _, not starting with a digit\n"},
        {"a start mode", valid_app("start = \"lazy\"\n"),
         "11:9: start: \"lazy\" is not valid; expected always or on_demand\n"},
        {"a misspelt start mode", valid_app("start = \"on-demand\"\n"),
         "11:9: start: \"on-demand\" is not valid; expected always or on_demand; did you mean \"on_demand\"?\n"},
        {"a zero start timeout", valid_app("start_timeout = \"0s\"\nstop_timeout = 0\n"),
         "11:17: start_timeout: \"0s\" is out of range; expected 1ms..24h\n"
         "12:16: stop_timeout: 0 is out of range; expected 1ms..24h\n"},
        {"a malformed stop timeout", valid_app("stop_timeout = \"1d\"\n"),
         "11:16: stop_timeout: \"1d\" is not a duration; expected a whole number and a unit (ms, s, m or h) "
         "such as \"500ms\", \"30s\" or \"5m\"\n"},
        {"idle_stop beyond a day", valid_app("start = \"on_demand\"\nidle_stop = \"25h\"\n"),
         "12:13: idle_stop: \"25h\" is out of range; expected 0s..24h\n"},
        {"instances out of range", valid_app("instances = 0\n"),
         "11:13: instances: 0 is out of range; expected 1..64\n"},
        {"too many instances", valid_app("instances = 65\n"),
         "11:13: instances: 65 is out of range; expected 1..64\n"},
        {"negative max_calls", valid_app("max_calls = -1\n"),
         "11:13: max_calls: -1 is out of range; expected 0..9223372036854775807\n"},
        {"a size with a unit of its own", valid_app("max_memory = \"200MB\"\n"),
         "11:14: max_memory: \"200MB\" is not a size; expected a whole number of bytes, or one with a unit "
         "(K, M, G or T, powers of 1024) such as \"512K\", \"200M\" or \"1G\"\n"},
        {"a negative size", valid_app("max_memory = -1\n"),
         "11:14: max_memory: -1 is out of range; expected 0..1152921504606846976\n"},
        {"a size too large", valid_app("max_memory = \"1048577T\"\n"),
         "11:14: max_memory: \"1048577T\" is too large; at most 1048576T\n"},
        {"a size of the wrong type", valid_app("max_memory = 1.5\n"),
         "11:14: max_memory: expected a size (a string such as \"200M\", or a whole number of bytes), found a "
         "floating-point number\n"},
        {"upgrade_on_change of the wrong type", valid_app("upgrade_on_change = \"yes\"\n"),
         "11:21: upgrade_on_change: expected a boolean (true or false), found a string\n"},
    });
}

TEST_CASE("config: idle_stop needs start = \"on_demand\"", "[config][app]")
{
    const std::string idle = "idle_stop: applies only to start = \"on_demand\"; an app started \"always\" is never "
                             "stopped for being idle\n";
    check_cases({
        {"by default an app starts always", valid_app("idle_stop = \"5m\"\n"), "11:13: " + idle},
        {"even zero", valid_app("start = \"always\"\nidle_stop = 0\n"), "12:13: " + idle},
        // Which start was meant cannot be told, so only the start is reported.
        {"an invalid start", valid_app("start = \"sometimes\"\nidle_stop = \"5m\"\n"),
         "11:9: start: \"sometimes\" is not valid; expected always or on_demand\n"},
    });
    const config on_demand = parse_ok(with_forward(valid_app("start = \"on_demand\"\nidle_stop = \"5m\"\n")));
    CHECK(on_demand.apps.at(0).idle_stop == 5min);
}

TEST_CASE("config: restart_delay may not exceed restart_max_delay", "[config][app]")
{
    check_cases({
        {"a delay above the default maximum", valid_app("restart_delay = \"1m\"\n"),
         "11:17: restart_delay: 1m is longer than restart_max_delay (30s, the default)\n"},
        {"a maximum below the default delay", valid_app("restart_max_delay = \"50ms\"\n"),
         "11:21: restart_max_delay: 50ms is shorter than restart_delay (100ms, the default)\n"},
        {"both written", valid_app("restart_max_delay = \"5s\"\nrestart_delay = 10\n"),
         "12:17: restart_delay: 10s is longer than restart_max_delay (5s)\n"},
        {"an invalid delay is reported alone", valid_app("restart_delay = \"soon\"\nrestart_max_delay = \"50ms\"\n"),
         "11:17: restart_delay: \"soon\" is not a duration; expected a whole number and a unit (ms, s, m or h) "
         "such as \"500ms\", \"30s\" or \"5m\"\n"},
    });
    const config equal = parse_ok(with_forward(valid_app("restart_delay = \"2s\"\nrestart_max_delay = 2\n")));
    CHECK(equal.apps.at(0).restart_delay == equal.apps.at(0).restart_max_delay);
}

TEST_CASE("config: [[app]] tables and their keys", "[config][app]")
{
    check_cases({
        {"[app] instead of [[app]]", "\n[app]\nname = \"a\"\n",
         "7:1: app: expected an array of tables ([[app]]), found a table ([app])\n"},
        {"unknown and misplaced keys",
         valid_app("comand = [\"/a\"]\nlisten = \"127.0.0.1:1\"\nthreads = 2\nforward = 1\nbogus_key = 1\n"),
         "11:1: unknown key \"comand\" in [[app]]; did you mean \"command\"?\n"
         "12:1: unknown key \"listen\" in [[app]]; it belongs in [[forward]]\n"
         "13:1: unknown key \"threads\" in [[app]]; it belongs in [daemon]\n"
         "14:1: unknown key \"forward\" in [[app]]; it belongs at top level\n"
         "15:1: unknown key \"bogus_key\" in [[app]]\n"},
    });
    // Top-level keys come before the first table, so these files start with them.
    CHECK(errors_of("app = 1\n" + std::string{minimal_forward}) ==
          "test.toml:1:7: app: expected an array of tables ([[app]]), found an integer\n");
    CHECK(errors_of("app = [1, \"x\"]\n" + std::string{minimal_forward}) ==
          "test.toml:1:8: app: expected a table, found an integer\n"
          "test.toml:1:11: app: expected a table, found a string\n");
    CHECK(errors_of("instances = 2\n\n[daemon]\nstart = \"always\"\n\n[[forward]]\nprotocol = \"tcp\"\n"
                    "listen = \"127.0.0.1:7008\"\ndoor = \"/run/b\"\ncommand = [\"/b\"]\n") ==
          "test.toml:1:1: unknown key \"instances\" at top level; it belongs in [[app]]\n"
          "test.toml:4:1: unknown key \"start\" in [daemon]; it belongs in [[app]]\n"
          "test.toml:10:11: command applies only to exec forwards (protocol = \"exec\"); a program the daemon keeps "
          "running is an [[app]]\n");
}

TEST_CASE("config: apps are checked against each other", "[config][app]")
{
    const auto app = [](std::string_view name, std::string_view door, std::string_view more = {}) {
        return "\n[[app]]\nname = \"" + std::string{name} + "\"\ndoor = \"" + std::string{door} +
               "\"\ncommand = [\"/a\"]\n" + std::string{more};
    };
    // Each app() takes 5 lines: the second's header is on line 12, its name on 13 and its door on 14.
    check_cases({
        {"two names", app("web", "/run/a") + app("web", "/run/b"),
         "13:8: name: duplicate app name \"web\"; first used at line 8\n"},
        {"two doors", app("a", "/run/web.door") + app("b", "/run/web.door"),
         "14:8: door: \"/run/web.door\" is also the door of app \"a\" at line 7\n"},
        {"a door that is another app's instance door", app("a", "/run/a", "instances = 2\n") + app("b", "/run/a.2"),
         "15:8: door: \"/run/a.2\" is also the door of instance 2 of app \"a\" at line 7\n"},
        {"an instance door that is another app's door", app("a", "/run/x.1") + app("b", "/run/x", "instances = 3\n"),
         "14:8: door: the door of instance 1, \"/run/x.1\", is also the door of app \"a\" at line 7\n"},
        {"instance doors of two apps", app("a", "/run/x", "instances = 2\n") + app("b", "/run/x", "instances = 2\n"),
         "15:8: door: \"/run/x\" is also the door of app \"a\" at line 7\n"},
        {"an app without a valid name", app("a b", "/run/x") + app("b", "/run/x"),
         "8:8: name: \"a b\" is not a valid name; use 1 to 64 of A-Z a-z 0-9 _ . -\n"
         "14:8: door: \"/run/x\" is also the door of the [[app]] at line 7\n"},
    });
    // Forwards and apps are named apart, and an app's door may serve a forward or nothing yet.
    const config cfg = parse_ok("[[forward]]\nname = \"echo\"\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:7007\"\n"
                                "door = \"/var/run/echo.door\"\n" + app("echo", "/var/run/echo.door") +
                                app("b", "/run/a", "instances = 2\n") + app("c", "/run/a.3"));
    CHECK(cfg.apps.size() == 3);
}

TEST_CASE("config: an app that moved in the file is unchanged", "[config][app]")
{
    const config a = parse_ok(with_forward(valid_app()));
    const config b = parse_ok(with_forward("\n# moved\n" + valid_app()));
    REQUIRE(a.apps.size() == 1);
    REQUIRE(b.apps.size() == 1);
    CHECK(a.apps[0].line != b.apps[0].line);
    CHECK(a.apps[0] == b.apps[0]);
    const config c = parse_ok(with_forward(valid_app("max_calls = 1\n")));
    CHECK_FALSE(a.apps[0] == c.apps.at(0));
}

TEST_CASE("config: sizes", "[config][app]")
{
    using config_detail::byte_size_from_integer;
    using config_detail::parse_byte_size;
    CHECK(parse_byte_size("0").value == 0U);
    CHECK(parse_byte_size("4096").value == 4096U);
    CHECK(parse_byte_size("512K").value == 512U * 1024);
    CHECK(parse_byte_size("200M").value == 200U * 1024 * 1024);
    CHECK(parse_byte_size("1G").value == 1024U * 1024 * 1024);
    CHECK(parse_byte_size("0G").value == 0U);
    CHECK(parse_byte_size("1048576T").value == config_detail::max_byte_size);
    CHECK(parse_byte_size("1152921504606846976").value == config_detail::max_byte_size);
    for (std::string_view bad : {"", "M", "1.5G", "200MB", "200m", "1 G", "-1", "+1", "1KM", "0x10", "1GiB"}) {
        INFO(bad);
        const auto r = parse_byte_size(bad);
        CHECK_FALSE(r.value);
        CHECK(r.error.find("is not a size") != std::string::npos);
    }
    for (std::string_view big : {"1048577T", "1073741825G", "1152921504606846977", "99999999999999999999999K"}) {
        INFO(big);
        CHECK(parse_byte_size(big).error == config_detail::quote(big) + " is too large; at most 1048576T");
    }
    CHECK(byte_size_from_integer(0).value == 0U);
    CHECK(byte_size_from_integer(1 << 20).value == 1U << 20);
    CHECK(byte_size_from_integer(-1).error == "-1 is out of range; expected 0..1152921504606846976");
    CHECK_FALSE(byte_size_from_integer(std::numeric_limits<std::int64_t>::max()).value);
}

TEST_CASE("config: environment variable names", "[config][app]")
{
    using config_detail::is_valid_env_name;
    for (std::string_view good : {"A", "_", "PATH", "lower_case", "X9", "_1"})
        CHECK(is_valid_env_name(good));
    for (std::string_view bad : {"", "9X", "A-B", "A=B", "A B", "Ä", "A.B"})
        CHECK_FALSE(is_valid_env_name(bad));
}

TEST_CASE("config: file modes as chmod takes them", "[config]")
{
    CHECK(config_detail::octal_mode(0644) == "0644");
    CHECK(config_detail::octal_mode(S_IFREG | 01777) == "1777");
    CHECK(config_detail::octal_mode(0) == "0000");
}

TEST_CASE("config: what an app needs of this machine", "[config][app]")
{
    const scratch_dir tmp;
    const fs::path program = tmp.path() / "app";
    std::ofstream{program} << "#!/bin/sh\n";
    REQUIRE(::chmod(program.c_str(), 0750) == 0);
    const fs::path notes = tmp.path() / "notes";
    std::ofstream{notes} << "x";
    REQUIRE(::chmod(notes.c_str(), 0644) == 0);
    const std::string t = tmp.path().string();
    const std::string app = program.string();
    const auto checked = [](const std::string& text) { return render(check_apps(parse_ok(with_forward(text)))); };

    CHECK(checked(app_running(app, "user = \"root\"\ngroup = \"root\"\nworking_directory = \"" + t + "\"\n")).empty());
    CHECK(checked(app_running(app)).empty());  // working_directory "/" by default
    const std::string at_program = "test.toml:10:12: command[0]: \"";
    CHECK(checked(app_running(t + "/missing")) == at_program + t + "/missing\" does not exist\n");
    CHECK(checked(app_running(t + "/notes/x")) == at_program + t + "/notes/x\" does not exist\n");
    CHECK(checked(app_running(t)) == at_program + t + "\" is not a regular file\n");
    CHECK(checked(app_running(t + "/notes")) == at_program + t + "/notes\" is not executable (mode 0644)\n");
    const std::string strangers = "user = \"portunusd-test-no-such-user\"\ngroup = \"portunusd-test-no-such-group\"\n";
    CHECK(checked(app_running(app, strangers + "working_directory = \"" + t + "/none\"\n")) ==
          "test.toml:11:8: user: no user \"portunusd-test-no-such-user\" on this machine\n"
          "test.toml:12:9: group: no group \"portunusd-test-no-such-group\" on this machine\n"
          "test.toml:13:21: working_directory: \"" + t + "/none\" does not exist\n");
    CHECK(checked(app_running(app, "working_directory = \"" + t + "/notes\"\n")) ==
          "test.toml:11:21: working_directory: \"" + t + "/notes\" is not a directory\n");
    // Parsing alone touches nothing of the machine.
    CHECK(parse_config_string(with_forward(app_running(t + "/missing", strangers)), "t").value);
}

TEST_CASE("config: the door directory check covers app doors", "[config][app][door]")
{
    const scratch_dir tmp;
    const std::string safe = tmp.make("safe", 0755).string();
    const std::string world = tmp.make("world", 0777).string();
    const std::string missing = (tmp.path() / "missing").string();
    const auto app = [](std::string_view name, const std::string& door, std::string_view more = {}) {
        return "\n[[app]]\nname = \"" + std::string{name} + "\"\ndoor = \"" + door + "\"\ncommand = [\"/a\"]\n" +
               std::string{more};
    };
    const config cfg = parse_ok(with_forward(app("a", safe + "/a.door") + app("b", world + "/b.door") +
                                             app("c", missing + "/c.door", "instances = 4\n")));
    // The instance doors of "c" share its door's directory and are reported once with it.
    CHECK(render(check_door_paths(cfg)) ==
          "test.toml:14:8: door: directory \"" + world + "\" is writable by its group and others (mode 0777), so "
          "another user could replace the door; use a directory only its owner can write, or set "
          "allow_insecure_door_dir = true\n"
          "test.toml:19:8: door: directory \"" + missing + "\" does not exist\n");
}

TEST_CASE("config: load_config reports door and app problems together", "[config][app]")
{
    const scratch_dir tmp;
    const fs::path path = tmp.path() / "apps.toml";
    const std::string missing = (tmp.path() / "missing").string();
    std::ofstream{path} << "[[forward]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:7007\"\n"
                        << "door = \"" << missing << "/echo.door\"\n"
                        << "\n[[app]]\nname = \"a\"\ndoor = \"" << tmp.path().string() << "/a.door\"\n"
                        << "command = [\"" << missing << "/a\"]\n";
    const config_result r = load_config(path.string());
    CHECK_FALSE(r.value);
    // A forward's missing door directory is a warning (its application brings it); an app's
    // missing program is an error. Both come from one load.
    CHECK(render(r.errors) == path.string() + ":9:12: command[0]: \"" + missing + "/a\" does not exist\n");
    CHECK(render(r.warnings) == path.string() + ":4:8: warning: door: directory \"" + missing +
                                    "\" does not exist yet; the application that serves this door needs it (create "
                                    "it, writable only by its owner, before starting the application)\n");

    std::ofstream{path, std::ios::trunc} << minimal_forward << valid_app();
    const config_result good = load_config(path.string());
    INFO(render(good.errors));
    CHECK(good.value);
}

TEST_CASE("config: the privileges starting the apps takes", "[config][app]")
{
    const auto with_apps = [](std::string_view apps) { return parse_ok(with_forward(apps)); };
    CHECK(privileges_needed(parse_ok(minimal_forward), 0) == "no credential changes needed: no [[app]] or exec forward is configured");
    const std::string same = "no credential changes needed: every app and exec program runs as the daemon's own user and group";
    CHECK(privileges_needed(with_apps(valid_app()), unknown_uid) == same);
    CHECK(privileges_needed(with_apps(valid_app("user = \"root\"\n")), 0) == same);
    CHECK(privileges_needed(with_apps("[daemon]\nuser = \"root\"\n" + valid_app("group = \"root\"\n")), 0) == same);

    CHECK(privileges_needed(with_apps(valid_app("user = \"root\"\n")), unknown_uid) ==
          "needs CAP_SETUID, CAP_SETGID and CAP_KILL (illumos: proc_setid) to start and stop apps and exec programs as: root");
    // A daemon whose own group cannot be told takes any group to be another.
    CHECK(privileges_needed(with_apps(valid_app("group = \"root\"\n")), unknown_uid) ==
          "needs CAP_SETUID, CAP_SETGID and CAP_KILL (illumos: proc_setid) to start and stop apps and exec programs as: :root");
    CHECK(privileges_needed(with_apps(valid_app("user = \"portunusd-test-no-such-user\"\n")), 0) ==
          "needs CAP_SETUID, CAP_SETGID and CAP_KILL (illumos: proc_setid) to start and stop apps and exec programs as: portunusd-test-no-such-user");
    // Each account once, in the order of the file.
    const std::string several = "\n[[app]]\nname = \"a\"\ndoor = \"/run/a\"\ncommand = [\"/a\"]\nuser = \"root\"\n"
                                "group = \"root\"\n"
                                "\n[[app]]\nname = \"b\"\ndoor = \"/run/b\"\ncommand = [\"/b\"]\nuser = \"root\"\n"
                                "\n[[app]]\nname = \"c\"\ndoor = \"/run/c\"\ncommand = [\"/c\"]\n"
                                "\n[[app]]\nname = \"d\"\ndoor = \"/run/d\"\ncommand = [\"/d\"]\nuser = \"root\"\n";
    CHECK(privileges_needed(with_apps(several), unknown_uid) ==
          "needs CAP_SETUID, CAP_SETGID and CAP_KILL (illumos: proc_setid) to start and stop apps and exec programs as: root:root, root");
}
