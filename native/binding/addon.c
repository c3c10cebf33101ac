/*
 * addon.c — the N-API binding of the VMM library (the only file that includes
 * node_api.h). It only translates: JS values to C arguments of the VMM's
 * calls (src/vmm/vmm.ts owns options, defaults and messages), C results to JS
 * values. Threads, jobs, the reaper and lifetimes live in the VMM (async.c).
 */

/*
 * Handles are napi_externals with finalizers: a vm handle holds one reference
 * to a vmm_async_vm, a snapshot handle one vmm snapshot reference, a pool
 * handle its pool, a shared memory handle one reference on its object (forks
 * in flight and vms mapping an object hold their own references inside the VMM).
 * Completions arrive on the VMM's threads as C callbacks; one threadsafe
 * function hops each onto the JS thread. An env cleanup hook shuts the VMM's
 * async side down (kick all, drain, destroy) and releases every object.
 */
#define _GNU_SOURCE
#include <node_api.h>

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi.h"
#include "vmm.h"

static const napi_type_tag tag_vm = {0x666f726b626f7801ull, 0x766d000000000001ull};
static const napi_type_tag tag_snap = {0x666f726b626f7801ull, 0x736e617000000002ull};
static const napi_type_tag tag_pool = {0x666f726b626f7801ull, 0x706f6f6c00000003ull};
static const napi_type_tag tag_shm = {0x666f726b626f7801ull, 0x73686d0000000004ull};

static struct vmm_async *g_async;
static int g_nworkers;
static napi_threadsafe_function g_tsfn;
static int g_pending;          /* completions expected and not yet delivered (JS thread) */
static int g_live_vms;         /* vm externals not yet finalized (JS thread) */
static bool g_env_set;
static atomic_bool g_shutdown; /* set by the cleanup hook; read by the VMM's threads */

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

static napi_value make_buffer(napi_env env, const uint8_t *data, uint64_t len)
{
    napi_value b;
    if (len == 0) {
        void *p;
        if (napi_create_buffer(env, 0, &p, &b) != napi_ok) return NULL;
        return b;
    }
    void *copy;
    if (napi_create_buffer_copy(env, len, data, &copy, &b) != napi_ok) return NULL;
    return b;
}

static void set_num(napi_env env, napi_value o, const char *name, double v)
{
    napi_value x;
    napi_create_double(env, v, &x);
    napi_set_named_property(env, o, name, x);
}

