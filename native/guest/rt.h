/*
 * rt.h — shared declarations of the guest runtime ("libOS"): the Linux ABI
 * structures it speaks, errno values, and the interfaces between its parts.
 * The runtime is freestanding and runs one thread at a time (the program's
 * threads switch only inside it, sched.c); all state is in guest RAM (so a
 * VM fork clones it). Every pointer from the program is checked with
 * uaccess_ok() before use.
 */
#ifndef FB_RT_H
#define FB_RT_H

#include <stdint.h>
#include <stddef.h>
#include "abi.h"
#include "image.h"

typedef int64_t i64;
typedef uint64_t u64;
typedef uint32_t u32;
typedef uint16_t u16;
typedef uint8_t u8;
typedef int32_t i32;

/* errno */
#define EPERM 1
#define ENOENT 2
#define ESRCH 3
#define EINTR 4
#define EIO 5
#define ENXIO 6
#define E2BIG 7
#define ENOEXEC 8
#define EBADF 9
#define ECHILD 10
#define EAGAIN 11
#define ENOMEM 12
#define EACCES 13
#define EFAULT 14
#define EBUSY 16
#define EEXIST 17
#define EXDEV 18
#define ENODEV 19
#define ENOTDIR 20
#define EISDIR 21
#define EINVAL 22
#define ENFILE 23
#define EMFILE 24
#define ENOTTY 25
#define EFBIG 27
#define ENOSPC 28
#define ESPIPE 29
#define EROFS 30
#define EMLINK 31
#define EPIPE 32
#define ERANGE 34
#define EDEADLK 35
#define ENAMETOOLONG 36
#define ENOSYS 38
#define ENOTEMPTY 39
#define ELOOP 40
#define ENODATA 61
#define EOVERFLOW 75
#define ENOTSOCK 88
#define ENOPROTOOPT 92
#define EISCONN 106
#define EOPNOTSUPP 95
#define EAFNOSUPPORT 97
#define ETIMEDOUT 110

/* open flags */
#define O_ACCMODE 3
#define O_RDONLY 0
#define O_WRONLY 1
#define O_RDWR 2
#define O_CREAT 0100
#define O_EXCL 0200
#define O_NOCTTY 0400
#define O_TRUNC 01000
#define O_APPEND 02000
#define O_NONBLOCK 04000
#define O_DIRECTORY 0200000
#define O_NOFOLLOW 0400000
#define O_CLOEXEC 02000000
#define O_PATH 010000000
#define O_TMPFILE 020200000
#define AT_FDCWD (-100)
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define AT_SYMLINK_FOLLOW 0x400
#define AT_EMPTY_PATH 0x1000

#define S_IFMT 0170000u
#define S_IFDIR 0040000u
#define S_IFREG 0100000u
#define S_IFLNK 0120000u
#define S_IFCHR 0020000u
#define S_IFIFO 0010000u

/* state written on every request shares one page (CoW copies after a fork cost) */
#define HOT __attribute__((section(".data.hot")))

#define PAGE 4096ull
#define PAGE_UP(x) (((x) + PAGE - 1) & ~(PAGE - 1))
#define PAGE_DOWN(x) ((x) & ~(PAGE - 1))
#define PATH_MAX_RT 1024
#define NFD 1024

struct kstat {
    u64 dev, ino, nlink;
    u32 mode, uid, gid, pad0;
    u64 rdev;
    i64 size, blksize, blocks;
    i64 atime, atime_ns, mtime, mtime_ns, ctime, ctime_ns;
    i64 unused[3];
};
_Static_assert(sizeof(struct kstat) == 144, "struct stat");

struct ktimespec { i64 sec, nsec; };

