// SPDX-License-Identifier: MPL-2.0
// The metrics room: the Prometheus page line by line, health decisions, routes, process stats and
// the listener over real sockets (a refused head, the connection cap, stop).
#include "portunusd/metrics/health.hpp"
#include "portunusd/metrics/metrics_connection.hpp"
#include "portunusd/metrics/metrics_listener.hpp"
#include "portunusd/metrics/metrics_routes.hpp"
#include "portunusd/metrics/process_stats.hpp"
#include "portunusd/metrics/prometheus.hpp"
#include "run_until.hpp"

#include <catch2/catch.hpp>

#include <boost/asio/io_context.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using portunusd_test::run_until;
namespace pd = portunusd;

namespace {

pd::daemon_snapshot sample_snapshot()
{
    pd::daemon_snapshot s;
    s.version = "1.2.3";
    s.pid = 4242;
    s.uptime_seconds = 12.5;
    s.start_time_unix = 1700000000.25;
    s.config_file = "/etc/portunusd.toml";
    s.config_loaded_unix = 1700000100.5;

    pd::forward_snapshot web;
    web.name = "web";
    web.protocol = "http";
    web.listen = "127.0.0.1:8080";
    web.doors.push_back({"/var/run/web.door", "open", 77, 2, 9, 1, 1000, 3, 1, 4});
    web.doors.push_back({"/var/run/api.door", "unopened"});
    web.counts.connections = 120;
    web.counts.connections_open = 5;
    web.counts.requests = 1001;
    web.counts.bytes_in = 123456;
    web.counts.bytes_out = 654321;
    web.counts.timeouts = 1;
    web.counts.door_gone = 2;
    web.counts.interrupted = 3;
    web.counts.queue_full = 4;
    web.counts.too_large = 5;
    web.counts.other_errors = 6;
    web.counts.status_400 = 7;
    web.counts.status_502 = 8;
    web.counts.status_503 = 9;
    web.counts.status_504 = 10;
    auto& h = web.counts.call_duration;
    h.buckets[0] = 1;  // <= 0.0001 s
    h.buckets[3] = 2;  // <= 0.001 s
    h.buckets.back() = 1; // > 2.5 s
    h.count = 4;
    h.sum_seconds = 3.5;
    s.forwards.push_back(web);

    pd::forward_snapshot dns;
    dns.name = "dns";
    dns.protocol = "udp";
    dns.listen = "*:53";
    dns.doors.push_back({"/var/run/dns.door", "missing"});
    dns.counts.requests = 17;
    s.forwards.push_back(dns);
    return s;
}

pd::process_stats sample_process()
{
    pd::process_stats p;
    p.resident_memory_bytes = 1048576;
    p.open_fds = 12;
    p.max_fds = 1024;
    p.cpu_seconds = 0.5;
    p.threads = 5;
    return p;
}

std::vector<std::string> lines_of(const std::string& text)
{
    std::vector<std::string> out;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) out.push_back(line);
    return out;
}

bool has_line(const std::string& page, const std::string& line)
{
    for (const auto& l : lines_of(page))
        if (l == line) return true;
    return false;
}

/// What promtool checks of the format's structure: HELP then TYPE once per family, each
/// family's samples right after its TYPE line, no series twice, the page ends in a newline.
void check_structure(const std::string& page)
{
    REQUIRE(!page.empty());
    REQUIRE(page.back() == '\n');
    std::set<std::string> families, series;
    std::string family, type;
    bool help_seen = false;
    for (const auto& line : lines_of(page)) {
        INFO(line);
        if (line.rfind("# HELP ", 0) == 0) {
            family = line.substr(7, line.find(' ', 7) - 7);
            REQUIRE(families.insert(family).second);
            help_seen = true;
            type.clear();
            continue;
        }
        if (line.rfind("# TYPE ", 0) == 0) {
            REQUIRE(help_seen);
            REQUIRE(line.substr(7, family.size() + 1) == family + " ");
            type = line.substr(8 + family.size());
            REQUIRE((type == "counter" || type == "gauge" || type == "histogram"));
            if (type == "counter") REQUIRE(family.size() > 6);
            if (type == "counter") REQUIRE(family.substr(family.size() - 6) == "_total");
            help_seen = false;
            continue;
        }
        REQUIRE(!type.empty());
        const auto name = line.substr(0, line.find_first_of("{ "));
        if (type == "histogram")
            REQUIRE((name == family + "_bucket" || name == family + "_sum" || name == family + "_count"));
        else
            REQUIRE(name == family);
        REQUIRE(series.insert(line.substr(0, line.rfind(' '))).second);
    }
}