static napi_value resp_to_js(napi_env env, const struct vmm_response *r)
{
    napi_value o, v;
    if (napi_create_object(env, &o) != napi_ok) return NULL;
    napi_create_string_utf8(env, vmm_outcome_name(r->outcome), NAPI_AUTO_LENGTH, &v);
    napi_set_named_property(env, o, "outcome", v);
    set_num(env, o, "outcomeCode", (double)r->outcome);
    set_num(env, o, "status", (double)r->status);
    set_num(env, o, "exitCode", (double)r->exit_code);
    set_num(env, o, "outFlags", (double)r->out_flags);
    if ((v = make_buffer(env, r->result, r->result_len))) napi_set_named_property(env, o, "result", v);
    if ((v = make_buffer(env, r->out, r->out_len))) napi_set_named_property(env, o, "stdout", v);
    if ((v = make_buffer(env, r->err, r->err_len))) napi_set_named_property(env, o, "stderr", v);
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

/* ---- snapshot and pool handles --------------------------------------------- */

enum otype { H_SNAP = 1, H_POOL, H_SHM };

/* A snapshot, pool or shared memory handle; listed for the cleanup hook (JS thread only). */
struct obj_h {
    enum otype type;
    struct vmm_snapshot *snap;   /* H_SNAP: one reference, NULL once closed */
    struct vmm_pool *pool;       /* H_POOL: NULL once closed */
    struct vmm_shm *shm;         /* H_SHM: one reference, NULL once closed */
    struct obj_h *prev, *next;
};
static struct obj_h g_objs = {0, NULL, NULL, NULL, &g_objs, &g_objs};
static int g_live_objs;

static void obj_release(struct obj_h *h)
{
    if (h->snap) { vmm_snapshot_close(h->snap); h->snap = NULL; }
    if (h->pool) { vmm_pool_destroy(h->pool); h->pool = NULL; }
    if (h->shm) { vmm_shm_put(h->shm); h->shm = NULL; }
}

static void obj_finalize(napi_env env, void *data, void *hint)
{
    struct obj_h *h = data;
    (void)env; (void)hint;
    obj_release(h);   /* after the cleanup hook: released already */
    h->prev->next = h->next;
    h->next->prev = h->prev;
    g_live_objs--;
    free(h);
}

/* A new external owning `obj` (released if the external cannot be made). */
static napi_value obj_external(napi_env env, enum otype type, void *obj)
{
    struct obj_h *h = calloc(1, sizeof(*h));
    napi_value ext = NULL;
    if (h) {
        h->type = type;
        if (type == H_SNAP) h->snap = obj; else if (type == H_POOL) h->pool = obj; else h->shm = obj;
        if (napi_create_external(env, h, obj_finalize, NULL, &ext) != napi_ok) { obj_release(h); free(h); return NULL; }
        napi_type_tag_object(env, ext, type == H_SNAP ? &tag_snap : type == H_POOL ? &tag_pool : &tag_shm);
        h->next = g_objs.next;
        h->prev = &g_objs;
        g_objs.next->prev = h;
        g_objs.next = h;
        g_live_objs++;
        return ext;
    }
    if (type == H_SNAP) vmm_snapshot_close(obj); else if (type == H_POOL) vmm_pool_destroy(obj); else vmm_shm_put(obj);
    napi_throw_error(env, "ENOMEM", "out of memory");
    return NULL;
}

/* ---- vm handles ------------------------------------------------------------------ */

static void vm_finalize(napi_env env, void *data, void *hint)
{
    struct vmm_async_vm *v = data;
    (void)env; (void)hint;
    /* Dropped without close(): destroyed on its worker. After the cleanup hook
     * the VMM has destroyed it already (-EALREADY) and only the handle goes. */
    (void)vmm_async_destroy(v, NULL, NULL);
    vmm_async_vm_put(v);
    g_live_vms--;
}

/* A new external holding the caller's reference to v (released on failure). */
static napi_value vm_external(napi_env env, struct vmm_async_vm *v)
{
    napi_value ext;
    if (napi_create_external(env, v, vm_finalize, NULL, &ext) != napi_ok) {
        (void)vmm_async_destroy(v, NULL, NULL);
        vmm_async_vm_put(v);
        return NULL;
    }
    napi_type_tag_object(env, ext, &tag_vm);
    g_live_vms++;
    return ext;
}

/* ---- completions ------------------------------------------------------------------ */

enum ckind { C_RESP = 1, C_FORK, C_FORKRUN, C_DONE, C_DERIVE, C_GONE, C_RECYCLE, C_DIFF };

/* One expected completion: the JS callback and, once the VMM delivers it, the result. */
struct completion {
    enum ckind kind;
    napi_ref cb;
    struct vmm_async_vm *vm;        /* C_FORK: the new vm's handle (our reference) */
    struct vmm_async_result *res;
};

static void pending_add(napi_env env, int d)
{
    int before = g_pending;
    g_pending += d;
    if (before == 0 && g_pending > 0) napi_ref_threadsafe_function(env, g_tsfn);
    else if (before > 0 && g_pending == 0) napi_unref_threadsafe_function(env, g_tsfn);
}

/* Any thread: the JS side is gone (shutdown), drop what a completion holds.
 * Its napi_ref cannot be deleted off the JS thread; the env frees it. */
static void completion_drop(struct completion *c)
{
    vmm_async_result_free(c->res);
    if (c->vm) vmm_async_vm_put(c->vm);
    free(c);
}

/* VMM thread: hands a completion to the JS thread. */
static void post(struct completion *c)
{
    if (atomic_load(&g_shutdown) || napi_call_threadsafe_function(g_tsfn, c, napi_tsfn_nonblocking) != napi_ok)
        completion_drop(c);
}

static void on_result(void *arg, struct vmm_async_result *res)
{
    struct completion *c = arg;
    c->res = res;
    post(c);
}

static void on_gone(void *arg)
{
    post(arg);
}

/* JS thread: a new expected completion (counted until delivered). */
static struct completion *completion_new(napi_env env, enum ckind kind, napi_value cb)
{
    struct completion *c = calloc(1, sizeof(*c));
    if (!c) { napi_throw_error(env, "ENOMEM", "out of memory"); return NULL; }
    c->kind = kind;
    if (cb && napi_create_reference(env, cb, 1, &c->cb) != napi_ok) { free(c); return NULL; }
    pending_add(env, +1);
    return c;
}

/* JS thread: undo of completion_new when the VMM refused the job. */
static void completion_abort(napi_env env, struct completion *c)
{
    if (!c) return;
    if (c->cb) napi_delete_reference(env, c->cb);
    pending_add(env, -1);
    free(c);
}

static napi_value build_value(napi_env env, struct completion *c)
{
    const struct vmm_async_result *r = c->res;
    napi_value v = NULL;
    switch (c->kind) {
    case C_RESP:
        return resp_to_js(env, &r->resp);
    case C_FORK:
        v = vm_external(env, c->vm);   /* owns the reference now, or released it */
        c->vm = NULL;
        return v;
    case C_FORKRUN: {
        napi_value o, resp = resp_to_js(env, &r->resp);
        if (!resp || napi_create_object(env, &o) != napi_ok) return NULL;
        napi_set_named_property(env, o, "response", resp);
        set_num(env, o, "forkNs", (double)r->fork_ns);
        set_num(env, o, "runNs", (double)r->run_ns);
        return o;
    }
    case C_RECYCLE:
        if (napi_create_object(env, &v) != napi_ok) return NULL;
        set_num(env, v, "ramPages", (double)r->recycle.ram_pages);
        set_num(env, v, "restored", (double)r->recycle.restored);
        set_num(env, v, "dropped", (double)r->recycle.dropped);
        set_num(env, v, "mailboxPages", (double)r->recycle.mailbox_pages);
        set_num(env, v, "ns", (double)r->recycle.ns);
        return v;
    case C_DIFF:
        if (napi_create_object(env, &v) != napi_ok) return NULL;
        set_num(env, v, "ramPagesDiffering", (double)r->recycle.ram_pages);
        set_num(env, v, "mailboxPagesNonZero", (double)r->recycle.mailbox_pages);
        return v;
    case C_DERIVE:
        v = obj_external(env, H_SNAP, c->res->derived);   /* owns it now, or closed it */
        c->res->derived = NULL;
        if (!v) {
            bool pending = false;
            napi_value exc;
            if (napi_is_exception_pending(env, &pending) == napi_ok && pending) napi_get_and_clear_last_exception(env, &exc);
        }
        return v;
    default:
        napi_get_undefined(env, &v);
        return v;
    }
}

/* JS thread: delivers a completion. env is NULL when the tsfn is torn down. */
static void call_js(napi_env env, napi_value js_cb, void *context, void *data)
{
    struct completion *c = data;
    (void)js_cb; (void)context;
    if (!env || atomic_load(&g_shutdown)) { completion_drop(c); return; }
    pending_add(env, -1);
    napi_value argv[2], undef, cb;
    napi_get_undefined(env, &undef);
    argv[0] = undef;
    argv[1] = undef;
    int argc = 0;
    if (c->kind != C_GONE) {
        argc = 2;
        if (c->res->rc != 0) {
            argv[0] = make_error(env, c->res->rc, &c->res->err);
        } else if (!(argv[1] = build_value(env, c))) {
            struct vmm_err e = {.code = -ENOMEM, .op = "napi", .msg = "could not build the result"};
            argv[0] = make_error(env, -ENOMEM, &e);
            argv[1] = undef;
        } else {
            napi_get_null(env, &argv[0]);
        }
    }
    if (c->cb) {
        if (napi_get_reference_value(env, c->cb, &cb) == napi_ok && cb) napi_call_function(env, undef, cb, (size_t)argc, argv, NULL);
        napi_delete_reference(env, c->cb);
        c->cb = NULL;
    }
    completion_drop(c);
}

static int ensure_async(napi_env env)
{
    if (atomic_load(&g_shutdown)) { napi_throw_error(env, "ESHUTDOWN", "shutting down"); return -ESHUTDOWN; }
    if (g_async) return 0;
    if (g_nworkers <= 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        g_nworkers = (int)(n > 0 ? 2 * n : 2);
    }
    struct vmm_err e = {0};
    int rc = vmm_async_create(g_nworkers, &g_async, &e);
    if (rc != 0) { throw_vmm(env, rc, &e); return rc; }
    return 0;
}

/* Calls gone() now (its vm is already gone or going). */
static void call_gone(napi_env env, napi_value gone)
{
    napi_value undef;
    if (!gone || atomic_load(&g_shutdown)) return;
    napi_get_undefined(env, &undef);
    napi_call_function(env, undef, gone, 0, NULL, NULL);
}

/* ---- exported functions --------------------------------------------------- */

#define ARGS(n) \
    size_t argc = (n); napi_value argv[(n) > 0 ? (n) : 1]; \
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL)); \
    if (argc < (size_t)(n)) return throw_type(env, "missing arguments")

