/*
 * jobs.c — the worker side of a job: start, fork, run, fork+run, save,
 * derive (child snapshot), write (of a child) and destroy of one vm, always on the native worker the vm is bound to. Outputs
 * are copied out of the mailbox here (clamped to the mailbox sizes) before the
 * job is posted to the JS thread. Hot path: J_FORKRUN posts its result first
 * and leaves the teardown to the reaper.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "binding.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void job_free_data(struct job *j)
{
    if (j->followup) job_free_data(j->followup);
    if (j->derived) vmm_snapshot_close(j->derived);
    free(j->payload);
    free(j->mem_path);
    free(j->state_path);
    free(j->resp.result);
    free(j->resp.out);
    free(j->resp.err);
    free(j);
}

static uint8_t *dup_bytes(const uint8_t *p, uint64_t len, uint64_t cap, uint64_t *out_len)
{
    if (len > cap) len = cap;            /* the VMM clamps already; never trust twice */
    *out_len = len;
    uint8_t *d = malloc(len ? len : 1);
    if (d && len) memcpy(d, p, len);
    return d;
}

/* Copies a response out of the mailbox (it is overwritten by the next run). */
static int copy_resp(struct job *j, const struct vmm_response *r)
{
    j->resp.r = *r;
    j->resp.result = dup_bytes(r->result, r->result ? r->result_len : 0, FB_MB_RESULT_SIZE, &j->resp.r.result_len);
    j->resp.out = dup_bytes(r->out, r->out ? r->out_len : 0, FB_MB_OUT_SIZE, &j->resp.r.out_len);
    j->resp.err = dup_bytes(r->err, r->err ? r->err_len : 0, FB_MB_ERR_SIZE, &j->resp.r.err_len);
    j->resp.r.result = j->resp.r.out = j->resp.r.err = NULL;
    j->resp.r.detail[sizeof(j->resp.r.detail) - 1] = '\0';
    if (!j->resp.result || !j->resp.out || !j->resp.err) {
        j->err.code = -ENOMEM;
        j->err.op = "copy response";
        snprintf(j->err.msg, sizeof(j->err.msg), "out of memory copying the response");
        return -ENOMEM;
    }
    j->has_resp = true;
    return 0;
}

static struct vmm_vm *open_vm(struct job *j, const char *op)
{
    struct vmm_vm *vm = vm_of(j->vm);
    if (!vm) {
        j->rc = -EBADF;
        j->err.op = op;
        snprintf(j->err.msg, sizeof(j->err.msg), "vm is closed");
    }
    return vm;
}

void job_work(void *arg)
{
    struct job *j = arg;
    struct vmm_response r;
    struct vmm_vm *vm;
    memset(&r, 0, sizeof(r));
    switch (j->kind) {
    case J_START:
        if (!(vm = open_vm(j, "start"))) break;
        j->rc = vmm_vm_start(vm, j->timeout_ns, &r, &j->err);
        if (j->rc == 0) j->rc = copy_resp(j, &r);
        break;
    case J_RUN:
        if (!(vm = open_vm(j, "run"))) break;
        j->rc = vmm_vm_run(vm, &j->req, &r, &j->err);
        if (j->rc == 0) j->rc = copy_resp(j, &r);
        break;
    case J_FORK:
    case J_FORKRUN: {
        uint64_t t0 = now_ns();
        vm = NULL;
        j->rc = vmm_fork(j->snap->s, j->pool ? j->pool->p : NULL, &vm, &j->err);
        j->fork_ns = now_ns() - t0;
        if (j->rc != 0) { j->fork_failed = true; break; }
        publish_vm(j->vm, vm);
        if (j->kind == J_FORK) break;
        uint64_t t1 = now_ns();
        j->rc = vmm_vm_run(vm, &j->req, &r, &j->err);
        j->run_ns = now_ns() - t1;
        if (j->rc == 0) j->rc = copy_resp(j, &r);
        if (j->followup) {
            /* The caller gets its result now; the teardown (hundreds of µs:
             * KVM VM release, unmaps) happens off its latency path. */
            struct job *f = j->followup;
            struct vm_h *v = j->vm;
            j->followup = NULL;
            job_post(j);
            reap(take_vm(v), f);
            return;
        }
        break;
    }
    case J_SAVE:
        if (!(vm = open_vm(j, "save"))) break;
        j->rc = vmm_snapshot_save(vm, j->mem_path, j->state_path, &j->err);
        break;
    case J_DERIVE:
        if (!(vm = open_vm(j, "derive"))) break;
        j->rc = vmm_snapshot_derive(vm, &j->derived, &j->err);
        break;
    case J_WRITE:
        j->rc = vmm_snapshot_write(j->snap->s, j->mem_path, j->state_path, &j->err);
        break;
    case J_DESTROY:
        reap(take_vm(j->vm), j);   /* posts j once the vm is gone */
        return;
    }
    if (j->followup) {   /* fork failed: the follow-up only does bookkeeping */
        struct job *f = j->followup;
        j->followup = NULL;
        job_post(j);
        f->vm_gone = true;
        job_post(f);
        return;
    }
    job_post(j);
}
