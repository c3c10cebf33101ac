/*
 * test_shm.c — host shared memory: two forks of one snapshot share a page at
 * different guest addresses (a write by either is seen by the other and by
 * the host's read_u32), copy_in carries a vm's bytes into the object, unshare
 * gives private zeros (also in a child derived after it, over a root whose
 * bytes there are not zero), overlapping shares replace, objects grow; a
 * derive carries the ranges to every fork of the child (pool shells too) while
 * the parent keeps its own, and the child written to files keeps the bytes as
 * private memory; a vm that shared is never recycled; every argument is
 * checked; fds, vms and memory come back after many cycles.
 */
#include <pthread.h>

#include "util.h"
#include "internal.h"

#define SEC 2000000000ull
#define RAM (64ull << 20)
#define PG FB_PAGE_SIZE

static int32_t req(struct vmm_vm *vm, const char *fmt, uint64_t a, uint64_t b)
{
    char p[96];
    snprintf(p, sizeof p, fmt, (unsigned long long)a, (unsigned long long)b);
    struct vmm_response r = run_req(vm, p, SEC);
    if (r.outcome != VMM_OK || r.status != FB_ST_DONE)
        fprintf(stderr, "%s: %s status %u %s\n", p, vmm_outcome_name(r.outcome), r.status, r.detail);
    CHECK(r.outcome == VMM_OK && r.status == FB_ST_DONE);
    return r.exit_code;
}
#define W(vm, a, v) req(vm, "w %#llx %llu", (a), (v))
#define R(vm, a) ((uint32_t)req(vm, "r %#llx", (a), 0))
#define Z(vm, a) req(vm, "z %#llx", (a), 0)

static uint32_t host_u32(struct vmm_shm *s, uint64_t off)
{
    uint32_t v = 0;
    OKV(vmm_shm_read_u32(s, off, &v, &e_));
    return v;
}

/* The caller guest with 0x55 written at 0x900000, snapshotted at that DONE. */
static struct vmm_snapshot *make_root(void)
{
    struct vmm_vm *vm = boot_ready("caller", NULL, RAM);
    CHECK(W(vm, 0x900000, 0x55) == 0);
    OKV(vmm_snapshot_save(vm, tmp_path("root.mem"), tmp_path("root.state"), &e_));
    vmm_vm_destroy(vm);
    struct vmm_snapshot *s;
    OKV(vmm_snapshot_open(tmp_path("root.mem"), tmp_path("root.state"), &s, &e_));
    return s;
}

static void test_two_vms(struct vmm_snapshot *root)
{
    struct vmm_shm *shm;
    OKV(vmm_shm_create(2 * PG, &shm, &e_));
    CHECK(vmm_shm_size(shm) == 2 * PG && host_u32(shm, 0) == 0);
    struct vmm_vm *a, *b;
    OKV(vmm_fork(root, NULL, &a, &e_));
    OKV(vmm_fork(root, NULL, &b, &e_));
    W(a, 0x600000, 0x1234);
    OKV(vmm_vm_share(a, 0x600000, PG, shm, 0, 1, &e_));             /* copy_in: a's bytes into the object */
    CHECK(host_u32(shm, 0) == 0x1234);
    CHECK(R(a, 0x600000) == 0x1234);
    OKV(vmm_vm_share(b, 0x700000, PG, shm, 0, 0, &e_));             /* another address in b */
    CHECK(R(b, 0x700000) == 0x1234);
    W(b, 0x700004, 77);
    CHECK(host_u32(shm, 4) == 77 && R(a, 0x600004) == 77);
    W(a, 0x600ffc, 0xabcdef);
    CHECK(host_u32(shm, PG - 4) == 0xabcdef && R(b, 0x700ffc) == 0xabcdef);
    CHECK(vmm_vm_shared_ranges(a) == 1 && vmm_vm_shared_ranges(b) == 1);

    /* unshare: private zeros in b, a keeps the object */
    OKV(vmm_vm_unshare(b, 0x700000, PG, &e_));
    CHECK(Z(b, 0x700000) == 1 && vmm_vm_shared_ranges(b) == 0);
    W(b, 0x700000, 9);
    CHECK(R(a, 0x600000) == 0x1234 && host_u32(shm, 0) == 0x1234);

    /* grow, then a range over the new page; an overlapping share replaces parts of earlier ranges */
    CHECK(vmm_shm_grow(shm, PG, NULL) == -EINVAL);                  /* never shrinks */
    OKV(vmm_shm_grow(shm, 2 * PG, &e_));                             /* same size: no-op */
    OKV(vmm_shm_grow(shm, 4 * PG, &e_));
    CHECK(vmm_shm_size(shm) == 4 * PG && host_u32(shm, 3 * PG) == 0);
    OKV(vmm_vm_share(b, 0x800000, 3 * PG, shm, PG, 0, &e_));        /* b [0x800000, +3 pages) = object pages 1..3 */
    W(b, 0x802000, 31);                                               /* object page 3 */
    CHECK(host_u32(shm, 3 * PG) == 31);
    OKV(vmm_vm_share(b, 0x801000, PG, shm, 0, 0, &e_));             /* the middle page becomes object page 0 */
    CHECK(vmm_vm_shared_ranges(b) == 3);
    CHECK(R(b, 0x801000) == 0x1234 && R(b, 0x802000) == 31);
    W(b, 0x800000, 5);                                                /* head: still object page 1 */
    CHECK(host_u32(shm, PG) == 5);
    OKV(vmm_vm_unshare(b, 0x800000, 3 * PG, &e_));
    CHECK(vmm_vm_shared_ranges(b) == 0 && Z(b, 0x801000) == 1 && R(a, 0x600000) == 0x1234);

    /* a vm that shared is never recycled */
    struct vmm_err e = {0};
    CHECK(vmm_vm_recycle(a, NULL, &e) == -ENOTSUP);
    vmm_vm_destroy(a);
    vmm_vm_destroy(b);
    CHECK(host_u32(shm, 0) == 0x1234);                                /* the object outlives its vms */
    vmm_shm_put(shm);
    printf("shm: two vms share a page, host reads it, unshare, grow, overlap: ok\n");
}