struct req_arg { struct vmm_request req; };

/* init(workers) */
static napi_value js_init(napi_env env, napi_callback_info info)
{
    ARGS(1);
    uint64_t n;
    if (!get_u64(env, argv[0], &n) || n < 1 || n > 1024) return throw_type(env, "workers must be 1..1024");
    if (g_async && (int)n != g_nworkers) {
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
    struct vmm_async_vm *h = NULL;
    if (ensure_async(env) != 0) { vmm_vm_destroy(vm); goto out; }
    rc = vmm_async_adopt(g_async, vm, &h, &e);
    if (rc != 0) { vmm_vm_destroy(vm); throw_vmm(env, rc, &e); goto out; }
    ret = vm_external(env, h);   /* owns h now, or released it */
out:
    free(elf);
    free(image);
    return ret;
}

static struct vmm_async_vm *arg_vm(napi_env env, napi_value v)
{
    struct vmm_async_vm *h = get_handle(env, v, &tag_vm);
    if (!h) throw_type(env, "expected a vm handle");
    return h;
}

static struct obj_h *arg_snap(napi_env env, napi_value v)
{
    struct obj_h *h = get_handle(env, v, &tag_snap);
    if (!h) { throw_type(env, "expected a snapshot handle"); return NULL; }
    if (!h->snap) { napi_throw_error(env, "EBADF", "snapshot is closed"); return NULL; }
    return h;
}

/* null/undefined -> no pool (*out = NULL, true). */
static bool arg_pool(napi_env env, napi_value v, struct obj_h **out)
{
    napi_valuetype t;
    *out = NULL;
    if (napi_typeof(env, v, &t) != napi_ok) return false;
    if (t == napi_null || t == napi_undefined) return true;
    struct obj_h *h = get_handle(env, v, &tag_pool);
    if (!h) { throw_type(env, "expected a pool handle or null"); return false; }
    if (!h->pool) { napi_throw_error(env, "EBADF", "pool is closed"); return false; }
    *out = h;
    return true;
}

/* The VMM refused a job: undo its completion and throw. */
static napi_value refused(napi_env env, struct completion *c, int rc, const struct vmm_err *e)
{
    completion_abort(env, c);
    return throw_vmm(env, rc, e);
}

/* start(vm, timeoutNs, cb) */
static napi_value js_start(napi_env env, napi_callback_info info)
{
    ARGS(3);
    struct vmm_async_vm *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    uint64_t t;
    if (!get_u64(env, argv[1], &t) || !is_function(env, argv[2])) return throw_type(env, "start(vm, timeoutNs, cb)");
    struct completion *c = completion_new(env, C_RESP, argv[2]);
    if (!c) return NULL;
    struct vmm_err e = {0};
    int rc = vmm_async_start(h, t, on_result, c, &e);
    return rc ? refused(env, c, rc, &e) : NULL;
}

/* Parses {kind, payload, outCap, errCap, memLimit, timeoutNs, entropy?} into q->req,
 * pointing into the JS buffers: the VMM copies them at submission. */
static bool parse_request(napi_env env, napi_value o, struct req_arg *q)
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
    memset(&q->req, 0, sizeof q->req);
    q->req.kind = (uint32_t)kind;
    q->req.payload = data;
    q->req.payload_len = len;
    q->req.out_cap = oc;
    q->req.err_cap = ec;
    q->req.mem_limit = ml;
    q->req.timeout_ns = to;
    q->req.entropy = NULL;
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
            q->req.entropy = data;
        }
    }
    return true;
}


