/*
 * async.c — the VMM's asynchronous API: jobs (start, run, fork, fork+run,
 * save, derive, write, destroy, recycle) on the worker each vm is bound to, completions
 * through a C callback with the response copied out of the mailbox, kicks from
 * any thread (also before a fork exists), and the reaper: one low-priority
 * thread that tears finished vms down off the latency path.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "internal.h"

#define REAP_MAX 32
#define REAP_NICE 5   /* a third of a normal thread's share under contention: never starved for long */

struct vmm_async_vm {
    struct vmm_async *a;          /* NULL after vmm_async_shutdown */
    atomic_int refs;              /* the caller's + one per job in flight */
    pthread_mutex_t mu;           /* orders kicks against publishing and taking the vm */
    struct vmm_vm *vm;            /* under mu; set by the worker after a fork */
    int kick_pending;             /* under mu: applies to a vm published later */
    int closed;                   /* under mu: vmm_async_destroy called (or a fork failed) */
    int busy;                     /* under mu: a job is using the vm (share/unshare refuse) */
    int oneshot;                  /* under mu: a fork+run with VMM_ASYNC_DESTROY still in flight */
    int close_asked;              /* under mu: vmm_async_destroy called while oneshot */
    vmm_async_gone_fn kept_gone;  /* under mu: a oneshot kept at a CALL: its gone, called when */
    void *kept_gone_arg;          /*   the vm is finally released (after the destroy's own) */
    unsigned worker;
    struct vmm_async_vm *prev, *next;   /* a->vms, under a->mu */
};

enum akind { AJ_START = 1, AJ_RUN, AJ_FORK, AJ_FORKRUN, AJ_SAVE, AJ_SAVE_CHILD, AJ_DERIVE, AJ_WRITE, AJ_DESTROY, AJ_RECYCLE, AJ_DIFF };

struct ajob {
    enum akind kind;
    struct vmm_async *a;
    struct vmm_async_vm *v;       /* referenced (all but write) */
    struct vmm_snapshot *snap;    /* referenced: fork, write */
    struct vmm_pool *pool;        /* referenced: fork */
    struct vmm_request req;
    uint64_t timeout_ns;          /* start */
    uint8_t entropy[FB_ENTROPY_SIZE];
    char *mem_path, *state_path;
    unsigned flags;
    vmm_async_cb cb;
    void *arg;
    vmm_async_gone_fn gone;
    void *gone_arg;
    struct vmm_async_result *res; /* allocated at submission, handed to cb */
    struct vmm_vm *reap_vm;       /* destroy: the vm the reaper tears down */
    vmm_async_gone_fn gone2;      /* destroy of a kept oneshot: its fork+run's gone, after `gone` */
    void *gone2_arg;
    struct ajob *reap_next;
    uint8_t payload[];            /* req.payload_len bytes */
};

struct vmm_async {
    struct vmm_workers *w;
    int n;
    atomic_uint next_worker;
    pthread_mutex_t mu;           /* vms, stopping */
    struct vmm_async_vm vms;      /* list head */
    int stopping;
    /* reaper */
    pthread_mutex_t reap_mu;
    pthread_cond_t reap_cv;
    struct ajob *reap_head, *reap_tail;
    int reap_len, reap_running, reap_stop;
    pthread_t reaper;
};

/* ---- results ---------------------------------------------------------------- */

void vmm_async_result_free(struct vmm_async_result *res)
{
    if (!res) return;
    if (res->derived) vmm_snapshot_close(res->derived);
    free((void *)res->resp.result);   /* one block for result, out and err */
    free(res);
}

static uint64_t clamp(const uint8_t *p, uint64_t len, uint64_t cap)
{
    if (!p) return 0;
    return len > cap ? cap : len;     /* the VMM clamps already; never trust twice */
}

