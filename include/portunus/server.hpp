// SPDX-License-Identifier: MPL-2.0
// The one header an application author needs: serve a door with a handler.
#pragma once

#include <portunus/door.hpp>

#include <string>

namespace portunus {

/// Creates a door for `handler`, attaches it at `path` (replacing an older instance atomically)
/// and serves calls on the high-water thread pool until SIGINT or SIGTERM arrives; then revokes
/// the door, lets the calls in flight finish and returns 0. On a start-up failure it prints
/// `PROGRAM: cannot serve PATH: REASON` to stderr and returns 95. Call it from main() before
/// starting other threads: it blocks SIGINT and SIGTERM in the calling thread.
int serve(const std::string& path, door_handler handler, door_options options = {});

} // namespace portunus
