/*
 * sys_misc.c — identity, signals (bookkeeping only: handlers are stored, a
 * signal sent to ourselves with the default action ends the program as
 * 128+n), limits, threads and futex (over sched.c), process creation
 * (refused honestly), uname, sysinfo, rusage. Identity: pid 2, ppid 1,
 * uid/gid 1000, thread ids from 3 (see docs/guest-runtime.md).
 */
#include "rt.h"

struct ksigaction { u64 handler, flags, restorer, mask; };
static struct ksigaction g_sig[65];
#define g_sigmask (*sched_sigmask()) /* per thread */
static u64 g_altstack[3];
extern u64 g_ram_size;

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

/* a signal to ourselves: default action of a fatal signal ends the program */
static i64 self_signal(u64 sig)
{
    if (sig == 0) return 0;
    if (sig > 64) return -EINVAL;
    u64 h = g_sig[sig].handler;
    if (sig == SIGKILL || (h == SIG_DFL && (g_sigmask & (1ull << (sig - 1))) == 0)) {
        /* SIGCHLD, SIGCONT, SIGURG, SIGWINCH are ignored by default */
        if (sig == 17 || sig == 18 || sig == 23 || sig == 28) return 0;
        ctl_exit(128 + (int)sig);
    }
    if (h == SIG_IGN || (g_sigmask & (1ull << (sig - 1)))) return 0;
    return -EPERM; /* running a handler asynchronously is not supported */
}

#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_CLOCK_REALTIME 256
/* WAIT blocks this thread (sched.c) until a WAKE on the same address, the
 * timeout, or a deadlock (EDEADLK: no thread could ever wake it) */
static i64 sys_futex(u32 *uaddr, u64 op, u64 val, const struct ktimespec *ts, u64 val3)
{
    u64 cmd = op & 0x7f;
    if (cmd == FUTEX_WAKE || cmd == FUTEX_WAKE_BITSET) {
        u32 bits = cmd == FUTEX_WAKE ? ~0u : (u32)val3;
        if (!bits) return -EINVAL;
        return sched_wake(uaddr, bits, val > 0x7fffffff ? 0x7fffffff : (int)val);
    }
    if (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) {
        u32 bits = cmd == FUTEX_WAIT ? ~0u : (u32)val3;
        if (!bits) return -EINVAL;
        if (((u64)uaddr & 3) || !uaccess_ok(uaddr, 4)) return -EFAULT;
        u64 deadline = 0;
        if (ts) {
            if (!uaccess_ok(ts, sizeof *ts)) return -EFAULT;
            if (ts->sec < 0 || ts->nsec < 0 || ts->nsec >= 1000000000) return -EINVAL;
            u64 ns = (u64)ts->sec > 100000000ull ? 100000000ull * 1000000000ull
                                                  : (u64)ts->sec * 1000000000ull + (u64)ts->nsec;
            u64 mono = time_mono_ns();
            if (cmd == FUTEX_WAIT_BITSET) { /* absolute, on the clock asked for */
                u64 now = (op & FUTEX_CLOCK_REALTIME) ? time_wall_ns() : mono;
                ns = ns > now ? ns - now : 0;
            }
            deadline = mono + (ns ? ns : 1);
        }
        if (*uaddr != (u32)val) return -EAGAIN;
        return sched_block(W_FUTEX, uaddr, bits, deadline);
    }
    return -ENOSYS;
}

struct clone_args { u64 flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; };
static i64 sys_clone3(const struct clone_args *ca, u64 size)
{
    if (size < 64 || size > 4096) return -EINVAL;
    if (!uaccess_ok(ca, size)) return -EFAULT;
    for (u64 i = sizeof *ca; i < size; i++) /* newer fields (set_tid, cgroup) must be unused */
        if (((const u8 *)ca)[i]) return (ca->flags & 0x10000) ? -EINVAL : -ENOSYS;
    if (!(ca->flags & 0x10000)) return -ENOSYS; /* a new process */
    if (ca->exit_signal || (ca->flags >> 32)) return -EINVAL; /* pidfd is only read with CLONE_PIDFD */
    if (ca->stack_size && ca->stack + ca->stack_size < ca->stack) return -EINVAL;
    return sched_clone(ca->flags, ca->stack + ca->stack_size, ca->parent_tid, ca->child_tid, ca->tls);
}

