// SPDX-License-Identifier: MPL-2.0
// metrics_routes: the response the metrics listener sends for one request, as bytes.
#pragma once

#include "portunusd/metrics/process_stats.hpp"
#include "portunusd/metrics/snapshot.hpp"

#include <functional>
#include <string>
#include <string_view>

namespace portunusd {

/// Where the answers come from. Each is called only for the paths that need it, on the thread
/// that calls metrics_response().
struct metrics_sources {
    std::function<daemon_snapshot()> snapshot;
    std::function<process_stats()> process = read_process_stats;
};

/// The whole HTTP/1.1 response, head and body, to `method` on `target` (origin-form, as
/// normalized by the request parser; a query is ignored):
///  - GET /metrics: 200, the Prometheus page (prometheus_content_type);
///  - GET /health and /health/NAME (NAME percent-decoded): daemon_health(), forward_health();
///  - any other path: 404; a method other than GET and HEAD on a known path: 405 with Allow;
///  - HEAD: the head GET would get, Content-Length included, without the body.
/// Every response says `Connection: close`: one request per connection. Exceptions from the
/// sources pass through to the caller.
std::string metrics_response(std::string_view method, std::string_view target, const metrics_sources& sources);

/// The response to a request refused before it could be routed (400, 413, 414, 431, 501,
/// 505...): the status line, `Connection: close` and a "STATUS Reason" line as the body.
std::string refusal_response(int status);

} // namespace portunusd
