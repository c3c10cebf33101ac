/*
 * preempt.c — preemption of guest threads. The runtime keeps one vCPU's
 * threads itself; a CPU-bound one would starve the others, so while it reports
 * more than one thread the run loop's timer ticks every PREEMPT_TICK_NS and
 * each tick calls the runtime's preempt entry: the interrupted RIP goes on the
 * program's stack below the red zone (like a signal frame), RIP = entry. A tick
 * that lands inside the runtime (or the syscall sled) only sets its pending
 * flag, checked on the way out of the syscall. Single-threaded guests get one
 * probe per PREEMPT_PROBE_NS of run time. The runtime's table is read from the
 * guest at FB_RUNTIME_BASE and validated (guest memory is untrusted).
 */
#include <linux/kvm.h>
#include <string.h>
#include <sys/ioctl.h>

#include "internal.h"
#include "preempt.h"

#define PREEMPT_TICK_NS 10000000ull   /* 10 ms while the guest has threads */
#define PREEMPT_PROBE_NS 50000000ull  /* 50 ms otherwise: is it still alone? */
#define RED_ZONE 128

/* what the runtime puts at FB_RUNTIME_BASE (entry.S) */
struct preempt_info {
    char magic[16];          /* "forkbox-preempt1" */
    uint64_t entry;          /* fb_preempt_entry */
    uint64_t nthreads;       /* address of the int thread count */
    uint64_t pending;        /* address of the int pending flag */
};
static const char MAGIC[16] = { 'f', 'o', 'r', 'k', 'b', 'o', 'x', '-', 'p', 'r', 'e', 'e', 'm', 'p', 't', '1' };

static int in_runtime(uint64_t a, uint64_t len)
{
    return a >= FB_RUNTIME_BASE && a + len <= FB_RUNTIME_LIMIT && a + len > a;
}

/* the validated table, or NULL (a test guest, an older runtime, garbage) */
static const struct preempt_info *info(const struct vmm_vm *vm)
{
    if (!vm->ram || vm->ram_size < FB_RUNTIME_LIMIT) return NULL;
    const struct preempt_info *pi = (const struct preempt_info *)(vm->ram + FB_RUNTIME_BASE);
    if (memcmp(pi->magic, MAGIC, sizeof MAGIC)) return NULL;
    if (!in_runtime(pi->entry, 1) || !in_runtime(pi->nthreads, 4) || !in_runtime(pi->pending, 4)) return NULL;
    if ((pi->nthreads | pi->pending) & 3) return NULL;
    return pi;
}

static int threaded(const struct vmm_vm *vm, const struct preempt_info *pi)
{
    return pi && __atomic_load_n((const int *)(vm->ram + pi->nthreads), __ATOMIC_RELAXED) > 1;
}

/* the next tick, or the deadline itself (period 0); the timer is the deadline's, so
 * every path that took it over must give it back */
static void rearm(timer_t timer, uint64_t deadline_ns, uint64_t period)
{
    uint64_t t = period ? vmm_now_ns() + period : deadline_ns;
    if (deadline_ns < t) t = deadline_ns;
    struct itimerspec its = { .it_value = { .tv_sec = (time_t)(t / 1000000000ull), .tv_nsec = (long)(t % 1000000000ull) } };
    timer_settime(timer, TIMER_ABSTIME, &its, NULL);
}

void vmm_preempt_arm(struct vmm_vm *vm, timer_t timer, uint64_t deadline_ns)
{
    if (!deadline_ns) return; /* the tick rides on the deadline timer */
    const struct preempt_info *pi = info(vm);
    if (!pi) return;
    rearm(timer, deadline_ns, threaded(vm, pi) ? PREEMPT_TICK_NS : PREEMPT_PROBE_NS);
}

/* push the interrupted RIP below the red zone and enter the runtime's preempt entry */
static void inject(struct vmm_vm *vm, const struct preempt_info *pi)
{
    struct kvm_regs regs;
    if (ioctl(vm->sh.vcpu_fd, KVM_GET_REGS, &regs) < 0) return;
    int *pending = (int *)(vm->ram + pi->pending);
    if (regs.rip < FB_ARENA_BASE) { /* the runtime, the sled, the system area: later */
        __atomic_store_n(pending, 1, __ATOMIC_RELAXED);
        return;
    }
    if (regs.rip >= vm->ram_size) return;
    uint64_t sp = regs.rsp - RED_ZONE - 8;
    if (regs.rsp < FB_ARENA_BASE + RED_ZONE + 8 || sp + 8 > vm->ram_size) return; /* not a stack we can use */
    memcpy(vm->ram + sp, &regs.rip, 8);
    regs.rsp = sp;
    regs.rip = pi->entry;
    ioctl(vm->sh.vcpu_fd, KVM_SET_REGS, &regs); /* on failure the guest just runs on */
}

void vmm_preempt_tick(struct vmm_vm *vm, timer_t timer, uint64_t deadline_ns)
{
    if (!deadline_ns) return;
    /* the guest may have overwritten the table since: then only the deadline stays */
    const struct preempt_info *pi = info(vm);
    int t = threaded(vm, pi);
    if (t && !atomic_load(&vm->killed)) inject(vm, pi);
    rearm(timer, deadline_ns, !pi ? 0 : t ? PREEMPT_TICK_NS : PREEMPT_PROBE_NS);
}
