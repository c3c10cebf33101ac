/*
 * addon.c — the N-API binding of the VMM library (the only file that includes
 * node_api.h): twenty functions taking already-validated primitives;
 * src/vmm/vmm.ts owns options, defaults and messages. Every vCPU runs on its
 * native worker thread; results come back through one threadsafe function.
 */

/*
 * Threads: every KVM_RUN of a vm happens on the one native worker it is bound
 * to for life (vmm_workers_*), never on the JS thread or the libuv pool. The
 * worker side of a job is jobs.c (outputs are copied out of the mailbox
 * there); teardown goes to the low-priority reaper (reaper.c). All handle
 * bookkeeping (handles.c: reference counts, the registry; here: the
 * pending-job count) happens on the JS thread, except the per-vm mutex that
 * orders kick() against teardown.
 *
 * Lifetimes: handles are napi_externals with finalizers. A vm dropped without
 * close() is destroyed on its worker; a snapshot or pool is released once it
 * is closed (or collected) and no fork job or live vm still uses it. An env
 * cleanup hook kicks every vm, drains the workers and releases everything.
 */
#define _GNU_SOURCE
#include <node_api.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binding.h"

/* ---- handles ----------------------------------------------------------- */

static const napi_type_tag tag_vm = {0x666f726b626f7801ull, 0x766d000000000001ull};
static const napi_type_tag tag_snap = {0x666f726b626f7801ull, 0x736e617000000002ull};
static const napi_type_tag tag_pool = {0x666f726b626f7801ull, 0x706f6f6c00000003ull};

static struct vmm_workers *g_workers;
static int g_nworkers;
static napi_threadsafe_function g_tsfn;
static int g_pending;          /* jobs submitted and not yet completed */
static bool g_env_set;

/* ---- errors ------------------------------------------------------------ */

static napi_value make_error(napi_env env, int rc, const struct vmm_err *e)
{
    int code = rc < 0 ? -rc : rc;
    const char *name = code ? strerrorname_np(code) : NULL;
    char msg[256];
    const char *op = e && e->op ? e->op : "";
    if (e && e->msg[0])
        snprintf(msg, sizeof(msg), "%s%s%s", op, op[0] ? ": " : "", e->msg);
    else
        snprintf(msg, sizeof(msg), "%s%s%s", op, op[0] ? ": " : "", strerror(code ? code : EIO));
    napi_value m, c, err, o, n;
    napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &m);
    napi_create_string_utf8(env, name ? name : "EIO", NAPI_AUTO_LENGTH, &c);
    napi_create_error(env, c, m, &err);
    napi_create_string_utf8(env, op, NAPI_AUTO_LENGTH, &o);
    napi_set_named_property(env, err, "op", o);
    napi_create_int32(env, -code, &n);
    napi_set_named_property(env, err, "errno", n);
    return err;
}

static napi_value throw_vmm(napi_env env, int rc, const struct vmm_err *e)
{
    napi_throw(env, make_error(env, rc, e));
    return NULL;
}

static napi_value throw_type(napi_env env, const char *msg)
{
    napi_throw_type_error(env, "ERR_INVALID_ARG_TYPE", msg);
    return NULL;
}

#define NAPI_OK(call) do { if ((call) != napi_ok) return NULL; } while (0)

/* ---- argument helpers --------------------------------------------------- */

static void *get_handle(napi_env env, napi_value v, const napi_type_tag *tag)
{
    napi_valuetype t;
    bool ok = false;
    void *p = NULL;
    if (napi_typeof(env, v, &t) != napi_ok || t != napi_external) return NULL;
    if (napi_check_object_type_tag(env, v, tag, &ok) != napi_ok || !ok) return NULL;
    if (napi_get_value_external(env, v, &p) != napi_ok) return NULL;
    return p;
}

static bool get_u64(napi_env env, napi_value v, uint64_t *out)
{
    double d;
    if (napi_get_value_double(env, v, &d) != napi_ok) return false;
    if (!(d >= 0 && d <= 9007199254740991.0)) return false;
    *out = (uint64_t)d;
    return true;
}

static bool get_prop_u64(napi_env env, napi_value obj, const char *name, uint64_t *out)
{
    napi_value v;
    if (napi_get_named_property(env, obj, name, &v) != napi_ok) return false;
    return get_u64(env, v, out);
}

/* Returns a malloc'd NUL-terminated copy, or NULL (not a string / OOM). */
static char *get_string(napi_env env, napi_value v)
{
    size_t len;
    if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) return NULL;
    if (len > 4096) return NULL;
    char *s = malloc(len + 1);
    if (!s) return NULL;
    if (napi_get_value_string_utf8(env, v, s, len + 1, &len) != napi_ok) { free(s); return NULL; }
    if (strlen(s) != len) { free(s); return NULL; }   /* embedded NUL */
    return s;
}

static bool get_buffer(napi_env env, napi_value v, void **data, size_t *len)
{
    bool is;
    if (napi_is_buffer(env, v, &is) != napi_ok || !is) return false;
    return napi_get_buffer_info(env, v, data, len) == napi_ok;
}

static bool is_function(napi_env env, napi_value v)
{
    napi_valuetype t;
    return napi_typeof(env, v, &t) == napi_ok && t == napi_function;
}

/* ---- jobs ----------------------------------------------------------------- */

/* Worker side: hands a finished job to the JS thread. */
void job_post(struct job *j)
{
    if (napi_call_threadsafe_function(g_tsfn, j, napi_tsfn_nonblocking) != napi_ok) {
        /* Shutting down: the JS side is gone; handles are released by the cleanup hook. */
        job_free_data(j);
    }
}

