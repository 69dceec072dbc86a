// SPDX-License-Identifier: MPL-2.0
// Door calls made by blocking on caller-pool threads, within each call's deadline.
#include "portunusd/calls/caller_pool_engine.hpp"

#include "portunusd/calls/door_gate.hpp"

#include <fcntl.h>

#include <cerrno>
#include <vector>

namespace portunusd {

bool caller_pool_engine::start(call_job& j)
{
    count_started();
    pool_.submit([this, self = gate_.shared_from_this(), j = std::move(j)]() mutable {
        // The thread that finishes a call takes the next queued one itself: handing it to the
        // pool instead would find no idle thread (this one is not idle yet) and grow the pool.
        auto started = std::chrono::steady_clock::now();
        for (;;) {
            std::uint64_t generation = 0;
            bool reached = false;
            call_outcome out = call(j, generation, reached);
            if (reached && self->should_retry(*this, j, out.ec, generation)) continue;
            out.duration =
                std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started);
            count_completed();
            auto next = self->finish(j, std::move(out));
            if (!next) return;
            j = std::move(*next);
            started = std::chrono::steady_clock::now();
            count_started();
        }
    });
    return true;
}

call_outcome caller_pool_engine::call(const call_job& j, std::uint64_t& generation, bool& reached)
{
    call_outcome out;
    portunus::door_client door = gate_.current_door(out.ec, j.deadline, generation);
    if (out.ec) return out;
    reached = true;
    const auto left = time_left(j.deadline);
    if (left.count() == 0) {
        out.ec = portunus::make_door_error(ETIMEDOUT);
        return out;
    }
    std::vector<portunus::unique_fd> fds;
    if (j.passed) {
        portunus::unique_fd copy(::fcntl(j.passed->get(), F_DUPFD_CLOEXEC, 0));
        if (!copy) {
            out.ec = std::error_code(errno, std::system_category());
            return out;
        }
        fds.push_back(std::move(copy));
    }
    const std::string_view pieces[2] = {j.request, j.body};
    auto result = door.call(pieces, std::move(fds), left, out.ec);
    if (!out.ec) out.reply.assign(result.data.view());
    return out;
}

} // namespace portunusd
