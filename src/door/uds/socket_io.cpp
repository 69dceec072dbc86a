// SPDX-License-Identifier: MPL-2.0
// sendmsg/recvmsg with SCM_RIGHTS and memfd payloads for userland doors.
#include "door/uds/socket_io.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

namespace portunus::uds {
namespace {

std::error_code last_error() { return make_door_error(errno); }

constexpr std::size_t control_space = CMSG_SPACE(sizeof(int) * wire_max_fds);
// Messages up to this size (header included) and without descriptors are sent flat.
constexpr std::size_t small_message_max = 512;

std::size_t total_size(std::span<const std::string_view> pieces) noexcept
{
    std::size_t n = 0;
    for (const auto p : pieces) n += p.size();
    return n;
}

std::error_code send_raw(int sock, const wire_header& h, std::span<const std::string_view> pieces,
                         std::span<const int> fds)
{
    if (pieces.size() > door_client::door_max_pieces) return make_door_error(E2BIG);
    std::array<std::byte, wire_header_size> head;
    encode_header(h, head);
    if (fds.empty() && wire_header_size + h.size <= small_message_max) {
        // A small message without descriptors leaves as one contiguous send(): copying a few
        // hundred bytes costs less than sendmsg's msghdr and iovec copies into the kernel.
        alignas(8) std::byte flat[small_message_max];
        std::memcpy(flat, head.data(), head.size());
        std::size_t at = head.size();
        for (const auto p : pieces) {
            if (p.empty()) continue;
            std::memcpy(flat + at, p.data(), p.size());
            at += p.size();
        }
        for (;;) {
            if (::send(sock, flat, at, MSG_NOSIGNAL) >= 0) return {};
            if (errno != EINTR) return last_error();
        }
    }
    iovec iov[1 + door_client::door_max_pieces];
    iov[0].iov_base = head.data();
    iov[0].iov_len = head.size();
    std::size_t count = 1;
    for (const auto p : pieces) {
        if (p.empty()) continue;
        iov[count].iov_base = const_cast<char*>(p.data()); // sendmsg only reads it
        iov[count].iov_len = p.size();
        ++count;
    }

    alignas(cmsghdr) char control[control_space];
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = count;
    if (!fds.empty()) {
        const std::size_t bytes = sizeof(int) * fds.size();
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(bytes);
        // The control buffer is ours and large enough, so its first header is at its start;
        // CMSG_FIRSTHDR's null case cannot happen here.
        auto* cm = reinterpret_cast<cmsghdr*>(control);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(bytes);
        std::memcpy(CMSG_DATA(cm), fds.data(), bytes);
    }
    for (;;) {
        if (::sendmsg(sock, &msg, MSG_NOSIGNAL) >= 0) return {};
        if (errno != EINTR) return last_error();
    }
}

// Takes every descriptor out of the control data, so none can leak whatever happens next.
void collect_fds(msghdr& msg, std::vector<unique_fd>& fds)
{
    for (cmsghdr* cm = CMSG_FIRSTHDR(&msg); cm != nullptr; cm = CMSG_NXTHDR(&msg, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS) continue;
        const std::size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < n; ++i) {
            int fd;
            std::memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof fd);
            fds.emplace_back(fd);
        }
    }
}

std::error_code receive_raw(int sock, std::span<std::byte> buffer, int flags, std::size_t& length,
                            std::vector<unique_fd>& fds)
{
    iovec iov{buffer.data(), buffer.size()};
    alignas(cmsghdr) char control[control_space];
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ssize_t n;
    do {
        n = ::recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return errno == ECONNRESET ? make_door_error(ECONNRESET) : last_error();
    collect_fds(msg, fds);
    if (n == 0 && fds.empty()) return make_door_error(ECONNRESET);
    if ((msg.msg_flags & MSG_TRUNC) != 0) return make_door_error(EPROTO);
    if ((msg.msg_flags & MSG_CTRUNC) != 0) return make_door_error(E2BIG);
    length = static_cast<std::size_t>(n);
    return {};
}

} // namespace

namespace {
thread_local std::unique_ptr<char[]> receive_block;
} // namespace

