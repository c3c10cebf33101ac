/*
 * test_async.c — the VMM's async API (async.c): run, fork and fork+run
 * completions with copied responses, destroy through the reaper with its gone
 * callback, kicks before a fork exists and during a run, many concurrent jobs
 * on several workers, derive/save/write jobs, shutdown with vms left, and no
 * fd or vm leaks.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "util.h"

/* A completion sink: callbacks (on workers or the reaper) record here. */
struct sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, gone;
    struct vmm_async_result *last;
};

static void sink_init(struct sink *s)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
}

static void on_done(void *arg, struct vmm_async_result *res)
{
    struct sink *s = arg;
    pthread_mutex_lock(&s->mu);
    if (s->last) vmm_async_result_free(s->last);
    s->last = res;
    s->done++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_gone(void *arg)
{
    struct sink *s = arg;
    pthread_mutex_lock(&s->mu);
    s->gone++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Waits (at most 30 s: a loaded machine) until done >= n and gone >= g. */
static void sink_wait(struct sink *s, int n, int g)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&s->mu);
    while (s->done < n || s->gone < g) CHECK(pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0);
    pthread_mutex_unlock(&s->mu);
}

static struct vmm_async_result *sink_take(struct sink *s)
{
    pthread_mutex_lock(&s->mu);
    struct vmm_async_result *r = s->last;
    s->last = NULL;
    pthread_mutex_unlock(&s->mu);
    return r;
}