static napi_value make_buffer(napi_env env, uint8_t **data, uint64_t len)
{
    napi_value b;
    if (len == 0) {
        void *p;
        if (napi_create_buffer(env, 0, &p, &b) != napi_ok) return NULL;
        return b;
    }
    void *copy;
    if (napi_create_buffer_copy(env, len, *data, &copy, &b) != napi_ok) return NULL;
    return b;
}

static void set_num(napi_env env, napi_value o, const char *name, double v)
{
    napi_value x;
    napi_create_double(env, v, &x);
    napi_set_named_property(env, o, name, x);
}

static napi_value resp_to_js(napi_env env, struct resp_copy *rc)
{
    const struct vmm_response *r = &rc->r;
    napi_value o, v;
    if (napi_create_object(env, &o) != napi_ok) return NULL;
    napi_create_string_utf8(env, vmm_outcome_name(r->outcome), NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, o, "outcome", v);
    set_num(env, o, "outcomeCode", (double)r->outcome);
    set_num(env, o, "status", (double)r->status);
    set_num(env, o, "exitCode", (double)r->exit_code);
    set_num(env, o, "outFlags", (double)r->out_flags);
    if ((v = make_buffer(env, &rc->result, r->result_len))) napi_set_named_property(env, o, "result", v);
    if ((v = make_buffer(env, &rc->out, r->out_len))) napi_set_named_property(env, o, "stdout", v);
    if ((v = make_buffer(env, &rc->err, r->err_len))) napi_set_named_property(env, o, "stderr", v);
    set_num(env, o, "faultVector", (double)r->fault_vector);
    set_num(env, o, "faultError", (double)r->fault_error);
    set_num(env, o, "faultRip", (double)r->fault_rip);
    set_num(env, o, "faultCr2", (double)r->fault_cr2);
    set_num(env, o, "exitReason", (double)r->exit_reason);
    set_num(env, o, "ioPort", (double)r->io_port);
    set_num(env, o, "mmioAddr", (double)r->mmio_addr);
    napi_create_string_utf8(env, r->detail, strnlen(r->detail, sizeof(r->detail)), &v);
    napi_set_named_property(env, o, "detail", v);
    set_num(env, o, "exits", (double)r->exits);
    set_num(env, o, "runNs", (double)r->run_ns);
    set_num(env, o, "arenaUsed", (double)r->arena_used);
    set_num(env, o, "arenaPeak", (double)r->arena_peak);
    return o;
}

static void vm_finalize(napi_env env, void *data, void *hint);
static napi_value snap_external(napi_env env, struct vmm_snapshot *s);

/* A new external for a vm handle (the external holds one ref). */
static napi_value vm_external(napi_env env, struct vm_h *v)
{
    napi_value ext;
    if (napi_create_external(env, v, vm_finalize, NULL, &ext) != napi_ok) return NULL;
    napi_type_tag_object(env, ext, &tag_vm);
    v->h.refs++;
    return ext;
}

static void pending_add(napi_env env, int d)
{
    int before = g_pending;
    g_pending += d;
    if (before == 0 && g_pending > 0) napi_ref_threadsafe_function(env, g_tsfn);
    else if (before > 0 && g_pending == 0) napi_unref_threadsafe_function(env, g_tsfn);
}

/* JS thread: completion of a job. env is NULL when the tsfn is torn down. */
static void vm_queue_destroy(napi_env env, struct vm_h *v, napi_value gone);

static void call_js(napi_env env, napi_value js_cb, void *context, void *data)
{
    struct job *j = data;
    (void)js_cb; (void)context;
    if (!env || g_shutdown) { job_free_data(j); return; }
    pending_add(env, -1);

    napi_value argv[2] = {NULL, NULL}, undef;
    napi_get_undefined(env, &undef);
    argv[1] = undef;
    bool ok = j->rc == 0;

    /* bookkeeping first, so a throwing callback cannot skip it */
    if (j->kind == J_FORK || j->kind == J_FORKRUN) {
        pool_unuse(j->pool);
        j->pool = NULL;
        if (j->rc != 0 && j->kind == J_FORK && !vm_of(j->vm)) {
            /* fork failed: nothing to destroy; the handle dies with the job */
            j->vm->h.closed = true;
        }
    }
    if (j->vm_gone || (j->kind == J_FORK && !ok) || (j->kind == J_FORKRUN && j->fork_failed && !j->destroy_after)) {
        /* the vm no longer exists: release its hold on the snapshot once */
        if (j->vm->snap) { struct snap_h *s = j->vm->snap; j->vm->snap = NULL; snap_unuse(s); }
    }
    if (j->snap) { hdr_unref(&j->snap->h); j->snap = NULL; }

    if (j->cb) {
        if (!ok) {
            argv[0] = make_error(env, j->rc, &j->err);
        } else {
            napi_get_null(env, &argv[0]);
            switch (j->kind) {
            case J_START: case J_RUN:
                argv[1] = resp_to_js(env, &j->resp);
                break;
            case J_FORK:
                argv[1] = vm_external(env, j->vm);
                if (!argv[1]) {   /* could not hand the vm to JS: tear it down */
                    j->vm->h.closed = true;
                    vm_queue_destroy(env, j->vm, NULL);
                }
                break;
            case J_DERIVE:
                argv[1] = snap_external(env, j->derived);   /* owns it now, or closed it */
                j->derived = NULL;
                if (!argv[1]) {   /* snap_external threw: report it as the job's error below */
                    bool pending = false;
                    napi_value exc;
                    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &exc);
                }
                break;
            case J_FORKRUN: {
                napi_value o, r = resp_to_js(env, &j->resp);
                if (!r || napi_create_object(env, &o) != napi_ok) { argv[1] = NULL; break; }   /* error below */
                napi_set_named_property(env, o, "response", r);
                set_num(env, o, "forkNs", (double)j->fork_ns);
                set_num(env, o, "runNs", (double)j->run_ns);
                argv[1] = o;
                break;
            }
            default:
                break;
            }
            if (!argv[1]) {
                struct vmm_err e = {.code = -ENOMEM, .op = "napi", .msg = "could not build the result"};
                argv[0] = make_error(env, -ENOMEM, &e);
                argv[1] = undef;
            }
        }
        napi_value cb;
        if (napi_get_reference_value(env, j->cb, &cb) == napi_ok && cb)
            napi_call_function(env, undef, cb, 2, argv, NULL);
        napi_delete_reference(env, j->cb);
    }
    if (j->vm) hdr_unref(&j->vm->h);
    job_free_data(j);
}

