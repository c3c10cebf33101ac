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
#include "fdtab.h"

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
    sched_only_caller(g_pid, (flags & CLONE_CHILD_CLEARTID) ? ctid : 0);
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

/* ---- execve ---- */
#define ARG_STRLEN_MAX (128u << 10)   /* one string (Linux's MAX_ARG_STRLEN) */
#define ARGS_MAX (2u << 20)           /* all strings and their pointers: a quarter of the stack */
#define STACK_SIZE (8ull << 20)
extern u64 g_ram_size;

/* argv/envp copied into the runtime: one kmalloc block of pointers then strings */
struct strv { char **v; int n; u64 bytes; };
static int copy_strv(const char *const *u, struct strv *out, u64 *budget, const char *prepend[], int npre)
{
    int n = 0;
    u64 bytes = 0;
    for (int k = 0; k < npre; k++) bytes += strlen(prepend[k]) + 1;
    if (u) for (;; n++) {
        if (!uaccess_ok(u + n, 8)) return -EFAULT;
        const char *p = u[n];
        if (!p) break;
        int l = ustr_ok(p, ARG_STRLEN_MAX);
        if (l == -ENAMETOOLONG) return -E2BIG;
        if (l < 0) return l;
        bytes += (u64)l + 1;
        if (bytes + 8ull * (n + npre + 1) > *budget) return -E2BIG;
    }
    u64 need = 8ull * (n + npre + 1) + bytes;
    if (need > *budget) return -E2BIG;
    *budget -= need;
    char **v = kmalloc(need);
    if (!v) return -ENOMEM;
    char *d = (char *)(v + n + npre + 1);
    int k = 0;
    for (; k < npre; k++) { u64 l = strlen(prepend[k]) + 1; memcpy(d, prepend[k], l); v[k] = d; d += l; }
    for (int i = 0; i < n; i++, k++) { u64 l = strlen(u[i]) + 1; memcpy(d, u[i], l); v[k] = d; d += l; }
    v[k] = 0;
    out->v = v;
    out->n = n + npre;
    out->bytes = bytes;
    return 0;
}

/* what execve may run: a regular file with an execute bit; an ELF only from the image */
static int exec_file(int dirfd, const char *path, int follow, char *canon, const u8 **data, u64 *size, int *img)
{
    struct vref r;
    int e = vfs_resolve(dirfd, path, follow, canon, &r);
    if (e) return e;
    u32 mode;
    if ((e = vfs_mode(&r, &mode))) return e;
    if ((mode & S_IFMT) == S_IFLNK) return -ELOOP;  /* AT_SYMLINK_NOFOLLOW on a link */
    if ((mode & S_IFMT) != S_IFREG || !(mode & 0111)) return -EACCES;
    if (r.kind != VK_IMG && r.kind != VK_OVL) return -EACCES;
    if ((e = vfs_file_data(&r, data, size))) return e;
    *img = r.kind == VK_IMG;
    return 0;
}

/* a `#!` line: the interpreter and at most one argument (the rest of the line) */
static int parse_shebang(const u8 *d, u64 size, char *interp, u64 icap, char *arg, u64 acap)
{
    u64 end = size < 256 ? size : 256, i = 2, n = 0;
    u64 nl = 2;
    while (nl < end && d[nl] != '\n') nl++;
    if (nl == end && size > 256) return -ENOEXEC;   /* longer than Linux's 256 bytes */
    while (i < nl && (d[i] == ' ' || d[i] == '\t')) i++;
    while (i < nl && d[i] != ' ' && d[i] != '\t' && n + 1 < icap) interp[n++] = (char)d[i++];
    interp[n] = 0;
    if (!n) return -ENOEXEC;
    while (i < nl && (d[i] == ' ' || d[i] == '\t')) i++;
    u64 j = nl;
    while (j > i && (d[j - 1] == ' ' || d[j - 1] == '\t' || d[j - 1] == '\r')) j--;
    if (j - i >= acap) return -ENOEXEC;
    memcpy(arg, d + i, j - i);
    arg[j - i] = 0;
    return 0;
}

/* clean FPU/SSE/AVX state for the new program: the init state of every component, MXCSR
 * and the x87 control word at their reset values */
static void fpu_reset(void)
{
    static u8 area[4096] __attribute__((aligned(64)));
    memset(area, 0, sizeof area);
    *(u16 *)area = 0x37f;             /* FCW */
    *(u32 *)(area + 24) = 0x1f80;     /* MXCSR */
    u32 a = 1, b, c = 0, d;
    __asm__ volatile("cpuid" : "+a"(a), "=b"(b), "+c"(c), "=d"(d));
    if (c & (1u << 27)) {             /* OSXSAVE: XSTATE_BV = 0 puts every component in its init state */
        u32 lo, hi;
        __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
        __asm__ volatile("xrstor64 %0" : : "m"(*(u8 (*)[4096])area), "a"(lo), "d"(hi) : "memory");
    } else {
        __asm__ volatile("fxrstor64 %0" : : "m"(*(u8 (*)[512])area) : "memory");
    }
}

