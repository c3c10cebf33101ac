/*
 * sys_misc.c — identity, limits, threads and futex (over sched.c), clone/clone3
 * (a thread here, a process in proc.c), uname, sysinfo, rusage (signals: signal.c).
 * Identity: pid g_pid (2 in the group's first process), ppid g_ppid, uid/gid 1000,
 * thread ids from pid + 1 (see docs/guest-runtime.md).
 */
#include "rt.h"

extern u64 g_ram_size;

struct clone_args { u64 flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls; };
static i64 sys_clone3(const struct clone_args *ca, u64 size)
{
    if (size < 64 || size > 4096) return -EINVAL;
    if (!uaccess_ok(ca, size)) return -EFAULT;
    for (u64 i = sizeof *ca; i < size; i++) /* newer fields (set_tid, cgroup) must be unused */
        if (((const u8 *)ca)[i]) return -EINVAL;
    if (ca->flags & 0xff) return -EINVAL;   /* clone3 has exit_signal for that */
    if (!(ca->flags & 0x10000)) {          /* a new process (proc.c) */
        if (ca->flags & 0x100) return -ENOSYS; /* CLONE_VM: see proc_clone */
        if (ca->exit_signal > 64 || (ca->flags >> 32)) return -EINVAL;
        if (ca->stack || ca->stack_size || ca->tls) return -EINVAL;
        return proc_clone(ca->flags | ca->exit_signal, 0, ca->parent_tid, ca->child_tid);
    }
    if (ca->exit_signal || (ca->flags >> 32)) return -EINVAL; /* pidfd is only read with CLONE_PIDFD */
    if (ca->stack_size && ca->stack + ca->stack_size < ca->stack) return -EINVAL;
    return sched_clone(ca->flags, ca->stack + ca->stack_size, ca->parent_tid, ca->child_tid, ca->tls);
}

struct rlimit { u64 cur, max; };
static i64 sys_prlimit(u64 pid, u64 res, const struct rlimit *nw, struct rlimit *old)
{
    if (pid && pid != (u64)g_pid) return -ESRCH;
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
    if (pid && pid != (u64)g_pid && !sched_tid_alive((i64)pid)) return -ESRCH;
    if (len < 8 || (len & 7)) return -EINVAL;
    if (!uaccess_w(mask, len)) return -EFAULT;
    memset(mask, 0, len);
    mask[0] = 1;
    return 8;
}

/* ---- the syscalls (listed in syscall.c) ---- */
SYSCALL(getpid) { return g_pid; }
SYSCALL(gettid) { return sched_tid(); }
SYSCALL(getppid) { return g_ppid; }
SYSCALL(getpgrp) { return FB_PID; } /* getpgrp, getpgid, getsid: a group's processes are one process group and
                                       session, led by its first process */
SYSCALL(getuid) { return FB_UID; }
SYSCALL(getgid) { return FB_GID; }
SYSCALL(getgroups)
{
    if ((i64)a < 0) return -EINVAL;
    if (a == 0) return 1;
    if (!uaccess_w((void *)b, 4)) return -EFAULT;
    *(u32 *)b = FB_GID;
    return 1;
}
static i64 getres(u64 a, u64 b, u64 c, u32 id)
{
    if (!uaccess_w((void *)a, 4) || !uaccess_w((void *)b, 4) || !uaccess_w((void *)c, 4)) return -EFAULT;
    *(u32 *)a = *(u32 *)b = *(u32 *)c = id;
    return 0;
}
SYSCALL(getresuid) { return getres(a, b, c, FB_UID); }
SYSCALL(getresgid) { return getres(a, b, c, FB_GID); }
SYSCALL(setid) { return -EPERM; } /* changing identity, setpgid, setsid: privileges the sandbox does not have */
SYSCALL(uname) { return sys_uname((char *)a); }
SYSCALL(getrlimit) { return sys_prlimit(0, a, 0, (struct rlimit *)b); }
SYSCALL(setrlimit) { return sys_prlimit(0, a, (const struct rlimit *)b, 0); }
SYSCALL(prlimit64) { return sys_prlimit(a, b, (const struct rlimit *)c, (struct rlimit *)d); }
SYSCALL(getrusage) { return sys_getrusage((i64)a, (i64 *)b); }
SYSCALL(sysinfo) { return sys_sysinfo((struct ksysinfo *)a); }
SYSCALL(times) { return sys_times((i64 *)a); }
SYSCALL(sched_yield) { sched_yield(); return 0; }
SYSCALL(sched_getaffinity) { return sys_sched_getaffinity(a, b, (u8 *)c); }
SYSCALL(sched_setaffinity) /* there is one CPU: a mask without it is EINVAL, as Linux */
{
    if (a && a != (u64)g_pid && !sched_tid_alive((i64)a)) return -ESRCH;
    if (!b) return -EINVAL;
    if (!uaccess_ok((void *)c, b)) return -EFAULT;
    return *(const u8 *)c & 1 ? 0 : -EINVAL;
}
SYSCALL(getcpu)
{
    if (a) { if (!uaccess_w((void *)a, 4)) return -EFAULT; *(u32 *)a = 0; }
    if (b) { if (!uaccess_w((void *)b, 4)) return -EFAULT; *(u32 *)b = 0; }
    return 0;
}
/* the nice value: one for the process (there is no other to ask about); raising it
 * is allowed, lowering it needs privilege (RLIMIT_NICE is 0), as for a user on Linux */
static int g_nice;
static i64 prio_target(u64 which, u64 who)
{
    if (which > 2) return -EINVAL;                  /* PRIO_PROCESS, PRIO_PGRP, PRIO_USER */
    u64 self = which == 2 ? FB_UID : (u64)g_pid;
    if (who && who != self && !(which == 0 && sched_tid_alive((i64)who))) return -ESRCH;
    return 0;
}
SYSCALL(getpriority) { i64 r = prio_target(a, b); return r ? r : 20 - g_nice; } /* the kernel's 20 - nice */
SYSCALL(setpriority)
{
    i64 r = prio_target(a, b);
    if (r) return r;
    int n = (int)c < -20 ? -20 : (int)c > 19 ? 19 : (int)c;
    if (n < g_nice) return -EACCES;
    g_nice = n;
    return 0;
}
SYSCALL(arch_prctl) { return sys_arch_prctl(a, b); }
SYSCALL(set_tid_address) { sched_set_clear_tid(a); return sched_tid(); }
SYSCALL(set_robust_list) /* recorded per thread (the list is not walked at exit) */
{
    if (b != 24) return -EINVAL;
    sched_set_robust(a, b);
    return 0;
}
SYSCALL(prctl) { return a == 15 || a == 16 ? 0 : -EINVAL; } /* PR_SET_NAME / PR_GET_NAME */
SYSCALL(membarrier) { return a == 0 ? 0 : -EINVAL; }       /* query, nothing supported */
SYSCALL(clone) { return (a & 0x10000) ? sched_clone(a, b, c, d, e) : proc_clone(a, b, c, d); } /* thread, process */
SYSCALL(clone3) { return sys_clone3((const struct clone_args *)a, b); }
SYSCALL(socket) { return -EACCES; }                          /* no network (socketpair is in ipc.c) */
SYSCALL(netcall) { return -ENOTSOCK; }                       /* no fd here can be a network socket */
SYSCALL(exit) { sched_exit_thread((int)(a & 0xff)); }        /* the last thread's exit ends the program */
SYSCALL(exit_group) { ctl_exit((int)(a & 0xff)); }
