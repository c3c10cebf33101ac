/*
 * fuzz_snapshot.c — libFuzzer target: the state-file parser vmm_snapshot_open
 * uses (snap_parse_state, snapshot.c). Half the inputs get their header and
 * body checksums fixed up first, so the fuzzer reaches the field checks behind
 * them. An accepted file must describe exactly its own length.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "snapshot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > SNAP_STATE_MAX) return 0;
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    memcpy(buf, data, size);
    if (size >= SNAP_HEADER_SIZE && (buf[20] & 0x80)) {
        /* fix-up mode: byte 20 (flags) bit 7 selects it; clear it so flags can be 0 */
        buf[20] &= 0x7f;
        struct snap_header h;
        memcpy(&h, buf, sizeof h);
        h.body_fnv = fnv1a64(0xcbf29ce484222325ull, buf + SNAP_HEADER_SIZE, size - SNAP_HEADER_SIZE);
        h.header_fnv = fnv1a64(0xcbf29ce484222325ull, &h, offsetof(struct snap_header, header_fnv));
        memcpy(buf, &h, sizeof h);
    }
    struct vmm_err e;
    struct snap_header h;
    if (snap_parse_state(buf, size, "fuzz", &h, &e) == 0) {
        if (SNAP_HEADER_SIZE + h.body_size != size || h.image_path_len > h.body_size || h.n_cpuid > SNAP_CPUID_MAX ||
            h.n_msrs > SNAP_MSRS_MAX || h.xsave_size > SNAP_XSAVE_MAX)
            __builtin_trap();
        if (h.image_path_len && buf[size - h.image_path_len] != '/') __builtin_trap();
    }
    free(buf);
    return 0;
}
