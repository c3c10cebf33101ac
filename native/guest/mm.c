/*
 * mm.c — the arena: a page bitmap over guest RAM [FB_ARENA_BASE, ram_size),
 * the Linux memory syscalls on top of it (brk, mmap, munmap, mremap,
 * madvise, msync; mprotect is bookkeeping only: the guest never edits page
 * tables; shared writable file mappings and MAP_SHARED | MAP_ANONYMOUS are
 * recorded by shmap.c, which writes files back and shares them across a fork),
 * and kmalloc for the runtime's own objects (same pages, same limit).
 * Invariants: a page is either free or used; freed pages may hold garbage and
 * are zeroed (read-before-write, see zero_pages) when handed out again. The
 * limit (mailbox mem_limit) counts every used page; exceeding it is ENOMEM.
 * A second bitmap marks the pages kmalloc holds (the runtime's own objects):
 * every other used page is the program's, which is what execve frees.
 */
#include "rt.h"

#define MAXPAGES (FB_RAM_MAX / PAGE)
#define STACK_SIZE (8ull << 20)
/* nothing is placed in the 1 MiB below the program stack: the guest cannot have
 * real guard pages (it never edits page tables), so a gap is the cheap defence */
#define GUARD_PAGES 256

static u64 g_map[MAXPAGES / 64];
static u64 g_kmap[MAXPAGES / 64];  /* pages kmalloc holds: the runtime's, kept by execve */
static HOT u64 g_npages, g_used, g_peak, g_limit_pages;
static HOT u64 g_brk_start, g_brk, g_mmap_hint;
HOT u64 g_ram_size;

static inline int pg_used(u64 p) { return (g_map[p >> 6] >> (p & 63)) & 1; }
static void pg_set(u64 p, u64 n, int v)
{
    for (u64 i = p; i < p + n; i++) {
        u64 bit = 1ull << (i & 63);
        if (v) { if (!(g_map[i >> 6] & bit)) { g_map[i >> 6] |= bit; g_used++; } }
        else if (g_map[i >> 6] & bit) { g_map[i >> 6] &= ~bit; g_used--; }
    }
    if (g_used > g_peak) g_peak = g_used;
}
static int range_free(u64 p, u64 n)
{
    if (p + n > g_npages || p < FB_ARENA_BASE / PAGE) return 0;
    for (u64 i = p; i < p + n; i++) if (pg_used(i)) return 0;
    return 1;
}
static u64 count_new(u64 p, u64 n)
{
    u64 c = 0;
    for (u64 i = p; i < p + n; i++) c += !pg_used(i);
    return c;
}
static int over_limit(u64 newpages)
{
    if (g_used + newpages > g_npages) return 1;
    return g_limit_pages && g_used + newpages > g_limit_pages;
}

void mm_init(u64 ram_size)
{
    g_ram_size = ram_size;
    g_npages = ram_size / PAGE;
    for (u64 i = 0; i < FB_ARENA_BASE / PAGE; i++) g_map[i >> 6] |= 1ull << (i & 63);
    g_used = 0; /* the fixed low area is not counted against the program */
    g_mmap_hint = g_npages - STACK_SIZE / PAGE - GUARD_PAGES;
}

void mm_set_limit(u64 bytes) { g_limit_pages = bytes ? (bytes + PAGE - 1) / PAGE : 0; }
u64 mm_used_bytes(void) { return g_used * PAGE; }
/* The high-water mark of used bytes since the last reset (each exec request). */
u64 mm_peak_bytes(void) { return g_peak * PAGE; }
void mm_peak_reset(void) { if (g_peak != g_used) g_peak = g_used; }

int mm_reserve(u64 addr, u64 len)
{
    u64 p = addr / PAGE, n = (PAGE_UP(addr + len) - PAGE_DOWN(addr)) / PAGE;
    if (addr < FB_ARENA_BASE || addr + len > g_ram_size || addr + len < addr) return -EFAULT;
    if (over_limit(count_new(p, n))) return -ENOMEM;
    pg_set(p, n, 1);
    return 0;
}

/* top-down first fit below `below` (a page index) */
static u64 find_top(u64 n, u64 below)
{
    u64 lo = FB_ARENA_BASE / PAGE;
    if (below > g_npages) below = g_npages;
    u64 run = 0;
    for (u64 i = below; i-- > lo;) {
        if ((i & 63) == 63 && g_map[i >> 6] == ~0ull && i >= 63) { run = 0; i -= 63; continue; }
        if (pg_used(i)) { run = 0; continue; }
        if (++run == n) return i;
    }
    return 0;
}