static int ensure_workers(napi_env env)
{
    if (g_shutdown) return -ESHUTDOWN;
    if (g_workers) return 0;
    if (g_nworkers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        g_nworkers = (int)(n > 0 ? 2 * n : 2);
    }
    struct vmm_err e = {0};
    int rc = vmm_workers_create(g_nworkers, &g_workers, &e);
    if (rc != 0) { throw_vmm(env, rc, &e); return rc; }
    reaper_start();
    return 0;
}

/* Submits a job; on failure frees it and throws (the caller returns NULL). */
static bool submit(napi_env env, struct job *j, unsigned worker)
{
    struct vmm_err e = {0};
    /* Count before submitting: once submitted, the job belongs to the worker
     * (which may already have finished it and cleared j->followup). */
    int completions = j->followup ? 2 : 1;
    pending_add(env, completions);
    int rc = vmm_workers_submit(g_workers, worker, job_work, j);
    if (rc != 0) {
        e.code = rc;
        e.op = "vmm_workers_submit";
        pending_add(env, -completions);
        throw_vmm(env, rc, &e);
        return false;
    }
    return true;
}

static struct job *job_new(napi_env env, enum jkind kind, napi_value cb)
{
    struct job *j = calloc(1, sizeof(*j));
    if (!j) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
    j->kind = kind;
    napi_ref ref = NULL;
    if (cb && napi_create_reference(env, cb, 1, &ref) != napi_ok) { free(j); return NULL; }
    j->cb = ref;
    return j;
}

/* Undo of job_new (+ refs taken) when submission fails. */
static void job_abort(napi_env env, struct job *j)
{
    if (j->cb) napi_delete_reference(env, j->cb);
    if (j->pool) { j->pool->users--; hdr_unref(&j->pool->h); }
    if (j->snap) hdr_unref(&j->snap->h);
    if (j->vm) hdr_unref(&j->vm->h);
    job_free_data(j);
}

/* Calls gone() now (when its vm is already gone or cannot be tracked). */
static void call_gone(napi_env env, napi_value gone)
{
    napi_value undef;
    if (!gone || g_shutdown) return;
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, gone, 0, NULL, NULL);
}

/* Queues the destruction of a vm on its worker (or does it here at shutdown).
 * `gone` (a function or NULL) is called once the vm's memory is released. */
static void vm_queue_destroy(napi_env env, struct vm_h *v, napi_value gone)
{
    if (v->destroy_queued) { call_gone(env, gone); return; }
    v->destroy_queued = true;
    if (g_workers && !g_shutdown) {
        struct job *j = job_new(env, J_DESTROY, gone);
        if (j) {
            j->vm = v;
            v->h.refs++;
            pending_add(env, +1);
            if (vmm_workers_submit(g_workers, v->worker, job_work, j) == 0) return;
            pending_add(env, -1);
            v->h.refs--;
            if (j->cb) napi_delete_reference(env, (napi_ref)j->cb);
            free(j);
        } else {
            napi_value exc;   /* job_new threw ENOMEM: keep going without it */
            napi_get_and_clear_last_exception(env, &exc);
        }
        /* Out of memory, or the workers refused the job. A run of this vm may be in
         * flight on its worker (that job holds a ref), so it must not be destroyed
         * here: end any run, and the last hdr_unref destroys it. */
        pthread_mutex_lock(&v->mu);
        if (v->vm) vmm_vm_kick(v->vm);
        v->kick_pending = true;
        pthread_mutex_unlock(&v->mu);
        call_gone(env, gone);   /* approximate: the last unref destroys it soon after the kick */
        return;
    }
    /* No worker (never started, or gone): no run can be in flight. */
    destroy_vm_of(v);
    if (v->snap) { struct snap_h *s = v->snap; v->snap = NULL; snap_unuse(s); }
    call_gone(env, gone);
}

static void vm_finalize(napi_env env, void *data, void *hint)
{
    struct vm_h *v = data;
    (void)hint;
    if (g_shutdown) return;
    v->h.closed = true;
    vm_queue_destroy(env, v, NULL);
    hdr_unref(&v->h);
}

static void snap_finalize(napi_env env, void *data, void *hint)
{
    struct snap_h *s = data;
    (void)env; (void)hint;
    if (g_shutdown) return;
    s->h.closed = true;
    snap_release_if_unused(s);
    hdr_unref(&s->h);
}

static void pool_finalize(napi_env env, void *data, void *hint)
{
    struct pool_h *p = data;
    (void)env; (void)hint;
    if (g_shutdown) return;
    p->h.closed = true;
    pool_release_if_unused(p);
    hdr_unref(&p->h);
}

