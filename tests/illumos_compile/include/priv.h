// SPDX-License-Identifier: MPL-2.0
// Declarations-only stand-in for illumos <priv.h>, used to compile-check the daemon's privilege code on other systems.
#ifndef PORTUNUS_STANDIN_PRIV_H
#define PORTUNUS_STANDIN_PRIV_H

#pragma GCC system_header

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct priv_set priv_set_t;
typedef const char* priv_ptype_t;
typedef const char* priv_t;
typedef enum { PRIV_ON, PRIV_OFF, PRIV_SET } priv_op_t;

#define PRIV_PERMITTED "Permitted"
#define PRIV_EFFECTIVE "Effective"
#define PRIV_INHERITABLE "Inheritable"
#define PRIV_LIMIT "Limit"
#define PRIV_PROC_SETID ((const char*)"proc_setid")
#define PRIV_PROC_OWNER ((const char*)"proc_owner")
#define PRIV_NET_PRIVADDR ((const char*)"net_privaddr")
#define PRIV_FILE_DAC_WRITE ((const char*)"file_dac_write")
#define PRIV_ALLSETS ((priv_ptype_t)0)
#define PRIV_AWARE 0x0002U

priv_set_t* priv_allocset(void);
void priv_freeset(priv_set_t* sp);
void priv_emptyset(priv_set_t* sp);
int priv_addset(priv_set_t* sp, priv_t priv);
priv_set_t* priv_str_to_set(const char* buf, const char* sep, const char** endptr);
int setppriv(priv_op_t op, priv_ptype_t which, const priv_set_t* set);
int setpflags(unsigned flag, unsigned value);
int priv_set(priv_op_t op, priv_ptype_t which, ...);

#ifdef __cplusplus
}
#endif

#endif
