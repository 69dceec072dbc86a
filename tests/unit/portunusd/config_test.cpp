// SPDX-License-Identifier: MPL-2.0
// Tests of parsing and validation: golden error output for every kind of mistake, defaults,
// overrides, the sample configuration and reading files.
#include "config_test_support.hpp"

#include <algorithm>
#include <set>
#include <thread>

namespace {

using namespace std::chrono_literals;
using namespace portunusd;
using namespace portunusd::test;

const fs::path golden_dir = source_dir / "tests/unit/portunusd/golden";

std::string errors_of(std::string_view text)
{
    config_result r = parse_config_string(text, "test.toml");
    CHECK_FALSE(r.value);
    return render(r.errors);
}

// Each case is golden/NAME.toml, parsed as "NAME.toml", and golden/NAME.errors, the exact
// output `portunusd -n` prints for it. Set PORTUNUS_UPDATE_GOLDEN=1 to rewrite the .errors
// files after a deliberate change of wording, then review the diff.
struct golden_case {
    std::string_view name;
    std::string_view what;
};

constexpr golden_case golden_cases[] = {
    {"syntax_error", "an unclosed table header: toml++'s message and position"},
    {"syntax_duplicate_key", "a key given twice is a TOML error"},
    {"syntax_bad_value", "a bare word where a string belongs"},
    {"syntax_table_header", "a header without a key, which toml++ 3.3 must not see"},
    {"syntax_array_brace", "a stray } in an array, which toml++ 3.3 must not see"},
    {"unknown_key_suggestion", "misspelt keys suggest the key meant"},
    {"unknown_key_no_suggestion", "unknown keys with nothing close, including a table"},
    {"unknown_key_misplaced", "keys of [daemon] in [[forward]] and vice versa, and at top level"},
    {"unknown_table", "[deamon] and [forwards]"},
    {"wrong_type", "every expected type against a wrong one"},
    {"out_of_range", "integers below and above their ranges, in both tables"},
    {"bad_choice", "log_level, log, access_log, user and group values"},
    {"tls_keys", "tls and https without certificate or key, bad paths and versions, TLS keys on a tcp forward"},
    {"protocol_invalid", "unknown protocols list the valid ones"},
    {"listen_hostname", "host names are refused"},
    {"listen_invalid", "every malformed listen address"},
    {"listen_duplicate", "the same address twice for one protocol"},
    {"listen_overlap", "wildcards that cover another address"},
    {"name_invalid_and_duplicate", "names must be unique and well formed"},
    {"door_invalid", "relative, empty, directory, too long and NUL door paths"},
    {"missing_required", "errors point at the [[forward]] header"},
    {"no_forwards", "a file without [[forward]]"},
    {"empty_file", "an empty file"},
    {"forward_empty_array", "forward = []"},
    {"forward_not_array_of_tables", "[forward] instead of [[forward]]"},
    {"forward_array_of_values", "inline tables work; other values do not"},
    {"daemon_not_table", "daemon = a string"},
    {"once_udp", "once = true is for tcp only"},
    {"udp_max_request", "udp max_request is bounded by the datagram size"},
    {"duration_invalid", "every malformed or out-of-range duration"},
    {"http_map_unknown_key", "misspelt and misplaced keys in [[forward.map]]"},
    {"http_map_missing", "an http forward without door or map, maps without prefix or door, map forms"},
    {"http_map_wrong_type", "method, prefix and door of the wrong type"},
    {"http_method_invalid", "malformed, lowercase, empty, mixed with *, repeated and unrelayable methods"},
    {"http_prefix_invalid", "relative prefixes, queries, fragments, blanks and dot segments"},
    {"http_map_door_invalid", "a map's door follows the forward door's rules"},
    {"http_map_duplicate", "maps with one prefix and a method in common, and maps hidden behind *"},
    {"http_keys_on_tcp", "http keys on tcp and udp forwards, and tcp keys on http forwards"},
    {"http_out_of_range", "http limits below and above their ranges, and of the wrong type"},
    {"http_listen_shared", "http and tcp forwards share the TCP ports; udp does not"},
    {"many_errors", "every problem of a file, sorted by line"},
    {"pass_keys", "keys without meaning on a pass forward, pass_hold elsewhere, pass and tcp on one port"},
    {"app_errors", "every kind of mistake in [[app]] tables, and two apps with one name and door"},
};

}  // namespace

