/*
 * vfs.c — the file tree: the read-only image (image.h, mapped at image_base)
 * under a writable in-memory overlay, plus the synthetic /dev, /proc, /sys
 * nodes of dev.c. Overlay nodes live in a path-keyed hash; a whiteout node
 * hides an image path; an overlay dir remembers the image dir it shadows
 * (img >= 0) or hides it (opaque, img = -1). Paths are resolved one component
 * at a time (symlinks, "..", 40 hops max). Timestamps follow Linux: image
 * entries keep the build time until changed, a directory's mtime and ctime
 * move when an entry is created, removed or renamed in it (image directories
 * keep theirs in a small stamp table). A hard link is a node naming another
 * (ln); the named node lives while a name or a descriptor holds it. Every
 * image offset is untrusted.
 */
#include "files.h"

u64 g_img_base, g_img_size;
static const struct fb_img_header *g_hdr;
static u64 g_entry_count;
#define NBUCKET 1024
static struct onode *g_bucket[NBUCKET];
static struct onode *g_all;
static u64 g_next_ino = 1ull << 32;
static u64 g_seq_next;
u64 g_ovl_used, g_ovl_quota; /* see files.h */

int ovl_quota_ok(u64 more) { return !g_ovl_quota || (g_ovl_used <= g_ovl_quota && more <= g_ovl_quota - g_ovl_used); }

static int chg_tracked(const struct onode *o)
{
    return o->linked && !o->whiteout && (o->mode & S_IFMT) != S_IFDIR;
}
void ovl_touch(struct onode *o)
{
    if (chg_tracked(o)) chg_note(o->path, 1, o->mode, o->size);
}

static struct ktimespec now_ts(void)
{
    u64 ns = time_wall_ns();
    return (struct ktimespec){ (i64)(ns / 1000000000ull), (i64)(ns % 1000000000ull) };
}
void ovl_stamp(struct onode *o, int which)
{
    struct ktimespec t = now_ts();
    if (which & TS_A) o->atime = t;
    if (which & TS_M) o->mtime = t;
    if (which & TS_C) o->ctime = t;
}

/* image directories whose entries changed: their mtime (= ctime) since */
struct dstamp { u32 img; struct ktimespec t; };
static struct dstamp *g_dstamp;
static u32 g_ndstamp, g_dstamp_cap;
static struct dstamp *dstamp_find(u32 img)
{
    for (u32 i = 0; i < g_ndstamp; i++) if (g_dstamp[i].img == img) return &g_dstamp[i];
    return 0;
}
static void dstamp_set(u32 img, struct ktimespec t)
{
    struct dstamp *d = dstamp_find(img);
    if (!d) {
        if (g_ndstamp == g_dstamp_cap) {
            u32 nc = g_dstamp_cap ? g_dstamp_cap * 2 : 16;
            struct dstamp *n = krealloc(g_dstamp, nc * sizeof *n);
            if (!n) return; /* out of memory: the stamp stays the build time */
            g_dstamp = n; g_dstamp_cap = nc;
        }
        d = &g_dstamp[g_ndstamp++];
        d->img = img;
    }
    d->t = t;
}
static struct ktimespec build_ts(void) { return (struct ktimespec){ (i64)g_hdr->build_time, 0 }; }

int fd_dir_path(int fd, const char **path); /* fd.c */
extern char g_cwd[PATH_MAX_RT];

int img_init(u64 base, u64 size)
{
    const struct fb_img_header *h = (const void *)base;
    if (!base || size < sizeof *h) return -ENOENT;
    if (h->magic != FB_IMG_MAGIC || h->version != FB_IMG_VERSION || h->image_size > size) return -ENOEXEC;
    if (h->entry_count == 0 || h->entry_count > size / sizeof(struct fb_img_entry) ||
        h->entries_off > size || h->entry_count * sizeof(struct fb_img_entry) > size - h->entries_off ||
        h->names_off > size || h->names_size > size - h->names_off || (h->entries_off & 7))
        return -ENOEXEC;
    g_img_base = base;
    g_img_size = h->image_size;
    g_hdr = h;
    g_entry_count = h->entry_count;
    if (((const struct fb_img_entry *)(base + h->entries_off))->mode >> 12 != FB_IMG_S_IFDIR >> 12) return -ENOEXEC;
    return 0;
}

const struct fb_img_entry *img_entry(u32 idx)
{
    if (idx >= g_entry_count) return 0;
    return (const struct fb_img_entry *)(g_img_base + g_hdr->entries_off) + idx;
}

