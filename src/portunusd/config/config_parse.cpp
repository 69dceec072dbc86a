// SPDX-License-Identifier: MPL-2.0
// The portunusd.toml schema: [daemon], [[forward]], their defaults and the checks across forwards;
// [[app]] is read by config_parse_app.cpp.
#include "portunusd/config/config_parse_app.hpp"
#include "portunusd/config/config_parse_exec.hpp"
#include "portunusd/config/config_parse_http.hpp"
#include "portunusd/config/config_parse_tls.hpp"
#include "portunusd/config/config_reader.hpp"
#include "portunusd/config/config_values.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <thread>

namespace portunusd::config_detail {
namespace {

using namespace std::string_view_literals;

constexpr std::array top_keys{"daemon"sv, "forward"sv, "app"sv};
// The timeouts appear in both tables: [daemon] holds the defaults a forward may override.
constexpr std::array daemon_only_keys{
    "user"sv, "group"sv, "threads"sv, "log_level"sv, "log"sv, "access_log"sv,
    "max_connections"sv, "drain_timeout"sv, "stop_grace"sv, "allow_insecure_door_dir"sv, "control_door"sv, "metrics_listen"sv,
};
constexpr std::array common_forward_keys{
    "name"sv, "protocol"sv, "listen"sv, "door"sv, "max_concurrency"sv, "queue"sv, "max_request"sv, "once"sv,
    "proxy_protocol"sv, "proxy_protocol_from"sv, "pass_hold"sv,
};
constexpr std::array timeout_keys{"read_timeout"sv, "idle_timeout"sv, "call_timeout"sv};

template <std::size_t n, std::size_t m>
constexpr std::array<std::string_view, n + m> join(const std::array<std::string_view, n>& a,
                                                   const std::array<std::string_view, m>& b)
{
    std::array<std::string_view, n + m> out{};
    std::copy(a.begin(), a.end(), out.begin());
    std::copy(b.begin(), b.end(), out.begin() + n);
    return out;
}

constexpr auto forward_only_keys =
    join(join(join(common_forward_keys, http_forward_keys), exec_forward_keys), tls_forward_keys);
constexpr auto daemon_keys = join(daemon_only_keys, timeout_keys);
constexpr auto forward_keys = join(forward_only_keys, timeout_keys);
// "door" too, except on an http forward that routes with [[forward.map]] instead.
constexpr std::array required_forward_keys{"protocol"sv, "listen"sv};

constexpr std::array log_levels{"trace"sv, "debug"sv, "info"sv, "warn"sv, "error"sv, "off"sv};
constexpr std::array log_targets{"stderr"sv, "syslog"sv};
constexpr std::array protocols{"tcp"sv, "udp"sv, "http"sv, "pass"sv, "exec"sv, "tls"sv, "https"sv};

constexpr std::int64_t max_threads = 64;
constexpr std::int64_t max_connections_limit = 1'000'000;
constexpr std::int64_t max_concurrency_limit = 4'096;
constexpr std::int64_t max_queue = 1'000'000;
constexpr std::int64_t max_tcp_request = 64 * 1024 * 1024;

constexpr std::string_view no_forwards = "no [[forward]] table; at least one forward is required";

unsigned default_threads()
{
    // The applications behind the doors run on this machine too and need CPUs of their own: a
    // loop per CPU would compete with them (measured in docs/benchmarks.md). Past 4, loops only
    // add contention.
    return std::clamp(std::thread::hardware_concurrency() / 2, 1U, 4U);
}

std::optional<std::string> read_access_log(table_reader& r)
{
    auto value = r.string("access_log");
    if (!value || *value == "off" || *value == "stderr" || *value == "syslog")
        return value;
    if (value->find('\0') != std::string::npos) {
        r.error("access_log", "path contains a NUL byte");
        return std::nullopt;
    }
    // A relative path would depend on the working directory, which SMF and daemon(3C) change.
    if (value->front() != '/') {
        r.error("access_log", quote(*value) + " is not valid; expected off, stderr, syslog or an absolute file path");
        return std::nullopt;
    }
    return value;
}

std::optional<std::string> read_control_door(table_reader& r)
{
    auto value = r.string("control_door");
    if (!value || *value == "off")
        return value;
    // Relative paths would depend on the working directory, which SMF and daemon(3C) change.
    if (value->empty() || value->front() != '/' || value->find('\0') != std::string::npos) {
        r.error("control_door", quote(*value) + " is not valid; expected off or an absolute path");
        return std::nullopt;
    }
    if (value->size() > max_door_path) {
        r.error("control_door", "path is " + std::to_string(value->size()) + " bytes; at most " +
                                    std::to_string(max_door_path) + " fit in a socket address");
        return std::nullopt;
    }
    return value;
}

daemon_config read_daemon(const toml::table* table, diagnostics& diag)
{
    daemon_config d;
    d.threads = default_threads();
    if (!table)
        return d;
    table_reader r{*table, diag};
    const std::array elsewhere{other_table{forward_only_keys, "in [[forward]]"}, other_table{app_keys, "in [[app]]"},
                               other_table{top_keys, "at top level"}};
    r.reject_unknown_keys(daemon_keys, "in [daemon]", elsewhere);

    d.user = r.account("user");
    d.group = r.account("group");
    if (auto v = r.integer("threads", 1, max_threads))
        d.threads = static_cast<unsigned>(*v);
    if (auto v = r.one_of("log_level", log_levels))
        d.log_level = *v;
    if (auto v = r.one_of("log", log_targets))
        d.log = *v;
    if (auto v = read_access_log(r))
        d.access_log = *v;
    if (auto v = r.integer("max_connections", 1, max_connections_limit))
        d.max_connections = static_cast<std::size_t>(*v);
    // Zero is meaningful here: stop at once, abandoning calls in flight.
    if (auto v = r.duration("drain_timeout", true))
        d.drain_timeout = *v;
    if (auto v = r.duration("stop_grace", true))
        d.stop_grace = *v;
    if (auto v = r.boolean("allow_insecure_door_dir"))
        d.allow_insecure_door_dir = *v;
    if (auto v = read_control_door(r)) {
        d.control_door = *v == "off" ? std::string{} : *v;
        d.control_door_explicit = true;
    }
    if (auto text = r.string("metrics_listen")) {
        auto parsed = parse_listen_address(*text);
        if (parsed.value)
            d.metrics_listen = std::move(*parsed.value);
        else
            r.error("metrics_listen", parsed.error);
    }
    if (auto v = r.duration("read_timeout"))
        d.read_timeout = *v;
    if (auto v = r.duration("idle_timeout"))
        d.idle_timeout = *v;
    if (auto v = r.duration("call_timeout"))
        d.call_timeout = *v;
    return d;
}

// One [[forward]] as read, with what the checks across forwards need to know about it.
struct forward_draft {
    forward_config cfg;
    bool has_protocol = false;
    bool has_listen = false;
    bool explicit_name = false;
    position name_at;
    position listen_at;
};

// `tls` is set for "tls" and "https", the TLS forms of tcp and http.
std::optional<protocol> read_protocol(table_reader& r, bool& tls)
{
    const auto value = r.string("protocol");
    if (!value)
        return std::nullopt;
    tls = *value == "tls" || *value == "https";
    if (*value == "tls")
        return protocol::tcp;
    if (*value == "https")
        return protocol::http;
    if (*value == "tcp")
        return protocol::tcp;
    if (*value == "udp")
        return protocol::udp;
    if (*value == "http")
        return protocol::http;
    if (*value == "pass")
        return protocol::pass;
    if (*value == "exec")
        return protocol::exec;
    static_cast<void>(r.one_of("protocol", protocols));
    return std::nullopt;
}

// max_request and once, whose meaning depends on the protocol.
void read_request_keys(table_reader& r, forward_draft& f, diagnostics& diag)
{
    if (f.has_protocol && f.cfg.proto == protocol::exec) return; // refused by read_exec_keys()
    if (f.has_protocol && f.cfg.proto == protocol::pass) {
        // The daemon reads nothing of a passed connection but a PROXY header: nothing to frame
        // and no pause between requests to time.
        for (const std::string_view key : {"max_request"sv, "once"sv, "read_timeout"sv, "idle_timeout"sv})
            if (r.find(key))
                diag.error(r.where(key), std::string{key} + " does not apply to pass forwards; the application "
                                                            "reads the connection itself");
        return;
    }
    if (f.has_protocol && f.cfg.proto == protocol::http) {
        // HTTP frames a request by its header section and body, not by what one read returns,
        // and closes a connection after max_requests: neither key has a meaning there.
        if (r.find("max_request"))
            diag.error(r.where("max_request"), "max_request does not apply to " + std::string{protocol_name(f.cfg)} + " forwards; use max_body");
        if (r.find("once"))
            diag.error(r.where("once"), "once does not apply to " + std::string{protocol_name(f.cfg)} + " forwards; use max_requests = 1");
        return;
    }
    const bool udp = f.has_protocol && f.cfg.proto == protocol::udp;
    f.cfg.max_request = udp ? max_udp_request : 65'536;
    if (auto v = r.integer("max_request")) {
        const auto udp_max = static_cast<std::int64_t>(max_udp_request);
        if (udp && *v > udp_max)
            r.error("max_request", std::to_string(*v) + " is too large for udp; a datagram carries at most " +
                                       std::to_string(udp_max) + " bytes");
        else if (*v < 1 || *v > max_tcp_request)
            r.error("max_request", std::to_string(*v) + " is out of range; expected 1.." +
                                       std::to_string(udp ? udp_max : max_tcp_request));
        else
            f.cfg.max_request = static_cast<std::size_t>(*v);
    }

    if (auto once = r.boolean("once")) {
        // A datagram is already one call and one reply; there is no connection to close.
        if (*once && udp)
            r.error("once", "only tcp forwards can set once = true");
        f.cfg.once = *once;
    }
}

// proxy_protocol and the sources it trusts; before the http keys, which read header_timeout
// for a tcp forward that waits for a PROXY header.
void read_proxy_keys(table_reader& r, forward_draft& f, diagnostics& diag)
{
    if (f.has_protocol && f.cfg.proto == protocol::exec) return; // refused by read_exec_keys()
    const auto on = r.boolean("proxy_protocol");
    const toml::node* from = r.find("proxy_protocol_from");
    if (f.has_protocol && f.cfg.proto == protocol::udp) {
        // A datagram has no stream for a header to precede.
        for (const std::string_view key : {"proxy_protocol"sv, "proxy_protocol_from"sv})
            if (r.find(key)) diag.error(r.where(key), std::string{key} + " does not apply to udp forwards");
        return;
    }
    f.cfg.proxy_protocol = on.value_or(false);
    if (from) {
        const toml::array* list = from->as_array();
        if (!list)
            r.error("proxy_protocol_from", R"(expected a list of addresses or networks such as ["10.0.0.0/8", "::1"], found )" +
                                               std::string{describe_type(*from)});
        else if (list->empty())
            r.error("proxy_protocol_from", R"(the list is empty; to trust every source write ["0.0.0.0/0", "::/0"])");
        else
            for (const toml::node& element : *list) {
                const position at = position_of(element.source());
                const auto* text = element.as_string();
                if (!text) {
                    diag.error(at, "proxy_protocol_from: expected a string, found " + std::string{describe_type(element)});
                    continue;
                }
                auto network = proxy::parse_cidr(text->get());
                if (network.value)
                    f.cfg.proxy_protocol_from.push_back(*network.value);
                else
                    diag.error(at, "proxy_protocol_from: " + network.error);
            }
        if (!r.find("proxy_protocol"))
            r.error("proxy_protocol_from", "has no effect without proxy_protocol = true");
    } else if (f.cfg.proxy_protocol) {
        // Trusting every source must be written down: anyone who can reach the port could
        // otherwise claim any client address.
        r.error("proxy_protocol", R"(proxy_protocol = true needs proxy_protocol_from, the balancers allowed to send the header; write ["0.0.0.0/0", "::/0"] to trust every source)");
    }
}

forward_draft read_forward(const toml::table& table, const daemon_config& d, diagnostics& diag)
{
    forward_draft f;
    f.cfg.read_timeout = d.read_timeout;
    f.cfg.idle_timeout = d.idle_timeout;
    f.cfg.call_timeout = d.call_timeout;
    const position header = position_of(table.source());
    f.cfg.line = header.line;
    f.cfg.column = header.column;

    table_reader r{table, diag};
    const std::array elsewhere{other_table{daemon_only_keys, "in [daemon]"}, other_table{app_keys, "in [[app]]"},
                               other_table{top_keys, "at top level"}, other_table{http_map_keys, "in [[forward.map]]"}};
    r.reject_unknown_keys(forward_keys, "in [[forward]]", elsewhere);
    r.require(required_forward_keys, "[[forward]]");

    bool tls = false;
    const std::optional<protocol> proto = read_protocol(r, tls);
    if (proto) {
        f.cfg.proto = *proto;
        f.has_protocol = true;
        if (tls) f.cfg.tls.emplace();
    }

    if (const auto text = r.string("listen")) {
        auto parsed_listen = parse_listen_address(*text);
        if (parsed_listen.value) {
            f.cfg.listen = std::move(*parsed_listen.value);
            f.has_listen = true;
            f.listen_at = r.where("listen");
        } else {
            r.error("listen", std::move(parsed_listen.error));
        }
    }

    if (auto door = r.door_path("door")) {
        f.cfg.door = std::move(*door);
        const position at = r.where("door");
        f.cfg.door_line = at.line;
        f.cfg.door_column = at.column;
    }

    if (auto name = r.name("name")) {
        f.cfg.name = std::move(*name);
        f.explicit_name = true;
        f.name_at = r.where("name");
    } else if (f.has_protocol && f.has_listen) {
        // ':' cannot occur in an explicit name, so a default name never collides with one.
        f.cfg.name = std::string{protocol_name(f.cfg)} + ":" + f.cfg.listen.text;
    }

    if (auto v = r.integer("max_concurrency", 1, max_concurrency_limit))
        f.cfg.max_concurrency = static_cast<unsigned>(*v);
    if (auto v = r.integer("queue", 0, max_queue))
        f.cfg.queue = static_cast<std::size_t>(*v);
    if (auto v = r.duration("read_timeout"))
        f.cfg.read_timeout = *v;
    if (auto v = r.duration("idle_timeout"))
        f.cfg.idle_timeout = *v;
    if (auto v = r.duration("call_timeout"))
        f.cfg.call_timeout = *v;
    read_request_keys(r, f, diag);
    read_proxy_keys(r, f, diag);
    read_exec_keys(r, proto, f.cfg, diag);
    read_tls_keys(r, proto, f.cfg, diag);
    if (auto hold = r.boolean("pass_hold")) {
        if (f.has_protocol && f.cfg.proto != protocol::pass)
            r.error("pass_hold", "only pass forwards hold their calls open; it does not apply to " + std::string{protocol_name(f.cfg)} + " forwards");
        f.cfg.pass_hold = *hold;
    }

    const std::array map_elsewhere{other_table{forward_keys, "in [[forward]]"},
                                   other_table{daemon_only_keys, "in [daemon]"}};
    const bool has_maps = read_http_keys(r, proto, f.cfg, diag, map_elsewhere);
    // With maps, an http forward may leave requests no prefix matches unanswered (404). When
    // the protocol is unknown, maps suggest http was meant, and one error about it is enough.
    const bool may_route = has_maps && (!proto || *proto == protocol::http);
    if (!r.find("door") && !may_route && proto != protocol::exec) {
        if (proto == protocol::http)
            diag.error(header, "[[forward]] has neither \"door\" nor [[forward.map]]; an http forward needs "
                               "at least one of them");
        else
            diag.error(header, "[[forward]] is missing the required key \"door\"");
    }
    return f;
}

std::string describe_conflict(const forward_draft& first, const forward_draft& second)
{
    const listen_address& a = first.cfg.listen;
    const listen_address& b = second.cfg.listen;
    // Forwards of different protocols collide only when one is http and the other tcp; naming
    // the earlier one's protocol explains a clash that would otherwise look like a mistake.
    const bool mixed = first.cfg.proto != second.cfg.proto;
    const std::string proto = mixed ? "" : std::string{to_string(second.cfg.proto)} + " ";
    std::string line = std::to_string(first.listen_at.line);
    if (mixed && (first.cfg.proto == protocol::pass || second.cfg.proto == protocol::pass))
        line += " (" + std::string{first.cfg.proto == protocol::http || first.cfg.proto == protocol::exec ? "an " : "a "} +
                std::string{to_string(first.cfg.proto)} + " forward; http, pass and tcp forwards share the TCP ports)";
    else if (mixed && (first.cfg.proto == protocol::exec || second.cfg.proto == protocol::exec))
        line += std::string{first.cfg.proto == protocol::http   ? " (an http"
                            : first.cfg.proto == protocol::exec ? " (an exec"
                                                                : " (a tcp"} +
                " forward; tcp, http and exec forwards share the TCP ports)";
    else if (mixed)
        line += std::string{first.cfg.proto == protocol::http ? " (an http" : " (a tcp"} +
                " forward; http and tcp forwards share the TCP ports)";
    if (a.text == b.text)
        return "listen: duplicate " + proto + "address " + quote(b.text) + "; first used at line " + line;
    if (a.host == b.host)
        return "listen: " + proto + "address " + quote(b.text) + " is the same as " + quote(a.text) + " at line " + line;
    return "listen: " + proto + "address " + quote(b.text) + " overlaps " + quote(a.text) + " at line " + line;
}

// The socket type a forward binds: http is served over TCP.
bool binds_udp(const forward_config& f) noexcept
{
    return f.proto == protocol::udp;
}

void check_across_forwards(const std::vector<forward_draft>& drafts, diagnostics& diag)
{
    // Only forwards of one transport on one port can collide; bucketing keeps a file with
    // thousands of forwards from taking quadratic time.
    std::map<std::pair<bool, std::uint16_t>, std::vector<const forward_draft*>> by_port;
    std::map<std::string_view, const forward_draft*> by_name;
    for (const forward_draft& f : drafts) {
        if (f.has_protocol && f.has_listen) {
            auto& earlier = by_port[{binds_udp(f.cfg), f.cfg.listen.port}];
            const auto clash = std::find_if(earlier.begin(), earlier.end(), [&f](const forward_draft* e) {
                return listen_addresses_overlap(e->cfg.listen, f.cfg.listen);
            });
            if (clash != earlier.end())
                diag.error(f.listen_at, describe_conflict(**clash, f));
            earlier.push_back(&f);
        }
        if (f.explicit_name) {
            const auto [first, inserted] = by_name.emplace(f.cfg.name, &f);
            if (!inserted)
                diag.error(f.name_at, "name: duplicate name " + quote(f.cfg.name) + "; first used at line " +
                                          std::to_string(first->second->name_at.line));
        }
    }
}

std::vector<forward_draft> read_forwards(const toml::table& root, const daemon_config& d, diagnostics& diag)
{
    std::vector<forward_draft> drafts;
    const toml::node* node = root.get("forward");
    if (!node) {
        diag.error({1, 1}, std::string{no_forwards});
        return drafts;
    }
    for (const toml::table* table : tables_of(*node, "forward", diag))
        drafts.push_back(read_forward(*table, d, diag));
    if (const toml::array* array = node->as_array(); array && array->empty())
        diag.error(position_of(array->source()), std::string{no_forwards});
    check_across_forwards(drafts, diag);
    if (d.metrics_listen) {
        // The metrics listener is one more TCP socket; it must not take a forward's port.
        for (const forward_draft& f : drafts)
            if (f.has_protocol && f.has_listen && !binds_udp(f.cfg) &&
                listen_addresses_overlap(f.cfg.listen, *d.metrics_listen))
                diag.error(f.listen_at, "listen: address " + quote(f.cfg.listen.text) + " overlaps metrics_listen " +
                                            quote(d.metrics_listen->text) + " in [daemon]");
    }
    return drafts;
}

}  // namespace

config draft_config(const toml::table& root, const std::string& source_name, diagnostics& diag)
{
    table_reader top{root, diag};
    const std::array elsewhere{other_table{daemon_keys, "in [daemon]"},
                               other_table{forward_only_keys, "in [[forward]]"}, other_table{app_keys, "in [[app]]"}};
    top.reject_unknown_keys(top_keys, "at top level", elsewhere);

    config cfg;
    cfg.source = source_name;
    const toml::node* daemon_node = root.get("daemon");
    if (daemon_node && !daemon_node->is_table())
        top.error("daemon", "expected a table ([daemon]), found " + std::string{describe_type(*daemon_node)});
    cfg.daemon = read_daemon(daemon_node ? daemon_node->as_table() : nullptr, diag);

    std::vector<forward_draft> drafts = read_forwards(root, cfg.daemon, diag);
    const std::array app_elsewhere{other_table{forward_keys, "in [[forward]]"},
                                   other_table{daemon_only_keys, "in [daemon]"}, other_table{top_keys, "at top level"}};
    cfg.apps = read_apps(root, diag, app_elsewhere);
    for (forward_draft& f : drafts)
        cfg.forwards.push_back(std::move(f.cfg));
    return cfg;
}

config_result validate_config(const toml::table& root, const std::string& source_name)
{
    diagnostics diag{source_name};
    config cfg = draft_config(root, source_name, diag);
    config_result result;
    if (diag.empty())
        result.value = std::move(cfg);
    result.errors = diag.take_sorted();
    return result;
}

}  // namespace portunusd::config_detail
