// SPDX-License-Identifier: MPL-2.0
// door_client on userland doors: a pool of SOCK_SEQPACKET connections pinned to one door instance.
#include "door/uds/idle_connections.hpp"
#include "door/uds/loop_client.hpp"
#include "door/uds/socket_io.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <atomic>
#include <csignal>
#include <cstring>
#include <optional>
#include <thread>

namespace portunus {

// Each connection carries one call at a time, so concurrent callers never wait for each other:
// they take an idle connection or open another. All connections of a handle must reach the same
// door instance (as an illumos fd does), so every new one is checked against the first hello.
struct door_client::impl {
    std::string path;
    uds::wire_hello identity;
    uds::idle_connections idle;

    using deadline_t = std::optional<std::chrono::steady_clock::time_point>;
    unique_fd connect(std::error_code& ec, bool first, deadline_t deadline);
    /// socket() and connect(); the result is non-blocking and its hello not read yet. Without
    /// `wait_for_room`, a full accept backlog is EAGAIN at once.
    unique_fd start_connect(std::error_code& ec, bool first, deadline_t deadline, bool wait_for_room);
    /// Reads and checks the server's hello (the first on a handle records the door instance).
    void take_hello(int fd, bool first, int flags, std::error_code& ec);
    unique_fd take(std::error_code& ec, deadline_t deadline);
    void give_back(unique_fd fd);
    /// Receives the reply on a blocking `conn` and gives the connection back to the pool.
    door_result finish(unique_fd conn, std::error_code& ec);
};

namespace {

std::error_code wait_readable(int fd, std::chrono::steady_clock::time_point deadline)
{
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return make_door_error(ETIMEDOUT);
        pollfd p{fd, POLLIN, 0};
        const int n = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count() + 1, 1 << 30)));
        if (n > 0) return {};
        if (n < 0 && errno != EINTR) return make_door_error(errno);
    }
}

using clock = std::chrono::steady_clock;

// Sends one call. A send that fails means the request never reached a server: the
// connection's server is gone, which is EBADF in door terms.
std::error_code send_call(int conn, std::span<const std::string_view> pieces, std::span<const int> fds)
{
    auto ec = uds::send_message(conn, uds::message_type::call, pieces, fds);
    if (ec && (ec.value() == EPIPE || ec.value() == ECONNRESET || ec.value() == ENOTCONN ||
               ec.value() == ECONNREFUSED))
        ec = make_door_error(EBADF);
    return ec;
}

// Receives one reply. A connection reset by the server means it died mid-call: EINTR. Sets
// `usable` when the connection may carry another call.
door_result receive_reply(int conn, int flags, std::error_code& ec, bool& usable)
{
    usable = false;
    uds::received_message reply;
    ec = uds::receive_message(conn, uds::thread_receive_buffer(), reply, flags);
    if (ec) {
        if (ec.value() == ECONNRESET) ec = make_door_error(EINTR);
        return {};
    }
    switch (reply.header.type) {
    case uds::message_type::reply: break;
    case uds::message_type::error:
        ec = make_door_error(reply.header.error);
        // An EBADF reply means the server revoked the door; its connection is finished too.
        usable = reply.header.error != EBADF;
        return {};
    default: ec = make_door_error(EPROTO); return {};
    }
    usable = true;
    door_result result;
    if (reply.mapped.data() != nullptr) {
        result.data = std::move(reply.mapped);
    } else if (reply.data.size() >= 16384) {
        // Large inline replies keep the block they were received into: a fresh block for the
        // next call costs less than copying tens of kilobytes.
        result.data = door_buffer::adopt_heap(uds::take_thread_receive_buffer(), uds::wire_header_size,
                                              reply.data.size());
    } else {
        result.data = door_buffer(reply.data);
    }
    result.fds = std::move(reply.fds);
    return result;
}

} // namespace

