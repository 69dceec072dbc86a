// SPDX-License-Identifier: MPL-2.0
// Declarations-only stand-in for illumos <stropts.h>, used to compile-check the illumos door backend on other systems.
#ifndef PORTUNUS_STANDIN_STROPTS_H
#define PORTUNUS_STANDIN_STROPTS_H

// Treated as the system header it stands in for, whose warnings the compiler does not report on
// illumos either.
#pragma GCC system_header

#ifdef __cplusplus
extern "C" {
#endif

// Only the naming calls: the STREAMS message interfaces have no use in the door backend.
int fattach(int fildes, const char *path);
int fdetach(const char *path);
int isastream(int fildes);

#ifdef __cplusplus
}
#endif

#endif
