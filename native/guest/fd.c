/*
 * fd.c — descriptors and the file syscalls. An fd points at a shared open
 * file description (offset, status flags) of one kind: image/overlay file,
 * directory, device, generated text, console, control device or pipe end.
 * Writes to an image file go to an overlay copy (made at open for writing).
 * Pipes are in-memory and single-threaded: a read that would block forever
 * returns EAGAIN instead of hanging.
 */
#include "rt.h"

enum { F_FILE = 1, F_DIR, F_NULL, F_ZERO, F_RANDOM, F_CTL, F_TEXT, F_OUT, F_ERR, F_IN, F_PIPE_R, F_PIPE_W, F_PATHONLY,
       F_SOCK, F_EPOLL };
#define PIPE_CAP 65536
struct pipe { u8 *buf; u64 head, len; int readers, writers; };
struct file {
    int refs, type;
    u32 flags;
    u64 off;
    struct vref ref;
    char *path;
    u8 *text; u64 text_len;
    struct pipe *pipe;       /* pipe end; socket: receive side */
    struct pipe *tx;         /* socket: send side (the peer's receive side) */
    struct epitem *ep;       /* epoll: interest list */
    u32 ep_n, ep_cap;
};
struct epitem { int fd; u32 events; u64 data; };
struct fdent { struct file *f; int cloexec; };
static struct fdent g_fd[NFD];
char g_cwd[PATH_MAX_RT] = "/";
static u32 g_umask = 022;
static char g_path1[PATH_MAX_RT], g_path2[PATH_MAX_RT];

static struct file *fget(i64 fd)
{
    if (fd < 0 || fd >= NFD) return 0;
    return g_fd[fd].f;
}

static int fd_install(struct file *f, int min, int cloexec)
{
    for (int i = min; i < NFD; i++)
        if (!g_fd[i].f) { g_fd[i].f = f; g_fd[i].cloexec = cloexec; return i; }
    return -EMFILE;
}

static struct file *fnew(int type, u32 flags)
{
    struct file *f = kzalloc(sizeof *f);
    if (f) { f->refs = 1; f->type = type; f->flags = flags; }
    return f;
}

static void fput(struct file *f)
{
    if (--f->refs > 0) return;
    if (f->ref.kind == VK_OVL && f->type != F_DIR && f->type != F_PATHONLY) ovl_put(f->ref.o);
    struct pipe *rd = f->type == F_PIPE_W ? 0 : f->pipe, *wr = f->type == F_PIPE_W ? f->pipe : f->tx;
    if (rd) rd->readers--;
    if (wr) wr->writers--;
    if (rd && !rd->readers && !rd->writers) { kfree(rd->buf); kfree(rd); }
    if (wr && !wr->readers && !wr->writers) { kfree(wr->buf); kfree(wr); }
    kfree(f->ep);
    kfree(f->path);
    kfree(f->text);
    kfree(f);
}

void fd_init(void)
{
    struct file *in = fnew(F_IN, O_RDONLY), *out = fnew(F_OUT, O_WRONLY), *err = fnew(F_ERR, O_WRONLY);
    if (!in || !out || !err) rt_panic("fd_init: out of memory");
    g_fd[0].f = in; g_fd[1].f = out; g_fd[2].f = err;
}

int fd_dir_path(int fd, const char **path)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    if (f->type != F_DIR && !(f->type == F_PATHONLY && f->path)) return -ENOTDIR;
    *path = f->path;
    return 0;
}

/* copy a user path into a runtime buffer */
static int upath(const char *u, char *dst)
{
    int l = ustr_ok(u, PATH_MAX_RT);
    if (l < 0) return l;
    memcpy(dst, u, (u64)l + 1);
    return l;
}

int fd_map_source(i64 fd, const u8 **data, u64 *size)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    if (f->type == F_ZERO) { *data = 0; *size = 0; return 0; }
    if (f->type != F_FILE) return -ENODEV;
    if ((f->flags & O_ACCMODE) == O_WRONLY) return -EACCES;
    int r = vfs_file_data(&f->ref, data, size);
    if (r) return r;
    return f->ref.kind == VK_OVL ? 1 : 0;
}

/* ---- open ---- */
static i64 do_open(int dirfd, const char *upth, u64 flags, u64 mode)
{
    struct vref r;
    int l = upath(upth, g_path1);
    if (l < 0) return l;
    if ((flags & O_TMPFILE) == O_TMPFILE) return -EOPNOTSUPP;
    int e = vfs_resolve(dirfd, g_path1, !(flags & O_NOFOLLOW), g_path2, &r);
    u32 acc = flags & O_ACCMODE;
    if (e == -ENOENT && r.kind == VK_NONE && (flags & O_CREAT) && !(flags & O_PATH)) {
        if (g_path1[l - 1] == '/') return -EISDIR;
        if (!strncmp(g_path2, "/dev/", 5) || !strncmp(g_path2, "/proc/", 6) || !strncmp(g_path2, "/sys/", 5)) return -EACCES;
        struct onode *o = ovl_create(g_path2, S_IFREG | (mode & 07777 & ~g_umask));
        if (!o) return -ENOMEM;
        r.kind = VK_OVL; r.o = o; e = 0;
    } else if (e) {
        return e;
    } else if ((flags & O_CREAT) && (flags & O_EXCL)) {
        return -EEXIST;
    }
    u32 m;
    vfs_mode(&r, &m);
    if ((flags & O_NOFOLLOW) && (m & S_IFMT) == S_IFLNK && !(flags & O_PATH)) return -ELOOP;
    if ((flags & O_DIRECTORY) && (m & S_IFMT) != S_IFDIR) return -ENOTDIR;
    struct file *f;
    if (flags & O_PATH) {
        f = fnew(F_PATHONLY, O_PATH);
        if (!f) return -ENOMEM;
        f->ref = r;
        if ((m & S_IFMT) == S_IFDIR) {
            f->path = kmalloc(strlen(g_path2) + 1);
            if (!f->path) { fput(f); return -ENOMEM; }
            memcpy(f->path, g_path2, strlen(g_path2) + 1);
        }
    } else if ((m & S_IFMT) == S_IFDIR) {
        if (acc != O_RDONLY) return -EISDIR;
        f = fnew(F_DIR, (u32)flags);
        if (!f) return -ENOMEM;
        f->ref = r;
        f->path = kmalloc(strlen(g_path2) + 1);
        if (!f->path) { fput(f); return -ENOMEM; }
        memcpy(f->path, g_path2, strlen(g_path2) + 1);
    } else if (r.kind == VK_DEV) {
        const struct devfile *d = &g_devs[r.dev];
        int t = d->type == DEV_NULL ? F_NULL : d->type == DEV_ZERO ? F_ZERO : d->type == DEV_URANDOM ? F_RANDOM
              : d->type == DEV_CTL ? F_CTL : F_TEXT;
        if (t == F_TEXT && acc != O_RDONLY) return -EACCES;
        f = fnew(t, (u32)flags);
        if (!f) return -ENOMEM;
        f->ref = r;
        if (t == F_TEXT && (e = dev_text(r.dev, (char **)&f->text, &f->text_len))) { fput(f); return e; }
    } else {
        if (acc != O_RDONLY || (flags & O_TRUNC)) {
            if (r.kind == VK_IMG) {
                struct onode *o = ovl_copy_up(g_path2, &r);
                if (!o) return -ENOMEM;
                r.kind = VK_OVL; r.o = o;
            }
            if ((flags & O_TRUNC) && acc != O_RDONLY) ovl_set_size(r.o, 0);
        }
        f = fnew(F_FILE, (u32)flags);
        if (!f) return -ENOMEM;
        f->ref = r;
        if (r.kind == VK_OVL) r.o->refs++;
    }
    int fd = fd_install(f, 0, !!(flags & O_CLOEXEC));
    if (fd < 0) fput(f);
    return fd;
}

