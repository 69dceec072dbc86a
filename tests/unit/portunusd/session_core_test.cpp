// SPDX-License-Identifier: MPL-2.0
// session_core: one close that logs once, deadlines that reach the protocol, the slot given back, one line format.
#include "portunusd/session/session_core.hpp"

#include "portunusd/log/logging.hpp"
#include "run_until.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

using namespace std::chrono_literals;
using portunusd_test::run_until;
namespace pd = portunusd;

namespace {

/// A protocol that only records what the core asks of it.
class probe_session final : public pd::session_core {
public:
    using session_core::session_core;

    int timeouts = 0;
    int closes = 0;
    std::string timeout_reason;

    void arm(std::chrono::milliseconds after, const char* reason) { arm_timer(after, reason); }
    void end(std::string_view reason) { close(reason); }
    block_read read(std::size_t room) { return read_block(room); }
    [[nodiscard]] bool is_closed() const { return closed_; }

private:
    void on_start(std::string_view) override {}
    void on_readable(const boost::system::error_code&) override {}
    void on_timeout(const char* reason) override
    {
        ++timeouts;
        timeout_reason = reason;
        close(reason);
    }
    void on_closed(std::string_view reason) override
    {
        ++closes;
        log_access(pd::tcp_access_fields{2}, 7, 9, reason, started_);
    }
    [[nodiscard]] bool idle() const noexcept override { return true; }
};

/// One forward, one limit, one registry and a connected socket pair for the session.
struct fixture {
    boost::asio::io_context loop{1};
    std::shared_ptr<pd::forward_state> forward = std::make_shared<pd::forward_state>();
    pd::connection_limit limit{10};
    pd::session_registry registry;
    portunus::unique_fd client;

    fixture()
    {
        forward->config.name = "probe";
        forward->stats = std::make_shared<pd::forward_stats>();
    }

    std::shared_ptr<probe_session> open()
    {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        client = portunus::unique_fd(fds[1]);
        REQUIRE(limit.try_open([] {}));
        pd::accepted_connection c{loop.get_executor(), portunus::unique_fd(fds[0]),
                                  {boost::asio::ip::make_address("192.0.2.7"), 40123}, {}};
        auto s = std::make_shared<probe_session>(std::move(c), forward, limit, registry);
        s->start();
        run_until(loop, [] { return false; }, 10ms);
        return s;
    }
};

/// Sends the access log to a fresh file for one test, and turns it off again after.
struct access_log_file {
    std::string path;
    access_log_file()
    {
        char name[] = "/tmp/session_core_test.XXXXXX";
        const int fd = ::mkstemp(name);
        REQUIRE(fd >= 0);
        ::close(fd);
        path = name;
        pd::daemon_config cfg;
        cfg.access_log = path;
        REQUIRE(pd::setup_logging(cfg, 0).empty());
    }
    ~access_log_file()
    {
        pd::setup_logging(pd::daemon_config{}, 0);
        ::unlink(path.c_str());
    }
    [[nodiscard]] std::string text() const
    {
        std::ifstream f(path);
        std::stringstream ss;
        ss << f.rdbuf();
        return ss.str();
    }
};

std::size_t count_lines(const std::string& text)
{
    return static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n'));
}

} // namespace

TEST_CASE("session_core: close is idempotent and writes the access-log line once")
{
    access_log_file log;
    fixture f;
    auto s = f.open();
    CHECK(f.registry.size() == 1);
    s->end("first");
    s->end("second");
    CHECK(s->closes == 1);
    CHECK(s->is_closed());
    CHECK(f.registry.size() == 0);
    const auto text = log.text();
    REQUIRE(count_lines(text) == 1);
    CHECK(std::regex_search(text, std::regex(R"(access tcp forward=probe client=192\.0\.2\.7:40123 calls=2 in=7 )"
                                             R"(out=9 result="first" duration_ms=\d+\.\d{3}\n$)")));
}

