/*
 * proc.c — processes: a guest process is one VM (abi.h, "Guest-to-host calls").
 * fork, vfork and clone/clone3 of a process are one FB_CALL_FORK: the host forks the
 * whole VM stopped at the call and answers each copy (the child pid in the parent, 0
 * plus the new pid in the child). The child then resets what Linux resets: one thread
 * (the caller), no pending signals, no timers. wait4/waitid ask the host
 * (FB_CALL_WAITPID) and block on it (host_wait_block, FB_WAIT_CHILD); kill to another
 * pid is FB_CALL_KILL. Identity: the first process keeps FB_PID/FB_PPID; a child's pid
 * comes from the host. A process that never forked (and is the group's first) makes no
 * calls: wait4 is ECHILD and kill to others ESRCH at once.
 */
#include "rt.h"

int g_pid = FB_PID, g_ppid = FB_PPID;
static int g_forks; /* children this process has created (exec keeps them: same process) */

#define CSIGNAL 0xffull
#define CLONE_VM 0x100ull
#define CLONE_VFORK 0x4000ull
#define CLONE_THREAD 0x10000ull
#define CLONE_PARENT_SETTID 0x100000ull
#define CLONE_CHILD_CLEARTID 0x200000ull
#define CLONE_CHILD_SETTID 0x1000000ull
#define SIGCHLD 17

/* fork, vfork (served as a fork: the parent does not wait) and clone of a process.
 * Only what glibc's fork and vfork ask for is served; CLONE_VM without CLONE_THREAD
 * (posix_spawn's child running on the parent's memory until it execs) is ENOSYS: one
 * VM cannot share its memory with another while both run. */
i64 proc_clone(u64 flags, u64 sp, u64 ptid, u64 ctid)
{
    if (flags & CLONE_THREAD) return -EINVAL;
    if (flags & CLONE_VM) return -ENOSYS;
    u64 sig = flags & CSIGNAL;
    if ((sig != SIGCHLD && sig != 0) || sp) return -EINVAL;
    if (flags & ~(CSIGNAL | CLONE_VFORK | CLONE_PARENT_SETTID | CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID))
        return -EINVAL;
    if ((flags & CLONE_PARENT_SETTID) && !uaccess_w((void *)ptid, 4)) return -EFAULT;
    if ((flags & (CLONE_CHILD_SETTID | CLONE_CHILD_CLEARTID)) && !uaccess_w((void *)ctid, 4)) return -EFAULT;
    int e = hostfd_prepare_fork();
    if (!e) e = shm_prepare_fork();
    if (e) return e;
    struct fb_call c = { .nr = FB_CALL_FORK, .arg = { (flags & CLONE_VFORK) ? FB_FORK_VFORK : 0, 0, 0, 0, 0, 0 } };
    struct fb_answer a;
    i64 r = host_call(&c, 0, 0, &a, 0, 0);
    if (r < 0) return r;            /* -EAGAIN (the group's caps), -ENOSYS (no processes here) */
    if (r > 0) {
        if (r >= (1 << 22)) return -EIO; /* not a pid: the host broke the protocol */
        g_forks++;
        if (flags & CLONE_PARENT_SETTID) *(u32 *)ptid = (u32)r;
        return r;
    }
    /* the child: a copy of this VM, stopped at the call */
    if (a.val[0] <= FB_PID || a.val[0] >= (1 << 22) - FB_PID_STRIDE || a.val[1] <= 0 || a.val[1] >= (1 << 22))
        rt_panic("fork: the host answered the child with a bad pid");
    g_pid = (int)a.val[0];
    g_ppid = (int)a.val[1];
    g_forks = 0;
    g_host_signals = a.signals;     /* only what was sent to the child, none of the parent's */
    sched_fork_child(g_pid, (flags & CLONE_CHILD_CLEARTID) ? ctid : 0);
    sig_fork_child();
    if (flags & CLONE_CHILD_SETTID) *(u32 *)ctid = (u32)g_pid;
    return 0;
}

/* ---- wait ---- */
#define WNOHANG 1
#define WUNTRACED 2
#define WSTOPPED 2
#define WEXITED 4
#define WCONTINUED 8
#define WNOWAIT 0x01000000
#define WNOTHREAD 0x20000000
#define WALL 0x40000000
#define WCLONE 0x80000000u

/* one child's end, or 0 (WNOHANG, none yet), or -errno. pid <= 0: any child (the
 * processes of a group are one process group). Blocks until a child ends, or a
 * signal is to be delivered (EINTR; SA_RESTART restarts the call). */