u64 mm_alloc_top(u64 len, int *err)
{
    u64 n = PAGE_UP(len) / PAGE;
    if (!n || n > g_npages) { *err = -ENOMEM; return 0; }
    if (over_limit(n)) { *err = -ENOMEM; return 0; }
    u64 p = find_top(n, g_mmap_hint);
    if (!p) p = find_top(n, g_npages - STACK_SIZE / PAGE - GUARD_PAGES); /* holes above the hint */
    if (!p) { *err = -ENOMEM; return 0; }
    pg_set(p, n, 1);
    if (p < g_mmap_hint) g_mmap_hint = p;
    zero_pages((void *)(p * PAGE), n * PAGE);
    return p * PAGE;
}

static void mm_free(u64 addr, u64 len)
{
    u64 p = addr / PAGE, n = PAGE_UP(len) / PAGE;
    pg_set(p, n, 0);
    if (p + n >= g_mmap_hint && p + n <= g_npages - STACK_SIZE / PAGE - GUARD_PAGES) {
        /* let the hint climb back when the lowest mapping goes away */
        while (g_mmap_hint < g_npages - STACK_SIZE / PAGE - GUARD_PAGES && !pg_used(g_mmap_hint)) g_mmap_hint++;
    }
}

/* ---- user pointer checks ---- */
int uaccess_w(const void *p, u64 len)
{
    u64 a = (u64)p;
    if (len == 0) return 1;
    if (a + len < a || a < FB_ARENA_BASE || a + len > g_ram_size) return 0;
    for (u64 i = a / PAGE; i <= (a + len - 1) / PAGE; i++) if (!pg_used(i)) return 0;
    return 1;
}
int uaccess_ok(const void *p, u64 len)
{
    u64 a = (u64)p;
    if (len == 0) return 1;
    if (a + len < a) return 0;
    if (g_img_size && a >= g_img_base && a + len <= g_img_base + g_img_size) return 1;
    return uaccess_w(p, len);
}
int ustr_ok(const char *s, u64 max)
{
    u64 a = (u64)s;
    for (u64 i = 0; i < max; i++) {
        if (i == 0 || ((a + i) & (PAGE - 1)) == 0)
            if (!uaccess_ok(s + i, 1)) return -EFAULT;
        if (!s[i]) return (int)i;
    }
    return -ENAMETOOLONG;
}

static void kpg_set(u64 addr, u64 n, int v)
{
    for (u64 i = addr / PAGE; i < addr / PAGE + n; i++) {
        if (v) g_kmap[i >> 6] |= 1ull << (i & 63);
        else g_kmap[i >> 6] &= ~(1ull << (i & 63));
    }
}

/* execve: every page of the program (brk, mappings, stack, ELF segments) is free
 * again; kmalloc's pages stay. The brk and the mmap hint start over. */
void mm_exec_reset(void)
{
    for (u64 w = FB_ARENA_BASE / PAGE / 64; w < (g_npages + 63) / 64; w++) {
        u64 prog = g_map[w] & ~g_kmap[w];
        if (!prog) continue;
        g_map[w] &= ~prog;
        for (; prog; prog &= prog - 1) g_used--;
    }
    g_brk_start = g_brk = 0;
    g_mmap_hint = g_npages - STACK_SIZE / PAGE - GUARD_PAGES;
}

/* does the runtime (kmalloc) hold a page of [addr, addr + len)? */
int mm_runtime_holds(u64 addr, u64 len)
{
    if (addr + len < addr || addr + len > g_ram_size) return 1;
    for (u64 i = addr / PAGE; i < PAGE_UP(addr + len) / PAGE; i++)
        if ((g_kmap[i >> 6] >> (i & 63)) & 1) return 1;
    return 0;
}

/* is [addr, addr + len) free arena? */
int mm_range_free(u64 addr, u64 len)
{
    if (addr + len < addr) return 0;
    return range_free(addr / PAGE, (PAGE_UP(addr + len) - PAGE_DOWN(addr)) / PAGE);
}

/* ---- kmalloc: power-of-two classes 32..2048 from pages; larger: whole pages ---- */
#define KM_MAGIC 0x4b4d414cu
struct kmhdr { u32 magic; u32 cls; u64 npages; };
static HOT void *g_free[7];

