/*
 * signal.c — signals: handlers, masks, pending set, alarm/setitimer
 * (ITIMER_REAL; VIRTUAL and PROF run on the same clock: one vCPU),
 * kill/tkill/tgkill (to ourselves here; to another process through the host,
 * proc.c), and the signals other processes sent, which arrive in the host's
 * answers (g_host_signals) and become pending. A signal is delivered at a safe
 * point, the return from a syscall: a blocking call is cut short with EINTR
 * (or restarted, SA_RESTART), the handler runs on the program's stack below
 * the red zone and returns through its sa_restorer into rt_sigreturn, which
 * puts back the registers, FPU state, mask and the call's result.
 */
#include "rt.h"

struct ksigaction { u64 handler, flags, restorer, mask; };
static struct ksigaction g_sig[65];
#define g_sigmask (*sched_sigmask()) /* per thread */
static u64 g_altstack[3];

#define SIGKILL 9
#define SIGSTOP 19
#define SIG_DFL 0
#define SIG_IGN 1

static i64 sys_rt_sigaction(u64 sig, const struct ksigaction *act, struct ksigaction *old, u64 sz)
{
    if (sig < 1 || sig > 64 || sz != 8) return -EINVAL;
    if (act && (sig == SIGKILL || sig == SIGSTOP)) return -EINVAL;
    if (act && !uaccess_ok(act, sizeof *act)) return -EFAULT;
    if (old && !uaccess_w(old, sizeof *old)) return -EFAULT;
    struct ksigaction prev = g_sig[sig];
    if (act) g_sig[sig] = *act;
    if (old) *old = prev;
    return 0;
}

static i64 sys_rt_sigprocmask(u64 how, const u64 *set, u64 *old, u64 sz)
{
    if (sz != 8) return -EINVAL;
    if (set && !uaccess_ok(set, 8)) return -EFAULT;
    if (old && !uaccess_w(old, 8)) return -EFAULT;
    u64 prev = g_sigmask;
    if (set) {
        u64 s = *set & ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
        if (how == 0) g_sigmask |= s;
        else if (how == 1) g_sigmask &= ~s;
        else if (how == 2) g_sigmask = s;
        else return -EINVAL;
    }
    if (old) *old = prev;
    return 0;
}

static i64 sys_sigaltstack(const u64 *ss, u64 *old)
{
    if (ss && !uaccess_ok(ss, 24)) return -EFAULT;
    if (old && !uaccess_w(old, 24)) return -EFAULT;
    u64 prev[3] = { g_altstack[0], g_altstack[1], g_altstack[2] };
    if (!prev[0] && !prev[2]) prev[1] = 2; /* SS_DISABLE */
    if (ss) {
        if ((u32)ss[1] & ~(2u | (1u << 31))) return -EINVAL;
        if (!((u32)ss[1] & 2) && ss[2] < 2048) return -ENOMEM;
        g_altstack[0] = ss[0]; g_altstack[1] = ss[1]; g_altstack[2] = ss[2];
    }
    if (old) { old[0] = prev[0]; old[1] = prev[1]; old[2] = prev[2]; }
    return 0;
}


#define SA_NODEFER 0x40000000ull
#define SA_RESTART 0x10000000ull
#define SA_RESTORER 0x04000000ull
#define BIT(s) (1ull << ((s) - 1))
#define DEFAULT_IGNORED (BIT(17) | BIT(18) | BIT(23) | BIT(28)) /* CHLD, CONT, URG, WINCH */

HOT u32 g_sig_work;              /* a signal pending or a timer armed: the syscall exit looks */
static u64 g_pending;            /* process-wide pending set */
static u64 g_from_kill;          /* pending ones sent by kill() (si_code SI_USER) */
static u64 g_from_host;          /* ... by another process (the sender's pid is not known) */
static int g_susp_tid;           /* a thread in rt_sigsuspend and the mask to restore after it */
static u64 g_susp_mask;

/* interval timers: monotonic ns; ITIMER_REAL, VIRTUAL, PROF -> SIGALRM, SIGVTALRM, SIGPROF */
static struct { u64 deadline, interval; } g_timer[3];
static const int g_timer_sig[3] = { 14, 26, 27 };