/* run(vm, request, cb) */
static napi_value js_run(napi_env env, napi_callback_info info)
{
    ARGS(3);
    struct vmm_async_vm *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    if (!is_function(env, argv[2])) return throw_type(env, "run(vm, request, cb)");
    struct req_arg q;
    if (!parse_request(env, argv[1], &q)) return NULL;
    struct completion *c = completion_new(env, C_RESP, argv[2]);
    if (!c) return NULL;
    struct vmm_err e = {0};
    int rc = vmm_async_run(h, &q.req, on_result, c, &e);
    return rc ? refused(env, c, rc, &e) : NULL;
}

/* fork(snapshot, pool|null, cb(err, vm)) */
static napi_value js_fork(napi_env env, napi_callback_info info)
{
    ARGS(3);
    struct obj_h *s = arg_snap(env, argv[0]), *p;
    if (!s || !arg_pool(env, argv[1], &p)) return NULL;
    if (!is_function(env, argv[2])) return throw_type(env, "callback must be a function");
    if (ensure_async(env) != 0) return NULL;
    struct completion *c = completion_new(env, C_FORK, argv[2]);
    if (!c) return NULL;
    struct vmm_err e = {0};
    /* c->vm is written before the JS thread can see the completion (it is this thread). */
    int rc = vmm_async_fork(g_async, s->snap, p ? p->pool : NULL, on_result, c, &c->vm, &e);
    return rc ? refused(env, c, rc, &e) : NULL;
}