static void sink_free(struct sink *s)
{
    vmm_async_result_free(s->last);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

static struct vmm_request echo_req(const char *payload)
{
    return (struct vmm_request){ .kind = FB_REQ_ECHO, .payload = payload, .payload_len = strlen(payload),
                                 .timeout_ns = 5000000000ull };
}

static void test_fork_run_destroy(struct vmm_async *a, struct vmm_snapshot *echo)
{
    struct sink s;
    sink_init(&s);
    struct vmm_async_vm *v;
    OKV(vmm_async_fork(a, echo, NULL, on_done, &s, &v, &e_));
    sink_wait(&s, 1, 0);
    struct vmm_async_result *r = sink_take(&s);
    CHECK(r->rc == 0 && !r->has_resp && r->fork_ns > 0);
    vmm_async_result_free(r);

    /* the request buffer is the caller's again once submitted: it is copied */
    char buf[16];
    strcpy(buf, "hello");
    struct vmm_request q = echo_req(buf);
    OKV(vmm_async_run(v, &q, on_done, &s, &e_));
    memset(buf, 'X', 5);
    sink_wait(&s, 2, 0);
    r = sink_take(&s);
    CHECK(r->rc == 0 && r->has_resp && r->resp.outcome == VMM_OK);
    CHECK(r->resp.out_len == 5 && !memcmp(r->resp.out, "hello", 5));
    vmm_async_result_free(r);

    /* the response outlives the next run: it was copied out of the mailbox */
    q = echo_req("first");
    OKV(vmm_async_run(v, &q, on_done, &s, &e_));
    sink_wait(&s, 3, 0);
    struct vmm_async_result *r1 = sink_take(&s);
    q = echo_req("second!");
    OKV(vmm_async_run(v, &q, on_done, &s, &e_));
    sink_wait(&s, 4, 0);
    r = sink_take(&s);
    CHECK(r1->resp.out_len == 5 && !memcmp(r1->resp.out, "first", 5));
    CHECK(r->resp.out_len == 7 && !memcmp(r->resp.out, "second!", 7));
    vmm_async_result_free(r1);
    vmm_async_result_free(r);

    /* destroy: gone once the memory is released; the handle refuses jobs at once */
    struct vmm_stats st0, st1;
    vmm_stats_get(&st0);
    OKV(vmm_async_destroy(v, on_gone, &s));
    CHECK(vmm_async_destroy(v, on_gone, &s) == -EALREADY);
    struct vmm_err e = {0};
    CHECK(vmm_async_run(v, &q, on_done, &s, &e) == -EBADF && e.code == -EBADF);
    sink_wait(&s, 4, 1);
    vmm_stats_get(&st1);
    CHECK(st1.vms_destroyed == st0.vms_destroyed + 1);
    vmm_async_vm_put(v);

    /* fork+run with destroy: the result, then gone */
    q = echo_req("oneshot");
    OKV(vmm_async_fork_run(a, echo, NULL, &q, VMM_ASYNC_DESTROY, on_done, &s, on_gone, &s, &v, &e_));
    CHECK(vmm_async_destroy(v, NULL, NULL) == -EALREADY);
    sink_wait(&s, 5, 2);
    r = sink_take(&s);
    CHECK(r->rc == 0 && r->has_resp && r->resp.outcome == VMM_OK && r->resp.out_len == 7);
    CHECK(!memcmp(r->resp.out, "oneshot", 7) && r->fork_ns > 0 && r->run_ns > 0);
    vmm_async_result_free(r);
    vmm_async_vm_put(v);

    /* fork+run without destroy keeps the vm */
    q = echo_req("keep");
    OKV(vmm_async_fork_run(a, echo, NULL, &q, 0, on_done, &s, NULL, NULL, &v, &e_));
    sink_wait(&s, 6, 2);
    vmm_async_result_free(sink_take(&s));
    uint64_t priv = 0;
    OKV(vmm_async_private_bytes(v, &priv, &e_));
    CHECK(priv > 0);
    q = echo_req("again");
    OKV(vmm_async_run(v, &q, on_done, &s, &e_));
    sink_wait(&s, 7, 2);
    r = sink_take(&s);
    CHECK(r->rc == 0 && r->resp.out_len == 5 && !memcmp(r->resp.out, "again", 5));
    vmm_async_result_free(r);
    OKV(vmm_async_destroy(v, on_gone, &s));
    CHECK(vmm_async_private_bytes(v, &priv, &e) == -EBADF);
    sink_wait(&s, 7, 3);
    vmm_async_vm_put(v);
    sink_free(&s);
    printf("async: run, fork, fork+run, destroy with gone: ok\n");
}

/* A destroy queued behind jobs waits for them; a handle dropped without a
 * destroy takes its vm with it once no job holds it. */
static void test_order_and_drop(struct vmm_async *a, struct vmm_snapshot *echo)
{
    struct sink s;
    sink_init(&s);
    struct vmm_stats st0, st1;
    vmm_stats_get(&st0);
    struct vmm_async_vm *v;
    OKV(vmm_async_fork(a, echo, NULL, on_done, &s, &v, &e_));
    struct vmm_request q = echo_req("queued");
    OKV(vmm_async_run(v, &q, on_done, &s, &e_));   /* queued behind the fork */
    OKV(vmm_async_destroy(v, on_gone, &s));        /* queued behind the run */
    vmm_async_vm_put(v);                           /* the jobs hold their own references */
    sink_wait(&s, 2, 1);
    CHECK(s.last->rc == 0 && s.last->resp.outcome == VMM_OK && s.last->resp.out_len == 6);
    CHECK(!memcmp(s.last->resp.out, "queued", 6));

    OKV(vmm_async_fork(a, echo, NULL, on_done, &s, &v, &e_));
    sink_wait(&s, 3, 1);
    CHECK(s.last->rc == 0);
    vmm_stats_get(&st1);
    CHECK(st1.vms_live == st0.vms_live + 1);
    vmm_async_vm_put(v);   /* never destroyed: the last reference (maybe the fork job's, just after its callback) does it */
    for (int i = 0; i < 30000; i++) {
        vmm_stats_get(&st1);
        if (st1.vms_live == st0.vms_live) break;
        usleep(1000);
    }
    CHECK(st1.vms_live == st0.vms_live);
    sink_free(&s);
    printf("async: destroy waits for queued jobs; a dropped handle takes its vm\n");
}

/* recycle and diff jobs run on the vm's worker in submission order; a refused
 * recycle leaves the vm dead (its next run fails), never half reset. */
static void test_recycle_jobs(struct vmm_async *a, struct vmm_snapshot *echo)
{
    struct sink s;
    sink_init(&s);
    struct vmm_async_vm *v;
    struct vmm_request q = echo_req("first");
    OKV(vmm_async_fork_run(a, echo, NULL, &q, 0, on_done, &s, NULL, NULL, &v, &e_));
    OKV(vmm_async_recycle(v, on_done, &s, &e_));   /* queued behind the fork+run */
    sink_wait(&s, 2, 0);
    struct vmm_async_result *r = sink_take(&s);
    CHECK(r->rc == 0 && r->recycle.mailbox_pages >= 1 && r->recycle.ns > 0);
    vmm_async_result_free(r);
    OKV(vmm_async_diff(v, on_done, &s, &e_));
    sink_wait(&s, 3, 0);
    r = sink_take(&s);
    CHECK(r->rc == 0 && r->recycle.ram_pages == 0 && r->recycle.mailbox_pages == 0);
    vmm_async_result_free(r);
    struct vmm_kvm_stats k0, k1;
    struct vmm_err ke = {0};
    int have_stats = vmm_async_kvm_stats(v, &k0, &ke) == 0;
    q = echo_req("again");
    OKV(vmm_async_run(v, &q, on_done, &s, &e_));
    sink_wait(&s, 4, 0);
    r = sink_take(&s);
    CHECK(r->rc == 0 && r->resp.outcome == VMM_OK && r->resp.exits == 1 && r->resp.out_len == 5 && !memcmp(r->resp.out, "again", 5));
    vmm_async_result_free(r);
    if (have_stats) {
        OKV(vmm_async_kvm_stats(v, &k1, &e_));
        CHECK(k1.exits > k0.exits);
    }
    vmm_async_kick(v);
    OKV(vmm_async_recycle(v, on_done, &s, &e_));
    sink_wait(&s, 5, 0);
    CHECK(s.last->rc < 0);
    OKV(vmm_async_run(v, &q, on_done, &s, &e_));
    sink_wait(&s, 6, 0);
    CHECK(s.last->rc == -EIO);
    OKV(vmm_async_destroy(v, on_gone, &s));
    CHECK(vmm_async_recycle(v, on_done, &s, &ke) == -EBADF);   /* a closed handle */
    vmm_async_vm_put(v);
    sink_wait(&s, 6, 1);
    sink_free(&s);
    printf("async: recycle and diff jobs in order; a refused recycle leaves the vm dead\n");
}

static void test_fork_failure(struct vmm_async *a, struct vmm_snapshot *echo)
{
    struct sink s;
    sink_init(&s);
    /* a payload past the mailbox is refused at submission: no callback */
    struct vmm_request q = echo_req("x");
    q.payload_len = FB_MB_REQ_SIZE + 1;
    struct vmm_async_vm *v = NULL;
    struct vmm_err e = {0};
    CHECK(vmm_async_fork_run(a, echo, NULL, &q, VMM_ASYNC_DESTROY, on_done, &s, on_gone, &s, &v, &e) == -E2BIG);
    CHECK(v == NULL);
    /* a run that fails (timeout 0 is refused) reports rc through the callback */
    q = echo_req("x");
    q.timeout_ns = 0;
    OKV(vmm_async_fork_run(a, echo, NULL, &q, VMM_ASYNC_DESTROY, on_done, &s, on_gone, &s, &v, &e_));
    sink_wait(&s, 1, 1);
    struct vmm_async_result *r = sink_take(&s);
    CHECK(r->rc == -EINVAL && !r->has_resp && r->err.op);
    vmm_async_result_free(r);
    vmm_async_vm_put(v);
    sink_free(&s);
    CHECK(s.done == 1 && s.gone == 1);
}

/* Kicks: before the fork exists (queued behind a busy worker) and during a run. */
static void test_kicks(struct vmm_snapshot *spin)
{
    struct vmm_async *a;
    OKV(vmm_async_create(1, &a, &e_));
    struct sink s1, s2;
    sink_init(&s1);
    sink_init(&s2);
    struct vmm_request q = echo_req("spin");
    q.timeout_ns = 60000000000ull;   /* only a kick ends these runs in time */
    struct vmm_async_vm *v1, *v2;
    uint64_t t0 = vmm_now_ns_test();
    OKV(vmm_async_fork_run(a, spin, NULL, &q, VMM_ASYNC_DESTROY, on_done, &s1, on_gone, &s1, &v1, &e_));
    /* one worker: v2's fork waits behind v1's run, so this kick comes before its vm exists */
    OKV(vmm_async_fork_run(a, spin, NULL, &q, VMM_ASYNC_DESTROY, on_done, &s2, on_gone, &s2, &v2, &e_));
    vmm_async_kick(v2);
    usleep(20000);   /* let v1 enter its run (if it has not, the kick ends it at entry) */
    vmm_async_kick(v1);
    sink_wait(&s1, 1, 1);
    sink_wait(&s2, 1, 1);
    double ms = (vmm_now_ns_test() - t0) / 1e6;
    CHECK(s1.last->rc == 0 && s1.last->resp.outcome == VMM_KILLED);
    CHECK(s2.last->rc == 0 && s2.last->resp.outcome == VMM_KILLED);
    vmm_async_vm_put(v1);
    vmm_async_vm_put(v2);
    sink_free(&s1);
    sink_free(&s2);
    vmm_async_shutdown(a);
    printf("async kicks: before the fork and during a run, both killed in %.1f ms\n", ms);
}

/* Many jobs on several workers at once: every completion arrives exactly once. */
#define MANY 400
static atomic_int g_many_done, g_many_ok, g_many_gone;
static void many_done(void *arg, struct vmm_async_result *res)
{
    uintptr_t i = (uintptr_t)arg;
    char want[32];
    snprintf(want, sizeof want, "job-%lu", (unsigned long)i);
    if (res->rc == 0 && res->resp.outcome == VMM_OK && res->resp.out_len == strlen(want) &&
        !memcmp(res->resp.out, want, res->resp.out_len))
        atomic_fetch_add(&g_many_ok, 1);
    vmm_async_result_free(res);
    atomic_fetch_add(&g_many_done, 1);
}
static void many_gone(void *arg)
{
    (void)arg;
    atomic_fetch_add(&g_many_gone, 1);
}

static void test_many(struct vmm_snapshot *echo, struct vmm_pool *pool)
{
    struct vmm_async *a;
    OKV(vmm_async_create(4, &a, &e_));
    CHECK(vmm_async_workers(a) == 4);
    struct vmm_stats st0, st1;
    vmm_stats_get(&st0);
    uint64_t t0 = vmm_now_ns_test();
    static char payloads[MANY][32];
    for (uintptr_t i = 0; i < MANY; i++) {
        snprintf(payloads[i], sizeof payloads[i], "job-%lu", (unsigned long)i);
        struct vmm_request q = echo_req(payloads[i]);
        struct vmm_async_vm *v;
        OKV(vmm_async_fork_run(a, echo, (i & 1) ? pool : NULL, &q, VMM_ASYNC_DESTROY, many_done, (void *)i,
                               many_gone, NULL, &v, &e_));
        vmm_async_vm_put(v);
    }
    for (int i = 0; i < 30000 && (atomic_load(&g_many_done) < MANY || atomic_load(&g_many_gone) < MANY); i++)
        usleep(1000);
    double secs = (vmm_now_ns_test() - t0) / 1e9;
    CHECK(atomic_load(&g_many_done) == MANY && atomic_load(&g_many_ok) == MANY && atomic_load(&g_many_gone) == MANY);
    vmm_async_shutdown(a);
    vmm_stats_get(&st1);
    CHECK(st1.vms_live == st0.vms_live);
    CHECK(st1.vms_destroyed - st0.vms_destroyed == MANY);
    printf("async many: %d fork+run+destroy on 4 workers in %.2f s (%.0f us each)\n", MANY, secs, secs * 1e6 / MANY);
}

/* Boot + start, save, derive, write and a fork of the child, all through jobs. */
static void test_snapshot_jobs(struct vmm_async *a)
{
    struct sink s;
    sink_init(&s);
    struct vmm_boot_config c = { .ram_size = 64ull << 20, .guest_elf = guest_path(g_guests, "echo") };
    struct vmm_vm *vm;
    OKV(vmm_vm_boot(&c, &vm, &e_));
    struct vmm_async_vm *b;
    OKV(vmm_async_adopt(a, vm, &b, &e_));
    OKV(vmm_async_start(b, 2000000000ull, on_done, &s, &e_));
    sink_wait(&s, 1, 0);
    CHECK(s.last->rc == 0 && s.last->resp.outcome == VMM_OK && s.last->resp.status == FB_ST_READY);
    OKV(vmm_async_save(b, tmp_path("a.mem"), tmp_path("a.state"), on_done, &s, &e_));
    sink_wait(&s, 2, 0);
    CHECK(s.last->rc == 0);
    OKV(vmm_async_destroy(b, on_gone, &s));
    sink_wait(&s, 2, 1);
    vmm_async_vm_put(b);

    struct vmm_snapshot *root;
    OKV(vmm_snapshot_open(tmp_path("a.mem"), tmp_path("a.state"), &root, &e_));
    struct vmm_async_vm *v;
    OKV(vmm_async_fork(a, root, NULL, on_done, &s, &v, &e_));
    vmm_snapshot_close(root);   /* the fork job holds its own reference */
    sink_wait(&s, 3, 0);
    CHECK(s.last->rc == 0);
    struct vmm_request q = echo_req("derive-me");
    OKV(vmm_async_run(v, &q, on_done, &s, &e_));
    OKV(vmm_async_derive(v, on_done, &s, &e_));
    sink_wait(&s, 5, 0);
    struct vmm_async_result *r = sink_take(&s);
    CHECK(r->rc == 0 && r->derived);
    struct vmm_snapshot *child = r->derived;
    r->derived = NULL;   /* taken */
    vmm_async_result_free(r);
    OKV(vmm_async_write(a, child, tmp_path("c.mem"), tmp_path("c.state"), on_done, &s, &e_));
    sink_wait(&s, 6, 0);
    CHECK(s.last->rc == 0);
    struct vmm_async_vm *w;
    q = echo_req("child");
    OKV(vmm_async_fork_run(a, child, NULL, &q, VMM_ASYNC_DESTROY, on_done, &s, on_gone, &s, &w, &e_));
    vmm_snapshot_close(child);
    sink_wait(&s, 7, 2);
    CHECK(s.last->rc == 0 && s.last->resp.out_len == 5);
    vmm_async_vm_put(w);
    OKV(vmm_async_destroy(v, NULL, NULL));
    vmm_async_vm_put(v);
    sink_free(&s);
    printf("async snapshot jobs: start, save, fork, derive, write, fork of the child: ok\n");
}

/* Shutdown with vms left (one running, one idle, one never destroyed). */
static void test_shutdown(struct vmm_snapshot *echo, struct vmm_snapshot *spin)
{
    struct vmm_async *a;
    OKV(vmm_async_create(2, &a, &e_));
    struct sink s;
    sink_init(&s);
    struct vmm_request q = echo_req("x");
    q.timeout_ns = 60000000000ull;
    struct vmm_async_vm *run, *idle;
    OKV(vmm_async_fork_run(a, spin, NULL, &q, 0, on_done, &s, NULL, NULL, &run, &e_));
    OKV(vmm_async_fork(a, echo, NULL, on_done, &s, &idle, &e_));
    sink_wait(&s, 1, 0);   /* at least one done; the spinner may still be forking */
    uint64_t t0 = vmm_now_ns_test();
    vmm_async_shutdown(a);
    double ms = (vmm_now_ns_test() - t0) / 1e6;
    CHECK(s.done == 2);
    struct vmm_err e = {0};
    CHECK(vmm_async_run(idle, &q, on_done, &s, &e) == -ESHUTDOWN);
    CHECK(vmm_async_destroy(idle, NULL, NULL) == -EALREADY);
    vmm_async_vm_put(run);
    vmm_async_vm_put(idle);
    sink_free(&s);
    printf("async shutdown: a spinning and an idle vm released in %.1f ms\n", ms);
}

int main(int argc, char **argv)
{
    skip_without_kvm("async tests");
    CHECK(argc == 2);
    g_guests = argv[1];
    tmp_init();
    struct vmm_snapshot *echo = make_snapshot("echo", NULL, 64ull << 20);
    struct vmm_snapshot *spin = make_snapshot("spin", NULL, 64ull << 20);
    struct vmm_pool *pool;
    OKV(vmm_pool_create(&(struct vmm_pool_config){ .target = 4 }, &pool, &e_));
    OKV(vmm_pool_bind(pool, echo, &e_));

    struct vmm_async *a;
    OKV(vmm_async_create(2, &a, &e_));
    /* first: derive opens the one /proc/self/pagemap fd the process keeps */
    test_snapshot_jobs(a);
    vmm_async_shutdown(a);   /* its last destroy is done */
    OKV(vmm_async_create(2, &a, &e_));
    pool_wait_full(pool, 4);
    int fd0 = count_fds();   /* with the pool full: its shells hold fds too */
    test_fork_run_destroy(a, echo);
    test_fork_failure(a, echo);
    test_order_and_drop(a, echo);
    test_recycle_jobs(a, echo);
    vmm_async_shutdown(a);
    test_kicks(spin);
    test_many(echo, pool);
    test_shutdown(echo, spin);

    pool_wait_full(pool, 4);
    int fd1 = count_fds();
    printf("async: fds %d -> %d\n", fd0, fd1);
    CHECK(fd1 == fd0);
    vmm_pool_destroy(pool);
    vmm_snapshot_close(echo);
    vmm_snapshot_close(spin);
    struct vmm_stats st;
    vmm_stats_get(&st);
    CHECK(st.vms_live == 0);
    tmp_cleanup();
    printf("async: no vm or fd left\n");
    return 0;
}
