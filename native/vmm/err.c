/*
 * err.c — error reporting and stats counters shared by the VMM files.
 * vmm_fail fills an optional struct vmm_err and returns its code, so call
 * sites read `return vmm_fail(err, -errno, "KVM_RUN", "...")`.
 */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "internal.h"

int vmm_fail(struct vmm_err *err, int code, const char *op, const char *fmt, ...)
{
    if (code >= 0) code = -5; /* -EIO: never report a failure as success */
    if (err) {
        va_list ap;
        err->code = code;
        err->op = op;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

uint64_t vmm_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static _Atomic uint64_t stats[ST__N];

void stat_add(enum stat_id id, int64_t v)
{
    atomic_fetch_add_explicit(&stats[id], (uint64_t)v, memory_order_relaxed);
}

void vmm_stats_get(struct vmm_stats *out)
{
#define LD(i) atomic_load_explicit(&stats[i], memory_order_relaxed)
    out->vms_live = LD(ST_LIVE);
    out->vms_created = LD(ST_CREATED);
    out->vms_destroyed = LD(ST_DESTROYED);
    out->forks = LD(ST_FORKS);
    out->boots = LD(ST_BOOTS);
    out->runs = LD(ST_RUNS);
    out->exits = LD(ST_EXITS);
    out->doorbells = LD(ST_DOORBELLS);
    out->crashes = LD(ST_CRASHES);
    out->timeouts = LD(ST_TIMEOUTS);
    out->kicks = LD(ST_KICKS);
    out->recycles = LD(ST_RECYCLES);
#undef LD
}

const char *vmm_outcome_name(enum vmm_outcome o)
{
    switch (o) {
    case VMM_OK: return "ok";
    case VMM_CRASH_FAULT: return "crash_fault";
    case VMM_CRASH_IO: return "crash_io";
    case VMM_CRASH_MMIO: return "crash_mmio";
    case VMM_CRASH_SHUTDOWN: return "crash_shutdown";
    case VMM_CRASH_HLT: return "crash_hlt";
    case VMM_CRASH_INTERNAL: return "crash_internal";
    case VMM_CRASH_PROTOCOL: return "crash_protocol";
    case VMM_TIMEOUT: return "timeout";
    case VMM_KILLED: return "killed";
    }
    return "unknown";
}
