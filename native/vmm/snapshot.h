/*
 * snapshot.h — the on-disk state file header (see docs/snapshot-format.md).
 * Fixed 256 bytes, little-endian, followed by the body sections in this order:
 * regs, sregs, vcpu events, xcrs, xsave, MSR entries, CPUID entries, image path.
 */
#ifndef FORKBOX_VMM_SNAPSHOT_H
#define FORKBOX_VMM_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#define SNAP_MAGIC   0x50414e5358424b46ull  /* "FKBXSNAP" */
#define SNAP_VERSION 1u
#define SNAP_HEADER_SIZE 256u
#define SNAP_STATE_MAX (4u << 20)
#define SNAP_MSRS_MAX 4096u
#define SNAP_CPUID_MAX 256u
#define SNAP_XSAVE_MAX (1u << 20)
#define SNAP_PATH_MAX 4096u

struct snap_header {
    uint64_t magic;
    uint32_t version;
    uint32_t header_size;
    uint32_t abi_version;
    uint32_t flags;              /* 0 */
    uint64_t body_size;
    uint64_t body_fnv;           /* FNV-1a-64 of the body */
    uint64_t ram_size;
    uint64_t mailbox_size;
    uint64_t mem_mtime_ns;       /* identity of the memory file written with this state */
    uint64_t image_size;
    uint64_t image_mtime_ns;     /* identity of the image file (with its size) */
    uint64_t tsc_khz;
    uint64_t seq;                /* last request sequence number the guest saw */
    uint32_t image_path_len;     /* 0 = no image */
    uint32_t xsave_size;
    uint32_t n_msrs;
    uint32_t n_cpuid;
    uint32_t regs_size, sregs_size, events_size, xcrs_size;
    uint8_t reserved[120];
    uint64_t header_fnv;         /* FNV-1a-64 of the 248 bytes above */
};
_Static_assert(sizeof(struct snap_header) == SNAP_HEADER_SIZE, "snapshot header is 256 bytes");

struct vmm_err;
/* Validates a whole state file held in buf (header, sizes, checksums, an
 * absolute image path) and copies its header to *h: 0 or -EINVAL. The one
 * parser vmm_snapshot_open uses, exposed for the fuzz harness. */
int snap_parse_state(const uint8_t *buf, size_t len, const char *path, struct snap_header *h, struct vmm_err *err);

#endif
