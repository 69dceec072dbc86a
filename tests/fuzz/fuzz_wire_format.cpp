// SPDX-License-Identifier: MPL-2.0
// libFuzzer target for the userland door wire format decoder.
#include "door/uds/wire_format.hpp"

#include <portunus/door_error.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    using namespace portunus::uds;
    if (size == 0) return 0;
    // The first byte picks how many descriptors "arrived" with the message.
    const std::size_t fds = data[0] % (wire_max_fds + 3);
    const std::span<const std::byte> message(reinterpret_cast<const std::byte*>(data + 1), size - 1);
    wire_header h;
    std::uint16_t version = 0;
    const std::error_code ec = decode_header(message, fds, h, version);
    if (!ec) {
        // Whatever is accepted must satisfy the invariants the socket layer relies on.
        if (h.nfds != fds || h.nfds > wire_max_fds) std::abort();
        const std::size_t body = message.size() - wire_header_size;
        const bool in_memfd = (h.flags & flag_payload_in_memfd) != 0;
        if ((h.type == message_type::call || h.type == message_type::reply) && !in_memfd &&
            (h.size != body || body > wire_inline_max))
            std::abort();
        if (in_memfd && h.type != message_type::reply_batch && h.size <= wire_inline_max) std::abort();
        // Written without an addition so a size near 2^64 cannot wrap past the check.
        if (in_memfd && h.size <= wire_inline_max - batch_reply_entry_header) std::abort();
        if (h.size > static_cast<std::uint64_t>(INT64_MAX)) std::abort();
        if ((h.type == message_type::call_batch || h.type == message_type::reply_batch) && !in_memfd) {
            // A batch body that decodes gives entries that lie inside it and account for all of it.
            std::vector<batch_entry> entries;
            const std::string_view text(reinterpret_cast<const char*>(message.data()) + wire_header_size, body);
            if (!decode_batch(h.type, text, entries)) {
                std::size_t total = 0;
                for (const auto& e : entries) {
                    if (e.data.data() < text.data() || e.data.data() + e.data.size() > text.data() + text.size())
                        std::abort();
                    if (e.error < 0 || (e.error != 0 && !e.data.empty())) std::abort();
                    total += e.data.size() +
                             (h.type == message_type::reply_batch ? batch_reply_entry_header : batch_call_entry_header);
                }
                if (entries.empty() || total != body) std::abort();
            }
        }
        if (h.type == message_type::hello) {
            wire_hello hello;
            (void)decode_hello(message.subspan(wire_header_size), hello);
        }
    } else if (ec.category() != portunus::door_category() ||
               (ec.value() != EPROTO && ec.value() != EPROTONOSUPPORT)) {
        std::abort();
    }
    return 0;
}