static const char *img_name(const struct fb_img_entry *e, u32 *len)
{
    if (e->name_off > g_hdr->names_size || e->name_len > g_hdr->names_size - e->name_off) { *len = 0; return ""; }
    *len = e->name_len;
    return (const char *)(g_img_base + g_hdr->names_off + e->name_off);
}

static int img_data(const struct fb_img_entry *e, const u8 **d, u64 *n)
{
    if (e->data_off > g_img_size || e->size > g_img_size - e->data_off) return -EIO;
    *d = (const u8 *)(g_img_base + e->data_off);
    *n = e->size;
    return 0;
}

static i64 img_child(u32 dir, const char *name, u64 len)
{
    const struct fb_img_entry *d = img_entry(dir);
    if (!d || (d->mode & S_IFMT) != S_IFDIR) return -ENOTDIR;
    if (d->first_child > g_entry_count || d->child_count > g_entry_count - d->first_child) return -EIO;
    u64 lo = d->first_child, hi = d->first_child + d->child_count;
    while (lo < hi) {
        u64 mid = lo + (hi - lo) / 2;
        u32 nl;
        const char *nm = img_name(img_entry((u32)mid), &nl);
        int c = memcmp(nm, name, nl < len ? nl : len);
        if (!c) c = nl < len ? -1 : nl > len ? 1 : 0;
        if (!c) return (i64)mid;
        if (c < 0) lo = mid + 1; else hi = mid;
    }
    return -ENOENT;
}

/* ---- overlay hash ---- */
static u32 hash_path(const char *p)
{
    u32 h = 2166136261u;
    while (*p) { h ^= (u8)*p++; h *= 16777619u; }
    return h;
}
static struct onode *ovl_find(const char *path)
{
    u32 h = hash_path(path);
    for (struct onode *o = g_bucket[h % NBUCKET]; o; o = o->hnext)
        if (o->hash == h && !strcmp(o->path, path)) return o;
    return 0;
}
static void ovl_unhash(struct onode *o)
{
    struct onode **pp = &g_bucket[o->hash % NBUCKET];
    while (*pp && *pp != o) pp = &(*pp)->hnext;
    if (*pp) *pp = o->hnext;
    struct onode **ap = &g_all;
    while (*ap && *ap != o) ap = &(*ap)->anext;
    if (*ap) *ap = o->anext;
    o->linked = 0;
}
static int ovl_hash(struct onode *o, const char *path)
{
    u64 l = strlen(path);
    char *p = kmalloc(l + 1);
    if (!p) return -ENOMEM;
    memcpy(p, path, l + 1);
    if (o->path) kfree(o->path);
    o->path = p;
    o->hash = hash_path(p);
    o->hnext = g_bucket[o->hash % NBUCKET];
    g_bucket[o->hash % NBUCKET] = o;
    o->anext = g_all;
    g_all = o;
    o->linked = 1;
    o->seq = ++g_seq_next;
    return 0;
}
void ovl_put(struct onode *o)
{
    if (--o->refs > 0 || o->linked) return;
    g_ovl_used -= o->size;
    kfree(o->data);
    kfree(o->path);
    kfree(o);
}

struct onode *ovl_create(const char *path, u32 mode)
{
    struct onode *o = ovl_find(path);
    if ((mode & S_IFMT) != S_IFDIR && (!o || o->whiteout)) chg_note(path, 0, mode, 0);
    if (o && o->whiteout) {
        o->whiteout = 0;
        o->mode = mode;
        o->img = -1;  /* opaque: hides what the image had here */
        o->size = 0;
        ovl_stamp(o, TS_A | TS_M | TS_C);
        vfs_dir_changed(path);
        return o;
    }
    if (o) return 0;
    o = kzalloc(sizeof *o);
    if (!o) return 0;
    o->mode = mode;
    o->img = -1;
    o->ino = g_next_ino++;
    ovl_stamp(o, TS_A | TS_M | TS_C);
    if (ovl_hash(o, path)) { kfree(o); return 0; }
    vfs_dir_changed(path);
    return o;
}

