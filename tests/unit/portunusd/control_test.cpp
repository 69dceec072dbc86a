// SPDX-License-Identifier: MPL-2.0
// The control room: protocol tables, the JSON writer's escaping, status rendering, the commands
// against fake actions, who may call, and a real control door called the way `portunus` does.
#include "portunusd/control/control_client.hpp"
#include "portunusd/control/control_commands.hpp"
#include "portunusd/control/control_door.hpp"
#include "portunusd/control/control_protocol.hpp"
#include "portunusd/control/json_writer.hpp"
#include "portunusd/control/status_render.hpp"

#include <catch2/catch.hpp>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <string>
#include <thread>

using namespace std::chrono_literals;
using namespace std::string_literals;
using namespace portunusd;

namespace {

bool one_safe_line(const std::string& s)
{
    return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

daemon_snapshot sample_snapshot()
{
    daemon_snapshot s;
    s.version = "0.4.0";
    s.pid = 4242;
    s.uptime_seconds = 90061.5; // 1d 01:01:01
    s.start_time_unix = 1'800'000'000;
    s.config_loaded_unix = 1'800'000'000 + 90061.5 - 130; // 2m 10s before the snapshot
    s.config_file = "/etc/portunusd.toml";
    forward_snapshot tcp{"echo-tcp", "tcp", "127.0.0.1:7007", {}, {}};
    tcp.doors.push_back({"/run/echo.door", "open", 77, 1, 3, 2, 120, 4, 1, 0});
    tcp.counts.connections = 15;
    tcp.counts.connections_open = 2;
    tcp.counts.requests = 120;
    tcp.counts.bytes_in = 1000;
    tcp.counts.bytes_out = 2000;
    tcp.counts.timeouts = 3;
    tcp.counts.door_gone = 1;
    forward_snapshot udp{"echo-udp", "udp", "127.0.0.1:7007", {}, {}};
    udp.doors.push_back({"/run/echo\x1b.door", "unopened", 0, 0, 0, 0, 0, 0, 0, 0});
    s.forwards = {tcp, udp};
    return s;
}

struct fake_server {
    std::optional<daemon_snapshot> snapshot = sample_snapshot();
    std::optional<reload_report> report = reload_report{true, {}, {"new"}, {"echo-tcp"}, {}, {}};
    bool stops = true;
    std::optional<std::chrono::milliseconds> drain_asked;
    std::chrono::milliseconds deadline_seen{0};

    control_actions actions()
    {
        return {[this](std::chrono::milliseconds d) { deadline_seen = d; return snapshot; },
                [this](std::chrono::milliseconds d) { deadline_seen = d; return report; },
                [this](std::optional<std::chrono::milliseconds> drain, std::chrono::milliseconds d) {
                    deadline_seen = d;
                    drain_asked = drain;
                    return stops;
                },
                [this](const std::string& app, std::chrono::milliseconds d) -> std::optional<bool> {
                    deadline_seen = d;
                    return app == "web";
                }};
    }
};

// A directory of its own under /tmp, removed with what is in it.
struct scratch {
    scratch()
    {
        char name[] = "/tmp/portunusd-control-XXXXXX";
        REQUIRE(::mkdtemp(name) != nullptr);
        dir = name;
    }
    ~scratch() { std::filesystem::remove_all(dir); }
    std::string dir;
};

} // namespace

TEST_CASE("control requests round-trip through their wire form", "[control]")
{
    const control_request requests[] = {
        {control_command::status, std::nullopt, {}}, {control_command::status_json, std::nullopt, {}},
        {control_command::reload, std::nullopt, {}}, {control_command::stop, std::nullopt, {}},
        {control_command::stop, 0ms, {}},            {control_command::stop, 86'400'000ms, {}},
        {control_command::restart, std::nullopt, "web"}, {control_command::restart, std::nullopt, "a.b_c-1"},
    };
    for (const auto& r : requests) {
        const std::string wire = format_control_request(r);
        CAPTURE(wire);
        const auto parsed = parse_control_request(wire);
        REQUIRE(parsed.value);
        CHECK(*parsed.value == r);
        CHECK(parsed.error.empty());
    }
    CHECK(format_control_request({control_command::stop, 1500ms, {}}) == "portunus-control/1 stop 1500\n");
    CHECK(format_control_request({control_command::status_json, {}, {}}) == "portunus-control/1 status-json\n");
    CHECK(format_control_request({control_command::restart, {}, "web"}) == "portunus-control/1 restart web\n");
}

TEST_CASE("malformed control requests are errors, each with a one-line reason", "[control]")
{
    const struct {
        const char* name;
        std::string bytes;
        const char* reason;
    } cases[] = {
        {"empty", "", "must start with portunus-control/1"},
        {"no line feed", "portunus-control/1 status", "line feed"},
        {"bytes after the line", "portunus-control/1 status\nstatus\n", "after its line"},
        {"carriage return", "portunus-control/1 status\r\n", "unknown command"},
        {"two spaces", "portunus-control/1  status\n", "one space"},
        {"leading space", " portunus-control/1 status\n", "must start with"},
        {"trailing space", "portunus-control/1 status \n", "one space"},
        {"tab", "portunus-control/1\tstatus\n", "unsupported protocol version \"1\\x09status\""},
        {"another protocol", "HTTP/1.1 status\n", "must start with portunus-control/1"},
        {"an HTTP request", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "must start with portunus-control/1"},
        {"version 2 with more lines", "portunus-control/2 status\nmore\n", "unsupported protocol version \"2\""},
        {"version 2", "portunus-control/2 status\n", "unsupported protocol version \"2\""},
        {"version 1.0", "portunus-control/1.0 status\n", "unsupported protocol version"},
        {"empty version", "portunus-control/ status\n", "unsupported protocol version"},
        {"no command", "portunus-control/1\n", "no command"},
        {"unknown command", "portunus-control/1 restore\n", "unknown command \"restore\""},
        {"restart without an app", "portunus-control/1 restart\n", "the name of an [[app]]"},
        {"restart two apps", "portunus-control/1 restart a b\n", "the name of an [[app]]"},
        {"restart a path", "portunus-control/1 restart ../x\n", "the name of an [[app]]"},
        {"upper case", "portunus-control/1 STATUS\n", "unknown command"},
        {"status argument", "portunus-control/1 status now\n", "takes no argument"},
        {"reload argument", "portunus-control/1 reload x\n", "takes no argument"},
        {"stop two arguments", "portunus-control/1 stop 1 2\n", "at most one argument"},
        {"stop negative", "portunus-control/1 stop -1\n", "not a number"},
        {"stop unit", "portunus-control/1 stop 10s\n", "not a number"},
        {"stop past 24 h", "portunus-control/1 stop 86400001\n", "not a number"},
        {"stop ten digits", "portunus-control/1 stop 0000000001\n", "not a number"},
        {"NUL in command", "portunus-control/1 sta\0tus\n"s, "\\x00"},
        {"too large", "portunus-control/1 stop " + std::string(4096, '1') + "\n", "at most 4096"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        const auto parsed = parse_control_request(c.bytes);
        CHECK_FALSE(parsed.value);
        CHECK_THAT(parsed.error, Catch::Contains(c.reason));
        CHECK(one_safe_line(parsed.error));
    }
}

TEST_CASE("a control request cut at any byte is not a request", "[control]")
{
    const std::string wire = "portunus-control/1 stop 2500\n";
    for (std::size_t n = 0; n < wire.size(); ++n) CHECK_FALSE(parse_control_request(wire.substr(0, n)).value);
}

TEST_CASE("control replies round-trip, and a reply of another version is told apart", "[control]")
{
    const control_reply replies[] = {
        {control_status::ok, "", "line one\nline two\n"},
        {control_status::error, "reload refused: 2 error(s)", "error: a\nerror: b\n"},
        {control_status::refused, "permission denied", ""},
        {control_status::ok, "", ""},
    };
    for (const auto& r : replies) {
        const auto parsed = parse_control_reply(format_control_reply(r));
        REQUIRE(parsed.value);
        CHECK(*parsed.value == r);
    }
    CHECK(format_control_reply({control_status::error, "a\nb", "body"}) == "portunus-control/1 error a\\x0ab\nbody");

    const auto foreign = parse_control_reply("portunus-control/2 error unsupported protocol version \"1\"\n");
    CHECK_FALSE(foreign.value);
    CHECK(foreign.foreign_version == "portunus-control/2");
    CHECK(foreign.summary == "error unsupported protocol version \"1\"");

    for (const std::string bad : {"", "HTTP/1.1 200 OK\r\n\r\n", "portunus-control/1 fine\n", "portunus-control/1 ok"}) {
        CAPTURE(bad);
        const auto p = parse_control_reply(bad);
        CHECK_FALSE(p.value);
        CHECK(p.foreign_version.empty());
        CHECK_FALSE(p.error.empty());
        CHECK(one_safe_line(p.error));
    }
}

TEST_CASE("JSON strings escape what they must and keep valid UTF-8", "[control]")
{
    const struct {
        std::string in;
        std::string out;
    } cases[] = {
        {"plain", R"("plain")"},
        {"quote \" backslash \\", R"("quote \" backslash \\")"},
        {"\n\r\t\b\f", R"("\n\r\t\b\f")"},
        {std::string("\0\x01\x1f\x7f", 4), R"("\u0000\u0001\u001f\u007f")"},
        {"caf\xc3\xa9 \xf0\x9f\x98\x80", "\"caf\xc3\xa9 \xf0\x9f\x98\x80\""},
        {"\xe2\x80\xa8\xe2\x80\xa9", R"("\u2028\u2029")"},
        {"a\x80z", "\"a\xef\xbf\xbdz\""},                       // a lone continuation byte
        {"\xc0\xaf", "\"\xef\xbf\xbd\xef\xbf\xbd\""},           // an overlong '/'
        {"\xed\xa0\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, // an encoded surrogate
        {"\xf4\x90\x80\x80", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""}, // past U+10FFFF
        {"\xe2\x82", "\"\xef\xbf\xbd\xef\xbf\xbd\""},           // cut short at the end
        {"\xff", "\"\xef\xbf\xbd\""},
    };
    for (const auto& c : cases) {
        CAPTURE(c.in);
        CHECK(json_escape(c.in) == c.out);
    }
}

TEST_CASE("the JSON writer places commas and writes numbers as integers where it can", "[control]")
{
    json_writer j;
    j.begin_object();
    j.key("a");
    j.begin_array();
    j.value(1);
    j.value(std::numeric_limits<std::uint64_t>::max());
    j.value(-5L);
    j.end_array();
    j.key("d");
    j.begin_array();
    for (double d : {5.0, 0.25, -0.0, 1e20, 1e21, std::nan(""), std::numeric_limits<double>::infinity(), 0.0001, 1.5e-7})
        j.value(d);
    j.end_array();
    j.key("e");
    j.begin_object();
    j.end_object();
    j.key("t");
    j.value(true);
    j.key("n");
    j.null();
    j.key("s");
    j.value("x");
    j.end_object();
    CHECK(j.str() == R"({"a":[1,18446744073709551615,-5],"d":[5,0.25,0,100000000000000000000,1e+21,null,null,0.0001,1.5e-07],"e":{},"t":true,)"
                     R"("n":null,"s":"x"})");
}

TEST_CASE("status text: a header, a row per forward, its doors and its failures", "[control]")
{
    const std::string text = render_status_text(sample_snapshot());
    CAPTURE(text);
    CHECK_THAT(text, Catch::StartsWith("portunusd 0.4.0  pid 4242  up 1d 01:01:01  serving\n"));
    CHECK_THAT(text, Catch::Contains("config /etc/portunusd.toml  loaded 2027-01-16 08:58:51 UTC (2m 10s ago)\n"));
    CHECK_THAT(text, Catch::Contains("forward   proto  listen          conns open/total  requests  in flight/peak  "
                                     "queued  errors  bytes in/out\n"));
    CHECK_THAT(text, Catch::Contains("echo-tcp  tcp    127.0.0.1:7007  2/15              120       1/3             "
                                     "2       4       1000/2000\n"));
    CHECK_THAT(text, Catch::Contains("echo-udp  udp    127.0.0.1:7007  -                 0         0/0             "
                                     "0       0       0/0\n"));
    CHECK_THAT(text, Catch::Contains("  door  /run/echo.door      open      pid 77  calls 120  errors 4  reopens 1\n"));
    // The escape byte in the path would otherwise reach the operator's terminal.
    CHECK_THAT(text, Catch::Contains("  door  /run/echo\\x1b.door  unopened  pid -   calls 0    errors 0  reopens 0\n"));
    CHECK_THAT(text, Catch::Contains("  failures: timeouts 3, door gone 1\n"));
    CHECK(std::count(text.begin(), text.end(), '\n') == 9); // the udp forward failed nothing: no line
    CHECK(text.find(" \n") == std::string::npos);

    auto with_apps = sample_snapshot();
    with_apps.apps.push_back({"api", "/run/api.door", "serving", 901, 0, 1, ""});
    with_apps.apps.push_back({"batch-worker", "/run/batch.door", "backing_off", 0, 4, 5, "exit 1"});
    CHECK_THAT(render_status_text(with_apps), Catch::EndsWith("errors 0  reopens 0\n"
                                                              "\n"
                                                              "app           state        pid  starts  restarts  last exit  door\n"
                                                              "api           serving      901  1       0         -          /run/api.door\n"
                                                              "batch-worker  backing_off  -    5       4         exit 1     /run/batch.door\n"));

    auto draining = sample_snapshot();
    draining.draining = true;
    CHECK_THAT(render_status_text(draining), Catch::StartsWith("portunusd 0.4.0  pid 4242  up 1d 01:01:01  draining\n"));
}

TEST_CASE("status JSON has every field under its documented name", "[control]")
{
    daemon_snapshot s;
    s.version = "0.4.0";
    s.pid = 7;
    s.uptime_seconds = 2.5;
    s.start_time_unix = 100;
    s.config_loaded_unix = 101;
    s.config_file = "/c\"f";
    forward_snapshot f{"w", "http", "*:80", {}, {}};
    f.doors.push_back({"/d", "missing", 0, 1, 2, 3, 4, 5, 6, 7});
    f.counts.status_502 = 9;
    f.counts.call_duration.buckets[0] = 1;
    f.counts.call_duration.buckets.back() = 2;
    f.counts.call_duration.count = 3;
    f.counts.call_duration.sum_seconds = 10.5;
    s.forwards.push_back(f);
    s.apps.push_back({"api", "/a", "backing_off", 0, 2, 3, "signal 9"});
    CHECK(render_status_json(s) ==
          R"({"protocol_version":1,"version":"0.4.0","pid":7,"uptime_seconds":2.5,"start_time_unix":100,)"
          R"("config_file":"/c\"f","config_loaded_unix":101,"draining":false,"forwards":[{"name":"w",)"
          R"("protocol":"http","listen":"*:80","counts":{"connections":0,"connections_open":0,"requests":0,)"
          R"("bytes_in":0,"bytes_out":0,"timeouts":0,"door_gone":0,"interrupted":0,"queue_full":0,"too_large":0,)"
          R"("other_errors":0,"status_400":0,"status_502":9,"status_503":0,"status_504":0,"tls_handshake_failures":0,)"
          R"("call_duration":{)"
          R"("bounds":[0.0001,0.00025,0.0005,0.001,0.0025,0.005,0.01,0.025,0.05,0.1,0.25,0.5,1,2.5],)"
          R"("buckets":[1,0,0,0,0,0,0,0,0,0,0,0,0,0,2],"count":3,"sum_seconds":10.5}},"doors":[{"path":"/d",)"
          R"("state":"missing","server_pid":0,"in_flight":1,"peak_in_flight":2,"queued":3,"calls":4,"errors":5,)"
          R"("reopens":6,"queue_full":7}]}],"apps":[{"name":"api","door":"/a","state":"backing_off","pid":0,)"
          R"("starts":3,"restarts":2,"last_exit":"signal 9"}]})"
          "\n");
}

TEST_CASE("status of a TLS forward: its certificate's expiry and failed handshakes", "[control][tls]")
{
    daemon_snapshot s = sample_snapshot();
    forward_snapshot site{"site", "https", "*:443", {}, {}};
    site.counts.tls_handshake_failures = 5;
    site.tls_not_after = 1'900'000'000;
    s.forwards.push_back(site);
    const std::string json = render_status_json(s);
    CHECK_THAT(json, Catch::Contains(R"({"name":"site","protocol":"https","listen":"*:443",)"
                                     R"("tls_certificate_expiry_unix":1900000000,"counts":{)"));
    CHECK_THAT(json, Catch::Contains(R"("tls_handshake_failures":5,)"));
    // Plain forwards say nothing of a certificate.
    CHECK_THAT(json, Catch::Contains(R"({"name":"echo-tcp","protocol":"tcp","listen":"127.0.0.1:7007","counts":{)"));
    CHECK_THAT(render_status_text(s), Catch::Contains("TLS handshakes failed: 5"));
}

TEST_CASE("only root and the daemon's own uid may use the control door", "[control]")
{
    CHECK(control_caller_allowed(0, 0));
    CHECK(control_caller_allowed(0, 65534));
    CHECK(control_caller_allowed(65534, 65534));
    CHECK_FALSE(control_caller_allowed(1000, 0));
    CHECK_FALSE(control_caller_allowed(1000, 65534));
    CHECK_FALSE(control_caller_allowed(static_cast<uid_t>(-1), 65534));
    CHECK(control_refusal(65534) == "permission denied: only root and uid 65534 may use this control door");
}

TEST_CASE("control commands call their action with its deadline and word its answer", "[control]")
{
    fake_server fake;
    const auto actions = fake.actions();

    auto r = answer_control_request("portunus-control/1 status\n", actions, 1);
    CHECK(r.status == control_status::ok);
    CHECK_THAT(r.body, Catch::StartsWith("portunusd 0.4.0"));
    CHECK(fake.deadline_seen == control_status_deadline);
    CHECK(answer_control_request("portunus-control/1 status-json\n", actions, 1).body == render_status_json(sample_snapshot()));

    r = answer_control_request("portunus-control/1 reload\n", actions, 1);
    CHECK(r.status == control_status::ok);
    CHECK(r.body == "added: new\nchanged: echo-tcp\nremoved: (none)\n");
    CHECK(fake.deadline_seen == control_reload_deadline);

    r = answer_control_request("portunus-control/1 stop 2500\n", actions, 4242);
    CHECK(r.status == control_status::ok);
    CHECK(r.body == "stopping pid 4242\n");
    CHECK(fake.drain_asked == 2500ms);
    CHECK(fake.deadline_seen == control_stop_deadline);
    answer_control_request("portunus-control/1 stop\n", actions, 1);
    CHECK_FALSE(fake.drain_asked);

    r = answer_control_request("portunus-control/1 restart web\n", actions, 1);
    CHECK(r.status == control_status::ok);
    CHECK(r.body == "restarting web\n");
    r = answer_control_request("portunus-control/1 restart nope\n", actions, 1);
    CHECK(r.status == control_status::error);
    CHECK(r.summary == "no [[app]] named \"nope\"");

    r = answer_control_request("portunus-control/2 status\n", actions, 1);
    CHECK(format_control_reply(r) ==
          "portunus-control/1 error unsupported protocol version \"2\"; this daemon speaks portunus-control/1\n");

    fake.snapshot.reset();
    fake.report.reset();
    fake.stops = false;
    CHECK(answer_control_request("portunus-control/1 status\n", actions, 1).summary ==
          "the daemon did not answer within 10s (it may be stopping)");
    CHECK_THAT(answer_control_request("portunus-control/1 reload\n", actions, 1).summary,
               Catch::StartsWith("the reload did not finish within 30s"));
    CHECK(answer_control_request("portunus-control/1 stop\n", actions, 1).summary ==
          "the daemon did not begin to stop within 10s");
    CHECK(answer_control_request("portunus-control/1 status\n", control_actions{}, 1).status == control_status::error);
}

TEST_CASE("a refused reload lists every error; a partial one every forward not bound", "[control]")
{
    auto r = reload_reply({false, {"/etc/p.toml:3:1: unknown key \"x\"", "/etc/p.toml:9:7: bad\nvalue"}, {}, {}, {}, {}});
    CHECK(r.status == control_status::error);
    CHECK(r.summary == "reload refused: 2 error(s); the running configuration is kept");
    CHECK(r.body == "error: /etc/p.toml:3:1: unknown key \"x\"\nerror: /etc/p.toml:9:7: bad\\x0avalue\n");

    r = reload_reply({true, {}, {"a", "b"}, {}, {"c"}, {"cannot bind 127.0.0.1:80: Permission denied"}});
    CHECK(r.status == control_status::error);
    CHECK(r.summary == "reload applied, but 1 forward(s) could not be bound");
    CHECK(r.body == "added: a, b\nchanged: (none)\nremoved: c\nnot bound: cannot bind 127.0.0.1:80: Permission denied\n");
}

TEST_CASE("the control door path: --control, then the environment, then the default", "[control]")
{
    CHECK(control_door_path("/a", "/b") == "/a");
    CHECK(control_door_path(nullptr, "/b") == "/b");
    CHECK(control_door_path(nullptr, "") == "/var/run/portunusd/control.door");
    CHECK(control_door_path(nullptr, nullptr) == "/var/run/portunusd/control.door");
}

TEST_CASE("a control door answers portunus, has mode 0600 and leaves no file behind", "[control]")
{
    scratch tmp;
    const std::string path = tmp.dir + "/run/control.door";
    fake_server fake;
    std::string error;
    auto door = control_door::open(path, fake.actions(), std::nullopt, std::nullopt, error);
    REQUIRE(door);
    CHECK(error.empty());

    struct stat st {};
    REQUIRE(::stat((tmp.dir + "/run").c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0755);
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 07777) == 0600);

    const auto exchange = call_control_door(path, {control_command::stop, 100ms, {}}, 5s);
    REQUIRE(exchange.reply);
    CHECK(exchange.reply->body == "stopping pid " + std::to_string(::getpid()) + "\n");
    CHECK(fake.drain_asked == 100ms);

    // A second daemon must not take the door of one that still serves it.
    std::string second_error;
    CHECK_FALSE(control_door::open(path, fake.actions(), std::nullopt, std::nullopt, second_error));
    CHECK_THAT(second_error, Catch::Contains("cannot create control door " + path + ": process "));

    door.reset();
    CHECK(::stat(path.c_str(), &st) != 0);
    CHECK_THAT(call_control_door(path, {control_command::status, {}, {}}, 1s).error, Catch::StartsWith("no control door at"));
}

TEST_CASE("portunus words every way of not reaching the daemon", "[control]")
{
    scratch tmp;
    const std::string file = tmp.dir + "/file";
    std::filesystem::create_directory(file + ".d");
    ::close(::open(file.c_str(), O_CREAT | O_WRONLY | O_CLOEXEC, 0600));
    std::string error;
    CHECK_FALSE(control_door::open(file, fake_server{}.actions(), std::nullopt, std::nullopt, error));
    CHECK(error == "cannot create control door " + file + ": something that is not a door is there");

    const auto refused = describe_control_door_error(file, std::make_error_code(std::errc::permission_denied));
    CHECK(refused == "control door " + file + " refused: permission denied: only root and uid " +
                         std::to_string(::getuid()) + " may use this control door");
    CHECK_THAT(call_control_door(file, {}, 1s).error, Catch::Contains("is not a door but a regular file"));
    CHECK_THAT(call_control_door(file + ".d", {}, 1s).error, Catch::Contains("is not a door but a directory"));

    // A socket that nobody listens on any more: a daemon that died without removing its door.
    const std::string stale = tmp.dir + "/stale.door";
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strcpy(addr.sun_path, stale.c_str());
    const int fd = ::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
    ::close(fd);
    CHECK_THAT(call_control_door(stale, {}, 1s).error, Catch::StartsWith("nothing serves the control door " + stale));
}

TEST_CASE("process_gone: alive, a zombie, reaped", "[control]")
{
    CHECK_FALSE(process_gone(::getpid()));
    const pid_t child = ::fork();
    if (child == 0) ::_exit(0);
    REQUIRE(child > 0);
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (!process_gone(child) && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(1ms);
    CHECK(process_gone(child)); // a zombie: it has exited, though not yet reaped
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    CHECK(process_gone(child));
}