static i64 sys_execveat(int dirfd, const char *upath_, const char *const *uargv, const char *const *uenvp, u64 flags)
{
    if (flags & ~(u64)(AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)) return -EINVAL;
    static char path[PATH_MAX_RT], canon[PATH_MAX_RT], icanon[PATH_MAX_RT], interp[256], iarg[256];
    int l = upath(upath_, path);
    if (l < 0) return l;
    if (!l) {
        if (!(flags & AT_EMPTY_PATH)) return -ENOENT;
        struct file *f = fget(dirfd);
        if (!f) return -EBADF;
        if (!f->path) return -EACCES;  /* only descriptors with a path (O_PATH, directories) name a file */
        strcpy_n(path, f->path, sizeof path);
        dirfd = AT_FDCWD;
    }
    const u8 *d;
    u64 size;
    int img, e = exec_file(dirfd, path, !(flags & AT_SYMLINK_NOFOLLOW), canon, &d, &size, &img);
    if (e) return e;
    const char *pre[3];
    int npre = 0;
    const char *prog_path = canon;
    if (size >= 2 && d[0] == '#' && d[1] == '!') {
        /* a script, one level: its interpreter must be a program of the image */
        if ((e = parse_shebang(d, size, interp, sizeof interp, iarg, sizeof iarg))) return e;
        const u8 *d2;
        u64 s2;
        int img2;
        if ((e = exec_file(AT_FDCWD, interp, 1, icanon, &d2, &s2, &img2))) return e == -EACCES ? -EACCES : e;
        if (s2 >= 2 && d2[0] == '#' && d2[1] == '!') return -ELOOP; /* scripts run scripts: one level only */
        if (!img2) return -EACCES;
        pre[npre++] = interp;
        if (iarg[0]) pre[npre++] = iarg;
        pre[npre++] = path;            /* the script as execve named it */
        prog_path = icanon;
    } else if (!img) return -EACCES;  /* a program not in the image was not rewritten: it cannot run here */
    static struct loaded prog, ip;
    if ((e = elf_probe(prog_path, 0, &prog))) return e;
    if (prog.interp[0] && (e = elf_probe(prog.interp, 1, &ip))) return e;
    /* the arguments: a script's argv[0] is replaced by interpreter, argument, script */
    u64 budget = ARGS_MAX;
    struct strv av, ev;
    int skip = npre && uargv && uaccess_ok(uargv, 8) && uargv[0];
    if ((e = copy_strv(skip ? uargv + 1 : uargv, &av, &budget, pre, npre))) return e;
    if ((e = copy_strv(uenvp, &ev, &budget, 0, 0))) { kfree(av.v); return e; }
    if (!av.n) {                        /* no argv at all: Linux passes one empty string */
        kfree(av.v);
        const char *empty[1] = { "" };
        if ((e = copy_strv(0, &av, &budget, empty, 1))) { kfree(ev.v); return e; }
    }
    static char exe[PATH_MAX_RT];
    strcpy_n(exe, prog_path, sizeof exe);

    /* The point of no return: the old program goes. */
    shm_exec_cleanup();                 /* shared mappings written back, host-shared ones unshared, all dropped */
    fd_exec_close();
    sig_exec_reset();
    sched_only_caller(g_pid, 0);
    mm_exec_reset();
    if (mm_reserve(g_ram_size - STACK_SIZE, STACK_SIZE) || elf_load(exe, 0, &prog)) ctl_exit_signal(11);
    mm_set_brk_start(prog.end);
    u64 entry = prog.entry, base = 0;
    if (prog.interp[0]) {
        if (elf_load(prog.interp, 1, &ip)) ctl_exit_signal(11);
        entry = ip.entry;
        base = ip.base;
    }
    strcpy_n(g_exe_path, exe, sizeof g_exe_path);
    u64 sp = start_stack(g_ram_size - 64, av.n, (const char *const *)av.v, ev.n, (const char *const *)ev.v, &prog,
                         base, path);
    kfree(av.v);
    kfree(ev.v);
    fpu_reset();
    __asm__ volatile("wrfsbase %0" : : "r"(0ull) : "memory");
    fb_enter_program(entry, sp);
}

/* ---- the syscalls (listed in syscall.c) ---- */
SYSCALL(execve) { return sys_execveat(AT_FDCWD, (const char *)a, (const char *const *)b, (const char *const *)c, 0); }
SYSCALL(execveat) { return sys_execveat((int)a, (const char *)b, (const char *const *)c, (const char *const *)d, e); }
SYSCALL(fork) { return proc_clone(SIGCHLD, 0, 0, 0); }
SYSCALL(vfork) { return proc_clone(SIGCHLD | CLONE_VFORK, 0, 0, 0); }
SYSCALL(wait4) { return sys_wait4((i64)(i32)a, (int *)b, c, (void *)d); }
SYSCALL(waitid) { return sys_waitid(a, b, (u8 *)c, d, (void *)e); }
