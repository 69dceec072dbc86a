// SPDX-License-Identifier: MPL-2.0
// A door application for the daemon's integration tests: echoes, and misbehaves on request.
//
// usage: test_door_app DOOR_PATH [--tag TEXT] [--prefix TEXT] [--sleep-ms N] [--log FILE]
//
// The request itself selects the behaviour, so one running instance can serve every case a
// test needs:
//   "sleep:N:REST"  sleep N milliseconds, then answer PREFIX + REST
//   "crash"         std::abort() in the middle of the call (the caller sees the server die)
//   "throw"         throw from the handler (the caller gets EINTR, the application lives on)
//   "empty"         answer zero bytes
//   "grow:N"        keep N more MiB, touched, for the life of the process; answer "grown"
//   "who"           answer the tag (tells which instance served a call)
//   "whoami"        answer "uid=U gid=G pid=P cwd=DIR env=VALUE" (VALUE: $PORTUNUS_TEST_ENV, or
//                   "-"): what a supervising daemon made of the process
//   anything else   answer PREFIX + the request
// --sleep-ms delays every call; --log appends one line per call as it starts, which lets a test
// see how many calls are in flight without guessing with sleeps. --die-within-ms N makes the
// process abort by itself at a random moment within N ms of starting (a cohort whose members
// crash at random). --http-body TEXT answers every call with an HTTP 200 response carrying
// TEXT, for http forwards.
#include <portunus/server.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <charconv>
#include <cstring>
#include <memory>
#include <vector>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>

namespace {

struct settings {
    std::string tag = "test_door_app";
    std::string prefix;
    unsigned sleep_ms = 0;
    int log_fd = -1;
    unsigned die_within_ms = 0;
    std::string http_body; ///< set: answer every call with an HTTP 200 carrying it (an http forward's app)
};

settings opts;

void note_call(std::size_t bytes)
{
    if (opts.log_fd < 0) return;
    // One write() per line on an O_APPEND descriptor: lines from concurrent calls never interleave.
    const std::string line = "call " + std::to_string(bytes) + "\n";
    [[maybe_unused]] const auto n = ::write(opts.log_fd, line.data(), line.size());
}

void sleep_for_ms(unsigned ms)
{
    if (ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

portunus::door_reply handle(portunus::door_request& request)
{
    const std::string_view data = request.data;
    note_call(data.size());
    sleep_for_ms(opts.sleep_ms);
    if (!opts.http_body.empty())
        return {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                    std::to_string(opts.http_body.size()) + "\r\n\r\n" + opts.http_body,
                {}};
    if (data == "crash") std::abort();
    if (data == "throw") throw std::runtime_error("asked to throw");
    if (data == "empty") return {};
    if (data.substr(0, 5) == "grow:") {
        unsigned mib = 0;
        std::from_chars(data.data() + 5, data.data() + data.size(), mib);
        // Kept for good: this is the leak that max_memory is there to contain.
        static std::vector<std::unique_ptr<char[]>> kept;
        kept.emplace_back(new char[std::size_t{mib} << 20]);
        std::memset(kept.back().get(), 1, std::size_t{mib} << 20);
        return {"grown", {}};
    }
    if (data == "who") return {opts.tag, {}};
    if (data == "whoami") {
        char cwd[4096] = "?";
        if (::getcwd(cwd, sizeof cwd) == nullptr) cwd[0] = '?', cwd[1] = '\0';
        const char* env = std::getenv("PORTUNUS_TEST_ENV");
        return {"uid=" + std::to_string(::getuid()) + " gid=" + std::to_string(::getgid()) +
                    " pid=" + std::to_string(::getpid()) + " cwd=" + cwd + " env=" + (env ? env : "-"),
                {}};
    }
    std::string_view rest = data;
    if (data.substr(0, 6) == "sleep:") {
        const auto colon = data.find(':', 6);
        unsigned ms = 0;
        if (colon != std::string_view::npos) {
            std::from_chars(data.data() + 6, data.data() + colon, ms);
            rest = data.substr(colon + 1);
        }
        sleep_for_ms(ms);
    }
    return {opts.prefix + std::string(rest), {}};
}

int usage(const char* program)
{
    std::fprintf(stderr,
                 "usage: %s DOOR_PATH [--tag TEXT] [--prefix TEXT] [--sleep-ms N] [--log FILE] [--die-within-ms N] [--http-body TEXT]\n",
                 program);
    return 64;
}

} // namespace

int main(int argc, char** argv)
{
    if (argc < 2) return usage(argv[0]);
    for (int i = 2; i < argc; i += 2) {
        if (i + 1 >= argc) return usage(argv[0]);
        const std::string_view key = argv[i];
        const char* value = argv[i + 1];
        if (key == "--tag") {
            opts.tag = value;
        } else if (key == "--prefix") {
            opts.prefix = value;
        } else if (key == "--sleep-ms") {
            opts.sleep_ms = static_cast<unsigned>(std::strtoul(value, nullptr, 10));
        } else if (key == "--http-body") {
            opts.http_body = value;
        } else if (key == "--die-within-ms") {
            opts.die_within_ms = static_cast<unsigned>(std::strtoul(value, nullptr, 10));
        } else if (key == "--log") {
            opts.log_fd = ::open(value, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
            if (opts.log_fd < 0) {
                std::perror(value);
                return 66;
            }
        } else {
            return usage(argv[0]);
        }
    }
    if (opts.die_within_ms > 0) {
        // Seeded by pid and time, so that members of one cohort die at different moments.
        std::srand(static_cast<unsigned>(::getpid()) ^
                   static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()));
        const unsigned at = 1 + static_cast<unsigned>(std::rand()) % opts.die_within_ms;
        std::thread([at] {
            sleep_for_ms(at);
            std::abort();
        }).detach();
    }
    return portunus::serve(argv[1], handle);
}
