// SPDX-License-Identifier: MPL-2.0
// Running the control door's requests on the server's control strand, each within its deadline.
#include "portunusd/control_bridge.hpp"

#include "portunusd/server.hpp"

#include <boost/asio/post.hpp>

#include <condition_variable>
#include <mutex>
#include <optional>

namespace portunusd {

struct bridge_state {
    std::mutex mutex;
    std::condition_variable changed;
    bool closed = false; // guarded by mutex
};

namespace {

// Posts `work` to the control strand and waits for the value it hands to its callback. The
// strand may answer after the wait gave up (deadline, close): the answer is shared, so that
// late write lands in memory that still exists and is then dropped.
template <typename T>
std::optional<T> ask(server& srv, const std::shared_ptr<bridge_state>& state,
                     std::function<void(std::function<void(T)>)> work, std::chrono::milliseconds deadline)
{
    auto answer = std::make_shared<std::optional<T>>();
    {
        std::lock_guard lock(state->mutex);
        if (state->closed) return std::nullopt;
    }
    boost::asio::post(srv.control(), [state, answer, work = std::move(work)] {
        work([state, answer](T value) {
            std::lock_guard lock(state->mutex);
            *answer = std::move(value);
            state->changed.notify_all();
        });
    });
    std::unique_lock lock(state->mutex);
    state->changed.wait_for(lock, deadline, [&] { return answer->has_value() || state->closed; });
    return *answer;
}

} // namespace

control_bridge::control_bridge(server& srv) : server_(srv), state_(std::make_shared<bridge_state>()) {}

control_bridge::~control_bridge()
{
    close();
}

void control_bridge::close() noexcept
{
    std::lock_guard lock(state_->mutex);
    state_->closed = true;
    state_->changed.notify_all();
}

control_actions control_bridge::actions()
{
    server* srv = &server_;
    auto state = state_;
    control_actions a;
    a.status = [srv, state](std::chrono::milliseconds deadline) {
        return ask<daemon_snapshot>(
            *srv, state, [srv](std::function<void(daemon_snapshot)> reply) { reply(srv->snapshot()); }, deadline);
    };
    a.reload = [srv, state](std::chrono::milliseconds deadline) {
        return ask<reload_report>(
            *srv, state,
            [srv](std::function<void(reload_report)> reply) {
                srv->reload_file(std::move(reply));
            },
            deadline);
    };
    a.stop = [srv, state](std::optional<std::chrono::milliseconds> drain, std::chrono::milliseconds deadline) {
        const auto begun = ask<bool>(
            *srv, state,
            [srv, drain](std::function<void(bool)> reply) {
                srv->begin_stop("control door", drain);
                reply(true);
            },
            deadline);
        return begun.value_or(false);
    };
    a.restart = [srv, state](const std::string& app, std::chrono::milliseconds deadline) {
        return ask<bool>(
            *srv, state, [srv, app](std::function<void(bool)> reply) { reply(srv->restart_app(app)); }, deadline);
    };
    return a;
}

} // namespace portunusd