/* Copies a response out of the mailbox (the next run overwrites it). */
static int copy_resp(struct vmm_async_result *res, const struct vmm_response *r)
{
    uint64_t nr = clamp(r->result, r->result_len, FB_MB_RESULT_SIZE);
    uint64_t no = clamp(r->out, r->out_len, FB_MB_OUT_SIZE);
    uint64_t ne = clamp(r->err, r->err_len, FB_MB_ERR_SIZE);
    uint8_t *buf = malloc(nr + no + ne + 1);
    if (!buf) return vmm_fail(&res->err, -ENOMEM, "copy response", "out of memory copying the response");
    res->resp = *r;
    if (nr) memcpy(buf, r->result, nr);
    if (no) memcpy(buf + nr, r->out, no);
    if (ne) memcpy(buf + nr + no, r->err, ne);
    res->resp.result = buf;
    res->resp.result_len = nr;
    res->resp.out = buf + nr;
    res->resp.out_len = no;
    res->resp.err = buf + nr + no;
    res->resp.err_len = ne;
    res->resp.detail[sizeof res->resp.detail - 1] = '\0';
    res->has_resp = 1;
    return 0;
}

/* ---- handles ------------------------------------------------------------------ */

static void vm_get(struct vmm_async_vm *v)
{
    atomic_fetch_add(&v->refs, 1);
}

void vmm_async_vm_put(struct vmm_async_vm *v)
{
    if (!v || atomic_fetch_sub(&v->refs, 1) != 1) return;
    struct vmm_async *a = v->a;
    if (a) {
        pthread_mutex_lock(&a->mu);
        v->prev->next = v->next;
        v->next->prev = v->prev;
        pthread_mutex_unlock(&a->mu);
    }
    /* No job holds v: whatever vm is left can go here. */
    if (v->vm) vmm_vm_destroy(v->vm);
    if (v->kept_gone) v->kept_gone(v->kept_gone_arg);   /* a kept oneshot dropped without a destroy */
    pthread_mutex_destroy(&v->mu);
    free(v);
}

static int vm_new(struct vmm_async *a, struct vmm_async_vm **out, struct vmm_err *err)
{
    struct vmm_async_vm *v = calloc(1, sizeof *v);
    if (!v) return vmm_fail(err, -ENOMEM, "calloc", "async vm");
    pthread_mutex_init(&v->mu, NULL);
    atomic_init(&v->refs, 1);
    v->a = a;
    v->worker = atomic_fetch_add(&a->next_worker, 1);
    pthread_mutex_lock(&a->mu);
    if (a->stopping) {
        pthread_mutex_unlock(&a->mu);
        pthread_mutex_destroy(&v->mu);
        free(v);
        return vmm_fail(err, -ESHUTDOWN, "vmm_async", "shutting down");
    }
    v->next = a->vms.next;
    v->prev = &a->vms;
    a->vms.next->prev = v;
    a->vms.next = v;
    pthread_mutex_unlock(&a->mu);
    *out = v;
    return 0;
}

/* Worker side: publishes a fresh vm in its handle (a pending kick applies). */
static void publish_vm(struct vmm_async_vm *v, struct vmm_vm *vm, int busy)
{
    pthread_mutex_lock(&v->mu);
    v->vm = vm;
    v->busy = busy;
    if (v->kick_pending) vmm_vm_kick(vm);
    pthread_mutex_unlock(&v->mu);
}

/* Takes the vm out of its handle: no kick can reach it after. */
static struct vmm_vm *take_vm(struct vmm_async_vm *v)
{
    pthread_mutex_lock(&v->mu);
    struct vmm_vm *vm = v->vm;
    v->vm = NULL;
    pthread_mutex_unlock(&v->mu);
    return vm;
}

void vmm_async_kick(struct vmm_async_vm *v)
{
    if (!v) return;
    pthread_mutex_lock(&v->mu);
    if (v->vm) vmm_vm_kick(v->vm);
    else v->kick_pending = 1;
    pthread_mutex_unlock(&v->mu);
}

int vmm_async_private_bytes(struct vmm_async_vm *v, uint64_t *out, struct vmm_err *err)
{
    if (!v || !out) return vmm_fail(err, -EINVAL, "vmm_async_private_bytes", "missing argument");
    int rc;
    pthread_mutex_lock(&v->mu);
    if (v->vm && !v->closed) rc = vmm_vm_private_bytes(v->vm, out, err);
    else rc = vmm_fail(err, -EBADF, "privateBytes", "vm is closed");
    pthread_mutex_unlock(&v->mu);
    return rc;
}

