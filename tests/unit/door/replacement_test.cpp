// SPDX-License-Identifier: MPL-2.0
// Upgrading a door application in place: a new instance attaches over the old while calls go on.
#include "door_test_support.hpp"
#include "server_process.hpp"

#include <sys/wait.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace portunus;
using namespace portunus::test;

} // namespace

TEST_CASE("replacing the server 100 times under a continuous call loop loses no call", "[door][replace]")
{
    leak_check leaks;
    temp_dir dir;
    const auto path = dir.file("door");
    auto current = std::make_unique<server_process>(path, server_options{});

    std::atomic<long> completed{0};
    std::atomic<long> reopens{0};
    std::atomic<long> open_retries{0};
    std::atomic<long> mismatches{0};
    std::atomic<long> other_failures{0};
    std::atomic<long> unfinished{0};
    std::mutex failure_mutex;
    std::vector<std::string> failures;
    const auto record_failure = [&](const std::string& what) {
        ++other_failures;
        std::lock_guard lock(failure_mutex);
        if (failures.size() < 10) failures.push_back(what);
    };

    int replacements = 0;
    {
        std::jthread caller([&](const std::stop_token& stop) {
            std::error_code ec;
            door_client client = door_client::open(path, ec);
            for (long i = 0; !stop.stop_requested(); ++i) {
                const std::string request = "call " + std::to_string(i);
                bool done = false;
                // Bounded so that a broken backend fails the test instead of spinning for ever.
                for (int attempt = 0; attempt < 1000 && !done; ++attempt) {
                    if (!client.is_open()) {
                        // Reopening may race with an instance that is just going away: that is
                        // EBADF again, and the path names the newer instance a moment later.
                        client = door_client::open(path, ec);
                        if (ec) {
                            if (ec != std::errc::bad_file_descriptor) record_failure("open: " + ec.message());
                            ++open_retries;
                            std::this_thread::sleep_for(1ms);
                            continue;
                        }
                    }
                    const auto result = client.call(request, ec);
                    if (!ec) {
                        if (result.data.view() != request) ++mismatches;
                        ++completed;
                        done = true;
                    } else if (ec == std::errc::bad_file_descriptor) {
                        // The documented protocol: EBADF means nothing ran; open the path again.
                        ++reopens;
                        client = door_client{};
                    } else {
                        record_failure("call " + std::to_string(i) + ": " + ec.message());
                        done = true;
                    }
                }
                if (!done) ++unfinished;
            }
        });

        for (; replacements < 100; ++replacements) {
            // The new instance attaches over the old one (its "ready" means the path is its own);
            // only then is the old one told to go.
            auto next = std::make_unique<server_process>(path, server_options{});
            REQUIRE(current->kill(SIGTERM));
            const auto status = current->wait_exit(10s);
            INFO("replacement " << replacements);
            REQUIRE(exited_cleanly(status));
            current = std::move(next);
        }
        // Let the loop run on the last instance for a moment, so its last calls are checked too.
        const long before = completed.load();
        eventually([&] { return completed.load() > before + 10; }, 2s);
    }

    INFO("failures: " << [&] {
        std::string all;
        for (const auto& f : failures) all += f + "; ";
        return all;
    }());
    WARN("replacements: " << replacements << ", calls completed: " << completed.load()
                          << ", EBADF reopens: " << reopens.load() << ", open retries: " << open_retries.load());
    CHECK(other_failures == 0);
    CHECK(mismatches == 0);
    CHECK(unfinished == 0);
    CHECK(completed > replacements);
}