/* forkRun(snapshot, pool|null, request, destroy, cb(err, {response, forkNs, runNs}), gone?) -> vm
 * With destroy, gone() (optional) is called once the fork's memory is released. A
 * response with status FB_ST_CALL keeps the fork even with destroy: the returned
 * handle is open (answer with run, then close), and gone() comes after that close. */
static napi_value js_fork_run(napi_env env, napi_callback_info info)
{
    size_t argc = 6;
    napi_value argv[6] = { NULL, NULL, NULL, NULL, NULL, NULL };
    NAPI_OK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 5) return throw_type(env, "missing arguments");
    bool destroy = false;
    if (napi_get_value_bool(env, argv[3], &destroy) != napi_ok) return throw_type(env, "destroy must be a boolean");
    struct obj_h *s = arg_snap(env, argv[0]), *p;
    if (!s || !arg_pool(env, argv[1], &p)) return NULL;
    if (!is_function(env, argv[4])) return throw_type(env, "callback must be a function");
    struct req_arg q;
    if (!parse_request(env, argv[2], &q)) return NULL;
    if (ensure_async(env) != 0) return NULL;
    struct completion *c = completion_new(env, C_FORKRUN, argv[4]), *g = NULL;
    if (!c) return NULL;
    /* With destroy, the teardown is counted in pendingJobs until it is done (gone or not). */
    if (destroy && !(g = completion_new(env, C_GONE, argc >= 6 && is_function(env, argv[5]) ? argv[5] : NULL))) {
        completion_abort(env, c);
        return NULL;
    }
    struct vmm_err e = {0};
    struct vmm_async_vm *v = NULL;
    int rc = vmm_async_fork_run(g_async, s->snap, p ? p->pool : NULL, &q.req, destroy ? VMM_ASYNC_DESTROY : 0,
                                on_result, c, g ? on_gone : NULL, g, &v, &e);
    if (rc) { completion_abort(env, g); return refused(env, c, rc, &e); }
    return vm_external(env, v);   /* the job runs on either way */
}

/* kick(vm): any time; a run in flight (or the next) ends with VMM_KILLED. */
static napi_value js_kick(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct vmm_async_vm *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    vmm_async_kick(h);
    return NULL;
}

/* privateBytes(vm) -> number: the vm's private memory (vmm_vm_private_bytes).
 * On the JS thread, for a vm that is not running (a sandbox between execs). */
static napi_value js_private_bytes(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct vmm_async_vm *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    uint64_t bytes = 0;
    struct vmm_err e = {0};
    int rc = vmm_async_private_bytes(h, &bytes, &e);
    if (rc) return throw_vmm(env, rc, &e);
    napi_value v;
    NAPI_OK(napi_create_double(env, (double)bytes, &v));
    return v;
}

/* kvmStats(vm) -> {exits, pfFixed, pfTaken}: KVM's vCPU counters (between runs). */
static napi_value js_kvm_stats(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct vmm_async_vm *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    struct vmm_kvm_stats st;
    struct vmm_err e = {0};
    int rc = vmm_async_kvm_stats(h, &st, &e);
    if (rc) return throw_vmm(env, rc, &e);
    napi_value o;
    NAPI_OK(napi_create_object(env, &o));
    set_num(env, o, "exits", (double)st.exits);
    set_num(env, o, "pfFixed", (double)st.pf_fixed);
    set_num(env, o, "pfTaken", (double)st.pf_taken);
    return o;
}

/* recycle(vm, cb(err, {ramPages, restored, dropped, mailboxPages, ns})) and
 * diffSnapshot(vm, cb(err, {ramPagesDiffering, mailboxPagesNonZero})): on the
 * vm's worker, after its queued jobs. A failed recycle leaves the vm dead. */