void *kmalloc(u64 n)
{
    int err;
    if (n + sizeof(struct kmhdr) <= 2048) {
        u32 cls = 0;
        while ((32u << cls) < n + sizeof(struct kmhdr)) cls++;
        if (!g_free[cls]) {
            u64 pg = mm_alloc_top(PAGE, &err);
            if (!pg) return 0;
            kpg_set(pg, 1, 1);
            u64 sz = 32u << cls;
            for (u64 o = 0; o + sz <= PAGE; o += sz) {
                *(void **)(pg + o) = g_free[cls];
                g_free[cls] = (void *)(pg + o);
            }
        }
        struct kmhdr *h = g_free[cls];
        g_free[cls] = *(void **)h;
        h->magic = KM_MAGIC; h->cls = cls; h->npages = 0;
        return h + 1;
    }
    u64 np = PAGE_UP(n + sizeof(struct kmhdr)) / PAGE;
    struct kmhdr *h = (void *)mm_alloc_top(np * PAGE, &err);
    if (!h) return 0;
    kpg_set((u64)h, np, 1);
    h->magic = KM_MAGIC; h->cls = 99; h->npages = np;
    return h + 1;
}

void *kzalloc(u64 n)
{
    void *p = kmalloc(n);
    if (p) memset(p, 0, n);
    return p;
}

void kfree(void *p)
{
    if (!p) return;
    struct kmhdr *h = (struct kmhdr *)p - 1;
    if (h->magic != KM_MAGIC) rt_panic("kfree: bad block");
    h->magic = 0;
    if (h->cls == 99) { kpg_set((u64)h, h->npages, 0); mm_free((u64)h, h->npages * PAGE); return; }
    *(void **)h = g_free[h->cls];
    g_free[h->cls] = h;
}

void *krealloc(void *p, u64 n)
{
    if (!p) return kmalloc(n);
    struct kmhdr *h = (struct kmhdr *)p - 1;
    u64 have = h->cls == 99 ? h->npages * PAGE - sizeof *h : (32u << h->cls) - sizeof *h;
    if (n <= have) return p;
    void *q = kmalloc(n);
    if (!q) return 0;
    memcpy(q, p, have);
    kfree(p);
    return q;
}

/* ---- brk ---- */
void mm_set_brk_start(u64 a) { g_brk_start = g_brk = PAGE_UP(a); }

i64 sys_brk(u64 a)
{
    if (a < g_brk_start || a > g_ram_size) return (i64)g_brk;
    u64 old_end = PAGE_UP(g_brk), new_end = PAGE_UP(a);
    if (new_end > old_end) {
        u64 n = (new_end - old_end) / PAGE;
        if (!range_free(old_end / PAGE, n) || over_limit(n)) return (i64)g_brk;
        pg_set(old_end / PAGE, n, 1);
        zero_pages((void *)old_end, new_end - old_end);
    } else if (new_end < old_end) {
        mm_free(new_end, old_end - new_end);
    }
    g_brk = a;
    return (i64)g_brk;
}

/* ---- mmap family ---- */
#define MAP_SHARED 0x01
#define MAP_PRIVATE 0x02
#define MAP_FIXED 0x10
#define MAP_ANONYMOUS 0x20
#define MAP_GROWSDOWN 0x100
#define MAP_FIXED_NOREPLACE 0x100000
#define MREMAP_MAYMOVE 1
#define MREMAP_FIXED 2
#define MREMAP_DONTUNMAP 4

int fd_map_source(i64 fd, const u8 **data, u64 *size); /* fd.c */

