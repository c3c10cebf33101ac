/*
 * files.c — requests the runtime serves itself, whatever program runs
 * (FB_REQ_FILE_*, FB_REQ_CHANGES, FB_REQ_FS_QUOTA in abi.h): write, read,
 * stat, list, mkdir, remove and rename over the vfs (image + overlay), the
 * per-exec change log vfs.c feeds, and the overlay quota. Every request field
 * is untrusted: lengths are checked against the request and OUT areas, paths
 * must be absolute and NUL-free, and a bad request only gets an errno.
 */
#include "files.h"

/* ---- change log ----
 * One entry per path touched since the last reset: whether it existed before
 * the first change, and its mode and size then. Its state now is looked up
 * when the log is read, so create+delete cancels out and delete+create is a
 * modification. Bounded: past CHG_MAX paths the log says it overflowed. */
#define CHG_MAX 4096
#define CHG_SLOTS 8192 /* open addressing, load <= 1/2 */
struct chg { char *path; u32 h; u32 mode; u8 pre; u64 size; };
static struct chg *g_chg;
static u32 *g_chg_slot; /* entry index + 1, 0 = empty */
static u32 g_chg_n;
static int g_chg_over;

static u32 chg_hash(const char *p)
{
    u32 h = 2166136261u;
    while (*p) { h ^= (u8)*p++; h *= 16777619u; }
    return h;
}

void chg_note(const char *path, int existed, u32 mode, u64 size)
{
    if (!path) return;
    if (!g_chg) {
        g_chg = kzalloc(CHG_MAX * sizeof *g_chg);
        g_chg_slot = kzalloc(CHG_SLOTS * sizeof *g_chg_slot);
        if (!g_chg || !g_chg_slot) { kfree(g_chg); kfree(g_chg_slot); g_chg = 0; g_chg_slot = 0; g_chg_over = 1; return; }
    }
    u32 h = chg_hash(path), i = h % CHG_SLOTS;
    for (; g_chg_slot[i]; i = (i + 1) % CHG_SLOTS) {
        const struct chg *c = &g_chg[g_chg_slot[i] - 1];
        if (c->h == h && !strcmp(c->path, path)) return;
    }
    if (g_chg_n >= CHG_MAX) { g_chg_over = 1; return; }
    u64 l = strlen(path);
    char *p = kmalloc(l + 1);
    if (!p) { g_chg_over = 1; return; }
    memcpy(p, path, l + 1);
    struct chg *c = &g_chg[g_chg_n];
    c->path = p; c->h = h; c->mode = mode; c->pre = !!existed; c->size = size;
    g_chg_slot[i] = ++g_chg_n;
}

/* clears only what was used: an exec with no file changes writes no page here */
void chg_reset(void)
{
    if (!g_chg_n && !g_chg_over) return; /* writing even a 0 would copy the page in a fork */
    for (u32 k = 0; k < g_chg_n; k++) {
        for (u32 i = g_chg[k].h % CHG_SLOTS;; i = (i + 1) % CHG_SLOTS)
            if (g_chg_slot[i] == k + 1) { g_chg_slot[i] = 0; break; }
        kfree(g_chg[k].path);
        g_chg[k].path = 0;
    }
    g_chg_n = 0;
    g_chg_over = 0;
}

/* ---- helpers ---- */
static char g_p1[PATH_MAX_RT], g_p2[PATH_MAX_RT], g_c1[PATH_MAX_RT], g_c2[PATH_MAX_RT], g_tmp[PATH_MAX_RT];
static u8 g_dbuf[PATH_MAX_RT + 64];

static int take_path(const u8 *s, u64 n, char *dst)
{
    if (!n) return -EINVAL;
    if (n >= PATH_MAX_RT) return -ENAMETOOLONG;
    if (s[0] != '/') return -EINVAL;
    for (u64 i = 0; i < n; i++) if (!s[i]) return -EINVAL;
    memcpy(dst, s, n);
    dst[n] = 0;
    return 0;
}

static int under(const char *p, const char *top)
{
    u64 l = strlen(top);
    return !strncmp(p, top, l) && (p[l] == 0 || p[l] == '/');
}
/* the synthetic trees are not files a request may create or change */
static int is_sys_path(const char *canon)
{
    return under(canon, "/dev") || under(canon, "/proc") || under(canon, "/sys");
}