TEST_CASE("config: golden error output", "[config][golden]")
{
    const bool update = std::getenv("PORTUNUS_UPDATE_GOLDEN") != nullptr;
    for (const golden_case& c : golden_cases) {
        DYNAMIC_SECTION(c.name << ": " << c.what)
        {
            const std::string name{c.name};
            const std::string text = read_text(golden_dir / (name + ".toml"));
            const config_result r = parse_config_string(text, name + ".toml");
            CHECK_FALSE(r.value);
            REQUIRE_FALSE(r.errors.empty());
            const std::string actual = render(r.errors);
            const fs::path expected_path = golden_dir / (name + ".errors");
            if (update) {
                std::ofstream{expected_path, std::ios::binary} << actual;
                WARN("rewrote " << expected_path);
            }
            CHECK(actual == read_text(expected_path));
        }
    }
}

TEST_CASE("config: every golden file belongs to a case", "[config][golden]")
{
    std::set<std::string> listed;
    for (const golden_case& c : golden_cases) {
        listed.insert(std::string{c.name} + ".toml");
        listed.insert(std::string{c.name} + ".errors");
    }
    for (const auto& entry : fs::directory_iterator{golden_dir}) {
        INFO(entry.path());
        CHECK(listed.count(entry.path().filename().string()) == 1);
    }
}

TEST_CASE("config: errors are sorted by line, then column", "[config]")
{
    const config_result r = parse_config_string(read_text(golden_dir / "many_errors.toml"), "f");
    REQUIRE(r.errors.size() > 5);
    CHECK(std::is_sorted(r.errors.begin(), r.errors.end(), [](const config_error& a, const config_error& b) {
        return a.line != b.line ? a.line < b.line : a.column < b.column;
    }));
    for (const config_error& e : r.errors) {
        CHECK(e.source == "f");
        CHECK(e.line >= 1);
        CHECK(e.column >= 1);
    }
}

TEST_CASE("config: the sample etc/portunusd.toml is valid", "[config]")
{
    const std::string path = (source_dir / "etc/portunusd.toml").string();
    const config_result r = parse_config_file(path);
    INFO(render(r.errors));
    REQUIRE(r.errors.empty());
    REQUIRE(r.value);
    const config& cfg = *r.value;
    CHECK(cfg.source == path);

    struct expected_forward {
        protocol proto;
        std::string_view listen;
        std::string_view door;
        bool once;
    };
    const expected_forward demo[] = {
        {protocol::tcp, "127.0.0.1:7007", "/tmp/portunusd-demo/echo.door", false},
        {protocol::udp, "127.0.0.1:7007", "/tmp/portunusd-demo/echo.door", false},
        {protocol::tcp, "127.0.0.1:8080", "/tmp/portunusd-demo/hello_web.door", true},
        {protocol::tcp, "127.0.0.1:8081", "/tmp/portunusd-demo/go_away.door", true},
        {protocol::http, "127.0.0.1:8088", "/tmp/portunusd-demo/hello_web.door", false},
    };
    REQUIRE(cfg.forwards.size() == std::size(demo));
    for (std::size_t i = 0; i < std::size(demo); ++i) {
        INFO("forward " << i);
        CHECK(cfg.forwards[i].proto == demo[i].proto);
        CHECK(cfg.forwards[i].listen.text == demo[i].listen);
        CHECK(cfg.forwards[i].door == demo[i].door);
        CHECK(cfg.forwards[i].once == demo[i].once);
    }
    const forward_config& web = cfg.forwards.back();
    CHECK(web.name == "web");
    REQUIRE(web.maps.size() == 1);
    CHECK(web.maps[0].methods == std::vector<std::string>{"GET"});
    CHECK(web.maps[0].prefix == "/static");
    CHECK(web.maps[0].door == "/tmp/portunusd-demo/file_opener.door");
    CHECK(cfg.apps.empty());
}