/* ---- pipes (and the two directions of a socketpair) ---- */
/* single-threaded: a read that would wait for a writer that can never run is EAGAIN */
static i64 pipe_read(struct pipe *p, u8 *buf, u64 n)
{
    if (!p) return 0; /* socket shut down for reading */
    if (!p->len) return p->writers ? -EAGAIN : 0;
    u64 c = p->len < n ? p->len : n;
    for (u64 i = 0; i < c; i++) buf[i] = p->buf[(p->head + i) % PIPE_CAP];
    p->head = (p->head + c) % PIPE_CAP;
    p->len -= c;
    return (i64)c;
}

static i64 pipe_write(struct pipe *p, const u8 *buf, u64 n)
{
    if (!p || !p->readers) return -EPIPE;
    u64 room = PIPE_CAP - p->len, c = n < room ? n : room;
    if (!c) return -EAGAIN;
    for (u64 i = 0; i < c; i++) p->buf[(p->head + p->len + i) % PIPE_CAP] = buf[i];
    p->len += c;
    return (i64)c;
}

static struct pipe *pipe_new(void)
{
    struct pipe *p = kzalloc(sizeof *p);
    if (!p) return 0;
    p->buf = kmalloc(PIPE_CAP);
    if (!p->buf) { kfree(p); return 0; }
    return p;
}

/* ---- read / write ---- */
static i64 file_read(struct file *f, u8 *buf, u64 n, u64 *off)
{
    const u8 *d; u64 size;
    switch (f->type) {
    case F_FILE: {
        int e = vfs_file_data(&f->ref, &d, &size);
        if (e) return e;
        if (*off >= size) return 0;
        u64 c = size - *off < n ? size - *off : n;
        memcpy(buf, d + *off, c);
        *off += c;
        return (i64)c;
    }
    case F_TEXT: {
        if (*off >= f->text_len) return 0;
        u64 c = f->text_len - *off < n ? f->text_len - *off : n;
        memcpy(buf, f->text + *off, c);
        *off += c;
        return (i64)c;
    }
    case F_NULL: case F_IN: return 0;
    case F_ZERO: memset(buf, 0, n); return (i64)n;
    case F_RANDOM: rng_fill(buf, n); return (i64)n;
    case F_CTL: return ctl_read(buf, n);
    case F_DIR: return -EISDIR;
    case F_PIPE_R: case F_SOCK: return pipe_read(f->pipe, buf, n);
    default: return -EBADF;
    }
}

static i64 file_write(struct file *f, const u8 *buf, u64 n, u64 *off)
{
    switch (f->type) {
    case F_FILE: {
        struct onode *o = f->ref.o;
        if (f->ref.kind != VK_OVL) return -EBADF;
        if (f->flags & O_APPEND) *off = o->size;
        if (*off + n < *off || *off + n > (1ull << 40)) return -EFBIG;
        if (*off + n > o->size && ovl_set_size(o, *off + n)) return -ENOSPC;
        memcpy(o->data + *off, buf, n);
        *off += n;
        o->mtime = (i64)(time_wall_ns() / 1000000000ull);
        return (i64)n;
    }
    case F_NULL: case F_ZERO: return (i64)n;
    case F_RANDOM: rng_reseed(buf, n < 64 ? n : 64); return (i64)n;
    case F_OUT: return console_write(1, buf, n);
    case F_ERR: return console_write(2, buf, n);
    case F_CTL: return ctl_write(buf, n);
    case F_PIPE_W: return pipe_write(f->pipe, buf, n);
    case F_SOCK: return pipe_write(f->tx, buf, n);
    default: return -EBADF;
    }
}

static int readable(struct file *f) { return f->type != F_PATHONLY && (f->flags & O_ACCMODE) != O_WRONLY; }
static int writable(struct file *f) { return f->type != F_PATHONLY && (f->flags & O_ACCMODE) != O_RDONLY; }
static int seekable(struct file *f) { return f->type == F_FILE || f->type == F_TEXT || f->type == F_DIR; }

static i64 sys_read(i64 fd, u8 *buf, u64 n)
{
    struct file *f = fget(fd);
    if (!f || !readable(f)) return -EBADF;
    if (n > 0x7ffff000) n = 0x7ffff000;
    if (!uaccess_w(buf, n)) return -EFAULT;
    return file_read(f, buf, n, &f->off);
}

static i64 sys_write(i64 fd, const u8 *buf, u64 n)
{
    struct file *f = fget(fd);
    if (!f || !writable(f)) return -EBADF;
    if (n > 0x7ffff000) n = 0x7ffff000;
    if (!uaccess_ok(buf, n)) return -EFAULT;
    return file_write(f, buf, n, &f->off);
}

static i64 sys_pread(i64 fd, u8 *buf, u64 n, i64 off)
{
    struct file *f = fget(fd);
    if (!f || !readable(f)) return -EBADF;
    if (!seekable(f) || f->type == F_DIR) return f->type == F_DIR ? -EISDIR : -ESPIPE;
    if (off < 0) return -EINVAL;
    if (!uaccess_w(buf, n)) return -EFAULT;
    u64 o = (u64)off;
    return file_read(f, buf, n, &o);
}