/// A blocking-free client socket, read while the test runs the listener's loop.
struct client {
    int fd = -1;
    std::string got;
    bool eof = false;

    explicit client(unsigned short port)
    {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        // Loopback connects complete in the kernel's backlog, before the listener accepts.
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        ::fcntl(fd, F_SETFL, O_NONBLOCK);
    }
    ~client() { ::close(fd); }
    client(const client&) = delete;
    client& operator=(const client&) = delete;

    void send(const std::string& data) { REQUIRE(::send(fd, data.data(), data.size(), MSG_NOSIGNAL) == ssize_t(data.size())); }

    /// Takes what has arrived; true once the peer closed.
    bool poll()
    {
        char buf[65536];
        for (;;) {
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n > 0) {
                got.append(buf, static_cast<std::size_t>(n));
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) eof = true;
            return eof;
        }
    }
};

struct listener_fixture {
    boost::asio::io_context loop{1};
    int snapshots = 0;
    pd::metrics_listener listener;

    explicit listener_fixture(std::string host = "127.0.0.1", unsigned short port = 0)
        : listener(loop, pd::listen_address{host, port, false, host + ":" + std::to_string(port)},
                   [this] {
                       ++snapshots;
                       return sample_snapshot();
                   })
    {
    }

    unsigned short port() const { return listener.local_endpoint().port(); }

    std::string exchange(const std::string& request)
    {
        client c(port());
        c.send(request);
        REQUIRE(run_until(loop, [&] { return c.poll(); }));
        return c.got;
    }
};

} // namespace