static void test_checks(struct vmm_snapshot *root)
{
    struct vmm_shm *shm;
    struct vmm_err e = {0};
    CHECK(vmm_shm_create(0, &shm, &e) == -EINVAL);
    CHECK(vmm_shm_create(100, &shm, &e) == -EINVAL);
    CHECK(vmm_shm_create(FB_RAM_MAX + PG, &shm, &e) == -EINVAL);
    OKV(vmm_shm_create(PG, &shm, &e_));
    uint32_t v;
    CHECK(vmm_shm_read_u32(shm, 2, &v, &e) == -EINVAL);
    CHECK(vmm_shm_read_u32(shm, PG, &v, &e) == -EINVAL);
    CHECK(vmm_shm_read_u32(shm, UINT64_MAX - 3, &v, &e) == -EINVAL);
    CHECK(vmm_shm_grow(shm, PG + 1, &e) == -EINVAL);
    struct vmm_vm *vm;
    OKV(vmm_fork(root, NULL, &vm, &e_));
    CHECK(vmm_vm_share(vm, 0x600001, PG, shm, 0, 0, &e) == -EINVAL);          /* unaligned */
    CHECK(vmm_vm_share(vm, 0x600000, 100, shm, 0, 0, &e) == -EINVAL);
    CHECK(vmm_vm_share(vm, 0x600000, 0, shm, 0, 0, &e) == -EINVAL);           /* empty */
    CHECK(vmm_vm_share(vm, FB_SYSTEM_BASE, PG, shm, 0, 0, &e) == -EINVAL);    /* below the arena */
    CHECK(vmm_vm_share(vm, 0, PG, shm, 0, 0, &e) == -EINVAL);
    CHECK(vmm_vm_share(vm, RAM, PG, shm, 0, 0, &e) == -EINVAL);               /* past RAM */
    CHECK(vmm_vm_share(vm, RAM - PG, 2 * PG, shm, 0, 0, &e) == -EINVAL);
    CHECK(vmm_vm_share(vm, UINT64_MAX - PG + 1, PG, shm, 0, 0, &e) == -EINVAL); /* wraps */
    CHECK(vmm_vm_share(vm, 0x600000, PG, shm, PG, 0, &e) == -EINVAL);        /* past the object */
    CHECK(vmm_vm_share(vm, 0x600000, 2 * PG, shm, 0, 0, &e) == -EINVAL);
    CHECK(vmm_vm_share(vm, 0x600000, PG, shm, 12, 0, &e) == -EINVAL);        /* unaligned offset */
    CHECK(vmm_vm_share(vm, 0x600000, PG, shm, UINT64_MAX - PG + 1, 0, &e) == -EINVAL);
    CHECK(vmm_vm_share(vm, 0x600000, PG, NULL, 0, 0, &e) == -EINVAL);
    CHECK(vmm_vm_unshare(vm, 0x600000, UINT64_MAX - PG + 1, &e) == -EINVAL);
    CHECK(vmm_vm_shared_ranges(vm) == 0);
    CHECK(R(vm, 0x900000) == 0x55);                                           /* nothing changed, alive */
    /* page by page over contiguous object pages: one range */
    struct vmm_shm *four;
    OKV(vmm_shm_create(4 * PG, &four, &e_));
    OKV(vmm_vm_share(vm, 0x601000, PG, four, PG, 0, &e_));
    OKV(vmm_vm_share(vm, 0x603000, PG, four, 3 * PG, 0, &e_));
    CHECK(vmm_vm_shared_ranges(vm) == 2);
    OKV(vmm_vm_share(vm, 0x602000, PG, four, 2 * PG, 0, &e_));                 /* joins both */
    OKV(vmm_vm_share(vm, 0x600000, PG, four, 0, 0, &e_));
    CHECK(vmm_vm_shared_ranges(vm) == 1);
    W(vm, 0x603000, 4);
    CHECK(host_u32(four, 3 * PG) == 4);
    OKV(vmm_vm_unshare(vm, 0x600000, 4 * PG, &e_));
    vmm_shm_put(four);
    /* at most 1024 ranges a vm */
    for (uint64_t i = 0; i < 1024; i++) OKV(vmm_vm_share(vm, 0x1000000 + 2 * i * PG, PG, shm, 0, 0, &e_));
    CHECK(vmm_vm_shared_ranges(vm) == 1024);
    CHECK(vmm_vm_share(vm, 0x1000000 + 2048 * PG, PG, shm, 0, 0, &e) == -ENOSPC);
    W(vm, 0x1000000 + 2 * 1023 * PG, 66);
    CHECK(host_u32(shm, 0) == 66 && R(vm, 0x1000000) == 66);
    OKV(vmm_vm_unshare(vm, 0x1000000, 2048 * PG, &e_));
    CHECK(vmm_vm_shared_ranges(vm) == 0 && Z(vm, 0x1000000) == 1);
    /* RAM-sized: the whole arena (the object must be that large) */
    struct vmm_shm *big;
    OKV(vmm_shm_create(RAM - FB_ARENA_BASE, &big, &e_));
    OKV(vmm_vm_share(vm, FB_ARENA_BASE, RAM - FB_ARENA_BASE, big, 0, 1, &e_));
    CHECK(host_u32(big, 0x900000 - FB_ARENA_BASE) == 0x55 && R(vm, 0x900000) == 0x55);
    vmm_vm_destroy(vm);
    vmm_shm_put(big);
    /* a booted vm does not share */
    struct vmm_vm *booted = boot_ready("caller", NULL, RAM);
    CHECK(vmm_vm_share(booted, 0x600000, PG, shm, 0, 0, &e) == -ENOTSUP);
    vmm_vm_destroy(booted);
    vmm_shm_put(shm);
    printf("shm: argument checks (alignment, bounds, overflow, booted vm): ok\n");
}

