// SPDX-License-Identifier: MPL-2.0
// Declarations-only stand-in for illumos <procfs.h>: the one psinfo field the daemon reads, to compile-check it on other systems.
#ifndef PORTUNUS_STANDIN_PROCFS_H
#define PORTUNUS_STANDIN_PROCFS_H

#pragma GCC system_header

#include <stddef.h>

typedef struct psinfo {
    size_t pr_size;   // process image size in KB
    size_t pr_rssize; // resident set size in KB
} psinfo_t;

#endif