i64 sys_mmap(u64 addr, u64 len, u64 prot, u64 flags, i64 fd, u64 off)
{
    const u8 *src = 0;
    u64 srcsz = 0;
    if (!len || (off & (PAGE - 1)) || (addr & (PAGE - 1) && (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE))))
        return -EINVAL;
    if (len > g_ram_size) return -ENOMEM;
    int shared_w = 0, shared_anon = 0;
    if ((flags & MAP_ANONYMOUS) && (flags & 3) == MAP_SHARED) { /* recorded: a fork shares it */
        int r = shmap_anon_check();
        if (r) return r;
        shared_anon = 1;
    }
    if (!(flags & MAP_ANONYMOUS)) {
        int r = fd_map_source(fd, &src, &srcsz);
        if (r < 0) return r;
        if ((flags & 3) == MAP_SHARED && (prot & 2)) { /* a regular file: written back to it (shmap.c) */
            shared_w = shmap_check(fd);
            if (shared_w < 0) return shared_w;
            if (!shared_w && r == 1) return -EACCES; /* r==1: another source that would be written */
        }
    }
    u64 n = PAGE_UP(len) / PAGE, base;
    if (flags & (MAP_FIXED | MAP_FIXED_NOREPLACE)) {
        if (addr < FB_ARENA_BASE || addr + n * PAGE > g_ram_size || addr + n * PAGE < addr)
            return (flags & MAP_FIXED) ? -ENOMEM : -EEXIST;
        if (!range_free(addr / PAGE, n)) {
            if (flags & MAP_FIXED_NOREPLACE) return -EEXIST;
        }
        if (over_limit(count_new(addr / PAGE, n))) return -ENOMEM;
        if (g_shmap_n) { int r = shmap_unmap(addr, n * PAGE); if (r) return r; } /* what it replaces is written back */
        pg_set(addr / PAGE, n, 1);
        base = addr;
        zero_pages((void *)base, n * PAGE);
    } else {
        base = 0;
        if (addr && !(addr & (PAGE - 1)) && range_free(addr / PAGE, n) && !over_limit(n)) {
            base = addr;
            pg_set(addr / PAGE, n, 1);
            zero_pages((void *)base, n * PAGE);
        } else {
            int err = -ENOMEM;
            base = mm_alloc_top(n * PAGE, &err);
            if (!base) return err;
        }
    }
    if (src && off < srcsz) {
        u64 c = srcsz - off;
        if (c > len) c = len;
        memcpy((void *)base, src + off, c);
    }
    if (shared_w) {
        int r = shmap_add(fd, base, len, off);
        if (r) { mm_free(base, n * PAGE); return r; }
    }
    if (shared_anon) shmap_add_anon(base, len);
    return (i64)base;
}

i64 sys_munmap(u64 addr, u64 len)
{
    if ((addr & (PAGE - 1)) || !len || addr + len < addr) return -EINVAL;
    u64 end = PAGE_UP(addr + len);
    if (addr < FB_ARENA_BASE) return -EINVAL;
    if (end > g_ram_size) end = g_ram_size;
    if (addr >= end) return 0;
    if (g_shmap_n) { int r = shmap_unmap(addr, end - addr); if (r) return r; }
    mm_free(addr, end - addr);
    return 0;
}

i64 sys_mprotect(u64 addr, u64 len, u64 prot)
{
    if (addr & (PAGE - 1)) return -EINVAL;
    if (!uaccess_w((void *)addr, PAGE_UP(len))) return -ENOMEM;
    return 0;
}

/* the page work of mremap on a checked, page-rounded request */
static i64 mremap_pages(u64 old, u64 olen, u64 nlen, u64 flags, u64 naddr)
{
    if (flags & MREMAP_FIXED) {
        if (!(flags & MREMAP_MAYMOVE) || (naddr & (PAGE - 1))) return -EINVAL;
        if (naddr < FB_ARENA_BASE || naddr + nlen > g_ram_size || naddr + nlen < naddr) return -EINVAL;
        if (naddr < old + olen && old < naddr + nlen) return -EINVAL;
        if (over_limit(count_new(naddr / PAGE, nlen / PAGE))) return -ENOMEM;
        pg_set(naddr / PAGE, nlen / PAGE, 1);
        memcpy((void *)naddr, (void *)old, olen < nlen ? olen : nlen);
        if (nlen > olen) zero_pages((void *)(naddr + olen), nlen - olen);
        mm_free(old, olen);
        return (i64)naddr;
    }
    if (nlen <= olen) {
        if (nlen < olen) mm_free(old + nlen, olen - nlen);
        return (i64)old;
    }
    u64 extra = (nlen - olen) / PAGE;
    if (range_free((old + olen) / PAGE, extra)) {
        if (over_limit(extra)) return -ENOMEM;
        pg_set((old + olen) / PAGE, extra, 1);
        zero_pages((void *)(old + olen), nlen - olen);
        return (i64)old;
    }
    if (!(flags & MREMAP_MAYMOVE)) return -ENOMEM;
    int err = -ENOMEM;
    u64 nb = mm_alloc_top(nlen, &err);
    if (!nb) return err;
    memcpy((void *)nb, (void *)old, olen);
    mm_free(old, olen);
    return (i64)nb;
}

