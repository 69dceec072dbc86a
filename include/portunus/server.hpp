// SPDX-License-Identifier: MPL-2.0
// The one header an application author needs: serve a door with a handler.
#pragma once

#include <portunus/door.hpp>

#include <chrono>
#include <string>

namespace portunus {

/// How long serve() waits, after a stop signal, for the calls in flight.
inline constexpr std::chrono::milliseconds serve_drain_limit{30'000};

/// Creates a door for `handler`, attaches it at `path` (replacing an older instance) and serves
/// calls on the high-water thread pool until SIGINT or SIGTERM arrives; then revokes the door,
/// lets the calls in flight finish and returns 0. A call still running after `drain_limit`
/// (default serve_drain_limit), or when a second SIGINT or SIGTERM comes, is given up on: it
/// prints `PROGRAM: ... exiting without them` and ends the process with _exit(1). On a start-up
/// failure it prints `PROGRAM: cannot serve PATH: REASON` to stderr and returns 96 (SMF's
/// "configuration" status: the operator must act; a restart would fail alike). Call it from
/// main() before starting other threads: it blocks SIGINT and SIGTERM in the calling thread.
int serve(const std::string& path, door_handler handler, door_options options = {});
int serve(const std::string& path, door_handler handler, door_options options,
          std::chrono::milliseconds drain_limit);

} // namespace portunus
