// SPDX-License-Identifier: MPL-2.0
// Measures door call round trips against the same echo over a raw SOCK_SEQPACKET socket.
//
// For each CPU placement (all threads on one CPU; callers on one CPU and the server on another;
// no thread pinned) one run forks an echo server process (a door and a raw socket listener),
// then, for each case (payload 64 B or 64 KiB, 1 or 16 caller threads), calls it through the
// door and through raw sockets for the same time, in alternating slices, and prints calls/s and
// round-trip latency percentiles. The raw exchange is the floor a userland door can reach: same
// kernel transport, same two processes, no protocol, no allocation, no readiness notification.
//
// Placement is a variable of its own because a round trip's latency depends more on whether the
// two threads share a CPU than on what either transport does: waking a thread on an idle vCPU
// can cost tens of microseconds, and an unpinned pair settles into one placement or the other by
// chance and mostly keeps it for the run.
#include "timed_callers.hpp"

#include <portunus/door.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

using namespace portunus;
using bench::caller;
using bench::measurement;
using bench::runner;

constexpr std::chrono::milliseconds warmup{500};
// Each transport's measured time per case is split into this many slices, door and raw taking
// turns, so that a burst of background load cannot land on one side only.
constexpr int slices = 6;
// Larger than any payload here, so a raw receive can never truncate a message.
constexpr std::size_t raw_buffer_size = 256 * 1024;

struct bench_case {
    const char* name;
    std::size_t payload;
    unsigned threads;
};

constexpr bench_case cases[] = {
    {"64B_c1", 64, 1},
    {"64B_c16", 64, 16},
    {"64KiB_c1", 64 * 1024, 1},
    {"64KiB_c16", 64 * 1024, 16},
};

[[noreturn]] void die(const char* what)
{
    std::fprintf(stderr, "door_roundtrip: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

sockaddr_un unix_address(const std::string& path)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), std::min(path.size() + 1, sizeof addr.sun_path - 1));
    return addr;
}

// ---- server process ---------------------------------------------------------------------------

// One blocking receive/send loop per connection: the simplest and fastest way a thread can
// serve a SEQPACKET peer, with no readiness notification in between.
void raw_echo(int fd)
{
    ::pthread_setname_np(::pthread_self(), "raw-echo");
    unique_fd conn(fd);
    std::unique_ptr<char[]> buffer(new char[raw_buffer_size]);
    for (;;) {
        const ssize_t n = ::recv(conn.get(), buffer.get(), raw_buffer_size, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return;
        ssize_t sent;
        do {
            sent = ::send(conn.get(), buffer.get(), static_cast<std::size_t>(n), MSG_NOSIGNAL);
        } while (sent < 0 && errno == EINTR);
        if (sent != n) return;
    }
}

void raw_accept_loop(int listen_fd)
{
    for (;;) {
        const int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) continue;
            return;
        }
        std::thread(raw_echo, fd).detach();
    }
}

// Runs in the forked child until the parent closes `stop_fd` (or dies). Reports readiness with
// one byte on `ready_fd`: 'r' when both servers listen, 'e' when setup failed.
[[noreturn]] void run_server(const std::string& door_path, const std::string& raw_path, int ready_fd, int stop_fd)
{
    std::signal(SIGPIPE, SIG_IGN);
    const auto fail = [ready_fd](const char* what, int e) {
        std::fprintf(stderr, "door_roundtrip server: %s: %s\n", what, std::strerror(e));
        const char byte = 'e';
        [[maybe_unused]] const ssize_t ignored = ::write(ready_fd, &byte, 1);
        ::_exit(1);
    };

    std::error_code ec;
    // The echo answers with the request's own bytes (a borrowed reply), as door_return(3C)
    // servers do, so no copy is made on this side that raw_echo does not make either.
    door_server server = door_server::create(
        [](door_request& request) {
            door_reply reply;
            reply.borrowed = request.data;
            return reply;
        },
        door_options{}, ec);
    if (ec) fail("door_server::create", ec.value());
    server.attach(door_path, ec);
    if (ec) fail("door_server::attach", ec.value());

    unique_fd listener(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0));
    if (!listener) fail("socket", errno);
    const sockaddr_un addr = unix_address(raw_path);
    if (::bind(listener.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listener.get(), SOMAXCONN) != 0)
        fail("raw listener", errno);
    std::thread(raw_accept_loop, listener.get()).detach();

    const char byte = 'r';
    if (::write(ready_fd, &byte, 1) != 1) ::_exit(1);
    ::close(ready_fd);

    char sink;
    while (::read(stop_fd, &sink, 1) < 0 && errno == EINTR) {
    }
    server.revoke();
    // Detached echo threads may still block in recv(): leave without running destructors.
    ::_exit(0);
}

