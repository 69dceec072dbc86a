// SPDX-License-Identifier: MPL-2.0
// door_client on native illumos doors: open(2) the door's path, then door_call(3C) it.
#include "door/illumos/illumos_door.hpp"
#include "door/illumos/illumos_payload.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>

namespace portunus {

// An open descriptor is a reference to one door instance, exactly what the API's handle is, and
// door_call(3C) may be used on it from any number of threads at once.
struct door_client::impl {
    unique_fd fd_;
    std::string path_;
    bool refuses_descriptors_ = false; // DOOR_REFUSE_DESC, as door_info() said at open()
};

namespace {

// S_IFDOOR in illumos <sys/stat.h>, spelled out so the compile check needs no stand-in for it.
constexpr mode_t door_file_type = 0xD000;

// Results up to this size are copied into the caller's own buffer; larger ones arrive in a
// mapping the kernel creates, which is handed over without another copy. 16 KiB is door_max_arg,
// the kernel's own switch between copying through a buffer and copying page by page.
constexpr std::size_t result_buffer_size = 16 * 1024;

struct result_buffer {
    char* data_ = nullptr;
    result_buffer() = default;
    result_buffer(const result_buffer&) = delete;
    result_buffer& operator=(const result_buffer&) = delete;
    ~result_buffer() { std::free(data_); }
};

// One buffer per calling thread: the kernel writes results into it during door_call(), and they
// are copied out before the thread can make another call. malloc() gives the alignment the
// descriptors placed after the data need. Without a buffer every result takes the mapping path.
char* thread_result_buffer() noexcept
{
    thread_local result_buffer buffer;
    if (buffer.data_ == nullptr) buffer.data_ = static_cast<char*>(std::malloc(result_buffer_size));
    return buffer.data_;
}

door_result take_results(const door_arg_t& arg, const char* own_buffer, std::error_code& ec)
{
    // When the results outgrow rbuf the kernel maps a fresh region, points rbuf at it and sets
    // rsize to its page-rounded length; that region is ours to unmap. door_buffer owns it from
    // here on, even when it carries only descriptors.
    door_buffer mapping;
    if (arg.rbuf != own_buffer) mapping = door_buffer::adopt_mapping(arg.rbuf, arg.data_size, arg.rsize);

    door_result result;
    illumos::adopt_descriptors(arg.desc_ptr, arg.desc_num, result.fds);
    // A large reply is in a memory object, passed last (illumos_payload.hpp).
    door_buffer payload;
    int payload_error = 0;
    const std::string_view inline_data =
        arg.data_size != 0 ? std::string_view(arg.data_ptr, arg.data_size) : std::string_view{};
    if (illumos::take_payload(inline_data, result.fds, payload, payload_error)) {
        if (payload_error != 0) {
            ec = make_door_error(payload_error);
            return {};
        }
        if (result.fds.size() > door_max_descriptors) {
            ec = make_door_error(E2BIG);
            return {};
        }
        result.data = std::move(payload);
        return result;
    }
    if (result.fds.size() > door_max_descriptors) {
        // A native server may return up to 1024; the uds backend cannot carry more than 253, and
        // both backends must answer the same way.
        ec = make_door_error(E2BIG);
        return {};
    }
    // With no result bytes the kernel leaves data_ptr pointing at our own arguments, so only
    // data_size says whether there is data.
    if (arg.data_size == 0) return result;
    if (arg.rbuf != own_buffer)
        result.data = std::move(mapping);
    else
        result.data = door_buffer(std::string_view(arg.data_ptr, arg.data_size));
    return result;
}

} // namespace

door_client door_client::open(const std::string& path, std::error_code& ec)
{
    return open(path, std::chrono::milliseconds{0}, ec);
}

door_client door_client::open(const std::string& path, std::chrono::milliseconds, std::error_code& ec)
{
    ec.clear();
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        ec = make_door_error(errno);
        return {};
    }
    // Anything but a door (a detached door's plain file, a FIFO, a device) is not opened at all:
    // open(2) on it could block or have side effects.
    if ((st.st_mode & S_IFMT) != door_file_type) {
        ec = make_door_error(EBADF);
        return {};
    }
    unique_fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) {
        ec = make_door_error(errno);
        return {};
    }
    // The path may have changed since stat(); and a door whose server exited stays attached,
    // revoked, until someone detaches it.
    door_info_t di{};
    if (::door_info(fd.get(), &di) != 0 || (di.di_attributes & DOOR_REVOKED) != 0 || di.di_target == -1) {
        ec = make_door_error(EBADF);
        return {};
    }
    auto i = std::make_shared<impl>();
    i->fd_ = std::move(fd);
    i->path_ = path;
    i->refuses_descriptors_ = (di.di_attributes & DOOR_REFUSE_DESC) != 0;
    door_client c;
    c.impl_ = std::move(i);
    return c;
}

