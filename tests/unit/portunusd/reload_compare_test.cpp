// SPDX-License-Identifier: MPL-2.0
// The comparison reload uses to tell a changed forward: every key counts, positions do not.
#include "config_test_support.hpp"

#include <string>

namespace portunusd::test {
namespace {

// Every key a forward takes, on one tcp, one udp, one http, one pass, one exec and one https
// forward; the udp one takes its call_timeout from [daemon].
constexpr std::string_view every_key = R"([daemon]
read_timeout = "30s"
idle_timeout = "60s"
call_timeout = "30s"

[[forward]]
name = "t"
protocol = "tcp"
listen = "127.0.0.1:7001"
door = "/run/a.door"
max_concurrency = 8
queue = 16
read_timeout = "5s"
idle_timeout = "6s"
call_timeout = "7s"
max_request = 4096
once = false

[[forward]]
name = "u"
protocol = "udp"
listen = "127.0.0.1:7002"
door = "/run/a.door"
max_concurrency = 8
queue = 16
max_request = 4096

[[forward]]
name = "h"
protocol = "http"
listen = "127.0.0.1:7003"
door = "/run/a.door"
max_concurrency = 8
queue = 16
read_timeout = "5s"
idle_timeout = "6s"
call_timeout = "7s"
max_header_bytes = 8192
max_headers = 50
max_body = 100000
header_timeout = "4s"
max_requests = 100

[[forward.map]]
method = ["GET"]
prefix = "/m"
door = "/run/b.door"

[[forward]]
name = "p"
protocol = "pass"
listen = "127.0.0.1:7005"
door = "/run/p.door"
max_concurrency = 8
queue = 16
call_timeout = "7s"
pass_hold = false

[[forward]]
name = "e"
protocol = "exec"
listen = "127.0.0.1:7006"
command = ["/bin/cat", "-u"]
user = "nobody"
group = "nogroup"
max_concurrency = 8
queue = 16
call_timeout = "7s"

[[forward]]
name = "s"
protocol = "https"
listen = "127.0.0.1:7008"
door = "/run/s.door"
certificate = "/etc/s.crt"
private_key = "/etc/s.key"
tls_min_version = "1.2"
handshake_timeout = "3s"
read_timeout = "5s"
idle_timeout = "6s"
call_timeout = "7s"
)";

struct one_change {
    int section;          ///< the [[forward]] the key is in (0, 1, 2), or -1 for [daemon]
    std::size_t forward;  ///< the forward the change must show in
    std::string_view from;
    std::string_view to;
};

/// `every_key` with the first `from` of the change's section replaced by `to`.
std::string with(const one_change& c)
{
    std::string text{every_key};
    std::size_t section = 0;
    for (int i = 0; i <= c.section; ++i) {
        section = text.find("[[forward]]", section + 1);
        REQUIRE(section != std::string::npos);
    }
    const auto at = text.find(c.from, section);
    REQUIRE(at != std::string::npos);
    return text.replace(at, c.from.size(), c.to);
}

}  // namespace

/// Parses `every_key` before and after `change`: only the forward it names may differ.
void check_only_its_forward_changes(const one_change& change)
{
    INFO("forward " << change.forward << ": " << change.from << " -> " << change.to);
    const config before = parse_ok(every_key);
    const config after = parse_ok(with(change));
    REQUIRE(after.forwards.size() == before.forwards.size());
    for (std::size_t i = 0; i < before.forwards.size(); ++i) {
        INFO("forward " << i);
        CHECK((before.forwards[i] == after.forwards[i]) == (i != change.forward));
    }
}

TEST_CASE("reload compare: identical forwards compare equal", "[config][reload]")
{
    const config a = parse_ok(every_key);
    const config b = parse_ok(every_key);
    REQUIRE(a.forwards.size() == 6);
    for (std::size_t i = 0; i < a.forwards.size(); ++i)
        CHECK(a.forwards[i] == b.forwards[i]);
}

TEST_CASE("reload compare: a forward that only moved in the file is unchanged", "[config][reload]")
{
    const config a = parse_ok(every_key);
    const config b = parse_ok("# a comment that moves every table down\n\n" + std::string{every_key});
    for (std::size_t i = 0; i < a.forwards.size(); ++i) {
        CHECK(a.forwards[i].line != b.forwards[i].line);
        CHECK(a.forwards[i] == b.forwards[i]);
    }
    CHECK(a.forwards[2].maps.at(0).line != b.forwards[2].maps.at(0).line);
}