static void work_update(void)
{
    g_sig_work = g_pending || g_host_signals || g_timer[0].deadline || g_timer[1].deadline || g_timer[2].deadline;
}

static void timers_poll(void)
{
    u64 now = time_mono_ns();
    for (int i = 0; i < 3; i++) {
        if (!g_timer[i].deadline || g_timer[i].deadline > now) continue;
        g_pending |= BIT(g_timer_sig[i]);
        if (g_timer[i].interval) {
            u64 late = now - g_timer[i].deadline;
            g_timer[i].deadline += (late / g_timer[i].interval + 1) * g_timer[i].interval;
        } else g_timer[i].deadline = 0;
    }
    work_update();
}

static u64 timers_next(void)
{
    u64 n = 0;
    for (int i = 0; i < 3; i++) if (g_timer[i].deadline && (!n || g_timer[i].deadline < n)) n = g_timer[i].deadline;
    return n;
}

static i64 self_signal(u64 sig);
/* signals other processes sent: pending as if sent by kill() here */
static void take_host(void)
{
    u64 h = g_host_signals;
    g_host_signals = 0;
    for (int s = 1; h && s <= 64; s++, h >>= 1)
        if ((h & 1) && !self_signal((u64)s) && (g_pending & BIT(s))) g_from_host |= BIT(s);
}

/* a pending signal this thread would act on now (run a handler or die of it) */
static int deliverable(void)
{
    if (g_host_signals) take_host();
    u64 p = g_pending & ~g_sigmask;
    for (int s = 1; p && s <= 64; s++, p >>= 1) {
        if (!(p & 1)) continue;
        u64 h = g_sig[s].handler;
        if (h == SIG_IGN || (h == SIG_DFL && (BIT(s) & DEFAULT_IGNORED))) { g_pending &= ~BIT(s); continue; }
        return s;
    }
    work_update();
    return 0;
}

int sig_deliverable_now(void)
{
    if (!g_sig_work) return 0;
    if (g_timer[0].deadline || g_timer[1].deadline || g_timer[2].deadline) timers_poll();
    return deliverable() != 0;
}

/* a fork's child (Linux): nothing pending, no timers armed; handlers, masks stay */
void sig_fork_child(void)
{
    g_pending = g_from_kill = g_from_host = 0;
    for (int i = 0; i < 3; i++) g_timer[i].deadline = g_timer[i].interval = 0;
    g_susp_tid = 0;
    work_update();
}

static int g_forever; /* a futex nobody wakes (pause, sigsuspend) */

/* The only thread of a process in a group (proc.c), waiting for a deadline or for a
 * signal: nothing in this VM can end the wait sooner, and another process's signal
 * arrives only in a host answer, so it waits on the host (FB_CALL_WAIT with the
 * timeout) instead of idling in the VM. */
static int host_idle(int kind, u64 deadline)
{
    for (;;) {
        if (g_timer[0].deadline || g_timer[1].deadline || g_timer[2].deadline) timers_poll();
        if (deliverable()) return -EINTR;
        u64 t = timers_next(), d = deadline;
        int by_timer = t && (!d || t < d);
        if (by_timer) d = t;
        int r = host_wait_block(0, 0, 0, 0, 0, d);
        if (r == -ETIMEDOUT && !by_timer) return -ETIMEDOUT;
        if (r < 0 && r != -ETIMEDOUT && r != -EINTR) return r;
        if (kind == W_IO && r == 0) return 0; /* the caller looks again */
    }
}

/* execve (Linux): caught signals go back to their default, ignored ones stay ignored;
 * the mask, the pending set and the timers are kept; the alternate stack is gone */
void sig_exec_reset(void)
{
    for (int s = 1; s <= 64; s++) {
        u64 ign = g_sig[s].handler == SIG_IGN;
        memset(&g_sig[s], 0, sizeof g_sig[s]);
        g_sig[s].handler = ign ? SIG_IGN : SIG_DFL;
    }
    g_altstack[0] = g_altstack[1] = g_altstack[2] = 0;
    g_susp_tid = 0;
}