// ---- client side ------------------------------------------------------------------------------

// A full byte comparison would add a copy-sized cost to both sides and hide the difference we
// are after; size and both ends are enough to catch a wrong or truncated echo.
bool echoed(std::string_view sent, std::string_view got)
{
    return got.size() == sent.size() && (sent.empty() || (got.front() == sent.front() && got.back() == sent.back()));
}


class door_caller final : public caller {
public:
    door_caller(const door_client& client, std::string_view payload) : client_(client), payload_(payload) {}

    bool call(std::string& error) override
    {
        std::error_code ec;
        const door_result result = client_.call(payload_, ec);
        if (ec) {
            error = "door call: " + ec.message();
            return false;
        }
        if (!echoed(payload_, result.data.view())) {
            error = "door call: wrong echo";
            return false;
        }
        return true;
    }

private:
    const door_client& client_;
    std::string_view payload_;
};

// Each caller thread owns one connection, served by its own server thread.
class raw_caller final : public caller {
public:
    raw_caller(const std::string& path, std::string_view payload, std::string& error)
        : fd_(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0)), buffer_(new char[raw_buffer_size]),
          payload_(payload)
    {
        const sockaddr_un addr = unix_address(path);
        if (!fd_ || ::connect(fd_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
            error = std::string("raw connect: ") + std::strerror(errno);
            fd_.reset();
        }
    }

    [[nodiscard]] bool connected() const noexcept { return fd_.valid(); }

    bool call(std::string& error) override
    {
        ssize_t n;
        do {
            n = ::send(fd_.get(), payload_.data(), payload_.size(), MSG_NOSIGNAL);
        } while (n < 0 && errno == EINTR);
        if (n != static_cast<ssize_t>(payload_.size())) {
            error = std::string("raw send: ") + std::strerror(errno);
            return false;
        }
        do {
            n = ::recv(fd_.get(), buffer_.get(), raw_buffer_size, 0);
        } while (n < 0 && errno == EINTR);
        if (n < 0) {
            error = std::string("raw recv: ") + std::strerror(errno);
            return false;
        }
        if (!echoed(payload_, {buffer_.get(), static_cast<std::size_t>(n)})) {
            error = "raw recv: wrong echo";
            return false;
        }
        return true;
    }

private:
    unique_fd fd_;
    std::unique_ptr<char[]> buffer_;
    std::string_view payload_;
};

// Where the caller threads and the server process run. Both transports of a case always run
// under the same placement, so their ratio compares transports, not scheduler luck.
struct placement {
    const char* name;
    const char* what; // for the header line
    bool pinned;
    cpu_set_t callers; // meaningful when pinned
    cpu_set_t server;
};

constexpr const char* placement_names[] = {"one-cpu", "two-cpus", "free"};

struct options {
    double seconds = 3;
    std::string only;                                              // one case (for profiling); empty: all
    std::vector<std::string> placements{"one-cpu", "two-cpus", "free"}; // in this order
};

std::vector<std::string> split_list(std::string_view list)
{
    std::vector<std::string> items;
    while (!list.empty()) {
        const auto comma = list.find(',');
        items.emplace_back(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view{} : list.substr(comma + 1);
    }
    return items;
}

options parse(int argc, char** argv)
{
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--seconds" && i + 1 < argc) {
            char* end = nullptr;
            o.seconds = std::strtod(argv[++i], &end);
            if (end == argv[i] || *end != '\0' || !(o.seconds > 0) || o.seconds > 3600) {
                std::fprintf(stderr, "door_roundtrip: --seconds wants a number in (0, 3600]\n");
                std::exit(2);
            }
        } else if (arg == "--case" && i + 1 < argc) {
            o.only = argv[++i];
            const auto named = [&](const bench_case& c) { return o.only == c.name; };
            if (std::none_of(std::begin(cases), std::end(cases), named)) {
                std::fprintf(stderr, "door_roundtrip: no case named %s\n", o.only.c_str());
                std::exit(2);
            }
        } else if (arg == "--placement" && i + 1 < argc) {
            o.placements = split_list(argv[++i]);
            for (const std::string& name : o.placements) {
                const auto named = [&](const char* known) { return name == known; };
                if (name.empty() || std::none_of(std::begin(placement_names), std::end(placement_names), named)) {
                    std::fprintf(stderr, "door_roundtrip: no placement named '%s' (one-cpu, two-cpus, free)\n",
                                 name.c_str());
                    std::exit(2);
                }
            }
        } else {
            const bool help = arg == "--help" || arg == "-h";
            std::fprintf(help ? stdout : stderr,
                         "usage: door_roundtrip [--seconds N] [--case NAME] [--placement LIST]\n"
                         "  times door calls and raw SOCK_SEQPACKET round trips to a forked echo\n"
                         "  server for N seconds per case (default 3) after a 0.5 s warm-up;\n"
                         "  --case runs only one of 64B_c1 64B_c16 64KiB_c1 64KiB_c16;\n"
                         "  --placement is a comma-separated list of one-cpu (every thread on one CPU),\n"
                         "  two-cpus (callers on one CPU, the server on another) and free (nothing\n"
                         "  pinned); default: all three, in that order\n");
            std::exit(help ? 0 : 2);
        }
    }
    return o;
}

