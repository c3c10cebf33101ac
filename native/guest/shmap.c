/*
 * shmap.c — shared mappings: MAP_SHARED + PROT_WRITE of a file, and
 * MAP_SHARED | MAP_ANONYMOUS. The guest has no page tables: mm.c copies the
 * file's bytes into arena pages and this table records each such mapping
 * (address, length, overlay node or none, file offset) so a file's pages are
 * written back to it on msync, munmap, mremap, exit, and before the file is
 * read, written or stat'ed through the VFS. Bytes past EOF are never
 * persisted; the mapping never changes the file size.
 *
 * Across a fork (abi.h, "Guest-to-host calls"): shm_prepare_fork() makes every
 * record host shared memory (FB_CALL_SHM_SHARE): a file's object is keyed per
 * overlay node (the key lives in the node, object offset = file offset), an
 * anonymous mapping gets an object of its own (a file's object starts at the
 * file offset of the node's first shared range: shm_base). A later MAP_SHARED mapping of a
 * keyed node shares at once; munmap, a MAP_FIXED over it, execve and exit
 * unshare (FB_CALL_SHM_UNSHARE) after the write-back. The pages stay allocated
 * in the arena: the host only changes what backs them. futex words inside a
 * host-shared range wait and wake across VMs (shm_futex_*, used by sys_misc.c).
 */
#include "fdtab.h"
#include "files.h"

#define SHMAP_MAX 256
struct shmap {
    u64 addr, len, off;      /* off: file offset, or 0 (anonymous) */
    struct onode *o;         /* NULL: MAP_SHARED | MAP_ANONYMOUS */
    u64 key;                 /* host shared memory object, 0 while local */
};
static struct shmap g_sm[SHMAP_MAX];
HOT u32 g_shmap_n;   /* live records: the hot paths test it before anything else */
HOT u32 g_shm_host_n; /* records that are host shared memory: futex calls test it */

/* the pages' bytes that lie inside the file, copied back when they differ */
static void wb(const struct shmap *m, u64 a, u64 len)
{
    u64 s = a > m->addr ? a : m->addr, e = a + len < m->addr + m->len ? a + len : m->addr + m->len;
    if (s >= e || !m->o) return;
    struct onode *o = m->o;
    u64 fo = m->off + (s - m->addr);
    if (fo >= o->size) return;
    u64 n = e - s;
    if (n > o->size - fo) n = o->size - fo;
    if (!memcmp(o->data + fo, (void *)s, n)) return;
    ovl_touch(o);
    memcpy(o->data + fo, (void *)s, n);
    ovl_stamp(o, TS_M | TS_C);
}

/* the part [a, a+len) of a host-shared record is private memory again */
static void unshare(struct shmap *m, u64 a, u64 len)
{
    u64 s = a > m->addr ? a : m->addr, e = a + len < m->addr + m->len ? a + len : m->addr + m->len;
    if (m->key && s < e) host_call0(FB_CALL_SHM_UNSHARE, (i64)s, (i64)(e - s), 0, 0);
}

static void drop(struct shmap *m)
{
    if (m->o) ovl_put(m->o);
    if (m->key) g_shm_host_n--;
    *m = g_sm[--g_shmap_n];
    g_sm[g_shmap_n].o = 0;
    g_sm[g_shmap_n].key = 0;
}

/* the object offset of record m: a file's object starts at the file offset of the
 * node's first shared range (the host makes a new object from offset 0), so object
 * offset = file offset - o->shm_base; anonymous memory from its own start */
static u64 obj_off(const struct shmap *m) { return m->o ? m->off - m->o->shm_base : m->off; }

/* SHM_SHARE of record m: the node's object for a file (made now when the node has
 * none), a new one for anonymous memory. 0 or -errno (the record stays local). A
 * file range below the node's object start cannot be shared (EINVAL). */
static int share(struct shmap *m)
{
    u64 key = m->o ? m->o->shm_key : 0;
    if (key && m->off < m->o->shm_base) return -EINVAL;
    u64 off = key ? obj_off(m) : 0;
    i64 r = host_call0(FB_CALL_SHM_SHARE, (i64)m->addr, (i64)m->len, (i64)key, (i64)off);
    if (r <= 0) return r < 0 ? (int)r : -EIO;
    if (key && (u64)r != key) { host_call0(FB_CALL_SHM_UNSHARE, (i64)m->addr, (i64)m->len, 0, 0); return -EIO; }
    m->key = (u64)r;
    if (m->o && !key) { m->o->shm_key = (u64)r; m->o->shm_base = m->off; }
    if (!m->o) m->off = 0;
    g_shm_host_n++;
    return 0;
}