std::span<std::byte> thread_receive_buffer()
{
    if (!receive_block) receive_block.reset(new char[wire_header_size + wire_inline_max]);
    return {reinterpret_cast<std::byte*>(receive_block.get()), wire_header_size + wire_inline_max};
}

char* take_thread_receive_buffer() noexcept
{
    return receive_block.release();
}

namespace {

// `h` with `inline_body` and `fds`, then a payload message with a sealed memfd holding the
// pieces back to back.
std::error_code send_through_memfd(int sock, wire_header h, std::string_view inline_body,
                                   std::span<const std::string_view> pieces, std::span<const int> fds)
{
    std::error_code ec;
    unique_fd memfd = make_sealed_memfd(pieces, ec);
    if (ec) return ec;
    h.flags = flag_payload_in_memfd;
    const std::string_view inline_pieces[1] = {inline_body};
    if ((ec = send_raw(sock, h, inline_pieces, fds))) return ec;
    wire_header p;
    p.type = message_type::payload;
    p.nfds = 1;
    p.size = total_size(pieces);
    const int one[1] = {memfd.get()};
    return send_raw(sock, p, std::span<const std::string_view>{}, one);
}

} // namespace

std::error_code send_message(int sock, message_type type, std::string_view data, std::span<const int> fds)
{
    const std::string_view pieces[1] = {data};
    return send_message(sock, type, pieces, fds);
}

std::error_code send_message(int sock, message_type type, std::span<const std::string_view> pieces,
                             std::span<const int> fds)
{
    wire_header h;
    h.type = type;
    h.nfds = static_cast<std::uint32_t>(fds.size());
    h.size = total_size(pieces);
    if (h.size <= wire_inline_max) return send_raw(sock, h, pieces, fds);

    return send_through_memfd(sock, h, {}, pieces, fds);
}

std::error_code send_batch_reply(int sock, std::uint32_t tag, std::int32_t error, std::string_view data)
{
    wire_header h;
    h.type = message_type::reply_batch;
    if (batch_reply_entry_header + data.size() <= wire_inline_max) {
        std::string body;
        body.reserve(batch_reply_entry_header + data.size());
        append_batch_reply(body, tag, error, data);
        h.size = body.size();
        const std::string_view pieces[1] = {body};
        return send_raw(sock, h, pieces, {});
    }
    std::string entry;
    append_batch_reply(entry, tag, 0, {});
    // The entry's length field says where the bytes are: all of them, in the memfd.
    const auto length = static_cast<std::uint32_t>(data.size());
    std::memcpy(entry.data() + batch_reply_entry_header - 4, &length, sizeof length);
    h.size = data.size();
    const std::string_view pieces[1] = {data};
    return send_through_memfd(sock, h, entry, pieces, {});
}

std::error_code batch_entries(const received_message& m, std::vector<batch_entry>& out)
{
    if ((m.header.flags & flag_payload_in_memfd) == 0) return decode_batch(m.header.type, m.data, out);
    out.clear();
    std::vector<batch_entry> head;
    std::string entry(m.inline_body);
    // Decoded as an entry without its bytes, then given the memfd's.
    std::memset(entry.data() + batch_reply_entry_header - 4, 0, 4);
    std::uint32_t length = 0;
    if (m.inline_body.size() == batch_reply_entry_header)
        std::memcpy(&length, m.inline_body.data() + batch_reply_entry_header - 4, sizeof length);
    if (m.header.type != message_type::reply_batch || m.inline_body.size() != batch_reply_entry_header ||
        decode_batch(message_type::reply_batch, entry, head) || head.size() != 1 || head[0].error != 0 ||
        length != m.header.size || length != m.data.size())
        return make_door_error(EPROTO);
    out.push_back({head[0].tag, 0, m.data});
    return {};
}

std::error_code send_error(int sock, int errno_value)
{
    wire_header h;
    h.type = message_type::error;
    h.error = errno_value;
    return send_raw(sock, h, std::span<const std::string_view>{}, {});
}

