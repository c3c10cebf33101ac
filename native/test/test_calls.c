/*
 * test_calls.c — guest-to-host calls (FB_ST_CALL answered by FB_REQ_ANSWER):
 * a call's header and data reach the host, the answer reaches the guest, the
 * only request a vm stopped at a call takes is the answer; calls that break
 * the protocol end the vm; a derive at a call gives forks that each take their
 * own answer (pool shells included); a one-shot fork+run with
 * VMM_ASYNC_DESTROY that stops at a call is kept open until it is closed, and
 * its gone callback fires then; a vm at a call is never recycled. fds come back.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "util.h"
#include "internal.h"

#define SEC 2000000000ull

static struct vmm_request echo(const char *p)
{
    return (struct vmm_request){ .kind = FB_REQ_ECHO, .payload = p, .payload_len = strlen(p), .timeout_ns = SEC };
}

/* An answer request: struct fb_answer {ret, val[0] = ret * 2} + data. */
struct answer_buf { struct fb_answer a; char data[64]; };
static struct vmm_request answer(struct answer_buf *b, int64_t ret, const char *data)
{
    memset(b, 0, sizeof *b);
    b->a.ret = ret;
    b->a.val[0] = ret * 2;
    b->a.data_len = data ? strlen(data) : 0;
    if (data) memcpy(b->data, data, b->a.data_len);
    return (struct vmm_request){ .kind = FB_REQ_ANSWER, .payload = b, .payload_len = sizeof b->a + b->a.data_len,
                                 .timeout_ns = SEC };
}

static struct vmm_response run(struct vmm_vm *vm, struct vmm_request q)
{
    struct vmm_response r;
    OKV(vmm_vm_run(vm, &q, &r, &e_));
    return r;
}

/* The response is a call {nr, arg0} + "ping". */
static void check_call(const struct vmm_response *r, uint32_t nr, int64_t arg0)
{
    CHECK(r->outcome == VMM_OK && r->status == FB_ST_CALL);
    CHECK(r->result_len == sizeof(struct fb_call) + 4);
    struct fb_call c;
    memcpy(&c, r->result, sizeof c);
    CHECK(c.nr == nr && c.arg[0] == arg0 && c.data_len == 4);
    CHECK(!memcmp(r->result + sizeof c, "ping", 4));
}

static void check_answered(const struct vmm_response *r, int64_t ret, const char *data)
{
    CHECK(r->outcome == VMM_OK && r->status == FB_ST_DONE && r->exit_code == (int32_t)ret);
    CHECK(r->out_len == strlen(data) && !memcmp(r->out, data, r->out_len));
    int64_t val0;
    CHECK(r->result_len == 32);
    memcpy(&val0, r->result, 8);
    CHECK(val0 == ret * 2);
}

static void test_sync(struct vmm_snapshot *snap)
{
    struct vmm_vm *vm;
    struct answer_buf b;
    OKV(vmm_fork(snap, NULL, &vm, &e_));
    struct vmm_response r = run(vm, echo("c 7 42"));
    check_call(&r, 7, 42);
    /* only the answer is taken while a call is pending; the vm lives on */
    struct vmm_request q = echo("w 0x400000 1");
    struct vmm_err e = {0};
    CHECK(vmm_vm_run(vm, &q, &r, &e) == -EINVAL && e.code == -EINVAL);
    CHECK(vmm_vm_recycle(vm, NULL, &e) == -EINVAL);   /* refused (and the vm is dead: a fresh one below) */
    vmm_vm_destroy(vm);

    OKV(vmm_fork(snap, NULL, &vm, &e_));
    r = run(vm, echo("c 7 42"));
    check_call(&r, 7, 42);
    r = run(vm, answer(&b, 123, "pong"));
    check_answered(&r, 123, "pong");
    /* answered and DONE: an ordinary vm again */
    r = run(vm, echo("w 0x400000 77"));
    CHECK(r.outcome == VMM_OK && r.status == FB_ST_DONE && r.exit_code == 0);
    r = run(vm, echo("r 0x400000"));
    CHECK(r.status == FB_ST_DONE && r.exit_code == 77);
    /* several calls in one request: each answered in turn */
    r = run(vm, echo("n 3"));
    for (int i = 0; i < 3; i++) {
        CHECK(r.outcome == VMM_OK && r.status == FB_ST_CALL && r.result_len == sizeof(struct fb_call));
        struct fb_call c;
        memcpy(&c, r.result, sizeof c);
        CHECK(c.nr == 1 && c.arg[0] == i && c.data_len == 0);
        r = run(vm, answer(&b, 10 * (i + 1), NULL));
    }
    CHECK(r.outcome == VMM_OK && r.status == FB_ST_DONE && r.exit_code == 60);
    /* a vm that made calls and ended DONE is recyclable */
    OKV(vmm_vm_recycle(vm, NULL, &e_));
    r = run(vm, echo("r 0x400000"));
    CHECK(r.status == FB_ST_DONE && r.exit_code == 0);
    vmm_vm_destroy(vm);

    /* protocol violations in a call end the vm */
    const char *bad[] = { "s", "d", "q" };
    for (int i = 0; i < 3; i++) {
        OKV(vmm_fork(snap, NULL, &vm, &e_));
        r = run(vm, echo(bad[i]));
        CHECK(r.outcome == VMM_CRASH_PROTOCOL);
        CHECK(strstr(r.detail, "CALL") != NULL);
        q = echo("r 0x400000");
        CHECK(vmm_vm_run(vm, &q, &r, &e) == -EIO);
        vmm_vm_destroy(vm);
    }
    printf("calls: call, answer, only the answer taken, several calls, protocol violations: ok\n");
}