int vmm_async_share(struct vmm_async_vm *v, uint64_t gpa, uint64_t len, struct vmm_shm *shm, uint64_t off,
                    int copy_in, struct vmm_err *err)
{
    if (!v) return vmm_fail(err, -EINVAL, "vmm_async_share", "missing argument");
    int rc;
    pthread_mutex_lock(&v->mu);   /* held: no job of v starts meanwhile */
    if (!v->vm || v->closed) rc = vmm_fail(err, -EBADF, "share", "vm is closed");
    else if (v->busy) rc = vmm_fail(err, -EBUSY, "share", "a job of the vm is running: share only between jobs");
    else rc = vmm_vm_share(v->vm, gpa, len, shm, off, copy_in, err);
    pthread_mutex_unlock(&v->mu);
    return rc;
}

int vmm_async_unshare(struct vmm_async_vm *v, uint64_t gpa, uint64_t len, struct vmm_err *err)
{
    if (!v) return vmm_fail(err, -EINVAL, "vmm_async_unshare", "missing argument");
    int rc;
    pthread_mutex_lock(&v->mu);
    if (!v->vm || v->closed) rc = vmm_fail(err, -EBADF, "unshare", "vm is closed");
    else if (v->busy) rc = vmm_fail(err, -EBUSY, "unshare", "a job of the vm is running: unshare only between jobs");
    else rc = vmm_vm_unshare(v->vm, gpa, len, err);
    pthread_mutex_unlock(&v->mu);
    return rc;
}

int vmm_async_kvm_stats(struct vmm_async_vm *v, struct vmm_kvm_stats *out, struct vmm_err *err)
{
    if (!v || !out) return vmm_fail(err, -EINVAL, "vmm_async_kvm_stats", "missing argument");
    int rc;
    pthread_mutex_lock(&v->mu);
    if (v->vm && !v->closed) rc = vmm_vm_kvm_stats(v->vm, out, err);
    else rc = vmm_fail(err, -EBADF, "kvmStats", "vm is closed");
    pthread_mutex_unlock(&v->mu);
    return rc;
}

/* ---- reaper ------------------------------------------------------------------- */

static void job_free(struct ajob *j)
{
    vmm_async_result_free(j->res);
    if (j->v) vmm_async_vm_put(j->v);
    if (j->snap) snapshot_put(j->snap);
    if (j->pool) vmm_pool_destroy(j->pool);
    free(j->mem_path);
    free(j->state_path);
    free(j);
}

static void reaped(struct ajob *j)
{
    if (j->reap_vm) vmm_vm_destroy(j->reap_vm);
    j->reap_vm = NULL;
    if (j->gone) j->gone(j->gone_arg);
    if (j->gone2) j->gone2(j->gone2_arg);
    job_free(j);
}

static void *reaper_main(void *arg)
{
    struct vmm_async *a = arg;
    setpriority(PRIO_PROCESS, (id_t)gettid(), REAP_NICE);   /* per-thread nice on Linux */
    pthread_mutex_lock(&a->reap_mu);
    for (;;) {
        while (!a->reap_head && !a->reap_stop) pthread_cond_wait(&a->reap_cv, &a->reap_mu);
        struct ajob *j = a->reap_head;
        if (!j) break;                                /* stopping and drained */
        a->reap_head = j->reap_next;
        if (!a->reap_head) a->reap_tail = NULL;
        a->reap_len--;
        pthread_mutex_unlock(&a->reap_mu);
        reaped(j);
        pthread_mutex_lock(&a->reap_mu);
    }
    pthread_mutex_unlock(&a->reap_mu);
    return NULL;
}

/* Worker side: destroys `vm` (may be NULL) off the latency path, then calls
 * j's gone callback and frees j. The job's handle reference is dropped first. */
static void reap(struct ajob *j, struct vmm_vm *vm)
{
    struct vmm_async *a = j->a;
    if (j->v) { vmm_async_vm_put(j->v); j->v = NULL; }
    j->reap_vm = vm;
    j->reap_next = NULL;
    pthread_mutex_lock(&a->reap_mu);
    if (a->reap_running && !a->reap_stop && a->reap_len < REAP_MAX) {
        if (a->reap_tail) a->reap_tail->reap_next = j; else a->reap_head = j;
        a->reap_tail = j;
        a->reap_len++;
        pthread_cond_signal(&a->reap_cv);
        pthread_mutex_unlock(&a->reap_mu);
        return;
    }
    pthread_mutex_unlock(&a->reap_mu);
    reaped(j);
}

