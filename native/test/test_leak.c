/*
 * test_leak.c — 10,000 fork + echo + destroy cycles (half from a pool, half
 * cold) must leave the fd count unchanged and VmRSS flat (within noise); so
 * must 2,000 cycles of host shared memory (create an object, share it into a
 * fork with copy_in, derive, fork the child, which maps it too, unshare,
 * destroy). Built optimised without ASan (its quarantine would mask RSS
 * behaviour).
 */
#include "util.h"

static void cycles(struct vmm_snapshot *s, struct vmm_pool *p, int n)
{
    for (int i = 0; i < n; i++) {
        struct vmm_vm *vm;
        OKV(vmm_fork(s, (i & 1) ? p : NULL, &vm, &e_));
        struct vmm_response r = run_req(vm, "leak?", 1000000000ull);
        CHECK(r.outcome == VMM_OK && r.exits == 1 && r.out_len == 5);
        vmm_vm_destroy(vm);
    }
}

static void shm_cycles(struct vmm_snapshot *s, int n)
{
    for (int i = 0; i < n; i++) {
        struct vmm_shm *shm;
        OKV(vmm_shm_create(16 * FB_PAGE_SIZE, &shm, &e_));
        struct vmm_vm *a, *k;
        OKV(vmm_fork(s, NULL, &a, &e_));
        OKV(vmm_vm_share(a, 0x600000, 16 * FB_PAGE_SIZE, shm, 0, 1, &e_));
        char w[48];
        snprintf(w, sizeof w, "w 0x600000 %d", i);
        struct vmm_response r = run_req(a, w, 1000000000ull);
        CHECK(r.outcome == VMM_OK && r.status == FB_ST_DONE);
        struct vmm_snapshot *c;
        OKV(vmm_snapshot_derive(a, &c, &e_));
        OKV(vmm_fork(c, NULL, &k, &e_));
        vmm_snapshot_close(c);
        OKV(vmm_vm_unshare(a, 0x600000, FB_PAGE_SIZE, &e_));
        vmm_vm_destroy(a);
        vmm_shm_put(shm);   /* k holds it now */
        r = run_req(k, "r 0x600000", 1000000000ull);
        CHECK(r.outcome == VMM_OK && r.exit_code == i);
        vmm_vm_destroy(k);
    }
}

int main(int argc, char **argv)
{
    skip_without_kvm("leak test");
    CHECK(argc == 2);
    g_guests = argv[1];
    tmp_init();
    struct vmm_snapshot *s = make_snapshot("echo", NULL, 256ull << 20);
    struct vmm_pool *p;
    OKV(vmm_pool_create(&(struct vmm_pool_config){ .target = 8 }, &p, &e_));
    OKV(vmm_pool_bind(p, s, &e_));
    cycles(s, p, 1000);   /* warm up allocator caches, the pool and the thread's timer */
    pool_wait_full(p, 8);
    int fd0 = count_fds();
    long rss0 = proc_kib("/proc/self/status", "VmRSS");
    uint64_t t0 = vmm_now_ns_test();
    cycles(s, p, 10000);
    double secs = (vmm_now_ns_test() - t0) / 1e9;
    pool_wait_full(p, 8);
    int fd1 = count_fds();
    long rss1 = proc_kib("/proc/self/status", "VmRSS");
    printf("leak: 10000 fork+echo+destroy in %.2f s (%.0f us each): fds %d -> %d, VmRSS %ld -> %ld KiB\n", secs,
           secs * 1e6 / 10000, fd0, fd1, rss0, rss1);
    CHECK(fd1 == fd0);
    CHECK(rss1 - rss0 < 4096);
    vmm_pool_destroy(p);
    vmm_snapshot_close(s);

    struct vmm_snapshot *cs = make_snapshot("caller", NULL, 64ull << 20);
    shm_cycles(cs, 200);   /* warm up (and the cached pagemap fd of derive.c) */
    fd0 = count_fds();
    rss0 = proc_kib("/proc/self/status", "VmRSS");
    t0 = vmm_now_ns_test();
    shm_cycles(cs, 2000);
    secs = (vmm_now_ns_test() - t0) / 1e9;
    fd1 = count_fds();
    rss1 = proc_kib("/proc/self/status", "VmRSS");
    printf("leak: 2000 shared-memory cycles in %.2f s: fds %d -> %d, VmRSS %ld -> %ld KiB\n", secs, fd0, fd1, rss0, rss1);
    CHECK(fd1 == fd0);
    CHECK(rss1 - rss0 < 4096);
    vmm_snapshot_close(cs);
    struct vmm_stats st;
    vmm_stats_get(&st);
    CHECK(st.vms_live == 0);
    tmp_cleanup();
    return 0;
}
