// SPDX-License-Identifier: MPL-2.0
// Binding, reloading and draining the daemon's forwards.
#include "portunusd/server.hpp"

#include "portunusd/exec/exec_session.hpp"
#include "portunusd/handoff/pass_session.hpp"
#include "portunusd/log/logging.hpp"

#include <spdlog/spdlog.h>

#include <sys/socket.h>
#include <unistd.h>


namespace portunusd {

namespace asio = boost::asio;

server::server(config cfg)
    : config_(std::move(cfg)), limit_(config_.daemon.max_connections), loops_(config_.daemon.threads),
      control_(asio::make_strand(loops_.main())), drain_timer_(control_), drain_poll_(control_), rebind_timer_(control_),
      children_(loops_.main())
{
    note_instances(config_.apps);
}

server::~server()
{
    for (auto& [key, r] : forwards_) stop_forward(r);
    // A session holds its forward, which holds exec_children_: without this the children left
    // running would keep each other alive, and outlive the daemon.
    exec_children_->kill_all();
    // The loops have stopped: calls they still waited for are never completed. A gate that a
    // reload replaced may still have some, held by a session that outlived its forward.
    for (const auto& weak : gates_made_)
        if (auto g = weak.lock()) g->abandon_calls();
}

std::string server::key_of(const forward_config& f)
{
    return std::string(to_string(f.proto)) + " " + f.listen.host + " " + std::to_string(f.listen.port);
}

std::shared_ptr<forward_state> server::make_state(const forward_config& f, std::shared_ptr<forward_stats> stats)
{
    auto s = std::make_shared<forward_state>();
    s->config = f;
    auto add_gate = [&](const std::string& door) {
        s->gates.push_back(
            std::make_shared<door_gate>(door, f.max_concurrency, f.queue, f.call_timeout, callers_, loops_.size()));
        // A door that will not open may belong to an app that starts on demand.
        s->gates.back()->set_starter([registry = registry_, door] { return registry->wake(door); });
        std::erase_if(gates_made_, [](const std::weak_ptr<door_gate>& g) { return g.expired(); });
        gates_made_.push_back(s->gates.back());
        return s->gates.size() - 1;
    };
    // One target per distinct door; the door of an app with instances stands for theirs.
    std::map<std::string, std::size_t> target_of;
    auto gate_for = [&](const std::string& door) {
        if (const auto it = target_of.find(door); it != target_of.end()) return it->second;
        std::vector<std::size_t> gates;
        const auto inst = instances_by_door_.find(door);
        if (inst != instances_by_door_.end()) {
            for (const auto& d : inst->second) gates.push_back(add_gate(d));
        } else {
            gates.push_back(add_gate(door));
        }
        s->targets.push_back(std::move(gates));
        target_of.emplace(door, s->targets.size() - 1);
        return s->targets.size() - 1;
    };
    std::optional<std::size_t> catch_all;
    if (!f.door.empty()) catch_all = gate_for(f.door);
    if (f.proto == protocol::http) {
        std::vector<http_route> routes;
        for (const auto& m : f.maps) routes.push_back({m.methods, m.prefix, gate_for(m.door)});
        s->router = std::make_shared<const http_router>(std::move(routes), catch_all);
    }
    s->stats = stats ? std::move(stats) : std::make_shared<forward_stats>(loops_.size());
    if (f.tls) {
        // load_config() built this context once already; the material has not changed since.
        std::string error;
        s->tls = tls::context::build({f.tls->certificate_pem, f.tls->private_key_pem, f.tls->min_version,
                                      f.proto == protocol::http},
                                     error);
        if (!s->tls) spdlog::error("forward {}: TLS: {}; its connections are closed until a reload", f.name, error);
    }
    if (f.proto == protocol::exec) {
        // Children exist from the first connection on: SIGCHLD must be caught before then.
        wait_for_children();
        s->room = std::make_shared<exec_forward>(f, exec_children_, loops_.main());
    }
    return s;
}

namespace {

// "*" binds the IPv6 wildcard with IPV6_V6ONLY off, which takes IPv4 as well on Linux and
// illumos; an explicit "::" stays IPv6 only so that "0.0.0.0" can sit beside it.
template <typename Socket, typename Endpoint>
void open_and_bind(Socket& socket, const listen_address& listen, boost::system::error_code& ec)
{
    const auto address = listen.any ? asio::ip::address(asio::ip::address_v6::any())
                                    : asio::ip::make_address(listen.host, ec);
    if (ec) return;
    const Endpoint endpoint(address, listen.port);
    socket.open(endpoint.protocol(), ec);
    if (ec) return;
    if (address.is_v6()) socket.set_option(asio::ip::v6_only(!listen.any), ec);
    if (ec) return;
    if constexpr (std::is_same_v<Socket, asio::ip::tcp::acceptor>) {
        socket.set_option(asio::socket_base::reuse_address(true), ec);
        if (ec) return;
    }
    socket.bind(endpoint, ec);
}

} // namespace

bool server::open_forward(const forward_config& f, std::shared_ptr<forward_stats> stats, std::string& error,
                          running_forward& out, boost::system::error_code* cause)
{
    boost::system::error_code ec;
    out.state = make_state(f, std::move(stats));
    // A socket the service manager passed is bound (and listening) already; only start-up has any.
    passed_socket passed = passed_.claim(f.proto, f.listen);
    const bool v6 = passed.family == AF_INET6;
    if (passed.fd && f.listen.any && passed.v6_only)
        spdlog::warn("forward {}: passed socket {} takes IPv6 clients only, where \"*\" means both families "
                     "(the socket unit has BindIPv6Only=ipv6-only)",
                     f.name, passed.describe());
    if (f.proto != protocol::udp) {
        asio::ip::tcp::acceptor acceptor(loops_.main());
        if (passed.fd) {
            acceptor.assign(v6 ? asio::ip::tcp::v6() : asio::ip::tcp::v4(), passed.fd.get(), ec);
            if (!ec) (void)passed.fd.release();
        } else {
            open_and_bind<asio::ip::tcp::acceptor, asio::ip::tcp::endpoint>(acceptor, f.listen, ec);
            if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
        }
        if (!ec)
            out.tcp = std::make_shared<tcp_listener>(loops_, std::move(acceptor), out.state, limit_, sessions_,
                                                     f.proto == protocol::pass   ? &pass_session::start_new
                                                     : f.proto == protocol::exec ? &exec_session::start_new
                                                                                 : nullptr);
    } else {
        asio::ip::udp::socket socket(loops_.main());
        if (passed.fd) {
            socket.assign(v6 ? asio::ip::udp::v6() : asio::ip::udp::v4(), passed.fd.get(), ec);
            if (!ec) (void)passed.fd.release();
        } else {
            open_and_bind<asio::ip::udp::socket, asio::ip::udp::endpoint>(socket, f.listen, ec);
        }
        if (!ec) out.udp = std::make_shared<udp_relay>(std::move(socket), out.state);
    }
    if (cause) *cause = ec;
    if (ec) {
        error = "cannot bind " + std::string(protocol_name(f)) + " " + f.listen.text + " (forward " + f.name +
                "): " + ec.message();
        return false;
    }
    return true;
}

void server::start_forward(running_forward& r)
{
    if (r.tcp) r.tcp->start();
    if (r.udp) r.udp->start();
    const auto& c = r.state->config;
    spdlog::info("forward {}: {} {} -> {}", c.name, protocol_name(c), c.listen.text,
                 c.proto == protocol::exec ? c.command.front() : c.door);
}

void server::stop_forward(running_forward& r)
{
    if (r.tcp) r.tcp->stop();
    if (r.udp) r.udp->stop();
}

std::vector<std::string> server::bind()
{
    std::vector<std::string> errors;
    for (const auto& f : config_.forwards) {
        running_forward r;
        std::string error;
        if (open_forward(f, nullptr, error, r))
            forwards_.emplace(key_of(f), std::move(r));
        else
            errors.push_back(std::move(error));
    }
    // A passed socket no forward wants would otherwise sit open, taking connections nobody serves.
    for (const auto& left : passed_.close_unclaimed())
        spdlog::warn("passed socket {}, fits no [[forward]] (protocol and listen address); closed", left);
    return errors;
}

std::string server::serving_status() const
{
    return "serving " + std::to_string(forwards_.size()) + " forward(s), " + std::to_string(apps_.size()) +
           " app(s)";
}

int server::run()
{
    for (auto& [key, r] : forwards_) start_forward(r);
    start_apps();
    spdlog::info("portunusd ready: {} forward(s), {} event-loop thread(s)", forwards_.size(), config_.daemon.threads);
    // Every listener is bound and listening; this runs once the loops do, so the manager hears
    // READY when the ports are served and not merely open.
    asio::post(control_, [this] {
        if (!stopping_) notify_.ready(serving_status());
    });
    loops_.run();
    return 0;
}

void server::set_config_file(std::string file, int verbosity)
{
    config_file_ = std::move(file);
    verbosity_ = verbosity;
}

void server::reload_file(std::function<void(reload_report)> done)
{
    spdlog::info("reloading {}", config_file_);
    if (!stopping_) notify_.reloading("reloading " + config_file_);
    auto result = load_config(config_file_);
    for (const auto& w : result.warnings) spdlog::warn("reload: {}", w.log_text());
    if (!result.value) {
        reload_report refused;
        for (const auto& e : result.errors) {
            spdlog::error("{}", e.to_string());
            refused.errors.push_back(e.to_string());
        }
        spdlog::error("reload: configuration has {} error(s); still running the previous one", result.errors.size());
        // The manager waits for READY after RELOADING either way; STATUS says the reload failed.
        if (!stopping_)
            notify_.ready("reload failed: " + std::to_string(result.errors.size()) + " error(s) in " + config_file_ +
                          (refused.errors.empty() ? "" : " (" + refused.errors.front() + ")") +
                          "; still serving the previous configuration");
        if (done) done(std::move(refused));
        return;
    }
    if (const auto error = setup_logging(result.value->daemon, verbosity_); !error.empty())
        spdlog::error("reload: cannot open log: {}; keeping the old one", error);
    reload(std::move(*result.value), [this, done = std::move(done)](reload_report report) {
        if (!stopping_) {
            std::string status = serving_status() + "; reloaded: " + std::to_string(report.added.size()) + " added, " +
                                 std::to_string(report.changed.size()) + " changed, " +
                                 std::to_string(report.removed.size()) + " removed";
            if (!report.bind_errors.empty())
                status += "; " + std::to_string(report.bind_errors.size()) + " could not bind (" +
                          report.bind_errors.front() + ")";
            notify_.ready(status);
        }
        if (done) done(std::move(report));
    });
}

void server::reload(config next, std::function<void(reload_report)> done)
{
    if (stopping_) {
        if (done) done({false, {"the daemon is stopping; reload ignored"}, {}, {}, {}, {}});
        return;
    }
    config_loaded_ = std::chrono::system_clock::now();
    const auto& old_d = config_.daemon;
    const auto& new_d = next.daemon;
    if (old_d.threads != new_d.threads || old_d.user != new_d.user || old_d.group != new_d.group)
        spdlog::warn("reload: threads, user and group take effect only after a restart");

    // Before any forward is rebuilt: a door's instances decide its gates.
    note_instances(next.apps);
    std::map<std::string, running_forward> kept;
    std::vector<forward_config> added;
    reload_report report;
    report.ok = true;
    for (const auto& f : next.forwards) {
        const auto key = key_of(f);
        auto it = forwards_.find(key);
        if (it == forwards_.end()) {
            added.push_back(f);
            continue;
        }
        running_forward r = std::move(it->second);
        forwards_.erase(it);
        // Every setting counts, positions in the file do not (see forward_settings).
        if (r.state->config != f) {
            // New sessions get the new settings; sessions already open finish on the old ones.
            r.state = make_state(f, r.state->stats);
            if (r.tcp) r.tcp->set_forward(r.state);
            if (r.udp) r.udp->set_forward(r.state);
            report.changed.push_back(f.name);
            spdlog::info("forward {}: updated ({} -> {})", f.name, f.listen.text,
                         f.proto == protocol::exec ? f.command.front() : f.door);
        }
        kept.emplace(key, std::move(r));
    }
    // Removed forwards go first: a new forward may want their port (a listen address that
    // widened from 127.0.0.1:P to *:P is a removal plus an addition).
    for (auto& [key, r] : forwards_) {
        spdlog::info("forward {}: removed ({})", r.state->config.name, r.state->config.listen.text);
        stop_forward(r);
        report.removed.push_back(r.state->config.name);
    }
    forwards_ = std::move(kept);
    limit_.set_max(new_d.max_connections);
    if (old_d.control_door != new_d.control_door || old_d.metrics_listen != new_d.metrics_listen)
        spdlog::warn("reload: control_door and metrics_listen take effect only after a restart");
    reconcile_apps(next.apps);
    config_ = std::move(next);
    const int retries = report.removed.empty() ? 0 : 40;
    bind_added(std::move(added), retries, std::move(report), std::move(done));
}

void server::bind_added(std::vector<forward_config> pending, int retries, reload_report report,
                        std::function<void(reload_report)> done)
{
    std::vector<forward_config> again;
    for (auto& f : pending) {
        running_forward r;
        std::string error;
        boost::system::error_code ec;
        if (open_forward(f, nullptr, error, r, &ec)) {
            start_forward(r);
            forwards_.emplace(key_of(f), std::move(r));
            report.added.push_back(f.name);
        } else if (ec == asio::error::address_in_use && retries > 0) {
            again.push_back(std::move(f)); // a removed listener on that port is still closing
        } else {
            spdlog::error("reload: {}", error);
            report.bind_errors.push_back(std::move(error));
        }
    }
    if (again.empty() || stopping_) {
        spdlog::info("reload: {} forward(s) added, {} changed, {} removed", report.added.size(),
                     report.changed.size(), report.removed.size());
        if (done) done(std::move(report));
        return;
    }
    rebind_timer_.expires_after(std::chrono::milliseconds(50));
    rebind_timer_.async_wait([this, again = std::move(again), retries, report = std::move(report),
                              done = std::move(done)](const boost::system::error_code& ec) mutable {
        if (!ec) bind_added(std::move(again), retries - 1, std::move(report), std::move(done));
    });
}

std::size_t server::calls_in_flight() const
{
    std::size_t n = 0;
    for (const auto& [key, r] : forwards_) {
        for (const auto& g : r.state->gates) n += g->in_flight() + g->queued();
        if (r.udp) n += r.udp->in_flight();
    }
    return n;
}

void server::begin_stop(const char* why, std::optional<std::chrono::milliseconds> drain)
{
    if (stopping_) return;
    stopping_ = true; // from here on /health answers 503 (snapshot().draining)
    const auto timeout = drain.value_or(config_.daemon.drain_timeout);
    const auto grace = config_.daemon.stop_grace;
    if (grace.count() > 0) {
        // The listeners stay open until a balancer's health check has seen the 503: a host it
        // still sends clients to must not refuse them.
        spdlog::info("{}: stopping in {} ms; /health answers 503 meanwhile", why, grace.count());
        notify_.stopping(std::string(why) + ": stopping in " + std::to_string(grace.count()) + " ms");
        drain_timer_.expires_after(grace);
        drain_timer_.async_wait([this, reason = std::string(why), timeout](const boost::system::error_code& ec) {
            if (!ec) start_drain(reason.c_str(), timeout);
        });
        return;
    }
    start_drain(why, timeout);
}

void server::start_drain(const char* why, std::chrono::milliseconds timeout)
{
    spdlog::info("{}: stopping; waiting up to {} ms for calls in flight", why, timeout.count());
    notify_.stopping(std::string(why) + ": draining, up to " + std::to_string(timeout.count()) + " ms");
    for (auto& [key, r] : forwards_) stop_forward(r);
    limit_.clear_waiters(); // paused listeners are stopped; nothing should resume them
    sessions_.drain_all();
    drain_timer_.expires_after(timeout);
    drain_timer_.async_wait([this](const boost::system::error_code& ec) {
        if (ec) return;
        spdlog::warn("drain timeout: {} call(s) and {} connection(s) still open; stopping anyway", calls_in_flight(),
                     sessions_.size());
        loops_.stop();
    });
    check_drained();
}

void server::check_drained()
{
    if (calls_in_flight() == 0 && sessions_.size() == 0) {
        drain_timer_.cancel();
        stop_apps_then_exit();
        return;
    }
    drain_poll_.expires_after(std::chrono::milliseconds(20));
    drain_poll_.async_wait([this](const boost::system::error_code& ec) {
        if (!ec) check_drained();
    });
}

} // namespace portunusd

