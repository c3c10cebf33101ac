/*
 * sched.c — threads on the one vCPU: clone of a thread (own runtime stack,
 * user stack, fs base, tid), thread exit (CLONE_CHILD_CLEARTID), and the
 * scheduler every blocking call goes through (futex, pipe reads/writes,
 * poll/select/epoll, sleeps, yield, preemption). Round-robin; a thread that
 * waits is only picked when it was woken, its deadline passed, or (I/O
 * waits) another thread made a syscall since it last looked. When nobody
 * can ever run again the caller gets EDEADLK (see docs/guest-runtime.md).
 *
 * Waiting on the host (W_HOST, host_wait_block): a thread names host pipe
 * ends, futex words in host shared memory and FB_WAIT_* flags. It is ready
 * once a WAIT (or a look) that named its entries has answered. When no thread
 * can run and some wait on the host, one FB_CALL_WAIT names the union of their
 * entries with the earliest deadline of all waiters as its timeout; while
 * others run, the host is looked at (WAIT with timeout 0) at most every
 * HOST_LOOK_NS so a computing thread cannot starve them. Signals from other
 * processes come with any answer; the waiters look again and sig_block delivers
 * them. A W_HOST waiter is never a deadlock: the host can wake it.
 */
#include "rt.h"

#define KSTACK (32ull << 10)

enum { T_RUN, T_WAIT, T_DEAD };
struct thread {
    struct thread *next;       /* circular list of live threads */
    int tid, state, wait, result, woken;
    const void *chan;          /* futex address */
    u32 bitset;
    u64 deadline;              /* monotonic ns, 0 = none */
    u64 gen;                   /* W_IO: g_sys_total when it last looked */
    u64 ksp, ktop;             /* saved runtime stack pointer, its top */
    void *kstack;
    u8 *fp;                    /* FPU/SSE/AVX state while switched out (64-aligned) */
    void *fp_mem;              /* its allocation */
    u64 clear_tid, robust_head, robust_len, sigmask;
    /* W_HOST: what it waits for on the host, and the answer once one came */
    const struct fb_poll_ent *hpe;
    const struct fb_futex_ent *hfe;
    int hnpe, hnfe, hlocal, hdone, hres;
    u32 hflags;
};
#define HOST_LOOK_NS 2000000ull

/* the main thread runs on the fixed runtime stack */
#define FP_AREA 4096
static u8 g_main_fp[FP_AREA] __attribute__((aligned(64)));
static struct thread g_main = { .next = &g_main, .tid = FB_PID, .state = T_RUN, .ktop = FB_RUNTIME_STACK_TOP,
                                .fp = g_main_fp };
int g_fp_xsave;   /* entry.S: xsave (OSXSAVE) or fxsave */
u64 g_xcr0;       /* entry.S: the xsave mask */
HOT struct thread *g_cur = &g_main;
HOT u64 g_kstack_top = FB_RUNTIME_STACK_TOP;
HOT int g_nthreads = 1;
HOT volatile int g_preempt_pending; /* a kick landed inside the runtime: yield on the way out */
static int g_next_tid = FB_PID + 1;
static struct thread *g_zombie; /* exited thread whose runtime stack is freed by the next one */
static const int g_forever;     /* a futex address nobody wakes (pause) */

void fb_switch(u64 *save_ksp, u64 new_ksp, u8 *save_fp, u8 *load_fp); /* entry.S */
void fb_thread_start(void);                                            /* entry.S */
void fb_fpsave(u8 *area);                                              /* entry.S */

