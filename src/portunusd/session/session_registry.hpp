// SPDX-License-Identifier: MPL-2.0
// session_registry: every open connection of the daemon, and what the listener hands a session.
#pragma once

#include <portunus/unique_fd.hpp>

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <cstddef>
#include <memory>
#include <mutex>
#include <unordered_map>

namespace portunusd {

/// A connection as the listener accepted it: a non-blocking descriptor that no reactor knows
/// yet, the loop that is to serve it, the peer address from accept(2) itself and the local
/// endpoint from the listening socket (its address unspecified when that is a wildcard), so a
/// session asks the kernel for neither.
struct accepted_connection {
    boost::asio::any_io_executor loop;
    portunus::unique_fd fd;
    boost::asio::ip::tcp::endpoint peer;
    boost::asio::ip::tcp::endpoint local;
};

/// What stop and drain need of any kind of connection.
class session_base {
public:
    virtual ~session_base() = default;
    /// Close now if idle, or right after the reply in flight. Any thread.
    virtual void drain() = 0;
};

/// Every open session, whatever its protocol, so that stop and drain can reach them. Thread-safe.
class session_registry {
public:
    void add(const std::shared_ptr<session_base>& s);
    void remove(const session_base* s);
    /// Asks every session to close once its call in flight (if any) is answered.
    void drain_all();
    [[nodiscard]] std::size_t size() const;

private:
    mutable std::mutex mutex_;
    std::unordered_map<const session_base*, std::weak_ptr<session_base>> sessions_;
};

} // namespace portunusd