static void test_derive(struct vmm_snapshot *root)
{
    struct vmm_shm *shm;
    OKV(vmm_shm_create(PG, &shm, &e_));
    struct vmm_vm *a;
    OKV(vmm_fork(root, NULL, &a, &e_));
    OKV(vmm_vm_share(a, 0x600000, PG, shm, 0, 0, &e_));
    W(a, 0x600008, 5);
    W(a, 0x500000, 3);                                                /* a private page */
    OKV(vmm_vm_unshare(a, 0x900000, PG, &e_));                        /* root has 0x55 there */
    CHECK(Z(a, 0x900000) == 1);
    struct vmm_snapshot *child;
    OKV(vmm_snapshot_derive(a, &child, &e_));
    CHECK(vmm_vm_shared_ranges(a) == 1);
    /* the parent keeps its range after the re-base */
    W(a, 0x60000c, 9);
    CHECK(host_u32(shm, 12) == 9);
    struct vmm_pool *pool;
    struct vmm_pool_config pc = { .target = 1, .max_ram_size = RAM };
    OKV(vmm_pool_create(&pc, &pool, &e_));
    OKV(vmm_pool_bind(pool, root, &e_));
    pool_wait_full(pool, 1);
    struct vmm_vm *k[2];
    OKV(vmm_fork(child, NULL, &k[0], &e_));
    OKV(vmm_fork(child, pool, &k[1], &e_));
    for (int i = 0; i < 2; i++) {
        CHECK(vmm_vm_shared_ranges(k[i]) == 1);
        CHECK(R(k[i], 0x600008) == 5 && R(k[i], 0x60000c) == 9);    /* the object, live */
        CHECK(R(k[i], 0x500000) == 3 && Z(k[i], 0x900000) == 1);    /* private bytes; the unshared zeros */
        W(k[i], 0x600010, 100 + (uint64_t)i);
        CHECK(host_u32(shm, 16) == 100u + (uint32_t)i && R(a, 0x600010) == 100u + (uint32_t)i);
    }
    CHECK(R(k[0], 0x600010) == 101);
    /* written to files: the bytes as of the derive, as private memory */
    OKV(vmm_snapshot_write(child, tmp_path("c.mem"), tmp_path("c.state"), &e_));
    OKV(vmm_snapshot_save_child(a, tmp_path("s.mem"), tmp_path("s.state"), &e_));
    struct vmm_snapshot *c2, *s2;
    OKV(vmm_snapshot_open_child(root, tmp_path("c.mem"), tmp_path("c.state"), &c2, &e_));
    OKV(vmm_snapshot_open_child(root, tmp_path("s.mem"), tmp_path("s.state"), &s2, &e_));
    struct vmm_vm *r1, *r2;
    OKV(vmm_fork(c2, NULL, &r1, &e_));
    OKV(vmm_fork(s2, NULL, &r2, &e_));
    CHECK(vmm_vm_shared_ranges(r1) == 0 && vmm_vm_shared_ranges(r2) == 0);
    CHECK(R(r1, 0x600008) == 5 && R(r1, 0x60000c) == 0 && Z(r1, 0x900000) == 1);
    CHECK(R(r2, 0x600008) == 5 && R(r2, 0x60000c) == 9 && R(r2, 0x600010) == 101 && Z(r2, 0x900000) == 1);
    W(r2, 0x600008, 7);                                               /* private now */
    CHECK(host_u32(shm, 8) == 5 && R(a, 0x600008) == 5);
    vmm_vm_destroy(r1);
    vmm_vm_destroy(r2);
    vmm_snapshot_close(c2);
    vmm_snapshot_close(s2);
    struct vmm_err e = {0};
    CHECK(vmm_vm_recycle(k[0], NULL, &e) == -ENOTSUP);   /* a fork of a child that maps shared memory */
    vmm_vm_destroy(k[0]);
    vmm_vm_destroy(k[1]);
    vmm_vm_destroy(a);
    vmm_pool_destroy(pool);
    vmm_snapshot_close(child);
    vmm_shm_put(shm);
    printf("shm: derive carries the ranges to forks (pooled too), the parent keeps them, files keep the bytes: ok\n");
}