// The placement named `name` over the CPUs this process may use; false (with a reason printed)
// when there are too few of them.
bool make_placement(const std::string& name, const cpu_set_t& allowed, placement& out)
{
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
    static char what[96];
    out = placement{};
    if (name == "free") {
        out.name = "free";
        out.what = "no thread pinned";
        return true;
    }
    const bool two = name == "two-cpus";
    if (cpus.size() < (two ? 2u : 1u)) {
        std::printf("placement %s skipped: this process may use only %zu CPU(s)\n", name.c_str(), cpus.size());
        return false;
    }
    out.pinned = true;
    out.name = two ? "two-cpus" : "one-cpu";
    CPU_ZERO(&out.callers);
    CPU_ZERO(&out.server);
    CPU_SET(cpus[0], &out.callers);
    CPU_SET(cpus[two ? 1 : 0], &out.server);
    if (two)
        std::snprintf(what, sizeof what, "callers on CPU %d, server on CPU %d", cpus[0], cpus[1]);
    else
        std::snprintf(what, sizeof what, "callers and server on CPU %d", cpus[0]);
    out.what = what;
    return true;
}

void print_row(const char* name, const char* transport, const measurement& r)
{
    std::printf("%-10s %-5s %12.0f %10.2f %10.2f %10llu\n", name, transport, r.calls_per_second(), r.p50_us,
                r.p99_us, static_cast<unsigned long long>(r.calls));
}

struct outcome {
    const char* name;
    const char* placement;
    double door_p50;
    double raw_p50;
};

// The echo server for one placement: a forked process that serves until the parent closes its
// stop pipe. Forked while this process has no other thread (the callers of an earlier placement
// have been joined), so the child's state is simple and well defined.
class echo_server {
public:
    echo_server(const std::string& dir, const placement& where) : door_path(dir + "/door"), raw_path(dir + "/raw")
    {
        int ready_pipe[2];
        if (::pipe2(ready_pipe, O_CLOEXEC) != 0) die("pipe2");
        int stop_pipe[2];
        if (::pipe2(stop_pipe, O_CLOEXEC) != 0) die("pipe2");
        std::fflush(nullptr);
        pid_ = ::fork();
        if (pid_ < 0) die("fork");
        if (pid_ == 0) {
            ::close(ready_pipe[0]);
            ::close(stop_pipe[1]);
            // Before any thread starts: every server thread inherits it.
            if (where.pinned && ::sched_setaffinity(0, sizeof where.server, &where.server) != 0)
                die("sched_setaffinity (server)");
            run_server(door_path, raw_path, ready_pipe[1], stop_pipe[0]);
        }
        ::close(ready_pipe[1]);
        ::close(stop_pipe[0]);
        stop_fd_ = stop_pipe[1];
        char byte = 0;
        ssize_t got;
        do {
            got = ::read(ready_pipe[0], &byte, 1);
        } while (got < 0 && errno == EINTR);
        ::close(ready_pipe[0]);
        ready_ = got == 1 && byte == 'r';
    }

    echo_server(const echo_server&) = delete;
    echo_server& operator=(const echo_server&) = delete;

    ~echo_server()
    {
        ::close(stop_fd_); // EOF tells the server to leave
        int status = 0;
        ::waitpid(pid_, &status, 0);
        ::unlink(door_path.c_str());
        ::unlink(raw_path.c_str());
    }

    [[nodiscard]] bool ready() const noexcept { return ready_; }
    [[nodiscard]] pid_t pid() const noexcept { return pid_; }

    const std::string door_path;
    const std::string raw_path;

private:
    pid_t pid_ = -1;
    int stop_fd_ = -1;
    bool ready_ = false;
};