/* ---- exported functions --------------------------------------------------- */

#define ARGS(n) \
    size_t argc = (n); napi_value argv[(n) > 0 ? (n) : 1]; \
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
    if (argc < (size_t)(n)) return throw_type(env, "missing arguments")

/* init(workers) */
static napi_value js_init(napi_env env, napi_callback_info info)
{
    ARGS(1);
    uint64_t n;
    if (!get_u64(env, argv[0], &n) || n < 1 || n > 1024) return throw_type(env, "workers must be 1..1024");
    if (g_workers && (int)n != g_nworkers) {
        napi_throw_error(env, "EBUSY", "workers already started with a different count");
        return NULL;
    }
    g_nworkers = (int)n;
    return NULL;
}

static napi_value js_probe(napi_env env, napi_callback_info info)
{
    struct vmm_probe_info p;
    struct vmm_err e = {0};
    memset(&p, 0, sizeof(p));
    int rc = vmm_probe(&p, &e);
    if (rc != 0) return throw_vmm(env, rc, &e);
    napi_value o, b;
    NAPI_OK(napi_create_object(env, &o));
    set_num(env, o, "kvmApiVersion", p.kvm_api_version);
    set_num(env, o, "vcpuMmapSize", p.vcpu_mmap_size);
    set_num(env, o, "tscKhz", (double)p.tsc_khz);
#define B(name, val) napi_get_boolean(env, (val) != 0, &b); napi_set_named_property(env, o, name, b)
    B("capImmediateExit", p.cap_immediate_exit);
    B("capReadonlyMem", p.cap_readonly_mem);
    B("capXsave2", p.cap_xsave2);
    B("capXcrs", p.cap_xcrs);
    B("isPvm", p.is_pvm);
#undef B
    return o;
}

/* benchFloor(ramSize, n) -> Float64Array of 2n ns: [0,n) create + teardown, [n,2n)
 * the creation part alone (synchronous: a benchmark). */
static napi_value js_bench_floor(napi_env env, napi_callback_info info)
{
    ARGS(2);
    uint64_t ram, n;
    if (!get_u64(env, argv[0], &ram) || !get_u64(env, argv[1], &n) || n < 1 || n > 1000000)
        return throw_type(env, "benchFloor(ramSize, n)");
    uint64_t *ns = calloc(2 * n, sizeof(*ns));
    if (!ns) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
    struct vmm_err e = {0};
    int rc = vmm_bench_floor(ram, (int)n, ns, ns + n, &e);
    if (rc != 0) { free(ns); return throw_vmm(env, rc, &e); }
    napi_value ab, arr;
    void *data;
    if (napi_create_arraybuffer(env, 2 * n * sizeof(double), &data, &ab) != napi_ok) { free(ns); return NULL; }
    for (uint64_t i = 0; i < 2 * n; i++) ((double *)data)[i] = (double)ns[i];
    free(ns);
    NAPI_OK(napi_create_typedarray(env, napi_float64_array, 2 * n, ab, 0, &arr));
    return arr;
}

/* bootVm({ramSize, guestElf, imagePath?, args: Buffer, testMmioHole?: boolean}) -> vm */
static napi_value js_boot_vm(napi_env env, napi_callback_info info)
{
    ARGS(1);
    napi_value v;
    uint64_t ram;
    void *args = NULL;
    size_t args_len = 0;
    char *elf = NULL, *image = NULL;
    napi_value ret = NULL;
    if (!get_prop_u64(env, argv[0], "ramSize", &ram)) return throw_type(env, "ramSize must be a number");
    if (napi_get_named_property(env, argv[0], "guestElf", &v) != napi_ok || !(elf = get_string(env, v)))
        return throw_type(env, "guestElf must be a path string");
    bool has_image = false;
    if (napi_has_named_property(env, argv[0], "imagePath", &has_image) == napi_ok && has_image) {
        napi_valuetype t;
        napi_get_named_property(env, argv[0], "imagePath", &v);
        napi_typeof(env, v, &t);
        if (t != napi_undefined && !(image = get_string(env, v))) { throw_type(env, "imagePath must be a path string"); goto out; }
    }
    if (napi_get_named_property(env, argv[0], "args", &v) != napi_ok || !get_buffer(env, v, &args, &args_len) ||
        args_len > FB_BOOT_ARGS_MAX) { throw_type(env, "args must be a Buffer of at most FB_BOOT_ARGS_MAX bytes"); goto out; }

    bool mmio_hole = false, has_hole = false;
    if (napi_has_named_property(env, argv[0], "testMmioHole", &has_hole) == napi_ok && has_hole) {
        napi_valuetype t;
        napi_get_named_property(env, argv[0], "testMmioHole", &v);
        napi_typeof(env, v, &t);
        if (t != napi_undefined && napi_get_value_bool(env, v, &mmio_hole) != napi_ok) {
            throw_type(env, "testMmioHole must be a boolean");
            goto out;
        }
    }
    struct vmm_boot_config cfg = {
        .ram_size = ram, .guest_elf = elf, .image_path = image,
        .args = args, .args_len = (uint32_t)args_len, .test_mmio_hole = mmio_hole,
    };
    struct vmm_err e = {0};
    struct vmm_vm *vm = NULL;
    int rc = vmm_vm_boot(&cfg, &vm, &e);
    if (rc != 0) { throw_vmm(env, rc, &e); goto out; }
    struct vm_h *h = vm_h_new(NULL);
    if (!h) { vmm_vm_destroy(vm); napi_throw_error(env, "ENOMEM", "out of memory"); goto out; }
    h->vm = vm;
    ret = vm_external(env, h);
    if (!ret) { h->h.refs++; h->h.closed = true; vm_queue_destroy(env, h, NULL); hdr_unref(&h->h); }
out:
    free(elf);
    free(image);
    return ret;
}