TEST_CASE("config: the sample's pass forward is valid once uncommented", "[config]")
{
    const config cfg = parse_ok(sample_section_settings("pass"));
    REQUIRE(cfg.forwards.size() == 1);
    CHECK(cfg.forwards[0].proto == protocol::pass);
    CHECK(cfg.forwards[0].door == "/tmp/portunusd-demo/file_opener.door");
    CHECK_FALSE(cfg.forwards[0].pass_hold);
}

TEST_CASE("config: the sample's https forward is valid once uncommented", "[config][tls]")
{
    const config cfg = parse_ok(sample_section_settings("tls"));
    REQUIRE(cfg.forwards.size() == 1);
    const forward_config& f = cfg.forwards[0];
    CHECK(f.proto == protocol::http);
    REQUIRE(f.tls);
    CHECK(protocol_name(f) == "https");
    CHECK(f.tls->certificate == "/tmp/portunusd-demo/cert.pem");
    CHECK(f.tls->private_key == "/tmp/portunusd-demo/key.pem");
    CHECK(f.tls->min_version == "1.2");
    CHECK(f.tls->handshake_timeout == std::chrono::seconds(10));
}

TEST_CASE("config: the sample's [[app]] is valid once uncommented", "[config][app]")
{
    const config cfg = parse_ok(std::string{minimal_forward} + sample_section_settings("apps"));
    REQUIRE(cfg.apps.size() == 1);
    const app_config& app = cfg.apps[0];
    CHECK(app.name == "echo");
    CHECK(app.command.size() == 2);
    CHECK(app.start == app_start::on_demand);
    CHECK(app.idle_stop == 10min);
    CHECK(app.environment == std::vector<std::pair<std::string, std::string>>{{"LANG", "C.UTF-8"}});
    // Every other key shows its default.
    app_settings defaults = app;
    defaults.user.reset();
    defaults.group.reset();
    defaults.environment.clear();
    defaults.start = app_start::always;
    defaults.idle_stop = 0ms;
    app_settings expected;
    expected.name = app.name;
    expected.door = app.door;
    expected.command = app.command;
    CHECK(defaults == expected);
}