TEST_CASE("the page has the daemon's families with their exact lines", "[metrics]")
{
    const auto page = pd::render_prometheus(sample_snapshot(), sample_process());
    check_structure(page);
    const char* const expected[] = {
        "# HELP portunusd_build_info The running daemon's version, in the label; always 1.",
        "# TYPE portunusd_build_info gauge",
        "portunusd_build_info{version=\"1.2.3\"} 1",
        "portunusd_config_last_reload_timestamp_seconds 1700000100.5",
        "portunusd_draining 0",
        "portunusd_forward_info{forward=\"web\",protocol=\"http\",listen=\"127.0.0.1:8080\"} 1",
        "# TYPE portunusd_forward_connections_total counter",
        "portunusd_forward_connections_total{forward=\"web\",protocol=\"http\"} 120",
        "portunusd_forward_connections_open{forward=\"web\",protocol=\"http\"} 5",
        "portunusd_forward_requests_total{forward=\"web\",protocol=\"http\"} 1001",
        "portunusd_forward_requests_total{forward=\"dns\",protocol=\"udp\"} 17",
        "portunusd_forward_received_bytes_total{forward=\"web\",protocol=\"http\"} 123456",
        "portunusd_forward_sent_bytes_total{forward=\"web\",protocol=\"http\"} 654321",
        "portunusd_forward_failures_total{forward=\"web\",protocol=\"http\",kind=\"timeout\"} 1",
        "portunusd_forward_failures_total{forward=\"web\",protocol=\"http\",kind=\"door_gone\"} 2",
        "portunusd_forward_failures_total{forward=\"web\",protocol=\"http\",kind=\"interrupted\"} 3",
        "portunusd_forward_failures_total{forward=\"web\",protocol=\"http\",kind=\"queue_full\"} 4",
        "portunusd_forward_failures_total{forward=\"web\",protocol=\"http\",kind=\"too_large\"} 5",
        "portunusd_forward_failures_total{forward=\"web\",protocol=\"http\",kind=\"other\"} 6",
        "portunusd_forward_failures_total{forward=\"dns\",protocol=\"udp\",kind=\"timeout\"} 0",
        "portunusd_forward_daemon_responses_total{forward=\"web\",protocol=\"http\",code=\"4xx\"} 7",
        "portunusd_forward_daemon_responses_total{forward=\"web\",protocol=\"http\",code=\"504\"} 10",
        "# TYPE portunusd_door_call_duration_seconds histogram",
        "portunusd_door_up{forward=\"web\",door=\"/var/run/web.door\"} 1",
        "portunusd_door_up{forward=\"web\",door=\"/var/run/api.door\"} 1",
        "portunusd_door_up{forward=\"dns\",door=\"/var/run/dns.door\"} 0",
        "portunusd_door_state{forward=\"web\",door=\"/var/run/web.door\",state=\"open\"} 1",
        "portunusd_door_state{forward=\"web\",door=\"/var/run/web.door\",state=\"missing\"} 0",
        "portunusd_door_state{forward=\"dns\",door=\"/var/run/dns.door\",state=\"missing\"} 1",
        "portunusd_door_in_flight{forward=\"web\",door=\"/var/run/web.door\"} 2",
        "portunusd_door_peak_in_flight{forward=\"web\",door=\"/var/run/web.door\"} 9",
        "portunusd_door_queued{forward=\"web\",door=\"/var/run/web.door\"} 1",
        "# TYPE portunusd_door_calls_total counter",
        "portunusd_door_calls_total{forward=\"web\",door=\"/var/run/web.door\"} 1000",
        "portunusd_door_errors_total{forward=\"web\",door=\"/var/run/web.door\"} 3",
        "portunusd_door_reopens_total{forward=\"web\",door=\"/var/run/web.door\"} 1",
        "portunusd_door_queue_full_total{forward=\"web\",door=\"/var/run/web.door\"} 4",
        "# TYPE process_cpu_seconds_total counter",
        "process_cpu_seconds_total 0.5",
        "process_open_fds 12",
        "process_max_fds 1024",
        "process_resident_memory_bytes 1048576",
        // Not read from the process here: the snapshot's start time stands in.
        "process_start_time_seconds 1700000000.25",
        "portunusd_threads 5",
    };
    for (const char* line : expected) {
        INFO(line);
        CHECK(has_line(page, line));
    }
    // udp has no connections, and only http forwards get daemon responses.
    CHECK(page.find("portunusd_forward_connections_total{forward=\"dns\"") == std::string::npos);
    CHECK(page.find("portunusd_forward_daemon_responses_total{forward=\"dns\"") == std::string::npos);
    // Unknown to this process: left out rather than written as 0.
    CHECK(page.find("process_virtual_memory_bytes") == std::string::npos);
}

TEST_CASE("the call duration histogram is cumulative and ends in +Inf", "[metrics]")
{
    const auto page = pd::render_prometheus(sample_snapshot(), {});
    const std::string prefix = "portunusd_door_call_duration_seconds_bucket{forward=\"web\",protocol=\"http\",le=\"";
    const std::map<std::string, int> buckets{{"0.0001", 1}, {"0.00025", 1}, {"0.0005", 1}, {"0.001", 3},
                                             {"0.0025", 3}, {"0.005", 3},   {"0.01", 3},   {"0.025", 3},
                                             {"0.05", 3},   {"0.1", 3},     {"0.25", 3},   {"0.5", 3},
                                             {"1", 3},      {"2.5", 3},     {"+Inf", 4}};
    for (const auto& [le, n] : buckets) {
        INFO(le);
        CHECK(has_line(page, prefix + le + "\"} " + std::to_string(n)));
    }
    CHECK(has_line(page, "portunusd_door_call_duration_seconds_sum{forward=\"web\",protocol=\"http\"} 3.5"));
    CHECK(has_line(page, "portunusd_door_call_duration_seconds_count{forward=\"web\",protocol=\"http\"} 4"));
    CHECK(has_line(page, "portunusd_door_call_duration_seconds_count{forward=\"dns\",protocol=\"udp\"} 0"));
    // In bound order, +Inf last.
    const auto first = page.find(prefix + "0.0001\"");
    const auto last = page.find(prefix + "+Inf\"");
    REQUIRE(first != std::string::npos);
    CHECK(first < page.find(prefix + "2.5\""));
    CHECK(page.find(prefix + "2.5\"") < last);
}