// Runs every selected case under one placement; false after an error (already printed).
bool run_placement(const options& opts, const std::string& dir, const placement& where, const cpu_set_t& allowed,
                   std::vector<outcome>& outcomes)
{
    // The caller threads are started by this thread and inherit its mask.
    const cpu_set_t& mine = where.pinned ? where.callers : allowed;
    if (::sched_setaffinity(0, sizeof mine, &mine) != 0) die("sched_setaffinity (callers)");

    echo_server server(dir, where);
    if (!server.ready()) {
        std::fprintf(stderr, "door_roundtrip: the server did not start\n");
        return false;
    }
    std::error_code ec;
    // One handle for every caller thread, as the daemon holds one per door.
    const door_client client = door_client::open(server.door_path, ec);
    if (ec) {
        std::fprintf(stderr, "door_roundtrip: door_client::open: %s\n", ec.message().c_str());
        return false;
    }
    std::printf("\nplacement %s: %s; server pid %d\n", where.name, where.what, static_cast<int>(server.pid()));
    std::printf("%-10s %-5s %12s %10s %10s %10s\n", "case", "via", "calls/s", "p50_us", "p99_us", "calls");
    std::fflush(stdout);

    const auto slice = std::chrono::duration_cast<std::chrono::nanoseconds>(
        std::chrono::duration<double>(opts.seconds / slices));
    for (const bench_case& c : cases) {
        if (!opts.only.empty() && opts.only != c.name) continue;
        // A recognisable pattern whose two ends differ, so a shifted or short echo is caught.
        std::string payload(c.payload, '\0');
        for (std::size_t i = 0; i < payload.size(); ++i) payload[i] = static_cast<char>('a' + i % 23);
        payload.back() = 'Z';

        // Room for 250k calls/s across the threads, so no sample vector grows while calls are timed.
        const auto expected = static_cast<std::size_t>(opts.seconds * 250000.0 / c.threads) + 1024;
        runner door("door-call", c.threads, expected, [&](std::string&) -> std::unique_ptr<caller> {
            return std::make_unique<door_caller>(client, payload);
        });
        runner raw("raw-call", c.threads, expected, [&](std::string& error) -> std::unique_ptr<caller> {
            auto r = std::make_unique<raw_caller>(server.raw_path, payload, error);
            if (!r->connected()) r.reset();
            return r;
        });
        door.warm(warmup);
        raw.warm(warmup);
        for (int i = 0; i < slices; ++i) {
            door.measure(slice);
            raw.measure(slice);
        }
        std::string door_error;
        std::string raw_error;
        const measurement d = door.result(door_error);
        const measurement r = raw.result(raw_error);
        if (!door_error.empty() || !raw_error.empty()) {
            std::fprintf(stderr, "door_roundtrip: %s %s: %s\n", c.name, door_error.empty() ? "raw" : "door",
                         door_error.empty() ? raw_error.c_str() : door_error.c_str());
            return false;
        }
        if (d.calls == 0 || r.calls == 0) {
            std::fprintf(stderr, "door_roundtrip: %s: no call completed\n", c.name);
            return false;
        }
        print_row(c.name, "door", d);
        print_row(c.name, "raw", r);
        std::fflush(stdout);
        outcomes.push_back({c.name, where.name, d.p50_us, r.p50_us});
    }
    return true;
}

} // namespace

int main(int argc, char** argv)
{
    const options opts = parse(argc, argv);
    std::signal(SIGPIPE, SIG_IGN);

    cpu_set_t allowed;
    if (::sched_getaffinity(0, sizeof allowed, &allowed) != 0) die("sched_getaffinity");

    char dir_template[] = "/tmp/portunus-bench-XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) die("mkdtemp");
    const std::string dir = dir_template;

    std::printf("door_roundtrip: %ld CPUs online, %d usable here\n", ::sysconf(_SC_NPROCESSORS_ONLN),
                CPU_COUNT(&allowed));
    std::printf("each case: %lld ms warm-up per transport, then %.3g s measured per transport in %d "
                "alternating door/raw slices\n",
                static_cast<long long>(warmup.count()), opts.seconds, slices);
    std::printf("door: one door_client shared by all caller threads; server pool grows on demand (epoll)\n");
    std::printf("raw:  one SOCK_SEQPACKET connection and one blocking recv/send server thread per caller\n");
    std::fflush(stdout);

    std::vector<outcome> outcomes;
    bool ok = true;
    for (const std::string& name : opts.placements) {
        placement where;
        if (!make_placement(name, allowed, where)) continue;
        if (!(ok = run_placement(opts, dir, where, allowed, outcomes))) break;
    }
    ::rmdir(dir.c_str());

    std::printf("\n");
    for (const outcome& o : outcomes)
        std::printf("case=%s placement=%s door_us=%.2f raw_us=%.2f ratio=%.2f\n", o.name, o.placement, o.door_p50,
                    o.raw_p50, o.door_p50 / o.raw_p50);
    std::fflush(stdout);
    return ok ? 0 : 1;
}