/* ---- the worker side of a job -------------------------------------------------- */

static void complete(struct ajob *j)
{
    struct vmm_async_result *res = j->res;
    j->res = NULL;
    j->cb(j->arg, res);
}

/* The job's vm, marked busy until job_idle (NULL with rc -EBADF once closed). */
static struct vmm_vm *open_vm(struct ajob *j, const char *op)
{
    pthread_mutex_lock(&j->v->mu);
    struct vmm_vm *vm = j->v->vm;
    if (vm) j->v->busy = 1;
    pthread_mutex_unlock(&j->v->mu);
    if (!vm) j->res->rc = vmm_fail(&j->res->err, -EBADF, op, "vm is closed");
    return vm;
}

static void job_idle(struct ajob *j)
{
    if (!j->v) return;
    pthread_mutex_lock(&j->v->mu);
    j->v->busy = 0;
    pthread_mutex_unlock(&j->v->mu);
}

/* A fork+run with VMM_ASYNC_DESTROY that stopped at a CALL is not torn down:
 * its handle opens (unless a destroy was asked for while it ran) and keeps
 * the job's gone callback for the vm's final release. Returns 1 when kept. */
static int keep_at_call(struct ajob *j)
{
    const struct vmm_async_result *res = j->res;
    int call = res->rc == 0 && res->has_resp && res->resp.outcome == VMM_OK && res->resp.status == FB_ST_CALL;
    struct vmm_async_vm *v = j->v;
    pthread_mutex_lock(&v->mu);
    int keep = call && !v->close_asked && v->vm;
    v->oneshot = 0;
    if (keep) {
        v->closed = 0;
        v->kept_gone = j->gone;
        v->kept_gone_arg = j->gone_arg;
        j->gone = NULL;
    }
    pthread_mutex_unlock(&v->mu);
    return keep;
}

/* Takes a kept oneshot's gone callback out of v (under mu). */
static vmm_async_gone_fn take_kept_gone(struct vmm_async_vm *v, void **arg)
{
    vmm_async_gone_fn g = v->kept_gone;
    *arg = v->kept_gone_arg;
    v->kept_gone = NULL;
    v->kept_gone_arg = NULL;
    return g;
}

