// SPDX-License-Identifier: MPL-2.0
// Rendering the Prometheus text exposition format 0.0.4, one family after another.
#include "portunusd/metrics/prometheus.hpp"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <vector>

namespace portunusd {

namespace {

void append_number(std::string& out, std::uint64_t v)
{
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, static_cast<std::size_t>(r.ptr - buf));
}

void append_number(std::string& out, double v)
{
    if (std::isnan(v)) {
        out += "NaN";
    } else if (std::isinf(v)) {
        out += v > 0 ? "+Inf" : "-Inf";
    } else {
        // The shortest text that reads back as the same double (Go's ParseFloat takes it).
        char buf[32];
        const auto r = std::to_chars(buf, buf + sizeof buf, v);
        out.append(buf, static_cast<std::size_t>(r.ptr - buf));
    }
}

/// Backslash and newline escaped, as HELP text wants them; a label value (`quote`) escapes the
/// double quote as well.
void append_escaped(std::string& out, std::string_view text, bool quote)
{
    for (const char c : text) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (quote && c == '"')
            out += "\\\"";
        else
            out += c;
    }
}

/// Appends families to the page. Every sample of a family must follow its TYPE line before the
/// next family begins, so callers write one family for all forwards before the next.
class page {
public:
    explicit page(std::string& out) : out_(out) {}

    void family(std::string_view name, std::string_view type, std::string_view help)
    {
        out_ += "# HELP ";
        out_ += name;
        out_ += ' ';
        append_escaped(out_, help, false);
        out_ += "\n# TYPE ";
        out_ += name;
        out_ += ' ';
        out_ += type;
        out_ += '\n';
    }

    /// `labels`: the label pairs already escaped and joined (`a="x",b="y"`), or empty.
    template <typename Value>
    void sample(std::string_view name, std::string_view labels, Value value)
    {
        out_ += name;
        if (!labels.empty()) {
            out_ += '{';
            out_ += labels;
            out_ += '}';
        }
        end(value);
    }

    /// The same with one more label, whose value is escaped here.
    template <typename Value>
    void sample(std::string_view name, std::string_view labels, std::string_view key, std::string_view text,
                Value value)
    {
        out_ += name;
        out_ += '{';
        if (!labels.empty()) {
            out_ += labels;
            out_ += ',';
        }
        out_ += key;
        out_ += "=\"";
        append_label_value(out_, text);
        out_ += "\"}";
        end(value);
    }

private:
    template <typename Value>
    void end(Value value)
    {
        out_ += ' ';
        append_number(out_, value);
        out_ += '\n';
    }

    std::string& out_;
};

void append_label(std::string& out, std::string_view key, std::string_view value)
{
    if (!out.empty()) out += ',';
    out += key;
    out += "=\"";
    append_label_value(out, value);
    out += '"';
}

struct counts_family {
    std::string_view name, type, help;
    std::uint64_t forward_counts::*member;
};

// connections_* are left out for udp forwards, which have none.
constexpr std::array<counts_family, 2> connection_families{{
    {"portunusd_forward_connections_total", "counter", "Connections accepted (tcp and http forwards).",
     &forward_counts::connections},
    {"portunusd_forward_connections_open", "gauge", "Connections open now (tcp and http forwards).",
     &forward_counts::connections_open},
}};

constexpr std::array<counts_family, 3> traffic_families{{
    {"portunusd_forward_requests_total", "counter",
     "Requests that reached a door gate: http requests, tcp connections' requests, udp datagrams.",
     &forward_counts::requests},
    {"portunusd_forward_received_bytes_total", "counter", "Bytes read from clients.", &forward_counts::bytes_in},
    {"portunusd_forward_sent_bytes_total", "counter", "Bytes written to clients, the daemon's own answers included.",
     &forward_counts::bytes_out},
}};

struct labelled_count {
    std::string_view label;
    std::uint64_t forward_counts::*member;
};