door_result door_client::call(std::string_view data, std::vector<unique_fd> fds, std::error_code& ec) const
{
    ec.clear();
    if (!impl_) {
        ec = make_door_error(EBADF);
        return {};
    }
    if (fds.size() > door_max_descriptors) {
        ec = make_door_error(E2BIG);
        return {};
    }
    // The descriptors go without DOOR_RELEASE and `fds` closes them when this returns. The
    // kernel releases DOOR_RELEASE descriptors only once the arguments reach a server thread: on
    // the early failures (EBADF, ENOTSUP, EAGAIN, E2BIG, ENOBUFS, ENFILE) they stay open. Handing
    // them over up front would leak them there, and closing them after a failure could close a
    // number another thread has reused meanwhile.
    //
    // A large request goes in a memory object (illumos_payload.hpp), passed last the same way:
    // it is closed here when the call is over, and the server keeps its own reference. A door
    // that refuses descriptors (DOOR_REFUSE_DESC) cannot take one, so it takes only requests up
    // to payload_inline_max; larger ones fail with E2BIG here, before anything is sent.
    illumos::payload_header header;
    unique_fd object;
    if (illumos::needs_memory_object(data, fds.size())) {
        if (impl_->refuses_descriptors_) {
            ec = make_door_error(fds.empty() ? E2BIG : ENOTSUP);
            return {};
        }
        int error = 0;
        object = illumos::make_memory_object(data, error);
        if (!object) {
            ec = make_door_error(error);
            return {};
        }
        header.size = data.size();
        data = std::string_view(reinterpret_cast<const char*>(&header), sizeof header);
    }
    std::vector<door_desc_t> descs(fds.size() + (object ? 1 : 0));
    for (std::size_t i = 0; i < descs.size(); ++i) {
        descs[i].d_attributes = DOOR_DESCRIPTOR;
        descs[i].d_data.d_desc.d_descriptor = i < fds.size() ? fds[i].get() : object.get();
        descs[i].d_data.d_desc.d_id = 0;
    }

    char* const buffer = thread_result_buffer();
    door_arg_t arg{};
    arg.data_ptr = const_cast<char*>(data.data()); // door_call() only reads the arguments
    arg.data_size = data.size();
    arg.desc_ptr = descs.empty() ? nullptr : descs.data();
    arg.desc_num = static_cast<uint_t>(descs.size());
    arg.rbuf = buffer;
    arg.rsize = buffer != nullptr ? result_buffer_size : 0;
    // Not retried on EINTR: the call may have run. door_call(3C) is not restartable.
    if (::door_call(impl_->fd_.get(), &arg) != 0) {
        ec = make_door_error(errno);
        return {};
    }
    return take_results(arg, buffer, ec);
}

door_result door_client::call(std::string_view data, std::vector<unique_fd> fds, std::chrono::milliseconds,
                              std::error_code& ec) const
{
    // door_call(3C) has no deadline, and abandoning it takes a signal to the calling thread,
    // which a library cannot send behind its user's back: the deadline is ignored, as the header
    // says.
    return call(data, std::move(fds), ec);
}

door_result door_client::call(std::span<const std::string_view> pieces, std::vector<unique_fd> fds,
                              std::chrono::milliseconds timeout, std::error_code& ec) const
{
    if (pieces.size() == 1) return call(pieces.front(), std::move(fds), timeout, ec);
    std::string joined;
    std::size_t size = 0;
    for (const auto p : pieces) size += p.size();
    joined.reserve(size);
    for (const auto p : pieces) joined.append(p);
    return call(joined, std::move(fds), timeout, ec);
}

door_info door_client::info(std::error_code& ec) const
{
    ec.clear();
    if (!impl_) {
        ec = make_door_error(EBADF);
        return {};
    }
    door_info_t di{};
    if (::door_info(impl_->fd_.get(), &di) != 0) {
        ec = make_door_error(errno);
        return {};
    }
    return illumos::to_portable(di);
}

const std::string& door_client::path() const noexcept
{
    static const std::string none;
    return impl_ ? impl_->path_ : none;
}

} // namespace portunus