static void job_work(void *arg)
{
    struct ajob *j = arg;
    struct vmm_async_result *res = j->res;
    struct vmm_response r;
    struct vmm_vm *vm;
    memset(&r, 0, sizeof r);
    switch (j->kind) {
    case AJ_START:
        if (!(vm = open_vm(j, "start"))) break;
        res->rc = vmm_vm_start(vm, j->timeout_ns, &r, &res->err);
        if (res->rc == 0) res->rc = copy_resp(res, &r);
        break;
    case AJ_RUN:
        if (!(vm = open_vm(j, "run"))) break;
        res->rc = vmm_vm_run(vm, &j->req, &r, &res->err);
        if (res->rc == 0) res->rc = copy_resp(res, &r);
        break;
    case AJ_FORK:
    case AJ_FORKRUN: {
        uint64_t t0 = vmm_now_ns();
        vm = NULL;
        res->rc = vmm_fork(j->snap, j->pool, &vm, &res->err);
        res->fork_ns = vmm_now_ns() - t0;
        snapshot_put(j->snap);            /* the fork holds its own reference */
        j->snap = NULL;
        if (j->pool) { vmm_pool_destroy(j->pool); j->pool = NULL; }
        if (res->rc != 0) {
            pthread_mutex_lock(&j->v->mu);
            j->v->closed = 1;             /* nothing to run: the handle is closed */
            pthread_mutex_unlock(&j->v->mu);
            break;
        }
        publish_vm(j->v, vm, j->kind == AJ_FORKRUN);
        if (j->kind == AJ_FORK) break;
        uint64_t t1 = vmm_now_ns();
        res->rc = vmm_vm_run(vm, &j->req, &r, &res->err);
        res->run_ns = vmm_now_ns() - t1;
        if (res->rc == 0) res->rc = copy_resp(res, &r);
        break;
    }
    case AJ_SAVE:
        if (!(vm = open_vm(j, "save"))) break;
        res->rc = vmm_snapshot_save(vm, j->mem_path, j->state_path, &res->err);
        break;
    case AJ_SAVE_CHILD:
        if (!(vm = open_vm(j, "save child"))) break;
        res->rc = vmm_snapshot_save_child(vm, j->mem_path, j->state_path, &res->err);
        break;
    case AJ_DERIVE:
        if (!(vm = open_vm(j, "derive"))) break;
        res->rc = vmm_snapshot_derive(vm, &res->derived, &res->err);
        break;
    case AJ_WRITE:
        res->rc = vmm_snapshot_write(j->snap, j->mem_path, j->state_path, &res->err);
        break;
    case AJ_RECYCLE:
        if (!(vm = open_vm(j, "recycle"))) break;
        res->rc = vmm_vm_recycle(vm, &res->recycle, &res->err);
        break;
    case AJ_DIFF:
        if (!(vm = open_vm(j, "diff"))) break;
        res->rc = vmm_vm_diff_snapshot(vm, &res->recycle.ram_pages, &res->recycle.mailbox_pages, &res->err);
        break;
    case AJ_DESTROY:
        reap(j, take_vm(j->v));
        return;
    }
    job_idle(j);
    if (j->kind == AJ_FORKRUN && (j->flags & VMM_ASYNC_DESTROY) && keep_at_call(j)) {
        /* The guest called the host: the caller answers it on this handle, which is open from
         * now on (before the callback, so its first run is accepted), and closes it later. */
        complete(j);
        job_free(j);
        return;
    }
    complete(j);
    if (j->kind == AJ_FORKRUN && (j->flags & VMM_ASYNC_DESTROY)) {
        /* The caller has its result; the teardown happens off its latency path. */
        reap(j, take_vm(j->v));
        return;
    }
    job_free(j);
}

/* ---- submission ----------------------------------------------------------------- */

static struct ajob *job_new(enum akind kind, uint64_t payload_len, vmm_async_cb cb, void *arg, struct vmm_err *err)
{
    struct ajob *j = calloc(1, sizeof *j + payload_len);
    if (j) j->res = calloc(1, sizeof *j->res);
    if (!j || !j->res) {
        free(j);
        vmm_fail(err, -ENOMEM, "calloc", "async job");
        return NULL;
    }
    j->kind = kind;
    j->cb = cb;
    j->arg = arg;
    return j;
}

static int copy_req(struct ajob *j, const struct vmm_request *req)
{
    j->req = *req;
    if (req->payload_len) memcpy(j->payload, req->payload, req->payload_len);
    j->req.payload = j->payload;
    if (req->entropy) {
        memcpy(j->entropy, req->entropy, FB_ENTROPY_SIZE);
        j->req.entropy = j->entropy;
    }
    return 0;
}

static int check_req(const struct vmm_request *req, struct vmm_err *err)
{
    if (!req) return vmm_fail(err, -EINVAL, "vmm_async", "missing request");
    if (req->payload_len > FB_MB_REQ_SIZE || (req->payload_len && !req->payload))
        return vmm_fail(err, -E2BIG, "vmm_async", "payload: %llu bytes, at most %llu",
                        (unsigned long long)req->payload_len, (unsigned long long)FB_MB_REQ_SIZE);
    return 0;
}

static int submit(struct vmm_async *a, struct ajob *j, unsigned worker, struct vmm_err *err)
{
    j->a = a;
    int rc = vmm_workers_submit(a->w, worker, job_work, j);
    if (rc) return vmm_fail(err, rc, "vmm_workers_submit", "%s", rc == -ESHUTDOWN ? "shutting down" : strerror(-rc));
    return 0;
}

