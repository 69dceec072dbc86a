// SPDX-License-Identifier: MPL-2.0
// door_server's moves, the same on every backend: a handle moved over another revokes the old door.
#include <portunus/door.hpp>

namespace portunus {

door_server::door_server(door_server&&) noexcept = default;

door_server& door_server::operator=(door_server&& other) noexcept
{
    if (this != &other) {
        // The old door is revoked (and its calls drained) by `old`'s destructor, after the
        // handle already points at the new one.
        door_server old(std::move(*this));
        impl_ = std::move(other.impl_);
    }
    return *this;
}

} // namespace portunus