int sig_block(int kind, const void *chan, u32 bitset, u64 deadline)
{
    /* (a W_HOST wait is on the host already: it comes back here from host_wait_block) */
    if (kind != W_HOST && g_nthreads == 1 && proc_in_group() && (deadline || chan == &g_forever || timers_next()))
        return host_idle(kind, deadline);
    if (!g_sig_work) return sched_block(kind, chan, bitset, deadline);
    for (;;) {
        if (deliverable()) return -EINTR;
        u64 t = timers_next(), d = deadline;
        int by_timer = t && (!d || t < d);
        if (by_timer) d = t;
        int r = sched_block(kind, chan, bitset, d);
        if (!by_timer || r != -ETIMEDOUT) return r; /* a signal now pending is delivered at the exit */
        timers_poll();
        if (kind == W_IO) return 0; /* the caller looks again (and comes back here) */
    }
}

/* ---- delivery at the syscall exit (syscall.c) ---- */
struct sigframe {
    u64 magic;
    u64 saved[14];            /* the entry's save area: r15 .. rdi, flags, the program's rsp */
    i64 ret;
    u64 nr, oldmask;
    u32 sig, restart;
    u8 info[128];
    u8 uc[1024];
    u8 fx[512] __attribute__((aligned(16)));
};
#define FRAME_MAGIC 0x6662736967667231ull
enum { S_R15, S_R14, S_R13, S_R12, S_RBP, S_RBX, S_R9, S_R8, S_R10, S_RDX, S_RSI, S_RDI, S_FLAGS, S_RSP };

static int restartable(u64 nr)
{
    return nr == 0 || nr == 1 || nr == 2 || nr == 17 || nr == 18 || nr == 19 || nr == 20 || nr == 44 || nr == 45 ||
           nr == 61 || nr == 202 || nr == 247 || nr == 257 || nr == 295 || nr == 296;
}

i64 sig_exit(u64 nr, i64 ret)
{
    if (g_timer[0].deadline || g_timer[1].deadline || g_timer[2].deadline) timers_poll();
    int s = deliverable();
    if (!s) return ret;
    g_pending &= ~BIT(s);
    int user = ((g_from_kill | g_from_host) & BIT(s)) != 0, remote = (g_from_host & BIT(s)) != 0;
    g_from_kill &= ~BIT(s);
    g_from_host &= ~BIT(s);
    work_update();
    struct ksigaction *sa = &g_sig[s];
    if (sa->handler == SIG_DFL || !(sa->flags & SA_RESTORER)) ctl_exit_signal(s); /* its default: the end */
    u64 *save = (u64 *)g_kstack_top - 14;     /* what fb_syscall_entry pushed, lowest first */
    u64 ursp = save[S_RSP];
    u64 sp = ((ursp - 128 - sizeof(struct sigframe)) & ~15ull) - 16;
    if (sp > ursp || !uaccess_w((void *)sp, 16 + sizeof(struct sigframe))) ctl_exit_signal(11);
    struct sigframe *fr = (struct sigframe *)(sp + 16);
    memset(fr, 0, sizeof *fr);
    fr->magic = FRAME_MAGIC;
    memcpy(fr->saved, save, sizeof fr->saved);
    fr->ret = ret;
    fr->nr = nr;
    fr->sig = (u32)s;
    fr->restart = ret == -EINTR && (sa->flags & SA_RESTART) && restartable(nr);
    fr->oldmask = g_sigmask;
    if (g_susp_tid == sched_tid()) { fr->oldmask = g_susp_mask; g_susp_tid = 0; }
    i32 *si = (i32 *)fr->info;
    si[0] = s;                 /* si_signo; si_code: SI_USER (kill), SI_KERNEL (timers), SI_TKILL */
    si[2] = user ? 0 : (s == 14 || s == 26 || s == 27) ? 0x80 : -6;
    si[4] = remote ? 0 : g_pid; si[5] = FB_UID;
    __asm__ volatile("fxsave %0" : "=m"(*(u8 (*)[512])fr->fx));
    g_sigmask |= sa->mask | ((sa->flags & SA_NODEFER) ? 0 : BIT(s));
    ((u64 *)sp)[0] = sa->handler;               /* fb_syscall_entry's `ret` lands in the handler */
    ((u64 *)sp)[1] = sa->restorer;              /* ... whose `ret` lands in the restorer */
    save[S_RSP] = sp;
    save[S_RDI] = (u64)s;
    save[S_RSI] = (u64)fr->info;
    save[S_RDX] = (u64)fr->uc;
    save[S_FLAGS] &= ~0x400ull;                 /* DF clear at a function's entry */
    return 0;
}

