/*
 * fd.c — the descriptor table and the calls on any descriptor: read, write
 * (and the p/v variants), lseek, close, dup, fcntl, ioctl, close_range. An fd
 * points at a shared open file description (offset, status flags) whose
 * file_ops (fdtab.h) do the type's part; this file knows no type by name.
 */
#include "fdtab.h"

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

struct file *fnew(const struct file_ops *ops, u32 flags)
{
    struct file *f = kzalloc(sizeof *f);
    if (f) { f->refs = 1; f->ops = ops; f->flags = flags; }
    return f;
}

void fput(struct file *f)
{
    if (--f->refs > 0) return;
    if (f->ops->release) f->ops->release(f);
    kfree(f->path);
    kfree(f);
}

/* the directory an *at() call starts from (vfs.c) */
int fd_dir_path(int fd, const char **path)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    if (!f->path) return -ENOTDIR;
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

/* mmap's view of a descriptor (mm.c): 1 when the bytes are the overlay's own */
int fd_map_source(i64 fd, const u8 **data, u64 *size)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    if (!f->ops->map) return -ENODEV;
    return f->ops->map(f, data, size);
}

int fd_stat(struct file *f, struct kstat *st)
{
    return f->ops->stat ? f->ops->stat(f, st) : vfs_stat(&f->ref, st);
}

int fd_anon_stat(struct kstat *st, u32 mode, u64 ino)
{
    memset(st, 0, sizeof *st);
    st->mode = mode; st->ino = ino; st->dev = 5; st->nlink = 1; st->blksize = 4096;
    return 0;
}

short fd_revents(i64 fd, short ev)
{
    struct file *f = fget(fd);
    if (!f) return POLLNVAL;
    short r = f->ops->poll ? f->ops->poll(f) : POLLIN | POLLOUT;
    return r & (ev | POLLERR | POLLHUP | POLLNVAL);
}

i64 fd_seek(struct file *f, i64 off, int whence, i64 size)
{
    i64 base;
    switch (whence) {
    case 0: base = 0; break;
    case 1: base = (i64)f->off; break;
    case 2: base = size; break;
    case 3: if (off >= size) return -ENXIO; base = 0; break;       /* SEEK_DATA */
    case 4: if (off >= size) return -ENXIO; base = 0; off = size; break; /* SEEK_HOLE */
    default: return -EINVAL;
    }
    i64 n = base + off;
    if (n < 0) return -EINVAL;
    f->off = (u64)n;
    return n;
}


/* ---- read / write ---- */
int readable(struct file *f) { return f->ops->read && (f->flags & O_ACCMODE) != O_WRONLY; }
int writable(struct file *f) { return f->ops->write && (f->flags & O_ACCMODE) != O_RDONLY; }

i64 fd_read(i64 fd, u8 *buf, u64 n)
{
    struct file *f = fget(fd);
    if (!f || !readable(f)) return -EBADF;
    if (n > 0x7ffff000) n = 0x7ffff000;
    if (!uaccess_w(buf, n)) return -EFAULT;
    return f->ops->read(f, buf, n, &f->off);
}

i64 fd_write(i64 fd, const u8 *buf, u64 n)
{
    struct file *f = fget(fd);
    if (!f || !writable(f)) return -EBADF;
    if (n > 0x7ffff000) n = 0x7ffff000;
    if (!uaccess_ok(buf, n)) return -EFAULT;
    return f->ops->write(f, buf, n, &f->off);
}

static i64 fd_pread(i64 fd, u8 *buf, u64 n, i64 off)
{
    struct file *f = fget(fd);
    if (!f || !readable(f)) return -EBADF;
    if (!(f->ops->caps & FOP_PIO)) return -ESPIPE;
    if (f->ops->mode == S_IFDIR) return -EISDIR;
    if (off < 0) return -EINVAL;
    if (!uaccess_w(buf, n)) return -EFAULT;
    u64 o = (u64)off;
    return f->ops->read(f, buf, n, &o);
}

static i64 fd_pwrite(i64 fd, const u8 *buf, u64 n, i64 off)
{
    struct file *f = fget(fd);
    if (!f || !writable(f)) return -EBADF;
    if (!(f->ops->caps & FOP_PIO)) return -ESPIPE;
    if (off < 0) return -EINVAL;
    if (!uaccess_ok(buf, n)) return -EFAULT;
    u64 o = (u64)off;
    u32 saved = f->flags;
    f->flags &= ~(u32)O_APPEND;
    i64 r = f->ops->write(f, buf, n, &o);
    f->flags = saved;
    return r;
}

struct iovec { void *base; u64 len; };
static i64 fd_rwv(i64 fd, const struct iovec *iov, i64 cnt, int wr, i64 off)
{
    if (cnt < 0 || cnt > 1024) return -EINVAL;
    if (!uaccess_ok(iov, (u64)cnt * sizeof *iov)) return -EFAULT;
    i64 tot = 0;
    for (i64 i = 0; i < cnt; i++) {
        if (!iov[i].len) continue;
        i64 r = off < 0 ? (wr ? fd_write(fd, iov[i].base, iov[i].len) : fd_read(fd, iov[i].base, iov[i].len))
                        : (wr ? fd_pwrite(fd, iov[i].base, iov[i].len, off + tot) : fd_pread(fd, iov[i].base, iov[i].len, off + tot));
        if (r < 0) return tot ? tot : r;
        tot += r;
        if ((u64)r < iov[i].len) break;
    }
    return tot;
}

