// SPDX-License-Identifier: MPL-2.0
// libFuzzer target: any bytes given to the configuration parser yield a valid config or errors
// that point into the file, never an exception, a crash or an out-of-range value.
#include "fuzz_check.hpp"
#include "portunusd/config/config.hpp"
#include "portunusd/config/config_values.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>
#include <string_view>


namespace {

const std::string source = "fuzz.toml";

void check_errors(const portunusd::config_result& r)
{
    using portunusd::config_error;
    FUZZ_CHECK(std::is_sorted(r.errors.begin(), r.errors.end(), [](const config_error& a, const config_error& b) {
        return a.line != b.line ? a.line < b.line : a.column < b.column;
    }));
    for (const config_error& e : r.errors) {
        FUZZ_CHECK(e.source == source);
        FUZZ_CHECK(e.line >= 1);
        FUZZ_CHECK(e.column >= 1);
        FUZZ_CHECK(!e.message.empty());
        // Messages go to terminals and logs: the input's control bytes must arrive escaped.
        FUZZ_CHECK(std::none_of(e.message.begin(), e.message.end(), [](char c) {
            return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
        }));
        FUZZ_CHECK(e.to_string().rfind(source + ":", 0) == 0);
    }
}

void check_door(const std::string& door)
{
    FUZZ_CHECK(!door.empty() && door.front() == '/' && door.back() != '/' && door.size() <= portunusd::max_door_path);
    FUZZ_CHECK(door.find('\0') == std::string::npos);
}

void check_http(const portunusd::forward_config& f)
{
    using namespace std::chrono_literals;
    FUZZ_CHECK(f.max_header_bytes >= 1024 && f.max_header_bytes <= 1024 * 1024);
    FUZZ_CHECK(f.max_headers >= 1 && f.max_headers <= 1000);
    FUZZ_CHECK(f.max_body <= 1024u * 1024 * 1024);
    FUZZ_CHECK(f.header_timeout >= 1ms && f.header_timeout <= 24h);
    FUZZ_CHECK(f.max_requests >= 1 && f.max_requests <= 1'000'000);
    std::set<std::pair<std::string, std::string>> routes;  // (prefix without a trailing "/", method)
    for (const portunusd::http_map& m : f.maps) {
        check_door(m.door);
        FUZZ_CHECK(m.line >= f.line && m.door_line >= m.line);
        FUZZ_CHECK(!m.prefix.empty() && m.prefix.front() == '/');
        FUZZ_CHECK(m.prefix.find_first_of("?# ") == std::string::npos);
        std::string key = m.prefix;
        if (key.size() > 1 && key.back() == '/')
            key.pop_back();
        for (const std::string& method : m.methods) {
            FUZZ_CHECK(!method.empty() && method != "*");
            FUZZ_CHECK(std::none_of(method.begin(), method.end(), [](char c) { return c >= 'a' && c <= 'z'; }));
        }
        // No two maps of one prefix may share a method, or both take any method.
        if (m.methods.empty())
            FUZZ_CHECK(routes.emplace(key, "*").second);
        for (const std::string& method : m.methods)
            FUZZ_CHECK(routes.emplace(key, method).second);
    }
}

void check_config(const portunusd::config& cfg)
{
    using namespace std::chrono_literals;
    using portunusd::protocol;
    const auto in_range = [](std::chrono::milliseconds d) { return d >= 1ms && d <= 24h; };

    FUZZ_CHECK(cfg.source == source);
    const portunusd::daemon_config& d = cfg.daemon;
    FUZZ_CHECK(d.threads >= 1 && d.threads <= 64);
    FUZZ_CHECK(d.max_connections >= 1 && d.max_connections <= 1'000'000);
    FUZZ_CHECK(d.drain_timeout >= 0ms && d.drain_timeout <= 24h);
    FUZZ_CHECK(in_range(d.read_timeout) && in_range(d.idle_timeout) && in_range(d.call_timeout));
    FUZZ_CHECK(!d.user || !d.user->empty());
    FUZZ_CHECK(!d.group || !d.group->empty());
    FUZZ_CHECK(d.access_log == "off" || d.access_log == "stderr" || d.access_log == "syslog" ||
               d.access_log.front() == '/');

    FUZZ_CHECK(!cfg.forwards.empty());
    std::set<std::string> names;
    for (const portunusd::forward_config& f : cfg.forwards) {
        FUZZ_CHECK(names.insert(f.name).second);
        // Only an http forward that routes with maps may go without a catch-all door, and an
        // exec forward has a program instead of one.
        if (f.door.empty())
            FUZZ_CHECK((f.proto == protocol::http && !f.maps.empty()) || f.proto == protocol::exec);
        else
            check_door(f.door);
        if (f.proto == protocol::exec) {
            FUZZ_CHECK(f.door.empty() && !f.command.empty() && f.command.front().front() == '/');
            FUZZ_CHECK(!f.once && !f.proxy_protocol);
            for (const std::string& arg : f.command) FUZZ_CHECK(arg.find('\0') == std::string::npos);
        } else {
            FUZZ_CHECK(f.command.empty() && !f.user && !f.group);
        }
        FUZZ_CHECK(f.listen.port >= 1);
        FUZZ_CHECK(!f.listen.host.empty());
        FUZZ_CHECK(f.max_concurrency >= 1 && f.max_concurrency <= 4096);
        FUZZ_CHECK(f.queue <= 1'000'000);
        FUZZ_CHECK(in_range(f.read_timeout) && in_range(f.idle_timeout) && in_range(f.call_timeout));
        FUZZ_CHECK(f.max_request >= 1 && f.max_request <= 64u * 1024 * 1024);
        if (f.proto == protocol::udp) {
            FUZZ_CHECK(f.max_request <= portunusd::max_udp_request);
            FUZZ_CHECK(!f.once);
        }
        FUZZ_CHECK(f.line >= 1 && (f.door.empty() || f.door_line >= f.line));
        if (f.proto == protocol::http) {
            FUZZ_CHECK(!f.once);
            check_http(f);
        } else {
            FUZZ_CHECK(f.maps.empty());
        }
    }

    // Apps: what the supervisor relies on, and no two sharing a name or a door.
    std::set<std::string> app_names, app_doors;
    for (const portunusd::app_config& a : cfg.apps) {
        FUZZ_CHECK(app_names.insert(a.name).second);
        FUZZ_CHECK(a.instances >= 1 && a.instances <= 64);
        for (const auto& door : portunusd::app_instance_doors(a)) {
            check_door(door);
            FUZZ_CHECK(app_doors.insert(door).second);
        }
        FUZZ_CHECK(!a.command.empty() && !a.command.front().empty() && a.command.front().front() == '/');
        for (const auto& arg : a.command) FUZZ_CHECK(arg.find('\0') == std::string::npos);
        FUZZ_CHECK(a.restart_delay <= a.restart_max_delay);
        FUZZ_CHECK(a.start == portunusd::app_start::on_demand || a.idle_stop == 0ms);
        FUZZ_CHECK(!a.working_directory.empty() && a.working_directory.front() == '/');
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view text{reinterpret_cast<const char*>(data), size};
    portunusd::config_result r;
    try {
        r = portunusd::parse_config_string(text, source);
    } catch (...) {
        // Every problem in a file must come back as an error, whatever the bytes.
        std::fprintf(stderr, "parse_config_string threw\n");
        std::abort();
    }
    FUZZ_CHECK(r.value.has_value() == r.errors.empty());
#if !TOML_HEADER_ONLY
    // Linked against the separately built library, toml++ can be asked directly: the guard that
    // shields it from inputs it mishandles must never refuse a document it accepts. (Header-only
    // builds with assertions would abort here on exactly those inputs, so they skip this.)
    if (portunusd::config_detail::find_toml_defect(text)) {
        bool accepted = true;
        try {
            static_cast<void>(toml::parse(text));
        } catch (const toml::parse_error&) {
            accepted = false;
        }
        FUZZ_CHECK(!accepted);
    }
#endif
    check_errors(r);
    if (r.value)
        check_config(*r.value);
    return 0;
}
