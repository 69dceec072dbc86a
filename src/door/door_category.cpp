// SPDX-License-Identifier: MPL-2.0
// The door error category: errno values explained in door terms.
#include <portunus/door_error.hpp>

#include <cstring>
#include <string>

namespace portunus {
namespace {

class door_error_category final : public std::error_category {
public:
    const char* name() const noexcept override { return "door"; }

    std::string message(int value) const override
    {
        switch (value) {
        case EBADF: return "no server at the door, or the door was revoked";
        case EINTR: return "the door server died or abandoned the call";
        case E2BIG: return "too many descriptors for one door call";
        case ENOTSUP: return "the door refuses descriptors";
        case EAGAIN: return "no door server thread available";
        case EPROTO: return "malformed door message";
        case EPROTONOSUPPORT: return "the door peer speaks another protocol version";
        case ETIMEDOUT: return "the door call timed out";
        case ENOENT: return "no such door";
        default: return std::strerror(value);
        }
    }

    // Values are errno numbers, so each maps onto the generic condition of the same number and
    // compares equal to the matching std::errc.
    std::error_condition default_error_condition(int value) const noexcept override
    {
        return {value, std::generic_category()};
    }
};

} // namespace

const std::error_category& door_category() noexcept
{
    static const door_error_category category;
    return category;
}

} // namespace portunus