SYSCALL(read) { return fd_read((i64)a, (u8 *)b, c); }
SYSCALL(write) { return fd_write((i64)a, (const u8 *)b, c); }
SYSCALL(pread64) { return fd_pread((i64)a, (u8 *)b, c, (i64)d); }
SYSCALL(pwrite64) { return fd_pwrite((i64)a, (const u8 *)b, c, (i64)d); }
SYSCALL(readv) { return fd_rwv((i64)a, (const struct iovec *)b, (i64)c, 0, -1); }
SYSCALL(writev) { return fd_rwv((i64)a, (const struct iovec *)b, (i64)c, 1, -1); }
SYSCALL(preadv) { return fd_rwv((i64)a, (const struct iovec *)b, (i64)c, 0, (i64)d); }
SYSCALL(pwritev) { return fd_rwv((i64)a, (const struct iovec *)b, (i64)c, 1, (i64)d); }

SYSCALL(lseek)
{
    struct file *fl = fget((i64)a);
    if (!fl) return -EBADF;
    if (!fl->ops->lseek) return -ESPIPE;
    return fl->ops->lseek(fl, (i64)b, (int)c);
}


/* ---- descriptors ---- */
i64 fd_close(i64 fd)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    g_fd[fd].f = 0;
    fput(f);
    return 0;
}
SYSCALL(close) { return fd_close((i64)a); }

static i64 fd_dup3(i64 old, i64 nw, u64 flags)
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
SYSCALL(dup) { struct file *x = fget((i64)a); if (!x) return -EBADF; int n = fd_install(x, 0, 0); if (n >= 0) x->refs++; return n; }
SYSCALL(dup2) { if (a == b) return fget((i64)a) ? (i64)a : -EBADF; return fd_dup3((i64)a, (i64)b, 0); }
SYSCALL(dup3) { return fd_dup3((i64)a, (i64)b, c); }

#define F_DUPFD 0
#define F_GETFD 1
#define F_SETFD 2
#define F_GETFL 3
#define F_SETFL 4
#define F_GETLK 5
#define F_SETLK 6
#define F_SETLKW 7
#define F_DUPFD_CLOEXEC 1030
SYSCALL(fcntl)
{
    i64 fd = (i64)a;
    u64 cmd = b, arg = c;
    struct file *fl = fget(fd);
    if (!fl) return -EBADF;
    switch (cmd) {
    case F_DUPFD: case F_DUPFD_CLOEXEC: {
        if (arg >= NFD) return -EINVAL;
        int n = fd_install(fl, (int)arg, cmd == F_DUPFD_CLOEXEC);
        if (n >= 0) fl->refs++;
        return n;
    }
    case F_GETFD: return g_fd[fd].cloexec ? 1 : 0;
    case F_SETFD: g_fd[fd].cloexec = arg & 1; return 0;
    case F_GETFL: return fl->flags & ~(u32)(O_CREAT | O_EXCL | O_NOCTTY | O_TRUNC | O_CLOEXEC);
    case F_SETFL: fl->flags = (fl->flags & ~(u32)(O_APPEND | O_NONBLOCK)) | (u32)(arg & (O_APPEND | O_NONBLOCK)); return 0;
    case F_GETLK:   /* one process: never a conflicting lock, so l_type becomes F_UNLCK */
        if (fl->ops->mode != S_IFREG) return -EINVAL;
        if (!uaccess_w((void *)arg, sizeof(short))) return -EFAULT;
        *(short *)arg = 2;   /* F_UNLCK; l_type is the first field of struct flock */
        return 0;
    case F_SETLK: case F_SETLKW: return fl->ops->mode == S_IFREG ? 0 : -EINVAL; /* one process: no conflicts */
    default: return fl->ops->fcntl ? fl->ops->fcntl(fl, cmd, arg) : -EINVAL;
    }
}

#define FIONBIO 0x5421
#define FIOCLEX 0x5451
#define FIONCLEX 0x5450
SYSCALL(ioctl)
{
    struct file *fl = fget((i64)a);
    if (!fl) return -EBADF;
    switch (b) {
    case FIOCLEX: g_fd[a].cloexec = 1; return 0;
    case FIONCLEX: g_fd[a].cloexec = 0; return 0;
    case FIONBIO:
        if (!uaccess_ok((void *)c, 4)) return -EFAULT;
        if (*(int *)c) fl->flags |= O_NONBLOCK; else fl->flags &= ~(u32)O_NONBLOCK;
        return 0;
    default: return fl->ops->ioctl ? fl->ops->ioctl(fl, b, c) : -ENOTTY; /* no terminals here */
    }
}

SYSCALL(close_range)
{
    u64 lo = a, hi = b, flags = c;
    if (lo > hi || (flags & ~6ull)) return -EINVAL;
    if (flags & 2) return -EINVAL; /* CLOSE_RANGE_UNSHARE: nothing to unshare, but be honest */
    for (u64 i = lo; i < NFD && i <= hi; i++) {
        if (!g_fd[i].f) continue;
        if (flags & 4) g_fd[i].cloexec = 1;
        else fd_close((i64)i);
    }
    return 0;
}

/* execve: every descriptor marked close-on-exec is closed */
void fd_exec_close(void)
{
    for (int i = 0; i < NFD; i++)
        if (g_fd[i].f && g_fd[i].cloexec) fd_close(i);
}

/* one process: locks never contend, syncing has nowhere to go, advice is only advice */
SYSCALL(fd_ok) { return fget((i64)a) ? 0 : -EBADF; }
SYSCALL(umask) { u32 old = g_umask; g_umask = (u32)a & 0777; return old; }
SYSCALL(fstat)
{
    struct file *fl = fget((i64)a);
    if (!fl) return -EBADF;
    if (!uaccess_w((void *)b, sizeof(struct kstat))) return -EFAULT;
    return fd_stat(fl, (struct kstat *)b);
}