static i64 wait_child(i64 pid, u32 opts, int *status)
{
    if (!g_forks) return -ECHILD;   /* every child of ours came from a fork of ours */
    for (;;) {
        struct fb_call c = { .nr = FB_CALL_WAITPID, .arg = { pid < 0 ? 0 : pid, opts & WNOWAIT, 0, 0, 0, 0 } };
        struct fb_answer a;
        i64 r = host_call(&c, 0, 0, &a, 0, 0);
        if (r == -ENOSYS) return -ECHILD; /* a host without processes: there are none */
        if (r < 0) return r;
        if (r > 0) {
            if (r >= (1 << 22)) return -EIO;
            *status = (int)a.val[0];
            return r;
        }
        if (opts & WNOHANG) return 0;
        int b = host_wait_block(0, 0, 0, 0, FB_WAIT_CHILD, 0);
        if (b == -EINTR) return -EINTR;
        if (b < 0 && b != -ETIMEDOUT) return b;
    }
}

static i64 sys_wait4(i64 pid, int *wstatus, u64 opts, void *ru)
{
    if (opts & ~(u64)(WNOHANG | WUNTRACED | WCONTINUED | WNOTHREAD | WALL | WCLONE)) return -EINVAL;
    if (wstatus && !uaccess_w(wstatus, 4)) return -EFAULT;
    if (ru && !uaccess_w(ru, 144)) return -EFAULT;
    if (pid == INT32_MIN) return -ESRCH;
    if (pid < -1 && pid != -FB_PID) return -ECHILD; /* another process group: there is one */
    int st = 0;
    i64 r = wait_child(pid, (u32)opts, &st);
    if (r > 0) {
        if (wstatus) *wstatus = st;
        if (ru) memset(ru, 0, 144); /* a child's usage is not reported */
    }
    return r;
}

#define P_ALL 0
#define P_PID 1
#define P_PGID 2
#define CLD_EXITED 1
#define CLD_KILLED 2
#define CLD_DUMPED 3
static i64 sys_waitid(u64 idtype, u64 id, u8 *info, u64 opts, void *ru)
{
    if (opts & ~(u64)(WNOHANG | WSTOPPED | WEXITED | WCONTINUED | WNOWAIT | WNOTHREAD | WALL | WCLONE)) return -EINVAL;
    if (!(opts & (WEXITED | WSTOPPED | WCONTINUED))) return -EINVAL;
    if (info && !uaccess_w(info, 128)) return -EFAULT;
    if (ru && !uaccess_w(ru, 144)) return -EFAULT;
    i64 pid;
    if (idtype == P_ALL) pid = -1;
    else if (idtype == P_PID) { if ((i64)id <= 0 || id > 0x7fffffff) return -EINVAL; pid = (i64)id; }
    else if (idtype == P_PGID) { if ((i64)id < 0 || id > 0x7fffffff) return -EINVAL; if (id && id != FB_PID) return -ECHILD; pid = -1; }
    else return -EINVAL;             /* P_PIDFD: there are no pidfds */
    int st = 0;
    i64 r;
    if (opts & WEXITED) r = wait_child(pid, (u32)opts, &st);
    else {
        /* only stops or continues asked for: no process here ever stops */
        if (!g_forks) return -ECHILD;
        if (opts & WNOHANG) r = 0;
        else for (;;) { int b = host_wait_block(0, 0, 0, 0, FB_WAIT_CHILD, 0); if (b == -EINTR) return -EINTR; if (b < 0 && b != -ETIMEDOUT) return b; }
    }
    if (r < 0) return r;
    if (info) {
        memset(info, 0, 128);       /* WNOHANG with nothing to report: si_pid 0 */
        if (r > 0) {
            i32 *si = (i32 *)info;
            si[0] = SIGCHLD;
            if ((st & 0x7f) == 0) { si[2] = CLD_EXITED; si[6] = (st >> 8) & 0xff; }
            else { si[2] = (st & 0x80) ? CLD_DUMPED : CLD_KILLED; si[6] = st & 0x7f; }
            si[4] = (i32)r;
            si[5] = FB_UID;
        }
    }
    if (r > 0 && ru) memset(ru, 0, 144);
    return 0;
}

/* another process of the group may exist: its signals come in host answers */
int proc_in_group(void) { return g_pid != FB_PID || g_forks; }

/* ---- kill to other processes (signal.c handles our own pid) ---- */
/* pid > 0 another process, 0 or -1 every other process of the group: 0, -ESRCH */
i64 proc_kill(i64 pid, int sig)
{
    if (g_pid == FB_PID && !g_forks) return -ESRCH; /* the group's first process, alone */
    i64 r = host_call0(FB_CALL_KILL, pid, sig, 0, 0);
    return r == -ENOSYS ? -ESRCH : r;
}

/* ---- the syscalls (listed in syscall.c) ---- */
SYSCALL(fork) { return proc_clone(SIGCHLD, 0, 0, 0); }
SYSCALL(vfork) { return proc_clone(SIGCHLD | CLONE_VFORK, 0, 0, 0); }
SYSCALL(wait4) { return sys_wait4((i64)(i32)a, (int *)b, c, (void *)d); }
SYSCALL(waitid) { return sys_waitid(a, b, (u8 *)c, d, (void *)e); }
