// SPDX-License-Identifier: MPL-2.0
// The one header an application author needs: serve a door with a handler.
#pragma once

#include <portunus/door.hpp>
#include <portunus/pass.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
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

/// Serves one client connection that a `pass` forward handed over: `socket` is the connected
/// TCP socket, yours to read, write and close (blocking mode, CLOEXEC); `header` says who is
/// at either end (docs/doors.md, "Passed connections"). Its `early` bytes, if any, came first
/// on the stream. An exception that escapes it closes the socket.
using pass_handler = std::function<void(unique_fd socket, const pass_header& header)>;

/// A door handler for pass calls. A call that carries one descriptor and a valid pass header
/// runs `handler`: at once on the door's thread when the forward holds calls (pass_hold), so
/// that the call ends when the handler returns; otherwise on a thread of its own, and the call
/// ends as soon as that thread has the socket. Any other call is refused without running
/// `handler`: its reply is "EPROTO " and the reason, and its descriptors are closed. Handlers
/// running on threads of their own are counted in pass_connections_open().
door_handler pass_door_handler(pass_handler handler);

/// A handler that serves both kinds of call through one door: pass calls (see
/// pass_door_handler) go to `pass`, every other call to `relayed`.
door_handler pass_or_relayed_handler(pass_handler pass, door_handler relayed);

/// Connections handed to handlers on threads of their own that have not returned yet.
std::size_t pass_connections_open() noexcept;

/// serve() for a door behind a `pass` forward. After the stop signal and the calls in flight,
/// it waits, within the same drain limit, for the connections still open in handlers on
/// threads of their own; then returns 0 (or, past the limit, prints that it exits without
/// them and ends the process with _exit(1)).
int serve_connections(const std::string& path, pass_handler handler, door_options options = {},
                      std::chrono::milliseconds drain_limit = serve_drain_limit);
/// The same for a door that also serves relayed calls (an `http` or `tcp` forward) with
/// `relayed` (see pass_or_relayed_handler).
int serve_connections(const std::string& path, pass_handler handler, door_handler relayed,
                      door_options options = {}, std::chrono::milliseconds drain_limit = serve_drain_limit);

} // namespace portunus