/* the restorer's call: rsp was just past the handler's return slot, the frame follows */
SYSCALL(rt_sigreturn)
{
    u64 *save = (u64 *)g_kstack_top - 14;
    struct sigframe *fr = (struct sigframe *)(save[S_RSP] + 8);
    if (!uaccess_w(fr, sizeof *fr) || ((u64)fr & 15) || fr->magic != FRAME_MAGIC) ctl_exit_signal(11);
    __asm__ volatile("fxrstor %0" : : "m"(*(const u8 (*)[512])fr->fx));
    u64 flags = save[S_FLAGS];
    memcpy(save, fr->saved, sizeof fr->saved);
    save[S_FLAGS] = (fr->saved[S_FLAGS] & 0xcd5ull) | (flags & ~0xcd5ull); /* only the status flags and DF */
    g_sigmask = fr->oldmask & ~(BIT(SIGKILL) | BIT(SIGSTOP));
    fr->magic = 0;
    if (fr->restart) {
        u64 *slot = (u64 *)save[S_RSP];           /* the original return address into the program */
        if (uaccess_w(slot, 8) && *slot >= 2 && uaccess_ok((void *)(*slot - 2), 2) &&
            ((const u8 *)*slot)[-2] == 0xff && ((const u8 *)*slot)[-1] == 0xd0) {
            *slot -= 2;                             /* back onto its `call *%rax`, rax = the number */
            return (i64)fr->nr;
        }
        return -EINTR;
    }
    return fr->ret;
}

/* a signal sent to ourselves: pending, delivered as this call returns */
static i64 self_signal(u64 sig)
{
    if (sig == 0) return 0;
    if (sig > 64) return -EINVAL;
    u64 h = g_sig[sig].handler;
    if (sig == SIGKILL || (sig == SIGSTOP)) ctl_exit_signal((int)sig);
    if (h == SIG_IGN || (h == SIG_DFL && (BIT(sig) & DEFAULT_IGNORED))) return 0;
    g_pending |= BIT(sig);
    work_update();
    return 0;
}

/* ---- timers ---- */
struct ktimeval { i64 sec, usec; };
struct kitimerval { struct ktimeval interval, value; };
static u64 tv_ns(const struct ktimeval *t) { return (u64)t->sec * 1000000000ull + (u64)t->usec * 1000ull; }
static void ns_tv(u64 ns, struct ktimeval *t) { t->sec = (i64)(ns / 1000000000ull); t->usec = (i64)(ns % 1000000000ull / 1000); }
static void timer_get(int w, struct kitimerval *v)
{
    u64 now = time_mono_ns(), d = g_timer[w].deadline;
    ns_tv(g_timer[w].interval, &v->interval);
    ns_tv(d > now ? d - now : d ? 1000 : 0, &v->value);
}
SYSCALL(getitimer)
{
    if (a > 2) return -EINVAL;
    if (!uaccess_w((void *)b, sizeof(struct kitimerval))) return -EFAULT;
    timer_get((int)a, (struct kitimerval *)b);
    return 0;
}
SYSCALL(setitimer)
{
    if (a > 2) return -EINVAL;
    const struct kitimerval *nv = (const struct kitimerval *)b;
    struct kitimerval ov;
    if (nv && !uaccess_ok(nv, sizeof *nv)) return -EFAULT;
    if (c && !uaccess_w((void *)c, sizeof ov)) return -EFAULT;
    if (nv && (nv->value.sec < 0 || nv->value.usec < 0 || nv->value.usec >= 1000000 ||
               nv->interval.sec < 0 || nv->interval.usec < 0 || nv->interval.usec >= 1000000)) return -EINVAL;
    timer_get((int)a, &ov);
    if (nv) {
        u64 v = tv_ns(&nv->value);
        g_timer[a].deadline = v ? time_mono_ns() + v : 0;
        g_timer[a].interval = v ? tv_ns(&nv->interval) : 0;
        work_update();
    }
    if (c) *(struct kitimerval *)c = ov;
    return 0;
}
SYSCALL(alarm) /* the seconds left of the previous alarm, rounded up */
{
    struct kitimerval ov;
    timer_get(0, &ov);
    g_timer[0].deadline = a ? time_mono_ns() + a * 1000000000ull : 0;
    g_timer[0].interval = 0;
    work_update();
    return ov.value.sec + (ov.value.usec ? 1 : 0);
}

