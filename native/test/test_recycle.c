/*
 * test_recycle.c — vmm_vm_recycle: a fork that answered is put back, byte for
 * byte, into the state of a fresh fork of its snapshot (RAM compared with the
 * memory file, mailbox all zeros, the same answers as a fresh fork), after
 * ordinary and hostile requests, on both page-scan paths and both reset paths
 * (restore in place, drop past the cap); a crashed, timed-out, killed or
 * exited fork, a fork of a child and a booted vm are refused and left dead.
 */
#include "util.h"
#include "internal.h"
#include <sys/ioctl.h>

#define SEC 2000000000ull
#define RAM (128ull << 20)

static struct vmm_response req(struct vmm_vm *vm, const char *p)
{
    struct vmm_response r = run_req(vm, p, SEC);
    if (r.outcome != VMM_OK) fprintf(stderr, "%s: %s %s\n", p, vmm_outcome_name(r.outcome), r.detail);
    CHECK(r.outcome == VMM_OK);
    return r;
}

/* The vCPU holds exactly the snapshot's registers (what a fresh fork starts from). */
static void vcpu_as_snapshot(struct vmm_vm *vm)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_vcpu_events ev;
    CHECK(ioctl(vm->sh.vcpu_fd, KVM_GET_REGS, &regs) == 0);
    CHECK(ioctl(vm->sh.vcpu_fd, KVM_GET_SREGS, &sregs) == 0);
    CHECK(ioctl(vm->sh.vcpu_fd, KVM_GET_VCPU_EVENTS, &ev) == 0);
    CHECK(memcmp(&regs, &vm->snap->regs, sizeof regs) == 0);
    CHECK(memcmp(&sregs, &vm->snap->sregs, sizeof sregs) == 0);
    CHECK(ev.exception.injected == vm->snap->events.exception.injected && ev.nmi.pending == vm->snap->events.nmi.pending);
    struct kvm_xsave *x = calloc(1, vm->snap->xsave_size);
    CHECK(x && ioctl(vm->sh.vcpu_fd, KVM_GET_XSAVE, x) == 0);
    CHECK(memcmp(x->region, vm->snap->xsave->region, 512) == 0);   /* x87/SSE legacy area */
    free(x);
    CHECK(vm->seq == vm->snap->seq && !vm->pending_io && !vm->dead);
}

static void same_as_fresh(struct vmm_vm *vm, int32_t fresh_c)
{
    vcpu_as_snapshot(vm);
    uint64_t d = 99, m = 99;
    OKV(vmm_vm_diff_snapshot(vm, &d, &m, &e_));
    if (d || m) fprintf(stderr, "after recycle: %llu RAM pages differ, %llu mailbox pages not zero\n",
                        (unsigned long long)d, (unsigned long long)m);
    CHECK(d == 0 && m == 0);
    /* The first answer of a fresh fork, and the arena as the template left it. */
    struct vmm_response r = req(vm, "c");
    CHECK(r.status == FB_ST_DONE && r.exit_code == fresh_c && r.exits == 1);
    CHECK(req(vm, "s 64").exit_code == 0);
}

static void refused(struct vmm_vm *vm)
{
    struct vmm_recycle_stats st;
    struct vmm_err e = {0};
    CHECK(vmm_vm_recycle(vm, &st, &e) < 0);
    struct vmm_response r;
    struct vmm_request q = { .kind = FB_REQ_ECHO, .timeout_ns = SEC };
    CHECK(vmm_vm_run(vm, &q, &r, &e) == -EIO);   /* dead: never handed out */
    vmm_vm_destroy(vm);
}