unique_fd door_client::impl::start_connect(std::error_code& ec, bool first, deadline_t deadline, bool wait_for_room)
{
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) {
        ec = make_door_error(ENAMETOOLONG);
        return {};
    }
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    // Non-blocking so that a full accept backlog (a server whose threads are all busy) is
    // waited for here, within the deadline, instead of inside connect().
    unique_fd fd(::socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) {
        ec = make_door_error(errno);
        return {};
    }
    int rc;
    auto pause = std::chrono::microseconds(100);
    for (;;) {
        rc = ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
        if (rc == 0 || (errno != EINTR && errno != EAGAIN)) break;
        if (errno == EAGAIN) {
            if (!wait_for_room || (deadline && clock::now() >= *deadline)) {
                ec = make_door_error(wait_for_room ? ETIMEDOUT : EAGAIN);
                return {};
            }
            std::this_thread::sleep_for(pause);
            pause = std::min(pause * 2, std::chrono::microseconds(10'000));
        }
    }
    if (rc != 0) {
        // A stale socket file, a path that is not a socket, or (after open) a vanished path all
        // mean what illumos says with EBADF: no server behind this door.
        const int e = errno;
        ec = make_door_error((e == EACCES || e == EPERM || e == EMFILE || e == ENFILE || e == ENOBUFS ||
                              e == ENOMEM || e == EAGAIN)
                                 ? e
                                 : (first && e == ENOENT ? ENOENT : EBADF));
        return {};
    }
    return fd;
}

void door_client::impl::take_hello(int fd, bool first, int flags, std::error_code& ec)
{
    uds::received_message hello;
    if ((ec = uds::receive_message(fd, uds::thread_receive_buffer(), hello, flags))) {
        if (ec.value() != EPROTONOSUPPORT && ec.value() != EAGAIN) ec = make_door_error(EBADF);
        return;
    }
    uds::wire_hello h;
    if (hello.header.type != uds::message_type::hello ||
        (ec = uds::decode_hello({reinterpret_cast<const std::byte*>(hello.data.data()), hello.data.size()}, h))) {
        ec = make_door_error(EPROTO);
        return;
    }
    if (!first && h.uniquifier != identity.uniquifier) {
        ec = make_door_error(EBADF); // the path now names another door: this one is gone
        return;
    }
    if (first) identity = h;
}

unique_fd door_client::impl::connect(std::error_code& ec, bool first, deadline_t deadline)
{
    unique_fd fd = start_connect(ec, first, deadline, true);
    if (ec) return {};
    const int flags = ::fcntl(fd.get(), F_GETFL);
    ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK);
    if (deadline) {
        if ((ec = wait_readable(fd.get(), *deadline))) return {};
    }
    take_hello(fd.get(), first, 0, ec);
    if (ec) return {};
    return fd;
}

unique_fd door_client::impl::take(std::error_code& ec, deadline_t deadline)
{
    if (unique_fd fd = idle.take()) return fd;
    return connect(ec, false, deadline);
}

void door_client::impl::give_back(unique_fd fd)
{
    idle.give_back(std::move(fd));
}

door_client door_client::open(const std::string& path, std::error_code& ec)
{
    return open(path, std::chrono::milliseconds{0}, ec);
}

door_client door_client::open(const std::string& path, std::chrono::milliseconds timeout, std::error_code& ec)
{
    ec.clear();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        ec = make_door_error(errno);
        return {};
    }
    auto i = std::make_shared<impl>();
    i->path = path;
    // A server that is stopped, or a socket nobody accepts on, takes the connection into its
    // backlog and never greets: only the deadline ends that wait.
    unique_fd first =
        i->connect(ec, true, timeout.count() > 0 ? impl::deadline_t(clock::now() + timeout) : std::nullopt);
    if (ec) return {};
    i->idle.give_back(std::move(first));
    door_client c;
    c.impl_ = std::move(i);
    return c;
}

door_result door_client::call(std::string_view data, std::vector<unique_fd> fds, std::error_code& ec) const
{
    return call(data, std::move(fds), std::chrono::milliseconds{0}, ec);
}

door_result door_client::call(std::string_view data, std::vector<unique_fd> fds, std::chrono::milliseconds timeout,
                              std::error_code& ec) const
{
    const std::string_view pieces[1] = {data};
    return call(pieces, std::move(fds), timeout, ec);
}

door_result door_client::call(std::span<const std::string_view> pieces, std::vector<unique_fd> fds,
                              std::chrono::milliseconds timeout, std::error_code& ec) const
{
    ec.clear();
    if (!impl_) {
        ec = make_door_error(EBADF);
        return {};
    }
    if (fds.size() > door_max_descriptors || pieces.size() > door_max_pieces) {
        ec = make_door_error(E2BIG);
        return {};
    }
    if (!fds.empty() && (impl_->identity.attributes & door_attr_refuse_desc) != 0) {
        ec = make_door_error(ENOTSUP);
        return {};
    }
    if ((impl_->identity.attributes & door_attr_refuse_desc) != 0) {
        // Requests past the inline maximum travel with a memory object's descriptor, which a
        // native door that refuses descriptors cannot take: the same limit here keeps one
        // behaviour on both backends.
        std::size_t size = 0;
        for (const auto p : pieces) size += p.size();
        if (size > uds::wire_inline_max) {
            ec = make_door_error(E2BIG);
            return {};
        }
    }
    const auto deadline = clock::now() + timeout;
    unique_fd conn = impl_->take(ec, timeout.count() > 0 ? impl::deadline_t(deadline) : std::nullopt);
    if (ec) return {};

    std::vector<int> raw(fds.size());
    for (std::size_t i = 0; i < fds.size(); ++i) raw[i] = fds[i].get();
    ec = send_call(conn.get(), pieces, raw);
    fds.clear(); // DOOR_RELEASE: the descriptors are the server's now, or lost with the call
    if (ec) return {};
    if (timeout.count() > 0) {
        if ((ec = wait_readable(conn.get(), deadline))) return {}; // conn closes: the late reply is dropped
    }
    return impl_->finish(std::move(conn), ec);
}