constexpr std::array<labelled_count, 6> failure_kinds{{
    {"timeout", &forward_counts::timeouts},
    {"door_gone", &forward_counts::door_gone},
    {"interrupted", &forward_counts::interrupted},
    {"queue_full", &forward_counts::queue_full},
    {"too_large", &forward_counts::too_large},
    {"other", &forward_counts::other_errors},
}};

constexpr std::array<labelled_count, 4> daemon_responses{{
    {"4xx", &forward_counts::status_400},
    {"502", &forward_counts::status_502},
    {"503", &forward_counts::status_503},
    {"504", &forward_counts::status_504},
}};

struct door_family {
    std::string_view name, type, help;
    std::uint64_t door_snapshot::*member;
};

constexpr std::array<door_family, 7> door_families{{
    {"portunusd_door_in_flight", "gauge", "Door calls running now.", &door_snapshot::in_flight},
    {"portunusd_door_peak_in_flight", "gauge", "Most door calls running at once since the daemon started.",
     &door_snapshot::peak_in_flight},
    {"portunusd_door_queued", "gauge", "Door calls waiting for a place now.", &door_snapshot::queued},
    {"portunusd_door_calls_total", "counter", "Door calls ended, with an answer or an error.", &door_snapshot::calls},
    {"portunusd_door_errors_total", "counter", "Door calls ended with an error.", &door_snapshot::errors},
    {"portunusd_door_reopens_total", "counter", "Door calls sent again on a door opened again after EBADF.",
     &door_snapshot::reopens},
    {"portunusd_door_queue_full_total", "counter", "Door calls refused because the queue was full.",
     &door_snapshot::queue_full},
}};

constexpr std::array<std::string_view, 4> door_states{"open", "unopened", "missing", "failing"};

/// The le label values, written once.
const std::array<std::string, call_duration_bounds.size() + 1>& bucket_bounds()
{
    static const auto texts = [] {
        std::array<std::string, call_duration_bounds.size() + 1> t;
        // In fixed notation, as Go's clients write these bounds ("0.0001", where the shortest
        // text would be "1e-04"): an le value is part of a series' identity.
        for (std::size_t i = 0; i < call_duration_bounds.size(); ++i) {
            char buf[32];
            const auto r = std::to_chars(buf, buf + sizeof buf, call_duration_bounds[i], std::chars_format::fixed);
            t[i].assign(buf, r.ptr);
        }
        t.back() = "+Inf";
        return t;
    }();
    return texts;
}

void render_daemon(page& p, const daemon_snapshot& s)
{
    std::string labels;
    append_label(labels, "version", s.version);
    p.family("portunusd_build_info", "gauge", "The running daemon's version, in the label; always 1.");
    p.sample("portunusd_build_info", labels, std::uint64_t{1});
    p.family("portunusd_config_last_reload_timestamp_seconds", "gauge",
             "When the running configuration was read, at start or on the last reload (Unix time).");
    p.sample("portunusd_config_last_reload_timestamp_seconds", "", s.config_loaded_unix);
    p.family("portunusd_draining", "gauge", "1 while the daemon drains before it exits, else 0.");
    p.sample("portunusd_draining", "", std::uint64_t{s.draining ? 1u : 0u});
}

