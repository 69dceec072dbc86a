// SPDX-License-Identifier: MPL-2.0
// One supervised application: start, door watch, output, crash and backoff, idle stop, recycling, replacement.
#include "portunusd/supervise/app_supervisor.hpp"

#include <boost/asio/post.hpp>
#include <spdlog/spdlog.h>

#include <signal.h>
#if defined(__sun) || defined(PORTUNUS_DOOR_ILLUMOS)
#include <procfs.h>
#endif
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

namespace portunusd {

namespace asio = boost::asio;
using namespace std::chrono_literals;

namespace {

constexpr auto door_poll = 10ms;
constexpr auto tick_interval = 1s;
// A process that served this long before it crashed was healthy: the next crash starts the
// backoff from restart_delay again.
constexpr auto healthy_after = 10s;
constexpr std::size_t max_line = 4096;

std::string describe_status(int status)
{
    if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
    if (WIFSIGNALED(status)) {
        const int sig = WTERMSIG(status);
        const char* name = ::strsignal(sig);
        return "signal " + std::to_string(sig) + (name ? std::string(" (") + name + ")" : std::string());
    }
    return "status " + std::to_string(status);
}

std::string text_of(std::chrono::milliseconds d)
{
    return d.count() % 1000 == 0 ? std::to_string(d.count() / 1000) + " s" : std::to_string(d.count()) + " ms";
}

// Resident bytes of `pid`, or 0 when unknown (the process is gone, or no /proc).
std::uint64_t resident_bytes(pid_t pid)
{
#if defined(__sun) || defined(PORTUNUS_DOOR_ILLUMOS)
    // illumos: the binary psinfo file, whose pr_rssize is in kilobytes.
    psinfo_t info{};
    std::ifstream in("/proc/" + std::to_string(pid) + "/psinfo", std::ios::binary);
    if (in.read(reinterpret_cast<char*>(&info), sizeof info)) return static_cast<std::uint64_t>(info.pr_rssize) * 1024;
#elif defined(__linux__)
    std::ifstream statm("/proc/" + std::to_string(pid) + "/statm");
    std::uint64_t size = 0, resident = 0;
    if (statm >> size >> resident) return resident * static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
#else
    (void)pid;
#endif
    return 0;
}

} // namespace

const char* to_string(app_supervisor::state s) noexcept
{
    switch (s) {
    case app_supervisor::state::stopped: return "stopped";
    case app_supervisor::state::starting: return "starting";
    case app_supervisor::state::serving: return "serving";
    case app_supervisor::state::backing_off: return "backing_off";
    case app_supervisor::state::stopping: return "stopping";
    case app_supervisor::state::idle: return "idle";
    }
    return "?";
}

app_supervisor::running::running(asio::io_context& io, spawned_child c)
    : pid(c.pid), output(io, c.output.release()), kill_timer(io), started(std::chrono::steady_clock::now())
{
}

app_supervisor::app_supervisor(asio::io_context& main, app_config cfg, std::function<app_load()> load)
    : io_(main), cfg_(std::move(cfg)), load_(std::move(load)), restart_timer_(main), door_timer_(main),
      tick_timer_(main), delay_(cfg_.restart_delay), last_call_seen_(std::chrono::steady_clock::now())
{
}

app_supervisor::~app_supervisor()
{
    // The loops have stopped: nothing will wait for these any more. They get SIGTERM so that
    // they finish what they do and revoke their doors; nobody is left to reap them but init.
    for (const auto& r : {child_, retiring_})
        if (r && !r->exited) ::kill(r->pid, SIGTERM);
}

void app_supervisor::set_state(state s)
{
    state_ = s;
}

void app_supervisor::begin()
{
    if (cfg_.start == app_start::always) start_process("start");
    tick();
}

void app_supervisor::wake()
{
    asio::post(io_, [weak = weak_from_this()] {
        auto self = weak.lock();
        if (!self || self->stop_asked_) return;
        self->last_call_seen_ = std::chrono::steady_clock::now();
        if (self->state_ == state::stopped || self->state_ == state::idle) self->start_process("first call");
    });
}

void app_supervisor::start_process(const char* why)
{
    spawn_spec spec;
    spec.argv = cfg_.command;
    spec.environment = cfg_.environment;
    spec.working_directory = cfg_.working_directory;
    std::string error;
    if (error = set_account(spec, cfg_.user, cfg_.group); error.empty()) {
        const auto before = file_identity::of(cfg_.door);
        const auto exe = file_identity::of(cfg_.command.front());
        if (auto child = spawn(spec, error)) {
            auto r = std::make_shared<running>(io_, std::move(*child));
            r->calls_at_start = load_ ? load_().calls_ended : 0;
            child_ = r;
            exe_ = exe;
            ++starts_;
            set_state(state::starting);
            spdlog::info("app {}: started pid {} ({})", cfg_.name, r->pid, why);
            read_output(r);
            watch_door(r, before, std::chrono::steady_clock::now() + cfg_.start_timeout);
            return;
        }
    }
    // Could not even start it: the same backoff as a crash, so a missing binary that an
    // operator is about to install is picked up without a reload.
    last_exit_ = error;
    spdlog::error("app {}: {}", cfg_.name, error);
    schedule_restart();
}

void app_supervisor::read_output(const std::shared_ptr<running>& r)
{
    auto buffer = std::make_shared<std::array<char, 4096>>();
    r->output.async_read_some(asio::buffer(*buffer), [weak = weak_from_this(), r, buffer](
                                                         const boost::system::error_code& ec, std::size_t n) {
        auto self = weak.lock();
        if (!self) return;
        if (n > 0) {
            std::string_view data(buffer->data(), n);
            while (!data.empty()) {
                const auto nl = data.find('\n');
                if (nl == std::string_view::npos) {
                    r->partial.append(data);
                    if (r->partial.size() >= max_line) {
                        self->flush_line(*r, r->partial);
                        r->partial.clear();
                    }
                    break;
                }
                r->partial.append(data.substr(0, nl));
                self->flush_line(*r, r->partial);
                r->partial.clear();
                data.remove_prefix(nl + 1);
            }
        }
        if (ec) {
            // End of output: the process closed it or exited. What is left is its last line.
            if (!r->partial.empty()) self->flush_line(*r, r->partial);
            r->partial.clear();
            return;
        }
        self->read_output(r);
    });
}

void app_supervisor::flush_line(running& r, std::string_view line)
{
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    spdlog::info("app {}[{}]: {}", cfg_.name, r.pid, line);
}

// The door is ready once a new file is at its path: a door server attaches by renaming its
// socket into place after it listens, and illumos's fattach() makes the name appear at once.
void app_supervisor::watch_door(std::shared_ptr<running> r, std::optional<file_id> before,
                                std::chrono::steady_clock::time_point deadline)
{
    if (r != child_ || r->exited) return;
    const auto now_id = file_identity::of(cfg_.door);
    if (now_id && now_id != before) {
        set_state(state::serving);
        spdlog::info("app {}: pid {} serves {}", cfg_.name, r->pid, cfg_.door);
        if (serving_hook_) serving_hook_(cfg_.door, true);
        last_call_seen_ = std::chrono::steady_clock::now();
        if (retiring_) terminate(retiring_);
        return;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
        spdlog::error("app {}: pid {} did not attach {} within start_timeout ({}); killing it", cfg_.name, r->pid,
                      cfg_.door, text_of(cfg_.start_timeout));
        // Its exit is then a crash like any other, with the backoff that follows.
        ::kill(r->pid, SIGKILL);
        return;
    }
    door_timer_.expires_after(door_poll);
    door_timer_.async_wait([weak = weak_from_this(), r, before, deadline](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!ec && self) self->watch_door(r, before, deadline);
    });
}

