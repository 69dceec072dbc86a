// SPDX-License-Identifier: MPL-2.0
// `portunus status --json`: every field of the snapshot under the name portunus(1) documents.
#include "portunusd/control/control_protocol.hpp"
#include "portunusd/control/json_writer.hpp"
#include "portunusd/control/status_render.hpp"

namespace portunusd {
namespace {

void write_histogram(json_writer& j, const duration_histogram& h)
{
    j.begin_object();
    j.key("bounds");
    j.begin_array();
    for (const double b : call_duration_bounds) j.value(b);
    j.end_array();
    j.key("buckets");
    j.begin_array();
    for (const std::uint64_t n : h.buckets) j.value(n);
    j.end_array();
    j.member("count", h.count);
    j.member("sum_seconds", h.sum_seconds);
    j.end_object();
}

void write_counts(json_writer& j, const forward_counts& c)
{
    j.begin_object();
    j.member("connections", c.connections);
    j.member("connections_open", c.connections_open);
    j.member("requests", c.requests);
    j.member("bytes_in", c.bytes_in);
    j.member("bytes_out", c.bytes_out);
    j.member("timeouts", c.timeouts);
    j.member("door_gone", c.door_gone);
    j.member("interrupted", c.interrupted);
    j.member("queue_full", c.queue_full);
    j.member("too_large", c.too_large);
    j.member("other_errors", c.other_errors);
    j.member("status_400", c.status_400);
    j.member("status_502", c.status_502);
    j.member("status_503", c.status_503);
    j.member("status_504", c.status_504);
    j.member("tls_handshake_failures", c.tls_handshake_failures);
    j.key("call_duration");
    write_histogram(j, c.call_duration);
    j.end_object();
}

void write_door(json_writer& j, const door_snapshot& d)
{
    j.begin_object();
    j.member("path", d.path);
    j.member("state", d.state);
    j.member("server_pid", d.server_pid);
    j.member("in_flight", d.in_flight);
    j.member("peak_in_flight", d.peak_in_flight);
    j.member("queued", d.queued);
    j.member("calls", d.calls);
    j.member("errors", d.errors);
    j.member("reopens", d.reopens);
    j.member("queue_full", d.queue_full);
    j.end_object();
}

void write_forward(json_writer& j, const forward_snapshot& f)
{
    j.begin_object();
    j.member("name", f.name);
    j.member("protocol", f.protocol);
    j.member("listen", f.listen);
    if (f.tls_not_after != 0) j.member("tls_certificate_expiry_unix", f.tls_not_after);
    j.key("counts");
    write_counts(j, f.counts);
    j.key("doors");
    j.begin_array();
    for (const door_snapshot& d : f.doors) write_door(j, d);
    j.end_array();
    j.end_object();
}

void write_app(json_writer& j, const app_snapshot& a)
{
    j.begin_object();
    j.member("name", a.name);
    j.member("door", a.door);
    j.member("state", a.state);
    j.member("pid", a.pid);
    j.member("starts", a.starts);
    j.member("restarts", a.restarts);
    j.member("last_exit", a.last_exit);
    j.end_object();
}

} // namespace

std::string render_status_json(const daemon_snapshot& s)
{
    json_writer j;
    j.begin_object();
    j.member("protocol_version", control_protocol_version);
    j.member("version", s.version);
    j.member("pid", s.pid);
    j.member("uptime_seconds", s.uptime_seconds);
    j.member("start_time_unix", s.start_time_unix);
    j.member("config_file", s.config_file);
    j.member("config_loaded_unix", s.config_loaded_unix);
    j.member("draining", s.draining);
    j.key("forwards");
    j.begin_array();
    for (const forward_snapshot& f : s.forwards) write_forward(j, f);
    j.end_array();
    j.key("apps");
    j.begin_array();
    for (const app_snapshot& a : s.apps) write_app(j, a);
    j.end_array();
    j.end_object();
    return j.str() + "\n";
}

} // namespace portunusd