/* ---- the syscalls (listed in syscall.c) ---- */
SYSCALL(rt_sigaction) { return sys_rt_sigaction(a, (const struct ksigaction *)b, (struct ksigaction *)c, d); }
SYSCALL(rt_sigprocmask) { return sys_rt_sigprocmask(a, (const u64 *)b, (u64 *)c, d); }
SYSCALL(rt_sigpending)
{
    if (!uaccess_w((void *)a, 8)) return -EFAULT;
    *(u64 *)a = g_pending & g_sigmask;
    return 0;
}
SYSCALL(sigaltstack) { return sys_sigaltstack((const u64 *)a, (u64 *)b); }
/* waits for a signal while others run; with none that could ever come, EDEADLK */
SYSCALL(pause) { int r = sig_block(W_FUTEX, &g_forever, 0, 0); return r == -EDEADLK ? -EDEADLK : -EINTR; }
SYSCALL(rt_sigsuspend)
{
    if (b != 8) return -EINVAL;
    if (!uaccess_ok((void *)a, 8)) return -EFAULT;
    u64 old = g_sigmask;
    g_sigmask = *(const u64 *)a & ~(BIT(SIGKILL) | BIT(SIGSTOP));
    int r = sig_block(W_FUTEX, &g_forever, 0, 0);
    if (r == -EINTR) { g_susp_tid = sched_tid(); g_susp_mask = old; return -EINTR; }
    g_sigmask = old;
    return r == -EDEADLK ? -EDEADLK : -EINTR;
}
/* kill(2): our pid; 0 or our group (the processes of a group are one process group):
 * every process including us; -1: every other process (Linux leaves out the caller);
 * another pid: the host. A signal to ourselves is SI_USER. */
static i64 kill_self(u64 sig)
{
    i64 r = self_signal(sig);
    if (!r && sig && (g_pending & BIT(sig))) g_from_kill |= BIT(sig);
    return r;
}
static i64 sys_kill(i64 pid, u64 sig)
{
    if (sig > 64) return -EINVAL;
    if (pid == INT32_MIN) return -ESRCH;
    if (pid == g_pid || (pid > 0 && sched_tid_alive(pid))) return kill_self(sig); /* a tid of ours: its process */
    if (pid == 0 || pid == -FB_PID) {
        i64 r = proc_kill(0, (int)sig);
        if (r && r != -ESRCH) return r;
        return kill_self(sig);
    }
    if (pid == -1) return proc_kill(-1, (int)sig);
    if (pid < 0) return -ESRCH;   /* another process group: there is one */
    return proc_kill(pid, (int)sig);
}
SYSCALL(kill) { return sys_kill((i64)(i32)a, b); }
/* tkill/tgkill: a thread of ours, or (another tgid, or a tid that is none of ours)
 * the process through the host */
SYSCALL(tkill)
{
    if ((i64)a <= 0 || b > 64) return -EINVAL;
    if (sched_tid_alive((i64)a)) return self_signal(b);
    return proc_kill((i64)a, (int)b);
}
SYSCALL(tgkill)
{
    if ((i64)a <= 0 || (i64)b <= 0 || c > 64) return -EINVAL;
    if ((i64)a == g_pid) return sched_tid_alive((i64)b) ? self_signal(c) : -ESRCH;
    return proc_kill((i64)a, (int)c);
}