struct onode *ovl_copy_up(const char *path, const struct vref *r)
{
    const struct fb_img_entry *e = img_entry(r->img);
    const u8 *d; u64 n;
    if (!e || img_data(e, &d, &n)) return 0;
    if ((e->mode & S_IFMT) != S_IFDIR && !ovl_quota_ok(n)) return 0;
    struct onode *o = kzalloc(sizeof *o);
    if (!o) return 0;
    o->mode = e->mode;
    o->img = (e->mode & S_IFMT) == S_IFDIR ? (i64)r->img : -1;
    o->ino = r->img + 1;
    o->atime = o->mtime = o->ctime = build_ts();
    if ((e->mode & S_IFMT) == S_IFDIR) { struct dstamp *ds = dstamp_find(r->img); if (ds) o->mtime = o->ctime = ds->t; }
    /* a symlink's target is its data too */
    if (((e->mode & S_IFMT) == S_IFREG || (e->mode & S_IFMT) == S_IFLNK) && n) {
        o->data = kmalloc(n);
        if (!o->data) { kfree(o); return 0; }
        memcpy(o->data, d, n);
        o->size = o->cap = n;
    }
    if (ovl_hash(o, path)) { kfree(o->data); kfree(o); return 0; }
    g_ovl_used += o->size;
    return o;
}

int ovl_set_size(struct onode *o, u64 n)
{
    if (n > o->size && !ovl_quota_ok(n - o->size)) return -ENOSPC;
    ovl_touch(o);
    if (n > o->cap) {
        u64 c = o->cap ? o->cap : 256;
        while (c < n) c *= 2;
        u8 *d = krealloc(o->data, c);
        if (!d) return -ENOSPC;
        memset(d + o->cap, 0, c - o->cap);
        o->data = d;
        o->cap = c;
    } else if (n < o->size) {
        memset(o->data + n, 0, o->size - n);
    }
    g_ovl_used = g_ovl_used - o->size + n;
    o->size = n;
    ovl_stamp(o, TS_M | TS_C);
    return 0;
}

/* ---- nodes ---- */
int vfs_mode(const struct vref *r, u32 *mode)
{
    switch (r->kind) {
    case VK_IMG: { const struct fb_img_entry *e = img_entry(r->img); if (!e) return -EIO; *mode = e->mode; return 0; }
    case VK_OVL: *mode = r->o->mode; return 0;
    case VK_DEV: *mode = g_devs[r->dev].mode; return 0;
    }
    return -ENOENT;
}

int vfs_stat(const struct vref *r, struct kstat *st)
{
    u32 mode;
    int e = vfs_mode(r, &mode);
    if (e) return e;
    memset(st, 0, sizeof *st);
    st->dev = 0x801;
    st->mode = mode;
    st->nlink = (mode & S_IFMT) == S_IFDIR ? 2 : 1;
    st->blksize = 4096;
    struct ktimespec a = build_ts(), m = a, c = a;
    if (r->kind == VK_IMG) {
        st->ino = r->img + 1;
        st->size = (i64)img_entry(r->img)->size;
        struct dstamp *ds = (mode & S_IFMT) == S_IFDIR ? dstamp_find(r->img) : 0;
        if (ds) m = c = ds->t;
    } else if (r->kind == VK_OVL) {
        st->nlink += (u64)r->o->links;
        st->ino = r->o->ino;
        st->size = (i64)r->o->size;
        st->uid = FB_UID; st->gid = FB_GID;
        a = r->o->atime; m = r->o->mtime; c = r->o->ctime;
    } else {
        st->dev = 5;
        st->ino = 100 + (u64)r->dev;
        if (g_devs[r->dev].type == DEV_LINK) st->size = (i64)strlen(dev_link_target(r->dev));
        if ((mode & S_IFMT) == S_IFCHR) st->rdev = (1 << 8) | (u64)r->dev;
    }
    st->blocks = (st->size + 511) / 512;
    st->atime = a.sec; st->atime_ns = a.nsec;
    st->mtime = m.sec; st->mtime_ns = m.nsec;
    st->ctime = c.sec; st->ctime_ns = c.nsec;
    return 0;
}

int vfs_file_data(const struct vref *r, const u8 **data, u64 *size)
{
    if (r->kind == VK_IMG) return img_data(img_entry(r->img), data, size);
    if (r->kind == VK_OVL) { *data = r->o->data; *size = r->o->size; return 0; }
    return -EINVAL;
}