static struct vm_h *arg_vm(napi_env env, napi_value v)
{
    struct vm_h *h = get_handle(env, v, &tag_vm);
    if (!h) { throw_type(env, "expected a vm handle"); return NULL; }
    if (h->h.closed) { napi_throw_error(env, "EBADF", "vm is closed"); return NULL; }
    return h;
}

static struct snap_h *arg_snap(napi_env env, napi_value v)
{
    struct snap_h *h = get_handle(env, v, &tag_snap);
    if (!h) { throw_type(env, "expected a snapshot handle"); return NULL; }
    if (h->h.closed || !h->s) { napi_throw_error(env, "EBADF", "snapshot is closed"); return NULL; }
    return h;
}

/* null/undefined -> no pool (*out = NULL, true). */
static bool arg_pool(napi_env env, napi_value v, struct pool_h **out)
{
    napi_valuetype t;
    *out = NULL;
    if (napi_typeof(env, v, &t) != napi_ok) return false;
    if (t == napi_null || t == napi_undefined) return true;
    struct pool_h *h = get_handle(env, v, &tag_pool);
    if (!h) { throw_type(env, "expected a pool handle or null"); return false; }
    if (h->h.closed || !h->p) { napi_throw_error(env, "EBADF", "pool is closed"); return false; }
    *out = h;
    return true;
}

/* start(vm, timeoutNs, cb) */
static napi_value js_start(napi_env env, napi_callback_info info)
{
    ARGS(3);
    struct vm_h *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    uint64_t t;
    if (!get_u64(env, argv[1], &t) || !is_function(env, argv[2])) return throw_type(env, "start(vm, timeoutNs, cb)");
    if (ensure_workers(env) != 0) return NULL;
    struct job *j = job_new(env, J_START, argv[2]);
    if (!j) return NULL;
    j->vm = h; h->h.refs++;
    j->timeout_ns = t;
    if (!submit(env, j, h->worker)) job_abort(env, j);
    return NULL;
}

/* Parses {kind, payload, outCap, errCap, memLimit, timeoutNs, entropy?} into j->req. */
static bool parse_request(napi_env env, napi_value o, struct job *j)
{
    uint64_t kind, oc, ec, ml, to;
    napi_value v;
    void *data;
    size_t len;
    if (!get_prop_u64(env, o, "kind", &kind) || kind > UINT32_MAX ||
        !get_prop_u64(env, o, "outCap", &oc) || oc > FB_MB_OUT_SIZE ||
        !get_prop_u64(env, o, "errCap", &ec) || ec > FB_MB_ERR_SIZE ||
        !get_prop_u64(env, o, "memLimit", &ml) ||
        !get_prop_u64(env, o, "timeoutNs", &to)) {
        throw_type(env, "request: kind, outCap, errCap, memLimit, timeoutNs must be in range");
        return false;
    }
    if (napi_get_named_property(env, o, "payload", &v) != napi_ok || !get_buffer(env, v, &data, &len) || len > FB_MB_REQ_SIZE) {
        throw_type(env, "request.payload must be a Buffer of at most FB_MB_REQ_SIZE bytes");
        return false;
    }
    j->payload = malloc(len ? len : 1);
    if (!j->payload) { napi_throw_error(env, "ENOMEM", "out of memory"); return false; }
    if (len) memcpy(j->payload, data, len);
    j->req.kind = (uint32_t)kind;
    j->req.payload = j->payload;
    j->req.payload_len = len;
    j->req.out_cap = oc;
    j->req.err_cap = ec;
    j->req.mem_limit = ml;
    j->req.timeout_ns = to;
    j->req.entropy = NULL;
    bool has = false;
    if (napi_has_named_property(env, o, "entropy", &has) == napi_ok && has) {
        napi_valuetype t;
        napi_get_named_property(env, o, "entropy", &v);
        napi_typeof(env, v, &t);
        if (t != napi_undefined) {
            if (!get_buffer(env, v, &data, &len) || len != FB_ENTROPY_SIZE) {
                throw_type(env, "request.entropy must be a Buffer of FB_ENTROPY_SIZE bytes");
                return false;
            }
            memcpy(j->entropy, data, FB_ENTROPY_SIZE);
            j->req.entropy = j->entropy;
        }
    }
    return true;
}

/* run(vm, request, cb) */
static napi_value js_run(napi_env env, napi_callback_info info)
{
    ARGS(3);
    struct vm_h *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    if (!is_function(env, argv[2])) return throw_type(env, "run(vm, request, cb)");
    if (ensure_workers(env) != 0) return NULL;
    struct job *j = job_new(env, J_RUN, argv[2]);
    if (!j) return NULL;
    j->vm = h; h->h.refs++;
    if (!parse_request(env, argv[1], j) || !submit(env, j, h->worker)) job_abort(env, j);
    return NULL;
}

