/*
 * unit-mm.c — host unit test (ASan/UBSan) of the arena bookkeeping in mm.c:
 * a 64 MiB "RAM" is mapped at the guest's own addresses (the arena starts at
 * FB_ARENA_BASE, which a PIE test binary leaves free) and mmap, MAP_FIXED,
 * munmap, mremap (in place, move, shrink), madvise, brk, the memory limit,
 * user-pointer checks and kmalloc are checked against it.
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
#include "../rt.h"

u64 g_img_base, g_img_size;
void zero_pages(void *p, u64 len) { memset(p, 0, len); }
void rt_panic(const char *m) { fprintf(stderr, "panic: %s\n", m); abort(); }
static u8 g_file[10000];
int fd_map_source(i64 fd, const u8 **d, u64 *n) { if (fd != 3) return -EBADF; *d = g_file; *n = sizeof g_file; return 0; }

/* shmap.c is not under test here (host/shmap.py is): fd 3 is no regular file */
u32 g_shmap_n, g_shm_host_n;
int shmap_check(i64 fd) { return 0; }
int shmap_add(i64 fd, u64 addr, u64 len, u64 off) { return 0; }
int shmap_anon_check(void) { return 0; }
void shmap_add_anon(u64 addr, u64 len) {}
int shm_overlaps_host(u64 a, u64 len) { return 0; }
void shmap_sync(u64 addr, u64 len) {}
int shmap_unmap(u64 addr, u64 len) { return 0; }
int shmap_remap_check(u64 old, u64 olen, u64 nlen, u64 flags) { return 0; }
void shmap_remapped(u64 old, u64 olen, u64 nb, u64 nlen) {}

#include "../mm.c"

static int fails;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); fails++; } } while (0)
#define RAM (64ull << 20)

