/*
 * test_leak.c — 10,000 fork + echo + destroy cycles (half from a pool, half
 * cold) must leave the fd count unchanged and VmRSS flat (within noise).
 * Built optimised without ASan (its quarantine would mask RSS behaviour).
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
    struct vmm_stats st;
    vmm_stats_get(&st);
    CHECK(st.vms_live == 0);
    tmp_cleanup();
    return 0;
}
