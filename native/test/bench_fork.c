/*
 * bench_fork.c — where fork time goes on this host: the bare-VM floor, cold
 * and pooled forks, fork + first echo, destroy, per-phase averages, memory per
 * idle fork over 1,000 live forks, 1,000 forks answering, 1 MiB responses.
 * Prints p50/p99 and ratios against the floor measured in the same run.
 */
#include <signal.h>

#include "util.h"
#include "internal.h"

#define N 300
#define RAM (256ull << 20)

static uint64_t now(void) { return vmm_now_ns_test(); }

static void report(const char *what, uint64_t *v, int n)
{
    uint64_t p50 = pct(v, n, 50), p99 = pct(v, n, 99);
    printf("%-34s p50 %8.1f us   p99 %8.1f us\n", what, p50 / 1e3, p99 / 1e3);
}

static void wait_ready(struct vmm_pool *p, int want)
{
    struct vmm_pool_stats st;
    for (;;) {
        vmm_pool_stats(p, &st);
        if (st.ready >= want) return;
        usleep(1000);
    }
}

int main(int argc, char **argv)
{
    skip_without_kvm("fork benchmark");
    CHECK(argc == 2);
    g_guests = argv[1];
    tmp_init();
    static uint64_t floor_ns[N], cold[N], pooled[N], echo[N], destroy[N], rt[N];
    struct vmm_snapshot *s = make_snapshot("echo", NULL, RAM);

    /* Floor and cold fork interleaved, so load drift on a shared host hits both. */
    static uint64_t cold_total[N];
    for (int i = 0; i < N; i++) {
        OKV(vmm_bench_floor(RAM, 1, &floor_ns[i], NULL, &e_));
        struct vmm_vm *vm;
        uint64_t t0 = now();
        OKV(vmm_fork(s, NULL, &vm, &e_));
        cold[i] = now() - t0;
        t0 = now();
        vmm_vm_destroy(vm);
        destroy[i] = now() - t0;
        cold_total[i] = cold[i] + destroy[i];
    }
    uint64_t f50 = pct(floor_ns, N, 50), c50 = pct(cold, N, 50), ct50 = pct(cold_total, N, 50);
    report("floor (create+slot+vcpu+teardown)", floor_ns, N);
    report("cold fork", cold, N);
    report("destroy", destroy, N);
    report("cold fork + destroy", cold_total, N);
    printf("%-28s %.2fx the floor (both include teardown)\n", "(cold fork+destroy) / floor", (double)ct50 / (double)f50);
    printf("%-28s %.2fx the floor\n", "cold fork alone / floor", (double)c50 / (double)f50);

    struct vmm_pool *p;
    OKV(vmm_pool_create(&(struct vmm_pool_config){ .target = 16 }, &p, &e_));
    for (int i = 0; i < 100; i++) {   /* unbound shells: the fork maps RAM and sets slots */
        wait_ready(p, 16);
        struct vmm_vm *vm;
        uint64_t t0 = now();
        OKV(vmm_fork(s, p, &vm, &e_));
        pooled[i] = now() - t0;
        vmm_vm_destroy(vm);
    }
    report("pooled fork, unbound pool", pooled, 100);
    OKV(vmm_pool_bind(p, s, &e_));
    memset(fork_phase_ns, 0, sizeof fork_phase_ns);
    for (int i = 0; i < N; i++) {
        wait_ready(p, 16);
        struct vmm_vm *vm;
        uint64_t t0 = now();
        OKV(vmm_fork(s, p, &vm, &e_));
        pooled[i] = now() - t0;
        struct vmm_response r = run_req(vm, "x", 1000000000ull);
        echo[i] = r.run_ns;
        rt[i] = now() - t0;
        CHECK(r.outcome == VMM_OK && r.exits == 1);
        vmm_vm_destroy(vm);
    }
    report("pooled fork, bound pool", pooled, N);
    report("first echo run of a fork", echo, N);
    report("pooled fork + echo", rt, N);
    static const char *names[FP__N] = { "shell", "ram map+slots", "xcrs+xsave", "sregs", "regs", "msrs", "events" };
    printf("pooled fork phases (mean):");
    for (int i = 0; i < FP__N; i++) printf(" %s %.1f", names[i], fork_phase_ns[i] / 1e3 / N);
    printf(" us\n");
    struct vmm_pool_stats pst;
    vmm_pool_stats(p, &pst);
    printf("pool: taken %llu, misses %llu\n", (unsigned long long)pst.taken, (unsigned long long)pst.misses);
    vmm_pool_destroy(p);

    /* 1,000 live forks, each after one echo. */
    enum { LIVE = 1000 };
    static struct vmm_vm *vms[LIVE];
    long rss0 = proc_kib("/proc/self/status", "VmRSS");
    long pss0 = proc_kib("/proc/self/smaps_rollup", "Pss");
    long pd0 = proc_kib("/proc/self/smaps_rollup", "Private_Dirty");
    long avail0 = proc_kib("/proc/meminfo", "MemAvailable");
    uint64_t t0 = now();
    for (int i = 0; i < LIVE; i++) {
        OKV(vmm_fork(s, NULL, &vms[i], &e_));
        struct vmm_response r = run_req(vms[i], "live", 1000000000ull);
        CHECK(r.outcome == VMM_OK);
    }
    double wall = (now() - t0) / 1e9;
    long rss1 = proc_kib("/proc/self/status", "VmRSS");
    long pss1 = proc_kib("/proc/self/smaps_rollup", "Pss");
    long pd1 = proc_kib("/proc/self/smaps_rollup", "Private_Dirty");
    long avail1 = proc_kib("/proc/meminfo", "MemAvailable");
    printf("1000 cold forks created+answered: %.2f s wall\n", wall);
    printf("idle fork after one echo, per fork: VmRSS +%.1f KiB (Pss +%.1f, Private_Dirty +%.1f), "
           "MemAvailable -%.1f KiB (kernel included)\n", (double)(rss1 - rss0) / LIVE, (double)(pss1 - pss0) / LIVE,
           (double)(pd1 - pd0) / LIVE, (double)(avail0 - avail1) / LIVE);
    for (int i = 0; i < LIVE; i++) vmm_vm_destroy(vms[i]);

    OKV(vmm_pool_create(&(struct vmm_pool_config){ .target = LIVE }, &p, &e_));
    OKV(vmm_pool_bind(p, s, &e_));
    wait_ready(p, LIVE);
    t0 = now();
    for (int i = 0; i < LIVE; i++) {
        OKV(vmm_fork(s, p, &vms[i], &e_));
        struct vmm_response r = run_req(vms[i], "live", 1000000000ull);
        CHECK(r.outcome == VMM_OK);
    }
    wall = (now() - t0) / 1e9;
    printf("1000 forks from a pre-filled bound pool, answered: %.2f s wall\n", wall);
    for (int i = 0; i < LIVE; i++) vmm_vm_destroy(vms[i]);
    vmm_pool_destroy(p);

    /* The deadline timer: armed and disarmed once per run. */
    {
        timer_t tm;
        struct sigevent sev;
        memset(&sev, 0, sizeof sev);
        sev.sigev_notify = SIGEV_NONE;
        CHECK(timer_create(CLOCK_MONOTONIC, &sev, &tm) == 0);
        uint64_t t1 = now();
        for (int i = 0; i < 10000; i++) {
            struct itimerspec its = { .it_value = { .tv_sec = (time_t)(now() / 1000000000ull) + 1 } };
            timer_settime(tm, TIMER_ABSTIME, &its, NULL);
            struct itimerspec off = { 0 };
            timer_settime(tm, 0, &off, NULL);
        }
        printf("deadline timer arm+disarm: %.2f us\n", (now() - t1) / 1e4 / 1e3);
        timer_delete(tm);
    }

    struct vmm_snapshot *big = make_snapshot("big", NULL, RAM);
    uint64_t bigv[20];
    for (int i = 0; i < 20; i++) {
        struct vmm_vm *vm;
        OKV(vmm_fork(big, NULL, &vm, &e_));
        struct vmm_response r = run_req(vm, "", 1000000000ull);
        CHECK(r.outcome == VMM_OK && r.out_len == (1u << 20) && r.exits == 1);
        bigv[i] = r.run_ns;
        vmm_vm_destroy(vm);
    }
    report("1 MiB response (fresh fork)", bigv, 20);
    vmm_snapshot_close(big);
    vmm_snapshot_close(s);
    tmp_cleanup();
    return 0;
}