int vfs_readlink(const struct vref *r, char *buf, u64 cap)
{
    u32 mode;
    const u8 *d; u64 n;
    if (vfs_mode(r, &mode) || (mode & S_IFMT) != S_IFLNK) return -EINVAL;
    if (r->kind == VK_DEV) { d = (const u8 *)dev_link_target(r->dev); n = strlen((const char *)d); }
    else if (vfs_file_data(r, &d, &n)) return -EIO;
    if (n > cap) n = cap;
    if (n) memcpy(buf, d, n);
    return (int)n;
}

static int is_dev_path(const char *p)
{
    return !strncmp(p, "/dev", 4) || !strncmp(p, "/proc", 5) || !strncmp(p, "/sys", 4);
}

/* /dev/shm is an overlay directory like /tmp (tmpfs-like, mode 1777: sem_open and
 * shm_open create their files there); it is made at boot (vfs_boot_dirs) */
#define SHM_DIR "/dev/shm"
int vfs_boot_dirs(void) { return ovl_create(SHM_DIR, S_IFDIR | 01777) ? 0 : -ENOMEM; }

/* a path under /dev, /proc or /sys, where nothing can be created (except in /dev/shm) */
int vfs_synthetic(const char *p)
{
    if (!strncmp(p, SHM_DIR "/", sizeof SHM_DIR)) return 0;
    return !strncmp(p, "/dev/", 5) || !strncmp(p, "/proc/", 6) || !strncmp(p, "/sys/", 5);
}

static int lookup_child(const struct vref *parent, const char *full, const char *name, u64 nlen, struct vref *out)
{
    memset(out, 0, sizeof *out);
    if (is_dev_path(full)) {
        int d = dev_lookup(full);
        if (d >= 0) { out->kind = VK_DEV; out->dev = d; return 0; }
        if (parent->kind == VK_DEV && strcmp(full, SHM_DIR)) return -ENOENT;
    }
    struct onode *o = ovl_find(full);
    if (o) {
        if (o->whiteout) return -ENOENT;
        out->kind = VK_OVL; out->o = o->ln ? o->ln : o;
        return 0;
    }
    i64 dir = parent->kind == VK_IMG ? (i64)parent->img : parent->kind == VK_OVL ? parent->o->img : -1;
    if (dir < 0) return -ENOENT;
    i64 c = img_child((u32)dir, name, nlen);
    if (c < 0) return (int)c;
    out->kind = VK_IMG; out->img = (u32)c;
    return 0;
}

#define MAXDEPTH 128
int vfs_resolve(int dirfd, const char *path, int follow, char *out, struct vref *ref)
{
    static char work[2 * PATH_MAX_RT + 8], tmp[2 * PATH_MAX_RT + 8], res[PATH_MAX_RT];
    static struct vref stack[MAXDEPTH];
    static u32 lens[MAXDEPTH];
    u64 pl = strlen(path);
    ref->kind = 0xff; /* VK_NONE only when the last component is missing */
    if (!pl) return -ENOENT;
    if (pl >= PATH_MAX_RT) return -ENAMETOOLONG;
    if (path[0] == '/') memcpy(work, path, pl + 1);
    else {
        const char *base = g_cwd;
        if (dirfd != AT_FDCWD) { int e = fd_dir_path(dirfd, &base); if (e) return e; }
        u64 bl = strlen(base);
        memcpy(work, base, bl); work[bl] = '/'; memcpy(work + bl + 1, path, pl + 1);
    }
    u32 rlen = 0, depth = 0, links = 0;
    res[0] = 0;
    memset(&stack[0], 0, sizeof stack[0]);
    stack[0].kind = VK_IMG; stack[0].img = 0;
    const char *p = work;
    for (;;) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *q = p;
        while (*q && *q != '/') q++;
        u64 cl = (u64)(q - p);
        const char *after = q;
        while (*after == '/') after++;
        int last = !*after;
        if (cl == 1 && p[0] == '.') { p = q; continue; }
        if (cl == 2 && p[0] == '.' && p[1] == '.') {
            if (depth) { depth--; rlen = lens[depth + 1]; res[rlen] = 0; }
            p = q; continue;
        }
        u32 mode;
        int e = vfs_mode(&stack[depth], &mode);
        if (e) return e;
        if ((mode & S_IFMT) != S_IFDIR) return -ENOTDIR;
        if (rlen + 1 + cl >= PATH_MAX_RT || depth + 1 >= MAXDEPTH) return -ENAMETOOLONG;
        u32 prev = rlen;
        res[rlen++] = '/'; memcpy(res + rlen, p, cl); rlen += (u32)cl; res[rlen] = 0;
        struct vref child;
        e = lookup_child(&stack[depth], res, p, cl, &child);
        if (e) {
            if (e == -ENOENT && last) { memcpy(out, res, rlen + 1); ref->kind = VK_NONE; }
            return e;
        }
        e = vfs_mode(&child, &mode);
        if (e) return e;
        if ((mode & S_IFMT) == S_IFLNK && (!last || follow)) {
            if (++links > 40) return -ELOOP;
            int n = vfs_readlink(&child, tmp, PATH_MAX_RT);
            if (n <= 0) return n < 0 ? n : -ENOENT;
            u64 rest = strlen(q);
            if ((u64)n + rest + 1 >= sizeof tmp) return -ENAMETOOLONG;
            memcpy(tmp + n, q, rest + 1);
            memcpy(work, tmp, (u64)n + rest + 1);
            p = work;
            if (work[0] == '/') { depth = 0; rlen = 0; }
            else rlen = prev;
            res[rlen] = 0;
            continue;
        }
        depth++;
        stack[depth] = child;
        lens[depth] = prev;
        p = q;
    }
    if (rlen == 0) { out[0] = '/'; out[1] = 0; } else memcpy(out, res, rlen + 1);
    *ref = stack[depth];
    return 0;
}

