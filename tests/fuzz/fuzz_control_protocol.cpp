// SPDX-License-Identifier: MPL-2.0
// libFuzzer target: any bytes given to the control protocol's parsers (request and reply), the
// command runner and the JSON writer yield a value or a one-line error, read back what they
// write, and never produce invalid JSON or a line break where one line is promised.
#include "fuzz_check.hpp"
#include "portunusd/control/control_commands.hpp"
#include "portunusd/control/control_protocol.hpp"
#include "portunusd/control/json_writer.hpp"
#include "portunusd/control/status_render.hpp"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>


namespace {

using namespace portunusd;

bool one_safe_line(std::string_view s)
{
    return std::none_of(s.begin(), s.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
}

// The length of the UTF-8 sequence at the start of `s` if it is valid (RFC 3629), else 0.
std::size_t utf8_length(std::string_view s)
{
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const unsigned char c = b(0);
    if (c < 0x80) return 1;
    const std::size_t n = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
    if (n == 0 || c > 0xF4 || s.size() < n) return 0;
    for (std::size_t i = 1; i < n; ++i)
        if ((b(i) & 0xC0) != 0x80) return 0;
    const std::uint32_t code = n == 2   ? (c & 0x1Fu) << 6 | (b(1) & 0x3Fu)
                               : n == 3 ? (c & 0x0Fu) << 12 | (b(1) & 0x3Fu) << 6 | (b(2) & 0x3Fu)
                                        : (c & 0x07u) << 18 | (b(1) & 0x3Fu) << 12 | (b(2) & 0x3Fu) << 6 | (b(3) & 0x3Fu);
    const std::uint32_t least = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
    if (code < least || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF)) return 0;
    return n;
}

// A JSON string literal: quotes around valid UTF-8 with no raw control byte, and escapes that
// RFC 8259 allows. Returns the bytes the literal spans, or 0.
std::size_t json_string_length(std::string_view s)
{
    if (s.empty() || s[0] != '"') return 0;
    std::size_t i = 1;
    while (i < s.size()) {
        const auto c = static_cast<unsigned char>(s[i]);
        if (c == '"') return i + 1;
        if (c < 0x20) return 0;
        if (c == '\\') {
            if (i + 1 >= s.size()) return 0;
            const char e = s[i + 1];
            if (e == 'u') {
                if (i + 6 > s.size()) return 0;
                for (std::size_t k = i + 2; k < i + 6; ++k)
                    if (!std::isxdigit(static_cast<unsigned char>(s[k]))) return 0;
                i += 6;
                continue;
            }
            if (std::string_view{"\"\\/bfnrt"}.find(e) == std::string_view::npos) return 0;
            i += 2;
            continue;
        }
        const std::size_t n = utf8_length(s.substr(i));
        if (n == 0) return 0;
        i += n;
    }
    return 0;
}

void check_request(std::string_view bytes)
{
    const auto parsed = parse_control_request(bytes);
    FUZZ_CHECK(parsed.value.has_value() == parsed.error.empty());
    if (!parsed.value) {
        FUZZ_CHECK(one_safe_line(parsed.error));
        return;
    }
    FUZZ_CHECK(bytes.size() <= control_max_request);
    const std::string wire = format_control_request(*parsed.value);
    const auto again = parse_control_request(wire);
    FUZZ_CHECK(again.value && *again.value == *parsed.value);
    if (parsed.value->drain) FUZZ_CHECK(*parsed.value->drain <= control_max_drain);
}

void check_reply(std::string_view bytes)
{
    const auto parsed = parse_control_reply(bytes);
    FUZZ_CHECK(int{parsed.value.has_value()} + int{!parsed.foreign_version.empty()} + int{!parsed.error.empty()} == 1);
    FUZZ_CHECK(one_safe_line(parsed.error) && one_safe_line(parsed.foreign_version) && one_safe_line(parsed.summary));
    if (!parsed.value) return;
    FUZZ_CHECK(one_safe_line(parsed.value->summary));
    const auto again = parse_control_reply(format_control_reply(*parsed.value));
    FUZZ_CHECK(again.value && *again.value == *parsed.value);
}

// The request runs against a server that answers everything at once.
void check_answer(std::string_view bytes, const daemon_snapshot& snapshot)
{
    const reload_report report{bytes.size() % 2 == 0, {std::string{bytes}}, {std::string{bytes}}, {}, {}, {}};
    const control_actions actions{[&](std::chrono::milliseconds) { return std::optional{snapshot}; },
                                  [&](std::chrono::milliseconds) { return std::optional{report}; },
                                  [](std::optional<std::chrono::milliseconds>, std::chrono::milliseconds) {
                                      return true;
                                  },
                                  [](const std::string& app, std::chrono::milliseconds) {
                                      return std::optional<bool>{app.size() % 2 == 0};
                                  }};
    const control_reply reply = answer_control_request(bytes, actions, 1);
    FUZZ_CHECK(one_safe_line(reply.summary));
    const auto parsed = parse_control_reply(format_control_reply(reply));
    FUZZ_CHECK(parsed.value && parsed.value->status == reply.status && parsed.value->body == reply.body);
}

void check_json(std::string_view bytes, const daemon_snapshot& snapshot)
{
    const std::string literal = json_escape(bytes);
    FUZZ_CHECK(json_string_length(literal) == literal.size());
    const std::string document = render_status_json(snapshot);
    FUZZ_CHECK(!document.empty() && document.back() == '\n');
    FUZZ_CHECK(document.find('\n') == document.size() - 1);
    // Every string the document holds (names, paths, the version) is a valid literal.
    for (std::size_t at = document.find('"'); at != std::string::npos;) {
        const std::size_t n = json_string_length(std::string_view{document}.substr(at));
        FUZZ_CHECK(n > 0);
        at = document.find('"', at + n);
    }
    const std::string text = render_status_text(snapshot);
    // Text from the configuration cannot start a line of its own or reach the terminal raw.
    FUZZ_CHECK(std::count(text.begin(), text.end(), '\n') == 7);
    FUZZ_CHECK(std::none_of(text.begin(), text.end(), [](char c) { return c == '\x1b' || c == '\r' || c == '\0'; }));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view bytes{reinterpret_cast<const char*>(data), size};
    check_request(bytes);
    check_reply(bytes);

    daemon_snapshot s;
    s.version = std::string{bytes.substr(0, 16)};
    s.config_file = std::string{bytes};
    s.uptime_seconds = static_cast<double>(size) * 1e3;
    forward_snapshot f{std::string{bytes}, "tcp", std::string{bytes.substr(size / 2)}, {}, {}};
    f.doors.push_back({std::string{bytes}, "open", 1, 0, 0, 0, 0, 0, 0, 0});
    f.counts.timeouts = size + 1; // a failures line, always
    s.forwards.push_back(f);
    check_answer(bytes, s);
    check_json(bytes, s);
    return 0;
}