/* A derive at a call: the vm and every fork of the child resume at the same
 * doorbell, and each takes its own answer. */
static void test_derive_at_call(struct vmm_snapshot *root)
{
    struct vmm_vm *parent, *kids[3];
    struct answer_buf b;
    OKV(vmm_fork(root, NULL, &parent, &e_));
    struct vmm_response r = run(parent, echo("w 0x500000 31"));
    CHECK(r.status == FB_ST_DONE);
    r = run(parent, echo("c 1 9"));
    check_call(&r, 1, 9);
    struct vmm_snapshot *child;
    OKV(vmm_snapshot_derive(parent, &child, &e_));
    CHECK(vmm_snapshot_pages(child) > 0);
    struct vmm_pool *pool;
    struct vmm_pool_config pc = { .target = 1, .max_ram_size = 64ull << 20 };
    OKV(vmm_pool_create(&pc, &pool, &e_));
    OKV(vmm_pool_bind(pool, root, &e_));
    pool_wait_full(pool, 1);
    for (int i = 0; i < 3; i++) OKV(vmm_fork(child, i == 2 ? pool : NULL, &kids[i], &e_));
    struct vmm_pool_stats ps;
    vmm_pool_stats(pool, &ps);
    CHECK(ps.taken == 1);
    /* a fork of a child taken at a call also takes only the answer first */
    struct vmm_request q = echo("r 0x500000");
    struct vmm_err e = {0};
    CHECK(vmm_vm_run(kids[0], &q, &r, &e) == -EINVAL);
    const char *data[] = { "kid0", "kid1", "kid2" };
    for (int i = 0; i < 3; i++) {
        r = run(kids[i], answer(&b, 1000 + i, data[i]));
        CHECK(r.exits == 1);
        check_answered(&r, 1000 + i, data[i]);
        r = run(kids[i], echo("r 0x500000"));
        CHECK(r.status == FB_ST_DONE && r.exit_code == 31);
        char w[32];
        snprintf(w, sizeof w, "w 0x500000 %d", 40 + i);   /* diverge */
        r = run(kids[i], echo(w));
        CHECK(r.status == FB_ST_DONE);
    }
    r = run(parent, answer(&b, 2, "parent"));
    check_answered(&r, 2, "parent");
    r = run(parent, echo("r 0x500000"));
    CHECK(r.exit_code == 31);
    for (int i = 0; i < 3; i++) {
        r = run(kids[i], echo("r 0x500000"));
        CHECK(r.exit_code == 40 + i);
        vmm_vm_destroy(kids[i]);
    }
    vmm_vm_destroy(parent);
    vmm_pool_destroy(pool);
    vmm_snapshot_close(child);
    printf("calls: derive at a call, forks (one pooled) each take their own answer: ok\n");
}

/* ---- async -------------------------------------------------------------- */

struct sink {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, gone, gone2;
    struct vmm_async_result *last;
};

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

