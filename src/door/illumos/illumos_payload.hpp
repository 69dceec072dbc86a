// SPDX-License-Identifier: MPL-2.0
// Large call and reply payloads on native doors: they travel in an anonymous memory object whose
// descriptor goes with the call, never on the server thread's stack.
#pragma once

#include <portunus/door.hpp>

#include <door.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>
#include <vector>

// The kernel copies a call's arguments onto the stack of the server thread that takes it, and
// fails the call with E2BIG when they do not fit (door_layout() in
// usr/src/uts/common/fs/doorfs/door_sys.c); libc keeps a further slice of that stack back for
// itself. With default 2 MiB thread stacks a request just under 2 MiB would fit and leave its
// handler almost no stack, and one above fails. So only payloads up to payload_inline_max go
// inline. Larger ones, in both directions, are written into an anonymous memory object whose
// descriptor is passed as the last door_desc_t, and the data are a payload_header that says so.
namespace portunus::illumos {

/// Payloads up to this size travel inline, as the uds backend's (wire_inline_max).
inline constexpr std::size_t payload_inline_max = 128 * 1024;

/// Stack a handler may use for itself, beyond what the inline arguments take.
inline constexpr std::size_t handler_stack_budget = 1024 * 1024;

/// What libc keeps back from a door server thread's stack (at most 64 KiB + 512 bytes on amd64,
/// door_calls.c), plus the kernel's frame: the arguments' descriptors, a door_info_t and the
/// door_results block (door_layout()), rounded up generously.
inline constexpr std::size_t door_stack_overhead = 128 * 1024;

/// The stack size of every pool thread: the largest inline call, its descriptors, the handler
/// budget and the overhead. Calls never need more: larger payloads are in a memory object.
inline constexpr std::size_t pool_stack_size = payload_inline_max + (door_max_descriptors + 1) * sizeof(door_desc_t) +
                                               handler_stack_budget + door_stack_overhead;

/// The inline data of a call or reply whose payload is in the descriptor passed last.
struct payload_header {
    std::array<char, 8> magic{'p', 'o', 'r', 't', 'u', 'n', 'u', 's'};
    std::uint64_t size = 0; ///< payload bytes in the memory object
};
static_assert(sizeof(payload_header) == 16);

inline bool looks_like_header(std::string_view data) noexcept
{
    const payload_header expected;
    return data.size() == sizeof(payload_header) &&
           std::memcmp(data.data(), expected.magic.data(), expected.magic.size()) == 0;
}

/// Whether `data` (sent with `descriptors` descriptors of the caller's) must go in a memory
/// object: when it is large, and when it would read as a header on the other side, which
/// recognises one only when at least one descriptor came with it. So a header is never ambiguous.
inline bool needs_memory_object(std::string_view data, std::size_t descriptors) noexcept
{
    return data.size() > payload_inline_max || (descriptors > 0 && looks_like_header(data));
}

/// An anonymous memory object holding `data`. memfd_create(3C) where the system has it, sealed
/// against any change, so the receiver can map it without fearing the sender truncating it under
/// the mapping (SIGBUS) or rewriting it; otherwise a file under /tmp (tmpfs, memory-backed on
/// illumos) that is unlinked before anyone else could open it. The descriptor is close-on-exec.
inline unique_fd make_memory_object(std::string_view data, int& error) noexcept
{
    error = 0;
#if defined(MFD_ALLOW_SEALING) && !defined(PORTUNUS_ILLUMOS_NO_MEMFD)
    unique_fd fd(::memfd_create("portunus-door-payload", MFD_CLOEXEC | MFD_ALLOW_SEALING));
#else
    char name[] = "/tmp/.portunus-door-payload-XXXXXX";
    unique_fd fd(::mkostemp(name, O_CLOEXEC));
    if (fd) ::unlink(name);
#endif
    if (!fd) {
        error = errno;
        return {};
    }
    std::size_t done = 0;
    while (done < data.size()) {
        const ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            error = n < 0 ? errno : EIO;
            return {};
        }
        done += static_cast<std::size_t>(n);
    }
#if defined(F_ADD_SEALS) && !defined(PORTUNUS_ILLUMOS_NO_MEMFD)
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
        error = errno;
        return {};
    }
#endif
    return fd;
}

/// The payload of the memory object `fd`, `size` bytes. Mapped read-only without a copy when it
/// is sealed against shrinking and writing; otherwise read into memory of our own, since the
/// sender could truncate it under a mapping. 0, or the errno: EPROTO when the object is not a
/// regular file holding at least `size` bytes.
inline int read_memory_object(int fd, std::uint64_t size, door_buffer& out) noexcept
{
    struct stat st {};
    if (::fstat(fd, &st) != 0) return errno;
    if (!S_ISREG(st.st_mode) || st.st_size < 0 || static_cast<std::uint64_t>(st.st_size) < size ||
        size > static_cast<std::uint64_t>(SIZE_MAX))
        return EPROTO;
    const auto bytes = static_cast<std::size_t>(size);
    if (bytes == 0) {
        out = door_buffer{};
        return 0;
    }
#if defined(F_GET_SEALS) && !defined(PORTUNUS_ILLUMOS_NO_MEMFD)
    const int seals = ::fcntl(fd, F_GET_SEALS);
    if (seals >= 0 && (seals & (F_SEAL_SHRINK | F_SEAL_WRITE)) == (F_SEAL_SHRINK | F_SEAL_WRITE)) {
        void* const map = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) return errno;
        out = door_buffer::adopt_mapping(map, bytes, bytes);
        return 0;
    }
#endif
    char* const block = new (std::nothrow) char[bytes];
    if (block == nullptr) return ENOMEM;
    std::size_t done = 0;
    while (done < bytes) {
        const ssize_t n = ::pread(fd, block + done, bytes - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            delete[] block;
            return n < 0 ? errno : EPROTO; // shrunk under us
        }
        done += static_cast<std::size_t>(n);
    }
    out = door_buffer::adopt_heap(block, 0, bytes);
    return 0;
}

/// If `data` is a payload header and `fds` (adopted from the call or reply) end with its memory
/// object, takes that descriptor off `fds` and reads the payload into `out`: true. False when
/// the data are the payload themselves. `error` is set when a header came with a bad object.
inline bool take_payload(std::string_view data, std::vector<unique_fd>& fds, door_buffer& out, int& error) noexcept
{
    error = 0;
    if (fds.empty() || !looks_like_header(data)) return false;
    payload_header header;
    std::memcpy(&header, data.data(), sizeof header);
    const unique_fd object = std::move(fds.back());
    fds.pop_back();
    error = read_memory_object(object.get(), header.size, out);
    return true;
}

} // namespace portunus::illumos
