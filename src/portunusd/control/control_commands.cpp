// SPDX-License-Identifier: MPL-2.0
// The control commands: status, status-json, reload and stop, each worded as a reply.
#include "portunusd/control/control_commands.hpp"

#include "portunusd/config/config_values.hpp"
#include "portunusd/control/status_render.hpp"

namespace portunusd {
namespace {

using config_detail::escape_control_bytes;
using config_detail::format_duration;

control_reply error_reply(std::string summary) { return {control_status::error, std::move(summary), {}}; }

std::string names_line(std::string_view prefix, const std::vector<std::string>& names)
{
    std::string line{prefix};
    if (names.empty()) line += "(none)";
    for (std::size_t i = 0; i < names.size(); ++i) line += (i ? ", " : "") + escape_control_bytes(names[i]);
    return line + "\n";
}

std::string did_not_answer(std::chrono::milliseconds deadline)
{
    return "the daemon did not answer within " + format_duration(deadline) + " (it may be stopping)";
}

control_reply status(const control_actions& actions, bool json)
{
    if (!actions.status) return error_reply("this daemon cannot report its status");
    const auto snapshot = actions.status(control_status_deadline);
    if (!snapshot) return error_reply(did_not_answer(control_status_deadline));
    return {control_status::ok, {}, json ? render_status_json(*snapshot) : render_status_text(*snapshot)};
}

control_reply reload(const control_actions& actions)
{
    if (!actions.reload) return error_reply("this daemon cannot reload");
    const auto report = actions.reload(control_reload_deadline);
    if (!report)
        return error_reply("the reload did not finish within " + format_duration(control_reload_deadline) +
                           "; it may still take effect (see the daemon's log)");
    return reload_reply(*report);
}

control_reply stop(const control_actions& actions, const control_request& request, long pid)
{
    if (!actions.stop) return error_reply("this daemon cannot be stopped over its control door");
    if (!actions.stop(request.drain, control_stop_deadline))
        return error_reply("the daemon did not begin to stop within " + format_duration(control_stop_deadline));
    return {control_status::ok, {}, "stopping pid " + std::to_string(pid) + "\n"};
}

control_reply restart(const control_actions& actions, const control_request& request)
{
    if (!actions.restart) return error_reply("this daemon cannot restart apps over its control door");
    const auto found = actions.restart(request.app, control_stop_deadline);
    if (!found) return error_reply("the daemon did not answer within " + format_duration(control_stop_deadline));
    if (!*found) return error_reply("no [[app]] named " + config_detail::quote(request.app));
    return {control_status::ok, {}, "restarting " + request.app + "\n"};
}

} // namespace

std::string control_refusal(uid_t daemon_euid)
{
    return "permission denied: only root and uid " + std::to_string(daemon_euid) + " may use this control door";
}

control_reply answer_control_request(std::string_view bytes, const control_actions& actions, long pid)
{
    const control_request_parse parsed = parse_control_request(bytes);
    if (!parsed.value) return error_reply(parsed.error);
    return run_control_request(*parsed.value, actions, pid);
}

control_reply run_control_request(const control_request& request, const control_actions& actions, long pid)
{
    switch (request.command) {
    case control_command::status: return status(actions, false);
    case control_command::status_json: return status(actions, true);
    case control_command::reload: return reload(actions);
    case control_command::stop: return stop(actions, request, pid);
    case control_command::restart: return restart(actions, request);
    }
    return error_reply("unknown command");
}

control_reply reload_reply(const reload_report& report)
{
    control_reply reply;
    if (!report.ok) {
        reply.status = control_status::error;
        reply.summary = "reload refused: " + std::to_string(report.errors.size()) +
                        " error(s); the running configuration is kept";
        for (const std::string& e : report.errors) reply.body += std::string{reload_error} + escape_control_bytes(e) + "\n";
        return reply;
    }
    reply.body = names_line(reload_added, report.added) + names_line(reload_changed, report.changed) +
                 names_line(reload_removed, report.removed);
    if (!report.bind_errors.empty()) {
        reply.status = control_status::error;
        reply.summary = "reload applied, but " + std::to_string(report.bind_errors.size()) +
                        " forward(s) could not be bound";
        for (const std::string& e : report.bind_errors) reply.body += std::string{reload_not_bound} + escape_control_bytes(e) + "\n";
    }
    return reply;
}

} // namespace portunusd