/* how the FPU state is saved: xsave of XCR0's components when the OS bit is set */
static int fp_init(void)
{
    static int done;
    if (done) return 0;
    u32 a, b, c, d;
    __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (c & (1u << 27)) {
        u32 lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        __asm__ volatile("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(0xd), "c"(0));
        if (b > FP_AREA) return -EAGAIN; /* state larger than the area: no threads */
        g_xcr0 = ((u64)hi << 32) | lo;
        g_fp_xsave = 1;
    }
    done = 1;
    return 0;
}

int sched_tid(void) { return g_cur->tid; }
u64 *sched_sigmask(void) { return &g_cur->sigmask; }
int sched_tid_alive(i64 tid)
{
    struct thread *t = g_cur;
    do { if (t->tid == tid && t->state != T_DEAD) return 1; t = t->next; } while (t != g_cur);
    return 0;
}
void sched_set_clear_tid(u64 a) { g_cur->clear_tid = a; }
void sched_set_robust(u64 head, u64 len) { g_cur->robust_head = head; g_cur->robust_len = len; }

static void reap(void)
{
    if (g_zombie && g_zombie != g_cur) {
        kfree(g_zombie->kstack);
        kfree(g_zombie->fp_mem);
        kfree(g_zombie);
        g_zombie = 0;
    }
}

static u64 g_slice_start; /* when the current thread was last switched to (or looked at the host) */

static void switch_to(struct thread *t)
{
    struct thread *me = g_cur;
    g_slice_start = time_mono_ns();
    g_cur = t;
    g_kstack_top = t->ktop;
    g_preempt_pending = 0;
    fb_switch(&me->ksp, t->ksp, me->fp, t->fp);
    reap();
}

/* can t run now? sets t->result for a waiting thread */
static int ready(struct thread *t, u64 now)
{
    if (t->state == T_RUN) return 1;
    if (t->state != T_WAIT) return 0;
    if (t->woken) { t->result = 0; return 1; }
    if (t->wait == W_IO && t->gen != g_sys_total) { t->result = 0; return 1; }
    if (t->wait == W_HOST) {
        if (t->hdone) { t->result = t->hres; return 1; }
        if (t->hlocal && t->gen != g_sys_total) { t->result = 0; return 1; }
    }
    if (t->deadline && now >= t->deadline) { t->result = -ETIMEDOUT; return 1; }
    return 0;
}

static void deadlock_note(void)
{
    char m[96];
    int l = rt_snprintf(m, sizeof m, "forkbox: deadlock: %d thread(s), all blocked with no timeout\n", g_nthreads);
    console_write(2, (const u8 *)m, (u64)l);
}

/* ---- the host wait ---- */
/* one FB_CALL_WAIT: entries pe then fe, timeout until deadline (0 none). 0, -ETIMEDOUT,
 * or the call's error. Signals in the answer (host_call records them) are not an error
 * here: the waiter looks again, and its next sig_block ends the wait with EINTR when one
 * is to be delivered (an ignored SIGCHLD from a child's exit interrupts nothing). */
static int wait_call(const struct fb_poll_ent *pe, int npe, const struct fb_futex_ent *fe, int nfe, u32 flags,
                     u64 deadline)
{
    i64 timeout = -1;
    if (deadline) { u64 now = time_mono_ns(); timeout = now >= deadline ? 0 : (i64)(deadline - now); }
    u64 lp = (u64)npe * sizeof *pe, lf = (u64)nfe * sizeof *fe;
    const void *data = npe ? (const void *)pe : (const void *)fe;
    u8 *both = 0;
    if (npe && nfe) {
        if (!(both = kmalloc(lp + lf))) return -ENOMEM;
        memcpy(both, pe, lp);
        memcpy(both + lp, fe, lf);
        data = both;
    }
    struct fb_call c = { .nr = FB_CALL_WAIT, .arg = { timeout, npe, nfe, flags } };
    struct fb_answer a;
    i64 r = host_call(&c, data, lp + lf, &a, 0, 0);
    kfree(both);
    return r == 0 || r == -ETIMEDOUT ? (int)r : r < 0 ? (int)r : -EIO;
}

static u64 g_host_look;   /* when the host was last asked for the W_HOST waiters */

/* ask the host for every W_HOST waiter: one WAIT with the union of their entries
 * (timeout 0 for a look while others run). Those it answers become ready. */
static void host_look(u64 deadline)
{
    int npe = 0, nfe = 0;
    u32 flags = 0;
    /* from a live thread: an exiting one (g_cur in sched_exit_thread) is out of the ring */
    struct thread *s0 = g_cur->state == T_DEAD ? g_cur->next : g_cur, *t = s0;
    do {
        if (t->state == T_WAIT && t->wait == W_HOST && !t->hdone) { npe += t->hnpe; nfe += t->hnfe; flags |= t->hflags; }
        t = t->next;
    } while (t != s0);
    struct fb_poll_ent *pe = npe ? kmalloc((u64)npe * sizeof *pe) : 0;
    struct fb_futex_ent *fe = nfe ? kmalloc((u64)nfe * sizeof *fe) : 0;
    int r;
    if ((npe && !pe) || (nfe && !fe)) r = -ENOMEM;
    else {
        int ip = 0, jf = 0;
        do {
            if (t->state == T_WAIT && t->wait == W_HOST && !t->hdone) {
                if (t->hnpe) memcpy(pe + ip, t->hpe, (u64)t->hnpe * sizeof *pe);
                if (t->hnfe) memcpy(fe + jf, t->hfe, (u64)t->hnfe * sizeof *fe);
                ip += t->hnpe; jf += t->hnfe;
            }
            t = t->next;
        } while (t != s0);
        r = wait_call(pe, npe, fe, nfe, flags, deadline);
    }
    kfree(pe);
    kfree(fe);
    g_host_look = time_mono_ns();
    if (r == -ETIMEDOUT) return; /* nothing new: the timed-out ones see their deadline */
    do {
        if (t->state == T_WAIT && t->wait == W_HOST && !t->hdone) { t->hdone = 1; t->hres = r; }
        t = t->next;
    } while (t != s0);
}

/* run someone: the first ready thread after the current one (the current one last) */
static int schedule(void)
{
    for (;;) {
        u64 now = time_mono_ns(), earliest = 0;
        int host = 0;
        /* the ring of live threads from the one after us; we come last (an exiting
         * thread is no longer in it) */
        struct thread *start = g_cur->next, *t = start;
        do {
            if (ready(t, now)) {
                /* the others waiting on the host are looked at every HOST_LOOK_NS */
                struct thread *u = t->next;
                for (; u != t && !host; u = u->next) host = u->state == T_WAIT && u->wait == W_HOST && !u->hdone;
                if (host && now - g_host_look >= HOST_LOOK_NS) host_look(now ? now : 1);
                t->state = T_RUN;
                t->wait = W_NONE;
                if (t != g_cur) switch_to(t);
                return g_cur->result;
            }
            if (t->state == T_WAIT && t->deadline && (!earliest || t->deadline < earliest)) earliest = t->deadline;
            if (t->state == T_WAIT && t->wait == W_HOST) host = 1;
            t = t->next;
        } while (t != start);
        if (host) {
            /* nobody can run: wait on the host until one may, or the earliest deadline */
            host_look(earliest);
            continue;
        }
        if (!earliest) {
            /* nobody can ever run again: the current thread's call fails (or, when it
             * is exiting, the next waiting one's) */
            deadlock_note();
            t = g_cur;
            while (t->state != T_WAIT) t = t->next;
            t->state = T_RUN;
            t->wait = W_NONE;
            t->result = -EDEADLK;
            if (t != g_cur) switch_to(t);
            return g_cur->result;
        }
        /* everyone waits for a deadline: idle until the earliest */
        while (time_mono_ns() < earliest) __asm__ volatile("pause");
    }
}

int sched_block(int kind, const void *chan, u32 bitset, u64 deadline)
{
    struct thread *me = g_cur;
    if (g_nthreads == 1 && kind == W_HOST)
        return wait_call(me->hpe, me->hnpe, me->hfe, me->hnfe, me->hflags, deadline); /* one thread: one WAIT */
    if (g_nthreads == 1) {
        /* one thread: nothing else can wake it */
        if (!deadline) {
            if (kind == W_FUTEX) deadlock_note(); /* glibc aborts on it with a vaguer message */
            return -EDEADLK;
        }
        time_spin_until_mono(deadline);
        return -ETIMEDOUT;
    }
    me->state = T_WAIT;
    me->wait = kind;
    me->chan = chan;
    me->bitset = bitset;
    me->deadline = deadline;
    me->gen = g_sys_total;
    me->woken = 0;
    me->result = 0;
    me->hdone = 0;
    return schedule();
}

int host_wait_ex(const struct fb_poll_ent *pe, int npe, const struct fb_futex_ent *fe, int nfe, u32 flags,
                 u64 deadline, int local, const void *chan, u32 bitset)
{
    struct thread *me = g_cur;
    me->hpe = pe; me->hnpe = npe > 0 ? npe : 0;
    me->hfe = fe; me->hnfe = nfe > 0 ? nfe : 0;
    me->hflags = flags;
    me->hlocal = local;
    int r = sig_block(W_HOST, chan, chan ? bitset : 0, deadline);
    me->hpe = 0; me->hfe = 0; me->hnpe = me->hnfe = 0;
    return r;
}

int host_wait_block(const struct fb_poll_ent *pe, int npe, const struct fb_futex_ent *fe, int nfe, u32 flags,
                    u64 deadline)
{
    return host_wait_ex(pe, npe, fe, nfe, flags, deadline, 0, 0, 0);
}

int sched_wake(const void *chan, u32 bitset, int n)
{
    int c = 0;
    if (g_nthreads == 1 || n <= 0) return 0;
    struct thread *t = g_cur->next;
    do {
        if (t->state == T_WAIT && (t->wait == W_FUTEX || (t->wait == W_HOST && t->chan)) && t->chan == chan &&
            (t->bitset & bitset) && !t->woken) {
            t->woken = 1;
            if (++c == n) break;
        }
        t = t->next;
    } while (t != g_cur->next);
    return c;
}

void sched_yield(void)
{
    if (g_nthreads == 1) return;
    g_cur->result = 0;
    schedule();
}

i64 sched_pause(void)
{
    int r = sched_block(W_FUTEX, &g_forever, 0, 0);
    return r == -EDEADLK ? -EDEADLK : -EINTR;
}

/* a periodic host kick landed (or the pending flag was seen on the way out) */
/* After a host call (dev.c host_call): every call ends the VM's run, and the host's
 * preempt tick counts one run's time, so a thread whose calls never block (a poll
 * loop that always finds something ready) would never be preempted and the threads
 * waiting on the host never looked at. Past a slice of HOST_LOOK_NS it yields on the
 * way out of its syscall, as a tick would make it. */
void sched_after_host_call(void)
{
    if (g_nthreads > 1 && time_mono_ns() - g_slice_start >= HOST_LOOK_NS) g_preempt_pending = 1;
}

void sched_preempt(void)
{
    g_preempt_pending = 0;
    g_slice_start = time_mono_ns();
    if (g_nthreads > 1) sched_yield();
}

/* entry.S's frame: what fb_syscall_entry pushed, lowest address first */
struct entry_frame { u64 r15, r14, r13, r12, rbp, rbx, r9, r8, r10, rdx, rsi, rdi, rflags, user_rsp; };

#define CLONE_VM 0x100
#define CLONE_FS 0x200
#define CLONE_FILES 0x400
#define CLONE_SIGHAND 0x800
#define CLONE_THREAD 0x10000
#define CLONE_SYSVSEM 0x40000
#define CLONE_SETTLS 0x80000
#define CLONE_PARENT_SETTID 0x100000
#define CLONE_CHILD_CLEARTID 0x200000
#define CLONE_DETACHED 0x400000
#define CLONE_CHILD_SETTID 0x1000000
#define CLONE_NEEDED (CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD)
#define CLONE_OK (CLONE_NEEDED | CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID | CLONE_CHILD_CLEARTID | \
                  CLONE_DETACHED | CLONE_CHILD_SETTID)