/* the image's entry for `path` (ignoring the overlay), or -1 */
static i64 img_lookup(const char *path)
{
    u32 cur = 0;
    const char *p = path;
    for (;;) {
        while (*p == '/') p++;
        if (!*p) return cur;
        const char *q = p;
        while (*q && *q != '/') q++;
        i64 c = img_child(cur, p, (u64)(q - p));
        if (c < 0) return -1;
        cur = (u32)c;
        p = q;
    }
}
static int img_has(const char *path) { return img_lookup(path) >= 0; }

void vfs_dir_changed(const char *path)
{
    static char dir[PATH_MAX_RT];
    u64 l = strnlen(path, PATH_MAX_RT - 1);
    while (l && path[l - 1] != '/') l--;
    if (l > 1) l--;            /* drop the slash, keep "/" for the root */
    if (!l) return;            /* not an absolute path */
    memcpy(dir, path, l);
    dir[l] = 0;
    if (is_dev_path(dir) && dev_lookup(dir) >= 0) return;
    struct onode *o = ovl_find(dir);
    if (o) { if (!o->whiteout) ovl_stamp(o, TS_M | TS_C); return; }
    i64 i = img_lookup(dir);
    if (i >= 0 && (img_entry((u32)i)->mode & S_IFMT) == S_IFDIR) dstamp_set((u32)i, now_ts());
}

static int parent_is(const char *child, const char *dir)
{
    u64 dl = strcmp(dir, "/") ? strlen(dir) : 0;
    if (strncmp(child, dir, dl) || child[dl] != '/' || !child[dl + 1]) return 0;
    for (const char *s = child + dl + 1; *s; s++) if (*s == '/') return 0;
    return 1;
}

#define DT_FIFO 1
#define DT_CHR 2
#define DT_DIR 4
#define DT_REG 8
#define DT_LNK 10
static u8 dtype(u32 mode)
{
    switch (mode & S_IFMT) {
    case S_IFDIR: return DT_DIR;
    case S_IFLNK: return DT_LNK;
    case S_IFCHR: return DT_CHR;
    case S_IFIFO: return DT_FIFO;
    case 0140000u: return 12; /* DT_SOCK */
    default: return DT_REG;
    }
}

static int put_dirent(u8 *buf, u64 cap, u64 *o, u64 ino, u64 off, u8 type, const char *name, u64 nl)
{
    u64 rl = (19 + nl + 1 + 7) & ~7ull;
    if (*o + rl > cap) return 0;
    u8 *d = buf + *o;
    memcpy(d, &ino, 8);
    memcpy(d + 8, &off, 8);
    u16 r16 = (u16)rl;
    memcpy(d + 16, &r16, 2);
    d[18] = type;
    memcpy(d + 19, name, nl);
    memset(d + 19 + nl, 0, rl - 19 - nl);
    *o += rl;
    return 1;
}