unique_fd loop_client::take_connection() const
{
    if (!impl()) return {};
    unique_fd conn = impl()->idle.take();
    if (!conn) return {};
    int on = 1;
    if (::ioctl(conn.get(), FIONBIO, &on) != 0) return {};
    return conn;
}

void loop_client::begin_call(const unique_fd& conn, std::string_view data, std::error_code& ec) const
{
    const std::string_view pieces[1] = {data};
    begin_call(conn, pieces, ec);
}

void loop_client::begin_call(const unique_fd& conn, std::span<const std::string_view> pieces, std::error_code& ec) const
{
    ec.clear();
    if (!impl() || !conn) {
        ec = make_door_error(EBADF);
        return;
    }
    // A call message is at most 128 KiB plus a header, well inside the socket's send buffer,
    // which holds nothing else: this send does not block.
    ec = send_call(conn.get(), pieces, {});
}

unique_fd loop_client::begin_connection(std::error_code& ec) const
{
    ec.clear();
    if (!impl()) {
        ec = make_door_error(EBADF);
        return {};
    }
    return impl()->start_connect(ec, false, std::nullopt, false);
}

void loop_client::finish_connection(const unique_fd& conn, std::error_code& ec) const
{
    ec.clear();
    if (!impl() || !conn) {
        ec = make_door_error(EBADF);
        return;
    }
    impl()->take_hello(conn.get(), false, MSG_DONTWAIT, ec);
}

door_result loop_client::end_call(const unique_fd& conn, std::error_code& ec) const
{
    ec.clear();
    if (!impl() || !conn) {
        ec = make_door_error(EBADF);
        return {};
    }
    bool usable = false;
    return receive_reply(conn.get(), MSG_DONTWAIT, ec, usable);
}

static_assert(loop_client::batch_call_overhead == uds::batch_call_entry_header);
static_assert(loop_client::batch_body_max == uds::wire_inline_max);

bool loop_client::accepts_batches() const noexcept
{
    return impl() && (impl()->identity.attributes & uds::wire_attr_batches) != 0;
}

void loop_client::append_batch_call(std::string& body, std::uint32_t tag, std::string_view data)
{
    uds::append_batch_call(body, tag, data);
}

void loop_client::send_batch(const unique_fd& conn, std::string_view body, std::error_code& ec) const
{
    ec.clear();
    if (!impl() || !conn || body.size() > batch_body_max) {
        ec = make_door_error(!impl() || !conn ? EBADF : E2BIG);
        return;
    }
    ec = uds::send_message(conn.get(), uds::message_type::call_batch, body, {});
    if (ec && (ec.value() == EPIPE || ec.value() == ECONNRESET || ec.value() == ENOTCONN || ec.value() == ECONNREFUSED))
        ec = make_door_error(EBADF);
}

void loop_client::receive_batch_replies(const unique_fd& conn, const batch_reply_handler& each,
                                        std::error_code& ec) const
{
    ec.clear();
    if (!impl() || !conn) {
        ec = make_door_error(EBADF);
        return;
    }
    // A block of its own: `each` may make single calls, which receive into the thread's block.
    static thread_local std::unique_ptr<char[]> block(new char[uds::wire_header_size + uds::wire_inline_max]);
    const std::span<std::byte> buffer(reinterpret_cast<std::byte*>(block.get()),
                                      uds::wire_header_size + uds::wire_inline_max);
    std::vector<uds::batch_entry> entries;
    for (;;) {
        uds::received_message m;
        if ((ec = uds::receive_message(conn.get(), buffer, m, MSG_DONTWAIT))) {
            if (ec.value() == ECONNRESET) ec = make_door_error(EINTR);
            return;
        }
        if (m.header.type == uds::message_type::error) {
            ec = make_door_error(m.header.error);
            return;
        }
        if (m.header.type != uds::message_type::reply_batch || uds::batch_entries(m, entries)) {
            ec = make_door_error(EPROTO);
            return;
        }
        for (const auto& e : entries)
            each(e.tag, e.error != 0 ? make_door_error(e.error) : std::error_code{}, e.data);
    }
}

door_result door_client::impl::finish(unique_fd conn, std::error_code& ec)
{
    bool usable = false;
    door_result result = receive_reply(conn.get(), 0, ec, usable);
    if (usable) give_back(std::move(conn));
    return result;
}

door_info door_client::info(std::error_code& ec) const
{
    ec.clear();
    door_info info;
    if (!impl_) {
        ec = make_door_error(EBADF);
        return info;
    }
    info.target = impl_->identity.pid;
    info.attributes = impl_->identity.attributes & ~uds::wire_attr_batches;
    info.uniquifier = impl_->identity.uniquifier;
    // A server that has exited revokes its doors; report that as illumos does, with target -1.
    if (::kill(info.target, 0) != 0 && errno == ESRCH) {
        info.target = -1;
        info.attributes |= door_attr_revoked;
    }
    return info;
}

const std::string& door_client::path() const noexcept
{
    static const std::string none;
    return impl_ ? impl_->path : none;
}

} // namespace portunus