/* Shared by fork and forkRun: a job holding the snapshot, the pool and a new vm handle. */
static struct job *fork_job(napi_env env, enum jkind kind, napi_value snapv, napi_value poolv, napi_value cb)
{
    struct snap_h *s = arg_snap(env, snapv);
    if (!s) return NULL;
    struct pool_h *p;
    if (!arg_pool(env, poolv, &p)) return NULL;
    if (!is_function(env, cb)) { throw_type(env, "callback must be a function"); return NULL; }
    if (ensure_workers(env) != 0) return NULL;
    struct job *j = job_new(env, kind, cb);
    if (!j) return NULL;
    struct vm_h *v = vm_h_new(s);
    if (!v) { napi_delete_reference(env, j->cb); free(j); napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
    j->vm = v; v->h.refs++;
    j->snap = s; s->h.refs++;
    if (p) { j->pool = p; p->h.refs++; p->users++; }
    return j;
}

/* fork(snapshot, pool|null, cb(err, vm)) */
static napi_value js_fork(napi_env env, napi_callback_info info)
{
    ARGS(3);
    struct job *j = fork_job(env, J_FORK, argv[0], argv[1], argv[2]);
    if (!j) return NULL;
    if (!submit(env, j, j->vm->worker)) {
        struct vm_h *v = j->vm;
        v->h.closed = true;
        if (v->snap) { struct snap_h *s = v->snap; v->snap = NULL; snap_unuse(s); }
        job_abort(env, j);
    }
    return NULL;
}

/* forkRun(snapshot, pool|null, request, destroy, cb(err, {response, forkNs, runNs}), gone?) -> vm
 * With destroy, gone() (optional) is called once the fork's memory is released. */
static napi_value js_fork_run(napi_env env, napi_callback_info info)
{
    size_t argc = 6;
    napi_value argv[6] = { NULL, NULL, NULL, NULL, NULL, NULL };
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 5) return throw_type(env, "missing arguments");
    bool destroy = false;
    if (napi_get_value_bool(env, argv[3], &destroy) != napi_ok) return throw_type(env, "destroy must be a boolean");
    struct job *j = fork_job(env, J_FORKRUN, argv[0], argv[1], argv[4]);
    if (!j) return NULL;
    struct vm_h *v = j->vm;
    j->destroy_after = destroy;
    if (destroy) {
        v->destroy_queued = true;   /* the job itself destroys it */
        j->followup = calloc(1, sizeof(*j->followup));
        if (!j->followup) { napi_throw_error(env, "ENOMEM", "out of memory"); goto fail; }
        j->followup->kind = J_DESTROY;
        j->followup->vm = v;
        v->h.refs++;
        napi_ref gref = NULL;
        if (argc >= 6 && is_function(env, argv[5]) && napi_create_reference(env, argv[5], 1, &gref) == napi_ok)
            j->followup->cb = gref;
    }
    napi_value ext = NULL;
    if (!parse_request(env, argv[2], j) || !(ext = vm_external(env, v)) || !submit(env, j, v->worker)) {
fail:
        if (j->followup) {
            if (j->followup->cb) napi_delete_reference(env, (napi_ref)j->followup->cb);
            free(j->followup);
            j->followup = NULL;
            v->h.refs--;
        }
        v->h.closed = true;
        if (v->snap) { struct snap_h *s = v->snap; v->snap = NULL; snap_unuse(s); }
        job_abort(env, j);
        return NULL;
    }
    return ext;
}

/* kick(vm): any time; a run in flight ends with VMM_KILLED. */
static napi_value js_kick(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct vm_h *h = get_handle(env, argv[0], &tag_vm);
    if (!h) return throw_type(env, "expected a vm handle");
    pthread_mutex_lock(&h->mu);
    if (h->vm) vmm_vm_kick(h->vm);
    else h->kick_pending = true;
    pthread_mutex_unlock(&h->mu);
    return NULL;
}

/* privateBytes(vm) -> number: the vm's private memory (vmm_vm_private_bytes).
 * On the JS thread, for a vm that is not running (a sandbox between execs). */
static napi_value js_private_bytes(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct vm_h *h = get_handle(env, argv[0], &tag_vm);
    if (!h) return throw_type(env, "expected a vm handle");
    uint64_t bytes = 0;
    struct vmm_err e = {0};
    int rc;
    pthread_mutex_lock(&h->mu);
    if (h->vm) {
        rc = vmm_vm_private_bytes(h->vm, &bytes, &e);
    } else {
        rc = -EBADF;
        e.code = rc;
        e.op = "privateBytes";
        snprintf(e.msg, sizeof e.msg, "vm is closed");
    }
    pthread_mutex_unlock(&h->mu);
    if (rc) return throw_vmm(env, rc, &e);
    napi_value v;
    NAPI_OK(napi_create_double(env, (double)bytes, &v));
    return v;
}

/* saveSnapshot(vm, memPath, statePath, cb) */
static napi_value js_save(napi_env env, napi_callback_info info)
{
    ARGS(4);
    struct vm_h *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    if (!is_function(env, argv[3])) return throw_type(env, "saveSnapshot(vm, memPath, statePath, cb)");
    if (ensure_workers(env) != 0) return NULL;
    struct job *j = job_new(env, J_SAVE, argv[3]);
    if (!j) return NULL;
    j->vm = h; h->h.refs++;
    if (!(j->mem_path = get_string(env, argv[1])) || !(j->state_path = get_string(env, argv[2]))) {
        throw_type(env, "paths must be strings");
        job_abort(env, j);
        return NULL;
    }
    if (!submit(env, j, h->worker)) job_abort(env, j);
    return NULL;
}