/* is fd's mapping (shared, writable) one to record? 1 yes, 0 not a regular
 * file (the caller decides), -EACCES a file not open read-write, -ENOMEM the
 * table is full */
int shmap_check(i64 fd)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    if (f->ops != &g_file_ops) return 0;
    if (f->ref.kind != VK_OVL || !writable(f) || !readable(f)) return -EACCES;
    return g_shmap_n == SHMAP_MAX ? -ENOMEM : 1;
}

/* record a mapping shmap_check allowed (mm.c has placed and filled it); a node
 * that is host shared memory already (a fork shared it, here or in the VM this one
 * was forked from) shares the new range at once. 0 or -errno (mm.c unmaps). */
int shmap_add(i64 fd, u64 addr, u64 len, u64 off)
{
    struct file *f = fget(fd);
    if (!f || g_shmap_n == SHMAP_MAX) return -ENOMEM;
    struct shmap *m = &g_sm[g_shmap_n++];
    m->addr = addr; m->len = PAGE_UP(len); m->off = off; m->o = f->ref.o; m->key = 0;
    m->o->refs++;   /* Linux keeps the mapping (and the file) after close */
    if (m->o->shm_key) {
        int e = share(m);
        if (e) { drop(m); return e; }
    }
    return 0;
}

/* MAP_SHARED | MAP_ANONYMOUS: recorded so a fork can share it (shmap_anon_check
 * first: the table has room) */
int shmap_anon_check(void) { return g_shmap_n == SHMAP_MAX ? -ENOMEM : 0; }
void shmap_add_anon(u64 addr, u64 len)
{
    if (g_shmap_n == SHMAP_MAX) return;
    struct shmap *m = &g_sm[g_shmap_n++];
    m->addr = addr; m->len = PAGE_UP(len); m->off = 0; m->o = 0; m->key = 0;
}

/* msync: write back every mapping overlapping [addr, addr+len) */
void shmap_sync(u64 addr, u64 len)
{
    for (u32 i = 0; i < g_shmap_n; i++) wb(&g_sm[i], addr, len);
}

void shmap_sync_all(void)
{
    for (u32 i = 0; i < g_shmap_n; i++) wb(&g_sm[i], g_sm[i].addr, g_sm[i].len);
}

/* munmap (or a MAP_FIXED over it): write back and forget [addr, addr+len);
 * a hole in the middle splits a record, which needs a free slot (else ENOMEM,
 * before anything changed) */
int shmap_unmap(u64 addr, u64 len)
{
    u64 e = addr + len;
    for (u32 i = 0; i < g_shmap_n; i++) {
        struct shmap *m = &g_sm[i];
        if (addr > m->addr && e < m->addr + m->len && g_shmap_n == SHMAP_MAX) return -ENOMEM;
    }
    for (u32 i = 0; i < g_shmap_n;) {
        struct shmap *m = &g_sm[i];
        u64 me = m->addr + m->len;
        if (!(addr < me && m->addr < e)) { i++; continue; }
        wb(m, addr, len);
        unshare(m, addr, len);
        if (addr <= m->addr && e >= me) { drop(m); continue; }      /* all of it */
        if (addr > m->addr && e < me) {                              /* the middle: split */
            struct shmap *r = &g_sm[g_shmap_n++];
            r->addr = e; r->len = me - e; r->o = m->o; r->key = m->key;
            r->off = m->o || m->key ? m->off + (e - m->addr) : 0;
            if (r->o) r->o->refs++;
            if (r->key) g_shm_host_n++;
            m->len = addr - m->addr;
        } else if (addr <= m->addr) {                                /* the head */
            if (m->o || m->key) m->off += e - m->addr;               /* the object offset moves with it */
            m->len = me - e; m->addr = e;
        } else {                                                     /* the tail */
            m->len = addr - m->addr;
        }
        i++;
    }
    return 0;
}

/* mremap: served when [old, old+olen) is exactly one record (or lies in none),
 * and a host-shared record only shrinks in place; anything else → -EINVAL before
 * mm.c moves pages */
int shmap_remap_check(u64 old, u64 olen, u64 nlen, u64 flags)
{
    for (u32 i = 0; i < g_shmap_n; i++) {
        struct shmap *m = &g_sm[i];
        if (!(old < m->addr + m->len && m->addr < old + olen)) continue;
        if (m->addr != old || m->len != olen) return -EINVAL;
        if (m->key && (nlen > olen || (flags & 2 /* MREMAP_FIXED */))) return -EINVAL;
    }
    return 0;
}

/* mremap done (mm.c wrote back a shrinking tail first): the record at old now lives at nb with nlen bytes; pages that
 * grew are filled from the file (mm.c zeroed them) */
