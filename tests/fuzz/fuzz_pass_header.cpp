// SPDX-License-Identifier: MPL-2.0
// libFuzzer target for the pass header parser: a verdict for every input, round trips of what
// parses, and every prefix of a header refused.
#include "fuzz_check.hpp"

#include <portunus/pass.hpp>

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const auto parsed = portunus::parse_pass_header(input);
    FUZZ_CHECK(parsed.value.has_value() == parsed.error.empty());
    if (!parsed.value) return 0;
    const auto& h = *parsed.value;
    FUZZ_CHECK(h.peer.family == 4 || h.peer.family == 6);
    FUZZ_CHECK(h.local.family == 4 || h.local.family == 6);
    FUZZ_CHECK(h.forward.size() <= portunus::pass_max_name);
    FUZZ_CHECK(h.early.size() <= input.size());
    // What parses serializes to a header that parses to the same value (the bytes may differ
    // only in fields a later version added, which are skipped).
    const auto again = portunus::parse_pass_header(portunus::serialize_pass_header(h));
    FUZZ_CHECK(again.value && *again.value == h);
    // The header without its early bytes, cut anywhere, is never a header.
    const std::size_t header_length = input.size() - h.early.size();
    for (std::size_t n = 0; n < header_length; ++n)
        FUZZ_CHECK(!portunus::parse_pass_header(input.substr(0, n)).value);
    return 0;
}
