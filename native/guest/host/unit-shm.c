/*
 * unit-shm.c — host unit test (ASan/UBSan) of shared mappings across a fork:
 * mm.c and shmap.c over a 64 MiB "RAM" mapped at the guest's own addresses
 * (as unit-mm.c), the futex syscall (futex.c), and a fake host that
 * answers SHM_SHARE / SHM_UNSHARE / FUTEX_WAKE and logs every call. Checked:
 * no call before a fork; MAP_SHARED | MAP_ANONYMOUS recorded; shm_prepare_fork
 * shares each record (a file's key kept in its node, object offset = file
 * offset; anonymous: key 0, a new object); a new mapping of a keyed node shares
 * at once; munmap (whole, head, middle), MAP_FIXED over it, a shrinking mremap
 * unshare exactly what goes, a growing or moving one is EINVAL; madvise keeps
 * shared bytes; shared futex WAIT waits on the host with (key, off, expect) and
 * stays wakeable locally, WAKE wakes here then asks the host for the rest;
 * private futexes and words outside shared memory make no call; exec cleanup
 * and exit unshare everything.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#undef MAP_SHARED
#undef MAP_PRIVATE
#undef MAP_FIXED
#undef MAP_ANONYMOUS
#undef MAP_GROWSDOWN
#undef MAP_FIXED_NOREPLACE
#undef MADV_DONTNEED
#undef MADV_FREE
#undef MADV_REMOVE
#undef MREMAP_MAYMOVE
#undef MREMAP_FIXED
#undef MREMAP_DONTUNMAP
#define rt_snprintf snprintf
#include "../fdtab.h"
#include "../files.h"

u64 g_img_base, g_img_size;
void zero_pages(void *p, u64 len) { memset(p, 0, len); }
void rt_panic(const char *m) { fprintf(stderr, "panic: %s\n", m); abort(); }

/* fd 3: a writable overlay file of 5 pages */
static struct onode g_node;
static u8 g_fdata[5 * 4096];
const struct file_ops g_file_ops = { .mode = S_IFREG };
static struct file g_f3 = { .refs = 1, .ops = &g_file_ops, .flags = O_RDWR };
struct file *fget(i64 fd) { return fd == 3 ? &g_f3 : 0; }
int readable(struct file *f) { return 1; }
int writable(struct file *f) { return 1; }
int fd_map_source(i64 fd, const u8 **d, u64 *n) { if (fd != 3) return -EBADF; *d = g_fdata; *n = sizeof g_fdata; return 1; }
void ovl_touch(struct onode *o) {}
void ovl_stamp(struct onode *o, int which) {}
static int g_puts;
void ovl_put(struct onode *o) { g_puts++; o->refs--; }

/* the scheduler and clocks as far as the futex call needs them */
static int g_local_woken;
int sched_wake(const void *chan, u32 bitset, int n) { return n < g_local_woken ? n : g_local_woken; }
static int g_local_blocks;
int sig_block(int kind, const void *chan, u32 bitset, u64 deadline) { g_local_blocks++; return -ETIMEDOUT; }
static struct fb_futex_ent g_wait_fe;
static const void *g_wait_chan;
static int g_host_waits;
int host_wait_ex(const struct fb_poll_ent *pe, int npe, const struct fb_futex_ent *fe, int nfe, u32 flags,
                 u64 deadline, int local, const void *chan, u32 bitset)
{
    g_host_waits++;
    if (nfe == 1) g_wait_fe = *fe;
    g_wait_chan = chan;
    return 0;
}
u64 time_mono_ns(void) { return 1000000000ull; }
u64 time_wall_ns(void) { return 1700000000ull * 1000000000ull; }

