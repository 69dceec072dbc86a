// SPDX-License-Identifier: MPL-2.0
// Declarations-only stand-in for illumos <door.h>, used to compile-check the illumos door backend on other systems.
#ifndef PORTUNUS_STANDIN_DOOR_H
#define PORTUNUS_STANDIN_DOOR_H

// Treated as the system header it stands in for: on illumos the compiler reports no warnings from
// <door.h>, and the C idiom of a function named like its struct (door_info) trips -Wshadow in C++.
#pragma GCC system_header

#include <sys/types.h>
#include <sys/door.h>
#include <ucred.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef void door_server_procedure_t(void *cookie, char *argp, size_t arg_size, door_desc_t *dp, uint_t n_desc);

int door_create(door_server_procedure_t *server_procedure, void *cookie, uint_t attributes);
int door_revoke(int d);
int door_info(int d, door_info_t *info);
int door_call(int d, door_arg_t *params);
int door_return(char *data_ptr, size_t data_size, door_desc_t *desc_ptr, uint_t num_desc);
int door_cred(door_cred_t *info);
int door_ucred(ucred_t **info);
int door_bind(int did);
int door_unbind(void);
int door_getparam(int d, int param, size_t *out);
int door_setparam(int d, int param, size_t val);

typedef void door_server_func_t(door_info_t *);
door_server_func_t *door_server_create(door_server_func_t *create_proc);

// door_xcreate(): the creation function returns 1 (started a thread running start_func),
// 0 (declined) or -1 (failed).
typedef int door_xcreate_server_func_t(door_info_t *info, void *(*start_func)(void *), void *start_arg,
                                       void *cookie);
typedef void door_xcreate_thrsetup_func_t(void *cookie);

int door_xcreate(door_server_procedure_t *server_procedure, void *cookie, uint_t attributes,
                 door_xcreate_server_func_t *create_func, door_xcreate_thrsetup_func_t *setup_func,
                 void *create_cookie, int nthread);

#ifdef __cplusplus
}
#endif

#endif