void app_supervisor::reap()
{
    for (const auto& r : {child_, retiring_}) {
        if (!r || r->exited) continue;
        int status = 0;
        const pid_t got = ::waitpid(r->pid, &status, WNOHANG);
        if (got == r->pid) exited(r, status);
    }
}

void app_supervisor::exited(const std::shared_ptr<running>& r, int status)
{
    if (r->exited) return;
    r->exited = true;
    r->kill_timer.cancel();
    const auto how = describe_status(status);
    const auto ran = std::chrono::steady_clock::now() - r->started;
    if (r == retiring_) {
        retiring_.reset();
        spdlog::info("app {}: replaced pid {} exited ({})", cfg_.name, r->pid, how);
    } else if (r == child_) {
        child_.reset();
        door_timer_.cancel();
        if (serving_hook_) serving_hook_(cfg_.door, false);
        last_exit_ = how;
        if (r->stopping) {
            spdlog::info("app {}: pid {} stopped ({})", cfg_.name, r->pid, how);
            if (!stop_asked_) set_state(state::idle);
        } else {
            ++restarts_;
            if (ran >= healthy_after) delay_ = cfg_.restart_delay;
            spdlog::warn("app {}: pid {} exited unasked ({}) after {} ms; restarting in {}", cfg_.name, r->pid, how,
                         std::chrono::duration_cast<std::chrono::milliseconds>(ran).count(), text_of(delay_));
            if (!stop_asked_) schedule_restart();
        }
    }
    if (stop_asked_ && !child_ && !retiring_) {
        set_state(state::stopped);
        if (auto done = std::move(stopped_)) {
            stopped_ = nullptr;
            done();
        }
    }
}

