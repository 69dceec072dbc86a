// SPDX-License-Identifier: MPL-2.0
// Timed caller threads for bench/door_roundtrip: a set of threads that make round trips through
// one transport in slices the main thread starts and stops, recording each call's latency.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <functional>
#include <latch>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include <pthread.h>

namespace bench {

using bench_clock = std::chrono::steady_clock;

// One round trip per call of call(); false (with `error` set) when the exchange failed.
class caller {
public:
    virtual ~caller() = default;
    virtual bool call(std::string& error) = 0;
};

struct measurement {
    std::uint64_t calls = 0;
    double seconds = 0;
    double p50_us = 0;
    double p99_us = 0;

    [[nodiscard]] double calls_per_second() const { return seconds > 0 ? static_cast<double>(calls) / seconds : 0; }
};

inline double percentile_us(std::vector<std::uint32_t>& samples, double p)
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

} // namespace bench
