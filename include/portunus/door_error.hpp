// SPDX-License-Identifier: MPL-2.0
// Door error codes: errno values with their illumos door meanings.
#pragma once

#include <cerrno>
#include <system_error>

namespace portunus {

/// The category of every error a door operation reports. Values are errno numbers and keep the
/// meanings door_call(3C) gives them:
///   EBADF     no server at the door, or the door was revoked (nothing ran; safe to reopen and retry)
///   EINTR     the server died or its thread quit mid-call (the call may have run)
///   E2BIG     too many descriptors (more than 253 on the uds backend)
///   ENOTSUP   descriptors sent to a door created with refuse_descriptors
///   EAGAIN    no server thread could be had
///   EPROTO    the peer speaks another door protocol version or sent a malformed message
///   ETIMEDOUT the call's deadline passed before a reply came (uds backend only)
/// Each value compares equal to the matching std::errc.
const std::error_category& door_category() noexcept;

/// Makes a door error_code from an errno value.
inline std::error_code make_door_error(int errno_value) noexcept
{
    return {errno_value, door_category()};
}

} // namespace portunus