void render_forwards(page& p, const daemon_snapshot& s, const std::vector<std::string>& labels)
{
    const auto& forwards = s.forwards;
    p.family("portunusd_forward_info", "gauge", "Each forward with its listen address, in the label; always 1.");
    for (std::size_t i = 0; i < forwards.size(); ++i)
        p.sample("portunusd_forward_info", labels[i], "listen", forwards[i].listen, std::uint64_t{1});

    for (const auto& f : connection_families) {
        p.family(f.name, f.type, f.help);
        for (std::size_t i = 0; i < forwards.size(); ++i)
            if (forwards[i].protocol != "udp") p.sample(f.name, labels[i], forwards[i].counts.*f.member);
    }
    for (const auto& f : traffic_families) {
        p.family(f.name, f.type, f.help);
        for (std::size_t i = 0; i < forwards.size(); ++i) p.sample(f.name, labels[i], forwards[i].counts.*f.member);
    }
    constexpr std::string_view handshakes = "portunusd_forward_tls_handshake_failures_total";
    p.family(handshakes, "counter", "TLS handshakes that failed or ran out of handshake_timeout (tls and https forwards).");
    for (std::size_t i = 0; i < forwards.size(); ++i)
        if (forwards[i].protocol == "tls" || forwards[i].protocol == "https")
            p.sample(handshakes, labels[i], forwards[i].counts.tls_handshake_failures);
    constexpr std::string_view expiry = "portunusd_forward_tls_certificate_expiry_timestamp_seconds";
    p.family(expiry, "gauge", "When the certificate a tls or https forward serves expires (its notAfter).");
    for (std::size_t i = 0; i < forwards.size(); ++i)
        if (forwards[i].tls_not_after != 0)
            p.sample(expiry, labels[i], static_cast<std::uint64_t>(forwards[i].tls_not_after));

    constexpr std::string_view failures = "portunusd_forward_failures_total";
    p.family(failures, "counter",
             "Requests that failed, by kind: timeout (call_timeout), door_gone (missing or revoked), "
             "interrupted (the application died mid-call), queue_full, too_large, other.");
    for (std::size_t i = 0; i < forwards.size(); ++i)
        for (const auto& k : failure_kinds) p.sample(failures, labels[i], "kind", k.label, forwards[i].counts.*k.member);

    constexpr std::string_view responses = "portunusd_forward_daemon_responses_total";
    p.family(responses, "counter",
             "Responses the daemon made itself on http forwards, by code (4xx: every refusal of a request, "
             "malformed, too large or without a route; 502, 503, 504: the door failed).");
    for (std::size_t i = 0; i < forwards.size(); ++i)
        if (forwards[i].protocol == "http")
            for (const auto& c : daemon_responses)
                p.sample(responses, labels[i], "code", c.label, forwards[i].counts.*c.member);

    p.family("portunusd_door_call_duration_seconds", "histogram",
             "Duration of door calls that got an answer or an error, from the gate's admission.");
    const auto& bounds = bucket_bounds();
    for (std::size_t i = 0; i < forwards.size(); ++i) {
        const auto& h = forwards[i].counts.call_duration;
        // The +Inf bucket and _count are the same sum, so they agree even if the counters the
        // snapshot summed moved while it was taken.
        std::uint64_t cumulative = 0;
        for (std::size_t b = 0; b < h.buckets.size(); ++b) {
            cumulative += h.buckets[b];
            p.sample("portunusd_door_call_duration_seconds_bucket", labels[i], "le", bounds[b], cumulative);
        }
        p.sample("portunusd_door_call_duration_seconds_sum", labels[i], h.sum_seconds);
        p.sample("portunusd_door_call_duration_seconds_count", labels[i], cumulative);
    }
}

void render_doors(page& p, const daemon_snapshot& s)
{
    struct door_ref {
        std::string labels;
        const door_snapshot* door;
    };
    std::vector<door_ref> doors;
    for (const auto& f : s.forwards)
        for (const auto& d : f.doors) {
            std::string labels;
            append_label(labels, "forward", f.name);
            append_label(labels, "door", d.path);
            doors.push_back({std::move(labels), &d});
        }

    p.family("portunusd_door_up", "gauge", "1 unless the door is missing or failing (see portunusd_door_state).");
    for (const auto& d : doors)
        p.sample("portunusd_door_up", d.labels,
                 std::uint64_t{d.door->state == "missing" || d.door->state == "failing" ? 0u : 1u});
    p.family("portunusd_door_state", "gauge",
             "The door's state, one series per state, 1 for the current one: open, unopened (not needed yet), "
             "missing (nothing at the path), failing (there, but opening or calling it failed).");
    for (const auto& d : doors)
        for (const auto state : door_states)
            p.sample("portunusd_door_state", d.labels, "state", state, std::uint64_t{d.door->state == state ? 1u : 0u});
    for (const auto& f : door_families) {
        p.family(f.name, f.type, f.help);
        for (const auto& d : doors) p.sample(f.name, d.labels, (*d.door).*f.member);
    }
}

