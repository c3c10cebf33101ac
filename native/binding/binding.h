/*
 * binding.h — the binding's handle objects (vm, snapshot, pool) and the jobs
 * that run on the native workers, shared by addon.c (the N-API surface) and
 * the plain C files handles.c, jobs.c and reaper.c. Nothing here includes
 * node_api.h: the one N-API value a job holds (its callback) is opaque.
 */
#ifndef FORKBOX_BINDING_H
#define FORKBOX_BINDING_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "abi.h"
#include "vmm.h"

/* ---- handles (handles.c) ------------------------------------------------ */

enum htype { H_VM = 1, H_SNAP, H_POOL };

struct hdr {
    enum htype type;
    int refs;                 /* external + in-flight jobs (JS thread only) */
    bool closed;              /* close() called or external collected */
    struct hdr *prev, *next;  /* registry of live handles */
};

struct snap_h {
    struct hdr h;
    struct vmm_snapshot *s;
    int users;                /* fork jobs in flight + live vms forked from it */
};

struct pool_h {
    struct hdr h;
    struct vmm_pool *p;
    int users;                /* fork jobs in flight */
};

struct vm_h {
    struct hdr h;
    pthread_mutex_t mu;       /* orders kick() against destroy on the worker */
    struct vmm_vm *vm;        /* under mu; set by the worker after a fork */
    bool kick_pending;        /* under mu; kick() before the vm exists */
    bool destroy_queued;
    unsigned worker;
    struct snap_h *snap;      /* counted in snap->users while the vm lives */
};

/* Set by the env cleanup hook: from then on nothing is freed by refcount. */
extern bool g_shutdown;

/* JS thread. */
void reg_add(struct hdr *h);
int handles_live(void);
void hdr_unref(struct hdr *h);
void snap_release_if_unused(struct snap_h *s);
void pool_release_if_unused(struct pool_h *p);
void snap_unuse(struct snap_h *s);
void pool_unuse(struct pool_h *p);
struct vm_h *vm_h_new(struct snap_h *snap);
/* Cleanup hook: kick every vm; after the workers are gone, release every object. */
void handles_kick_all(void);
void handles_release_all(void);

/* Any thread (take the vm's mutex). */
struct vmm_vm *vm_of(struct vm_h *v);
struct vmm_vm *take_vm(struct vm_h *v);
void destroy_vm_of(struct vm_h *v);
void publish_vm(struct vm_h *v, struct vmm_vm *vm);

/* ---- jobs (jobs.c) ------------------------------------------------------ */

enum jkind { J_START = 1, J_FORK, J_RUN, J_FORKRUN, J_SAVE, J_DESTROY, J_DERIVE, J_WRITE };

struct resp_copy {
    struct vmm_response r;    /* pointer fields cleared */
    uint8_t *result, *out, *err;
};

struct job {
    enum jkind kind;
    void *cb;                 /* the callback's napi_ref (addon.c); for destroy jobs an optional "gone" callback */
    struct vm_h *vm;          /* holds a ref */
    struct snap_h *snap;      /* fork jobs: holds a ref and a use */
    struct pool_h *pool;      /* fork jobs: holds a ref and a use */
    struct vmm_request req;
    uint8_t *payload;
    uint8_t entropy[FB_ENTROPY_SIZE];
    uint64_t timeout_ns;
    bool destroy_after;       /* forkRun: destroy after posting the result */
    struct job *followup;     /* forkRun+destroy: J_DESTROY bookkeeping, posted after the destroy */
    bool fork_failed;
    struct vmm_vm *reap_vm;   /* J_DESTROY via the reaper: the vm to destroy */
    struct job *reap_next;
    char *mem_path, *state_path;
    /* results (written on the worker) */
    struct vmm_snapshot *derived;   /* J_DERIVE: owned until handed to JS */
    int rc;
    struct vmm_err err;
    bool has_resp;
    bool vm_gone;             /* the vm was destroyed by this job */
    struct resp_copy resp;
    uint64_t fork_ns, run_ns;
};

/* Worker side: the body of every job (vmm_workers_submit's function). */
void job_work(void *arg);
/* Frees a job's data (and its follow-up's); references are the caller's. */
void job_free_data(struct job *j);
/* Worker side: hands a finished job to the JS thread (addon.c). */
void job_post(struct job *j);

/* ---- reaper (reaper.c) -------------------------------------------------- */

void reap(struct vmm_vm *vm, struct job *f);
void reaper_start(void);
void reaper_stop(void);

#endif