static napi_value vm_stats_job(napi_env env, napi_callback_info info, int diff)
{
    ARGS(2);
    struct vmm_async_vm *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    if (!is_function(env, argv[1])) return throw_type(env, diff ? "diffSnapshot(vm, cb)" : "recycle(vm, cb)");
    struct completion *c = completion_new(env, diff ? C_DIFF : C_RECYCLE, argv[1]);
    if (!c) return NULL;
    struct vmm_err e = {0};
    int rc = diff ? vmm_async_diff(h, on_result, c, &e) : vmm_async_recycle(h, on_result, c, &e);
    return rc ? refused(env, c, rc, &e) : NULL;
}

static napi_value js_recycle(napi_env env, napi_callback_info info) { return vm_stats_job(env, info, 0); }
static napi_value js_diff(napi_env env, napi_callback_info info) { return vm_stats_job(env, info, 1); }

/* saveSnapshot(vm, memPath, statePath, cb) and saveChild(...): a root snapshot, or a child straight from the vm. */
static napi_value save_common(napi_env env, napi_callback_info info, int child)
{
    ARGS(4);
    struct vmm_async_vm *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    if (!is_function(env, argv[3])) return throw_type(env, "saveSnapshot(vm, memPath, statePath, cb)");
    char *mem = get_string(env, argv[1]), *state = get_string(env, argv[2]);
    napi_value ret = NULL;
    if (!mem || !state) { throw_type(env, "paths must be strings"); goto out; }
    struct completion *c = completion_new(env, C_DONE, argv[3]);
    if (!c) goto out;
    struct vmm_err e = {0};
    int rc = child ? vmm_async_save_child(h, mem, state, on_result, c, &e) : vmm_async_save(h, mem, state, on_result, c, &e);
    if (rc) refused(env, c, rc, &e);
out:
    free(mem);
    free(state);
    return ret;
}

static napi_value js_save(napi_env env, napi_callback_info info) { return save_common(env, info, 0); }
static napi_value js_save_child(napi_env env, napi_callback_info info) { return save_common(env, info, 1); }

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
    ext = obj_external(env, H_SNAP, s);
out:
    free(mem);
    free(state);
    return ext;
}

/* openChildSnapshot(root, memPath, statePath) -> snapshot */
static napi_value js_open_child(napi_env env, napi_callback_info info)
{
    ARGS(3);
    struct obj_h *root = arg_snap(env, argv[0]);
    if (!root) return NULL;
    char *mem = get_string(env, argv[1]), *state = get_string(env, argv[2]);
    napi_value ext = NULL;
    if (!mem || !state) { throw_type(env, "openChildSnapshot(root, memPath, statePath)"); goto out; }
    struct vmm_snapshot *s = NULL;
    struct vmm_err e = {0};
    int rc = vmm_snapshot_open_child(root->snap, mem, state, &s, &e);
    if (rc != 0) { throw_vmm(env, rc, &e); goto out; }
    ext = obj_external(env, H_SNAP, s);
out:
    free(mem);
    free(state);
    return ext;
}

/* deriveSnapshot(vm, cb(err, snapshot)): on the vm's worker, between runs. */
static napi_value js_derive(napi_env env, napi_callback_info info)
{
    ARGS(2);
    struct vmm_async_vm *h = arg_vm(env, argv[0]);
    if (!h) return NULL;
    if (!is_function(env, argv[1])) return throw_type(env, "deriveSnapshot(vm, cb)");
    struct completion *c = completion_new(env, C_DERIVE, argv[1]);
    if (!c) return NULL;
    struct vmm_err e = {0};
    int rc = vmm_async_derive(h, on_result, c, &e);
    return rc ? refused(env, c, rc, &e) : NULL;
}

/* writeSnapshot(snapshot, memPath, statePath, cb(err)): a child, off the JS thread. */
static napi_value js_write(napi_env env, napi_callback_info info)
{
    ARGS(4);
    struct obj_h *s = arg_snap(env, argv[0]);
    if (!s) return NULL;
    if (!is_function(env, argv[3])) return throw_type(env, "writeSnapshot(snapshot, memPath, statePath, cb)");
    if (ensure_async(env) != 0) return NULL;
    char *mem = get_string(env, argv[1]), *state = get_string(env, argv[2]);
    if (!mem || !state) { throw_type(env, "paths must be strings"); goto out; }
    struct completion *c = completion_new(env, C_DONE, argv[3]);
    if (!c) goto out;
    struct vmm_err e = {0};
    int rc = vmm_async_write(g_async, s->snap, mem, state, on_result, c, &e);
    if (rc) refused(env, c, rc, &e);
out:
    free(mem);
    free(state);
    return NULL;
}