/* ---- the fake host ---- */
static int g_calls[16], g_ncalls;
static struct { i64 a[4]; u32 nr; } g_log[64];
static u64 g_next_key = 100;
static i64 g_share_ret;   /* nonzero: SHM_SHARE answers this */
static i64 g_wake_ret;
i64 host_call(const struct fb_call *c, const void *data, u64 len, struct fb_answer *ans, void *rbuf, u64 rcap)
{
    struct fb_answer a = { 0 };
    if (g_ncalls < 64) { memcpy(g_log[g_ncalls].a, c->arg, sizeof g_log[0].a); g_log[g_ncalls].nr = c->nr; }
    g_calls[c->nr < 16 ? c->nr : 0]++;
    g_ncalls++;
    switch (c->nr) {
    case FB_CALL_SHM_SHARE:
        if (c->arg[0] & 4095 || c->arg[1] & 4095 || c->arg[3] & 4095 || !c->arg[1]) { a.ret = -EINVAL; break; }
        a.ret = g_share_ret ? g_share_ret : c->arg[2] ? c->arg[2] : (i64)g_next_key++;
        break;
    case FB_CALL_SHM_UNSHARE:
        if (c->arg[0] & 4095 || c->arg[1] & 4095 || !c->arg[1]) { a.ret = -EINVAL; break; }
        memset((void *)c->arg[0], 0, (u64)c->arg[1]); /* private and zero-filled again */
        break;
    case FB_CALL_FUTEX_WAKE: a.ret = g_wake_ret; break;
    default: a.ret = -ENOSYS;
    }
    if (ans) *ans = a;
    return a.ret;
}
i64 host_call0(u32 nr, i64 a0, i64 a1, i64 a2, i64 a3)
{
    struct fb_call c = { .nr = nr, .arg = { a0, a1, a2, a3, 0, 0 } };
    return host_call(&c, 0, 0, 0, 0, 0);
}
static void reset_log(void) { memset(g_calls, 0, sizeof g_calls); g_ncalls = 0; }
static int logged(u32 nr, i64 a0, i64 a1)
{
    for (int i = 0; i < g_ncalls && i < 64; i++) if (g_log[i].nr == nr && g_log[i].a[0] == a0 && g_log[i].a[1] == a1) return 1;
    return 0;
}

#include "../mm.c"
#include "../shmap.c"
#include "../futex.c"

static int fails;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); fails++; } } while (0)
#define RAM (64ull << 20)
#define PG 4096

static i64 futex(u32 *w, u64 op, u64 val) { return sys_futex(w, op, val, 0, 0); }