static i64 sys_pwrite(i64 fd, const u8 *buf, u64 n, i64 off)
{
    struct file *f = fget(fd);
    if (!f || !writable(f)) return -EBADF;
    if (f->type != F_FILE) return -ESPIPE;
    if (off < 0) return -EINVAL;
    if (!uaccess_ok(buf, n)) return -EFAULT;
    u64 o = (u64)off;
    u32 saved = f->flags;
    f->flags &= ~(u32)O_APPEND;
    i64 r = file_write(f, buf, n, &o);
    f->flags = saved;
    return r;
}

struct iovec { void *base; u64 len; };
static i64 sys_rwv(i64 fd, const struct iovec *iov, i64 cnt, int wr, i64 off)
{
    if (cnt < 0 || cnt > 1024) return -EINVAL;
    if (!uaccess_ok(iov, (u64)cnt * sizeof *iov)) return -EFAULT;
    i64 tot = 0;
    for (i64 i = 0; i < cnt; i++) {
        if (!iov[i].len) continue;
        i64 r = off < 0 ? (wr ? sys_write(fd, iov[i].base, iov[i].len) : sys_read(fd, iov[i].base, iov[i].len))
                        : (wr ? sys_pwrite(fd, iov[i].base, iov[i].len, off + tot) : sys_pread(fd, iov[i].base, iov[i].len, off + tot));
        if (r < 0) return tot ? tot : r;
        tot += r;
        if ((u64)r < iov[i].len) break;
    }
    return tot;
}

static i64 sys_lseek(i64 fd, i64 off, u64 whence)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    if (!seekable(f)) return f->type == F_NULL || f->type == F_ZERO || f->type == F_RANDOM ? 0 : -ESPIPE;
    i64 size = 0;
    if (f->type == F_FILE) { const u8 *d; u64 s; vfs_file_data(&f->ref, &d, &s); size = (i64)s; }
    else if (f->type == F_TEXT) size = (i64)f->text_len;
    i64 base;
    switch (whence) {
    case 0: base = 0; break;
    case 1: base = (i64)f->off; break;
    case 2: base = size; break;
    case 3: if (off >= size) return -ENXIO; base = 0; break;       /* SEEK_DATA */
    case 4: if (off >= size) return -ENXIO; base = 0; off = size; break; /* SEEK_HOLE */
    default: return -EINVAL;
    }
    if (f->type == F_DIR && whence != 0) return -EINVAL;
    i64 n = base + off;
    if (n < 0) return -EINVAL;
    f->off = (u64)n;
    return n;
}

/* ---- stat family ---- */
#define AT_NO_AUTOMOUNT 0x800
static i64 stat_path(int dirfd, const char *up, struct kstat *st, u64 flags)
{
    struct vref r;
    if (!uaccess_w(st, sizeof *st)) return -EFAULT;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    if (!l) {
        if (!(flags & AT_EMPTY_PATH)) return -ENOENT;
        if (dirfd == AT_FDCWD) { l = 1; g_path1[0] = '.'; g_path1[1] = 0; }
        else {
            struct file *f = fget(dirfd);
            if (!f) return -EBADF;
            if (f->ref.kind == VK_NONE) {
                memset(st, 0, sizeof *st);
                st->mode = f->type == F_PIPE_R || f->type == F_PIPE_W ? S_IFIFO | 0600
                         : f->type == F_SOCK ? 0140000 | 0777 : f->type == F_EPOLL ? 0600 : S_IFCHR | 0620;
                st->ino = 50 + (u64)f->type; st->dev = 5; st->nlink = 1; st->blksize = 4096;
                if (f->type == F_OUT || f->type == F_ERR || f->type == F_IN) st->mode = S_IFIFO | 0600;
                return 0;
            }
            return vfs_stat(&f->ref, st);
        }
    }
    int e = vfs_resolve(dirfd, g_path1, !(flags & AT_SYMLINK_NOFOLLOW), g_path2, &r);
    if (e) return e;
    return vfs_stat(&r, st);
}

static i64 sys_fstat(i64 fd, struct kstat *st) { return stat_path((int)fd, "", st, AT_EMPTY_PATH); }

struct statx_ts { i64 sec; u32 nsec; i32 res; };
struct kstatx {
    u32 mask, blksize; u64 attributes;
    u32 nlink, uid, gid; u16 mode, spare0;
    u64 ino, size, blocks, attributes_mask;
    struct statx_ts atime, btime, ctime, mtime;
    u32 rdev_major, rdev_minor, dev_major, dev_minor;
    u64 spare[14];
};
_Static_assert(sizeof(struct kstatx) == 256, "statx");

static i64 sys_statx(int dirfd, const char *up, u64 flags, u64 mask, struct kstatx *sx)
{
    struct kstat st;
    if (!uaccess_w(sx, sizeof *sx)) return -EFAULT;
    /* stat_path checks its buffer: st is on the runtime stack, so check manually */
    struct vref r;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    int e;
    if (!l) {
        if (!(flags & AT_EMPTY_PATH)) return -ENOENT;
        if (dirfd == AT_FDCWD) e = vfs_resolve(AT_FDCWD, ".", 1, g_path2, &r);
        else { struct file *f = fget(dirfd); if (!f) return -EBADF; r = f->ref; e = r.kind == VK_NONE ? -EOPNOTSUPP : 0; }
    } else e = vfs_resolve(dirfd, g_path1, !(flags & AT_SYMLINK_NOFOLLOW), g_path2, &r);
    if (e) return e;
    e = vfs_stat(&r, &st);
    if (e) return e;
    memset(sx, 0, sizeof *sx);
    sx->mask = 0x7ff; sx->blksize = (u32)st.blksize; sx->nlink = (u32)st.nlink;
    sx->uid = st.uid; sx->gid = st.gid; sx->mode = (u16)st.mode; sx->ino = st.ino;
    sx->size = (u64)st.size; sx->blocks = (u64)st.blocks;
    sx->atime.sec = sx->btime.sec = sx->ctime.sec = sx->mtime.sec = st.mtime;
    sx->dev_major = 8; sx->dev_minor = 1;
    sx->rdev_major = (u32)(st.rdev >> 8); sx->rdev_minor = (u32)(st.rdev & 0xff);
    return 0;
}

