/*
 * shmap.c — shared writable file mappings (MAP_SHARED + PROT_WRITE of a file).
 * The guest has no page tables: mm.c copies the file's bytes into arena pages
 * and this table records each such mapping (address, length, overlay node,
 * file offset) so the pages are written back to the file on msync, munmap,
 * mremap, exit, and before the file is read, written or stat'ed through the VFS.
 * Bytes past EOF are never persisted; the mapping never changes the file size.
 */
#include "fdtab.h"
#include "files.h"

#define SHMAP_MAX 64
struct shmap { u64 addr, len, off; struct onode *o; };
static struct shmap g_sm[SHMAP_MAX];
HOT u32 g_shmap_n;   /* live records: the hot paths test it before anything else */

/* the pages' bytes that lie inside the file, copied back when they differ */
static void wb(const struct shmap *m, u64 a, u64 len)
{
    u64 s = a > m->addr ? a : m->addr, e = a + len < m->addr + m->len ? a + len : m->addr + m->len;
    if (s >= e) return;
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

static void drop(struct shmap *m)
{
    ovl_put(m->o);
    *m = g_sm[--g_shmap_n];
    g_sm[g_shmap_n].o = 0;
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

/* record a mapping shmap_check allowed (mm.c has placed and filled it) */
void shmap_add(i64 fd, u64 addr, u64 len, u64 off)
{
    struct file *f = fget(fd);
    if (!f || g_shmap_n == SHMAP_MAX) return;
    struct shmap *m = &g_sm[g_shmap_n++];
    m->addr = addr; m->len = PAGE_UP(len); m->off = off; m->o = f->ref.o;
    m->o->refs++;   /* Linux keeps the mapping (and the file) after close */
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
        if (addr <= m->addr && e >= me) { drop(m); continue; }      /* all of it */
        if (addr > m->addr && e < me) {                              /* the middle: split */
            struct shmap *r = &g_sm[g_shmap_n++];
            r->addr = e; r->len = me - e; r->off = m->off + (e - m->addr); r->o = m->o;
            r->o->refs++;
            m->len = addr - m->addr;
        } else if (addr <= m->addr) {                                /* the head */
            m->off += e - m->addr; m->len = me - e; m->addr = e;
        } else {                                                     /* the tail */
            m->len = addr - m->addr;
        }
        i++;
    }
    return 0;
}

/* mremap: served when [old, old+olen) is exactly one record (or lies in none);
 * anything else → -EINVAL before mm.c moves pages */
int shmap_remap_check(u64 old, u64 olen)
{
    for (u32 i = 0; i < g_shmap_n; i++) {
        struct shmap *m = &g_sm[i];
        if (!(old < m->addr + m->len && m->addr < old + olen)) continue;
        if (m->addr != old || m->len != olen) return -EINVAL;
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
        m->addr = nb; m->len = nlen;
        if (nlen > olen && m->off + olen < m->o->size) {
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
