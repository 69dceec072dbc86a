// SPDX-License-Identifier: MPL-2.0
// stderr_relay: what the children of one exec forward write on stderr, as daemon log lines.
#pragma once

#include <portunus/unique_fd.hpp>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace portunusd {

/// Reads the read end of the pipe every child of one forward has as stderr, and logs each line
/// as "forward NAME: stderr: LINE" (warn). Bounded: a line is cut at max_line bytes, at most
/// max_lines_per_second lines are logged (the rest are counted and the count logged), and the
/// relay holds one line at most (the count of dropped lines is logged when their second ends), so no child can flood the log or grow the daemon's memory.
/// Runs on the loop it was made with; ends when every write end has closed.
class stderr_relay : public std::enable_shared_from_this<stderr_relay> {
public:
    static constexpr std::size_t max_line = 1024;
    static constexpr unsigned max_lines_per_second = 100;

    stderr_relay(boost::asio::io_context& loop, portunus::unique_fd read_end, std::string forward);
    void start();

private:
    void do_read();
    void take(std::string_view bytes);
    void emit();
    void report_dropped();

    boost::asio::posix::stream_descriptor pipe_;
    boost::asio::steady_timer report_; ///< at the end of a second in which lines were dropped
    std::string forward_;
    std::array<char, 4096> buffer_{};
    std::string line_;     ///< the line being collected, at most max_line bytes
    bool cut_ = false;     ///< line_ reached max_line: the rest of it is dropped
    std::chrono::steady_clock::time_point window_{};
    unsigned in_window_ = 0;
    std::uint64_t dropped_ = 0;
};

} // namespace portunusd