static u8 ftype(u32 mode)
{
    switch (mode & S_IFMT) {
    case S_IFREG: return FB_FT_REG;
    case S_IFDIR: return FB_FT_DIR;
    case S_IFLNK: return FB_FT_LNK;
    case S_IFCHR: return FB_FT_CHR;
    default: return FB_FT_OTHER;
    }
}

static int put_ent(u8 *out, u64 cap, u64 *len, const char *name, u64 nl, u32 mode, u8 change, u64 size, i64 mtime)
{
    if (nl > 0xffff) return 0;
    u64 rl = (sizeof(struct fb_file_ent) + nl + 7) & ~7ull;
    if (*len > cap || rl > cap - *len) return 0;
    struct fb_file_ent e;
    memset(&e, 0, sizeof e);
    e.reclen = (u32)rl; e.name_len = (u16)nl; e.type = ftype(mode); e.change = change;
    e.mode = mode; e.size = size; e.mtime = mtime;
    memcpy(out + *len, &e, sizeof e);
    memcpy(out + *len + sizeof e, name, nl);
    memset(out + *len + sizeof e + nl, 0, rl - sizeof e - nl);
    *len += rl;
    return 1;
}

static void fill_stat(struct fb_file_resp *rs, const struct vref *r)
{
    struct kstat st;
    if (vfs_stat(r, &st)) return;
    rs->size = (u64)st.size;
    rs->mode = st.mode;
    rs->mtime = st.mtime;
}

/* creates every missing directory of `path` (raw, absolute), the last one included */
static int mkdir_p(const char *path, u32 mode)
{
    u64 n = strlen(path);
    for (u64 i = 1; i <= n; i++) {
        if ((i < n && path[i] != '/') || path[i - 1] == '/') continue;
        memcpy(g_tmp, path, i);
        g_tmp[i] = 0;
        struct vref r;
        int e = vfs_resolve(AT_FDCWD, g_tmp, 1, g_c2, &r);
        if (!e) {
            u32 m;
            if (vfs_mode(&r, &m)) return -EIO;
            if ((m & S_IFMT) != S_IFDIR) return -ENOTDIR;
            continue;
        }
        if (e != -ENOENT || r.kind != VK_NONE) return e;
        if (is_sys_path(g_c2)) return -EACCES;
        if (!ovl_create(g_c2, S_IFDIR | mode)) return -ENOMEM;
    }
    return 0;
}

static int mkdir_parent(const char *path)
{
    static char par[PATH_MAX_RT];
    u64 l = strlen(path);
    while (l && path[l - 1] != '/') l--;
    if (l <= 1) return 0;
    memcpy(par, path, l - 1);
    par[l - 1] = 0;
    return mkdir_p(par, 0755);
}

/* ---- the requests ---- */
struct req {
    struct fb_file_req q;
    const u8 *data;
    u64 data_len;
    struct fb_file_resp *rs;
    u8 *out;
    u64 out_cap, out_len;
};