/* A job on an existing handle; -EBADF when it is closed. */
static int submit_vm(struct vmm_async_vm *v, struct ajob *j, const char *op, struct vmm_err *err)
{
    if (!v->a) { job_free(j); return vmm_fail(err, -ESHUTDOWN, op, "shutting down"); }
    pthread_mutex_lock(&v->mu);
    int closed = v->closed;
    pthread_mutex_unlock(&v->mu);
    if (closed) { job_free(j); return vmm_fail(err, -EBADF, op, "vm is closed"); }
    vm_get(v);
    j->v = v;
    int rc = submit(v->a, j, v->worker, err);
    if (rc) job_free(j);
    return rc;
}

int vmm_async_start(struct vmm_async_vm *v, uint64_t timeout_ns, vmm_async_cb cb, void *arg, struct vmm_err *err)
{
    if (!v || !cb) return vmm_fail(err, -EINVAL, "vmm_async_start", "missing argument");
    struct ajob *j = job_new(AJ_START, 0, cb, arg, err);
    if (!j) return -ENOMEM;
    j->timeout_ns = timeout_ns;
    return submit_vm(v, j, "start", err);
}

int vmm_async_run(struct vmm_async_vm *v, const struct vmm_request *req, vmm_async_cb cb, void *arg,
                  struct vmm_err *err)
{
    if (!v || !cb) return vmm_fail(err, -EINVAL, "vmm_async_run", "missing argument");
    int rc = check_req(req, err);
    if (rc) return rc;
    struct ajob *j = job_new(AJ_RUN, req->payload_len, cb, arg, err);
    if (!j) return -ENOMEM;
    copy_req(j, req);
    return submit_vm(v, j, "run", err);
}

static int vm_job(enum akind kind, struct vmm_async_vm *v, vmm_async_cb cb, void *arg, const char *op,
                  struct vmm_err *err)
{
    if (!v || !cb) return vmm_fail(err, -EINVAL, op, "missing argument");
    struct ajob *j = job_new(kind, 0, cb, arg, err);
    if (!j) return -ENOMEM;
    return submit_vm(v, j, op, err);
}

int vmm_async_recycle(struct vmm_async_vm *v, vmm_async_cb cb, void *arg, struct vmm_err *err)
{
    return vm_job(AJ_RECYCLE, v, cb, arg, "vmm_async_recycle", err);
}

int vmm_async_diff(struct vmm_async_vm *v, vmm_async_cb cb, void *arg, struct vmm_err *err)
{
    return vm_job(AJ_DIFF, v, cb, arg, "vmm_async_diff", err);
}

static char *dup_path(const char *p)
{
    return p ? strdup(p) : NULL;
}

static int save_job(enum akind kind, struct vmm_async_vm *v, const char *mem_path, const char *state_path,
                    vmm_async_cb cb, void *arg, struct vmm_err *err)
{
    if (!v || !cb || !mem_path || !state_path) return vmm_fail(err, -EINVAL, "vmm_async_save", "missing argument");
    struct ajob *j = job_new(kind, 0, cb, arg, err);
    if (!j) return -ENOMEM;
    if (!(j->mem_path = dup_path(mem_path)) || !(j->state_path = dup_path(state_path))) {
        job_free(j);
        return vmm_fail(err, -ENOMEM, "strdup", "paths");
    }
    return submit_vm(v, j, "save", err);
}

int vmm_async_save(struct vmm_async_vm *v, const char *mem_path, const char *state_path,
                   vmm_async_cb cb, void *arg, struct vmm_err *err)
{
    return save_job(AJ_SAVE, v, mem_path, state_path, cb, arg, err);
}

int vmm_async_save_child(struct vmm_async_vm *v, const char *mem_path, const char *state_path,
                         vmm_async_cb cb, void *arg, struct vmm_err *err)
{
    return save_job(AJ_SAVE_CHILD, v, mem_path, state_path, cb, arg, err);
}

int vmm_async_derive(struct vmm_async_vm *v, vmm_async_cb cb, void *arg, struct vmm_err *err)
{
    if (!v || !cb) return vmm_fail(err, -EINVAL, "vmm_async_derive", "missing argument");
    struct ajob *j = job_new(AJ_DERIVE, 0, cb, arg, err);
    if (!j) return -ENOMEM;
    return submit_vm(v, j, "derive", err);
}