TEST_CASE("label values are escaped; HELP text too", "[metrics]")
{
    std::string out;
    pd::append_label_value(out, "a\\b\"c\nd");
    CHECK(out == "a\\\\b\\\"c\\nd");

    auto s = sample_snapshot();
    s.version = "1.0 \"beta\"";
    s.forwards[0].doors[0].path = "/tmp/we\"ird\\door\nx";
    const auto page = pd::render_prometheus(s, {});
    check_structure(page);
    CHECK(has_line(page, "portunusd_build_info{version=\"1.0 \\\"beta\\\"\"} 1"));
    CHECK(has_line(page, "portunusd_door_up{forward=\"web\",door=\"/tmp/we\\\"ird\\\\door\\nx\"} 1"));
    // No raw newline inside a sample: every line is a comment or starts with a metric name.
    for (const auto& line : lines_of(page)) {
        INFO(line);
        CHECK((line.rfind("# ", 0) == 0 || line.rfind("portunusd_", 0) == 0 || line.rfind("process_", 0) == 0));
    }
}

TEST_CASE("tls and https forwards: handshake failures and the certificate's expiry", "[metrics][tls]")
{
    pd::daemon_snapshot s = sample_snapshot();
    pd::forward_snapshot site;
    site.name = "site";
    site.protocol = "https";
    site.listen = "*:443";
    site.counts.tls_handshake_failures = 42;
    site.tls_not_after = 1767225600; // 2026-01-01T00:00:00Z
    s.forwards.push_back(site);
    const auto page = pd::render_prometheus(s, sample_process());
    check_structure(page);
    CHECK(has_line(page, "portunusd_forward_tls_handshake_failures_total{forward=\"site\",protocol=\"https\"} 42"));
    CHECK(has_line(page, "portunusd_forward_tls_certificate_expiry_timestamp_seconds{forward=\"site\",protocol=\"https\"} "
                         "1767225600"));
    // Plain forwards have neither.
    CHECK(page.find("portunusd_forward_tls_handshake_failures_total{forward=\"web\"") == std::string::npos);
    CHECK(page.find("portunusd_forward_tls_certificate_expiry_timestamp_seconds{forward=\"web\"") == std::string::npos);
}

TEST_CASE("a daemon without forwards still renders a valid page", "[metrics]")
{
    pd::daemon_snapshot s;
    s.draining = true;
    const auto page = pd::render_prometheus(s, {});
    check_structure(page);
    CHECK(has_line(page, "portunusd_draining 1"));
    CHECK(has_line(page, "portunusd_build_info{version=\"\"} 1"));
}

TEST_CASE("health decisions", "[metrics]")
{
    auto s = sample_snapshot();
    CHECK(pd::daemon_health(s) == pd::health_verdict{200, "ok\n"});
    CHECK(pd::forward_health(s, "web") == pd::health_verdict{200, "ok\n"});
    CHECK(pd::forward_health(s, "dns") == pd::health_verdict{503, "door missing: /var/run/dns.door\n"});
    CHECK(pd::forward_health(s, "nope").status == 404);
    CHECK(pd::forward_health(s, "").status == 404);

    s.forwards[0].doors[1].state = "failing";
    s.forwards[0].doors[0].state = "missing";
    CHECK(pd::forward_health(s, "web") ==
          pd::health_verdict{503, "door missing: /var/run/web.door\ndoor failing: /var/run/api.door\n"});

    s = sample_snapshot();
    s.draining = true;
    CHECK(pd::daemon_health(s) == pd::health_verdict{503, "draining\n"});
    CHECK(pd::forward_health(s, "web") == pd::health_verdict{503, "draining\n"});
    CHECK(pd::forward_health(s, "nope").status == 404);
}