TEST_CASE("session_core: the deadline runs the protocol's handler with its reason")
{
    fixture f;
    auto s = f.open();
    s->arm(20ms, "probe timeout");
    REQUIRE(run_until(f.loop, [&] { return s->timeouts > 0; }));
    CHECK(s->timeout_reason == "probe timeout");
    CHECK(s->is_closed());
    // A deadline moved later is the one that counts, and a closed session has none.
    run_until(f.loop, [] { return false; }, 50ms);
    CHECK(s->timeouts == 1);
}

TEST_CASE("session_core: a deadline moved on does not fire early, and close cancels it")
{
    fixture f;
    auto s = f.open();
    s->arm(30ms, "early");
    s->arm(300ms, "late");
    run_until(f.loop, [] { return false; }, 100ms);
    CHECK(s->timeouts == 0);
    s->end("done");
    run_until(f.loop, [] { return false; }, 300ms);
    CHECK(s->timeouts == 0);
}

TEST_CASE("session_core: closing gives the connection slot back once the session is let go")
{
    fixture f;
    {
        auto s = f.open();
        CHECK(f.limit.open() == 1);
        CHECK(f.forward->stats->totals().connections_open == 1);
        s->arm(10s, "idle");
        s->end("done");
        // The client sees the end of the stream at once.
        char c;
        CHECK(::read(f.client.get(), &c, 1) == 0);
    }
    // The cancelled timer's handler held the last reference; it runs on the loop.
    REQUIRE(run_until(f.loop, [&] { return f.limit.open() == 0; }));
    CHECK(f.forward->stats->totals().connections_open == 0);
    CHECK(f.registry.size() == 0);
}

TEST_CASE("session_core: drain closes an idle session")
{
    fixture f;
    auto s = f.open();
    s->drain();
    REQUIRE(run_until(f.loop, [&] { return s->is_closed(); }));
    CHECK(s->closes == 1);
}

TEST_CASE("session_core: a read takes at most its room and marks a full one")
{
    fixture f;
    auto s = f.open();
    CHECK(s->read(16).error == EAGAIN);
    REQUIRE(::write(f.client.get(), "0123456789", 10) == 10);
    auto r = s->read(4);
    CHECK(r.bytes == "0123");
    r = s->read(16);
    CHECK(r.bytes == "456789");
    f.client.reset();
    r = s->read(16);
    CHECK(r.bytes.empty());
    CHECK(r.error == 0);
    s->end("client closed");
}

TEST_CASE("access lines carry the same fields in the same order for every protocol")
{
    using pd::access_line;
    const auto common = std::regex(R"(^(tcp|udp|http) forward=f client=(\d+\.\d+\.\d+\.\d+|\[[0-9a-f:]+\]):\d+ )"
                                   R"((.* )?in=\d+ out=\d+ result="[^"]*" duration_ms=\d+\.\d{3}$)");
    const access_line tcp{"tcp", "f", "127.0.0.1:5000", pd::tcp_access_fields{3}, 10, 20, "client closed", 1500us};
    const access_line udp{"udp", "f", "[::1]:53", {}, 5, 0, "door error: no such door", 2ms};
    const access_line http{"http",  "f", "10.0.0.1:443", pd::http_access_fields{"GET", "/a/b?token=secret", 503},
                           120,     153, "queue full",   250us};
    CHECK(pd::access_line_text(tcp) ==
          R"(tcp forward=f client=127.0.0.1:5000 calls=3 in=10 out=20 result="client closed" duration_ms=1.500)");
    CHECK(pd::access_line_text(udp) ==
          R"(udp forward=f client=[::1]:53 in=5 out=0 result="door error: no such door" duration_ms=2.000)");
    CHECK(pd::access_line_text(http) == R"(http forward=f client=10.0.0.1:443 method=GET path="/a/b" status=503 )"
                                        R"(in=120 out=153 result="queue full" duration_ms=0.250)");
    for (const auto* l : {&tcp, &udp, &http}) CHECK(std::regex_match(pd::access_line_text(*l), common));
}