i64 sched_clone(u64 flags, u64 sp, u64 ptid, u64 ctid, u64 tls)
{
    if (!(flags & CLONE_THREAD)) return -ENOSYS;  /* a new process: there is one */
    if ((flags & CLONE_NEEDED) != CLONE_NEEDED || (flags & ~(u64)(CLONE_OK | 0xff))) return -EINVAL;
    if (sp < 16 || !uaccess_w((void *)(sp - 16), 16)) return -EINVAL; /* a thread needs its own stack */
    if ((flags & CLONE_SETTLS) && tls >= (1ull << 47)) return -EPERM;
    if ((flags & CLONE_PARENT_SETTID) && !uaccess_w((void *)ptid, 4)) return -EFAULT;
    if ((flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)) && !uaccess_w((void *)ctid, 4)) return -EFAULT;
    if (g_next_tid >= (1 << 22)) return -EAGAIN;
    if (fp_init()) return -EAGAIN;
    reap();
    struct thread *t = kzalloc(sizeof *t);
    void *ks = t ? kmalloc(KSTACK) : 0;
    void *fpm = ks ? kzalloc(FP_AREA + 64) : 0; /* zeroed: a valid xsave header */
    if (!fpm) { kfree(ks); kfree(t); return -EAGAIN; }
    u8 *fp = (u8 *)(((u64)fpm + 63) & ~63ull);
    t->kstack = ks;
    t->fp = fp;
    t->fp_mem = fpm;
    t->ktop = ((u64)ks + KSTACK) & ~15ull;
    t->tid = g_next_tid++;
    t->state = T_RUN;
    t->sigmask = g_cur->sigmask;
    t->clear_tid = (flags & CLONE_CHILD_CLEARTID) ? ctid : 0;

    /* the child resumes after the parent's `call *%rax` with the parent's registers,
     * rax = 0 and rsp = its own stack (fb_thread_start pops this) */
    const struct entry_frame *pf = (const struct entry_frame *)(g_kstack_top - sizeof *pf);
    u64 *top = (u64 *)t->ktop;
    top[-1] = sp;
    top[-2] = *(const u64 *)pf->user_rsp;  /* return address into the program */
    top[-3] = pf->rflags;
    memcpy(top - 15, pf, 12 * 8);          /* r15 .. rdi */
    u64 *sw = top - 23;                    /* fb_switch's frame */
    u64 fs;
    __asm__ volatile("rdfsbase %0" : "=r"(fs));
    sw[0] = (flags & CLONE_SETTLS) ? tls : fs;
    for (int i = 1; i < 7; i++) sw[i] = 0;
    sw[7] = (u64)fb_thread_start;
    t->ksp = (u64)sw;
    fb_fpsave(fp);                         /* the child starts with our FPU state */

    t->next = g_cur->next;
    g_cur->next = t;
    g_nthreads++;
    if (flags & CLONE_PARENT_SETTID) *(u32 *)ptid = (u32)t->tid;
    if (flags & CLONE_CHILD_SETTID) *(u32 *)ctid = (u32)t->tid;
    return t->tid;
}

