// SPDX-License-Identifier: MPL-2.0
// Fuzz target: the LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES reader (service/passed_sockets).
// The input holds the three values separated by NUL bytes; a missing one is an unset variable.
#include "fuzz_check.hpp"

#include "portunusd/service/passed_sockets.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::vector<std::string> parts(1);
    for (std::size_t i = 0; i < size; ++i) {
        if (data[i] == 0)
            parts.emplace_back();
        else
            parts.back().push_back(static_cast<char>(data[i]));
    }
    const auto value = [&](std::size_t i) { return i < parts.size() ? parts[i].c_str() : nullptr; };
    constexpr long own_pid = 4242;
    using portunusd::listen_variables;
    const listen_variables v = portunusd::parse_listen_variables(value(0), value(1), value(2), own_pid);
    switch (v.what) {
    case listen_variables::verdict::none: FUZZ_CHECK(parts.size() < 2); break;
    case listen_variables::verdict::malformed: break;
    case listen_variables::verdict::not_ours: FUZZ_CHECK(v.pid != own_pid); break;
    case listen_variables::verdict::take:
        // Only a count the daemon may act on, and names only when there is one per descriptor.
        FUZZ_CHECK(v.pid == own_pid);
        FUZZ_CHECK(v.count >= 0 && v.count <= listen_variables::most_passed_fds);
        FUZZ_CHECK(v.names.empty() || v.names.size() == static_cast<std::size_t>(v.count));
        FUZZ_CHECK(!(v.names_mismatch && !v.names.empty()));
        break;
    }
    return 0;
}
