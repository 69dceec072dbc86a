// SPDX-License-Identifier: MPL-2.0
// Tests of exec forwards in the configuration: their keys, the keys they refuse, the exec keys
// on other forwards, and the checks against this machine.
#include "config_test_support.hpp"

#include <string>

namespace {

using namespace std::chrono_literals;
using namespace portunusd;
using namespace portunusd::test;

/// An exec forward whose [[forward]] header is on line 2, its command on line 5, then `more`.
std::string exec_forward(const std::string& program, std::string_view more = {})
{
    return "\n[[forward]]\nprotocol = \"exec\"\nlisten = \"127.0.0.1:7013\"\ncommand = [\"" + program +
           "\", \"-x\"]\n" + std::string{more};
}

std::string errors_of(const std::string& text)
{
    const config_result r = parse_config_string(text, "test.toml");
    CHECK_FALSE(r.value);
    return render(r.errors);
}

}  // namespace

TEST_CASE("config: an exec forward with its keys", "[config][exec]")
{
    const config c = parse_ok(exec_forward("/bin/cat", "user = \"nobody\"\ngroup = \"nogroup\"\n"
                                                       "max_concurrency = 3\nqueue = 5\ncall_timeout = \"2s\"\n"));
    REQUIRE(c.forwards.size() == 1);
    const forward_config& f = c.forwards[0];
    CHECK(f.proto == protocol::exec);
    CHECK(to_string(f.proto) == "exec");
    CHECK(f.name == "exec:127.0.0.1:7013");
    CHECK(f.command == std::vector<std::string>{"/bin/cat", "-x"});
    CHECK(f.user == "nobody");
    CHECK(f.group == "nogroup");
    CHECK(f.door.empty());
    CHECK(f.max_concurrency == 3);
    CHECK(f.queue == 5);
    CHECK(f.call_timeout == 2s);
    CHECK(f.command_at.line == 5);
    CHECK(f.command_at.column == 12);
    CHECK(f.user_at.line == 6);
    // Defaults: the daemon's account.
    const config d = parse_ok(exec_forward("/bin/cat"));
    CHECK_FALSE(d.forwards[0].user);
    CHECK_FALSE(d.forwards[0].group);
}

TEST_CASE("config: an exec forward needs a command, absolute", "[config][exec]")
{
    CHECK(errors_of("\n[[forward]]\nprotocol = \"exec\"\nlisten = \"127.0.0.1:7013\"\n") ==
          "test.toml:2:1: [[forward]] is missing the required key \"command\"; an exec forward runs it for each "
          "connection\n");
    CHECK(errors_of(exec_forward("cat")) ==
          "test.toml:5:12: command[0]: \"cat\" is not an absolute path; the program is not looked up in PATH\n");
    CHECK(errors_of("\n[[forward]]\nprotocol = \"exec\"\nlisten = \"127.0.0.1:7013\"\ncommand = []\n") ==
          "test.toml:5:11: command: the array is empty; expected at least the absolute path of the program\n");
    CHECK(errors_of(exec_forward("/bin/cat", "user = \"a b\"\n")) ==
          "test.toml:6:8: user: \"a b\" is not a valid user name\n");
}

TEST_CASE("config: the keys an exec forward refuses", "[config][exec]")
{
    CHECK(errors_of(exec_forward("/bin/cat", "door = \"/run/a.door\"\nmax_request = 10\nonce = true\n"
                                             "read_timeout = \"1s\"\nidle_timeout = \"1s\"\n"
                                             "proxy_protocol = true\nproxy_protocol_from = [\"::1\"]\n"
                                             "max_body = 10\n")) ==
          "test.toml:6:8: door does not apply to exec forwards; the connection goes to \"command\"\n"
          "test.toml:7:15: max_request does not apply to exec forwards; the program reads the connection itself\n"
          "test.toml:8:8: once does not apply to exec forwards; the program reads the connection itself\n"
          "test.toml:9:16: read_timeout does not apply to exec forwards; the program reads the connection itself, "
          "and call_timeout bounds its whole run\n"
          "test.toml:10:16: idle_timeout does not apply to exec forwards; the program reads the connection itself, "
          "and call_timeout bounds its whole run\n"
          "test.toml:11:18: proxy_protocol does not apply to exec forwards; the program gets the connection as "
          "accepted\n"
          "test.toml:12:23: proxy_protocol_from does not apply to exec forwards; the program gets the connection as "
          "accepted\n"
          "test.toml:13:12: max_body does not apply to exec forwards; it is for http only\n");
    // [daemon]'s timeouts are defaults, not keys of the forward: they do not count.
    CHECK(parse_ok("[daemon]\nread_timeout = \"1s\"\n" + exec_forward("/bin/cat")).forwards.size() == 1);
}

