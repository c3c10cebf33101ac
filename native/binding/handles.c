/*
 * handles.c — the binding's vm, snapshot and pool handles: reference counts,
 * the registry of live handles the env cleanup hook walks, and the per-vm
 * mutex that orders kick() against teardown. Counts and the registry are
 * touched on the JS thread only; a vm pointer is read or swapped under v->mu.
 */
#include <stdlib.h>

#include "binding.h"

bool g_shutdown;

static struct hdr g_registry = {0, 0, 0, &g_registry, &g_registry};
static int g_live_handles;
static unsigned g_next_worker;

void reg_add(struct hdr *h)
{
    h->next = g_registry.next;
    h->prev = &g_registry;
    g_registry.next->prev = h;
    g_registry.next = h;
    g_live_handles++;
}

static void reg_del(struct hdr *h)
{
    h->prev->next = h->next;
    h->next->prev = h->prev;
    h->prev = h->next = h;
    g_live_handles--;
}

int handles_live(void)
{
    return g_live_handles;
}

void snap_release_if_unused(struct snap_h *s)
{
    if (s->h.closed && s->users == 0 && s->s) {
        vmm_snapshot_close(s->s);
        s->s = NULL;
    }
}

void pool_release_if_unused(struct pool_h *p)
{
    if (p->h.closed && p->users == 0 && p->p) {
        vmm_pool_destroy(p->p);
        p->p = NULL;
    }
}

/* Drops one reference; frees the struct (after its object) at zero. */
void hdr_unref(struct hdr *h)
{
    if (--h->refs > 0 || g_shutdown)
        return;
    switch (h->type) {
    case H_SNAP: {
        struct snap_h *s = (struct snap_h *)h;
        if (s->s) { vmm_snapshot_close(s->s); s->s = NULL; }
        break;
    }
    case H_POOL: {
        struct pool_h *p = (struct pool_h *)h;
        if (p->p) { vmm_pool_destroy(p->p); p->p = NULL; }
        break;
    }
    case H_VM: {
        struct vm_h *v = (struct vm_h *)h;
        /* Only reached once every job of this vm has completed (each holds a ref). */
        if (v->vm) { vmm_vm_destroy(v->vm); v->vm = NULL; }
        if (v->snap) { snap_unuse(v->snap); v->snap = NULL; }
        pthread_mutex_destroy(&v->mu);
        break;
    }
    }
    reg_del(h);
    free(h);
}

void snap_unuse(struct snap_h *s)
{
    if (!s) return;
    s->users--;
    snap_release_if_unused(s);
    hdr_unref(&s->h);
}

void pool_unuse(struct pool_h *p)
{
    if (!p) return;
    p->users--;
    pool_release_if_unused(p);
    hdr_unref(&p->h);
}

/* A vm handle with no refs yet, bound to the next worker round-robin. */
struct vm_h *vm_h_new(struct snap_h *snap)
{
    struct vm_h *v = calloc(1, sizeof(*v));
    if (!v) return NULL;
    v->h.type = H_VM;
    v->h.refs = 0;
    pthread_mutex_init(&v->mu, NULL);
    v->worker = g_next_worker++;
    v->snap = snap;
    if (snap) { snap->users++; snap->h.refs++; }
    reg_add(&v->h);
    return v;
}

struct vmm_vm *vm_of(struct vm_h *v)
{
    pthread_mutex_lock(&v->mu);
    struct vmm_vm *vm = v->vm;
    pthread_mutex_unlock(&v->mu);
    return vm;
}

/* Takes the vm out of its handle (no kick can reach it after). */
struct vmm_vm *take_vm(struct vm_h *v)
{
    pthread_mutex_lock(&v->mu);
    struct vmm_vm *vm = v->vm;
    v->vm = NULL;
    pthread_mutex_unlock(&v->mu);
    return vm;
}

/* Takes the vm out of its handle and destroys it. */
void destroy_vm_of(struct vm_h *v)
{
    struct vmm_vm *vm = take_vm(v);
    if (vm) vmm_vm_destroy(vm);
}

/* Worker side: publishes a fresh vm in its handle (a pending kick applies). */
void publish_vm(struct vm_h *v, struct vmm_vm *vm)
{
    pthread_mutex_lock(&v->mu);
    v->vm = vm;
    bool kick = v->kick_pending;
    if (kick) vmm_vm_kick(vm);
    pthread_mutex_unlock(&v->mu);
}

/* Cleanup hook, step 1: end every run in flight, so draining the workers terminates. */
void handles_kick_all(void)
{
    for (struct hdr *h = g_registry.next; h != &g_registry; h = h->next) {
        if (h->type != H_VM) continue;
        struct vm_h *v = (struct vm_h *)h;
        pthread_mutex_lock(&v->mu);
        if (v->vm) vmm_vm_kick(v->vm);
        v->kick_pending = true;
        pthread_mutex_unlock(&v->mu);
    }
}

/* Cleanup hook, after the workers and the reaper are joined: release every
 * object, vms first, then pools, then snapshots (a pool may hold a snapshot). */
void handles_release_all(void)
{
    struct hdr *h;
    for (h = g_registry.next; h != &g_registry; h = h->next)
        if (h->type == H_VM) destroy_vm_of((struct vm_h *)h);
    for (h = g_registry.next; h != &g_registry; h = h->next) {
        struct pool_h *p = (struct pool_h *)h;
        if (h->type == H_POOL && p->p) { vmm_pool_destroy(p->p); p->p = NULL; }
    }
    for (h = g_registry.next; h != &g_registry; h = h->next) {
        struct snap_h *s = (struct snap_h *)h;
        if (h->type == H_SNAP && s->s) { vmm_snapshot_close(s->s); s->s = NULL; }
    }
}
