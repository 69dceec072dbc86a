// SPDX-License-Identifier: MPL-2.0
// slow_app: a door application that is not thread-safe (one server thread, max_threads = 1) and
// waits 2 ms per request, a stand-in for a program that asks its database; it answers a small
// HTTP 200. The instances benchmark (supervise_bench.py) runs 1, 2 and 4 of it behind one forward.
//
// usage: slow_app DOOR_PATH [WAIT_MS]
#include <portunus/server.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

int main(int argc, char** argv)
{
    if (argc < 2 || argc > 3) {
        std::fprintf(stderr, "usage: %s DOOR_PATH [WAIT_MS]\n", argv[0]);
        return 64;
    }
    const auto wait = std::chrono::milliseconds(argc == 3 ? std::strtol(argv[2], nullptr, 10) : 2);
    const std::string body = "slow but sure\n";
    const std::string reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n" + body;
    portunus::door_options options;
    options.max_threads = 1;
    return portunus::serve(
        argv[1],
        [&](portunus::door_request&) {
            std::this_thread::sleep_for(wait);
            return portunus::door_reply{reply, {}};
        },
        options);
}
