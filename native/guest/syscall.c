/*
 * syscall.c — the one syscall table (number -> handler) and the dispatcher
 * the entry stub calls: counts every call (per number, for debugging,
 * published as a total in the mailbox) and calls the handler. Handlers are
 * defined with SYSCALL(name) in the file that owns them. A number not listed
 * is ENOSYS: rseq among them. Signals are delivered as a
 * call returns (signal.c).
 */
#include "rt.h"

HOT u32 g_sys_count[512];
HOT u64 g_sys_total;

#define SYSCALLS(X) \
    /* fd.c: any descriptor */ \
    X(0, read) X(1, write) X(3, close) X(5, fstat) X(8, lseek) X(16, ioctl) X(17, pread64) X(18, pwrite64) \
    X(19, readv) X(20, writev) X(295, preadv) X(296, pwritev) X(32, dup) X(33, dup2) X(292, dup3) X(72, fcntl) \
    X(73, fd_ok) X(74, fd_ok) X(75, fd_ok) X(221, fd_ok) X(95, umask) X(436, close_range) \
    /* file.c: open */ \
    X(2, open) X(85, creat) X(257, openat) X(437, openat2) \
    /* fs.c: paths */ \
    X(4, stat) X(6, lstat) X(262, newfstatat) X(332, statx) X(21, access) X(269, faccessat) X(439, faccessat2) \
    X(76, truncate) X(77, ftruncate) X(217, getdents64) X(79, getcwd) X(80, chdir) X(81, fchdir) \
    X(82, rename) X(264, renameat) X(316, renameat2) X(83, mkdir) X(258, mkdirat) X(84, rmdir) \
    X(86, link) X(265, linkat) X(87, unlink) X(263, unlinkat) X(88, symlink) X(266, symlinkat) \
    X(89, readlink) X(267, readlinkat) X(90, chmod) X(268, fchmodat) X(91, fchmod) \
    X(92, chown) X(93, fchown) X(94, lchown) X(260, fchownat) X(280, utimensat) \
    X(137, statfs) X(138, fstatfs) X(133, mknod) X(259, mknodat) \
    X(188, setxattr) X(189, setxattr) X(190, setxattr) X(191, getxattr) X(192, lgetxattr) X(194, listxattr) \
    X(195, llistxattr) X(197, removexattr) X(198, lremovexattr) X(193, fgetxattr) X(196, flistxattr) X(199, fgetxattr) \
    /* ipc.c: pipes, sockets, readiness */ \
    X(7, poll) X(271, ppoll) X(22, pipe) X(293, pipe2) X(23, select) X(270, pselect6) X(53, socketpair) \
    X(44, sendto) X(45, recvfrom) X(48, shutdown) X(51, getsockname) X(52, getsockname) X(54, setsockopt) \
    X(55, getsockopt) X(213, epoll_create) X(291, epoll_create1) X(233, epoll_ctl) X(232, epoll_wait) \
    X(281, epoll_wait) X(441, epoll_pwait2) \
    /* mm.c */ \
    X(9, mmap) X(10, mprotect) X(11, munmap) X(12, brk) X(25, mremap) X(26, msync) X(27, mincore) X(28, madvise) \
    X(149, mlock) X(150, mlock) X(151, mlock) X(152, mlock) \
    /* time.c, random.c */ \
    X(228, clock_gettime) X(229, clock_getres) X(230, clock_nanosleep) X(35, nanosleep) X(96, gettimeofday) \
    X(201, time) X(227, clock_settime) X(318, getrandom) \
    /* signal.c; sys_misc.c: identity, limits, threads */ \
    X(13, rt_sigaction) X(14, rt_sigprocmask) X(127, rt_sigpending) X(131, sigaltstack) X(34, pause) \
    X(130, rt_sigsuspend) X(37, alarm) X(36, getitimer) X(38, setitimer) X(15, rt_sigreturn) \
    X(62, kill) X(200, tkill) X(234, tgkill) \
    X(39, getpid) X(186, gettid) X(110, getppid) X(111, getpgrp) X(121, getpgrp) X(124, getpgrp) \
    X(102, getuid) X(107, getuid) X(104, getgid) X(108, getgid) X(115, getgroups) X(118, getresuid) \
    X(120, getresgid) X(105, setid) X(106, setid) X(113, setid) X(114, setid) X(116, setid) X(117, setid) \
    X(119, setid) X(122, setid) X(123, setid) X(109, setid) X(112, setid) \
    X(63, uname) X(97, getrlimit) X(160, setrlimit) X(302, prlimit64) X(98, getrusage) X(99, sysinfo) \
    X(100, times) X(24, sched_yield) X(204, sched_getaffinity) X(203, sched_setaffinity) X(309, getcpu) \
    X(140, getpriority) X(141, setpriority) X(202, futex) X(158, arch_prctl) X(218, set_tid_address) \
    X(273, set_robust_list) X(157, prctl) X(324, membarrier) X(56, clone) X(435, clone3) \
    X(41, socket) X(42, netcall) X(43, netcall) X(46, netcall) X(47, netcall) \
    X(49, netcall) X(50, netcall) X(288, netcall) X(299, netcall) X(307, netcall) X(60, exit) X(231, exit_group) \
    /* proc.c: processes */ \
    X(57, fork) X(58, vfork) X(59, execve) X(322, execveat) X(61, wait4) X(247, waitid) \
    /* eventfd.c */ \
    X(284, eventfd) X(290, eventfd2) X(330, pkey_alloc) X(125, capget) X(126, capset) \
    /* refused with a fixed answer */ \
    X(285, eopnotsupp) X(40, einval) X(326, exdev)

/* fallocate; sendfile (not between our files); copy_file_range (callers fall back to read/write) */
static SYSCALL(eopnotsupp) { return -EOPNOTSUPP; }
static SYSCALL(einval) { return -EINVAL; }
static SYSCALL(exdev) { return -EXDEV; }

#define DECLARE(n, name) SYSCALL(name);
SYSCALLS(DECLARE)

#define NSYS 448
typedef i64 (*syscall_fn)(u64, u64, u64, u64, u64, u64);
#define ENTRY(n, name) [n] = sc_##name,
static const syscall_fn g_systab[NSYS] = { SYSCALLS(ENTRY) };

i64 rt_syscall(u64 nr, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f)
{
    g_sys_total++;
    g_sys_count[nr < 512 ? nr : 511]++;
    i64 r = nr < NSYS && g_systab[nr] ? g_systab[nr](a, b, c, d, e, f) : -ENOSYS;
    if (g_sig_work) r = sig_exit(nr, r);
    return r;
}