/* cursor: 0 ".", 1 "..", 2.. image/dev children, then 1<<32 + i overlay nodes */
i64 vfs_getdents(const char *path, const struct vref *r, u64 *pos, u8 *buf, u64 cap)
{
    static char full[PATH_MAX_RT + 260];
    u64 o = 0;
    u64 pl = strcmp(path, "/") ? strlen(path) : 0;
    i64 imgdir = r->kind == VK_IMG ? (i64)r->img : r->kind == VK_OVL ? r->o->img : -1;
    while (*pos < 2) {
        if (!put_dirent(buf, cap, &o, 1, *pos + 1, DT_DIR, "..", *pos + 1)) goto full;
        (*pos)++;
    }
    if (*pos < (1ull << 32)) {
        if (r->kind == VK_DEV) {
            for (u64 i = *pos - 2; i < (u64)dev_count(); i++, (*pos)++) {
                const char *dp = g_devs[i].path;
                if (!parent_is(dp, path)) continue;
                const char *nm = dp + pl + 1;
                if (!put_dirent(buf, cap, &o, 100 + i, *pos + 1, dtype(g_devs[i].mode), nm, strlen(nm))) goto full;
            }
        } else if (imgdir >= 0) {
            const struct fb_img_entry *d = img_entry((u32)imgdir);
            if (!d || d->first_child > g_entry_count || d->child_count > g_entry_count - d->first_child) return -EIO;
            for (u64 i = *pos - 2; i < d->child_count; i++, (*pos)++) {
                u32 idx = (u32)(d->first_child + i), nl;
                const struct fb_img_entry *e = img_entry(idx);
                const char *nm = img_name(e, &nl);
                if (pl + 1 + nl >= sizeof full) continue;
                memcpy(full, path, pl); full[pl] = '/'; memcpy(full + pl + 1, nm, nl); full[pl + 1 + nl] = 0;
                if (ovl_find(full)) continue;
                if (!put_dirent(buf, cap, &o, idx + 1, *pos + 1, dtype(e->mode), nm, nl)) goto full;
            }
        }
        *pos = 1ull << 32;
    }
    /* overlay children in order of their insertion sequence: the cursor is the last
     * sequence returned, so creating or deleting entries mid-listing skips nothing */
    for (;;) {
        u64 after = *pos - (1ull << 32);
        struct onode *best = 0;
        for (struct onode *n = g_all; n; n = n->anext)
            if (n->seq > after && (!best || n->seq < best->seq) && !n->whiteout && parent_is(n->path, path))
                best = n;
        if (!best) break;
        const char *nm = best->path + pl + 1;
        const struct onode *in = best->ln ? best->ln : best;
        if (!put_dirent(buf, cap, &o, in->ino, (1ull << 32) + best->seq, dtype(in->mode), nm, strlen(nm))) goto full;
        *pos = (1ull << 32) + best->seq;
    }
full:
    if (o == 0 && cap < 280) return -EINVAL;
    return (i64)o;
}

static int dir_empty(const char *path, const struct vref *r)
{
    u64 pos = 2;
    u8 buf[PATH_MAX_RT + 64]; /* room for the longest name: a full buffer is not "empty" */
    return vfs_getdents(path, r, &pos, buf, sizeof buf) == 0;
}

int vfs_unlink(const char *path, const struct vref *r, int dir)
{
    u32 mode;
    int e = vfs_mode(r, &mode);
    if (e) return e;
    if (r->kind == VK_DEV) return -EACCES;
    if (dir && (mode & S_IFMT) != S_IFDIR) return -ENOTDIR;
    if (!dir && (mode & S_IFMT) == S_IFDIR) return -EISDIR;
    if (dir && !dir_empty(path, r)) return -ENOTEMPTY;
    if ((mode & S_IFMT) != S_IFDIR) {
        struct kstat st;
        chg_note(path, 1, mode, vfs_stat(r, &st) ? 0 : (u64)st.size);
    }
    int shadow = img_has(path);
    vfs_dir_changed(path);
    if (r->kind == VK_OVL) {
        struct onode *o = r->o, *name = ovl_find(path);
        ovl_stamp(o, TS_C);   /* its link count fell (seen by an open descriptor) */
        if (name && name->ln == o) {          /* a second name: drop it, the node stays */
            ovl_unhash(name);
            kfree(name->path);
            kfree(name);
            o->links--;
            ovl_put(o);
        } else {
            if (o->links) o->links--;
            ovl_unhash(o);
            if (o->refs == 0) { o->refs = 1; ovl_put(o); }
        }
    }
    if (shadow) {
        struct onode *w = kzalloc(sizeof *w);
        if (!w) return -ENOMEM;
        w->whiteout = 1; w->img = -1; w->ino = g_next_ino++;
        if (ovl_hash(w, path)) { kfree(w); return -ENOMEM; }
    }
    return 0;
}

