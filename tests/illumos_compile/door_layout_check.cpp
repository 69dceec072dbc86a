// SPDX-License-Identifier: MPL-2.0
// Pins the declarations-only door structs to the illumos x86 ABI, so the compile check cannot pass against a wrong layout.
#include <door.h>

#include <cstddef>

#if defined(__x86_64__) || defined(__i386__)
// doors-facts §1.2: under illumos's #pragma pack(4), not the natural 32 bytes with d_id at 16.
static_assert(sizeof(door_desc_t) == 24);
static_assert(alignof(door_desc_t) == 4);
static_assert(offsetof(door_desc_t, d_data) == 4);
static_assert(offsetof(door_desc_t, d_data.d_desc.d_descriptor) == 4);
static_assert(offsetof(door_desc_t, d_data.d_desc.d_id) == 8);

static_assert(sizeof(door_info_t) == 48);
static_assert(offsetof(door_info_t, di_proc) == 4);
static_assert(offsetof(door_info_t, di_data) == 12);
static_assert(offsetof(door_info_t, di_attributes) == 20);
static_assert(offsetof(door_info_t, di_uniquifier) == 24);

static_assert(sizeof(door_cred_t) == 36);
#endif

#if defined(__x86_64__)
static_assert(sizeof(door_arg_t) == 48);
static_assert(offsetof(door_arg_t, desc_num) == 24);
static_assert(offsetof(door_arg_t, rbuf) == 32);
static_assert(offsetof(door_arg_t, rsize) == 40);
#endif
