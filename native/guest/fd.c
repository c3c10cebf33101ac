/*
 * fd.c — the descriptor table and the calls on descriptors: open, read,
 * write (and the p/v variants), lseek, close, dup, fcntl, ioctl, close_range.
 * An fd points at a shared open file description (offset, status flags).
 * Writes to an image file go to an overlay copy made at open for writing.
 * Path-based calls are in fs.c, pipes/sockets/readiness in ipc.c.
 */
#include "fdtab.h"
#include "files.h"

static struct fdent g_fd[NFD];
char g_cwd[PATH_MAX_RT] = "/";
u32 g_umask = 022;
char g_path1[PATH_MAX_RT], g_path2[PATH_MAX_RT];

struct file *fget(i64 fd)
{
    if (fd < 0 || fd >= NFD) return 0;
    return g_fd[fd].f;
}

int fd_install(struct file *f, int min, int cloexec)
{
    for (int i = min; i < NFD; i++)
        if (!g_fd[i].f) { g_fd[i].f = f; g_fd[i].cloexec = cloexec; return i; }
    return -EMFILE;
}

struct file *fnew(int type, u32 flags)
{
    struct file *f = kzalloc(sizeof *f);
    if (f) { f->refs = 1; f->type = type; f->flags = flags; }
    return f;
}

void fput(struct file *f)
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
int upath(const char *u, char *dst)
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
    case F_PIPE_R: case F_SOCK: return pipe_read(f, buf, n);
    case F_EVENTFD: return eventfd_read(f, buf, n);
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
        if (*off + n > o->size) { if (ovl_set_size(o, *off + n)) return -ENOSPC; }
        else ovl_touch(o); /* the change log (files.c) */
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
    case F_PIPE_W: case F_SOCK: return pipe_write(f, buf, n);
    case F_EVENTFD: return eventfd_write(f, buf, n);
    default: return -EBADF;
    }
}

static int readable(struct file *f) { return f->type != F_PATHONLY && (f->flags & O_ACCMODE) != O_WRONLY; }
int writable(struct file *f) { return f->type != F_PATHONLY && (f->flags & O_ACCMODE) != O_RDONLY; }
static int seekable(struct file *f) { return f->type == F_FILE || f->type == F_TEXT || f->type == F_DIR; }

i64 sys_read(i64 fd, u8 *buf, u64 n)
{
    struct file *f = fget(fd);
    if (!f || !readable(f)) return -EBADF;
    if (n > 0x7ffff000) n = 0x7ffff000;
    if (!uaccess_w(buf, n)) return -EFAULT;
    return file_read(f, buf, n, &f->off);
}

i64 sys_write(i64 fd, const u8 *buf, u64 n)
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


/* ---- descriptors ---- */
i64 sys_close(i64 fd)
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
    case F_GETLK:   /* one process: never a conflicting lock, so l_type becomes F_UNLCK */
        if (f->type != F_FILE) return -EINVAL;
        if (!uaccess_w((void *)arg, sizeof(short))) return -EFAULT;
        *(short *)arg = 2;   /* F_UNLCK; l_type is the first field of struct flock */
        return 0;
    case F_SETLK: case F_SETLKW: return f->type == F_FILE ? 0 : -EINVAL; /* one process: no conflicts */
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


/* ---- dispatch ---- */
i64 fd_syscall(u64 nr, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, int *handled)
{
    *handled = 1;
    switch (nr) {
    case 0: return sys_read((i64)a, (u8 *)b, c);
    case 1: return sys_write((i64)a, (const u8 *)b, c);
    case 2: return do_open(AT_FDCWD, (const char *)a, b, c);
    case 3: return sys_close((i64)a);
    case 8: return sys_lseek((i64)a, (i64)b, c);
    case 16: return sys_ioctl((i64)a, b, c);
    case 17: return sys_pread((i64)a, (u8 *)b, c, (i64)d);
    case 18: return sys_pwrite((i64)a, (const u8 *)b, c, (i64)d);
    case 19: return sys_rwv((i64)a, (const struct iovec *)b, (i64)c, 0, -1);
    case 20: return sys_rwv((i64)a, (const struct iovec *)b, (i64)c, 1, -1);
    case 295: return sys_rwv((i64)a, (const struct iovec *)b, (i64)c, 0, (i64)d);
    case 296: return sys_rwv((i64)a, (const struct iovec *)b, (i64)c, 1, (i64)d);
    case 32: { struct file *x = fget((i64)a); if (!x) return -EBADF; int n = fd_install(x, 0, 0); if (n >= 0) x->refs++; return n; }
    case 33: if (a == b) return fget((i64)a) ? (i64)a : -EBADF; return sys_dup3((i64)a, (i64)b, 0);
    case 292: return sys_dup3((i64)a, (i64)b, c);
    case 72: return sys_fcntl((i64)a, b, c);
    case 73: return fget((i64)a) ? 0 : -EBADF; /* flock: one process, never contended */
    case 74: case 75: return fget((i64)a) ? 0 : -EBADF;
    case 85: return do_open(AT_FDCWD, (const char *)a, O_CREAT | O_WRONLY | O_TRUNC, b);
    case 95: { u32 old = g_umask; g_umask = (u32)a & 0777; return old; }
    case 257: return do_open((int)a, (const char *)b, c, d);
    case 437: {
        if (!uaccess_ok((void *)c, 24) || d < 24) return -EFAULT;
        const u64 *how = (const u64 *)c;
        if (how[2]) return -EINVAL; /* RESOLVE_* flags are not implemented */
        return do_open((int)a, (const char *)b, how[0], how[1]);
    }
    case 436: return sys_close_range(a, b, c);
    case 221: return fget((i64)a) ? 0 : -EBADF; /* fadvise64: advice only */
    case 285: return -EOPNOTSUPP;               /* fallocate */
    case 40: return -EINVAL;                    /* sendfile: not supported between our files */
    case 326: return -EXDEV;                    /* copy_file_range: callers fall back to read/write */
    default: return fs_syscall(nr, a, b, c, d, e, f, handled);
    }
}
