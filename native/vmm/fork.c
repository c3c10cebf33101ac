/*
 * fork.c — a vm from a snapshot: a shell (pooled or new), RAM as a private
 * copy-on-write mapping of the memory file, the snapshot's shared read-only
 * image mapping, and the saved vCPU state. The vCPU resumes right after the
 * doorbell `out` the snapshot was taken at, so the next vmm_vm_run fills a
 * request and the guest answers it with one exit. Hot path: ~8 ioctls + 1 mmap.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>

#include "internal.h"

_Atomic uint64_t fork_phase_ns[FP__N];

static inline void phase(enum fork_phase p, uint64_t *t)
{
    uint64_t now = vmm_now_ns();
    atomic_fetch_add_explicit(&fork_phase_ns[p], now - *t, memory_order_relaxed);
    *t = now;
}

static int restore(struct vmm_vm *vm, const struct vmm_snapshot *s, uint64_t *t, struct vmm_err *err)
{
    int fd = vm->sh.vcpu_fd;
    if (s->xcrs.nr_xcrs && ioctl(fd, KVM_SET_XCRS, &s->xcrs) < 0)
        return vmm_fail(err, -errno, "KVM_SET_XCRS", "%s", strerror(errno));
    if (ioctl(fd, KVM_SET_XSAVE, s->xsave) < 0)
        return vmm_fail(err, -errno, "KVM_SET_XSAVE", "%s", strerror(errno));
    phase(FP_XSAVE, t);
    if (ioctl(fd, KVM_SET_SREGS, &s->sregs) < 0)
        return vmm_fail(err, -errno, "KVM_SET_SREGS", "%s", strerror(errno));
    phase(FP_SREGS, t);
    if (ioctl(fd, KVM_SET_REGS, &s->regs) < 0)
        return vmm_fail(err, -errno, "KVM_SET_REGS", "%s", strerror(errno));
    phase(FP_REGS, t);
    if (s->msrs->nmsrs) {
        int n = ioctl(fd, KVM_SET_MSRS, s->msrs);
        if (n != (int)s->msrs->nmsrs)
            return vmm_fail(err, n < 0 ? -errno : -EINVAL, "KVM_SET_MSRS", "MSR %#x refused",
                            n >= 0 && n < (int)s->msrs->nmsrs ? s->msrs->entries[n].index : 0);
    }
    phase(FP_MSRS, t);
    if (ioctl(fd, KVM_SET_VCPU_EVENTS, &s->events) < 0)
        return vmm_fail(err, -errno, "KVM_SET_VCPU_EVENTS", "%s", strerror(errno));
    phase(FP_EVENTS, t);
    return 0;
}

int fork_restore(struct vmm_vm *vm, const struct vmm_snapshot *s, struct vmm_err *err)
{
    uint64_t t = vmm_now_ns();
    return restore(vm, s, &t, err);
}

int vmm_fork(struct vmm_snapshot *snap, struct vmm_pool *pool, struct vmm_vm **out, struct vmm_err *err)
{
    int rc;
    if (!snap || !out) return vmm_fail(err, -EINVAL, "vmm_fork", "missing argument");
    uint64_t t = vmm_now_ns();
    struct vmm_vm *vm = vm_alloc();
    if (!vm) return vmm_fail(err, -ENOMEM, "calloc", "vm");
    atomic_fetch_add(&snap->refs, 1);
    vm->snap = snap;
    vm->ram_size = snap->ram_size;
    vm->tsc_khz = snap->tsc_khz;
    vm->seq = snap->seq;
    vm->last_status = snap->last_status;   /* a child taken at a CALL: its first request is the answer */
    vm->image = snap->image;
    vm->image_size = snap->image_size;
    vm->image_map_size = snap->image_map_size;
    vm->image_mtime_ns = snap->image_mtime_ns;
    vm->image_shared = 1;
    vm->cpuid = snap->cpuid_same ? kvm_global(NULL)->cpuid : snap->cpuid;
    vm->started = 1;
    stat_add(ST_LIVE, 1);
    stat_add(ST_CREATED, 1);
    if (!pool || pool_take(pool, &vm->sh) != 0) {
        rc = shell_create(&vm->sh, err);
        if (rc) goto fail;
    } else if (vm->sh.bound && vm->sh.bound != snap && vm->sh.bound != snap->root) {
        /* Bound to another snapshot (the pool was rebound): not usable. */
        shell_destroy(&vm->sh);
        rc = shell_create(&vm->sh, err);
        if (rc) goto fail;
    }
    phase(FP_SHELL, &t);
    if (!snap->cpuid_same && ioctl(vm->sh.vcpu_fd, KVM_SET_CPUID2, snap->cpuid) < 0) {
        rc = vmm_fail(err, -errno, "KVM_SET_CPUID2", "snapshot CPUID: %s", strerror(errno));
        goto fail;
    }
    if (vm->sh.bound) {
        /* Pre-bound shell: RAM already mapped and slotted by the pool. */
        vm->ram = vm->sh.ram;
        vm->sh.ram = NULL;
        /* A shell bound to the root of a child: lay the child's pages over it. */
        if (snap->root) {
            rc = snapshot_overlay(snap, vm->ram, err);
            if (rc) goto fail;
        }
        snapshot_put(vm->sh.bound);   /* the vm holds its own reference */
        vm->sh.bound = NULL;
    } else {
        uint8_t *ram = NULL;
        rc = shell_bind(&vm->sh, snap, &ram, err);
        if (rc) goto fail;
        vm->ram = ram;
    }
    if (snap->shm.n) {
        /* A child derived from a vm with shared ranges: the same objects, over its RAM. */
        vm->had_shm = 1;
        rc = shm_ranges_copy(&vm->shm, &snap->shm, err);
        if (!rc) rc = shm_ranges_map(vm->ram, &vm->shm, err);
        if (rc) goto fail;
    }
    phase(FP_SLOTS, &t);
    rc = restore(vm, snap, &t, err);
    if (rc) goto fail;
    stat_add(ST_FORKS, 1);
    *out = vm;
    return 0;
fail:
    vmm_vm_destroy(vm);
    return rc;
}
