// SPDX-License-Identifier: MPL-2.0
// What the illumos door client and server share: descriptor adoption and door_info(3C) mapping.
#pragma once

#include <portunus/door.hpp>

#include <door.h>
#include <fcntl.h>

#include <vector>

namespace portunus::illumos {

/// door_info_t in portable form. Only the attribute bits both backends report are kept, so a
/// caller sees the same bits whichever backend it was built with.
inline door_info to_portable(const door_info_t& di) noexcept
{
    door_info out;
    out.target = di.di_target;
    out.attributes = di.di_attributes & (door_attr_local | door_attr_revoked | door_attr_refuse_desc);
    out.uniquifier = di.di_uniquifier;
    return out;
}

/// Takes ownership of the descriptors the kernel installed for a call or a reply and appends
/// them to `out`. Every descriptor is owned (or closed) when this returns or throws.
inline void adopt_descriptors(const door_desc_t* descs, uint_t count, std::vector<unique_fd>& out)
{
    try {
        out.reserve(out.size() + count);
    } catch (...) {
        for (uint_t i = 0; i < count; ++i)
            if (descs[i].d_attributes & DOOR_DESCRIPTOR) unique_fd closing(descs[i].d_data.d_desc.d_descriptor);
        throw;
    }
    for (uint_t i = 0; i < count; ++i) {
        if (!(descs[i].d_attributes & DOOR_DESCRIPTOR)) continue;
        unique_fd fd(descs[i].d_data.d_desc.d_descriptor);
        // The kernel installs passed descriptors without FD_CLOEXEC. Setting it here leaves a
        // short window for a concurrent fork()+exec(), which no door interface lets us close.
        ::fcntl(fd.get(), F_SETFD, FD_CLOEXEC);
        out.push_back(std::move(fd)); // cannot throw: the capacity is reserved
    }
}

} // namespace portunus::illumos
