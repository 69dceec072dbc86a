// SPDX-License-Identifier: MPL-2.0
// Helpers shared by the configuration tests: rendering errors, scratch directories, paths.
#pragma once

#include "portunusd/config/config.hpp"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

namespace portunusd::test {

namespace fs = std::filesystem;

inline const fs::path source_dir{PORTUNUS_SOURCE_DIR};

inline std::string read_text(const fs::path& path)
{
    std::ifstream in{path, std::ios::binary};
    REQUIRE(in);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

/// The errors as `portunusd -n` prints them, one per line.
inline std::string render(const std::vector<config_error>& errors)
{
    std::string out;
    for (const config_error& e : errors)
        out += e.to_string() + "\n";
    return out;
}

/// Parses `text` as "test.toml" and requires it to be valid.
inline config parse_ok(std::string_view text)
{
    config_result r = parse_config_string(text, "test.toml");
    INFO(render(r.errors));
    REQUIRE(r.errors.empty());
    REQUIRE(r.value);
    return std::move(*r.value);
}

/// The settings of the sample etc/portunusd.toml's section "# ---- NAME" (up to the next
/// "# ---- "), uncommented: settings are commented out as "#key = value", explanations as
/// "# text".
inline std::string sample_section_settings(std::string_view name)
{
    std::istringstream sample{read_text(source_dir / "etc/portunusd.toml")};
    const std::string marker = "# ---- " + std::string{name};
    std::string text;
    bool inside = false;
    for (std::string line; std::getline(sample, line);) {
        if (line.rfind("# ---- ", 0) == 0) inside = line.rfind(marker, 0) == 0;
        const bool setting = line.size() > 1 && line[0] == '#' && line[1] != ' ' && line[1] != '#';
        if (inside && setting) text += line.substr(1) + "\n";
    }
    return text;
}

/// A forward with only the required keys; its [[forward]] header is on line 2.
inline constexpr std::string_view minimal_forward = R"(
[[forward]]
protocol = "tcp"
listen = "127.0.0.1:7007"
door = "/var/run/echo.door"
)";

/// A scratch directory under TMPDIR, removed with everything in it at the end of the test.
class scratch_dir {
public:
    scratch_dir()
    {
        const char* tmp = std::getenv("TMPDIR");
        std::string pattern = std::string{tmp && *tmp ? tmp : "/tmp"} + "/portunusd-config-test.XXXXXX";
        REQUIRE(::mkdtemp(pattern.data()) != nullptr);
        path_ = pattern;
        REQUIRE(::chmod(path_.c_str(), 0700) == 0);
    }
    scratch_dir(const scratch_dir&) = delete;
    scratch_dir& operator=(const scratch_dir&) = delete;
    ~scratch_dir()
    {
        std::error_code ignored;
        fs::remove_all(path_, ignored);
    }

    fs::path make(const std::string& name, mode_t mode) const
    {
        const fs::path p = path_ / name;
        REQUIRE(::mkdir(p.c_str(), 0700) == 0);
        // chmod, because mkdir's mode is filtered through the umask.
        REQUIRE(::chmod(p.c_str(), mode) == 0);
        return p;
    }
    const fs::path& path() const noexcept { return path_; }

private:
    fs::path path_;
};

}  // namespace portunusd::test
