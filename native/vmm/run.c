/*
 * run.c — running a vCPU to its next doorbell. Hot path: fill the request,
 * arm the thread's deadline timer, KVM_RUN, validate the response. Every exit
 * that is not the doorbell is a crash of that vm (never of the host).
 * Deadlines and kicks interrupt KVM_RUN with a realtime signal whose handler
 * sets kvm_run.immediate_exit, so a signal that lands just before KVM_RUN is
 * not lost: KVM_RUN then returns -EINTR at once.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "preempt.h"

/* Per-thread: the kvm_run being run (for the timer's signal handler) and a
 * POSIX timer that signals this thread only (SIGEV_THREAD_ID). */
struct thread_ctx {
    struct kvm_run *_Atomic run;
    timer_t timer;
};

static pthread_once_t sig_once = PTHREAD_ONCE_INIT;
static pthread_key_t ctx_key;
static int kick_sig;
static int sig_init_rc;

static void kick_handler(int sig, siginfo_t *si, void *uc)
{
    (void)sig; (void)uc;
    if (si->si_code != SI_TIMER) return;   /* a kick already set immediate_exit itself */
    struct thread_ctx *c = si->si_value.sival_ptr;
    struct kvm_run *r = c ? atomic_load(&c->run) : NULL;
    if (r) __atomic_store_n(&r->immediate_exit, 1, __ATOMIC_RELAXED);
}

static void ctx_free(void *p)
{
    struct thread_ctx *c = p;
    timer_delete(c->timer);
    free(c);
}