/* ---- string.c ---- */
void *memcpy(void *d, const void *s, size_t n);
void *memmove(void *d, const void *s, size_t n);
void *memset(void *d, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
size_t strnlen(const char *s, size_t max);
int strcmp(const char *a, const char *b);
int strncmp(const char *a, const char *b, size_t n);
char *strcpy_n(char *d, const char *s, size_t cap); /* bounded, always NUL-terminates */
int fmt_u64(char *buf, u64 v);                     /* decimal; returns length */
int fmt_hex(char *buf, u64 v, int width);
/* tiny bounded formatter: %s %d %u %x %lx %lu %ld %c */
int rt_snprintf(char *buf, size_t cap, const char *fmt, ...);
void zero_pages(void *p, u64 len); /* writes only the non-zero words (keeps CoW pages clean) */

/* ---- start.c ---- */
struct loaded;
extern const struct fb_boot_info *g_boot;
extern char g_exe_path[PATH_MAX_RT];
void rt_panic(const char *msg) __attribute__((noreturn));
/* the initial stack below `top` (argv, envp, auxv, as Linux builds it); returns rsp */
u64 start_stack(u64 top, int argc, const char *const *argv, int envc, const char *const *envp,
                const struct loaded *prog, u64 interp_base, const char *execfn);
void fb_enter_program(u64 entry, u64 sp) __attribute__((noreturn)); /* entry.S: clean registers */

/* ---- mm.c ---- */
void mm_init(u64 ram_size);
int mm_reserve(u64 addr, u64 len);            /* mark fixed range used (boot) */
u64 mm_alloc_top(u64 len, int *err);          /* top-down free range; 0 on failure */
void *kmalloc(u64 n);
void *kzalloc(u64 n);
void kfree(void *p);
void *krealloc(void *p, u64 n);
int uaccess_ok(const void *p, u64 len);       /* readable program memory? */
int uaccess_w(const void *p, u64 len);        /* writable program memory? */
int ustr_ok(const char *s, u64 max);          /* NUL within max, all mapped; len or -err */
void mm_set_brk_start(u64 a);
u64 mm_used_bytes(void);
u64 mm_peak_bytes(void);
void mm_peak_reset(void);
void mm_set_limit(u64 bytes);
i64 sys_brk(u64 a);
i64 sys_mmap(u64 addr, u64 len, u64 prot, u64 flags, i64 fd, u64 off);
i64 sys_munmap(u64 addr, u64 len);
i64 sys_mprotect(u64 addr, u64 len, u64 prot);
i64 sys_mremap(u64 old, u64 olen, u64 nlen, u64 flags, u64 naddr);
i64 sys_madvise(u64 addr, u64 len, u64 adv);
int mm_maps_text(char *buf, u64 cap);
void mm_exec_reset(void);                     /* execve: free every program page (kmalloc's stay) */
int mm_runtime_holds(u64 addr, u64 len);      /* a kmalloc page in the range? */
int mm_range_free(u64 addr, u64 len);

/* ---- shmap.c: shared mappings (writable file ones written back to the file),
 * host shared memory across a fork ---- */
struct onode;
extern u32 g_shmap_n, g_shm_host_n;
int shmap_check(i64 fd);
int shmap_add(i64 fd, u64 addr, u64 len, u64 off);
int shmap_anon_check(void);
void shmap_add_anon(u64 addr, u64 len);
void shmap_sync(u64 addr, u64 len);
void shmap_sync_all(void);
int shmap_unmap(u64 addr, u64 len);
int shmap_remap_check(u64 old, u64 olen, u64 nlen, u64 flags);
void shmap_remapped(u64 old, u64 olen, u64 nb, u64 nlen);
void shmap_flush_node(struct onode *o);
void shmap_refresh_node(struct onode *o, u64 off, u64 n);
int shm_prepare_fork(void);      /* before FB_CALL_FORK: every record host shared (0 or -errno) */
void shm_exec_cleanup(void);     /* at execve: written back, unshared, every record dropped */
void shm_exit(void);             /* at exit: written back, host-shared ranges unshared */
int shm_overlaps_host(u64 a, u64 len);
int shm_futex_ent(const u32 *uaddr, u32 val, struct fb_futex_ent *fe);
i64 shm_futex_wake(const u32 *uaddr, u32 bitset, int n, int local);

/* ---- vfs.c ---- */
enum { VK_NONE, VK_IMG, VK_OVL, VK_DEV };
struct onode;
struct pipe;
struct vref {
    u8 kind;
    u32 img;                 /* VK_IMG: entry index */
    struct onode *o;         /* VK_OVL */
    int dev;                 /* VK_DEV: index in dev table */
};
struct onode {
    char *path;
    u32 hash;
    u32 mode;
    struct onode *hnext, *anext;
    int whiteout;
    i64 img;                 /* dirs: image dir it shadows, -1 none */
    u8 *data;
    u64 size, cap;
    u64 ino;
    struct ktimespec atime, mtime, ctime;
    struct pipe *fifo;       /* a FIFO's buffer while it is open (ipc.c) */
    struct onode *ln;        /* a hard link: another name of this node (holds a reference) */
    int links;               /* names beyond the first (nlink - 1) */
    u64 seq;                 /* insertion order: the directory-listing cursor */
    int refs;                /* open descriptions */
    int linked;              /* still in the namespace */
    u64 shm_key;             /* host shared memory object of its mappings (shmap.c), 0 none */
    u64 shm_base;            /* the file offset at the object's offset 0 */
};
int img_init(u64 base, u64 size);
int vfs_resolve(int dirfd, const char *path, int follow, char *out, struct vref *ref);
int vfs_mode(const struct vref *r, u32 *mode);
int vfs_stat(const struct vref *r, struct kstat *st);
int vfs_file_data(const struct vref *r, const u8 **data, u64 *size);
int vfs_readlink(const struct vref *r, char *buf, u64 cap);
struct onode *ovl_create(const char *path, u32 mode);
struct onode *ovl_copy_up(const char *path, const struct vref *r);
int vfs_unlink(const char *path, const struct vref *r, int dir);
int vfs_rename(const char *from, const struct vref *fr, const char *to);
int vfs_link(const char *from, const struct vref *fr, const char *to);
int vfs_boot_dirs(void);                  /* the overlay's own directories: /dev/shm */
int vfs_synthetic(const char *path);      /* under /dev, /proc, /sys but not /dev/shm: nothing is created there */
int ovl_set_size(struct onode *o, u64 n);
void ovl_put(struct onode *o);
/* timestamps, Linux semantics: TS_A access, TS_M modification, TS_C status change, to now */
#define TS_A 1
#define TS_M 2
#define TS_C 4
void ovl_stamp(struct onode *o, int which);
/* the directory holding `path` gained or lost an entry: its mtime and ctime are now */
void vfs_dir_changed(const char *path);
/* directory listing: fills dirents into buf; *pos is an opaque cursor */
i64 vfs_getdents(const char *path, const struct vref *r, u64 *pos, u8 *buf, u64 cap);
extern u64 g_img_base, g_img_size;
const struct fb_img_entry *img_entry(u32 idx);

/* ---- dev.c ---- */
enum { DEV_DIR, DEV_NULL, DEV_ZERO, DEV_URANDOM, DEV_CTL, DEV_TEXT, DEV_LINK };
struct devfile { const char *path; int type; u32 mode; };
extern const struct devfile g_devs[];
int dev_lookup(const char *path);
int dev_count(void);
int dev_text(int idx, char **buf, u64 *len);      /* generated file content (kmalloc) */
const char *dev_link_target(int idx);
i64 ctl_read(u8 *buf, u64 n);
i64 ctl_write(const u8 *buf, u64 n);
i64 console_write(int which, const u8 *buf, u64 n);
void ctl_exit(int code) __attribute__((noreturn));
void ctl_exit_signal(int sig) __attribute__((noreturn)); /* ended by a signal's default action */
/* guest-to-host calls (abi.h): ret of the answer, or -EIO on a broken protocol */
i64 host_call(const struct fb_call *c, const void *data, u64 len, struct fb_answer *ans, void *rbuf, u64 rcap);
i64 host_call0(u32 nr, i64 a0, i64 a1, i64 a2, i64 a3);
extern u64 g_host_signals;
void ctl_boot(void);
extern u64 g_mem_limit;

void console_init(void);                          /* fds 0, 1, 2 */

/* ---- time.c ---- */
void time_init(u64 tsc_khz, u64 wall_ns);
void time_rebase(u64 tsc_khz, u64 wall_ns);
u64 time_mono_ns(void);
u64 time_wall_ns(void);
void time_spin_until_mono(u64 ns);
i64 sys_clock_gettime(u64 clk, struct ktimespec *ts);
i64 sys_clock_getres(u64 clk, struct ktimespec *ts);
i64 sys_gettimeofday(void *tv, void *tz);
i64 sys_time(i64 *t);
int time_clock_ns(u64 clk, u64 *ns);          /* the clock's now in ns, or -EINVAL */
/* ---- sleep.c ---- */
i64 sys_nanosleep(const struct ktimespec *req, struct ktimespec *rem);
i64 sys_clock_nanosleep(u64 clk, u64 flags, const struct ktimespec *req, struct ktimespec *rem);
static inline u64 rdtsc(void) { u32 lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((u64)hi << 32) | lo; }

/* ---- random.c ---- */
void chacha20_block(const u32 key[8], u32 counter, const u32 nonce[3], u32 out[16]);
void rng_seed(const u8 *seed, u64 len);
void rng_reseed(const u8 *seed, u64 len);
void rng_fill(u8 *out, u64 len);
i64 sys_getrandom(u8 *buf, u64 len, u64 flags);

/* ---- syscall.c: the one table, number -> handler; every handler is defined
 * with SYSCALL(name) in the file that owns it and listed once in syscall.c ---- */
#define SYSCALL(name) i64 sc_##name(u64 a, u64 b, u64 c, u64 d, u64 e, u64 f)
extern u32 g_sys_count[512];
extern u64 g_sys_total;

/* ---- sched.c: threads on the one vCPU ---- */
enum { W_NONE, W_FUTEX, W_IO, W_SLEEP, W_HOST };
extern u64 g_kstack_top;                      /* the current thread's runtime stack */
extern int g_nthreads;
extern volatile int g_preempt_pending;
/* block the current thread: 0 woken (W_FUTEX) or maybe ready (W_IO), -ETIMEDOUT
 * at deadline (monotonic ns, 0 none), -EDEADLK when no thread could ever run */
int sched_block(int kind, const void *chan, u32 bitset, u64 deadline);
int sched_wake(const void *chan, u32 bitset, int n);  /* futex waiters woken */
void sched_yield(void);
i64 sched_pause(void);
void sched_preempt(void);
void sched_after_host_call(void);   /* a long slice of host calls yields on the way out */
i64 sched_clone(u64 flags, u64 sp, u64 ptid, u64 ctid, u64 tls);
void sched_exit_thread(int code) __attribute__((noreturn));
int sched_tid(void);
int sched_tid_alive(i64 tid);
u64 *sched_sigmask(void);
void sched_set_clear_tid(u64 a);
void sched_set_robust(u64 head, u64 len);
/* Waiting on the host (abi.h FB_CALL_WAIT): block the current thread until the host
 * may have news for these entries or sent signals (0: look again), the deadline
 * (monotonic ns, 0 none: -ETIMEDOUT) or a signal to deliver (-EINTR, through
 * sig_block, which a caller that looks again reaches again); other threads run meanwhile.
 * The entries must stay valid until it returns. Any other -errno is the host's
 * answer to the WAIT (e.g. -ENOSYS from a host that serves no processes). */
int host_wait_block(const struct fb_poll_ent *pe, int npe, const struct fb_futex_ent *fe, int nfe, u32 flags,
                    u64 deadline);
/* the same, and also ready when another thread made a syscall (local: local
 * descriptors are in the same wait) or woke the futex word chan (bitset) */
int host_wait_ex(const struct fb_poll_ent *pe, int npe, const struct fb_futex_ent *fe, int nfe, u32 flags,
                 u64 deadline, int local, const void *chan, u32 bitset);
/* hostfd.c: before FB_CALL_FORK every pipe end in the descriptor table becomes a
 * host pipe end (0 or -errno; on an error they all stay local) */
int hostfd_prepare_fork(void);
/* a fork's child, execve: the caller is the only thread, with tid `tid`; the others' stacks are freed */
void sched_only_caller(int tid, u64 clear_tid);

/* ---- signal.c ---- */
/* sched_block, cut short with EINTR when a signal is to be delivered (timers included) */
int sig_block(int kind, const void *chan, u32 bitset, u64 deadline);
i64 sig_exit(u64 nr, i64 ret);        /* at every syscall's return while g_sig_work */
extern u32 g_sig_work;
int sig_deliverable_now(void);        /* takes the host's signals: is one to be delivered now? */
void sig_fork_child(void);            /* a fork's child: no pending signals, no timers */
void sig_exec_reset(void);            /* execve: handlers back to default (ignored stay ignored) */

/* ---- proc.c: processes (one VM each; abi.h "Guest-to-host calls") ---- */
extern int g_pid, g_ppid;             /* FB_PID / FB_PPID in the group's first process */
i64 proc_clone(u64 flags, u64 sp, u64 ptid, u64 ctid);  /* fork, vfork, clone without CLONE_THREAD */
i64 proc_kill(i64 pid, int sig);      /* to another pid (0 / -1: every other process): 0, -ESRCH */
int proc_in_group(void);              /* another process may exist (this one forked, or is a child) */

/* ---- elf.c ---- */
struct loaded { u64 entry, base, phdr, phnum, phent, end; char interp[256]; };
int elf_load(const char *path, int is_interp, struct loaded *out);
int elf_probe(const char *path, int is_interp, struct loaded *out); /* the checks only: nothing loaded */

/* ---- identity (documented in docs/guest-runtime.md) ---- */
#define FB_PID 2
#define FB_PPID 1
#define FB_UID 1000
#define FB_GID 1000

#endif