void app_supervisor::schedule_restart()
{
    if (stop_asked_) return;
    set_state(state::backing_off);
    const auto wait = delay_;
    // Doubled for the next crash in a row, up to the maximum; a crash loop keeps trying at that
    // pace for as long as it lasts, and never gives up on the app for good.
    delay_ = std::min(delay_ * 2, cfg_.restart_max_delay);
    restart_timer_.expires_after(wait);
    restart_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (ec || !self || self->stop_asked_ || self->child_) return;
        self->start_process("restart");
    });
}

void app_supervisor::terminate(const std::shared_ptr<running>& r)
{
    if (!r || r->exited || r->stopping) return;
    r->stopping = true;
    if (::kill(r->pid, SIGTERM) != 0 && errno != ESRCH)
        spdlog::error("app {}: cannot signal pid {}: {}", cfg_.name, r->pid, std::strerror(errno));
    r->kill_timer.expires_after(cfg_.stop_timeout);
    r->kill_timer.async_wait([weak = weak_from_this(), r](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (ec || !self || r->exited) return;
        spdlog::warn("app {}: pid {} still running {} after SIGTERM; sending SIGKILL", self->cfg_.name, r->pid,
                     text_of(self->cfg_.stop_timeout));
        ::kill(r->pid, SIGKILL);
        // A process that not even SIGKILL ends soon (it may not be ours to signal any more, or
        // hang in the kernel) is given up on, so that a stop or the daemon's exit never waits
        // for it for ever.
        r->kill_timer.expires_after(std::chrono::seconds(2));
        r->kill_timer.async_wait([weak, r](const boost::system::error_code& e) {
            auto me = weak.lock();
            if (e || !me || r->exited) return;
            spdlog::error("app {}: pid {} survived SIGKILL; no longer waiting for it", me->cfg_.name, r->pid);
            me->exited(r, 0);
        });
    });
}

void app_supervisor::restart(const char* why)
{
    if (stop_asked_) return;
    if (child_ && state_ == state::serving && !retiring_) {
        spdlog::info("app {}: replacing pid {} ({})", cfg_.name, child_->pid, why);
        retiring_ = std::move(child_);
        start_process(why);
        return;
    }
    if (!child_) {
        restart_timer_.cancel();
        delay_ = cfg_.restart_delay;
        start_process(why);
    }
}

void app_supervisor::stop(std::function<void()> done)
{
    stop_asked_ = true;
    restart_timer_.cancel();
    door_timer_.cancel();
    tick_timer_.cancel();
    stopped_ = std::move(done);
    if (!child_ && !retiring_) {
        set_state(state::stopped);
        if (auto d = std::move(stopped_)) {
            stopped_ = nullptr;
            d();
        }
        return;
    }
    set_state(state::stopping);
    terminate(child_);
    terminate(retiring_);
}

// Once a second: idle stop, recycling by calls or memory, and replacement of a changed
// executable. Each acts on a serving process only, one replacement at a time.
void app_supervisor::tick()
{
    // SIGCHLD is the way exits are noticed; this is the net under it, for one that got lost.
    reap();
    if (stop_asked_) return;
    const auto now = std::chrono::steady_clock::now();
    const app_load load = load_ ? load_() : app_load{};
    if (load.calls_ended != calls_seen_ || load.in_flight > 0) {
        calls_seen_ = load.calls_ended;
        last_call_seen_ = now;
    }
    if (state_ == state::serving && child_ && !retiring_) {
        if (cfg_.start == app_start::on_demand && cfg_.idle_stop.count() > 0 && load.in_flight == 0 &&
            now - last_call_seen_ >= cfg_.idle_stop) {
            spdlog::info("app {}: no call for {}; stopping pid {}", cfg_.name, text_of(cfg_.idle_stop), child_->pid);
            terminate(child_);
        } else if (cfg_.max_calls > 0 && load.calls_ended - child_->calls_at_start >= cfg_.max_calls) {
            restart("max_calls reached");
        } else if (cfg_.max_memory > 0 && resident_bytes(child_->pid) > cfg_.max_memory) {
            restart("max_memory exceeded");
        } else if (cfg_.upgrade_on_change && exe_ && file_identity::of(cfg_.command.front()) != exe_) {
            restart("executable changed");
        }
    }
    tick_timer_.expires_after(tick_interval);
    tick_timer_.async_wait([weak = weak_from_this()](const boost::system::error_code& ec) {
        auto self = weak.lock();
        if (!ec && self) self->tick();
    });
}

app_snapshot app_supervisor::snapshot() const
{
    app_snapshot s;
    s.name = cfg_.name;
    s.door = cfg_.door;
    s.state = to_string(state_);
    s.pid = child_ ? static_cast<long>(child_->pid) : 0;
    s.restarts = restarts_;
    s.starts = starts_;
    s.last_exit = last_exit_;
    return s;
}

} // namespace portunusd