static void sig_setup(void)
{
    kick_sig = SIGRTMIN + 3;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = kick_handler;
    sa.sa_flags = SA_SIGINFO;              /* no SA_RESTART: KVM_RUN must return -EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(kick_sig, &sa, NULL) < 0) { sig_init_rc = -errno; return; }
    sig_init_rc = -pthread_key_create(&ctx_key, ctx_free);
}

static struct thread_ctx *thread_ctx(struct vmm_err *err)
{
    pthread_once(&sig_once, sig_setup);
    if (sig_init_rc) { vmm_fail(err, sig_init_rc, "sigaction", "kick signal setup failed"); return NULL; }
    struct thread_ctx *c = pthread_getspecific(ctx_key);
    if (c) return c;
    c = calloc(1, sizeof *c);
    if (!c) { vmm_fail(err, -ENOMEM, "calloc", "thread context"); return NULL; }
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_THREAD_ID;
    sev.sigev_signo = kick_sig;
    sev.sigev_value.sival_ptr = c;
    sev._sigev_un._tid = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &sev, &c->timer) < 0) {
        vmm_fail(err, -errno, "timer_create", "%s", strerror(errno));
        free(c);
        return NULL;
    }
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, kick_sig);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    pthread_setspecific(ctx_key, c);
    return c;
}

void vmm_vm_kick(struct vmm_vm *vm)
{
    pthread_mutex_lock(&vm->lock);
    atomic_store(&vm->killed, 1);
    if (vm->sh.run) __atomic_store_n(&vm->sh.run->immediate_exit, 1, __ATOMIC_RELAXED);
    if (vm->running) pthread_kill(vm->thread, kick_sig);
    pthread_mutex_unlock(&vm->lock);
    stat_add(ST_KICKS, 1);
}

static const char *vector_name(uint64_t v)
{
    static const char *n[32] = { "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO",
        "#TS", "#NP", "#SS", "#GP", "#PF", "?", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP" };
    return v < 32 && n[v] ? n[v] : "?";
}

static void crash(struct vmm_response *resp, enum vmm_outcome o, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void crash(struct vmm_response *resp, enum vmm_outcome o, const char *fmt, ...)
{
    va_list ap;
    resp->outcome = o;
    va_start(ap, fmt);
    vsnprintf(resp->detail, sizeof resp->detail, fmt, ap);
    va_end(ap);
}

/* The CPL0 stub pushed a struct fb_fault_frame on the system stack and did
 * `out` to FB_PORT_FAULT. Only believe it if the `out` came from a stub at
 * CPL0 with RSP inside the CPL0 stack; a CPL3 `out` to that port is I/O. */
static void fault_report(struct vmm_vm *vm, struct vmm_response *resp)
{
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    if (ioctl(vm->sh.vcpu_fd, KVM_GET_REGS, &regs) < 0 || ioctl(vm->sh.vcpu_fd, KVM_GET_SREGS, &sregs) < 0) {
        crash(resp, VMM_CRASH_INTERNAL, "fault report: cannot read vCPU state (%s)", strerror(errno));
        return;
    }
    if ((sregs.cs.selector & 3) != 0 || regs.rip < SYS_STUBS || regs.rip >= SYS_STUBS + 32 * SYS_STUB_SIZE) {
        resp->io_port = FB_PORT_FAULT;
        crash(resp, VMM_CRASH_IO, "I/O to port %#x at rip %#llx", FB_PORT_FAULT, (unsigned long long)regs.rip);
        return;
    }
    struct fb_fault_frame f;
    if (regs.rsp < SYS_STACK_LOW || regs.rsp > SYS_STACK_TOP - sizeof f) {
        crash(resp, VMM_CRASH_INTERNAL, "fault report with rsp %#llx outside the fault stack",
              (unsigned long long)regs.rsp);
        return;
    }
    memcpy(&f, vm->ram + regs.rsp, sizeof f);
    resp->fault_vector = f.vector;
    resp->fault_error = f.error_code;
    resp->fault_rip = f.rip;
    resp->fault_cr2 = sregs.cr2;
    if (f.vector == 14)
        crash(resp, VMM_CRASH_FAULT, "vector 14 (#PF) at rip %#llx, address %#llx, error %#llx",
              (unsigned long long)f.rip, (unsigned long long)sregs.cr2, (unsigned long long)f.error_code);
    else
        crash(resp, VMM_CRASH_FAULT, "vector %llu (%s) at rip %#llx, error %#llx", (unsigned long long)f.vector,
              vector_name(f.vector), (unsigned long long)f.rip, (unsigned long long)f.error_code);
}

/* Reads the guest's response fields once and checks every one of them. */
static void doorbell(struct vmm_vm *vm, int first, struct vmm_response *resp)
{
    const volatile struct fb_mailbox *mb = (const volatile struct fb_mailbox *)(vm->sh.mailbox + FB_MB_HDR_OFF);
    uint32_t status = mb->status;
    uint64_t ack = mb->ack_seq, rl = mb->result_len, ol = mb->out_len, el = mb->err_len;
    uint64_t ocap = first ? FB_MB_OUT_SIZE : vm->out_cap, ecap = first ? FB_MB_ERR_SIZE : vm->err_cap;
    resp->status = status;
    resp->exit_code = mb->exit_code;
    resp->out_flags = mb->out_flags;
    /* informational, as the guest reports them (never used for a bound) */
    resp->arena_used = mb->arena_used;
    resp->arena_peak = mb->arena_peak;
    if (status != FB_ST_READY && status != FB_ST_DONE && status != FB_ST_EXIT && status != FB_ST_ERROR &&
        status != FB_ST_CALL) {
        crash(resp, VMM_CRASH_PROTOCOL, "unknown response status %u", status);
        return;
    }
    if (first && (status == FB_ST_DONE || status == FB_ST_CALL)) {
        crash(resp, VMM_CRASH_PROTOCOL, "%s before any request", status == FB_ST_DONE ? "DONE" : "CALL");
        return;
    }
    if (!first && status == FB_ST_READY) {
        crash(resp, VMM_CRASH_PROTOCOL, "READY in answer to request %llu", (unsigned long long)vm->seq);
        return;
    }
    if ((status == FB_ST_DONE || status == FB_ST_CALL) && ack != vm->seq) {
        crash(resp, VMM_CRASH_PROTOCOL, "%s with ack_seq %llu, expected %llu", status == FB_ST_DONE ? "DONE" : "CALL",
              (unsigned long long)ack, (unsigned long long)vm->seq);
        return;
    }
    if (rl > FB_MB_RESULT_SIZE || ol > ocap || el > ecap) {
        crash(resp, VMM_CRASH_PROTOCOL, "response lengths out of bounds (result %llu, out %llu/%llu, err %llu/%llu)",
              (unsigned long long)rl, (unsigned long long)ol, (unsigned long long)ocap,
              (unsigned long long)el, (unsigned long long)ecap);
        return;
    }
    if (status == FB_ST_CALL) {
        /* The call header and its data must lie inside result_len (read once). */
        const volatile struct fb_call *c = (const volatile struct fb_call *)(vm->sh.mailbox + FB_MB_RESULT_OFF);
        uint64_t dl = rl >= sizeof(struct fb_call) ? c->data_len : 0;
        if (rl < sizeof(struct fb_call) || dl > rl - sizeof(struct fb_call)) {
            crash(resp, VMM_CRASH_PROTOCOL, "CALL with result_len %llu, data_len %llu: the call does not fit",
                  (unsigned long long)rl, (unsigned long long)dl);
            return;
        }
    }
    resp->outcome = VMM_OK;
    vm->last_status = status;
    resp->result = vm->sh.mailbox + FB_MB_RESULT_OFF; resp->result_len = rl;
    resp->out = vm->sh.mailbox + FB_MB_OUT_OFF; resp->out_len = ol;
    resp->err = vm->sh.mailbox + FB_MB_ERR_OFF; resp->err_len = el;
}

static void exit_to_outcome(struct vmm_vm *vm, int first, struct vmm_response *resp, int *done)
{
    struct kvm_run *r = vm->sh.run;
    *done = 1;
    resp->exit_reason = r->exit_reason;
    switch (r->exit_reason) {
    case KVM_EXIT_IO:
        if (r->io.direction == KVM_EXIT_IO_OUT && r->io.port == FB_PORT_DOORBELL) {
            vm->pending_io = 1;
            doorbell(vm, first, resp);
            return;
        }
        if (r->io.direction == KVM_EXIT_IO_OUT && r->io.port == FB_PORT_FAULT) {
            fault_report(vm, resp);
            return;
        }
        resp->io_port = r->io.port;
        crash(resp, VMM_CRASH_IO, "I/O %s port %#x", r->io.direction == KVM_EXIT_IO_OUT ? "out to" : "in from",
              r->io.port);
        return;
    case KVM_EXIT_MMIO:
        resp->mmio_addr = r->mmio.phys_addr;
        crash(resp, VMM_CRASH_MMIO, "MMIO %s at %#llx", r->mmio.is_write ? "write" : "read",
              (unsigned long long)r->mmio.phys_addr);
        return;
    case KVM_EXIT_SHUTDOWN:
        crash(resp, VMM_CRASH_SHUTDOWN, "shutdown (triple fault)");
        return;
    case KVM_EXIT_HLT:
        crash(resp, VMM_CRASH_HLT, "hlt");
        return;
    case KVM_EXIT_INTERNAL_ERROR:
        crash(resp, VMM_CRASH_INTERNAL, "KVM internal error, suberror %u", r->internal.suberror);
        return;
    case KVM_EXIT_FAIL_ENTRY:
        crash(resp, VMM_CRASH_INTERNAL, "entry failed, reason %#llx",
              (unsigned long long)r->fail_entry.hardware_entry_failure_reason);
        return;
    case KVM_EXIT_INTR:
        *done = 0;
        return;
    default:
        crash(resp, VMM_CRASH_INTERNAL, "unexpected exit reason %u", r->exit_reason);
        return;
    }
}

/* Arms the thread's one-shot timer for the absolute CLOCK_MONOTONIC `deadline`. */
static int arm_timer(struct thread_ctx *c, uint64_t deadline)
{
    struct itimerspec its = { .it_value = { .tv_sec = (time_t)(deadline / 1000000000ull),
                                            .tv_nsec = (long)(deadline % 1000000000ull) } };
    return timer_settime(c->timer, TIMER_ABSTIME, &its, NULL) < 0 ? -errno : 0;
}

/* KVM_RUN came back for a signal (-EINTR, or KVM_EXIT_INTR): a kick, the
 * deadline, or a stray signal. Returns 1 when the run is over (resp set).
 * Otherwise the timer is re-armed: it is one-shot, and whatever interrupted
 * this run may have been its expiry seen early or a signal that consumed it,
 * so the deadline must not depend on it having survived. */
static int interrupted(struct vmm_vm *vm, struct thread_ctx *c, uint64_t deadline, uint64_t timeout_ns,
                       struct vmm_response *resp)
{
    __atomic_store_n(&vm->sh.run->immediate_exit, 0, __ATOMIC_RELAXED);
    if (atomic_load(&vm->killed)) { crash(resp, VMM_KILLED, "killed"); return 1; }
    if (vmm_now_ns() >= deadline) {
        crash(resp, VMM_TIMEOUT, "deadline of %llu ms passed", (unsigned long long)((timeout_ns + 999999) / 1000000));
        return 1;
    }
    int rc = arm_timer(c, deadline);
    if (rc) { crash(resp, VMM_CRASH_INTERNAL, "re-arming the deadline timer failed: %s", strerror(-rc)); return 1; }
    vmm_preempt_tick(vm, c->timer, deadline);   /* guest threads: preempt, and re-arm to the next tick */
    return 0;
}

static int run_loop(struct vmm_vm *vm, int first, uint64_t timeout_ns, struct vmm_response *resp,
                    struct vmm_err *err)
{
    if (!timeout_ns) return vmm_fail(err, -EINVAL, "vmm_vm_run", "timeout_ns must be > 0: every run has a deadline");
    struct thread_ctx *c = thread_ctx(err);
    if (!c) return err ? err->code : -ENOMEM;
    uint64_t t0 = vmm_now_ns(), deadline = t0 + timeout_ns;
    if (deadline < t0) deadline = UINT64_MAX;   /* cannot wrap: a huge timeout is "far away", never "none" */
    pthread_mutex_lock(&vm->lock);
    vm->running = 1;
    vm->thread = pthread_self();
    pthread_mutex_unlock(&vm->lock);
    atomic_store(&c->run, vm->sh.run);
    int trc = arm_timer(c, deadline);
    if (!trc) vmm_preempt_arm(vm, c->timer, deadline);   /* guest threads: a periodic tick (preempt.c) */
    stat_add(ST_RUNS, 1);
    int done = 0;
    if (trc) crash(resp, VMM_CRASH_INTERNAL, "arming the deadline timer failed: %s", strerror(-trc));
    while (!done && !trc) {
        if (atomic_load(&vm->killed)) { crash(resp, VMM_KILLED, "killed"); break; }
        int r = ioctl(vm->sh.vcpu_fd, KVM_RUN, 0);
        if (r < 0) {
            int e = errno;
            if (e == EINTR || e == EAGAIN) {
                vm->pending_io = 0;
                if (interrupted(vm, c, deadline, timeout_ns, resp)) break;
                continue;
            }
            crash(resp, VMM_CRASH_INTERNAL, "KVM_RUN failed: %s", strerror(e));
            break;
        }
        vm->pending_io = 0;
        resp->exits++;
        exit_to_outcome(vm, first, resp, &done);
        if (!done && vm->sh.run->exit_reason == KVM_EXIT_INTR && interrupted(vm, c, deadline, timeout_ns, resp))
            break;
    }
    struct itimerspec off = { 0 };
    timer_settime(c->timer, 0, &off, NULL);
    atomic_store(&c->run, NULL);
    pthread_mutex_lock(&vm->lock);
    vm->running = 0;
    pthread_mutex_unlock(&vm->lock);
    resp->run_ns = vmm_now_ns() - t0;
    stat_add(ST_EXITS, (int64_t)resp->exits);
    if (resp->outcome == VMM_OK) {
        stat_add(ST_DOORBELLS, 1);
    } else {
        vm->dead = 1;
        if (resp->outcome == VMM_TIMEOUT) stat_add(ST_TIMEOUTS, 1);
        else if (resp->outcome != VMM_KILLED) stat_add(ST_CRASHES, 1);
    }
    return 0;
}

static void resp_init(struct vmm_response *resp)
{
    memset(resp, 0, sizeof *resp);
    resp->outcome = VMM_CRASH_INTERNAL;
}

int vmm_vm_start(struct vmm_vm *vm, uint64_t timeout_ns, struct vmm_response *resp, struct vmm_err *err)
{
    if (!vm || !resp) return vmm_fail(err, -EINVAL, "vmm_vm_start", "missing argument");
    if (!vm->booted || vm->started) return vmm_fail(err, -EINVAL, "vmm_vm_start", "not a freshly booted vm");
    if (!timeout_ns) return vmm_fail(err, -EINVAL, "vmm_vm_start", "timeout_ns must be > 0");
    resp_init(resp);
    vm->started = 1;
    return run_loop(vm, 1, timeout_ns, resp, err);
}

int vmm_vm_run(struct vmm_vm *vm, const struct vmm_request *req, struct vmm_response *resp, struct vmm_err *err)
{
    if (!vm || !req || !resp) return vmm_fail(err, -EINVAL, "vmm_vm_run", "missing argument");
    if (vm->dead) return vmm_fail(err, -EIO, "vmm_vm_run", "the vm is dead after an earlier crash, timeout or kill");
    if (vm->booted && !vm->started) return vmm_fail(err, -EINVAL, "vmm_vm_run", "vmm_vm_start first");
    if (req->payload_len > FB_MB_REQ_SIZE || (req->payload_len && !req->payload))
        return vmm_fail(err, -E2BIG, "vmm_vm_run", "payload of %llu bytes (max %llu)",
                        (unsigned long long)req->payload_len, (unsigned long long)FB_MB_REQ_SIZE);
    if (req->out_cap > FB_MB_OUT_SIZE || req->err_cap > FB_MB_ERR_SIZE || (req->mem_limit && req->mem_limit > vm->ram_size))
        return vmm_fail(err, -EINVAL, "vmm_vm_run", "out_cap/err_cap/mem_limit out of range");
    if (!req->timeout_ns) return vmm_fail(err, -EINVAL, "vmm_vm_run", "timeout_ns must be > 0: every run has a deadline");
    if (vm->last_status == FB_ST_CALL && req->kind != FB_REQ_ANSWER)
        return vmm_fail(err, -EINVAL, "vmm_vm_run", "the guest waits for the answer to its call: kind %u refused, "
                        "only FB_REQ_ANSWER", req->kind);
    resp_init(resp);
    volatile struct fb_mailbox *mb = (volatile struct fb_mailbox *)(vm->sh.mailbox + FB_MB_HDR_OFF);
    uint8_t entropy[FB_ENTROPY_SIZE];
    if (req->entropy) {
        memcpy(entropy, req->entropy, sizeof entropy);
    } else if (getrandom(entropy, sizeof entropy, 0) != (ssize_t)sizeof entropy) {
        return vmm_fail(err, -EIO, "getrandom", "no entropy");
    }
    if (req->payload_len) memcpy(vm->sh.mailbox + FB_MB_REQ_OFF, req->payload, req->payload_len);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    vm->out_cap = req->out_cap ? req->out_cap : FB_MB_OUT_SIZE;
    vm->err_cap = req->err_cap ? req->err_cap : FB_MB_ERR_SIZE;
    mb->magic = FB_MAILBOX_MAGIC;
    mb->abi_version = FB_ABI_VERSION;
    mb->req_kind = req->kind;
    mb->seq = ++vm->seq;
    mb->req_len = req->payload_len;
    mb->wall_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    mb->tsc_khz = vm->tsc_khz;
    mb->out_cap = vm->out_cap;
    mb->err_cap = vm->err_cap;
    mb->mem_limit = req->mem_limit;
    memcpy((void *)mb->entropy, entropy, sizeof entropy);
    /* Clear the response so a stale one is never taken for this request's. */
    mb->status = 0; mb->exit_code = 0; mb->ack_seq = 0;
    mb->result_len = mb->out_len = mb->err_len = 0; mb->out_flags = 0;
    return run_loop(vm, 0, req->timeout_ns, resp, err);
}