/* Two vms running at once on two workers: one spins on a shared word until the
 * other, at another guest address, writes it (coherence while both run); the
 * spinning vm's handle refuses share/unshare (-EBUSY) while its job runs. */
struct waiter { pthread_mutex_t mu; pthread_cond_t cv; int n; struct vmm_async_result *res[4]; };
static void on_res(void *arg, struct vmm_async_result *res)
{
    struct waiter *w = arg;
    pthread_mutex_lock(&w->mu);
    w->res[w->n++] = res;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}
static void wait_n(struct waiter *w, int n)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&w->mu);
    while (w->n < n) CHECK(pthread_cond_timedwait(&w->cv, &w->mu, &ts) == 0);
    pthread_mutex_unlock(&w->mu);
}

static void test_concurrent(struct vmm_snapshot *root)
{
    struct vmm_async *as;
    OKV(vmm_async_create(2, &as, &e_));
    struct waiter w = { .n = 0 };
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cv, NULL);
    struct vmm_shm *shm;
    OKV(vmm_shm_create(PG, &shm, &e_));
    struct vmm_async_vm *a, *b;
    OKV(vmm_async_fork(as, root, NULL, on_res, &w, &a, &e_));
    OKV(vmm_async_fork(as, root, NULL, on_res, &w, &b, &e_));
    wait_n(&w, 2);
    OKV(vmm_async_share(a, 0x600000, PG, shm, 0, 0, &e_));
    OKV(vmm_async_share(b, 0x700000, PG, shm, 0, 0, &e_));
    const char *spin = "p 0x600040 424242";
    struct vmm_request q = { .kind = FB_REQ_ECHO, .payload = spin, .payload_len = strlen(spin), .timeout_ns = 10 * SEC };
    OKV(vmm_async_run(a, &q, on_res, &w, &e_));
    /* Once a's job runs on its worker (a queued job does not count: until then the
     * share is between jobs and succeeds, harmlessly, at an address a never reads). */
    struct vmm_err e = {0};
    int rc = 0;
    for (int i = 0; i < 500 && (rc = vmm_async_share(a, 0x800000, PG, shm, 0, 0, &e)) != -EBUSY; i++) usleep(10000);
    CHECK(rc == -EBUSY);
    CHECK(vmm_async_unshare(a, 0x600000, PG, &e) == -EBUSY);
    pthread_mutex_lock(&w.mu);
    CHECK(w.n == 2);                                /* still spinning */
    pthread_mutex_unlock(&w.mu);
    const char *wr = "w 0x700040 424242";
    q.payload = wr;
    q.payload_len = strlen(wr);
    OKV(vmm_async_run(b, &q, on_res, &w, &e_));
    wait_n(&w, 4);
    for (int i = 2; i < 4; i++) {
        CHECK(w.res[i]->rc == 0 && w.res[i]->resp.outcome == VMM_OK && w.res[i]->resp.status == FB_ST_DONE);
        vmm_async_result_free(w.res[i]);
    }
    vmm_async_result_free(w.res[0]);
    vmm_async_result_free(w.res[1]);
    CHECK(host_u32(shm, 0x40) == 424242);
    OKV(vmm_async_unshare(a, 0x600000, PG, &e_));   /* between jobs again */
    vmm_async_shutdown(as);
    vmm_async_vm_put(a);
    vmm_async_vm_put(b);
    vmm_shm_put(shm);
    pthread_cond_destroy(&w.cv);
    pthread_mutex_destroy(&w.mu);
    printf("shm: a running vm sees another running vm's write; share refused while its job runs: ok\n");
}