/* stat_path writes through st, which must be program memory; the syscall
 * layer passes program pointers only. */

static i64 sys_access(int dirfd, const char *up, u64 mode, u64 flags)
{
    struct vref r;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    if (mode & ~7ull) return -EINVAL;
    int e = vfs_resolve(dirfd, g_path1, !(flags & AT_SYMLINK_NOFOLLOW), g_path2, &r);
    if (e) return e;
    u32 m;
    vfs_mode(&r, &m);
    if ((mode & 1) && !(m & 0111) && (m & S_IFMT) != S_IFDIR) return -EACCES;
    if ((mode & 2) && r.kind == VK_DEV && (m & S_IFMT) != S_IFCHR) return -EACCES;
    return 0;
}

static i64 sys_readlink(int dirfd, const char *up, char *buf, i64 n)
{
    struct vref r;
    if (n <= 0) return -EINVAL;
    if (!uaccess_w(buf, (u64)n)) return -EFAULT;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    int e = vfs_resolve(dirfd, g_path1, 0, g_path2, &r);
    if (e) return e;
    return vfs_readlink(&r, buf, (u64)n);
}

static i64 sys_getdents64(i64 fd, u8 *buf, u64 n)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    if (f->type != F_DIR) return -ENOTDIR;
    if (!uaccess_w(buf, n)) return -EFAULT;
    return vfs_getdents(f->path, &f->ref, &f->off, buf, n);
}

/* ---- namespace changes ---- */
static i64 sys_mkdir(int dirfd, const char *up, u64 mode)
{
    struct vref r;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    while (l > 1 && g_path1[l - 1] == '/') g_path1[--l] = 0;
    int e = vfs_resolve(dirfd, g_path1, 0, g_path2, &r);
    if (!e) return -EEXIST;
    if (e != -ENOENT || r.kind != VK_NONE) return e;
    if (dev_lookup(g_path2) >= 0 || !strncmp(g_path2, "/proc/", 6) || !strncmp(g_path2, "/sys/", 5)) return -EACCES;
    return ovl_create(g_path2, S_IFDIR | (mode & 07777 & ~g_umask)) ? 0 : -ENOMEM;
}

static i64 sys_unlinkat(int dirfd, const char *up, u64 flags)
{
    struct vref r;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    if (flags & ~(u64)AT_REMOVEDIR) return -EINVAL;
    int e = vfs_resolve(dirfd, g_path1, 0, g_path2, &r);
    if (e) return e;
    if (!strcmp(g_path2, "/")) return -EBUSY;
    return vfs_unlink(g_path2, &r, !!(flags & AT_REMOVEDIR));
}

static i64 sys_renameat(int ofd, const char *op, int nfd, const char *np, u64 flags)
{
    static char from[PATH_MAX_RT], to[PATH_MAX_RT];
    struct vref fr, tr;
    if (flags & ~1ull) return -EINVAL; /* RENAME_NOREPLACE only */
    int l = upath(op, g_path1);
    if (l < 0) return l;
    int e = vfs_resolve(ofd, g_path1, 0, from, &fr);
    if (e) return e;
    l = upath(np, g_path1);
    if (l < 0) return l;
    e = vfs_resolve(nfd, g_path1, 0, to, &tr);
    if (e && !(e == -ENOENT && tr.kind == VK_NONE)) return e;
    if (!e && (flags & 1)) return -EEXIST;
    return vfs_rename(from, &fr, to);
}

static i64 sys_symlinkat(const char *target, int dirfd, const char *up)
{
    static char tgt[PATH_MAX_RT];
    struct vref r;
    int tl = upath(target, tgt);
    if (tl < 0) return tl;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    int e = vfs_resolve(dirfd, g_path1, 0, g_path2, &r);
    if (!e) return -EEXIST;
    if (e != -ENOENT || r.kind != VK_NONE) return e;
    struct onode *o = ovl_create(g_path2, S_IFLNK | 0777);
    if (!o) return -ENOMEM;
    if (ovl_set_size(o, (u64)tl)) return -ENOMEM;
    memcpy(o->data, tgt, (u64)tl);
    return 0;
}

static i64 truncate_ref(struct vref *r, const char *path, i64 len)
{
    if (len < 0 || len > (1ll << 40)) return -EINVAL;
    u32 m;
    vfs_mode(r, &m);
    if ((m & S_IFMT) == S_IFDIR) return -EISDIR;
    if ((m & S_IFMT) != S_IFREG) return -EINVAL;
    if (r->kind == VK_IMG) {
        struct onode *o = ovl_copy_up(path, r);
        if (!o) return -ENOMEM;
        r->kind = VK_OVL; r->o = o;
    }
    return ovl_set_size(r->o, (u64)len);
}

static i64 sys_truncate(const char *up, i64 len)
{
    struct vref r;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    int e = vfs_resolve(AT_FDCWD, g_path1, 1, g_path2, &r);
    if (e) return e;
    return truncate_ref(&r, g_path2, len);
}

static i64 sys_ftruncate(i64 fd, i64 len)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    if (f->type != F_FILE || !writable(f) || f->ref.kind != VK_OVL) return -EINVAL;
    if (len < 0) return -EINVAL;
    return ovl_set_size(f->ref.o, (u64)len);
}

static i64 sys_chdir_ref(struct vref *r, const char *path)
{
    u32 m;
    vfs_mode(r, &m);
    if ((m & S_IFMT) != S_IFDIR) return -ENOTDIR;
    strcpy_n(g_cwd, path, sizeof g_cwd);
    return 0;
}

static i64 sys_chdir(const char *up)
{
    struct vref r;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    int e = vfs_resolve(AT_FDCWD, g_path1, 1, g_path2, &r);
    if (e) return e;
    return sys_chdir_ref(&r, g_path2);
}

static i64 sys_getcwd(char *buf, u64 n)
{
    u64 l = strlen(g_cwd) + 1;
    if (n < l) return -ERANGE;
    if (!uaccess_w(buf, l)) return -EFAULT;
    memcpy(buf, g_cwd, l);
    return (i64)l;
}

static i64 sys_chmodat(int dirfd, const char *up, u64 mode)
{
    struct vref r;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    int e = vfs_resolve(dirfd, g_path1, 1, g_path2, &r);
    if (e) return e;
    if (r.kind == VK_DEV) return -EPERM;
    if (r.kind == VK_IMG) {
        struct onode *o = ovl_copy_up(g_path2, &r);
        if (!o) return -ENOMEM;
        r.kind = VK_OVL; r.o = o;
    }
    r.o->mode = (r.o->mode & S_IFMT) | (u32)(mode & 07777);
    return 0;
}

