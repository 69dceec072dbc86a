// SPDX-License-Identifier: MPL-2.0
// Raw SOCK_SEQPACKET peers for protocol tests: bytes and descriptors exactly as they cross the socket.
#pragma once

#include <portunus/unique_fd.hpp>

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

namespace portunus::test {

/// One message as a raw peer received it.
struct raw_message {
    std::vector<std::byte> bytes;
    std::vector<unique_fd> fds;
    bool eof = false;
    /// ECONNRESET: the peer closed with data of ours unread. Linux reports that error before
    /// the messages still queued for us, which a further receive returns.
    bool reset = false;
    bool timed_out = false;
};

/// Connects a plain SOCK_SEQPACKET socket to `path`; invalid on failure.
unique_fd raw_connect(const std::string& path);
/// Receives one message (up to `capacity` bytes) or EOF, waiting at most `timeout`.
raw_message raw_receive(int fd, std::chrono::milliseconds timeout, std::size_t capacity = 65536);
/// Sends one message with descriptors; false on failure.
bool raw_send(int fd, const std::vector<std::byte>& bytes, const std::vector<int>& fds = {});

} // namespace portunus::test