void shmap_remapped(u64 old, u64 olen, u64 nb, u64 nlen)
{
    for (u32 i = 0; i < g_shmap_n; i++) {
        struct shmap *m = &g_sm[i];
        if (m->addr != old || m->len != olen) continue;
        if (m->key && nlen < olen) host_call0(FB_CALL_SHM_UNSHARE, (i64)(old + nlen), (i64)(olen - nlen), 0, 0);
        m->addr = nb; m->len = nlen;
        if (m->o && nlen > olen && m->off + olen < m->o->size) {
            u64 n = m->o->size - (m->off + olen);
            if (n > nlen - olen) n = nlen - olen;
            memcpy((void *)(nb + olen), m->o->data + m->off + olen, n);
        }
        return;
    }
}

/* the VFS is about to read, stat or write node o: its mappings' bytes first */
void shmap_flush_node(struct onode *o)
{
    for (u32 i = 0; i < g_shmap_n; i++)
        if (g_sm[i].o == o) wb(&g_sm[i], g_sm[i].addr, g_sm[i].len);
}

/* a write(2) changed o's bytes [off, off+n): the mappings see them (one
 * coherent page cache) */
void shmap_refresh_node(struct onode *o, u64 off, u64 n)
{
    for (u32 i = 0; i < g_shmap_n; i++) {
        struct shmap *m = &g_sm[i];
        if (m->o != o) continue;
        u64 s = off > m->off ? off : m->off, e = off + n < m->off + m->len ? off + n : m->off + m->len;
        if (e > o->size) e = o->size;
        if (s < e) memcpy((void *)(m->addr + (s - m->off)), o->data + s, e - s);
    }
}

/* ---- across processes ---- */
/* before FB_CALL_FORK: every record becomes host shared memory. 0 or the first
 * error (the records shared so far stay shared: they work) */
int shm_prepare_fork(void)
{
    for (u32 i = 0; i < g_shmap_n; i++) {
        struct shmap *m = &g_sm[i];
        if (m->key) continue;
        int e = share(m);
        if (e) return e;
    }
    return 0;
}

/* execve: the program's memory goes; file bytes are written back, host-shared
 * ranges unshared, and every record dropped */
void shm_exec_cleanup(void)
{
    while (g_shmap_n) {
        struct shmap *m = &g_sm[g_shmap_n - 1];
        wb(m, m->addr, m->len);
        unshare(m, m->addr, m->len);
        drop(m);
    }
}

/* exit: the same write-back, and the host-shared ranges unshared */
void shm_exit(void)
{
    for (u32 i = 0; i < g_shmap_n; i++) {
        struct shmap *m = &g_sm[i];
        wb(m, m->addr, m->len);
        if (m->key) { unshare(m, m->addr, m->len); m->key = 0; g_shm_host_n--; }
    }
}

/* does [a, a+len) touch host shared memory? (madvise must not zero it) */
int shm_overlaps_host(u64 a, u64 len)
{
    for (u32 i = 0; i < g_shmap_n; i++) {
        const struct shmap *m = &g_sm[i];
        if (m->key && a < m->addr + m->len && m->addr < a + len) return 1;
    }
    return 0;
}

/* the host futex entry of the word at uaddr (expecting val): 1 when it lies in host
 * shared memory, 0 when not (a local futex), -EOVERFLOW past the entry's 4 GiB offset */
int shm_futex_ent(const u32 *uaddr, u32 val, struct fb_futex_ent *fe)
{
    u64 a = (u64)uaddr;
    for (u32 i = 0; i < g_shmap_n; i++) {
        const struct shmap *m = &g_sm[i];
        if (!m->key || a < m->addr || a + 4 > m->addr + m->len) continue;
        u64 off = obj_off(m) + (a - m->addr);
        if (off > 0xffffffffull) return -EOVERFLOW;
        fe->key = m->key; fe->off = (u32)off; fe->expect = val;
        return 1;
    }
    return 0;
}

/* FUTEX_WAKE of a word in host shared memory: `local` waiters of this VM were woken
 * already; up to n - local more in other VMs. The total woken, or the host's error
 * when nobody was */
i64 shm_futex_wake(const u32 *uaddr, u32 bitset, int n, int local)
{
    struct fb_futex_ent fe;
    if (local >= n || shm_futex_ent(uaddr, 0, &fe) != 1) return local;
    i64 r = host_call0(FB_CALL_FUTEX_WAKE, (i64)fe.key, fe.off, n - local, bitset);
    if (r < 0) return local ? local : r;
    if (r > n - local) r = n - local;
    return local + r;
}