TEST_CASE("config: defaults are applied", "[config]")
{
    const config cfg = parse_ok(minimal_forward);
    const daemon_config& d = cfg.daemon;
    CHECK_FALSE(d.user);
    CHECK_FALSE(d.group);
    CHECK(d.threads == std::clamp(std::thread::hardware_concurrency() / 2, 1U, 4U));
    CHECK(d.log_level == "info");
    CHECK(d.log == "stderr");
    CHECK(d.access_log == "off");
    CHECK(d.max_connections == 10'000);
    CHECK(d.drain_timeout == 10s);
    CHECK(d.read_timeout == 30s);
    CHECK(d.idle_timeout == 60s);
    CHECK(d.call_timeout == 30s);
    CHECK_FALSE(d.allow_insecure_door_dir);

    REQUIRE(cfg.forwards.size() == 1);
    const forward_config& f = cfg.forwards[0];
    CHECK(f.name == "tcp:127.0.0.1:7007");
    CHECK(f.proto == protocol::tcp);
    CHECK(f.listen.host == "127.0.0.1");
    CHECK(f.listen.port == 7007);
    CHECK_FALSE(f.listen.any);
    CHECK(f.door == "/var/run/echo.door");
    CHECK(f.max_concurrency == 64);
    CHECK(f.queue == 256);
    CHECK(f.read_timeout == 30s);
    CHECK(f.idle_timeout == 60s);
    CHECK(f.call_timeout == 30s);
    CHECK(f.max_request == 65'536);
    CHECK_FALSE(f.once);
    CHECK(f.line == 2);
    CHECK(f.column == 1);
    CHECK(f.door_line == 5);
    CHECK(f.door_column == 8);
}

TEST_CASE("config: udp forwards default to the largest datagram", "[config]")
{
    const config cfg = parse_ok(R"(
[[forward]]
protocol = "udp"
listen = "127.0.0.1:5353"
door = "/var/run/dns.door"
)");
    CHECK(cfg.forwards.at(0).max_request == max_udp_request);
    CHECK(cfg.forwards.at(0).name == "udp:127.0.0.1:5353");
}

TEST_CASE("config: every key is read", "[config]")
{
    const config cfg = parse_ok(R"(
[daemon]
user = "portunus"
group = "daemon"
threads = 64
log_level = "trace"
log = "syslog"
access_log = "/var/log/portunusd/access.log"
max_connections = 1000000
drain_timeout = "0s"
allow_insecure_door_dir = true
read_timeout = "5s"
idle_timeout = "2m"
call_timeout = 3

[[forward]]
name = "Echo_1.tcp-a"
protocol = "tcp"
listen = "127.0.0.1:7007"
door = "/var/run/echo.door"
max_concurrency = 4096
queue = 0
max_request = 67108864
once = true
)");
    const daemon_config& d = cfg.daemon;
    CHECK(d.user == "portunus");
    CHECK(d.group == "daemon");
    CHECK(d.threads == 64);
    CHECK(d.log_level == "trace");
    CHECK(d.log == "syslog");
    CHECK(d.access_log == "/var/log/portunusd/access.log");
    CHECK(d.max_connections == 1'000'000);
    CHECK(d.drain_timeout == 0ms);
    CHECK(d.allow_insecure_door_dir);
    const forward_config& f = cfg.forwards.at(0);
    CHECK(f.name == "Echo_1.tcp-a");
    CHECK(f.max_concurrency == 4096);
    CHECK(f.queue == 0);
    CHECK(f.max_request == 67'108'864);
    CHECK(f.once);
    // Not set on the forward, so the [daemon] values apply.
    CHECK(f.read_timeout == 5s);
    CHECK(f.idle_timeout == 2min);
    CHECK(f.call_timeout == 3s);
}

TEST_CASE("config: http forwards default their limits", "[config][http]")
{
    const config cfg = parse_ok(R"(
[daemon]
read_timeout = "7s"

[[forward]]
protocol = "http"
listen = "127.0.0.1:8080"
door = "/var/run/hello.door"
)");
    const forward_config& f = cfg.forwards.at(0);
    CHECK(f.name == "http:127.0.0.1:8080");
    CHECK(f.proto == protocol::http);
    CHECK(f.door == "/var/run/hello.door");
    CHECK(f.maps.empty());
    CHECK(f.max_header_bytes == 32'768);
    CHECK(f.max_headers == 100);
    CHECK(f.max_body == 1'048'576);
    CHECK(f.header_timeout == 10s);
    CHECK(f.max_requests == 1'000);
    CHECK(f.read_timeout == 7s);
    CHECK(f.idle_timeout == 60s);
    CHECK_FALSE(f.once);
}

TEST_CASE("config: every http key is read", "[config][http]")
{
    const config cfg = parse_ok(R"(
[[forward]]
name = "web"
protocol = "http"
listen = "127.0.0.1:8080"
door = "/var/run/hello.door"
max_header_bytes = 1024
max_headers = 1000
max_body = 0
header_timeout = "250ms"
max_requests = 1000000

[[forward.map]]
method = "GET"
prefix = "/static/"
door = "/var/run/files.door"

[[forward.map]]
method = ["POST", "PUT", "M-SEARCH"]
prefix = "/api"
door = "/var/run/api.door"

[[forward.map]]
prefix = "/"
door = "/var/run/root.door"

[[forward.map]]
method = ["*"]
prefix = "/caf\u00e9/%20x"
door = "/var/run/root.door"
)");
    const forward_config& f = cfg.forwards.at(0);
    CHECK(f.max_header_bytes == 1024);
    CHECK(f.max_headers == 1000);
    CHECK(f.max_body == 0);
    CHECK(f.header_timeout == 250ms);
    CHECK(f.max_requests == 1'000'000);
    REQUIRE(f.maps.size() == 4);
    CHECK(f.maps[0].methods == std::vector<std::string>{"GET"});
    CHECK(f.maps[0].prefix == "/static/");
    CHECK(f.maps[0].door == "/var/run/files.door");
    CHECK(f.maps[0].line == 13);
    CHECK(f.maps[0].column == 1);
    CHECK(f.maps[0].door_line == 16);
    CHECK(f.maps[0].door_column == 8);
    CHECK(f.maps[1].methods == std::vector<std::string>{"POST", "PUT", "M-SEARCH"});
    // "*", written or implied, is stored as no methods: any.
    CHECK(f.maps[2].methods.empty());
    CHECK(f.maps[3].methods.empty());
    CHECK(f.maps[3].prefix == "/caf\xc3\xa9/%20x");
}

TEST_CASE("config: http forwards that are valid", "[config][http]")
{
    SECTION("maps without a catch-all door, written inline")
    {
        const config cfg = parse_ok(R"(forward = [{ protocol = "http", listen = "[::1]:8080", map = [
  { method = "GET", prefix = "/api", door = "/var/run/api.door" },
  { method = "POST", prefix = "/api", door = "/var/run/api.door" },
] }])");
        const forward_config& f = cfg.forwards.at(0);
        CHECK(f.door.empty());
        REQUIRE(f.maps.size() == 2);
        CHECK(f.maps[1].line == 3);
        CHECK(f.maps[1].column == 3);
    }
    SECTION("a map for some methods before a \"*\" map of the same prefix; prefixes on other segments")
    {
        const config cfg = parse_ok(R"(
[[forward]]
protocol = "http"
listen = "127.0.0.1:8080"
[[forward.map]]
method = ["GET", "HEAD"]
prefix = "/files"
door = "/var/run/static.door"
[[forward.map]]
prefix = "/files"
door = "/var/run/files.door"
[[forward.map]]
method = "GET"
prefix = "/filesystem"
door = "/var/run/fs.door"
[[forward.map]]
method = "GET"
prefix = "/files/x"
door = "/var/run/fs.door"
)");
        CHECK(cfg.forwards.at(0).maps.size() == 4);
    }
    SECTION("http shares the TCP ports only: udp may use the same address")
    {
        const config cfg = parse_ok(R"(
[[forward]]
protocol = "http"
listen = "*:8080"
door = "/var/run/hello.door"
[[forward]]
protocol = "udp"
listen = "*:8080"
door = "/var/run/echo.door"
[[forward]]
protocol = "tcp"
listen = "*:8081"
door = "/var/run/echo.door"
)");
        CHECK(cfg.forwards.size() == 3);
    }
}

TEST_CASE("config: forward keys override the daemon defaults", "[config]")
{
    const config cfg = parse_ok(R"(
[[forward]]
protocol = "tcp"
listen = "127.0.0.1:7007"
door = "/var/run/echo.door"
read_timeout = "250ms"
call_timeout = "1h"

[[forward]]
protocol = "tcp"
listen = "127.0.0.1:7008"
door = "/var/run/echo.door"

[daemon]
read_timeout = "10s"
idle_timeout = "20s"
call_timeout = "40s"
)");
    REQUIRE(cfg.forwards.size() == 2);
    CHECK(cfg.forwards[0].read_timeout == 250ms);
    CHECK(cfg.forwards[0].idle_timeout == 20s);
    CHECK(cfg.forwards[0].call_timeout == 1h);
    CHECK(cfg.forwards[1].read_timeout == 10s);
    CHECK(cfg.forwards[1].idle_timeout == 20s);
    CHECK(cfg.forwards[1].call_timeout == 40s);
}

TEST_CASE("config: forwards written as inline tables", "[config]")
{
    const config cfg = parse_ok(R"(forward = [
  { protocol = "tcp", listen = "127.0.0.1:7007", door = "/var/run/echo.door" },
  { protocol = "udp", listen = "127.0.0.1:7007", door = "/var/run/echo.door" },
])");
    REQUIRE(cfg.forwards.size() == 2);
    CHECK(cfg.forwards[1].proto == protocol::udp);
    CHECK(cfg.forwards[1].line == 3);
}