int vfs_rename(const char *from, const struct vref *fr, const char *to)
{
    static char t2[PATH_MAX_RT];
    struct vref tr;
    u32 fmode, tmode;
    int e = vfs_mode(fr, &fmode);
    if (e) return e;
    if (fr->kind == VK_DEV) return -EACCES;
    if (!strcmp(from, to)) return 0;
    u64 fl = strlen(from);
    if (!strncmp(to, from, fl) && to[fl] == '/') return -EINVAL;
    e = vfs_resolve(AT_FDCWD, to, 0, t2, &tr);
    if (e && e != -ENOENT) return e;
    if (!e) {
        if (tr.kind == VK_DEV) return -EACCES;
        if (tr.kind == VK_OVL && fr->kind == VK_OVL && tr.o == fr->o) return 0; /* two names of one node */
        vfs_mode(&tr, &tmode);
        if ((fmode & S_IFMT) == S_IFDIR && (tmode & S_IFMT) != S_IFDIR) return -ENOTDIR;
        if ((fmode & S_IFMT) != S_IFDIR && (tmode & S_IFMT) == S_IFDIR) return -EISDIR;
        e = vfs_unlink(t2, &tr, (tmode & S_IFMT) == S_IFDIR);
        if (e) return e;
    }
    if ((fmode & S_IFMT) != S_IFDIR) {
        struct kstat st;
        chg_note(from, 1, fmode, vfs_stat(fr, &st) ? 0 : (u64)st.size);
        chg_note(t2, 0, fmode, 0);
    }
    if ((fmode & S_IFMT) == S_IFDIR) {
        /* only directories that live wholly in the overlay can move */
        if (fr->kind != VK_OVL || fr->o->img >= 0 || img_has(from)) return -EXDEV;
        for (struct onode *n = g_all; n; ) {
            struct onode *next = n->anext;
            if (!strncmp(n->path, from, fl) && n->path[fl] == '/') {
                u64 rl = strlen(n->path + fl), tl = strlen(t2);
                if (tl + rl >= PATH_MAX_RT) return -ENAMETOOLONG;
                char *np = kmalloc(tl + rl + 1);
                if (!np) return -ENOMEM;
                memcpy(np, t2, tl); memcpy(np + tl, n->path + fl, rl + 1);
                if (chg_tracked(n)) { chg_note(n->path, 1, n->mode, n->size); chg_note(np, 0, n->mode, 0); }
                ovl_unhash(n);
                e = ovl_hash(n, np);
                kfree(np);
                if (e) return e;
            }
            n = next;
        }
    }
    struct onode *o;
    if (fr->kind == VK_OVL) {
        struct onode *name = ovl_find(from);
        o = name && name->ln == fr->o ? name : fr->o;   /* move the name, not what it names */
        ovl_unhash(o);
    } else {
        o = ovl_copy_up(from, fr);
        if (!o) return -ENOMEM;
        ovl_unhash(o);
    }
    struct onode *w = ovl_find(t2);
    if (w && w->whiteout) { ovl_unhash(w); w->refs = 1; ovl_put(w); }
    e = ovl_hash(o, t2);
    if (e) return e;
    ovl_stamp(o->ln ? o->ln : o, TS_C);
    vfs_dir_changed(from);
    vfs_dir_changed(t2);
    if (img_has(from)) {
        struct onode *wo = kzalloc(sizeof *wo);
        if (!wo) return -ENOMEM;
        wo->whiteout = 1; wo->img = -1;
        if (ovl_hash(wo, from)) { kfree(wo); return -ENOMEM; }
    }
    return 0;
}

/* a second name `to` (which must not exist) for the non-directory fr names */
int vfs_link(const char *from, const struct vref *fr, const char *to)
{
    u32 mode;
    int e = vfs_mode(fr, &mode);
    if (e) return e;
    if ((mode & S_IFMT) == S_IFDIR || fr->kind == VK_DEV) return -EPERM;
    struct onode *o = fr->kind == VK_OVL ? fr->o : ovl_copy_up(from, fr);
    if (!o) return -ENOMEM;
    struct onode *n = ovl_create(to, mode);
    if (!n) return -ENOMEM;
    n->ln = o;
    o->refs++;
    o->links++;
    ovl_stamp(o, TS_C);
    return 0;
}
