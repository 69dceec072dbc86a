// SPDX-License-Identifier: MPL-2.0
// The example applications' command-line check: operands only, and an option is never a path.
#pragma once

#include <cstdio>
#include <optional>
#include <string_view>

namespace portunus_apps {

/// Checks that argv holds `min_operands` to `max_operands` operands after the program name.
/// Returns nullopt when it does; otherwise the status main() should exit with: 0 after -h or
/// --help (usage on stdout) or --version ("NAME VERSION" on stdout), 64 (EX_USAGE) for a wrong
/// count or any other option (usage on stderr). No operand may start with '-': `hello_web
/// --help` must not attach a door there. The build defines PORTUNUS_APP_NAME and
/// PORTUNUS_VERSION (the project's version) for each application.
inline std::optional<int> check_arguments(int argc, char** argv, int min_operands, int max_operands,
                                          const char* synopsis)
{
    const char* program = argc > 0 ? argv[0] : "app";
    for (int i = 1; i < argc; ++i) {
        const std::string_view a = argv[i];
        if (a == "-h" || a == "--help") {
            std::printf("usage: %s %s\n", program, synopsis);
            return 0;
        }
        if (a == "--version") {
            std::printf("%s %s\n", PORTUNUS_APP_NAME, PORTUNUS_VERSION);
            return 0;
        }
        if (a.size() > 1 && a.front() == '-') {
            std::fprintf(stderr, "%s: unknown option %s\nusage: %s %s\n", program, argv[i], program, synopsis);
            return 64;
        }
    }
    if (argc - 1 < min_operands || argc - 1 > max_operands) {
        std::fprintf(stderr, "usage: %s %s\n", program, synopsis);
        return 64;
    }
    return std::nullopt;
}

} // namespace portunus_apps
