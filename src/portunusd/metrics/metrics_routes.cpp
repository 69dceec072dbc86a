// SPDX-License-Identifier: MPL-2.0
// Routing the metrics listener's few paths and writing the responses.
#include "portunusd/metrics/metrics_routes.hpp"

#include "portunusd/http/http_error.hpp"
#include "portunusd/metrics/health.hpp"
#include "portunusd/metrics/prometheus.hpp"

#include <optional>

namespace portunusd {

namespace {

constexpr std::string_view text_plain = "text/plain; charset=utf-8";

std::string response(int status, std::string_view content_type, std::string_view body, bool head,
                     std::string_view extra_fields = {})
{
    std::string out;
    out.reserve(160 + (head ? 0 : body.size()));
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += http::reason_phrase(status);
    out += "\r\nContent-Type: ";
    out += content_type;
    out += "\r\nContent-Length: ";
    out += std::to_string(body.size());
    // A scrape or a health check read from a cache would report a state that has passed.
    out += "\r\nCache-Control: no-store\r\n";
    out += extra_fields;
    out += "Connection: close\r\n\r\n";
    if (!head) out += body;
    return out;
}

std::string status_body(int status)
{
    return std::to_string(status) + " " + std::string(http::reason_phrase(status)) + "\n";
}

int hex_digit(char c) noexcept
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/// A path segment with its %XX escapes decoded; nullopt for a malformed escape.
std::optional<std::string> percent_decoded(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        const int hi = hex_digit(s[i + 1]), lo = hex_digit(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

} // namespace

std::string metrics_response(std::string_view method, std::string_view target, const metrics_sources& sources)
{
    const std::string_view path = target.substr(0, target.find('?'));
    constexpr std::string_view health_prefix = "/health/";
    const bool known = path == "/metrics" || path == "/health" ||
                       (path.size() > health_prefix.size() && path.substr(0, health_prefix.size()) == health_prefix);
    if (!known) return response(404, text_plain, status_body(404), method == "HEAD");
    if (method != "GET" && method != "HEAD")
        return response(405, text_plain, status_body(405), false, "Allow: GET, HEAD\r\n");
    const bool head = method == "HEAD";

    if (path == "/metrics") {
        const auto page = render_prometheus(sources.snapshot(), sources.process());
        return response(200, prometheus_content_type, page, head);
    }
    health_verdict verdict;
    if (path == "/health") {
        verdict = daemon_health(sources.snapshot());
    } else {
        const auto name = percent_decoded(path.substr(health_prefix.size()));
        verdict = name ? forward_health(sources.snapshot(), *name) : health_verdict{404, "no such forward\n"};
    }
    return response(verdict.status, text_plain, verdict.body, head);
}

std::string refusal_response(int status)
{
    return response(status, text_plain, status_body(status), false);
}

} // namespace portunusd
