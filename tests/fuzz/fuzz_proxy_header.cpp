// SPDX-License-Identifier: MPL-2.0
// libFuzzer target for the PROXY header parser and the CIDR parser: verdicts independent of how
// bytes arrive, lengths within the input and the bounds, the stream behind a header untouched,
// and CIDR text that parses back to itself.
#include "fuzz_check.hpp"
#include "portunusd/proxy/address_set.hpp"
#include "portunusd/proxy/proxy_header.hpp"

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

namespace {

using namespace portunusd::proxy;

void check_header(std::string_view input)
{
    const parse_result whole = parse_header(input);
    if (whole.status == parse_status::complete) {
        FUZZ_CHECK(whole.length > 0 && whole.length <= input.size() && whole.length <= max_header_length);
        FUZZ_CHECK(whole.value.version == 1 || whole.value.version == 2);
        if (whole.value.version == 1) FUZZ_CHECK(whole.length <= max_v1_length);
        if (whole.value.has_addresses) {
            FUZZ_CHECK(whole.value.source.fam != family::none);
            FUZZ_CHECK(whole.value.source.fam == whole.value.destination.fam);
        }
        // The header is found in its own bytes, and bytes behind it change nothing.
        const parse_result alone = parse_header(input.substr(0, whole.length));
        FUZZ_CHECK(alone.status == parse_status::complete && alone.length == whole.length &&
                   alone.value == whole.value);
    } else if (whole.status == parse_status::error) {
        FUZZ_CHECK(!whole.error.empty());
    }
    // A session feeds the parser everything received so far: every prefix of a header asks for
    // more, and no prefix of an input that fails is complete. Bounded, as the session's reads are.
    const std::size_t limit = std::min<std::size_t>(input.size(), max_header_length + 1);
    for (std::size_t n = 0; n < limit; ++n) {
        const parse_result part = parse_header(input.substr(0, n));
        if (whole.status == parse_status::complete && n < whole.length)
            FUZZ_CHECK(part.status == parse_status::need_more);
        if (whole.status == parse_status::error) FUZZ_CHECK(part.status != parse_status::complete);
        if (part.status == parse_status::error) FUZZ_CHECK(whole.status == parse_status::error);
    }
    if (whole.status == parse_status::need_more) FUZZ_CHECK(input.size() < max_header_length);
}

void check_cidr(std::string_view input)
{
    const std::string_view line = input.substr(0, std::min<std::size_t>(input.find('\n'), 80));
    const parsed_cidr p = parse_cidr(line);
    FUZZ_CHECK(p.value.has_value() == p.error.empty());
    if (!p.value) return;
    FUZZ_CHECK(p.value->prefix <= (p.value->v6 ? 128U : 32U));
    const parsed_cidr again = parse_cidr(to_string(*p.value));
    FUZZ_CHECK(again.value && *again.value == *p.value);
    // A network contains its own address.
    const cidr nets[] = {*p.value};
    FUZZ_CHECK(contains(nets, std::span<const std::uint8_t>(p.value->address.data(), p.value->v6 ? 16 : 4)));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    check_header(input);
    check_cidr(input);
    return 0;
}