static napi_value js_snapshot_pages(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct obj_h *h = arg_snap(env, argv[0]);
    if (!h) return NULL;
    napi_value v;
    napi_create_double(env, (double)vmm_snapshot_pages(h->snap), &v);
    return v;
}

static napi_value js_snapshot_ram_size(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct obj_h *h = arg_snap(env, argv[0]);
    if (!h) return NULL;
    napi_value v;
    napi_create_double(env, (double)vmm_snapshot_ram_size(h->snap), &v);
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
    return obj_external(env, H_POOL, p);
}

/* poolBind(pool, snapshot|null): shells get that snapshot's RAM mapped off the fork path. */
static napi_value js_pool_bind(napi_env env, napi_callback_info info)
{
    ARGS(2);
    struct obj_h *p;
    if (!arg_pool(env, argv[0], &p)) return NULL;
    if (!p) return throw_type(env, "poolBind(pool, snapshot|null)");
    napi_valuetype t;
    struct obj_h *s = NULL;
    if (napi_typeof(env, argv[1], &t) != napi_ok) return NULL;
    if (t != napi_null && t != napi_undefined && !(s = arg_snap(env, argv[1]))) return NULL;
    struct vmm_err e = {0};
    /* The pool takes its own reference on the snapshot inside the VMM. */
    int rc = vmm_pool_bind(p->pool, s ? s->snap : NULL, &e);
    if (rc != 0) return throw_vmm(env, rc, &e);
    return NULL;
}

static napi_value js_pool_stats(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct obj_h *h = get_handle(env, argv[0], &tag_pool);
    if (!h) return throw_type(env, "expected a pool handle");
    struct vmm_pool_stats st;
    memset(&st, 0, sizeof(st));
    if (h->pool) vmm_pool_stats(h->pool, &st);
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
    struct vmm_async_vm *v;
    struct obj_h *o;
    if ((v = get_handle(env, argv[0], &tag_vm))) {
        /* counted in pendingJobs until the vm is gone, with or without a gone() */
        struct completion *g = completion_new(env, C_GONE, gone);
        if (!g) {   /* out of memory: close without tracking */
            napi_value exc;
            napi_get_and_clear_last_exception(env, &exc);
        }
        if (vmm_async_destroy(v, g ? on_gone : NULL, g) != 0) {   /* closed already */
            completion_abort(env, g);
            call_gone(env, gone);
        }
    } else if ((o = get_handle(env, argv[0], &tag_snap)) || (o = get_handle(env, argv[0], &tag_pool)) ||
               (o = get_handle(env, argv[0], &tag_shm))) {
        obj_release(o);
    } else {
        return throw_type(env, "close(handle)");
    }
    return NULL;
}

/* ---- host shared memory -------------------------------------------------------- */

static struct obj_h *arg_shm(napi_env env, napi_value v)
{
    struct obj_h *h = get_handle(env, v, &tag_shm);
    if (!h) { throw_type(env, "expected a shared memory handle"); return NULL; }
    if (!h->shm) { napi_throw_error(env, "EBADF", "shared memory object is closed"); return NULL; }
    return h;
}

/* shmCreate(size) -> shm */
static napi_value js_shm_create(napi_env env, napi_callback_info info)
{
    ARGS(1);
    uint64_t size;
    if (!get_u64(env, argv[0], &size)) return throw_type(env, "shmCreate(size)");
    struct vmm_shm *shm = NULL;
    struct vmm_err e = {0};
    int rc = vmm_shm_create(size, &shm, &e);
    if (rc) return throw_vmm(env, rc, &e);
    return obj_external(env, H_SHM, shm);
}

/* shmGrow(shm, size) */
static napi_value js_shm_grow(napi_env env, napi_callback_info info)
{
    ARGS(2);
    struct obj_h *h = arg_shm(env, argv[0]);
    if (!h) return NULL;
    uint64_t size;
    if (!get_u64(env, argv[1], &size)) return throw_type(env, "shmGrow(shm, size)");
    struct vmm_err e = {0};
    int rc = vmm_shm_grow(h->shm, size, &e);
    return rc ? throw_vmm(env, rc, &e) : NULL;
}

