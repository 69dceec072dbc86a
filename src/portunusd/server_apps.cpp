// SPDX-License-Identifier: MPL-2.0
// The server's supervised apps: a supervisor per instance, SIGCHLD, reload of [[app]] tables, restart, stop.
#include "portunusd/server.hpp"

#include <spdlog/spdlog.h>

namespace portunusd {

void server::note_instances(const std::vector<app_config>& apps)
{
    instances_by_door_.clear();
    for (const auto& a : apps) instances_by_door_[a.door] = app_instance_doors(a);
}

server::app_entry server::make_app(const app_config& a)
{
    app_entry e;
    e.config = a;
    const auto doors = app_instance_doors(a);
    for (std::size_t i = 0; i < doors.size(); ++i) {
        // Each instance is an app of its own, at its own door, named NAME#I in logs and status.
        app_config one = a;
        if (doors.size() > 1) {
            one.door = doors[i];
            one.name = a.name + "#" + std::to_string(i + 1);
            // The command names the door to serve: an argument that is the app's door, or
            // holds "{door}", names this instance's.
            for (auto& arg : one.command) {
                if (arg == a.door) arg = doors[i];
                for (auto at = arg.find("{door}"); at != std::string::npos; at = arg.find("{door}", at + doors[i].size()))
                    arg.replace(at, 6, doors[i]);
            }
        }
        one.environment.emplace_back("PORTUNUS_DOOR", one.door);
        one.environment.emplace_back("PORTUNUS_INSTANCE", std::to_string(i + 1));
        // What idle_stop and max_calls go by: the calls of every gate, of every forward, that
        // calls this instance's door.
        auto load = [this, door = one.door] {
            app_load l;
            for (const auto& [key, r] : forwards_)
                for (const auto& g : r.state->gates)
                    if (g->door_path() == door) {
                        l.calls_ended += g->calls_ended();
                        l.in_flight += g->in_flight() + g->queued();
                    }
            return l;
        };
        e.instances.push_back(std::make_shared<app_supervisor>(loops_.main(), std::move(one), std::move(load)));
        e.instances.back()->on_serving([this](const std::string& door, bool serving) {
            for (const auto& [key, r] : forwards_)
                for (const auto& g : r.state->gates)
                    if (g->door_path() == door) g->set_serving(serving);
        });
    }
    return e;
}

void server::update_registry()
{
    std::vector<std::shared_ptr<app_supervisor>> all;
    for (const auto& [name, e] : apps_) all.insert(all.end(), e.instances.begin(), e.instances.end());
    registry_->set(all);
}

void server::start_apps()
{
    if (config_.apps.empty()) return;
    // SIGCHLD is caught before the first child exists: one that exits at once must not go
    // unnoticed under the default disposition, which discards the signal.
    wait_for_children();
    for (const auto& a : config_.apps) apps_.emplace(a.name, make_app(a));
    update_registry();
    for (auto& [name, e] : apps_)
        for (auto& app : e.instances) app->begin();
}

void server::wait_for_children()
{
    if (waiting_for_children_) return;
    if (!watching_children_) {
        boost::system::error_code ec;
        children_.add(SIGCHLD, ec);
        if (ec) {
            spdlog::error("cannot watch SIGCHLD: {}; apps that exit are not noticed", ec.message());
            return;
        }
        watching_children_ = true;
    }
    waiting_for_children_ = true;
    children_.async_wait([this](const boost::system::error_code& ec, int) {
        waiting_for_children_ = false;
        if (ec) return;
        exec_children_->reap();
        for (auto& [name, e] : apps_)
            for (auto& app : e.instances) app->reap();
        for (auto& app : apps_leaving_) app->reap();
        std::erase_if(apps_leaving_, [](const auto& app) { return app->current() == app_supervisor::state::stopped; });
        wait_for_children();
    });
}

void server::reconcile_apps(const std::vector<app_config>& next)
{
    std::map<std::string, app_entry> kept;
    for (const auto& a : next) {
        const auto it = apps_.find(a.name);
        if (it != apps_.end() && it->second.config == a) {
            kept.emplace(a.name, std::move(it->second));
            apps_.erase(it);
            continue;
        }
        // New or changed: new supervisors start the new processes; a changed app's old ones
        // are stopped, and finish the calls they have.
        kept.emplace(a.name, make_app(a));
        spdlog::info("app {}: {}", a.name, it != apps_.end() ? "changed" : "added");
    }
    for (auto& [name, old] : apps_) {
        spdlog::info("app {}: {}", name, kept.count(name) ? "stopping the old process" : "removed");
        for (auto& app : old.instances) {
            app->stop();
            apps_leaving_.push_back(app);
        }
    }
    const bool had_apps = !apps_.empty() || !kept.empty();
    if (had_apps) wait_for_children();
    apps_ = std::move(kept);
    update_registry();
    for (auto& [name, e] : apps_)
        for (auto& app : e.instances)
            if (app->current() == app_supervisor::state::stopped) app->begin();
}

bool server::restart_app(const std::string& name)
{
    const auto it = apps_.find(name);
    if (it == apps_.end()) return false;
    // One instance after the other would be gentler; each already starts its replacement
    // before it stops the old process, so the app keeps serving throughout.
    for (auto& app : it->second.instances) app->restart("portunus restart");
    return true;
}

// Calls are done: the apps get SIGTERM (and SIGKILL after their stop_timeout), and the loops
// stop once every one has exited, so that no app outlives the daemon that started it.
void server::stop_apps_then_exit()
{
    std::vector<std::shared_ptr<app_supervisor>> all;
    for (auto& [name, e] : apps_) all.insert(all.end(), e.instances.begin(), e.instances.end());
    for (auto& app : apps_leaving_) all.push_back(app);
    auto left = std::make_shared<std::size_t>(all.size());
    const auto finish = [this] {
        spdlog::info("all calls finished; exiting");
        loops_.stop();
    };
    if (all.empty()) return finish();
    for (auto& app : all)
        app->stop([left, finish] {
            if (--*left == 0) finish();
        });
}

} // namespace portunusd