int vmm_async_write(struct vmm_async *a, struct vmm_snapshot *snap, const char *mem_path,
                    const char *state_path, vmm_async_cb cb, void *arg, struct vmm_err *err)
{
    if (!a || !snap || !cb || !mem_path || !state_path)
        return vmm_fail(err, -EINVAL, "vmm_async_write", "missing argument");
    struct ajob *j = job_new(AJ_WRITE, 0, cb, arg, err);
    if (!j) return -ENOMEM;
    atomic_fetch_add(&snap->refs, 1);
    j->snap = snap;
    if (!(j->mem_path = dup_path(mem_path)) || !(j->state_path = dup_path(state_path))) {
        job_free(j);
        return vmm_fail(err, -ENOMEM, "strdup", "paths");
    }
    int rc = submit(a, j, atomic_fetch_add(&a->next_worker, 1), err);
    if (rc) job_free(j);
    return rc;
}

static int fork_job(struct vmm_async *a, enum akind kind, struct vmm_snapshot *snap, struct vmm_pool *pool,
                    const struct vmm_request *req, unsigned flags, vmm_async_cb cb, void *arg,
                    vmm_async_gone_fn gone, void *gone_arg, struct vmm_async_vm **out, struct vmm_err *err)
{
    if (!a || !snap || !cb || !out) return vmm_fail(err, -EINVAL, "vmm_async_fork", "missing argument");
    if (req) {
        int rc = check_req(req, err);
        if (rc) return rc;
    }
    struct ajob *j = job_new(kind, req ? req->payload_len : 0, cb, arg, err);
    if (!j) return -ENOMEM;
    if (req) copy_req(j, req);
    j->flags = flags;
    j->gone = gone;
    j->gone_arg = gone_arg;
    struct vmm_async_vm *v;
    int rc = vm_new(a, &v, err);
    if (rc) { job_free(j); return rc; }
    if (flags & VMM_ASYNC_DESTROY) v->closed = v->oneshot = 1;   /* the job itself destroys it (unless a CALL) */
    atomic_fetch_add(&snap->refs, 1);
    j->snap = snap;
    if (pool) { pool_get(pool); j->pool = pool; }
    vm_get(v);
    j->v = v;
    rc = submit(a, j, v->worker, err);
    if (rc) {
        j->gone = NULL;
        job_free(j);
        vmm_async_vm_put(v);
        return rc;
    }
    *out = v;
    return 0;
}

int vmm_async_fork(struct vmm_async *a, struct vmm_snapshot *snap, struct vmm_pool *pool,
                   vmm_async_cb cb, void *arg, struct vmm_async_vm **out, struct vmm_err *err)
{
    return fork_job(a, AJ_FORK, snap, pool, NULL, 0, cb, arg, NULL, NULL, out, err);
}

int vmm_async_fork_run(struct vmm_async *a, struct vmm_snapshot *snap, struct vmm_pool *pool,
                       const struct vmm_request *req, unsigned flags, vmm_async_cb cb, void *arg,
                       vmm_async_gone_fn gone, void *gone_arg, struct vmm_async_vm **out,
                       struct vmm_err *err)
{
    if (!req) return vmm_fail(err, -EINVAL, "vmm_async_fork_run", "missing request");
    return fork_job(a, AJ_FORKRUN, snap, pool, req, flags & VMM_ASYNC_DESTROY, cb, arg,
                    (flags & VMM_ASYNC_DESTROY) ? gone : NULL, gone_arg, out, err);
}

int vmm_async_adopt(struct vmm_async *a, struct vmm_vm *vm, struct vmm_async_vm **out, struct vmm_err *err)
{
    if (!a || !vm || !out) return vmm_fail(err, -EINVAL, "vmm_async_adopt", "missing argument");
    struct vmm_async_vm *v;
    int rc = vm_new(a, &v, err);
    if (rc) return rc;
    v->vm = vm;
    *out = v;
    return 0;
}