struct rlimit { u64 cur, max; };
static i64 sys_prlimit(u64 pid, u64 res, const struct rlimit *nw, struct rlimit *old)
{
    if (pid && pid != FB_PID) return -ESRCH;
    if (res > 15) return -EINVAL;
    if (old) {
        if (!uaccess_w(old, sizeof *old)) return -EFAULT;
        u64 inf = ~0ull;
        old->cur = old->max = inf;
        if (res == 3) old->cur = old->max = 8ull << 20;            /* RLIMIT_STACK */
        if (res == 7) old->cur = old->max = NFD;                  /* RLIMIT_NOFILE */
        if (res == 9 || res == 2) old->cur = old->max = g_mem_limit ? g_mem_limit : g_ram_size; /* AS, DATA */
        if (res == 6) old->cur = old->max = 1;                    /* RLIMIT_NPROC */
        if (res == 4) old->cur = old->max = 0;                    /* RLIMIT_CORE */
    }
    if (nw) {
        if (!uaccess_ok(nw, sizeof *nw)) return -EFAULT;
        if (nw->cur > nw->max) return -EINVAL;
    }
    return 0; /* lowering a limit is accepted and not enforced beyond our own */
}

static i64 sys_uname(char *u)
{
    if (!uaccess_w(u, 65 * 6)) return -EFAULT;
    static const char *f[6] = { "Linux", "forkbox", "6.1.0-forkbox", "#1 SMP forkbox", "x86_64", "(none)" };
    memset(u, 0, 65 * 6);
    for (int i = 0; i < 6; i++) strcpy_n(u + 65 * i, f[i], 65);
    return 0;
}

struct ksysinfo {
    i64 uptime; u64 loads[3]; u64 totalram, freeram, sharedram, bufferram, totalswap, freeswap;
    u16 procs, pad; u32 pad2; u64 totalhigh, freehigh; u32 mem_unit; char f[4];
};
static i64 sys_sysinfo(struct ksysinfo *s)
{
    if (!uaccess_w(s, sizeof *s)) return -EFAULT;
    memset(s, 0, sizeof *s);
    u64 tot = g_mem_limit ? g_mem_limit : g_ram_size, used = mm_used_bytes();
    s->uptime = (i64)(time_mono_ns() / 1000000000ull);
    s->totalram = tot;
    s->freeram = tot > used ? tot - used : 0;
    s->procs = 1;
    s->mem_unit = 1;
    return 0;
}

static i64 sys_getrusage(i64 who, i64 *ru)
{
    if (who != 0 && who != -1 && who != 1) return -EINVAL;
    if (!uaccess_w(ru, 144)) return -EFAULT;
    memset(ru, 0, 144);
    if (who != -1) {
        u64 ns = time_mono_ns() - 1000000000ull;
        ru[0] = (i64)(ns / 1000000000ull); ru[1] = (i64)(ns % 1000000000ull / 1000);
        ru[4] = (i64)(mm_used_bytes() >> 10); /* maxrss, KiB */
    }
    return 0;
}

static i64 sys_times(i64 *t)
{
    i64 ticks = (i64)((time_mono_ns() - 1000000000ull) / 10000000ull);
    if (t) {
        if (!uaccess_w(t, 32)) return -EFAULT;
        t[0] = ticks; t[1] = 0; t[2] = 0; t[3] = 0;
    }
    return ticks + 1;
}

