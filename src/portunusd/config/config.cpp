// SPDX-License-Identifier: MPL-2.0
// Entry points of the configuration layer: read the file, let toml++ parse it, validate the tree.
#include "portunusd/config/config.hpp"

#include "portunusd/config/config_reader.hpp"
#include "portunusd/config/config_values.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

namespace portunusd {
namespace {

// A configuration is a few kilobytes; anything this large is a wrong path, not a config.
constexpr std::size_t max_config_bytes = 4 * 1024 * 1024;

}  // namespace

namespace config_detail {

std::string read_regular_file(const std::string& path, std::string& text, std::size_t max_bytes)
{
    if (path.find('\0') != std::string::npos)
        return std::strerror(ENOENT);
    // Without O_NONBLOCK, opening a FIFO waits for a writer, and a reload runs on the loop
    // that accepts connections. Nothing but a regular file is read, so the flag changes
    // nothing for what is.
    int fd = -1;
    do
        fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    while (fd < 0 && errno == EINTR);
    if (fd < 0)
        return std::strerror(errno);

    std::string reason;
    struct stat st {};
    if (::fstat(fd, &st) != 0)
        reason = std::strerror(errno);
    else if (S_ISDIR(st.st_mode))
        reason = std::strerror(EISDIR);
    else if (!S_ISREG(st.st_mode))
        reason = "not a regular file";
    std::array<char, 16 * 1024> buffer{};
    while (reason.empty()) {
        const ssize_t n = ::read(fd, buffer.data(), buffer.size());
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            reason = std::strerror(errno);
        else if (n == 0)
            break;
        else if (text.size() + static_cast<std::size_t>(n) > max_bytes)
            reason = "file is larger than " + std::to_string(max_bytes / (1024 * 1024)) + " MiB";
        else
            text.append(buffer.data(), static_cast<std::size_t>(n));
    }
    ::close(fd);
    return reason;
}

}  // namespace config_detail

namespace {

std::string read_whole_file(const std::string& path, std::string& text)
{
    return config_detail::read_regular_file(path, text, max_config_bytes);
}

config_result single_error(const std::string& source_name, int line, int column, std::string message)
{
    config_result result;
    result.errors.push_back({source_name, line, column, std::move(message)});
    return result;
}

// toml++ stops at the first syntax error, so a file with one gets this single error.
std::optional<toml::table> parse_toml(std::string_view text, const std::string& source_name, config_result& failure)
{
    try {
        return toml::parse(text, std::string_view{source_name});
    } catch (const toml::parse_error& e) {
        const auto at = config_detail::position_of(e.source());
        // The description may quote the offending input, control bytes included.
        failure = single_error(source_name, at.line, at.column, config_detail::escape_control_bytes(e.description()));
        return std::nullopt;
    }
}

// The whole document, or nullopt with the one syntax error `failure` then holds.
std::optional<toml::table> parse_document(std::string_view text, const std::string& source_name,
                                          config_result& failure)
{
    if (const auto defect = config_detail::find_toml_defect(text)) {
        // Everything before the defect's statement is safe to parse, and an error there comes first.
        if (parse_toml(text.substr(0, defect->statement_offset), source_name, failure))
            failure = single_error(source_name, defect->line, defect->column, defect->message);
        return std::nullopt;
    }
    return parse_toml(text, source_name, failure);
}

}  // namespace

std::string_view to_string(protocol p) noexcept
{
    switch (p) {
    case protocol::tcp: return "tcp";
    case protocol::udp: return "udp";
    case protocol::http: return "http";
    case protocol::pass: return "pass";
    case protocol::exec: return "exec";
    }
    return "unknown";
}

std::string_view protocol_name(const forward_settings& f) noexcept
{
    if (f.tls) return f.proto == protocol::http ? "https" : "tls";
    return to_string(f.proto);
}

std::vector<std::string> app_instance_doors(const app_settings& app)
{
    if (app.instances <= 1)
        return {app.door};
    std::vector<std::string> doors;
    for (unsigned i = 1; i <= app.instances; ++i)
        doors.push_back(app.door + "." + std::to_string(i));
    return doors;
}

std::string config_error::to_string() const
{
    return source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + message;
}

std::string config_error::log_text() const
{
    constexpr std::string_view prefix = "warning: ";
    const std::string_view text = message;
    const std::string_view rest = text.starts_with(prefix) ? text.substr(prefix.size()) : text;
    return source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " + std::string{rest};
}

config_result parse_config_string(std::string_view text, const std::string& source_name)
{
    config_result failure;
    const auto root = parse_document(text, source_name, failure);
    if (!root)
        return failure;
    return config_detail::validate_config(*root, source_name);
}

config_result parse_config_file(const std::string& path)
{
    std::string text;
    if (std::string reason = read_whole_file(path, text); !reason.empty())
        return single_error(path, 1, 1, "cannot read: " + reason);
    return parse_config_string(text, path);
}

config_result load_config(const std::string& path)
{
    std::string text;
    if (std::string reason = read_whole_file(path, text); !reason.empty())
        return single_error(path, 1, 1, "cannot read: " + reason);
    config_result result;
    const auto root = parse_document(text, path, result);
    if (!root)
        return result;
    // The checks run on what was valid, so that an operator fixes everything in one round.
    config_detail::diagnostics diag{path};
    config cfg = config_detail::draft_config(*root, path, diag);
    config_detail::check_door_directories(cfg, diag);
    config_detail::check_app_resources(cfg, diag);
    config_detail::read_tls_files(cfg, diag);
    if (diag.empty())
        result.value = std::move(cfg);
    result.errors = diag.take_sorted();
    result.warnings = diag.take_sorted_warnings();
    return result;
}

void sort_by_position(std::vector<config_error>& problems)
{
    std::stable_sort(problems.begin(), problems.end(), [](const config_error& a, const config_error& b) {
        return a.line != b.line ? a.line < b.line : a.column < b.column;
    });
}

std::vector<config_error> all_problems(const config_result& result)
{
    std::vector<config_error> all = result.errors;
    all.insert(all.end(), result.warnings.begin(), result.warnings.end());
    sort_by_position(all);
    return all;
}

}  // namespace portunusd