int vmm_async_destroy(struct vmm_async_vm *v, vmm_async_gone_fn gone, void *arg)
{
    if (!v) return -EINVAL;
    pthread_mutex_lock(&v->mu);
    int was = v->closed;
    if (was && v->oneshot) v->close_asked = 1;   /* its fork+run must not keep it at a CALL */
    v->closed = 1;
    void *gone2_arg = NULL;
    vmm_async_gone_fn gone2 = was ? NULL : take_kept_gone(v, &gone2_arg);
    pthread_mutex_unlock(&v->mu);
    if (was) return -EALREADY;
    if (!v->a) {   /* shutdown destroyed the vm already (and called a kept gone) */
        if (gone2) gone2(gone2_arg);
        return -ESHUTDOWN;
    }
    struct ajob *j = job_new(AJ_DESTROY, 0, NULL, NULL, NULL);
    if (j) {
        vmm_async_result_free(j->res);
        j->res = NULL;
        j->gone = gone;
        j->gone_arg = arg;
        j->gone2 = gone2;
        j->gone2_arg = gone2_arg;
        vm_get(v);
        j->v = v;
        if (submit(v->a, j, v->worker, NULL) == 0) return 0;
        j->gone = j->gone2 = NULL;
        job_free(j);
    }
    /* Out of memory or shutting down: a job of v may be running on its worker,
     * so the vm cannot go here. End its run; the last reference destroys it. */
    vmm_async_kick(v);
    if (gone) gone(arg);   /* approximate: the vm goes with the last job of v */
    if (gone2) gone2(gone2_arg);
    return 0;
}

/* ---- lifecycle ------------------------------------------------------------------- */

int vmm_async_create(int workers, struct vmm_async **out, struct vmm_err *err)
{
    if (!out) return vmm_fail(err, -EINVAL, "vmm_async_create", "missing argument");
    struct vmm_async *a = calloc(1, sizeof *a);
    if (!a) return vmm_fail(err, -ENOMEM, "calloc", "async");
    int rc = vmm_workers_create(workers, &a->w, err);
    if (rc) { free(a); return rc; }
    a->n = workers;
    pthread_mutex_init(&a->mu, NULL);
    a->vms.next = a->vms.prev = &a->vms;
    pthread_mutex_init(&a->reap_mu, NULL);
    pthread_cond_init(&a->reap_cv, NULL);
    /* Without a reaper (pthread_create failed) workers destroy inline. */
    if (pthread_create(&a->reaper, NULL, reaper_main, a) == 0) a->reap_running = 1;
    *out = a;
    return 0;
}

int vmm_async_workers(const struct vmm_async *a)
{
    return a ? a->n : 0;
}

void vmm_async_shutdown(struct vmm_async *a)
{
    if (!a) return;
    struct vmm_async_vm *v;
    /* 1. end every run in flight (and every run still queued), so draining terminates */
    pthread_mutex_lock(&a->mu);
    a->stopping = 1;
    for (v = a->vms.next; v != &a->vms; v = v->next) {
        pthread_mutex_lock(&v->mu);
        if (v->vm) vmm_vm_kick(v->vm);
        v->kick_pending = 1;
        pthread_mutex_unlock(&v->mu);
    }
    pthread_mutex_unlock(&a->mu);
    /* 2. drain and join the workers, then the reaper (callbacks are still called) */
    vmm_workers_destroy(a->w);
    pthread_mutex_lock(&a->reap_mu);
    a->reap_stop = 1;
    pthread_cond_signal(&a->reap_cv);
    pthread_mutex_unlock(&a->reap_mu);
    if (a->reap_running) pthread_join(a->reaper, NULL);
    /* 3. destroy every vm left; the handles stay for vmm_async_vm_put */
    pthread_mutex_lock(&a->mu);
    while ((v = a->vms.next) != &a->vms) {
        a->vms.next = v->next;
        v->next->prev = &a->vms;
        v->next = v->prev = v;
        struct vmm_vm *vm = take_vm(v);
        if (vm) vmm_vm_destroy(vm);
        pthread_mutex_lock(&v->mu);
        v->closed = 1;
        v->a = NULL;
        void *garg;
        vmm_async_gone_fn g = take_kept_gone(v, &garg);   /* a kept oneshot never closed */
        pthread_mutex_unlock(&v->mu);
        if (g) g(garg);
    }
    pthread_mutex_unlock(&a->mu);
    pthread_cond_destroy(&a->reap_cv);
    pthread_mutex_destroy(&a->reap_mu);
    pthread_mutex_destroy(&a->mu);
    free(a);
}