#define ARCH_SET_GS 0x1001
#define ARCH_SET_FS 0x1002
#define ARCH_GET_FS 0x1003
#define ARCH_GET_GS 0x1004
static i64 sys_arch_prctl(u64 code, u64 addr)
{
    u64 v;
    switch (code) {
    case ARCH_SET_FS:
        if (addr >= (1ull << 47)) return -EPERM;
        __asm__ volatile("wrfsbase %0" : : "r"(addr) : "memory");
        return 0;
    case ARCH_GET_FS:
        if (!uaccess_w((void *)addr, 8)) return -EFAULT;
        __asm__ volatile("rdfsbase %0" : "=r"(v));
        *(u64 *)addr = v;
        return 0;
    case ARCH_SET_GS: case ARCH_GET_GS:
        return -EINVAL; /* the host harness shares GS with its own process; unused by glibc */
    default:
        return -EINVAL;
    }
}

static i64 sys_sched_getaffinity(u64 pid, u64 len, u8 *mask)
{
    if (pid && pid != FB_PID) return -ESRCH;
    if (len < 8 || (len & 7)) return -EINVAL;
    if (!uaccess_w(mask, len)) return -EFAULT;
    memset(mask, 0, len);
    mask[0] = 1;
    return 8;
}

i64 misc_syscall(u64 nr, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, int *handled)
{
    *handled = 1;
    switch (nr) {
    case 9: return sys_mmap(a, b, c, d, (i64)e, f);
    case 10: return sys_mprotect(a, b, c);
    case 11: return sys_munmap(a, b);
    case 12: return sys_brk(a);
    case 25: return sys_mremap(a, b, c, d, e);
    case 26: return uaccess_w((void *)a, b) ? 0 : -ENOMEM; /* msync: memory is the file */
    case 27: { /* mincore: everything is resident */
        u64 n = PAGE_UP(b) / PAGE;
        if (a & (PAGE - 1)) return -EINVAL;
        if (!uaccess_w((void *)a, b)) return -ENOMEM;
        if (!uaccess_w((void *)c, n)) return -EFAULT;
        memset((void *)c, 1, n);
        return 0;
    }
    case 28: return sys_madvise(a, b, c);
    case 149: case 150: case 151: case 152: return 0; /* mlock family: nothing is ever swapped */
    case 13: return sys_rt_sigaction(a, (const struct ksigaction *)b, (struct ksigaction *)c, d);
    case 14: return sys_rt_sigprocmask(a, (const u64 *)b, (u64 *)c, d);
    case 15: return -ENOSYS; /* rt_sigreturn: signals are never delivered */
    case 127: if (!uaccess_w((void *)a, 8)) return -EFAULT; *(u64 *)a = 0; return 0; /* rt_sigpending */
    case 131: return sys_sigaltstack((const u64 *)a, (u64 *)b);
    case 34: case 130: return sched_pause(); /* no signal can ever arrive: waits while others run, else EDEADLK */
    case 37: return 0; /* alarm: no timers are delivered; report none pending */
    case 36: case 38: return -ENOSYS; /* itimers */
    case 62: /* kill */
        if ((i64)a == FB_PID || a == 0 || (i64)a == -1 || (i64)a == -FB_PID) return self_signal(b);
        return -ESRCH;
    case 200: return sched_tid_alive((i64)a) ? self_signal(b) : -ESRCH;                 /* tkill */
    case 234: return (a == FB_PID && sched_tid_alive((i64)b)) ? self_signal(c) : -ESRCH; /* tgkill */
    case 39: return FB_PID;
    case 186: return sched_tid();
    case 110: return FB_PPID;
    case 111: case 121: case 124: return FB_PID; /* getpgrp, getpgid, getsid */
    case 102: case 107: return FB_UID;
    case 104: case 108: return FB_GID;
    case 115: /* getgroups */
        if ((i64)a < 0) return -EINVAL;
        if (a == 0) return 1;
        if (!uaccess_w((void *)b, 4)) return -EFAULT;
        *(u32 *)b = FB_GID;
        return 1;
    case 118: case 120: /* getresuid/getresgid */
        if (!uaccess_w((void *)a, 4) || !uaccess_w((void *)b, 4) || !uaccess_w((void *)c, 4)) return -EFAULT;
        *(u32 *)a = *(u32 *)b = *(u32 *)c = nr == 118 ? FB_UID : FB_GID;
        return 0;
    case 105: case 106: case 113: case 114: case 116: case 117: case 119: case 122: case 123:
        return -EPERM; /* changing identity needs privileges the sandbox does not have */
    case 109: case 112: return -EPERM; /* setpgid, setsid */
    case 63: return sys_uname((char *)a);
    case 97: { /* getrlimit */
        return sys_prlimit(0, a, 0, (struct rlimit *)b);
    }
    case 160: return sys_prlimit(0, a, (const struct rlimit *)b, 0); /* setrlimit */
    case 302: return sys_prlimit(a, b, (const struct rlimit *)c, (struct rlimit *)d);
    case 98: return sys_getrusage((i64)a, (i64 *)b);
    case 99: return sys_sysinfo((struct ksysinfo *)a);
    case 100: return sys_times((i64 *)a);
    case 24: sched_yield(); return 0;
    case 204: return sys_sched_getaffinity(a, b, (u8 *)c);
    case 203: return 0; /* sched_setaffinity: there is one CPU */
    case 309: /* getcpu */
        if (a) { if (!uaccess_w((void *)a, 4)) return -EFAULT; *(u32 *)a = 0; }
        if (b) { if (!uaccess_w((void *)b, 4)) return -EFAULT; *(u32 *)b = 0; }
        return 0;
    case 140: return 20; /* getpriority: nice 0 */
    case 141: return 0;
    case 202: return sys_futex((u32 *)a, b, c, (const struct ktimespec *)d, f);
    case 158: return sys_arch_prctl(a, b);
    case 218: sched_set_clear_tid(a); return sched_tid(); /* set_tid_address */
    case 273: /* set_robust_list: recorded per thread (the list is not walked at exit) */
        if (b != 24) return -EINVAL;
        sched_set_robust(a, b);
        return 0;
    case 334: return -ENOSYS;                /* rseq: glibc runs without it */
    case 157: /* prctl */
        if (a == 15 || a == 16) return 0;    /* PR_SET_NAME / PR_GET_NAME */
        return -EINVAL;
    case 324: return a == 0 ? 0 : -EINVAL;   /* membarrier: query, nothing supported */
    case 318: return sys_getrandom((u8 *)a, b, c);
    case 228: return sys_clock_gettime(a, (struct ktimespec *)b);
    case 229: return sys_clock_getres(a, (struct ktimespec *)b);
    case 230: return sys_clock_nanosleep(a, b, (const struct ktimespec *)c, (struct ktimespec *)d);
    case 35: return sys_nanosleep((const struct ktimespec *)a, (struct ktimespec *)b);
    case 96: return sys_gettimeofday((void *)a, (void *)b);
    case 201: return sys_time((i64 *)a);
    case 227: return -EPERM; /* clock_settime */
    case 56: return sched_clone(a, b, c, d, e); /* threads only (sched.c) */
    case 435: return sys_clone3((const struct clone_args *)a, b);
    case 57: case 58: case 59: case 322: return -ENOSYS; /* fork, vfork, execve, execveat */
    case 61: case 247: return -ECHILD;                   /* wait4, waitid: there are no children */
    case 41: return -EACCES;                             /* socket: no network (socketpair is in fd.c) */
    case 42: case 43: case 46: case 47: case 49: case 50: case 288: case 299: case 307:
        return -ENOTSOCK;                                /* no fd here can be a network socket */
    case 60: sched_exit_thread((int)(a & 0xff)); /* the last thread's exit ends the program */
    case 231: ctl_exit((int)(a & 0xff));
    default: *handled = 0; return -ENOSYS;
    }
}
