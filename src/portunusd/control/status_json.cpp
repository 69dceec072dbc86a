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
    j.key("count");
    j.value(h.count);
    j.key("sum_seconds");
    j.value(h.sum_seconds);
    j.end_object();
}

void write_counts(json_writer& j, const forward_counts& c)
{
    const std::pair<const char*, std::uint64_t> fields[] = {
        {"connections", c.connections},
        {"connections_open", c.connections_open},
        {"requests", c.requests},
        {"bytes_in", c.bytes_in},
        {"bytes_out", c.bytes_out},
        {"timeouts", c.timeouts},
        {"door_gone", c.door_gone},
        {"interrupted", c.interrupted},
        {"queue_full", c.queue_full},
        {"too_large", c.too_large},
        {"other_errors", c.other_errors},
        {"status_400", c.status_400},
        {"status_502", c.status_502},
        {"status_503", c.status_503},
        {"status_504", c.status_504},
    };
    j.begin_object();
    for (const auto& [name, n] : fields) {
        j.key(name);
        j.value(n);
    }
    j.key("call_duration");
    write_histogram(j, c.call_duration);
    j.end_object();
}

void write_door(json_writer& j, const door_snapshot& d)
{
    j.begin_object();
    j.key("path");
    j.value(d.path);
    j.key("state");
    j.value(d.state);
    j.key("server_pid");
    j.value(d.server_pid);
    const std::pair<const char*, std::uint64_t> fields[] = {
        {"in_flight", d.in_flight}, {"peak_in_flight", d.peak_in_flight},
        {"queued", d.queued},       {"calls", d.calls},
        {"errors", d.errors},       {"reopens", d.reopens},
        {"queue_full", d.queue_full},
    };
    for (const auto& [name, n] : fields) {
        j.key(name);
        j.value(n);
    }
    j.end_object();
}

} // namespace

std::string render_status_json(const daemon_snapshot& s)
{
    json_writer j;
    j.begin_object();
    j.key("protocol_version");
    j.value(control_protocol_version);
    j.key("version");
    j.value(s.version);
    j.key("pid");
    j.value(s.pid);
    j.key("uptime_seconds");
    j.value(s.uptime_seconds);
    j.key("start_time_unix");
    j.value(s.start_time_unix);
    j.key("config_file");
    j.value(s.config_file);
    j.key("config_loaded_unix");
    j.value(s.config_loaded_unix);
    j.key("draining");
    j.value(s.draining);
    j.key("forwards");
    j.begin_array();
    for (const forward_snapshot& f : s.forwards) {
        j.begin_object();
        j.key("name");
        j.value(f.name);
        j.key("protocol");
        j.value(f.protocol);
        j.key("listen");
        j.value(f.listen);
        j.key("counts");
        write_counts(j, f.counts);
        j.key("doors");
        j.begin_array();
        for (const door_snapshot& d : f.doors) write_door(j, d);
        j.end_array();
        j.end_object();
    }
    j.end_array();
    j.end_object();
    return j.str() + "\n";
}

} // namespace portunusd
