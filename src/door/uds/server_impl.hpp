// SPDX-License-Identifier: MPL-2.0
// A door_server's state on userland doors, shared by its pool (uds_server.cpp) and batch queue (batch_work.cpp).
#pragma once

#include "door/uds/pool_accounting.hpp"
#include "door/uds/socket_io.hpp"

#include <sys/types.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace portunus::uds {

struct server_connection {
    unique_fd fd;
    door_credentials caller;
    // Answers to batch calls that are finished but not sent yet (reply_batch entries), so that
    // answers finished back to back leave in one message. Guarded by held_mutex.
    std::mutex held_mutex;
    std::string held;
    // Held across each send: several threads answer the calls of one batch connection, and an
    // answer through a memfd is two messages that nothing may come between.
    std::mutex send_mutex;

    std::error_code send_error(int errno_value)
    {
        std::lock_guard lock(send_mutex);
        return uds::send_error(fd.get(), errno_value);
    }
    std::error_code send(message_type type, std::string_view data, std::span<const int> fds)
    {
        std::lock_guard lock(send_mutex);
        return uds::send_message(fd.get(), type, data, fds);
    }
    std::error_code send_batch_reply(std::uint32_t tag, std::int32_t error, std::string_view data)
    {
        std::lock_guard lock(send_mutex);
        return uds::send_batch_reply(fd.get(), tag, error, data);
    }
};

// One call of a call_batch, waiting for a thread. The connection is shared: its calls may be
// served by several threads, and it may be closed (by its client) while some still wait.
struct work_item {
    std::shared_ptr<server_connection> c;
    std::uint32_t tag = 0;
    std::string data;
};

} // namespace portunus::uds

namespace portunus {

// Every pool thread waits in epoll_wait on one set that holds the listening socket, a wake
// eventfd, the work queue's eventfd and every connection (EPOLLONESHOT, so one call is served
// by exactly one thread). `pool` counts the threads and decides when one is added (the
// high-water rule), reaped or may stick to its connection.
struct door_server::impl : std::enable_shared_from_this<impl> {
    using connection = uds::server_connection;

    door_handler handler;
    door_options options;
    unique_fd epoll_fd;
    unique_fd wake_fd;
    unique_fd listen_fd;
    std::string path;
    dev_t path_dev = 0;
    ino_t path_ino = 0;
    std::uint64_t uniquifier = 0;

    mutable std::mutex mutex;
    std::condition_variable changed;
    uds::pool_accounting pool; // guarded by mutex
    bool attached = false;
    std::atomic<bool> revoked_flag{false}; // pool.revoked(), for reading without the mutex
    std::unordered_map<connection*, std::shared_ptr<connection>> connections;
    // Calls of batches not yet taken by a thread (guarded by mutex). work_fd, edge-triggered in
    // the epoll set, wakes one free thread to help when a thread takes a call and more wait.
    std::deque<uds::work_item> work;
    unique_fd work_fd;
    bool work_wake_pending = false;
    // Connections whose answers a busy thread holds back while it runs the next call of the
    // same batch; the helper woken through work_fd sends them, so that a slow call holds back
    // the answers finished before it only until another thread gets the CPU.
    std::vector<std::shared_ptr<connection>> holders;

    // The pool, connections and single calls (uds_server.cpp).
    void run(bool parked);
    void spawn_locked();
    void accept_all();
    bool serve_connection(connection& c, bool& queued);
    void arm(connection& c);
    bool receive_call(connection& c, uds::received_message& m, bool& keep, int flags);
    bool serve_call(connection& c, uds::received_message& m);
    int invoke_handler(door_request& request, door_reply& reply);
    void refuse_pending_locked();
    void close_connection(connection* c);
    void finish_locked();
    void revoke();
    uds::wire_hello hello() const;

    // The batch work queue (batch_work.cpp).
    bool queue_batch(connection& c, const uds::received_message& m);
    void answer_batch(connection& c, const uds::received_message& m, int errno_value);
    void help_with_work();
    void run_work();
    bool take_work(uds::work_item& w, bool holding, bool& helper);
    std::int32_t run_work_item(const uds::work_item& w, door_reply& reply);
    void answer_work_item(const uds::work_item& w, std::int32_t error, std::string_view data,
                          std::shared_ptr<connection>& holding);
    void stop_holding(std::shared_ptr<connection>& holding);
    void refuse_work_locked();
};

} // namespace portunus