/* A new external owning `s` (closed if the external cannot be made). */
static napi_value snap_external(napi_env env, struct vmm_snapshot *s)
{
    napi_value ext = NULL;
    struct snap_h *h = calloc(1, sizeof(*h));
    if (!h) { vmm_snapshot_close(s); napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
    h->h.type = H_SNAP;
    h->s = s;
    reg_add(&h->h);
    h->h.refs = 1;
    if (napi_create_external(env, h, snap_finalize, NULL, &ext) != napi_ok) {
        h->h.closed = true;
        hdr_unref(&h->h);
        return NULL;
    }
    napi_type_tag_object(env, ext, &tag_snap);
    return ext;
}

/* openSnapshot(memPath, statePath) -> snapshot */
static napi_value js_open_snapshot(napi_env env, napi_callback_info info)
{
    ARGS(2);
    char *mem = get_string(env, argv[0]), *state = get_string(env, argv[1]);
    napi_value ext = NULL;
    if (!mem || !state) { throw_type(env, "openSnapshot(memPath, statePath)"); goto out; }
    struct vmm_snapshot *s = NULL;
    struct vmm_err e = {0};
    int rc = vmm_snapshot_open(mem, state, &s, &e);
    if (rc != 0) { throw_vmm(env, rc, &e); goto out; }
    ext = snap_external(env, s);
out:
    free(mem);
    free(state);
    return ext;
}

/* openChildSnapshot(root, memPath, statePath) -> snapshot */
static napi_value js_open_child(napi_env env, napi_callback_info info)
{
    ARGS(3);
    struct snap_h *root = arg_snap(env, argv[0]);
    if (!root) return NULL;
    char *mem = get_string(env, argv[1]), *state = get_string(env, argv[2]);
    napi_value ext = NULL;
    if (!mem || !state) { throw_type(env, "openChildSnapshot(root, memPath, statePath)"); goto out; }
    struct vmm_snapshot *s = NULL;
    struct vmm_err e = {0};
    int rc = vmm_snapshot_open_child(root->s, mem, state, &s, &e);
    if (rc != 0) { throw_vmm(env, rc, &e); goto out; }
    ext = snap_external(env, s);
out:
    free(mem);
    free(state);
    return ext;
}

/* deriveSnapshot(vm, cb(err, snapshot)): on the vm's worker, between runs. */
static napi_value js_derive(napi_env env, napi_callback_info info)
{
    ARGS(2);
    struct vm_h *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    if (!is_function(env, argv[1])) return throw_type(env, "deriveSnapshot(vm, cb)");
    if (ensure_workers(env) != 0) return NULL;
    struct job *j = job_new(env, J_DERIVE, argv[1]);
    if (!j) return NULL;
    j->vm = h; h->h.refs++;
    if (!submit(env, j, h->worker)) job_abort(env, j);
    return NULL;
}

/* writeSnapshot(snapshot, memPath, statePath, cb(err)): a child, off the JS thread. */
static napi_value js_write(napi_env env, napi_callback_info info)
{
    ARGS(4);
    struct snap_h *s = arg_snap(env, argv[0]);
    if (!s) return NULL;
    if (!is_function(env, argv[3])) return throw_type(env, "writeSnapshot(snapshot, memPath, statePath, cb)");
    if (ensure_workers(env) != 0) return NULL;
    struct job *j = job_new(env, J_WRITE, argv[3]);
    if (!j) return NULL;
    j->snap = s; s->h.refs++;
    if (!(j->mem_path = get_string(env, argv[1])) || !(j->state_path = get_string(env, argv[2]))) {
        throw_type(env, "paths must be strings");
        job_abort(env, j);
        return NULL;
    }
    if (!submit(env, j, 0)) job_abort(env, j);
    return NULL;
}

static napi_value js_snapshot_pages(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct snap_h *h = arg_snap(env, argv[0]);
    if (!h) return NULL;
    napi_value v;
    napi_create_double(env, (double)vmm_snapshot_pages(h->s), &v);
    return v;
}

static napi_value js_snapshot_ram_size(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct snap_h *h = arg_snap(env, argv[0]);
    if (!h) return NULL;
    napi_value v;
    napi_create_double(env, (double)vmm_snapshot_ram_size(h->s), &v);
    return v;
}

/* poolCreate(target, maxRam) -> pool */
static napi_value js_pool_create(napi_env env, napi_callback_info info)
{
    ARGS(2);
    uint64_t target, ram;
    if (!get_u64(env, argv[0], &target) || target > 100000 || !get_u64(env, argv[1], &ram))
        return throw_type(env, "poolCreate(target, maxRam)");
    struct vmm_pool_config cfg = {.target = (int)target, .max_ram_size = ram};
    struct vmm_pool *p = NULL;
    struct vmm_err e = {0};
    int rc = vmm_pool_create(&cfg, &p, &e);
    if (rc != 0) return throw_vmm(env, rc, &e);
    struct pool_h *h = calloc(1, sizeof(*h));
    if (!h) { vmm_pool_destroy(p); napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
    h->h.type = H_POOL;
    h->p = p;
    reg_add(&h->h);
    h->h.refs = 1;
    napi_value ext;
    if (napi_create_external(env, h, pool_finalize, NULL, &ext) != napi_ok) {
        h->h.closed = true;
        hdr_unref(&h->h);
        return NULL;
    }
    napi_type_tag_object(env, ext, &tag_pool);
    return ext;
}

/* poolBind(pool, snapshot|null): shells get that snapshot's RAM mapped off the fork path. */
static napi_value js_pool_bind(napi_env env, napi_callback_info info)
{
    ARGS(2);
    struct pool_h *p;
    if (!arg_pool(env, argv[0], &p)) return NULL;
    if (!p) return throw_type(env, "poolBind(pool, snapshot|null)");
    napi_valuetype t;
    struct snap_h *s = NULL;
    if (napi_typeof(env, argv[1], &t) != napi_ok) return NULL;
    if (t != napi_null && t != napi_undefined && !(s = arg_snap(env, argv[1]))) return NULL;
    struct vmm_err e = {0};
    /* The pool takes its own reference on the snapshot inside the VMM. */
    int rc = vmm_pool_bind(p->p, s ? s->s : NULL, &e);
    if (rc != 0) return throw_vmm(env, rc, &e);
    return NULL;
}

static napi_value js_pool_stats(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct pool_h *h = get_handle(env, argv[0], &tag_pool);
    if (!h) return throw_type(env, "expected a pool handle");
    struct vmm_pool_stats st;
    memset(&st, 0, sizeof(st));
    if (h->p) vmm_pool_stats(h->p, &st);
    napi_value o;
    NAPI_OK(napi_create_object(env, &o));
    set_num(env, o, "ready", st.ready);
    set_num(env, o, "target", st.target);
    set_num(env, o, "created", (double)st.created);
    set_num(env, o, "taken", (double)st.taken);
    set_num(env, o, "misses", (double)st.misses);
    return o;
}

/* close(handle, gone?): idempotent. For a vm, gone() is called once its memory is released. */
static napi_value js_close(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2] = { NULL, NULL };
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 1) return throw_type(env, "missing arguments");
    napi_value gone = argc >= 2 && is_function(env, argv[1]) ? argv[1] : NULL;
    struct vm_h *v;
    struct snap_h *s;
    struct pool_h *p;
    if ((v = get_handle(env, argv[0], &tag_vm))) {
        if (v->h.closed) { call_gone(env, gone); return NULL; }
        v->h.closed = true;
        vm_queue_destroy(env, v, gone);
    } else if ((s = get_handle(env, argv[0], &tag_snap))) {
        s->h.closed = true;
        snap_release_if_unused(s);
    } else if ((p = get_handle(env, argv[0], &tag_pool))) {
        p->h.closed = true;
        pool_release_if_unused(p);
    } else {
        return throw_type(env, "close(handle)");
    }
    return NULL;
}

