// SPDX-License-Identifier: MPL-2.0
// Measures door call round trips against the same echo over a raw SOCK_SEQPACKET socket.
//
// One run forks an echo server process (a door and a raw socket listener), then, for each case
// (payload 64 B or 64 KiB, 1 or 16 caller threads), calls it through the door and through raw
// sockets for the same time, in alternating slices, and prints calls/s and round-trip latency
// percentiles. The raw exchange is the floor a userland door can reach: same kernel transport,
// same two processes, no protocol, no allocation, no readiness notification.
#include <portunus/door.hpp>

#include <fcntl.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace portunus;
using bench_clock = std::chrono::steady_clock;

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

// One round trip per call of call(); false (with `error` set) when the exchange failed.
class caller {
public:
    virtual ~caller() = default;
    virtual bool call(std::string& error) = 0;
};

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

struct measurement {
    std::uint64_t calls = 0;
    double seconds = 0;
    double p50_us = 0;
    double p99_us = 0;

    [[nodiscard]] double calls_per_second() const { return seconds > 0 ? static_cast<double>(calls) / seconds : 0; }
};

double percentile_us(std::vector<std::uint32_t>& samples, double p)
{
    // Nearest rank: the smallest sample with at least p of all samples at or below it.
    const auto rank = static_cast<std::size_t>(std::ceil(p * static_cast<double>(samples.size())));
    const std::size_t index = rank == 0 ? 0 : rank - 1;
    std::nth_element(samples.begin(), samples.begin() + static_cast<std::ptrdiff_t>(index), samples.end());
    return samples[index] / 1000.0;
}

// A set of caller threads for one transport. They park (on a futex, using no CPU) between the
// slices the main thread runs them for, so door and raw slices can alternate and both see the
// same background load: on a small shared machine that load drifts over seconds.
class runner {
public:
    using factory = std::function<std::unique_ptr<caller>(std::string& error)>;

    /// `name` names the threads (at most 15 characters), so that /proc/PID/task/*/comm and
    /// profilers tell the door's callers from the raw ones.
    runner(const char* name, unsigned threads, std::size_t expected_samples, const factory& make)
        : ready_(threads), samples_(threads)
    {
        threads_.reserve(threads);
        for (unsigned t = 0; t < threads; ++t)
            threads_.emplace_back([this, t, expected_samples, &make, name] {
                ::pthread_setname_np(::pthread_self(), name);
                std::string error;
                std::unique_ptr<caller> c = make(error); // `make` is not used past ready_
                samples_[t].reserve(expected_samples);
                ready_.count_down();
                if (c) work(*c, samples_[t], error);
                if (!error.empty()) fail(std::move(error));
            });
        ready_.wait();
    }

    runner(const runner&) = delete;
    runner& operator=(const runner&) = delete;

    ~runner() { stop(); }

    /// Calls without recording, to open connections, grow the server pool and warm caches.
    void warm(std::chrono::nanoseconds how_long)
    {
        set(state_warm);
        std::this_thread::sleep_for(how_long);
        set(state_idle);
    }

    /// A short unrecorded settle, then `how_long` of recorded calls.
    void measure(std::chrono::nanoseconds how_long)
    {
        set(state_warm);
        std::this_thread::sleep_for(slice_settle);
        set(state_measure);
        const auto begin = bench_clock::now();
        std::this_thread::sleep_for(how_long);
        set(state_idle);
        measured_ += bench_clock::now() - begin;
    }

    /// Ends the threads (a call still in flight after the last slice finishes first) and merges
    /// their samples. Sets `error` if any caller failed.
    measurement result(std::string& error)
    {
        stop();
        error = error_;
        std::vector<std::uint32_t> all;
        for (auto& s : samples_) all.insert(all.end(), s.begin(), s.end());
        measurement m;
        m.calls = all.size();
        m.seconds = std::chrono::duration<double>(measured_).count();
        if (!all.empty()) {
            m.p50_us = percentile_us(all, 0.50);
            m.p99_us = percentile_us(all, 0.99);
        }
        return m;
    }

private:
    enum state : int { state_idle, state_warm, state_measure, state_quit };
    static constexpr std::chrono::milliseconds slice_settle{50};

    void stop()
    {
        set(state_quit);
        for (auto& t : threads_)
            if (t.joinable()) t.join();
    }

    void set(state s)
    {
        // A failed caller has stopped; keep the others from running on into a meaningless result.
        if (s != state_quit && failed_.load()) s = state_idle;
        state_.store(s);
        state_.notify_all();
    }

    void work(caller& c, std::vector<std::uint32_t>& mine, std::string& error)
    {
        for (;;) {
            const int now = state_.load(std::memory_order_relaxed);
            if (now == state_quit) return;
            if (now == state_idle) {
                state_.wait(state_idle);
                continue;
            }
            const auto start = bench_clock::now();
            if (!c.call(error)) return;
            const auto end = bench_clock::now();
            if (now == state_measure) {
                const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(end - start).count();
                mine.push_back(static_cast<std::uint32_t>(std::min<long long>(ns, UINT32_MAX)));
            }
        }
    }

    void fail(std::string error)
    {
        std::lock_guard lock(mutex_);
        if (error_.empty()) error_ = std::move(error);
        failed_.store(true);
    }