i64 sys_mremap(u64 old, u64 olen, u64 nlen, u64 flags, u64 naddr)
{
    if ((old & (PAGE - 1)) || !nlen || (flags & ~7ull) || (flags & MREMAP_DONTUNMAP)) return -EINVAL;
    olen = PAGE_UP(olen); nlen = PAGE_UP(nlen);
    if (!olen || !uaccess_w((void *)old, olen)) return -EFAULT;
    if (!g_shmap_n) return mremap_pages(old, olen, nlen, flags, naddr);
    /* a shared file mapping moves or resizes only as a whole (else EINVAL) */
    int r = shmap_remap_check(old, olen, nlen, flags);
    if (r) return r;
    if ((flags & MREMAP_FIXED) && !(naddr < old + olen && old < naddr + nlen) && (r = shmap_unmap(naddr, nlen))) return r;
    if (nlen < olen) shmap_sync(old + nlen, olen - nlen);
    i64 res = mremap_pages(old, olen, nlen, flags, naddr);
    if (res >= 0) shmap_remapped(old, olen, (u64)res, nlen);
    return res;
}

#define MADV_DONTNEED 4
#define MADV_FREE 8
#define MADV_REMOVE 9
i64 sys_madvise(u64 addr, u64 len, u64 adv)
{
    if (addr & (PAGE - 1)) return -EINVAL;
    if (!len) return 0;
    len = PAGE_UP(len);
    if (!uaccess_w((void *)addr, len)) return -ENOMEM;
    /* host shared memory keeps its bytes (a shared mapping's pages come back from its object) */
    if ((adv == MADV_DONTNEED || adv == MADV_REMOVE) && !(g_shm_host_n && shm_overlaps_host(addr, len)))
        zero_pages((void *)addr, len);
    return 0; /* MADV_FREE and hints: keeping the contents is allowed */
}

/* /proc/self/maps: used runs of the arena (permissions are not tracked) */
int mm_maps_text(char *buf, u64 cap)
{
    u64 o = 0;
    u64 i = FB_ARENA_BASE / PAGE;
    while (i < g_npages && o + 80 < cap) {
        if (!pg_used(i)) { i++; continue; }
        u64 s = i;
        while (i < g_npages && pg_used(i)) i++;
        o += (u64)rt_snprintf(buf + o, cap - o, "%08lx-%08lx rwxp 00000000 00:00 0\n", (u64)(s * PAGE), (u64)(i * PAGE));
    }
    if (g_img_size && o + 80 < cap)
        o += (u64)rt_snprintf(buf + o, cap - o, "%08lx-%08lx r--s 00000000 00:00 0 [image]\n", g_img_base, g_img_base + g_img_size);
    return (int)o;
}

/* ---- the syscalls (listed in syscall.c) ---- */
SYSCALL(mmap) { return sys_mmap(a, b, c, d, (i64)e, f); }
SYSCALL(mprotect) { return sys_mprotect(a, b, c); }
SYSCALL(munmap) { return sys_munmap(a, b); }
SYSCALL(brk) { return sys_brk(a); }
SYSCALL(mremap) { return sys_mremap(a, b, c, d, e); }
SYSCALL(madvise) { return sys_madvise(a, b, c); }
#define MS_ASYNC 1
#define MS_INVALIDATE 2
#define MS_SYNC 4
SYSCALL(msync) /* anonymous and private memory is its own backing; shared file mappings are written back */
{
    if ((a & (PAGE - 1)) || (c & ~7ull) || ((c & MS_ASYNC) && (c & MS_SYNC))) return -EINVAL;
    if (!uaccess_w((void *)a, b)) return -ENOMEM;
    if (g_shmap_n) shmap_sync(a, b);
    return 0;
}
SYSCALL(mincore) /* everything is resident */
{
    u64 n = PAGE_UP(b) / PAGE;
    if (a & (PAGE - 1)) return -EINVAL;
    if (!uaccess_w((void *)a, b)) return -ENOMEM;
    if (!uaccess_w((void *)c, n)) return -EFAULT;
    memset((void *)c, 1, n);
    return 0;
}
SYSCALL(mlock) { return 0; } /* the mlock family: nothing is ever swapped */