static int op_write(struct req *c)
{
    const struct fb_file_req *q = &c->q;
    struct vref r;
    struct onode *o;
    if (q->flags & ~(FB_FILE_TRUNC | FB_FILE_APPEND | FB_FILE_EXCL | FB_FILE_PARENTS)) return -EINVAL;
    if (q->length != c->data_len) return -EINVAL;
    if (g_p1[strlen(g_p1) - 1] == '/') return -EISDIR;
    int e = vfs_resolve(AT_FDCWD, g_p1, 1, g_c1, &r);
    if (e == -ENOENT && r.kind != VK_NONE && (q->flags & FB_FILE_PARENTS)) {
        if ((e = mkdir_parent(g_p1))) return e;
        e = vfs_resolve(AT_FDCWD, g_p1, 1, g_c1, &r);
    }
    if (e == -ENOENT && r.kind == VK_NONE) {
        if (is_sys_path(g_c1)) return -EACCES;
        o = ovl_create(g_c1, S_IFREG | (q->mode & 07777 ? q->mode & 07777 : 0644));
        if (!o) return -ENOMEM;
    } else if (e) {
        return e;
    } else {
        u32 m;
        if (q->flags & FB_FILE_EXCL) return -EEXIST;
        if (vfs_mode(&r, &m)) return -EIO;
        if ((m & S_IFMT) == S_IFDIR) return -EISDIR;
        if (r.kind == VK_DEV || (m & S_IFMT) != S_IFREG) return -EACCES;
        if (r.kind == VK_IMG) {
            const struct fb_img_entry *ie = img_entry(r.img);
            if (ie && !ovl_quota_ok(ie->size)) return -ENOSPC;
            if (!(o = ovl_copy_up(g_c1, &r))) return -ENOMEM;
        } else {
            o = r.o;
        }
    }
    if ((q->flags & FB_FILE_TRUNC) && (e = ovl_set_size(o, 0))) return e;
    u64 off = (q->flags & FB_FILE_APPEND) ? o->size : q->offset, n = c->data_len;
    if (off + n < off || off + n > (1ull << 40)) return -EFBIG;
    if (off + n > o->size) { if ((e = ovl_set_size(o, off + n))) return e; }
    else ovl_touch(o);
    if (n) memcpy(o->data + off, c->data, n);
    ovl_stamp(o, TS_M | TS_C);
    c->rs->size = o->size;
    c->rs->mode = o->mode;
    c->rs->mtime = o->mtime.sec;
    c->rs->length = n;
    return 0;
}

static int op_read(struct req *c)
{
    struct vref r;
    const u8 *d;
    u64 size;
    u32 m;
    if (c->q.flags) return -EINVAL;
    int e = vfs_resolve(AT_FDCWD, g_p1, 1, g_c1, &r);
    if (e) return e;
    if (vfs_mode(&r, &m)) return -EIO;
    if ((m & S_IFMT) == S_IFDIR) return -EISDIR;
    if (r.kind == VK_DEV || (m & S_IFMT) != S_IFREG) return -EINVAL;
    if ((e = vfs_file_data(&r, &d, &size))) return e;
    u64 off = c->q.offset, n = off < size ? size - off : 0;
    if (c->q.length && n > c->q.length) n = c->q.length;
    if (n > c->out_cap) n = c->out_cap;
    if (n) memcpy(c->out, d + off, n);
    c->out_len = n;
    fill_stat(c->rs, &r);
    c->rs->length = n;
    return 0;
}

static int op_stat(struct req *c)
{
    struct vref r;
    if (c->q.flags & ~FB_FILE_NOFOLLOW) return -EINVAL;
    int e = vfs_resolve(AT_FDCWD, g_p1, !(c->q.flags & FB_FILE_NOFOLLOW), g_c1, &r);
    if (e) return e;
    fill_stat(c->rs, &r);
    return 0;
}

static int op_list(struct req *c)
{
    struct vref r;
    u32 m;
    if (c->q.flags) return -EINVAL;
    int e = vfs_resolve(AT_FDCWD, g_p1, 1, g_c1, &r);
    if (e) return e;
    if (vfs_mode(&r, &m)) return -EIO;
    if ((m & S_IFMT) != S_IFDIR) return -ENOTDIR;
    u64 pos = c->q.offset < 2 ? 2 : c->q.offset, count = 0, pl = strcmp(g_c1, "/") ? strlen(g_c1) : 0;
    int more = 0;
    for (;;) {
        u64 p = pos;
        i64 n = vfs_getdents(g_c1, &r, &p, g_dbuf, sizeof g_dbuf);
        if (n < 0) return (int)n;
        if (n == 0) break;
        for (i64 o = 0; o < n;) {
            u16 rl;
            u64 next;
            memcpy(&rl, g_dbuf + o + 16, 2);
            memcpy(&next, g_dbuf + o + 8, 8);
            const char *nm = (const char *)g_dbuf + o + 19;
            u64 nl = strlen(nm);
            if (strcmp(nm, ".") && strcmp(nm, "..")) {
                if (c->q.length && count >= c->q.length) { more = 1; goto done; }
                if (pl + 1 + nl < PATH_MAX_RT) {
                    struct vref cr;
                    struct kstat st;
                    memcpy(g_tmp, g_c1, pl); g_tmp[pl] = '/'; memcpy(g_tmp + pl + 1, nm, nl + 1);
                    if (!vfs_resolve(AT_FDCWD, g_tmp, 0, g_c2, &cr) && !vfs_stat(&cr, &st)) {
                        if (!put_ent(c->out, c->out_cap, &c->out_len, nm, nl, st.mode, 0, (u64)st.size, st.mtime)) {
                            more = 1;
                            goto done;
                        }
                        count++;
                    }
                }
            }
            pos = next;
            o += rl;
        }
    }
done:
    c->rs->cursor = pos;
    c->rs->length = count;
    if (more) c->rs->flags |= FB_FILE_MORE;
    return 0;
}