TEST_CASE("reload compare: a change to any one key changes its forward and no other", "[config][reload]")
{
    const auto change = GENERATE(values<one_change>({
        {0, 0, R"(name = "t")", R"(name = "t2")"},
        {0, 0, R"(listen = "127.0.0.1:7001")", R"(listen = "127.0.0.1:7004")"},
        {0, 0, "max_request = 4096", "max_request = 4097"},
        {0, 0, "once = false", "once = true"},
        {1, 1, R"(name = "u")", R"(name = "u2")"},
        {1, 1, R"(protocol = "udp")", R"(protocol = "tcp")"},
        {1, 1, R"(listen = "127.0.0.1:7002")", R"(listen = "127.0.0.1:7004")"},
        {1, 1, "max_request = 4096", "max_request = 4097"},
        {-1, 1, R"(call_timeout = "30s")", R"(call_timeout = "31s")"},  // only "u" inherits it
        {2, 2, R"(name = "h")", R"(name = "h2")"},
        {2, 2, R"(listen = "127.0.0.1:7003")", R"(listen = "127.0.0.1:7004")"},
        {2, 2, "max_header_bytes = 8192", "max_header_bytes = 8193"},
        {2, 2, "max_headers = 50", "max_headers = 51"},
        {2, 2, "max_body = 100000", "max_body = 100001"},
        {2, 2, R"(header_timeout = "4s")", R"(header_timeout = "4001ms")"},
        {2, 2, "max_requests = 100", "max_requests = 101"},
        {2, 2, R"(method = ["GET"])", R"(method = ["GET", "POST"])"},
        {2, 2, R"(prefix = "/m")", R"(prefix = "/n")"},
        {2, 2, R"(door = "/run/b.door")", R"(door = "/run/c.door")"},
        {2, 2, "door = \"/run/b.door\"\n", "door = \"/run/b.door\"\n\n[[forward.map]]\nmethod = \"*\"\nprefix = \"/o\"\n"
                                           "door = \"/run/b.door\"\n"},
        {3, 3, R"(name = "p")", R"(name = "p2")"},
        {3, 3, R"(listen = "127.0.0.1:7005")", R"(listen = "127.0.0.1:7004")"},
        {3, 3, R"(door = "/run/p.door")", R"(door = "/run/c.door")"},
        {3, 3, "max_concurrency = 8", "max_concurrency = 9"},
        {3, 3, "queue = 16", "queue = 17"},
        {3, 3, R"(call_timeout = "7s")", R"(call_timeout = "7001ms")"},
        {3, 3, "pass_hold = false", "pass_hold = true"},
        {4, 4, R"(name = "e")", R"(name = "e2")"},
        {4, 4, R"(listen = "127.0.0.1:7006")", R"(listen = "127.0.0.1:7007")"},
        {4, 4, R"(command = ["/bin/cat", "-u"])", R"(command = ["/bin/cat"])"},
        {4, 4, R"(command = ["/bin/cat", "-u"])", R"(command = ["/usr/bin/cat", "-u"])"},
        {4, 4, R"(user = "nobody")", R"(user = "daemon")"},
        {4, 4, R"(group = "nogroup")", R"(group = "daemon")"},
        {4, 4, "max_concurrency = 8", "max_concurrency = 9"},
        {4, 4, "queue = 16", "queue = 17"},
        {4, 4, R"(call_timeout = "7s")", R"(call_timeout = "7001ms")"},
        {5, 5, R"(name = "s")", R"(name = "s2")"},
        {5, 5, R"(protocol = "https")", R"(protocol = "tls")"},
        {5, 5, R"(certificate = "/etc/s.crt")", R"(certificate = "/etc/s2.crt")"},
        {5, 5, R"(private_key = "/etc/s.key")", R"(private_key = "/etc/s2.key")"},
        {5, 5, R"(tls_min_version = "1.2")", R"(tls_min_version = "1.3")"},
        {5, 5, R"(handshake_timeout = "3s")", R"(handshake_timeout = "3001ms")"},
    }));
    check_only_its_forward_changes(change);
}

TEST_CASE("reload compare: the keys every protocol takes", "[config][reload]")
{
    // tcp and http forwards take them all, udp ones all but the read and idle timeouts.
    const int section = GENERATE(0, 1, 2);
    const auto [from, to] = GENERATE(table<std::string_view, std::string_view>({
        {R"(door = "/run/a.door")", R"(door = "/run/c.door")"},
        {"max_concurrency = 8", "max_concurrency = 9"},
        {"queue = 16", "queue = 17"},
        {R"(read_timeout = "5s")", R"(read_timeout = "5001ms")"},
        {R"(idle_timeout = "6s")", R"(idle_timeout = "6001ms")"},
        {R"(call_timeout = "7s")", R"(call_timeout = "7001ms")"},
    }));
    if (section == 1 && (from.starts_with("read") || from.starts_with("idle") || from.starts_with("call")))
        return;
    check_only_its_forward_changes({section, static_cast<std::size_t>(section), from, to});
}

TEST_CASE("reload compare: a certificate renewed in place changes its forward", "[config][reload]")
{
    // load_config() reads the files into these; the paths stay, the contents change.
    const config a = parse_ok(every_key);
    config b = a;
    REQUIRE(b.forwards[5].tls);
    b.forwards[5].tls->certificate_pem = "-----BEGIN CERTIFICATE-----\nrenewed\n";
    CHECK_FALSE(a.forwards[5] == b.forwards[5]);
    b = a;
    b.forwards[5].tls->private_key_pem = "-----BEGIN PRIVATE KEY-----\nnew\n";
    CHECK_FALSE(a.forwards[5] == b.forwards[5]);
}

}  // namespace portunusd::test