/* Many cycles of create, fork, share, derive, fork, destroy: fds, vms and RSS come back. */
static void test_leak(struct vmm_snapshot *root)
{
    struct vmm_stats st0, st1;
    vmm_stats_get(&st0);
    int fds0 = count_fds();
    long rss0 = 0;
    for (int i = 0; i < 300; i++) {
        if (i == 50) rss0 = proc_kib("/proc/self/status", "VmRSS");
        struct vmm_shm *shm;
        OKV(vmm_shm_create(16 * PG, &shm, &e_));
        struct vmm_vm *a, *k;
        OKV(vmm_fork(root, NULL, &a, &e_));
        OKV(vmm_vm_share(a, 0x600000, 16 * PG, shm, 0, 1, &e_));
        OKV(vmm_vm_share(a, 0x604000, PG, shm, 0, 0, &e_));
        W(a, 0x600000, (uint64_t)i);
        struct vmm_snapshot *c;
        OKV(vmm_snapshot_derive(a, &c, &e_));
        OKV(vmm_fork(c, NULL, &k, &e_));
        CHECK(R(k, 0x604000) == (uint32_t)i);
        vmm_snapshot_close(c);
        OKV(vmm_vm_unshare(a, 0x600000, 2 * PG, &e_));
        vmm_vm_destroy(a);
        vmm_shm_put(shm);                      /* k still holds it */
        CHECK(R(k, 0x600000) == (uint32_t)i);
        vmm_vm_destroy(k);
    }
    long rss1 = proc_kib("/proc/self/status", "VmRSS");
    vmm_stats_get(&st1);
    CHECK(st1.vms_live == st0.vms_live);
    CHECK(count_fds() == fds0);
    /* RSS is informational here (ASan's quarantine keeps freed memory); test_leak checks it. */
    printf("shm: 300 cycles, fds %d -> %d, RSS %ld -> %ld KiB\n", fds0, count_fds(), rss0, rss1);
}

int main(int argc, char **argv)
{
    skip_without_kvm("host shared memory tests");
    g_guests = argc > 1 ? argv[1] : "out/guests";
    tmp_init();
    struct vmm_snapshot *root = make_root();
    int fds0 = count_fds();
    test_two_vms(root);
    test_checks(root);
    test_derive(root);
    test_concurrent(root);
    test_leak(root);
    CHECK(count_fds() == fds0 + 1);   /* + the cached /proc/self/pagemap of derive.c */
    vmm_snapshot_close(root);
    tmp_cleanup();
    printf("test_shm: all ok\n");
    return 0;
}