TEST_CASE("config: IPv6 and wildcard listen addresses in a file", "[config][listen]")
{
    const config cfg = parse_ok(R"(
[[forward]]
protocol = "tcp"
listen = "[::1]:7007"
door = "/var/run/echo.door"

[[forward]]
protocol = "tcp"
listen = "*:7008"
door = "/var/run/echo.door"

[[forward]]
protocol = "udp"
listen = "0.0.0.0:7009"
door = "/var/run/echo.door"

[[forward]]
protocol = "udp"
listen = "[::]:7009"
door = "/var/run/echo.door"

[[forward]]
protocol = "udp"
listen = "*:7008"
door = "/var/run/echo.door"
)");
    REQUIRE(cfg.forwards.size() == 5);
    CHECK(cfg.forwards[0].listen.host == "::1");
    CHECK(cfg.forwards[0].name == "tcp:[::1]:7007");
    CHECK(cfg.forwards[1].listen.any);
    CHECK(cfg.forwards[1].listen.host == "*");
    CHECK(cfg.forwards[1].listen.port == 7008);
    CHECK(cfg.forwards[3].listen.host == "::");
    CHECK_FALSE(cfg.forwards[3].listen.any);
}

TEST_CASE("config: durations in a file, both forms", "[config][duration]")
{
    const config cfg = parse_ok(R"(
[daemon]
drain_timeout = 0
read_timeout = 45
idle_timeout = "90s"
call_timeout = "750ms"
)" + std::string{minimal_forward});
    CHECK(cfg.daemon.drain_timeout == 0s);
    CHECK(cfg.forwards.at(0).read_timeout == 45s);
    CHECK(cfg.forwards.at(0).idle_timeout == 90s);
    CHECK(cfg.forwards.at(0).call_timeout == 750ms);
}

