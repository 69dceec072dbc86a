// SPDX-License-Identifier: MPL-2.0
// Which file a path names now, told apart from the one it named before.
#pragma once

#include <sys/stat.h>

#include <cstdint>
#include <optional>
#include <string>

namespace portunusd {

/// A file's identity: device, inode and change time. A door that replaces another gets a new
/// one even where the file system hands out the removed file's inode number at once (tmpfs
/// does), since the change time differs.
struct file_identity {
    dev_t dev = 0;
    ino_t ino = 0;
    std::int64_t ctime_ns = 0;
    bool operator==(const file_identity&) const = default;

    static file_identity of(const struct stat& st) noexcept
    {
        return {st.st_dev, st.st_ino,
                static_cast<std::int64_t>(st.st_ctim.tv_sec) * 1'000'000'000 + static_cast<std::int64_t>(st.st_ctim.tv_nsec)};
    }

    /// What `path` names now (following symlinks); nothing when it names nothing.
    static std::optional<file_identity> of(const std::string& path) noexcept
    {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) return std::nullopt;
        return of(st);
    }
};

} // namespace portunusd