static int op_mkdir(struct req *c)
{
    struct vref r;
    if (c->q.flags & ~FB_FILE_PARENTS) return -EINVAL;
    u32 mode = c->q.mode & 07777 ? c->q.mode & 07777 : 0755;
    u64 l = strlen(g_p1);
    while (l > 1 && g_p1[l - 1] == '/') g_p1[--l] = 0;
    if (c->q.flags & FB_FILE_PARENTS) return mkdir_p(g_p1, mode);
    int e = vfs_resolve(AT_FDCWD, g_p1, 0, g_c1, &r);
    if (!e) return -EEXIST;
    if (e != -ENOENT || r.kind != VK_NONE) return e;
    if (is_sys_path(g_c1)) return -EACCES;
    return ovl_create(g_c1, S_IFDIR | mode) ? 0 : -ENOMEM;
}

/* depth-first without recursion: descend to the first entry until it is a
 * file or an empty directory, remove it, step back up; stop at the top */
static int rm_tree(char *path)
{
    u64 top = strlen(path);
    for (;;) {
        struct vref r;
        u32 m;
        int e = vfs_resolve(AT_FDCWD, path, 0, g_c2, &r);
        if (e) return e;
        if (vfs_mode(&r, &m)) return -EIO;
        int dir = (m & S_IFMT) == S_IFDIR;
        if (dir) {
            u64 pos = 2;
            i64 n = vfs_getdents(path, &r, &pos, g_dbuf, sizeof g_dbuf);
            if (n < 0) return (int)n;
            if (n > 0) {
                const char *nm = (const char *)g_dbuf + 19;
                u64 l = strlen(path), nl = strlen(nm);
                if (l + 1 + nl >= PATH_MAX_RT) return -ENAMETOOLONG;
                path[l] = '/';
                memcpy(path + l + 1, nm, nl + 1);
                continue;
            }
        }
        if ((e = vfs_unlink(path, &r, dir))) return e;
        u64 l = strlen(path);
        if (l <= top) return 0;
        while (path[l - 1] != '/') l--;
        path[l - 1] = 0;
    }
}

static int op_remove(struct req *c)
{
    struct vref r;
    u32 m;
    if (c->q.flags & ~FB_FILE_RECURSIVE) return -EINVAL;
    int e = vfs_resolve(AT_FDCWD, g_p1, 0, g_c1, &r);
    if (e) return e;
    if (!strcmp(g_c1, "/")) return -EBUSY;
    if (r.kind == VK_DEV || is_sys_path(g_c1)) return -EACCES;
    if (vfs_mode(&r, &m)) return -EIO;
    if ((m & S_IFMT) == S_IFDIR) return (c->q.flags & FB_FILE_RECURSIVE) ? rm_tree(g_c1) : vfs_unlink(g_c1, &r, 1);
    return vfs_unlink(g_c1, &r, 0);
}

static int op_rename(struct req *c)
{
    struct vref fr, tr;
    if (c->q.flags & ~(FB_FILE_EXCL | FB_FILE_PARENTS)) return -EINVAL;
    int e = vfs_resolve(AT_FDCWD, g_p2, 0, g_c2, &tr);
    if (e == -ENOENT && tr.kind != VK_NONE && (c->q.flags & FB_FILE_PARENTS)) {
        if ((e = mkdir_parent(g_p2))) return e;
        e = vfs_resolve(AT_FDCWD, g_p2, 0, g_c2, &tr);
    }
    if (!e) { if (c->q.flags & FB_FILE_EXCL) return -EEXIST; }
    else if (e != -ENOENT || tr.kind != VK_NONE) return e;
    static char to[PATH_MAX_RT];
    memcpy(to, g_c2, strlen(g_c2) + 1);
    if ((e = vfs_resolve(AT_FDCWD, g_p1, 0, g_c1, &fr))) return e;
    if (!strcmp(g_c1, "/") || !strcmp(to, "/")) return -EBUSY;
    if (fr.kind == VK_DEV || is_sys_path(g_c1) || is_sys_path(to)) return -EACCES;
    return vfs_rename(g_c1, &fr, to);
}