int main(void)
{
    void *ram = mmap((void *)FB_ARENA_BASE, RAM - FB_ARENA_BASE, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | 0x100000 /* MAP_FIXED_NOREPLACE */, -1, 0);
    if (ram != (void *)FB_ARENA_BASE) { printf("skipped: mm unit test (cannot map the arena at its address)\n"); return 0; }
    mm_init(RAM);
    CHECK(mm_reserve(RAM - STACK_SIZE, STACK_SIZE) == 0);
    CHECK(mm_reserve(0x100000, 4096) == -EFAULT);            /* below the arena */
    CHECK(mm_reserve(FB_ARENA_BASE, 0x10000) == 0);          /* "program" */
    mm_set_brk_start(FB_ARENA_BASE + 0x10000);
    u64 used0 = mm_used_bytes();

    /* anonymous mappings are zero, even when reusing freed pages */
    i64 a = sys_mmap(0, 1 << 20, 3, 0x22, -1, 0);
    CHECK(a > 0 && !(a & 4095) && uaccess_w((void *)a, 1 << 20));
    memset((void *)a, 0xab, 1 << 20);
    CHECK(sys_munmap((u64)a, 1 << 20) == 0 && !uaccess_w((void *)a, 1));
    i64 b = sys_mmap(0, 1 << 20, 3, 0x22, -1, 0);
    CHECK(b == a && ((u8 *)b)[4096] == 0 && ((u8 *)b)[(1 << 20) - 1] == 0);
    CHECK(mm_used_bytes() == used0 + (1 << 20));
    /* partial munmap splits the range */
    CHECK(sys_munmap((u64)b + 4096, 4096) == 0 && uaccess_w((void *)b, 4096) && !uaccess_w((void *)(b + 4096), 1));
    CHECK(sys_munmap((u64)b + 1, 4096) == -EINVAL);
    /* MAP_FIXED over a hole and over used pages; NOREPLACE refuses used pages */
    CHECK(sys_mmap((u64)b + 4096, 4096, 3, 0x32, -1, 0) == b + 4096);
    CHECK(sys_mmap((u64)b, 8192, 3, 0x100022, -1, 0) == -EEXIST);
    CHECK(sys_mmap(0x100000, 4096, 3, 0x32, -1, 0) == -ENOMEM);
    /* file mappings copy the file and zero the tail of the last page */
    for (unsigned i = 0; i < sizeof g_file; i++) g_file[i] = (u8)(i * 7 + 1);
    i64 f = sys_mmap(0, 3 * 4096, 1, 2, 3, 4096);
    CHECK(f > 0 && ((u8 *)f)[0] == g_file[4096] && ((u8 *)f)[10000 - 4096 - 1] == g_file[9999] && ((u8 *)f)[10000 - 4096] == 0);
    CHECK(sys_mmap(0, 4096, 1, 2, 9, 0) == -EBADF);
    CHECK(sys_mmap(0, 4096, 1, 2, 3, 100) == -EINVAL);
    /* mremap: shrink, grow in place, move (contents kept), fixed */
    i64 c = sys_mmap(0, 8 * 4096, 3, 0x22, -1, 0);
    ((u8 *)c)[0] = 42;
    CHECK(sys_mremap((u64)c, 8 * 4096, 4 * 4096, 0, 0) == c && !uaccess_w((void *)(c + 4 * 4096), 1));
    CHECK(sys_mremap((u64)c, 4 * 4096, 8 * 4096, 0, 0) == c && ((u8 *)c)[5 * 4096] == 0);
    i64 blocker = sys_mmap((u64)c + 8 * 4096, 4096, 3, 0x32, -1, 0);
    CHECK(blocker == c + 8 * 4096);
    CHECK(sys_mremap((u64)c, 8 * 4096, 16 * 4096, 0, 0) == -ENOMEM);   /* no MAYMOVE */
    i64 d = sys_mremap((u64)c, 8 * 4096, 16 * 4096, 1, 0);
    CHECK(d > 0 && d != c && ((u8 *)d)[0] == 42 && !uaccess_w((void *)c, 1));
    i64 e = sys_mremap((u64)d, 16 * 4096, 16 * 4096, 3, 0x2000000);
    CHECK(e == 0x2000000 && ((u8 *)e)[0] == 42 && !uaccess_w((void *)d, 1));
    CHECK(sys_mremap(0x3000000, 4096, 8192, 1, 0) == -EFAULT);           /* not mapped */
    /* madvise(DONTNEED) zeroes */
    ((u8 *)e)[100] = 9;
    CHECK(sys_madvise((u64)e, 4096, 4) == 0 && ((u8 *)e)[100] == 0);
    /* brk grows, zeroes, shrinks; cannot run into a mapping */
    u64 br = (u64)sys_brk(0);
    CHECK(br == FB_ARENA_BASE + 0x10000);
    CHECK((u64)sys_brk(br + 100000) == br + 100000 && ((u8 *)br)[99999] == 0);
    CHECK((u64)sys_brk(br) == br && !uaccess_w((void *)br, 1));
    CHECK(sys_mmap(br + 0x100000, 4096, 3, 0x32, -1, 0) == (i64)(br + 0x100000));
    CHECK((u64)sys_brk(br + 0x200000) == br);                             /* refused: old break */
    /* the limit: ENOMEM, nothing changes */
    u64 before = mm_used_bytes();
    mm_set_limit(before + (1 << 20));
    CHECK(sys_mmap(0, 2 << 20, 3, 0x22, -1, 0) == -ENOMEM && mm_used_bytes() == before);
    CHECK(sys_mmap(0, 1 << 20, 3, 0x22, -1, 0) > 0);
    CHECK(sys_mmap(0, 4096, 3, 0x22, -1, 0) == -ENOMEM);
    CHECK(kmalloc(100) == 0);
    mm_set_limit(0);
    CHECK(sys_mmap(0, RAM, 3, 0x22, -1, 0) == -ENOMEM);                   /* more than RAM */
    CHECK(sys_mmap(0, 1ull << 62, 3, 0x22, -1, 0) == -ENOMEM);
    /* user pointers: wraparound, outside the arena, unmapped */
    CHECK(!uaccess_ok((void *)~0ull, 2) && !uaccess_ok((void *)0x1000, 1) && !uaccess_ok((void *)RAM, 1));
    CHECK(uaccess_ok((void *)e, 0));
    /* kmalloc */
    void *p1 = kmalloc(10), *p2 = kmalloc(5000), *p3 = krealloc(p1, 3000);
    CHECK(p1 && p2 && p3 && uaccess_w(p2, 5000));
    kfree(p2); kfree(p3);
    char maps[4096];
    CHECK(mm_maps_text(maps, sizeof maps) > 0 && strstr(maps, "00400000-") != 0);
    /* execve: every program page goes, kmalloc's stay (small and large blocks) */
    void *k1 = kmalloc(40), *k2 = kmalloc(20000);
    memset(k1, 0x5a, 40); memset(k2, 0x5b, 20000);
    i64 m1 = sys_mmap(0, 3 << 20, 3, 0x22, -1, 0);
    CHECK(m1 > 0 && mm_runtime_holds((u64)k2, 1) && !mm_runtime_holds((u64)m1, 3 << 20));
    u64 kpages = 0;
    for (u64 i = FB_ARENA_BASE / PAGE; i < RAM / PAGE; i++) kpages += (g_kmap[i >> 6] >> (i & 63)) & 1;
    mm_exec_reset();
    CHECK(mm_used_bytes() == kpages * PAGE);
    CHECK(!uaccess_w((void *)m1, 1) && !uaccess_w((void *)FB_ARENA_BASE, 1) && !uaccess_w((void *)(RAM - 4096), 1));
    CHECK(uaccess_w(k1, 40) && uaccess_w(k2, 20000) && ((u8 *)k1)[39] == 0x5a && ((u8 *)k2)[19999] == 0x5b);
    CHECK(mm_range_free(FB_ARENA_BASE, 0x10000) && !mm_range_free((u64)k2, 1));
    CHECK(mm_reserve(RAM - STACK_SIZE, STACK_SIZE) == 0 && uaccess_w((void *)(RAM - 8), 8));
    void *k3 = kmalloc(30);            /* the free lists survived */
    CHECK(k3 && uaccess_w(k3, 30));
    kfree(k1); kfree(k2); kfree(k3);
    CHECK(!mm_runtime_holds(FB_ARENA_BASE, 0x10000));
    munmap(ram, RAM - FB_ARENA_BASE);
    if (fails) { fprintf(stderr, "guest-unit-mm: %d failures\n", fails); return 1; }
    printf("guest-unit-mm: ok\n");
    return 0;
}