TEST_CASE("routes: metrics, health, 404, 405, HEAD", "[metrics]")
{
    int snapshots = 0;
    pd::metrics_sources sources{[&] {
                                    ++snapshots;
                                    return sample_snapshot();
                                },
                                sample_process};
    const auto get = [&](std::string_view method, std::string_view target) {
        return pd::metrics_response(method, target, sources);
    };

    const auto metrics = get("GET", "/metrics");
    CHECK(metrics.rfind("HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n", 0) == 0);
    const auto body = metrics.substr(metrics.find("\r\n\r\n") + 4);
    CHECK(metrics.find("\r\nContent-Length: " + std::to_string(body.size()) + "\r\n") != std::string::npos);
    CHECK(metrics.find("\r\nConnection: close\r\n") != std::string::npos);
    CHECK(body == pd::render_prometheus(sample_snapshot(), sample_process()));
    CHECK(get("GET", "/metrics?x=1") == metrics);

    const auto head = get("HEAD", "/metrics");
    CHECK(head == metrics.substr(0, metrics.find("\r\n\r\n") + 4));

    CHECK(get("GET", "/health") ==
          "HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 3\r\n"
          "Cache-Control: no-store\r\nConnection: close\r\n\r\nok\n");
    CHECK(get("GET", "/health/dns").rfind("HTTP/1.1 503 Service Unavailable\r\n", 0) == 0);
    CHECK(get("GET", "/health/web").rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(get("GET", "/health/w%65b").rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(get("GET", "/health/nope").rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    CHECK(get("GET", "/health/%zz").rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    CHECK(get("GET", "/health/web%").rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    CHECK(get("GET", "/").rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    CHECK(get("GET", "/metricsx").rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);
    CHECK(get("GET", "/health/").rfind("HTTP/1.1 404 Not Found\r\n", 0) == 0);

    const int before = snapshots;
    const auto post = get("POST", "/metrics");
    CHECK(post.rfind("HTTP/1.1 405 Method Not Allowed\r\n", 0) == 0);
    CHECK(post.find("\r\nAllow: GET, HEAD\r\n") != std::string::npos);
    CHECK(get("DELETE", "/health/web").rfind("HTTP/1.1 405 ", 0) == 0);
    // A refused request costs no snapshot.
    CHECK(snapshots == before);

    CHECK(pd::refusal_response(431) ==
          "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
          "Content-Length: 36\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
          "431 Request Header Fields Too Large\n");
}

TEST_CASE("process stats are plausible", "[metrics]")
{
    const auto p = pd::read_process_stats();
    REQUIRE(p.open_fds);
    CHECK(*p.open_fds >= 3);
    REQUIRE(p.max_fds);
    CHECK(*p.max_fds >= *p.open_fds);
    REQUIRE(p.cpu_seconds);
    CHECK(*p.cpu_seconds >= 0);
#if defined(__linux__)
    REQUIRE(p.resident_memory_bytes);
    CHECK(*p.resident_memory_bytes > 0);
    REQUIRE(p.virtual_memory_bytes);
    CHECK(*p.virtual_memory_bytes >= *p.resident_memory_bytes);
    REQUIRE(p.threads);
    CHECK(*p.threads >= 1);
    REQUIRE(p.start_time_unix);
    const auto now = static_cast<double>(std::time(nullptr));
    CHECK(*p.start_time_unix <= now + 1);
    CHECK(*p.start_time_unix > now - 24 * 3600);
#endif
    // The descriptor that lists the directory is not counted: a second reading sees the same.
    CHECK(*pd::read_process_stats().open_fds == *p.open_fds);
}

TEST_CASE("rendering 100 forwards is fast", "[metrics]")
{
    pd::daemon_snapshot s = sample_snapshot();
    s.forwards.clear();
    for (int i = 0; i < 100; ++i) {
        auto f = sample_snapshot().forwards[0];
        f.name = "forward-" + std::to_string(i);
        s.forwards.push_back(std::move(f));
    }
    const auto process = pd::read_process_stats();
    std::string page;
    const auto start = std::chrono::steady_clock::now();
    constexpr int rounds = 50;
    for (int i = 0; i < rounds; ++i) page = pd::render_prometheus(s, process);
    const auto per_page = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start) / rounds;
    const auto read_start = std::chrono::steady_clock::now();
    for (int i = 0; i < rounds; ++i) (void)pd::read_process_stats();
    const auto per_read =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - read_start) / rounds;
    check_structure(page);
    // Reported, not asserted: timings depend on the machine and the build.
    std::printf("metrics: page for 100 forwards (200 doors): %.3f ms, %zu bytes; process stats: %.3f ms\n",
                per_page.count(), page.size(), per_read.count());
}

TEST_CASE("listener: serves over a socket, refuses a large head, closes at stop", "[metrics]")
{
    listener_fixture f;
    REQUIRE(f.listener.start().empty());
    REQUIRE(f.port() != 0);
    CHECK(f.listener.start().empty()); // started already: nothing to do

    const auto reply = f.exchange("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(reply.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    CHECK(reply.find("\nportunusd_build_info{version=\"1.2.3\"} 1\n") != std::string::npos);
    CHECK(f.snapshots == 1);

    CHECK(f.exchange("GET /health/dns HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 503 ", 0) == 0);
    CHECK(f.exchange("GET /health HTTP/1.1\r\n\r\n").rfind("HTTP/1.1 400 ", 0) == 0); // no Host
    CHECK(f.exchange("GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(9000, 'a') + "\r\n\r\n")
              .rfind("HTTP/1.1 431 ", 0) == 0);
    CHECK(f.exchange("GET /health HTTP/1.1\r\nHost: x\r\n" + std::string(9000, 'b'))
              .rfind("HTTP/1.1 431 ", 0) == 0);
    CHECK(f.exchange("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n").rfind("HTTP/1.1 413 ", 0) == 0);
    CHECK(f.exchange("POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
              .rfind("HTTP/1.1 405 ", 0) == 0);

    // A request split into single bytes is answered once it is whole.
    {
        client c(f.port());
        const std::string request = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
        for (const char ch : request) {
            c.send(std::string(1, ch));
            f.loop.restart();
            f.loop.poll();
        }
        REQUIRE(run_until(f.loop, [&] { return c.poll(); }));
        CHECK(c.got.rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
    }

    // A client that sends part of a head is closed when the listener stops.
    client idle(f.port());
    idle.send("GET /met");
    f.loop.restart();
    f.loop.run_for(50ms);
    CHECK(!idle.poll());
    f.listener.stop();
    f.listener.stop();
    REQUIRE(run_until(f.loop, [&] { return idle.poll(); }));
    CHECK(idle.got.empty());
    CHECK(f.listener.local_endpoint().port() == 0);
}

TEST_CASE("listener: past 64 open connections new ones are closed at once", "[metrics]")
{
    listener_fixture f;
    REQUIRE(f.listener.start().empty());
    std::vector<std::unique_ptr<client>> held;
    for (std::size_t i = 0; i < pd::metrics_listener::max_connections; ++i)
        held.push_back(std::make_unique<client>(f.port()));
    f.loop.restart();
    f.loop.run_for(100ms);
    client extra(f.port());
    REQUIRE(run_until(f.loop, [&] { return extra.poll(); }));
    CHECK(extra.got.empty());
    for (auto& c : held) CHECK(!c->poll());

    // One leaves; the next client is served.
    held.pop_back();
    f.loop.restart();
    f.loop.run_for(50ms);
    CHECK(f.exchange("GET /health HTTP/1.0\r\n\r\n").rfind("HTTP/1.1 200 OK\r\n", 0) == 0);
}

TEST_CASE("listener: a port in use is an error the operator can read", "[metrics]")
{
    listener_fixture first;
    REQUIRE(first.listener.start().empty());
    const auto port = first.port();
    listener_fixture second("127.0.0.1", port);
    CHECK(second.listener.start() ==
          "cannot bind metrics_listen 127.0.0.1:" + std::to_string(port) + ": Address already in use");
    listener_fixture bad("no.such.host", 1);
    CHECK(bad.listener.start().rfind("cannot bind metrics_listen no.such.host:1: ", 0) == 0);
}