static i64 sys_utimensat(int dirfd, const char *up, const struct ktimespec *ts, u64 flags)
{
    struct vref r;
    int e;
    if (ts && !uaccess_ok(ts, 2 * sizeof *ts)) return -EFAULT;
    if (!up) {
        struct file *f = fget(dirfd);
        if (!f) return -EBADF;
        r = f->ref;
        g_path2[0] = 0;
        if (r.kind == VK_NONE) return 0;
    } else {
        int l = upath(up, g_path1);
        if (l < 0) return l;
        e = vfs_resolve(dirfd, g_path1, !(flags & AT_SYMLINK_NOFOLLOW), g_path2, &r);
        if (e) return e;
    }
    if (r.kind == VK_DEV) return 0;
    if (r.kind == VK_IMG) {
        if (!g_path2[0]) return -EROFS;
        struct onode *o = ovl_copy_up(g_path2, &r);
        if (!o) return -ENOMEM;
        r.kind = VK_OVL; r.o = o;
    }
    u64 now = time_wall_ns() / 1000000000ull;
    r.o->mtime = (ts && ts[1].nsec != ((1l << 30) - 1) && ts[1].nsec != ((1l << 30) - 2)) ? ts[1].sec
               : (ts && ts[1].nsec == ((1l << 30) - 2)) ? r.o->mtime : (i64)now;
    return 0;
}

/* ---- descriptors ---- */
static i64 sys_close(i64 fd)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    g_fd[fd].f = 0;
    fput(f);
    return 0;
}

static i64 sys_dup3(i64 old, i64 nw, u64 flags)
{
    struct file *f = fget(old);
    if (!f) return -EBADF;
    if (nw < 0 || nw >= NFD || (flags & ~(u64)O_CLOEXEC)) return nw < 0 || nw >= NFD ? -EBADF : -EINVAL;
    if (old == nw) return -EINVAL;
    f->refs++;
    if (g_fd[nw].f) fput(g_fd[nw].f);
    g_fd[nw].f = f;
    g_fd[nw].cloexec = !!(flags & O_CLOEXEC);
    return nw;
}

#define F_DUPFD 0
#define F_GETFD 1
#define F_SETFD 2
#define F_GETFL 3
#define F_SETFL 4
#define F_GETLK 5
#define F_SETLK 6
#define F_SETLKW 7
#define F_DUPFD_CLOEXEC 1030
#define F_GETPIPE_SZ 1032
static i64 sys_fcntl(i64 fd, u64 cmd, u64 arg)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    switch (cmd) {
    case F_DUPFD: case F_DUPFD_CLOEXEC: {
        if (arg >= NFD) return -EINVAL;
        int n = fd_install(f, (int)arg, cmd == F_DUPFD_CLOEXEC);
        if (n >= 0) f->refs++;
        return n;
    }
    case F_GETFD: return g_fd[fd].cloexec ? 1 : 0;
    case F_SETFD: g_fd[fd].cloexec = arg & 1; return 0;
    case F_GETFL: return f->flags & ~(u32)(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
    case F_SETFL: f->flags = (f->flags & ~(u32)(O_APPEND | O_NONBLOCK)) | (u32)(arg & (O_APPEND | O_NONBLOCK)); return 0;
    case F_GETLK: case F_SETLK: case F_SETLKW: return f->type == F_FILE ? 0 : -EINVAL; /* one process: no conflicts */
    case F_GETPIPE_SZ: return f->pipe ? PIPE_CAP : -EBADF;
    default: return -EINVAL;
    }
}

#define TCGETS 0x5401
#define TIOCGWINSZ 0x5413
#define FIONREAD 0x541B
#define FIONBIO 0x5421
#define FIOCLEX 0x5451
#define FIONCLEX 0x5450
static i64 sys_ioctl(i64 fd, u64 req, u64 arg)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    switch (req) {
    case FIOCLEX: g_fd[fd].cloexec = 1; return 0;
    case FIONCLEX: g_fd[fd].cloexec = 0; return 0;
    case FIONBIO:
        if (!uaccess_ok((void *)arg, 4)) return -EFAULT;
        if (*(int *)arg) f->flags |= O_NONBLOCK; else f->flags &= ~(u32)O_NONBLOCK;
        return 0;
    case FIONREAD: {
        if (!uaccess_w((void *)arg, 4)) return -EFAULT;
        i64 n = 0;
        if (f->pipe) n = (i64)f->pipe->len;
        else if (f->type == F_FILE) { const u8 *d; u64 s; vfs_file_data(&f->ref, &d, &s); n = s > f->off ? (i64)(s - f->off) : 0; }
        else if (f->type != F_NULL) return -ENOTTY;
        *(int *)arg = (int)n;
        return 0;
    }
    default: return -ENOTTY; /* no terminals here */
    }
}

static i64 sys_pipe2(int *fds, u64 flags)
{
    if (flags & ~(u64)(O_CLOEXEC | O_NONBLOCK)) return -EINVAL;
    if (!uaccess_w(fds, 8)) return -EFAULT;
    struct pipe *p = pipe_new();
    if (!p) return -ENFILE;
    struct file *r = fnew(F_PIPE_R, O_RDONLY | (u32)(flags & O_NONBLOCK));
    struct file *w = fnew(F_PIPE_W, O_WRONLY | (u32)(flags & O_NONBLOCK));
    if (!r || !w) { kfree(p->buf); kfree(p); kfree(r); kfree(w); return -ENFILE; }
    r->pipe = w->pipe = p;
    p->readers = p->writers = 1;
    int a = fd_install(r, 0, !!(flags & O_CLOEXEC));
    if (a < 0) { fput(r); fput(w); return a; }
    int b = fd_install(w, 0, !!(flags & O_CLOEXEC));
    if (b < 0) { sys_close(a); fput(w); return b; }
    fds[0] = a; fds[1] = b;
    return 0;
}

static i64 sys_close_range(u64 lo, u64 hi, u64 flags)
{
    if (lo > hi || (flags & ~6ull)) return -EINVAL;
    if (flags & 2) return -EINVAL; /* CLOSE_RANGE_UNSHARE: nothing to unshare, but be honest */
    for (u64 i = lo; i < NFD && i <= hi; i++) {
        if (!g_fd[i].f) continue;
        if (flags & 4) g_fd[i].cloexec = 1;
        else sys_close((i64)i);
    }
    return 0;
}

