// SPDX-License-Identifier: MPL-2.0
// `portunus status`: the snapshot as a table in the manner of `relayctl show summary`.
#include "portunusd/config/config_values.hpp"
#include "portunusd/control/status_render.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <string_view>
#include <vector>

namespace portunusd {
namespace {

using config_detail::escape_control_bytes;
using row = std::vector<std::string>;

std::string number(std::uint64_t n) { return std::to_string(n); }

std::string pair(std::uint64_t a, std::uint64_t b) { return number(a) + "/" + number(b); }

// "3d 04:05:06" or "04:05:06": wide enough to read at a glance, exact to the second.
std::string uptime_text(double seconds)
{
    const auto total = static_cast<long long>(std::max(0.0, std::floor(seconds)));
    char clock[32];
    std::snprintf(clock, sizeof clock, "%02lld:%02lld:%02lld", total / 3600 % 24, total / 60 % 60, total % 60);
    return total >= 86400 ? std::to_string(total / 86400) + "d " + clock : clock;
}

// "45s", "4m 10s", "2h 3m", "5d 2h": the two largest units are all a reader wants of an age.
std::string age_text(double seconds)
{
    const auto s = static_cast<long long>(std::max(0.0, std::floor(seconds)));
    if (s < 60) return std::to_string(s) + "s";
    if (s < 3600) return std::to_string(s / 60) + "m " + std::to_string(s % 60) + "s";
    if (s < 86400) return std::to_string(s / 3600) + "h " + std::to_string(s / 60 % 60) + "m";
    return std::to_string(s / 86400) + "d " + std::to_string(s / 3600 % 24) + "h";
}

std::string utc_text(double unix_seconds)
{
    const auto t = static_cast<std::time_t>(std::floor(unix_seconds));
    std::tm tm{};
    char text[40];
    if (::gmtime_r(&t, &tm) == nullptr || std::strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        return "?";
    return text;
}

std::vector<std::size_t> column_widths(const std::vector<row>& rows)
{
    std::vector<std::size_t> widths;
    for (const row& r : rows) {
        widths.resize(std::max(widths.size(), r.size()));
        for (std::size_t i = 0; i < r.size(); ++i) widths[i] = std::max(widths[i], r[i].size());
    }
    return widths;
}

// Cells padded to their column's width and two spaces apart; the last cell is not padded, so
// lines carry no trailing blanks.
std::string aligned(const row& r, const std::vector<std::size_t>& widths, std::string_view indent)
{
    std::string line{indent};
    for (std::size_t i = 0; i < r.size(); ++i) {
        line += r[i];
        if (i + 1 < r.size()) line.append(widths[i] - r[i].size() + 2, ' ');
    }
    line += '\n';
    return line;
}

std::uint64_t failures(const forward_counts& c)
{
    return c.timeouts + c.door_gone + c.interrupted + c.queue_full + c.too_large + c.other_errors;
}

row forward_row(const forward_snapshot& f)
{
    std::uint64_t in_flight = 0, peak = 0, queued = 0;
    for (const door_snapshot& d : f.doors) {
        in_flight += d.in_flight;
        peak = std::max(peak, d.peak_in_flight);
        queued += d.queued;
    }
    const forward_counts& c = f.counts;
    const bool connected = f.protocol != "udp";
    return {escape_control_bytes(f.name),
            f.protocol,
            escape_control_bytes(f.listen),
            connected ? pair(c.connections_open, c.connections) : "-",
            number(c.requests),
            pair(in_flight, peak),
            number(queued),
            number(failures(c)),
            pair(c.bytes_in, c.bytes_out)};
}

row door_row(const door_snapshot& d)
{
    return {"door",
            escape_control_bytes(d.path),
            escape_control_bytes(d.state),
            "pid " + (d.server_pid > 0 ? std::to_string(d.server_pid) : std::string{"-"}),
            "calls " + number(d.calls),
            "errors " + number(d.errors),
            "reopens " + number(d.reopens)};
}

// "timeouts 2, door gone 1, answered 502: 1", or empty when nothing failed.
std::string failure_text(const forward_counts& c)
{
    const std::pair<const char*, std::uint64_t> kinds[] = {
        {"timeouts ", c.timeouts},        {"door gone ", c.door_gone},  {"interrupted ", c.interrupted},
        {"queue full ", c.queue_full},    {"too large ", c.too_large},  {"other ", c.other_errors},
        {"answered 4xx: ", c.status_400}, {"answered 502: ", c.status_502},
        {"answered 503: ", c.status_503}, {"answered 504: ", c.status_504},
        {"TLS handshakes failed: ", c.tls_handshake_failures},
    };
    std::string out;
    for (const auto& [label, n] : kinds) {
        if (n == 0) continue;
        if (!out.empty()) out += ", ";
        out += label + number(n);
    }
    return out;
}

row app_row(const app_snapshot& a)
{
    return {escape_control_bytes(a.name),
            escape_control_bytes(a.state),
            a.pid > 0 ? std::to_string(a.pid) : "-",
            number(a.starts),
            number(a.restarts),
            a.last_exit.empty() ? "-" : escape_control_bytes(a.last_exit),
            escape_control_bytes(a.door)};
}

// The supervised applications, after a blank line; nothing when there are none.
std::string apps_text(const std::vector<app_snapshot>& apps)
{
    if (apps.empty()) return {};
    std::vector<row> rows{{"app", "state", "pid", "starts", "restarts", "last exit", "door"}};
    for (const app_snapshot& a : apps) rows.push_back(app_row(a));
    const auto widths = column_widths(rows);
    std::string out = "\n";
    for (const row& r : rows) out += aligned(r, widths, "");
    return out;
}

} // namespace

std::string render_status_text(const daemon_snapshot& s)
{
    std::string out = "portunusd " + escape_control_bytes(s.version) + "  pid " + std::to_string(s.pid) + "  up " +
                      uptime_text(s.uptime_seconds) + "  " + (s.draining ? "draining" : "serving") + "\n";
    const double loaded_ago = s.start_time_unix + s.uptime_seconds - s.config_loaded_unix;
    out += "config " + escape_control_bytes(s.config_file) + "  loaded " + utc_text(s.config_loaded_unix) + " (" +
           age_text(loaded_ago) + " ago)\n\n";
    if (s.forwards.empty()) return out + "no forwards\n" + apps_text(s.apps);

    std::vector<row> forwards{{"forward", "proto", "listen", "conns open/total", "requests", "in flight/peak",
                               "queued", "errors", "bytes in/out"}};
    std::vector<row> doors;
    for (const forward_snapshot& f : s.forwards) {
        forwards.push_back(forward_row(f));
        for (const door_snapshot& d : f.doors) doors.push_back(door_row(d));
    }
    const auto forward_widths = column_widths(forwards);
    const auto door_widths = column_widths(doors);

    out += aligned(forwards.front(), forward_widths, "");
    std::size_t next_door = 0;
    for (std::size_t i = 0; i < s.forwards.size(); ++i) {
        out += aligned(forwards[i + 1], forward_widths, "");
        for (std::size_t k = 0; k < s.forwards[i].doors.size(); ++k) out += aligned(doors[next_door++], door_widths, "  ");
        if (const std::string f = failure_text(s.forwards[i].counts); !f.empty()) out += "  failures: " + f + "\n";
    }
    return out + apps_text(s.apps);
}

} // namespace portunusd