static void on_gone2(void *arg)
{
    struct sink *s = arg;
    pthread_mutex_lock(&s->mu);
    s->gone2++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void sink_wait(struct sink *s, int n, int g, int g2)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 30;
    pthread_mutex_lock(&s->mu);
    while (s->done < n || s->gone < g || s->gone2 < g2) CHECK(pthread_cond_timedwait(&s->cv, &s->mu, &ts) == 0);
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

static int sink_count(struct sink *s, int which)
{
    pthread_mutex_lock(&s->mu);
    int n = which == 0 ? s->done : which == 1 ? s->gone : s->gone2;
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void test_oneshot_call(struct vmm_snapshot *snap)
{
    struct vmm_async *a;
    OKV(vmm_async_create(2, &a, &e_));
    struct sink s;
    memset(&s, 0, sizeof s);
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    struct answer_buf b;
    struct vmm_async_vm *v;

    /* a one-shot that calls: kept open, answered on its handle, then closed */
    struct vmm_request q = echo("c 3 8");
    OKV(vmm_async_fork_run(a, snap, NULL, &q, VMM_ASYNC_DESTROY, on_done, &s, on_gone2, &s, &v, &e_));
    sink_wait(&s, 1, 0, 0);
    struct vmm_async_result *r = sink_take(&s);
    CHECK(r->rc == 0 && r->has_resp);
    check_call(&r->resp, 3, 8);
    vmm_async_result_free(r);
    usleep(20000);
    CHECK(sink_count(&s, 2) == 0);               /* not torn down */
    uint64_t priv = 0;
    OKV(vmm_async_private_bytes(v, &priv, &e_));  /* the handle is open */
    q = answer(&b, 55, "pong");
    OKV(vmm_async_run(v, &q, on_done, &s, &e_));
    sink_wait(&s, 2, 0, 0);
    r = sink_take(&s);
    CHECK(r->rc == 0 && r->has_resp);
    check_answered(&r->resp, 55, "pong");
    vmm_async_result_free(r);
    CHECK(sink_count(&s, 2) == 0);
    OKV(vmm_async_destroy(v, on_gone, &s));
    CHECK(vmm_async_destroy(v, on_gone, &s) == -EALREADY);
    sink_wait(&s, 2, 1, 1);                        /* the destroy's gone and the fork+run's */
    vmm_async_vm_put(v);

    /* a one-shot that answers DONE is still torn down at once */
    q = echo("r 0x400000");
    OKV(vmm_async_fork_run(a, snap, NULL, &q, VMM_ASYNC_DESTROY, on_done, &s, on_gone2, &s, &v, &e_));
    sink_wait(&s, 3, 1, 2);
    r = sink_take(&s);
    CHECK(r->rc == 0 && r->resp.status == FB_ST_DONE);
    vmm_async_result_free(r);
    CHECK(vmm_async_destroy(v, NULL, NULL) == -EALREADY);
    vmm_async_vm_put(v);

    /* a kept one-shot whose handle is dropped without a destroy: gone still fires */
    q = echo("c 3 9");
    OKV(vmm_async_fork_run(a, snap, NULL, &q, VMM_ASYNC_DESTROY, on_done, &s, on_gone2, &s, &v, &e_));
    sink_wait(&s, 4, 1, 2);
    r = sink_take(&s);
    check_call(&r->resp, 3, 9);
    vmm_async_result_free(r);
    vmm_async_vm_put(v);
    sink_wait(&s, 4, 1, 3);

    /* a kept one-shot left open at shutdown: shutdown destroys it and calls its gone */
    q = echo("c 3 10");
    OKV(vmm_async_fork_run(a, snap, NULL, &q, VMM_ASYNC_DESTROY, on_done, &s, on_gone2, &s, &v, &e_));
    sink_wait(&s, 5, 1, 3);
    vmm_async_result_free(sink_take(&s));
    vmm_async_shutdown(a);
    CHECK(sink_count(&s, 2) == 4);
    vmm_async_vm_put(v);
    pthread_cond_destroy(&s.cv);
    pthread_mutex_destroy(&s.mu);
    printf("calls: one-shot fork+run kept open at a call, gone at its close, drop and shutdown: ok\n");
}

int main(int argc, char **argv)
{
    skip_without_kvm("guest-to-host call tests");
    g_guests = argc > 1 ? argv[1] : "out/guests";
    tmp_init();
    struct vmm_snapshot *snap = make_snapshot("caller", NULL, 64ull << 20);
    int fds0 = count_fds();
    struct vmm_stats st0, st1;
    vmm_stats_get(&st0);
    test_sync(snap);
    test_derive_at_call(snap);
    test_oneshot_call(snap);
    vmm_stats_get(&st1);
    CHECK(st1.vms_live == st0.vms_live);
    CHECK(count_fds() == fds0 + 1);   /* + the cached /proc/self/pagemap of derive.c */
    vmm_snapshot_close(snap);
    tmp_cleanup();
    printf("test_calls: all ok\n");
    return 0;
}