TEST_CASE("config: the exec keys on other forwards", "[config][exec]")
{
    CHECK(errors_of("\n[[forward]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:7007\"\ndoor = \"/run/a.door\"\n"
                    "command = [\"/bin/cat\"]\nuser = \"nobody\"\n") ==
          "test.toml:6:11: command applies only to exec forwards (protocol = \"exec\"); a program the daemon keeps "
          "running is an [[app]]\n"
          "test.toml:7:8: user applies only to exec forwards (protocol = \"exec\"); the daemon's own account is set "
          "in [daemon]\n");
    // inetd's "wait" services: refused with a word on why.
    CHECK(errors_of("\n[[forward]]\nprotocol = \"udp\"\nlisten = \"127.0.0.1:7007\"\ndoor = \"/run/a.door\"\n"
                    "command = [\"/bin/cat\"]\ngroup = \"nogroup\"\n") ==
          "test.toml:6:11: command does not apply to udp forwards; exec forwards serve TCP connections only "
          "(protocol = \"exec\")\n"
          "test.toml:7:9: group does not apply to udp forwards; exec forwards serve TCP connections only "
          "(protocol = \"exec\")\n");
}

TEST_CASE("config: exec forwards share the TCP ports", "[config][exec]")
{
    const std::string text = exec_forward("/bin/cat") +
                             "\n[[forward]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:7013\"\ndoor = \"/run/a\"\n";
    CHECK(errors_of(text) == "test.toml:9:10: listen: duplicate address \"127.0.0.1:7013\"; first used at line 4 "
                             "(an exec forward; tcp, http and exec forwards share the TCP ports)\n");
    // A udp forward may sit on the same port.
    CHECK(parse_ok(exec_forward("/bin/cat") +
                   "\n[[forward]]\nprotocol = \"udp\"\nlisten = \"127.0.0.1:7013\"\ndoor = \"/run/a\"\n")
              .forwards.size() == 2);
}

TEST_CASE("config: what an exec forward needs of this machine", "[config][exec]")
{
    const scratch_dir tmp;
    const fs::path program = tmp.path() / "prog";
    std::ofstream{program} << "#!/bin/sh\n";
    REQUIRE(::chmod(program.c_str(), 0750) == 0);
    const fs::path notes = tmp.path() / "notes";
    std::ofstream{notes} << "x";
    REQUIRE(::chmod(notes.c_str(), 0644) == 0);
    const std::string t = tmp.path().string();
    const auto checked = [](const std::string& text) { return render(check_apps(parse_ok(text))); };

    CHECK(checked(exec_forward(program.string(), "user = \"root\"\ngroup = \"root\"\n")).empty());
    const std::string at = "test.toml:5:12: command[0]: \"";
    CHECK(checked(exec_forward(t + "/missing")) == at + t + "/missing\" does not exist\n");
    CHECK(checked(exec_forward(t)) == at + t + "\" is not a regular file\n");
    CHECK(checked(exec_forward(notes.string())) == at + t + "/notes\" is not executable (mode 0644)\n");
    CHECK(checked(exec_forward(program.string(), "user = \"portunusd-test-no-such-user\"\n"
                                                 "group = \"portunusd-test-no-such-group\"\n")) ==
          "test.toml:6:8: user: no user \"portunusd-test-no-such-user\" on this machine\n"
          "test.toml:7:9: group: no group \"portunusd-test-no-such-group\" on this machine\n");

    // load_config() reports them in one round with the parser's.
    const fs::path path = tmp.path() / "exec.toml";
    std::ofstream{path} << exec_forward(t + "/missing", "user = \"portunusd-test-no-such-user\"\n");
    const config_result r = load_config(path.string());
    CHECK_FALSE(r.value);
    CHECK(render(r.errors) == path.string() + ":5:12: command[0]: \"" + t + "/missing\" does not exist\n" +
                                  path.string() + ":6:8: user: no user \"portunusd-test-no-such-user\" on this machine\n");
}

TEST_CASE("config: the sample's exec [[forward]] is valid once uncommented", "[config][exec]")
{
    const config cfg = parse_ok(sample_section_settings("exec"));
    REQUIRE(cfg.forwards.size() == 1);
    const forward_config& f = cfg.forwards[0];
    CHECK(f.proto == protocol::exec);
    CHECK(f.command == std::vector<std::string>{"/bin/date", "-u"});
    CHECK(f.user == "nobody");
    CHECK(f.max_concurrency == 64);
    CHECK(f.queue == 256);
    CHECK(f.call_timeout == 30s);
}

TEST_CASE("config: the accounts exec programs start as count for the privileges kept", "[config][exec]")
{
    constexpr uid_t some_other_uid = 4242424;
    const config plain = parse_ok(exec_forward("/bin/cat"));
    CHECK(started_accounts(plain).empty());
    CHECK(privileges_needed(plain, 0) ==
          "no credential changes needed: every app and exec program runs as the daemon's own user and group");

    const config as_root = parse_ok(exec_forward("/bin/cat", "user = \"root\"\n"));
    REQUIRE(started_accounts(as_root).size() == 1);
    CHECK(started_accounts(as_root)[0].user == "root");
    CHECK_FALSE(started_accounts(as_root)[0].group);
    CHECK(privileges_needed(as_root, some_other_uid) ==
          "needs CAP_SETUID, CAP_SETGID and CAP_KILL (illumos: proc_setid) to start and stop apps and exec "
          "programs as: root");
    CHECK(privileges_needed(as_root, 0).starts_with("no credential changes needed"));
}