void render_apps(page& p, const daemon_snapshot& s)
{
    if (s.apps.empty()) return;
    std::vector<std::string> labels;
    for (const auto& a : s.apps) {
        std::string l;
        append_label(l, "app", a.name);
        labels.push_back(std::move(l));
    }
    p.family("portunusd_app_up", "gauge", "1 while the app's process serves its door, else 0.");
    for (std::size_t i = 0; i < s.apps.size(); ++i)
        p.sample("portunusd_app_up", labels[i], std::uint64_t{s.apps[i].state == "serving" ? 1u : 0u});
    p.family("portunusd_app_state", "gauge",
             "The app's state, one series per state, 1 for the current one: stopped, starting, serving, "
             "backing_off (waiting to restart after a crash), stopping, idle (stopped by idle_stop).");
    constexpr std::array<std::string_view, 6> states{"stopped", "starting", "serving", "backing_off", "stopping", "idle"};
    for (std::size_t i = 0; i < s.apps.size(); ++i)
        for (const auto state : states)
            p.sample("portunusd_app_state", labels[i], "state", state, std::uint64_t{s.apps[i].state == state ? 1u : 0u});
    p.family("portunusd_app_starts_total", "counter", "Processes of the app started, for any reason.");
    for (std::size_t i = 0; i < s.apps.size(); ++i) p.sample("portunusd_app_starts_total", labels[i], s.apps[i].starts);
    p.family("portunusd_app_restarts_total", "counter", "Processes started again after one exited unasked (a crash).");
    for (std::size_t i = 0; i < s.apps.size(); ++i)
        p.sample("portunusd_app_restarts_total", labels[i], s.apps[i].restarts);
}

void render_process(page& p, const daemon_snapshot& s, const process_stats& ps)
{
    struct process_family {
        std::string_view name, type, help;
        std::optional<double> value;
    };
    const auto start = ps.start_time_unix ? ps.start_time_unix
                       : s.start_time_unix > 0 ? std::optional<double>(s.start_time_unix)
                                                : std::nullopt;
    const std::array<process_family, 7> families{{
        {"process_cpu_seconds_total", "counter", "User and system CPU time spent, in seconds.", ps.cpu_seconds},
        {"process_open_fds", "gauge", "Open file descriptors.", ps.open_fds},
        {"process_max_fds", "gauge", "The limit on open file descriptors (RLIMIT_NOFILE).", ps.max_fds},
        {"process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", ps.virtual_memory_bytes},
        {"process_resident_memory_bytes", "gauge", "Resident memory size in bytes.", ps.resident_memory_bytes},
        {"process_start_time_seconds", "gauge", "When the process started (Unix time).", start},
        {"portunusd_threads", "gauge", "Threads of the daemon process: event loops, caller pool and the rest.",
         ps.threads},
    }};
    for (const auto& f : families) {
        if (!f.value) continue;
        p.family(f.name, f.type, f.help);
        p.sample(f.name, "", *f.value);
    }
}

} // namespace

void append_label_value(std::string& out, std::string_view value)
{
    append_escaped(out, value, true);
}

std::string render_prometheus(const daemon_snapshot& snapshot, const process_stats& process)
{
    std::size_t doors = 0;
    for (const auto& f : snapshot.forwards) doors += f.doors.size();
    std::string out;
    // Roughly what each forward and door takes, so the page grows without copies.
    out.reserve(4096 + snapshot.forwards.size() * 4096 + doors * 1024);

    std::vector<std::string> labels;
    labels.reserve(snapshot.forwards.size());
    for (const auto& f : snapshot.forwards) {
        std::string l;
        append_label(l, "forward", f.name);
        append_label(l, "protocol", f.protocol);
        labels.push_back(std::move(l));
    }

    page p(out);
    render_daemon(p, snapshot);
    render_forwards(p, snapshot, labels);
    render_doors(p, snapshot);
    render_apps(p, snapshot);
    render_process(p, snapshot, process);
    return out;
}

} // namespace portunusd