int main(void)
{
    void *ram = mmap((void *)FB_ARENA_BASE, RAM - FB_ARENA_BASE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | 0x100000 /* MAP_FIXED_NOREPLACE */, -1, 0);
    if (ram != (void *)FB_ARENA_BASE) { printf("skipped: shm unit test (cannot map the arena at its address)\n"); return 0; }
    mm_init(RAM);
    CHECK(mm_reserve(RAM - STACK_SIZE, STACK_SIZE) == 0);
    g_node.data = g_fdata; g_node.size = sizeof g_fdata; g_node.refs = 1;
    g_f3.ref.kind = VK_OVL; g_f3.ref.o = &g_node;
    for (u64 i = 0; i < sizeof g_fdata; i++) g_fdata[i] = (u8)(i / PG + 'a');

    /* before a fork: records, no calls; a futex anywhere is local */
    reset_log();
    i64 an = sys_mmap(0, 3 * PG, 3, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    i64 fm = sys_mmap(0, 2 * PG, 3, MAP_SHARED, 3, PG);     /* file pages 1..2 */
    i64 pv = sys_mmap(0, PG, 3, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHECK(an > 0 && fm > 0 && pv > 0 && g_shmap_n == 2 && g_ncalls == 0);
    CHECK(((u8 *)fm)[0] == 'b' && ((u8 *)fm)[PG] == 'c');
    *(u32 *)an = 5;
    CHECK(futex((u32 *)an, FUTEX_WAIT, 5) == -ETIMEDOUT && g_local_blocks == 1 && g_ncalls == 0);
    CHECK(futex((u32 *)an, FUTEX_WAKE, 1) == 0 && g_ncalls == 0);

    /* the fork: each record shared once */
    CHECK(shm_prepare_fork() == 0);
    CHECK(g_calls[FB_CALL_SHM_SHARE] == 2 && g_shm_host_n == 2);
    CHECK(logged(FB_CALL_SHM_SHARE, an, 3 * PG) && logged(FB_CALL_SHM_SHARE, fm, 2 * PG));
    u64 fkey = g_node.shm_key;
    CHECK(fkey >= 100);
    for (int i = 0; i < g_ncalls; i++)
        CHECK(g_log[i].a[2] == 0 && g_log[i].a[3] == 0);   /* new objects */
    CHECK(g_node.shm_base == PG);                          /* the object starts at the file's page 1 */
    reset_log();
    CHECK(shm_prepare_fork() == 0 && g_ncalls == 0);        /* already shared */

    /* a new mapping of the keyed node shares at once, at its offset in the object */
    i64 fm2 = sys_mmap(0, PG, 3, MAP_SHARED, 3, 3 * PG);
    CHECK(fm2 > 0 && g_calls[FB_CALL_SHM_SHARE] == 1 && g_log[0].a[2] == (i64)fkey && g_log[0].a[3] == 2 * PG);
    /* ... a host that refuses it fails the mmap, with nothing left behind */
    g_share_ret = -ENOMEM;
    u32 n0 = g_shmap_n;
    u64 used0 = mm_used_bytes();
    CHECK(sys_mmap(0, PG, 3, MAP_SHARED, 3, 4 * PG) == -ENOMEM && g_shmap_n == n0 && mm_used_bytes() == used0);
    g_share_ret = 0;
    /* ... and a range below the object's start cannot be shared */
    reset_log();
    CHECK(sys_mmap(0, PG, 3, MAP_SHARED, 3, 0) == -EINVAL && g_shmap_n == n0 && g_ncalls == 0);

    /* futexes in shared memory: WAIT on the host with the entry, wakeable locally */
    reset_log();
    g_local_blocks = g_host_waits = 0;
    *(u32 *)(an + PG + 8) = 7;
    CHECK(futex((u32 *)(an + PG + 8), FUTEX_WAIT, 7) == 0 && g_host_waits == 1 && g_local_blocks == 0);
    CHECK(g_wait_fe.key == g_sm[0].key && g_wait_fe.off == PG + 8 && g_wait_fe.expect == 7);
    CHECK(g_wait_chan == (void *)(an + PG + 8));
    CHECK(futex((u32 *)(an + PG + 8), FUTEX_WAIT, 8) == -EAGAIN && g_host_waits == 1); /* value changed */
    *(u32 *)(fm + 4) = 1;
    CHECK(sys_futex((u32 *)(fm + 4), FUTEX_WAIT_BITSET, 1, 0, ~0u) == 0 && g_wait_fe.key == fkey && g_wait_fe.off == 4);
    /* private, or outside shared memory: local */
    CHECK(futex((u32 *)(an + 8), FUTEX_WAIT | FUTEX_PRIVATE_FLAG, 0) == -ETIMEDOUT && g_local_blocks == 1);
    *(u32 *)pv = 0;
    CHECK(futex((u32 *)pv, FUTEX_WAIT, 0) == -ETIMEDOUT && g_local_blocks == 2 && g_ncalls == 0);
    /* WAKE: local waiters first, then the host for the rest */
    g_local_woken = 1; g_wake_ret = 2;
    CHECK(futex((u32 *)(an + 8), FUTEX_WAKE, 5) == 3 && g_calls[FB_CALL_FUTEX_WAKE] == 1);
    CHECK(g_log[g_ncalls - 1].a[0] == (i64)g_sm[0].key && g_log[g_ncalls - 1].a[1] == 8 && g_log[g_ncalls - 1].a[2] == 4);
    CHECK(futex((u32 *)(an + 8), FUTEX_WAKE, 1) == 1 && g_calls[FB_CALL_FUTEX_WAKE] == 1); /* all woken here */
    g_local_woken = 0;
    CHECK(futex((u32 *)(an + 8), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1) == 0 && g_calls[FB_CALL_FUTEX_WAKE] == 1);
    CHECK(futex((u32 *)pv, FUTEX_WAKE, 1) == 0 && g_calls[FB_CALL_FUTEX_WAKE] == 1);
    g_wake_ret = 0;

    /* madvise(DONTNEED) keeps shared bytes; private ones are zeroed */
    ((u8 *)an)[0] = 9; ((u8 *)pv)[0] = 9;
    CHECK(sys_madvise((u64)an, PG, MADV_DONTNEED) == 0 && ((u8 *)an)[0] == 9);
    CHECK(sys_madvise((u64)pv, PG, MADV_DONTNEED) == 0 && ((u8 *)pv)[0] == 0);

    /* mremap: shrinking in place unshares the tail; growing or moving is EINVAL */
    reset_log();
    CHECK(sys_mremap((u64)an, 3 * PG, 4 * PG, MREMAP_MAYMOVE, 0) == -EINVAL && g_ncalls == 0);
    CHECK(sys_mremap((u64)an, 3 * PG, 2 * PG, 0, 0) == an && logged(FB_CALL_SHM_UNSHARE, an + 2 * PG, PG));

    /* munmap of the file mapping's head page, then of the rest */
    ((u8 *)fm)[PG] = 'Z';
    reset_log();
    CHECK(sys_munmap((u64)fm, PG) == 0 && logged(FB_CALL_SHM_UNSHARE, fm, PG));
    int k;
    for (k = 0; k < (int)g_shmap_n && g_sm[k].addr != (u64)fm + PG; k++) {}
    CHECK(k < (int)g_shmap_n && g_sm[k].off == 2 * PG && g_sm[k].key == fkey);
    *(u32 *)(fm + PG) = 3;
    CHECK(futex((u32 *)(fm + PG), FUTEX_WAIT, *(u32 *)(fm + PG)) == 0 && g_wait_fe.off == PG);
    ((u8 *)fm)[PG] = 'Z';
    CHECK(sys_munmap((u64)fm + PG, PG) == 0 && g_fdata[2 * PG] == 'Z');  /* written back, then unshared */
    CHECK(logged(FB_CALL_SHM_UNSHARE, fm + PG, PG));

    /* MAP_FIXED over the anonymous mapping's tail page: that page is unshared and private */
    u32 hn = g_shm_host_n;
    reset_log();
    CHECK(sys_mmap((u64)an + PG, PG, 3, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == an + PG);
    CHECK(logged(FB_CALL_SHM_UNSHARE, an + PG, PG) && g_shm_host_n == hn);
    *(u32 *)(an + PG + 8) = 7;
    CHECK(futex((u32 *)(an + PG + 8), FUTEX_WAKE, 1) == 0 && g_calls[FB_CALL_FUTEX_WAKE] == 0); /* private now */

    /* ... and over the middle of a shared one: the record splits, the tail keeps its object offset */
    i64 an2 = sys_mmap(0, 3 * PG, 3, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shm_prepare_fork() == 0);
    hn = g_shm_host_n;
    reset_log();
    CHECK(sys_mmap((u64)an2 + PG, PG, 3, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) == an2 + PG);
    CHECK(logged(FB_CALL_SHM_UNSHARE, an2 + PG, PG) && g_ncalls == 1 && g_shm_host_n == hn + 1);
    *(u32 *)(an2 + 2 * PG + 8) = 1;
    CHECK(futex((u32 *)(an2 + 2 * PG + 8), FUTEX_WAIT, 1) == 0 && g_wait_fe.off == 2 * PG + 8);
    *(u32 *)(an2 + 8) = 1;
    CHECK(futex((u32 *)(an2 + 8), FUTEX_WAIT, 1) == 0 && g_wait_fe.off == 8);

    /* execve: everything written back, unshared and dropped */
    reset_log();
    int unshares = 0;
    for (u32 i = 0; i < g_shmap_n; i++) unshares += g_sm[i].key != 0;
    shm_exec_cleanup();
    CHECK(g_shmap_n == 0 && g_shm_host_n == 0 && g_calls[FB_CALL_SHM_UNSHARE] == unshares && unshares >= 2);
    CHECK(g_node.refs == 1);                                /* every mapping's node reference returned */
    (void)an2;

    /* exit: the host-shared ranges are let go */
    i64 an3 = sys_mmap(0, PG, 3, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    CHECK(shm_prepare_fork() == 0);
    reset_log();
    shm_exit();
    CHECK(logged(FB_CALL_SHM_UNSHARE, an3, PG) && g_shm_host_n == 0);

    if (fails) { fprintf(stderr, "%d failure(s)\n", fails); return 1; }
    printf("ok: shm unit test (shared mappings and futexes across a fork)\n");
    return 0;
}