/* exit of one thread; the last one ends the program */
void sched_exit_thread(int code)
{
    struct thread *me = g_cur;
    if (g_nthreads == 1) ctl_exit(code);
    if (me->clear_tid && uaccess_w((void *)me->clear_tid, 4)) {
        *(u32 *)me->clear_tid = 0;
        sched_wake((const void *)me->clear_tid, ~0u, 1 << 30);
    }
    /* unlink: the list stays circular through the others */
    struct thread *p = me;
    while (p->next != me) p = p->next;
    p->next = me->next;
    me->state = T_DEAD;
    g_nthreads--;
    if (me != &g_main) g_zombie = me;
    /* keep `next` so schedule() walks the live threads starting after us */
    for (;;) schedule();
}

/* The child of a fork, and execve (proc.c): only the calling thread exists. It keeps
 * its record and runtime stack (the main thread's, or its own); every other thread's
 * are freed, and the main thread's static record is left unused when another thread
 * called. */
void sched_only_caller(int tid, u64 clear_tid)
{
    struct thread *me = g_cur, *t = me->next;
    while (t != me) {
        struct thread *n = t->next;
        if (t == &g_main) g_main.state = T_DEAD;
        else { kfree(t->kstack); kfree(t->fp_mem); kfree(t); }
        t = n;
    }
    if (g_zombie && g_zombie != me) { kfree(g_zombie->kstack); kfree(g_zombie->fp_mem); kfree(g_zombie); }
    g_zombie = 0;
    me->next = me;
    me->tid = tid;
    me->clear_tid = clear_tid;
    me->robust_head = me->robust_len = 0;
    g_nthreads = 1;
    g_next_tid = tid + 1;
}