static napi_value js_stats(napi_env env, napi_callback_info info)
{
    struct vmm_stats st;
    memset(&st, 0, sizeof(st));
    vmm_stats_get(&st);
    napi_value o;
    NAPI_OK(napi_create_object(env, &o));
    set_num(env, o, "vmsLive", (double)st.vms_live);
    set_num(env, o, "vmsCreated", (double)st.vms_created);
    set_num(env, o, "vmsDestroyed", (double)st.vms_destroyed);
    set_num(env, o, "forks", (double)st.forks);
    set_num(env, o, "boots", (double)st.boots);
    set_num(env, o, "runs", (double)st.runs);
    set_num(env, o, "exits", (double)st.exits);
    set_num(env, o, "doorbells", (double)st.doorbells);
    set_num(env, o, "crashes", (double)st.crashes);
    set_num(env, o, "timeouts", (double)st.timeouts);
    set_num(env, o, "kicks", (double)st.kicks);
    set_num(env, o, "handlesLive", handles_live());
    set_num(env, o, "workers", g_workers ? g_nworkers : 0);
    set_num(env, o, "pendingJobs", g_pending);
    return o;
}

/* ---- shutdown --------------------------------------------------------------- */

static void cleanup_hook(void *arg)
{
    (void)arg;
    g_shutdown = true;
    /* 1. end every run in flight, so draining the workers terminates */
    handles_kick_all();
    /* 2. drain and join the workers (their completions are dropped) */
    if (g_workers) { vmm_workers_destroy(g_workers); g_workers = NULL; }
    reaper_stop();
    /* 3. release every object: vms, then pools, then snapshots */
    handles_release_all();
    if (g_tsfn) { napi_release_threadsafe_function(g_tsfn, napi_tsfn_abort); g_tsfn = NULL; }
}

static napi_value init(napi_env env, napi_value exports)
{
    if (g_env_set) {
        napi_throw_error(env, "ENOTSUP", "the forkbox VMM addon can be loaded by one JS environment per process");
        return NULL;
    }
    g_env_set = true;
    napi_value name;
    NAPI_OK(napi_create_string_utf8(env, "forkbox.vmm", NAPI_AUTO_LENGTH, &name));
    NAPI_OK(napi_create_threadsafe_function(env, NULL, NULL, name, 0, 1, NULL, NULL, NULL, call_js, &g_tsfn));
    NAPI_OK(napi_unref_threadsafe_function(env, g_tsfn));
    NAPI_OK(napi_add_env_cleanup_hook(env, cleanup_hook, NULL));
    napi_property_descriptor props[] = {
#define FN(n, f) {n, NULL, f, NULL, NULL, NULL, napi_enumerable, NULL}
        FN("init", js_init),
        FN("probe", js_probe),
        FN("benchFloor", js_bench_floor),
        FN("bootVm", js_boot_vm),
        FN("start", js_start),
        FN("openSnapshot", js_open_snapshot),
        FN("snapshotRamSize", js_snapshot_ram_size),
        FN("poolCreate", js_pool_create),
        FN("poolStats", js_pool_stats),
        FN("poolBind", js_pool_bind),
        FN("fork", js_fork),
        FN("run", js_run),
        FN("forkRun", js_fork_run),
        FN("kick", js_kick),
        FN("privateBytes", js_private_bytes),
        FN("saveSnapshot", js_save),
        FN("deriveSnapshot", js_derive),
        FN("writeSnapshot", js_write),
        FN("openChildSnapshot", js_open_child),
        FN("snapshotPages", js_snapshot_pages),
        FN("close", js_close),
        FN("stats", js_stats),
#undef FN
    };
    NAPI_OK(napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
