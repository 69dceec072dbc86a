// SPDX-License-Identifier: MPL-2.0
// FUZZ_CHECK: an invariant a fuzz target asserts on what the parser accepted.
#pragma once

#include <cstdio>
#include <cstdlib>

// abort() rather than assert(): the check must survive release builds of the fuzzer.
#define FUZZ_CHECK(condition)                                                                     \
    do {                                                                                          \
        if (!(condition)) {                                                                       \
            std::fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #condition); \
            std::abort();                                                                         \
        }                                                                                         \
    } while (false)