std::error_code send_hello(int sock, const wire_hello& hello)
{
    std::array<std::byte, wire_hello_size> body;
    encode_hello(hello, body);
    wire_header h;
    h.type = message_type::hello;
    h.size = body.size();
    const std::string_view pieces[1] = {{reinterpret_cast<const char*>(body.data()), body.size()}};
    return send_raw(sock, h, pieces, {});
}

std::error_code receive_message(int sock, std::span<std::byte> buffer, received_message& out, int flags)
{
    out.fds.clear();
    out.mapped = door_buffer{};
    out.data = {};
    out.inline_body = {};
    std::size_t length = 0;
    if (auto ec = receive_raw(sock, buffer, flags, length, out.fds)) return ec;
    std::uint16_t peer_version = 0;
    if (auto ec = decode_header(buffer.first(length), out.fds.size(), out.header, peer_version)) {
        out.fds.clear();
        return ec;
    }
    if (out.header.type == message_type::payload) {
        out.fds.clear();
        return make_door_error(EPROTO);
    }
    out.inline_body = {reinterpret_cast<const char*>(buffer.data()) + wire_header_size, length - wire_header_size};
    if ((out.header.flags & flag_payload_in_memfd) == 0) {
        out.data = out.inline_body;
        return {};
    }

    // The payload message is sent right after the header, so this read does not wait on the
    // peer's goodwill for long; sockets that face untrusted peers carry SO_RCVTIMEO as well.
    std::vector<unique_fd> payload_fds;
    std::array<std::byte, wire_header_size> head;
    std::error_code ec = receive_raw(sock, head, 0, length, payload_fds);
    // The socket may be non-blocking (an event loop owns it); the payload message follows the
    // header at once, so waiting a bounded time for it is enough.
    for (int tries = 0; ec && ec.value() == EAGAIN && tries < 100; ++tries) {
        pollfd p{sock, POLLIN, 0};
        ::poll(&p, 1, 100);
        ec = receive_raw(sock, head, 0, length, payload_fds);
    }
    wire_header p;
    if (!ec) ec = decode_header(std::span(head).first(length), payload_fds.size(), p, peer_version);
    if (!ec && (p.type != message_type::payload || p.size != out.header.size)) ec = make_door_error(EPROTO);
    if (!ec) out.mapped = map_sealed_memfd(payload_fds.front().get(), out.header.size, ec);
    if (ec) {
        out.fds.clear();
        return ec;
    }
    out.data = out.mapped.view();
    return {};
}

unique_fd make_sealed_memfd(std::string_view data, std::error_code& ec)
{
    const std::string_view pieces[1] = {data};
    return make_sealed_memfd(pieces, ec);
}

unique_fd make_sealed_memfd(std::span<const std::string_view> pieces, std::error_code& ec)
{
    unique_fd fd(::memfd_create("portunus-door", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) {
        ec = last_error();
        return {};
    }
    if (::ftruncate(fd.get(), static_cast<off_t>(total_size(pieces))) != 0) {
        ec = last_error();
        return {};
    }
    std::size_t offset = 0;
    for (const auto data : pieces) {
        std::size_t done = 0;
        while (done < data.size()) {
            const ssize_t n = ::pwrite(fd.get(), data.data() + done, data.size() - done,
                                       static_cast<off_t>(offset + done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                ec = n < 0 ? last_error() : make_door_error(EIO);
                return {};
            }
            done += static_cast<std::size_t>(n);
        }
        offset += data.size();
    }
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        ec = last_error();
        return {};
    }
    return fd;
}

door_buffer map_sealed_memfd(int fd, std::size_t size, std::error_code& ec)
{
    constexpr int required = F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
    const int seals = ::fcntl(fd, F_GET_SEALS);
    struct stat st {};
    if (seals < 0 || (seals & required) != required || ::fstat(fd, &st) != 0 ||
        static_cast<std::size_t>(st.st_size) != size) {
        ec = make_door_error(EPROTO);
        return {};
    }
    void* address = ::mmap(nullptr, size, PROT_READ, MAP_SHARED, fd, 0);
    if (address == MAP_FAILED) {
        ec = last_error();
        return {};
    }
    return door_buffer::adopt_mapping(address, size, size);
}

} // namespace portunus::uds