/* ---- readiness ---- */
#define POLLIN 1
#define POLLPRI 2
#define POLLOUT 4
#define POLLERR 8
#define POLLHUP 16
#define POLLNVAL 32
static short revents(i64 fd, short ev)
{
    struct file *f = fget(fd);
    if (!f) return POLLNVAL;
    short r = 0;
    if (f->type == F_PIPE_R || f->type == F_SOCK) {
        if (!f->pipe || !f->pipe->writers) r |= POLLHUP | POLLIN;
        else if (f->pipe->len) r |= POLLIN;
    }
    if (f->type == F_PIPE_W || f->type == F_SOCK) {
        struct pipe *t = f->type == F_SOCK ? f->tx : f->pipe;
        if (!t || !t->readers) r |= POLLERR;
        else if (t->len < PIPE_CAP) r |= POLLOUT;
    }
    if (f->type == F_EPOLL) r = 0;
    else if (f->type != F_PIPE_R && f->type != F_PIPE_W && f->type != F_SOCK) r = POLLIN | POLLOUT;
    return r & (ev | POLLERR | POLLHUP | POLLNVAL);
}

struct pollfd { int fd; short events, revents; };
static i64 do_poll(struct pollfd *p, u64 n, i64 timeout_ms)
{
    if (n > NFD) return -EINVAL;
    if (!uaccess_w(p, n * sizeof *p)) return -EFAULT;
    u64 deadline = timeout_ms > 0 ? time_mono_ns() + (u64)timeout_ms * 1000000ull : 0;
    for (;;) {
        i64 c = 0;
        for (u64 i = 0; i < n; i++) {
            p[i].revents = p[i].fd < 0 ? 0 : revents(p[i].fd, p[i].events);
            if (p[i].revents) c++;
        }
        /* single-threaded: nothing can become ready while we wait */
        if (c || timeout_ms == 0) return c;
        if (timeout_ms < 0) return -EDEADLK;
        time_spin_until_mono(deadline);
        return 0;
    }
}

static i64 sys_ppoll(struct pollfd *p, u64 n, const struct ktimespec *ts)
{
    i64 ms = -1;
    if (ts) {
        if (!uaccess_ok(ts, sizeof *ts)) return -EFAULT;
        ms = ts->sec * 1000 + ts->nsec / 1000000;
    }
    return do_poll(p, n, ms);
}

static i64 do_select(i64 n, u64 *rd, u64 *wr, u64 *ex, i64 timeout_ns)
{
    if (n < 0 || n > NFD) return -EINVAL;
    u64 words = ((u64)n + 63) / 64;
    if ((rd && !uaccess_w(rd, words * 8)) || (wr && !uaccess_w(wr, words * 8)) || (ex && !uaccess_w(ex, words * 8))) return -EFAULT;
    i64 c = 0;
    for (i64 fd = 0; fd < n; fd++) {
        u64 bit = 1ull << (fd & 63);
        int want_r = rd && (rd[fd / 64] & bit), want_w = wr && (wr[fd / 64] & bit);
        if (!want_r && !want_w && !(ex && (ex[fd / 64] & bit))) continue;
        short r = revents(fd, POLLIN | POLLOUT);
        if (r & POLLNVAL) return -EBADF;
        if (want_r) { if (r & (POLLIN | POLLHUP)) c++; else rd[fd / 64] &= ~bit; }
        if (want_w) { if (r & (POLLOUT | POLLERR)) c++; else wr[fd / 64] &= ~bit; }
        if (ex) ex[fd / 64] &= ~bit;
    }
    if (c || timeout_ns == 0) return c;
    if (timeout_ns < 0) return -EDEADLK;
    time_spin_until_mono(time_mono_ns() + (u64)timeout_ns);
    return 0;
}

