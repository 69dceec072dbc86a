// SPDX-License-Identifier: MPL-2.0
// Serving pass calls: check the header, give the socket to the handler, count the connections.
#include <portunus/server.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>

namespace portunus {
namespace {

// Connections whose handlers run on threads of their own, and the condition serve_connections
// waits on for them to end.
struct open_connections {
    std::mutex mutex;
    std::condition_variable ended;
    std::size_t count = 0;
};

open_connections& connections()
{
    static open_connections* c = new open_connections; // outlives every detached handler thread
    return *c;
}

door_reply refuse(std::string_view why)
{
    return door_reply{"EPROTO " + std::string(why), {}};
}

void run_handler(const pass_handler& handler, unique_fd socket, const pass_header& header)
{
    try {
        handler(std::move(socket), header);
    } catch (...) {
        // The socket was moved into the handler, whose unwinding closed it; nothing else to do
        // on a thread nobody waits for.
    }
}

} // namespace

door_handler pass_door_handler(pass_handler handler)
{
    auto shared = std::make_shared<pass_handler>(std::move(handler));
    return [shared](door_request& call) -> door_reply {
        if (call.fds.size() != 1) return refuse("a pass call carries exactly one descriptor");
        auto parsed = parse_pass_header(call.data);
        if (!parsed.value) return refuse(parsed.error);
        unique_fd socket = std::move(call.fds.front());
        // The daemon accepts without blocking; a handler reads and writes the simple way. The
        // flag belongs to the open socket, which the daemon no longer uses.
        if (const int flags = ::fcntl(socket.get(), F_GETFL); flags >= 0 && (flags & O_NONBLOCK))
            ::fcntl(socket.get(), F_SETFL, flags & ~O_NONBLOCK);
        if (parsed.value->hold) {
            // The daemon's call stays open until the connection is done: serve it right here.
            (*shared)(std::move(socket), *parsed.value);
            return {};
        }
        auto& c = connections();
        {
            std::lock_guard lock(c.mutex);
            ++c.count;
        }
        try {
            std::thread([shared, socket = std::make_shared<unique_fd>(std::move(socket)),
                         header = std::move(*parsed.value)]() mutable {
                run_handler(*shared, std::move(*socket), header);
                auto& open = connections();
                std::lock_guard lock(open.mutex);
                if (--open.count == 0) open.ended.notify_all();
            }).detach();
        } catch (const std::system_error&) {
            std::lock_guard lock(c.mutex);
            if (--c.count == 0) c.ended.notify_all();
            throw; // no thread could be had: the call fails, and the socket's owner closed it
        }
        return {};
    };
}

door_handler pass_or_relayed_handler(pass_handler pass, door_handler relayed)
{
    auto on_pass = pass_door_handler(std::move(pass));
    return [on_pass = std::move(on_pass), relayed = std::move(relayed)](door_request& call) -> door_reply {
        if (call.fds.size() == 1 && looks_like_pass_header(call.data)) return on_pass(call);
        return relayed(call);
    };
}

std::size_t pass_connections_open() noexcept
{
    auto& c = connections();
    std::lock_guard lock(c.mutex);
    return c.count;
}

namespace {

int serve_then_wait(const std::string& path, door_handler handler, door_options options,
                    std::chrono::milliseconds drain_limit)
{
    const auto status = serve(path, std::move(handler), options, drain_limit);
    if (status != 0) return status;
    // serve() waited for the calls; the connections it handed to threads may still be open.
    auto& c = connections();
    std::unique_lock lock(c.mutex);
    if (c.ended.wait_for(lock, drain_limit, [&c] { return c.count == 0; })) return 0;
    std::fprintf(stderr, "%s: drain limit reached while %zu connections were still open: exiting without them\n",
                 path.c_str(), c.count);
    std::fflush(nullptr);
    ::_exit(1); // returning would run static destructors under handlers still running
}

} // namespace

int serve_connections(const std::string& path, pass_handler handler, door_options options,
                      std::chrono::milliseconds drain_limit)
{
    return serve_then_wait(path, pass_door_handler(std::move(handler)), options, drain_limit);
}

int serve_connections(const std::string& path, pass_handler handler, door_handler relayed, door_options options,
                      std::chrono::milliseconds drain_limit)
{
    return serve_then_wait(path, pass_or_relayed_handler(std::move(handler), std::move(relayed)), options,
                           drain_limit);
}

} // namespace portunus
