// SPDX-License-Identifier: MPL-2.0
// tcp_session: one client connection of a tcp forward; each chunk read is one door call.
#pragma once

#include "portunusd/session/session_core.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace portunusd {

/// Reads a chunk, calls the door with it, writes the reply, reads again; strictly one call at a
/// time, so replies keep the order of requests. All of it runs on the socket's event loop. Its
/// access-log line is written once, when the connection closes.
class tcp_session final : public session_core {
public:
    using session_core::session_core;

private:
    void on_start(std::string_view first) override;
    void on_readable(const boost::system::error_code& ec) override;
    void on_timeout(const char* reason) override;
    void on_closed(std::string_view reason) override;
    [[nodiscard]] bool idle() const noexcept override { return !calling_ && reply_.empty(); }

    void do_read();
    /// Calls the door with the next max_request bytes of carried_.
    void take_carried();
    void on_read(std::string chunk);
    void on_reply(call_outcome outcome);
    void do_write();
    void on_write(const boost::system::error_code& ec, std::size_t n);

    std::string carried_; ///< bytes that came behind a PROXY header, not yet sent as calls
    std::string reply_;
    std::size_t written_ = 0;    ///< of reply_
    bool write_stalled_ = false; ///< reply_ did not fit the socket: the write timeout runs, from the last progress
    std::uint64_t calls_ = 0, bytes_in_ = 0, bytes_out_ = 0;
    bool calling_ = false;
};

} // namespace portunusd