namespace portunusd {

namespace {

double unix_seconds(std::chrono::system_clock::time_point t)
{
    return std::chrono::duration<double>(t.time_since_epoch()).count();
}

} // namespace

daemon_snapshot server::snapshot() const
{
    daemon_snapshot s;
    s.version = PORTUNUSD_VERSION;
    s.pid = static_cast<long>(::getpid());
    s.uptime_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started_steady_).count();
    s.start_time_unix = unix_seconds(started_);
    s.config_file = config_file_;
    s.config_loaded_unix = unix_seconds(config_loaded_);
    s.draining = stopping_;
    // Configuration order, which is what an operator reads the file in.
    for (const auto& f : config_.forwards) {
        const auto it = forwards_.find(key_of(f));
        if (it == forwards_.end()) continue; // could not be bound on reload
        const auto& state = *it->second.state;
        forward_snapshot fs;
        fs.name = f.name;
        fs.protocol = std::string(protocol_name(f));
        fs.listen = f.listen.text;
        if (state.tls) fs.tls_not_after = state.tls->not_after();
        for (const auto& g : state.gates) fs.doors.push_back(g->snapshot());
        fs.counts = state.stats->totals();
        s.forwards.push_back(std::move(fs));
    }
    for (const auto& a : config_.apps)
        if (const auto it = apps_.find(a.name); it != apps_.end())
            for (const auto& app : it->second.instances) s.apps.push_back(app->snapshot());
    return s;
}

} // namespace portunusd
