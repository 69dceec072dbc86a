// SPDX-License-Identifier: MPL-2.0
// Splitting a pipe into bounded log lines at a bounded rate.
#include "portunusd/exec/stderr_relay.hpp"

#include <spdlog/spdlog.h>

namespace portunusd {

stderr_relay::stderr_relay(boost::asio::io_context& loop, portunus::unique_fd read_end, std::string forward)
    : pipe_(loop, read_end.release()), report_(loop), forward_(std::move(forward))
{
    line_.reserve(64);
}

void stderr_relay::start() { do_read(); }

void stderr_relay::do_read()
{
    pipe_.async_read_some(boost::asio::buffer(buffer_),
                          [self = shared_from_this()](const boost::system::error_code& ec, std::size_t n) {
                              self->take({self->buffer_.data(), n});
                              if (!ec) return self->do_read();
                              // End of file: every child and the forward have closed their write ends.
                              if (!self->line_.empty()) self->emit();
                              self->report_.cancel();
                              self->report_dropped();
                          });
}

void stderr_relay::take(std::string_view bytes)
{
    while (!bytes.empty()) {
        const auto nl = bytes.find('\n');
        const auto piece = bytes.substr(0, nl);
        if (!cut_) {
            const std::size_t room = max_line - line_.size();
            line_.append(piece.substr(0, room));
            if (piece.size() > room) cut_ = true;
        }
        if (nl == std::string_view::npos) return;
        emit();
        bytes.remove_prefix(nl + 1);
    }
}

void stderr_relay::emit()
{
    const auto now = std::chrono::steady_clock::now();
    if (now - window_ >= std::chrono::seconds(1)) {
        report_dropped();
        window_ = now;
        in_window_ = 0;
    }
    if (in_window_ < max_lines_per_second) {
        ++in_window_;
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        // One log line per line: bytes that would break it (or a terminal) are shown as '?'.
        for (char& c : line_)
            if (static_cast<unsigned char>(c) < 0x20 && c != '\t') c = '?';
        spdlog::warn("forward {}: stderr: {}{}", forward_, line_, cut_ ? " [cut]" : "");
    } else if (dropped_++ == 0) {
        // A flood may be the last thing a child writes: the count must not wait for a next line.
        report_.expires_at(window_ + std::chrono::seconds(1));
        report_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
            if (!ec) self->report_dropped();
        });
    }
    line_.clear();
    cut_ = false;
}

void stderr_relay::report_dropped()
{
    if (dropped_ == 0) return;
    spdlog::warn("forward {}: {} stderr line(s) not logged (more than {} a second)", forward_, dropped_,
                 max_lines_per_second);
    dropped_ = 0;
}

} // namespace portunusd
