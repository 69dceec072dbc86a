// SPDX-License-Identifier: MPL-2.0
// The exec part of [[forward]]: the program each connection is handed to, and its account.
#include "portunusd/config/config_parse_exec.hpp"

#include "portunusd/config/config_parse_app.hpp"

#include <string>

namespace portunusd::config_detail {
namespace {

using namespace std::string_view_literals;

// What an exec forward does not do: it neither calls a door nor reads the connection, and a
// PROXY header would have to be read by the daemon before the program starts.
constexpr std::array refused_on_exec{
    "door"sv, "max_request"sv, "once"sv, "proxy_protocol"sv, "proxy_protocol_from"sv, "read_timeout"sv, "idle_timeout"sv,
};

std::string why_refused(std::string_view key)
{
    if (key == "door") return "door does not apply to exec forwards; the connection goes to \"command\"";
    if (key == "proxy_protocol" || key == "proxy_protocol_from")
        return std::string{key} + " does not apply to exec forwards; the program gets the connection as accepted";
    if (key == "read_timeout" || key == "idle_timeout")
        return std::string{key} + " does not apply to exec forwards; the program reads the connection itself, "
                                  "and call_timeout bounds its whole run";
    return std::string{key} + " does not apply to exec forwards; the program reads the connection itself";
}

}  // namespace

void read_exec_keys(table_reader& r, std::optional<protocol> proto, forward_config& f, diagnostics& diag)
{
    if (proto && *proto != protocol::exec) {
        for (std::string_view key : exec_forward_keys) {
            if (!r.find(key)) continue;
            // inetd's "wait" services (one program takes the udp socket itself) are not served.
            if (*proto == protocol::udp)
                diag.error(r.where(key), std::string{key} + " does not apply to udp forwards; exec forwards "
                                                            "serve TCP connections only (protocol = \"exec\")");
            else
                diag.error(r.where(key), std::string{key} + " applies only to exec forwards (protocol = \"exec\"); " +
                                             (key == "command" ? "a program the daemon keeps running is an [[app]]"
                                                               : "the daemon's own account is set in [daemon]"));
        }
        return;
    }
    if (proto)
        for (std::string_view key : refused_on_exec)
            if (r.find(key)) diag.error(r.where(key), why_refused(key));
    if (auto command = read_command(r, diag, f.command_at))
        f.command = std::move(*command);
    else if (proto && !r.find("command"))
        diag.error(position{f.line, f.column}, "[[forward]] is missing the required key \"command\"; an exec "
                                               "forward runs it for each connection");
    if (auto user = r.account("user")) {
        f.user = std::move(user);
        f.user_at = file_position_of(r.where("user"));
    }
    if (auto group = r.account("group")) {
        f.group = std::move(group);
        f.group_at = file_position_of(r.where("group"));
    }
}

}  // namespace portunusd::config_detail
