/*
 * check.h — plain assertion macros and helpers shared by the VMM C tests:
 * CHECK aborts the test binary with file:line, OKV checks a vmm call and
 * prints its struct vmm_err, skip_without_kvm prints one "skipped:" line.
 */
#ifndef FORKBOX_TEST_CHECK_H
#define FORKBOX_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vmm.h"

#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c); exit(1); } } while (0)
#define OKV(call) do { struct vmm_err e_ = {0}; int r_ = (call); \
    if (r_) { fprintf(stderr, "%s:%d: %s = %d (%s: %s)\n", __FILE__, __LINE__, #call, r_, e_.op ? e_.op : "?", e_.msg); exit(1); } } while (0)

static inline void skip_without_kvm(const char *what)
{
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        printf("skipped: %s (no usable /dev/kvm)\n", what);
        exit(0);
    }
}

static inline char *guest_path(const char *dir, const char *name)
{
    static char buf[8][512];
    static int i;
    char *b = buf[i++ % 8];
    snprintf(b, 512, "%s/%s.elf", dir, name);
    return b;
}

#endif