static int op_changes(struct req *c)
{
    if (c->q.flags & ~FB_FILE_RESET) return -EINVAL;
    u64 k = c->q.offset, count = 0;
    int more = 0;
    for (; k < g_chg_n; k++) {
        const struct chg *h = &g_chg[k];
        struct vref r;
        struct kstat st;
        int now = !vfs_resolve(AT_FDCWD, h->path, 0, g_c1, &r) && !vfs_stat(&r, &st) && (st.mode & S_IFMT) != S_IFDIR;
        if (!now && !h->pre) continue;
        if (c->q.length && count >= c->q.length) { more = 1; break; }
        u8 kind = !now ? FB_CHG_DELETED : h->pre ? FB_CHG_MODIFIED : FB_CHG_CREATED;
        int ok = now ? put_ent(c->out, c->out_cap, &c->out_len, h->path, strlen(h->path), st.mode, kind, (u64)st.size, st.mtime)
                     : put_ent(c->out, c->out_cap, &c->out_len, h->path, strlen(h->path), h->mode, kind, h->size, 0);
        if (!ok) { more = 1; break; }
        count++;
    }
    c->rs->cursor = k;
    c->rs->length = count;
    if (more) c->rs->flags |= FB_FILE_MORE;
    if (g_chg_over) c->rs->flags |= FB_FILE_OVERFLOW;
    if (c->q.flags & FB_FILE_RESET) chg_reset();
    return 0;
}

static int serve(u32 kind, const u8 *req, u64 req_len, struct req *c)
{
    if (req_len < sizeof c->q) return -EINVAL;
    memcpy(&c->q, req, sizeof c->q);
    const struct fb_file_req *q = &c->q;
    u64 need = sizeof *q + (u64)q->path_len + (u64)q->path2_len;
    if (need > req_len) return -EINVAL;
    c->data = req + need;
    c->data_len = req_len - need;
    int e;
    if (kind == FB_REQ_FS_QUOTA) {
        if (q->flags || q->path_len || q->path2_len) return -EINVAL;
        g_ovl_quota = q->quota;
        return 0;
    }
    if (kind == FB_REQ_CHANGES) return q->path_len || q->path2_len ? -EINVAL : op_changes(c);
    if (kind < FB_REQ_FILE_WRITE || kind > FB_REQ_FILE_RENAME) return -ENOSYS;
    if ((e = take_path(req + sizeof *q, q->path_len, g_p1))) return e;
    if (kind == FB_REQ_FILE_RENAME) {
        if ((e = take_path(req + sizeof *q + q->path_len, q->path2_len, g_p2))) return e;
    } else if (q->path2_len) {
        return -EINVAL;
    }
    if (kind != FB_REQ_FILE_WRITE && c->data_len) return -EINVAL;
    switch (kind) {
    case FB_REQ_FILE_WRITE: return op_write(c);
    case FB_REQ_FILE_READ: return op_read(c);
    case FB_REQ_FILE_STAT: return op_stat(c);
    case FB_REQ_FILE_LIST: return op_list(c);
    case FB_REQ_FILE_MKDIR: return op_mkdir(c);
    case FB_REQ_FILE_REMOVE: return op_remove(c);
    default: return op_rename(c);
    }
}

void files_serve(u32 kind, const u8 *req, u64 req_len, struct fb_file_resp *resp, u8 *out, u64 out_cap, u64 *out_len)
{
    struct req c;
    memset(&c, 0, sizeof c);
    memset(resp, 0, sizeof *resp);
    c.rs = resp;
    c.out = out;
    c.out_cap = out_cap;
    int e = serve(kind, req, req_len, &c);
    if (e < 0) {
        memset(resp, 0, sizeof *resp);
        resp->err = -e;
        c.out_len = 0;
    }
    resp->quota = g_ovl_quota;
    resp->used = g_ovl_used;
    *out_len = c.out_len;
}