/* shmRead32(shm, off) -> number (the 32-bit word, unsigned) */
static napi_value js_shm_read32(napi_env env, napi_callback_info info)
{
    ARGS(2);
    struct obj_h *h = arg_shm(env, argv[0]);
    if (!h) return NULL;
    uint64_t off;
    if (!get_u64(env, argv[1], &off)) return throw_type(env, "shmRead32(shm, off)");
    uint32_t v = 0;
    struct vmm_err e = {0};
    int rc = vmm_shm_read_u32(h->shm, off, &v, &e);
    if (rc) return throw_vmm(env, rc, &e);
    napi_value x;
    NAPI_OK(napi_create_uint32(env, v, &x));
    return x;
}

static napi_value js_shm_size(napi_env env, napi_callback_info info)
{
    ARGS(1);
    struct obj_h *h = arg_shm(env, argv[0]);
    if (!h) return NULL;
    napi_value x;
    NAPI_OK(napi_create_double(env, (double)vmm_shm_size(h->shm), &x));
    return x;
}

/* share(vm, gpa, len, shm, off, copyIn): on the JS thread, between the vm's jobs. */
static napi_value js_share(napi_env env, napi_callback_info info)
{
    ARGS(6);
    struct vmm_async_vm *v = arg_vm(env, argv[0]);
    if (!v) return NULL;
    struct obj_h *h = arg_shm(env, argv[3]);
    if (!h) return NULL;
    uint64_t gpa, len, off;
    bool copy_in = false;
    if (!get_u64(env, argv[1], &gpa) || !get_u64(env, argv[2], &len) || !get_u64(env, argv[4], &off) ||
        napi_get_value_bool(env, argv[5], &copy_in) != napi_ok)
        return throw_type(env, "share(vm, gpa, len, shm, off, copyIn)");
    struct vmm_err e = {0};
    int rc = vmm_async_share(v, gpa, len, h->shm, off, copy_in, &e);
    return rc ? throw_vmm(env, rc, &e) : NULL;
}

/* unshare(vm, gpa, len) */
static napi_value js_unshare(napi_env env, napi_callback_info info)
{
    ARGS(3);
    struct vmm_async_vm *v = arg_vm(env, argv[0]);
    if (!v) return NULL;
    uint64_t gpa, len;
    if (!get_u64(env, argv[1], &gpa) || !get_u64(env, argv[2], &len)) return throw_type(env, "unshare(vm, gpa, len)");
    struct vmm_err e = {0};
    int rc = vmm_async_unshare(v, gpa, len, &e);
    return rc ? throw_vmm(env, rc, &e) : NULL;
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
    set_num(env, o, "recycles", (double)st.recycles);
    set_num(env, o, "handlesLive", g_live_objs + g_live_vms);
    set_num(env, o, "workers", g_async ? vmm_async_workers(g_async) : 0);
    set_num(env, o, "pendingJobs", g_pending);
    return o;
}

/* ---- shutdown --------------------------------------------------------------- */

static void cleanup_hook(void *arg)
{
    (void)arg;
    atomic_store(&g_shutdown, true);
    /* kick every vm, drain the workers and the reaper, destroy the vms left
     * (completions on the way are dropped by post()) */
    if (g_async) { vmm_async_shutdown(g_async); g_async = NULL; }
    /* then pools (a pool may hold a snapshot), then snapshots and shared memory objects */
    for (struct obj_h *h = g_objs.next; h != &g_objs; h = h->next)
        if (h->type == H_POOL) obj_release(h);
    for (struct obj_h *h = g_objs.next; h != &g_objs; h = h->next) obj_release(h);
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
        FN("recycle", js_recycle),
        FN("kvmStats", js_kvm_stats),
        FN("diffSnapshot", js_diff),
        FN("saveSnapshot", js_save),
        FN("deriveSnapshot", js_derive),
        FN("saveChild", js_save_child),
        FN("writeSnapshot", js_write),
        FN("openChildSnapshot", js_open_child),
        FN("snapshotPages", js_snapshot_pages),
        FN("shmCreate", js_shm_create),
        FN("shmGrow", js_shm_grow),
        FN("shmRead32", js_shm_read32),
        FN("shmSize", js_shm_size),
        FN("share", js_share),
        FN("unshare", js_unshare),
        FN("close", js_close),
        FN("stats", js_stats),
#undef FN
    };
    NAPI_OK(napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