    std::latch ready_; // a member, so no thread can still be inside count_down() when it dies
    std::atomic<int> state_{state_idle};
    std::atomic<bool> failed_{false};
    std::mutex mutex_;
    std::string error_;
    std::vector<std::vector<std::uint32_t>> samples_;
    std::vector<std::thread> threads_;
    std::chrono::nanoseconds measured_{0};
};

struct options {
    double seconds = 3;
    std::string only; // run just this case (for profiling one of them); empty: all
};

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
        } else {
            const bool help = arg == "--help" || arg == "-h";
            std::fprintf(help ? stdout : stderr,
                         "usage: door_roundtrip [--seconds N] [--case NAME]\n"
                         "  times door calls and raw SOCK_SEQPACKET round trips to a forked echo\n"
                         "  server for N seconds per case (default 3) after a 0.5 s warm-up;\n"
                         "  --case runs only one of 64B_c1 64B_c16 64KiB_c1 64KiB_c16\n");
            std::exit(help ? 0 : 2);
        }
    }
    return o;
}

void print_row(const char* name, const char* transport, const measurement& r)
{
    std::printf("%-10s %-5s %12.0f %10.2f %10.2f %10llu\n", name, transport, r.calls_per_second(), r.p50_us,
                r.p99_us, static_cast<unsigned long long>(r.calls));
}

} // namespace

int main(int argc, char** argv)
{
    const options opts = parse(argc, argv);

    char dir_template[] = "/tmp/portunus-bench-XXXXXX";
    if (::mkdtemp(dir_template) == nullptr) die("mkdtemp");
    const std::string dir = dir_template;
    const std::string door_path = dir + "/door";
    const std::string raw_path = dir + "/raw";

    // The server is its own process, as an application behind a door is. Forking here, before
    // this process has any thread, keeps the child's state simple and well defined.
    int ready_pipe[2];
    int stop_pipe[2];
    if (::pipe2(ready_pipe, O_CLOEXEC) != 0 || ::pipe2(stop_pipe, O_CLOEXEC) != 0) {
        ::rmdir(dir.c_str());
        die("pipe2");
    }
    std::fflush(nullptr);
    const pid_t server_pid = ::fork();
    if (server_pid < 0) {
        ::rmdir(dir.c_str());
        die("fork");
    }
    if (server_pid == 0) {
        ::close(ready_pipe[0]);
        ::close(stop_pipe[1]);
        run_server(door_path, raw_path, ready_pipe[1], stop_pipe[0]);
    }
    ::close(ready_pipe[1]);
    ::close(stop_pipe[0]);
    std::signal(SIGPIPE, SIG_IGN);

    int status = 0;
    const auto finish = [&](int code) {
        ::close(stop_pipe[1]); // EOF tells the server to leave
        ::waitpid(server_pid, &status, 0);
        ::unlink(door_path.c_str());
        ::unlink(raw_path.c_str());
        ::rmdir(dir.c_str());
        return code;
    };

    char byte = 0;
    ssize_t got;
    do {
        got = ::read(ready_pipe[0], &byte, 1);
    } while (got < 0 && errno == EINTR);
    ::close(ready_pipe[0]);
    if (got != 1 || byte != 'r') {
        std::fprintf(stderr, "door_roundtrip: the server did not start\n");
        return finish(1);
    }

    std::error_code ec;
    // One handle for every caller thread, as the daemon holds one per door.
    const door_client client = door_client::open(door_path, ec);
    if (ec) {
        std::fprintf(stderr, "door_roundtrip: door_client::open: %s\n", ec.message().c_str());
        return finish(1);
    }

    const long cpus = ::sysconf(_SC_NPROCESSORS_ONLN);
    std::printf("door_roundtrip: %ld CPUs online, no thread pinned; server pid %d\n", cpus,
                static_cast<int>(server_pid));
    std::printf("each case: %lld ms warm-up per transport, then %.3g s measured per transport in %d "
                "alternating door/raw slices\n",
                static_cast<long long>(warmup.count()), opts.seconds, slices);
    std::printf("door: one door_client shared by all caller threads; server pool grows on demand (epoll)\n");
    std::printf("raw:  one SOCK_SEQPACKET connection and one blocking recv/send server thread per caller\n\n");
    std::printf("%-10s %-5s %12s %10s %10s %10s\n", "case", "via", "calls/s", "p50_us", "p99_us", "calls");
    std::fflush(stdout);

    struct outcome {
        const char* name;
        double door_p50;
        double raw_p50;
    };
    std::vector<outcome> outcomes;
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
            auto r = std::make_unique<raw_caller>(raw_path, payload, error);
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
            return finish(1);
        }
        if (d.calls == 0 || r.calls == 0) {
            std::fprintf(stderr, "door_roundtrip: %s: no call completed\n", c.name);
            return finish(1);
        }
        print_row(c.name, "door", d);
        print_row(c.name, "raw", r);
        std::fflush(stdout);
        outcomes.push_back({c.name, d.p50_us, r.p50_us});
    }

    std::printf("\n");
    for (const outcome& o : outcomes)
        std::printf("case=%s door_us=%.2f raw_us=%.2f ratio=%.2f\n", o.name, o.door_p50, o.raw_p50,
                    o.door_p50 / o.raw_p50);
    std::fflush(stdout);
    return finish(0);
}