TEST_CASE("config: a syntax error in control bytes stays printable", "[config]")
{
    const std::string out = errors_of(std::string_view{"a = \x01\n", 6});
    CHECK(out.find('\x01') == std::string::npos);
    CHECK(out.rfind("test.toml:1:", 0) == 0);
}

TEST_CASE("config: protocol names", "[config]")
{
    CHECK(to_string(protocol::tcp) == "tcp");
    CHECK(to_string(protocol::udp) == "udp");
    CHECK(to_string(protocol::http) == "http");
    CHECK(to_string(protocol::pass) == "pass");
}

TEST_CASE("config: error formatting", "[config]")
{
    const config_error e{"etc/portunusd.toml", 12, 3, "threads: expected an integer, found a string"};
    CHECK(e.to_string() == "etc/portunusd.toml:12:3: threads: expected an integer, found a string");
}

TEST_CASE("config: reading files", "[config]")
{
    const scratch_dir tmp;
    SECTION("a missing file")
    {
        const std::string path = (tmp.path() / "nope.toml").string();
        CHECK(render(parse_config_file(path).errors) == path + ":1:1: cannot read: No such file or directory\n");
    }
    SECTION("a directory")
    {
        const std::string path = tmp.path().string();
        CHECK(render(parse_config_file(path).errors) == path + ":1:1: cannot read: Is a directory\n");
    }
    SECTION("a file without read permission")
    {
        const fs::path path = tmp.path() / "secret.toml";
        std::ofstream{path} << minimal_forward;
        REQUIRE(::chmod(path.c_str(), 0) == 0);
        // root reads it anyway; the message is only checked where the kernel refuses.
        if (::geteuid() != 0)
            CHECK(render(parse_config_file(path.string()).errors) ==
                  path.string() + ":1:1: cannot read: Permission denied\n");
    }
    SECTION("an oversized file")
    {
        const fs::path path = tmp.path() / "huge.toml";
        std::ofstream{path} << std::string(5 * 1024 * 1024, '#');
        CHECK(render(parse_config_file(path.string()).errors) ==
              path.string() + ":1:1: cannot read: file is larger than 4 MiB\n");
    }
    SECTION("a valid file names itself in errors and in the result")
    {
        const fs::path path = tmp.path() / "ok.toml";
        std::ofstream{path} << minimal_forward << "[daemon]\nthreads = 0\n";
        const config_result bad = parse_config_file(path.string());
        CHECK(render(bad.errors) == path.string() + ":7:11: threads: 0 is out of range; expected 1..64\n");

        std::ofstream{path, std::ios::trunc} << minimal_forward;
        const config_result good = parse_config_file(path.string());
        REQUIRE(good.value);
        CHECK(good.value->source == path.string());
    }
}
