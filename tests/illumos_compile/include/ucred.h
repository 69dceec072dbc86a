// SPDX-License-Identifier: MPL-2.0
// Declarations-only stand-in for illumos <ucred.h>, used to compile-check the illumos door backend on other systems.
#ifndef PORTUNUS_STANDIN_UCRED_H
#define PORTUNUS_STANDIN_UCRED_H

// Treated as the system header it stands in for, whose warnings the compiler does not report on
// illumos either.
#pragma GCC system_header

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ucred_s ucred_t;

// illumos declares these in <sys/types.h>; other systems have no such types.
typedef int projid_t;
typedef int zoneid_t;

ucred_t *ucred_get(pid_t pid);
void ucred_free(ucred_t *uc);
uid_t ucred_geteuid(const ucred_t *uc);
uid_t ucred_getruid(const ucred_t *uc);
uid_t ucred_getsuid(const ucred_t *uc);
gid_t ucred_getegid(const ucred_t *uc);
gid_t ucred_getrgid(const ucred_t *uc);
gid_t ucred_getsgid(const ucred_t *uc);
int ucred_getgroups(const ucred_t *uc, const gid_t **groups);
pid_t ucred_getpid(const ucred_t *uc);
projid_t ucred_getprojid(const ucred_t *uc);
zoneid_t ucred_getzoneid(const ucred_t *uc);
unsigned int ucred_getpflags(const ucred_t *uc, unsigned int flags);
size_t ucred_size(void);
// ucred_getprivset() and ucred_getlabel() are left out: their types live in <priv.h> and
// <tsol/label.h>, which this stand-in does not reproduce and the backend does not use.

#ifdef __cplusplus
}
#endif

#endif