/* ---- AF_UNIX socketpair: two pipes, one per direction (asyncio's self-pipe) ---- */
#define AF_UNIX 1
#define SOCK_STREAM 1
#define SOCK_NONBLOCK 04000
#define SOCK_CLOEXEC 02000000
static i64 sys_socketpair(u64 dom, u64 type, u64 proto, int *sv)
{
    if (dom != AF_UNIX) return -EAFNOSUPPORT;
    if ((type & ~(u64)(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM || proto) return -EOPNOTSUPP;
    if (!uaccess_w(sv, 8)) return -EFAULT;
    struct pipe *p1 = pipe_new(), *p2 = pipe_new();
    struct file *a = fnew(F_SOCK, O_RDWR | (u32)(type & O_NONBLOCK)), *b = fnew(F_SOCK, O_RDWR | (u32)(type & O_NONBLOCK));
    if (!p1 || !p2 || !a || !b) {
        if (p1) { kfree(p1->buf); kfree(p1); }
        if (p2) { kfree(p2->buf); kfree(p2); }
        kfree(a); kfree(b);
        return -ENFILE;
    }
    a->pipe = p1; a->tx = p2; b->pipe = p2; b->tx = p1;
    p1->readers = p1->writers = p2->readers = p2->writers = 1;
    int cl = !!(type & SOCK_CLOEXEC);
    int x = fd_install(a, 0, cl);
    if (x < 0) { fput(a); fput(b); return x; }
    int y = fd_install(b, 0, cl);
    if (y < 0) { sys_close(x); fput(b); return y; }
    sv[0] = x; sv[1] = y;
    return 0;
}

static struct file *sock_get(i64 fd, i64 *err)
{
    struct file *f = fget(fd);
    *err = !f ? -EBADF : f->type != F_SOCK ? -ENOTSOCK : 0;
    return *err ? 0 : f;
}

#define SOL_SOCKET 1
#define SO_TYPE 3
#define SO_ERROR 4
#define SO_DOMAIN 39
static i64 sys_getsockopt(i64 fd, u64 level, u64 opt, int *val, u32 *len)
{
    i64 e;
    if (!sock_get(fd, &e)) return e;
    if (!uaccess_w(len, 4) || *len < 4 || !uaccess_w(val, 4)) return -EFAULT;
    if (level != SOL_SOCKET) return -ENOPROTOOPT;
    if (opt == SO_TYPE) *val = SOCK_STREAM;
    else if (opt == SO_ERROR) *val = 0;
    else if (opt == SO_DOMAIN) *val = AF_UNIX;
    else return -ENOPROTOOPT;
    *len = 4;
    return 0;
}

static i64 sys_getsockname(i64 fd, u8 *addr, u32 *len)
{
    i64 e;
    if (!sock_get(fd, &e)) return e;
    if (!uaccess_w(len, 4) || !uaccess_w(addr, *len)) return -EFAULT;
    if (*len >= 2) { addr[0] = AF_UNIX; addr[1] = 0; }
    *len = 2; /* unnamed AF_UNIX socket */
    return 0;
}

static i64 sys_shutdown(i64 fd, u64 how)
{
    i64 e;
    struct file *f = sock_get(fd, &e);
    if (!f) return e;
    if (how > 2) return -EINVAL;
    /* one process: shutting a direction marks its pipe end gone for the peer */
    struct pipe *gone[2] = { 0, 0 };
    if ((how == 0 || how == 2) && f->pipe) { f->pipe->readers--; f->pipe->len = 0; gone[0] = f->pipe; f->pipe = 0; }
    if ((how == 1 || how == 2) && f->tx) { f->tx->writers--; gone[1] = f->tx; f->tx = 0; }
    for (int i = 0; i < 2; i++)
        if (gone[i] && !gone[i]->readers && !gone[i]->writers) { kfree(gone[i]->buf); kfree(gone[i]); }
    return 0;
}

/* ---- epoll over the descriptors above (level-triggered; EPOLLET/ONESHOT bookkeeping only) ---- */
struct epoll_event_k { u32 events; u64 data; } __attribute__((packed));
static i64 sys_epoll_create(u64 flags)
{
    if (flags & ~(u64)O_CLOEXEC) return -EINVAL;
    struct file *f = fnew(F_EPOLL, O_RDWR);
    if (!f) return -ENOMEM;
    int fd = fd_install(f, 0, !!(flags & O_CLOEXEC));
    if (fd < 0) fput(f);
    return fd;
}

static i64 sys_epoll_ctl(i64 epfd, u64 op, i64 fd, const struct epoll_event_k *ev)
{
    struct file *ep = fget(epfd), *t = fget(fd);
    if (!ep || !t) return -EBADF;
    if (ep->type != F_EPOLL || ep == t) return -EINVAL;
    if (t->type == F_FILE || t->type == F_DIR) return -EPERM; /* like Linux: regular files cannot be polled */
    if (op != 2 && !uaccess_ok(ev, sizeof *ev)) return -EFAULT;
    u32 i;
    for (i = 0; i < ep->ep_n && ep->ep[i].fd != fd; i++) {}
    if (op == 1) { /* ADD */
        if (i < ep->ep_n) return -EEXIST;
        if (ep->ep_n == ep->ep_cap) {
            u32 nc = ep->ep_cap ? ep->ep_cap * 2 : 16;
            struct epitem *n = krealloc(ep->ep, nc * sizeof *n);
            if (!n) return -ENOMEM;
            ep->ep = n; ep->ep_cap = nc;
        }
        ep->ep[ep->ep_n++] = (struct epitem){ (int)fd, ev->events, ev->data };
        return 0;
    }
    if (i == ep->ep_n) return -ENOENT;
    if (op == 2) { ep->ep[i] = ep->ep[--ep->ep_n]; return 0; }
    if (op == 3) { ep->ep[i].events = ev->events; ep->ep[i].data = ev->data; return 0; }
    return -EINVAL;
}

static i64 sys_epoll_wait(i64 epfd, struct epoll_event_k *out, i64 max, i64 timeout_ms)
{
    struct file *ep = fget(epfd);
    if (!ep) return -EBADF;
    if (ep->type != F_EPOLL || max <= 0 || max > 65536) return -EINVAL;
    if (!uaccess_w(out, (u64)max * sizeof *out)) return -EFAULT;
    i64 c = 0;
    for (u32 i = 0; i < ep->ep_n && c < max; i++) {
        short r = revents(ep->ep[i].fd, (short)(ep->ep[i].events & 0xffff));
        if (r & POLLNVAL) continue; /* closed: Linux drops it with its last reference */
        if (r) { out[c].events = (u32)r; out[c].data = ep->ep[i].data; c++; }
    }
    if (c || timeout_ms == 0) return c;
    if (timeout_ms < 0) return -EDEADLK; /* nothing can become ready: waiting would never end */
    time_spin_until_mono(time_mono_ns() + (u64)timeout_ms * 1000000ull);
    return 0;
}

/* ---- dispatch ---- */
i64 fd_syscall(u64 nr, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, int *handled)
{
    *handled = 1;
    switch (nr) {
    case 0: return sys_read((i64)a, (u8 *)b, c);
    case 1: return sys_write((i64)a, (const u8 *)b, c);
    case 2: return do_open(AT_FDCWD, (const char *)a, b, c);
    case 3: return sys_close((i64)a);
    case 4: return stat_path(AT_FDCWD, (const char *)a, (struct kstat *)b, 0);
    case 5: return sys_fstat((i64)a, (struct kstat *)b);
    case 6: return stat_path(AT_FDCWD, (const char *)a, (struct kstat *)b, AT_SYMLINK_NOFOLLOW);
    case 7: return do_poll((struct pollfd *)a, b, (i64)(int)c);
    case 8: return sys_lseek((i64)a, (i64)b, c);
    case 16: return sys_ioctl((i64)a, b, c);
    case 17: return sys_pread((i64)a, (u8 *)b, c, (i64)d);
    case 18: return sys_pwrite((i64)a, (const u8 *)b, c, (i64)d);
    case 19: return sys_rwv((i64)a, (const struct iovec *)b, (i64)c, 0, -1);
    case 20: return sys_rwv((i64)a, (const struct iovec *)b, (i64)c, 1, -1);
    case 295: return sys_rwv((i64)a, (const struct iovec *)b, (i64)c, 0, (i64)d);
    case 296: return sys_rwv((i64)a, (const struct iovec *)b, (i64)c, 1, (i64)d);
    case 21: return sys_access(AT_FDCWD, (const char *)a, b, 0);
    case 22: return sys_pipe2((int *)a, 0);
    case 293: return sys_pipe2((int *)a, b);
    case 23: {
        i64 ns = -1;
        if (e) { if (!uaccess_ok((void *)e, 16)) return -EFAULT; ns = ((i64 *)e)[0] * 1000000000 + ((i64 *)e)[1] * 1000; }
        return do_select((i64)a, (u64 *)b, (u64 *)c, (u64 *)d, ns);
    }
    case 270: {
        i64 ns = -1;
        if (e) { if (!uaccess_ok((void *)e, 16)) return -EFAULT; ns = ((i64 *)e)[0] * 1000000000 + ((i64 *)e)[1]; }
        return do_select((i64)a, (u64 *)b, (u64 *)c, (u64 *)d, ns);
    }
    case 271: return sys_ppoll((struct pollfd *)a, b, (const struct ktimespec *)c);
    case 32: { struct file *x = fget((i64)a); if (!x) return -EBADF; int n = fd_install(x, 0, 0); if (n >= 0) x->refs++; return n; }
    case 33: if (a == b) return fget((i64)a) ? (i64)a : -EBADF; return sys_dup3((i64)a, (i64)b, 0);
    case 292: return sys_dup3((i64)a, (i64)b, c);
    case 72: return sys_fcntl((i64)a, b, c);
    case 73: return fget((i64)a) ? 0 : -EBADF; /* flock: one process, never contended */
    case 74: case 75: return fget((i64)a) ? 0 : -EBADF;
    case 76: return sys_truncate((const char *)a, (i64)b);
    case 77: return sys_ftruncate((i64)a, (i64)b);
    case 217: return sys_getdents64((i64)a, (u8 *)b, c);
    case 79: return sys_getcwd((char *)a, b);
    case 80: return sys_chdir((const char *)a);
    case 81: { struct file *x = fget((i64)a); if (!x) return -EBADF; if (!x->path) return -ENOTDIR; return sys_chdir_ref(&x->ref, x->path); }
    case 82: return sys_renameat(AT_FDCWD, (const char *)a, AT_FDCWD, (const char *)b, 0);
    case 264: return sys_renameat((int)a, (const char *)b, (int)c, (const char *)d, 0);
    case 316: return sys_renameat((int)a, (const char *)b, (int)c, (const char *)d, e);
    case 83: return sys_mkdir(AT_FDCWD, (const char *)a, b);
    case 258: return sys_mkdir((int)a, (const char *)b, c);
    case 84: return sys_unlinkat(AT_FDCWD, (const char *)a, AT_REMOVEDIR);
    case 85: return do_open(AT_FDCWD, (const char *)a, O_CREAT | O_WRONLY | O_TRUNC, b);
    case 86: case 265: return -EPERM; /* hard links are not supported by the overlay */
    case 87: return sys_unlinkat(AT_FDCWD, (const char *)a, 0);
    case 263: return sys_unlinkat((int)a, (const char *)b, c);
    case 88: return sys_symlinkat((const char *)a, AT_FDCWD, (const char *)b);
    case 266: return sys_symlinkat((const char *)a, (int)b, (const char *)c);
    case 89: return sys_readlink(AT_FDCWD, (const char *)a, (char *)b, (i64)c);
    case 267: return sys_readlink((int)a, (const char *)b, (char *)c, (i64)d);
    case 90: return sys_chmodat(AT_FDCWD, (const char *)a, b);
    case 268: return sys_chmodat((int)a, (const char *)b, c);
    case 91: { struct file *x = fget((i64)a); if (!x) return -EBADF;
               if (x->ref.kind == VK_OVL) { x->ref.o->mode = (x->ref.o->mode & S_IFMT) | (u32)(b & 07777); return 0; }
               return x->ref.kind == VK_IMG ? -EROFS : 0; }
    case 92: case 93: case 94: case 260: return -EPERM; /* not root */
    case 95: { u32 old = g_umask; g_umask = (u32)a & 0777; return old; }
    case 257: return do_open((int)a, (const char *)b, c, d);
    case 437: {
        if (!uaccess_ok((void *)c, 24) || d < 24) return -EFAULT;
        const u64 *how = (const u64 *)c;
        if (how[2]) return -EINVAL; /* RESOLVE_* flags are not implemented */
        return do_open((int)a, (const char *)b, how[0], how[1]);
    }
    case 262: return stat_path((int)a, (const char *)b, (struct kstat *)c, d);
    case 332: return sys_statx((int)a, (const char *)b, c, d, (struct kstatx *)e);
    case 269: return sys_access((int)a, (const char *)b, c, 0);
    case 439: return sys_access((int)a, (const char *)b, c, d);
    case 280: return sys_utimensat((int)a, (const char *)b, (const struct ktimespec *)c, d);
    case 436: return sys_close_range(a, b, c);
    case 221: return fget((i64)a) ? 0 : -EBADF; /* fadvise64: advice only */
    case 285: return -EOPNOTSUPP;               /* fallocate */
    case 40: return -EINVAL;                    /* sendfile: not supported between our files */
    case 53: return sys_socketpair(a, b, c, (int *)d);
    case 44: { i64 er; if (!sock_get((i64)a, &er)) return er; if (e) return -EISCONN; return sys_write((i64)a, (const u8 *)b, c); }
    case 45: { i64 er; if (!sock_get((i64)a, &er)) return er;
               if (e && uaccess_w((void *)f, 4)) *(u32 *)f = 0;
               return sys_read((i64)a, (u8 *)b, c); }
    case 48: return sys_shutdown((i64)a, b);
    case 51: case 52: return sys_getsockname((i64)a, (u8 *)b, (u32 *)c);
    case 54: { i64 er; if (!sock_get((i64)a, &er)) return er; return 0; } /* setsockopt: options have no effect here */
    case 55: return sys_getsockopt((i64)a, b, c, (int *)d, (u32 *)e);
    case 213: return (i64)a > 0 ? sys_epoll_create(0) : -EINVAL;
    case 291: return sys_epoll_create(a);
    case 233: return sys_epoll_ctl((i64)a, b, (i64)c, (const struct epoll_event_k *)d);
    case 232: case 281: return sys_epoll_wait((i64)a, (struct epoll_event_k *)b, (i64)(int)c, (i64)(int)d);
    case 441: {
        i64 ms = -1;
        if (d) { if (!uaccess_ok((void *)d, 16)) return -EFAULT; ms = ((i64 *)d)[0] * 1000 + ((i64 *)d)[1] / 1000000; }
        return sys_epoll_wait((i64)a, (struct epoll_event_k *)b, (i64)(int)c, ms);
    }
    case 326: return -EXDEV;                    /* copy_file_range: callers fall back to read/write */
    default: *handled = 0; return -ENOSYS;
    }
}

