// SPDX-License-Identifier: MPL-2.0
// Declarations-only stand-in for illumos <sys/door.h>, used to compile-check the illumos door backend on other systems.
#ifndef PORTUNUS_STANDIN_SYS_DOOR_H
#define PORTUNUS_STANDIN_SYS_DOOR_H

// Treated as the system header it stands in for, whose warnings the compiler does not report on
// illumos either.
#pragma GCC system_header

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

// illumos declares uint_t in <sys/types.h>; other systems do not.
typedef unsigned int uint_t;

typedef unsigned long long door_ptr_t;
typedef unsigned long long door_id_t;
typedef unsigned int door_attr_t;

#define DOOR_INVAL (-1)
#define DOOR_UNREF_DATA ((void *)1)
#define DOOR_QUERY (-2)

// Attributes given to door_create() and door_xcreate().
#define DOOR_UNREF 0x01
#define DOOR_PRIVATE 0x02
#define DOOR_UNREF_MULTI 0x10
#define DOOR_REFUSE_DESC 0x40
#define DOOR_NO_CANCEL 0x80
#define DOOR_NO_DEPLETION_CB 0x100

// Attributes reported by door_info() and in received door_desc_t entries.
#define DOOR_LOCAL 0x04
#define DOOR_REVOKED 0x08
#define DOOR_IS_UNREF 0x20
#define DOOR_PRIVCREATE 0x200
#define DOOR_DEPLETION_CB 0x400

#define DOOR_CREATE_MASK                                                                                     \
    (DOOR_UNREF | DOOR_PRIVATE | DOOR_UNREF_MULTI | DOOR_REFUSE_DESC | DOOR_NO_CANCEL | DOOR_NO_DEPLETION_CB | \
     DOOR_PRIVCREATE)
#define DOOR_ATTR_MASK (DOOR_CREATE_MASK | DOOR_LOCAL | DOOR_REVOKED | DOOR_IS_UNREF)

// Attributes of a door_desc_t entry.
#define DOOR_DESCRIPTOR 0x10000
#define DOOR_RELEASE 0x40000

// Parameters for door_getparam() and door_setparam().
#define DOOR_PARAM_DESC_MAX 1
#define DOOR_PARAM_DATA_MAX 2
#define DOOR_PARAM_DATA_MIN 3

// On x86 illumos (_LONG_LONG_ALIGNMENT 8, _LONG_LONG_ALIGNMENT_32 4) these two structs are packed
// to 4 bytes so that 32- and 64-bit processes share one layout; laid out naturally, d_id would
// move from offset 8 to 16 and every passed descriptor would be misread. SPARC does not pack them.
#if defined(__x86_64__) || defined(__i386__)
#pragma pack(4)
#endif

typedef struct door_desc {
    door_attr_t d_attributes;
    union {
        struct {
            int d_descriptor;
            door_id_t d_id;
        } d_desc;
        int d_resv[5];
    } d_data;
} door_desc_t;

typedef struct door_info {
    pid_t di_target;
    door_ptr_t di_proc;
    door_ptr_t di_data;
    door_attr_t di_attributes;
    door_id_t di_uniquifier;
    int di_resv[4];
} door_info_t;

#if defined(__x86_64__) || defined(__i386__)
#pragma pack()
#endif

typedef struct door_cred {
    uid_t dc_euid;
    gid_t dc_egid;
    uid_t dc_ruid;
    gid_t dc_rgid;
    pid_t dc_pid;
    int dc_resv[4];
} door_cred_t;

// Every field is in/out: door_call() rewrites them to say where the results are.
typedef struct door_arg {
    char *data_ptr;
    size_t data_size;
    door_desc_t *desc_ptr;
    uint_t desc_num;
    char *rbuf;
    size_t rsize;
} door_arg_t;

#ifdef __cplusplus
}
#endif

#endif