int main(int argc, char **argv)
{
    skip_without_kvm("recycle tests");
    g_guests = argc > 1 ? argv[1] : "out/guests";
    tmp_init();
    struct vmm_snapshot *snap = make_snapshot("fill", NULL, RAM);
    struct vmm_snapshot *spin = make_snapshot("spin", NULL, 64ull << 20);
    struct vmm_snapshot *crash = make_snapshot("crash", NULL, 64ull << 20);
    int fds0 = count_fds();

    struct vmm_vm *ref;
    OKV(vmm_fork(snap, NULL, &ref, &e_));
    int32_t fresh_c = req(ref, "c").exit_code;
    vmm_vm_destroy(ref);

    /* Ordinary requests, many cycles, both scan paths; restored pages stay private. */
    struct vmm_vm *vm;
    OKV(vmm_fork(snap, NULL, &vm, &e_));
    struct vmm_recycle_stats st;
    for (int i = 0; i < 40; i++) {
        recycle_force_pread = i & 1;
        char p[32];
        snprintf(p, sizeof p, "w %d %d", 100 + i * 10, 1 + i);
        req(vm, "c");
        req(vm, p);
        uint64_t d = 0, m = 0;
        OKV(vmm_vm_diff_snapshot(vm, &d, &m, &e_));
        CHECK(d >= (uint64_t)(100 + i * 10) && m > 0);
        OKV(vmm_vm_recycle(vm, &st, &e_));
        CHECK(st.ram_pages >= (uint64_t)(100 + i * 10) && st.restored == st.ram_pages && st.dropped == 0);
        CHECK(st.mailbox_pages >= 1);
        same_as_fresh(vm, fresh_c);
        OKV(vmm_vm_recycle(vm, &st, &e_));
    }
    recycle_force_pread = 0;
    uint64_t priv = 0;
    OKV(vmm_vm_private_bytes(vm, &priv, &e_));
    CHECK(priv >= 490 * FB_PAGE_SIZE && priv < (490 + 512) * FB_PAGE_SIZE);   /* kept: no refault next time */

    /* Hostile: every reachable page written, past the cap: dropped, memory given back. */
    long anon0 = proc_kib("/proc/self/status", "RssAnon");
    struct vmm_response r = req(vm, "h 165");
    CHECK(r.status == FB_ST_DONE);
    long anon1 = proc_kib("/proc/self/status", "RssAnon");
    CHECK(anon1 - anon0 > 100 * 1024);
    uint64_t d = 0, m = 0;
    OKV(vmm_vm_diff_snapshot(vm, &d, &m, &e_));
    CHECK(d > 30000 && m > 16000);
    OKV(vmm_vm_recycle(vm, &st, &e_));
    CHECK(st.dropped == st.ram_pages && st.ram_pages > 30000 && st.restored == 0 && st.mailbox_pages > 16000);
    long anon2 = proc_kib("/proc/self/status", "RssAnon");
    CHECK(anon1 - anon2 > 100 * 1024);
    same_as_fresh(vm, fresh_c);
    OKV(vmm_vm_recycle(vm, &st, &e_));
    /* ... and hostile again through the pagemap read path. */
    recycle_force_pread = 1;
    req(vm, "h 7");
    OKV(vmm_vm_recycle(vm, &st, &e_));
    recycle_force_pread = 0;
    same_as_fresh(vm, fresh_c);

    vmm_vm_destroy(vm);

    /* Never recycled: an exited program, a crash, a timeout, a kill, twice, a child, a boot. */
    OKV(vmm_fork(snap, NULL, &vm, &e_));
    r = req(vm, "x");
    CHECK(r.status == FB_ST_EXIT);
    refused(vm);

    OKV(vmm_fork(crash, NULL, &vm, &e_));
    struct vmm_request q = { .kind = FB_REQ_ECHO, .payload = "ud2", .payload_len = 3, .timeout_ns = SEC };
    OKV(vmm_vm_run(vm, &q, &r, &e_));
    CHECK(r.outcome != VMM_OK);
    refused(vm);

    OKV(vmm_fork(spin, NULL, &vm, &e_));
    q = (struct vmm_request){ .kind = FB_REQ_ECHO, .payload = "spin", .payload_len = 4, .timeout_ns = 20000000ull };
    OKV(vmm_vm_run(vm, &q, &r, &e_));
    CHECK(r.outcome == VMM_TIMEOUT);
    refused(vm);

    OKV(vmm_fork(snap, NULL, &vm, &e_));
    req(vm, "c");
    vmm_vm_kick(vm);
    refused(vm);

    OKV(vmm_fork(snap, NULL, &vm, &e_));
    refused(vm);   /* never ran: no DONE answer to recycle after */

    OKV(vmm_fork(snap, NULL, &vm, &e_));
    req(vm, "w 10 3");
    struct vmm_snapshot *child;
    OKV(vmm_snapshot_derive(vm, &child, &e_));
    req(vm, "c");
    refused(vm);
    struct vmm_vm *kid;
    OKV(vmm_fork(child, NULL, &kid, &e_));
    req(kid, "c");
    refused(kid);
    vmm_snapshot_close(child);

    struct vmm_vm *booted = boot_ready("fill", NULL, 64ull << 20);
    req(booted, "c");
    refused(booted);

    /* A pooled fork recycles too (its RAM came from the pool's shell). */
    struct vmm_pool *pool;
    struct vmm_pool_config pc = { .target = 1, .max_ram_size = RAM };
    OKV(vmm_pool_create(&pc, &pool, &e_));
    OKV(vmm_pool_bind(pool, snap, &e_));
    pool_wait_full(pool, 1);
    OKV(vmm_fork(snap, pool, &vm, &e_));
    req(vm, "w 300 4");
    OKV(vmm_vm_recycle(vm, &st, &e_));
    same_as_fresh(vm, fresh_c);
    vmm_vm_destroy(vm);
    vmm_pool_destroy(pool);

    struct vmm_stats vs;
    vmm_stats_get(&vs);
    CHECK(vs.recycles >= 80);
    vmm_snapshot_close(snap);
    vmm_snapshot_close(spin);
    vmm_snapshot_close(crash);
    CHECK(count_fds() <= fds0);
    tmp_cleanup();
    printf("test_recycle: ok\n");
    return 0;
}
