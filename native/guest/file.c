/*
 * file.c — open(2) and the descriptor types over the file tree (vfs.c):
 * regular files of the image or the overlay, directories, O_PATH handles.
 * Writes to an image file go to an overlay copy made at open for writing.
 * Devices are opened by dev.c.
 */
#include "fdtab.h"
#include "files.h"

/* ---- regular files ---- */
static i64 reg_read(struct file *f, u8 *buf, u64 n, u64 *off)
{
    const u8 *d; u64 size;
    if (g_shmap_n && f->ref.kind == VK_OVL) shmap_flush_node(f->ref.o); /* a shared mapping's bytes first */
    int e = vfs_file_data(&f->ref, &d, &size);
    if (e) return e;
    if (*off >= size) return 0;
    u64 c = size - *off < n ? size - *off : n;
    memcpy(buf, d + *off, c);
    *off += c;
    return (i64)c;
}

static i64 reg_write(struct file *f, const u8 *buf, u64 n, u64 *off)
{
    struct onode *o = f->ref.o;
    if (f->ref.kind != VK_OVL) return -EBADF;
    if (g_shmap_n) shmap_flush_node(o);
    if (f->flags & O_APPEND) *off = o->size;
    if (*off + n < *off || *off + n > (1ull << 40)) return -EFBIG;
    if (*off + n > o->size) { if (ovl_set_size(o, *off + n)) return -ENOSPC; }
    else ovl_touch(o); /* the change log (files.c) */
    memcpy(o->data + *off, buf, n);
    *off += n;
    ovl_stamp(o, TS_M | TS_C);
    if (g_shmap_n) shmap_refresh_node(o, *off - n, n); /* shared mappings see the write */
    return (i64)n;
}

static u64 reg_size(struct file *f)
{
    const u8 *d; u64 s;
    return vfs_file_data(&f->ref, &d, &s) ? 0 : s;
}

static i64 reg_lseek(struct file *f, i64 off, int whence) { return fd_seek(f, off, whence, (i64)reg_size(f)); }

#define FIONREAD 0x541B
static i64 reg_ioctl(struct file *f, u64 req, u64 arg)
{
    if (req != FIONREAD) return -ENOTTY;
    if (!uaccess_w((void *)arg, 4)) return -EFAULT;
    u64 s = reg_size(f);
    *(int *)arg = s > f->off ? (int)(s - f->off) : 0;
    return 0;
}

static int reg_map(struct file *f, const u8 **data, u64 *size)
{
    if ((f->flags & O_ACCMODE) == O_WRONLY) return -EACCES;
    int r = vfs_file_data(&f->ref, data, size);
    if (r) return r;
    return f->ref.kind == VK_OVL ? 1 : 0;
}

static int reg_stat(struct file *f, struct kstat *st)
{
    if (g_shmap_n && f->ref.kind == VK_OVL) shmap_flush_node(f->ref.o); /* the mtime a mapping write gave */
    return vfs_stat(&f->ref, st);
}

static void reg_release(struct file *f) { if (f->ref.kind == VK_OVL) ovl_put(f->ref.o); }

const struct file_ops g_file_ops = {
    .mode = S_IFREG, .caps = FOP_PIO | FOP_NOEPOLL,
    .read = reg_read, .write = reg_write, .lseek = reg_lseek, .ioctl = reg_ioctl,
    .stat = reg_stat, .map = reg_map, .release = reg_release,
};

/* ---- directories (listed by getdents64 in fs.c) ---- */
static i64 dir_read(struct file *f, u8 *buf, u64 n, u64 *off) { return -EISDIR; }
static i64 dir_lseek(struct file *f, i64 off, int whence)
{
    if (whence == 0) return fd_seek(f, off, 0, 0);
    return (whence == 3 || whence == 4) && off >= 0 ? -ENXIO : -EINVAL;
}
const struct file_ops g_dir_ops = {
    .mode = S_IFDIR, .caps = FOP_PIO | FOP_NOEPOLL, .read = dir_read, .lseek = dir_lseek,
};

/* ---- O_PATH: names a node, reads and writes nothing ---- */
static const struct file_ops path_ops = { .mode = 0 };

static int keep_path(struct file *f, const char *path)
{
    u64 l = strlen(path) + 1;
    f->path = kmalloc(l);
    if (!f->path) return -ENOMEM;
    memcpy(f->path, path, l);
    return 0;
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
        if (vfs_synthetic(g_path2)) return -EACCES;
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
        f = fnew(&path_ops, O_PATH);
        if (!f) return -ENOMEM;
        f->ref = r;
        if ((m & S_IFMT) == S_IFDIR && keep_path(f, g_path2)) { fput(f); return -ENOMEM; }
    } else if ((m & S_IFMT) == S_IFDIR) {
        if (acc != O_RDONLY) return -EISDIR;
        f = fnew(&g_dir_ops, (u32)flags);
        if (!f) return -ENOMEM;
        f->ref = r;
        if (keep_path(f, g_path2)) { fput(f); return -ENOMEM; }
    } else if (r.kind == VK_DEV) {
        if ((e = dev_open(&r, (u32)flags, &f))) return e;
    } else if ((m & S_IFMT) == S_IFIFO && r.kind == VK_OVL) {
        if ((e = fifo_open(r.o, (u32)flags, &f))) return e;
    } else if ((m & S_IFMT) != S_IFREG && (m & S_IFMT) != S_IFLNK) {
        return -ENXIO;   /* a socket node, or a FIFO the image holds: nothing serves it */
    } else {
        if (acc != O_RDONLY || (flags & O_TRUNC)) {
            if (r.kind == VK_IMG) {
                struct onode *o = ovl_copy_up(g_path2, &r);
                if (!o) return -ENOMEM;
                r.kind = VK_OVL; r.o = o;
            }
            if ((flags & O_TRUNC) && acc != O_RDONLY) ovl_set_size(r.o, 0);
        }
        f = fnew(&g_file_ops, (u32)flags);
        if (!f) return -ENOMEM;
        f->ref = r;
        if (r.kind == VK_OVL) r.o->refs++;
    }
    int fd = fd_install(f, 0, !!(flags & O_CLOEXEC));
    if (fd < 0) fput(f);
    return fd;
}

SYSCALL(open) { return do_open(AT_FDCWD, (const char *)a, b, c); }
SYSCALL(creat) { return do_open(AT_FDCWD, (const char *)a, O_CREAT | O_WRONLY | O_TRUNC, b); }
SYSCALL(openat) { return do_open((int)a, (const char *)b, c, d); }
SYSCALL(openat2)
{
    if (!uaccess_ok((void *)c, 24) || d < 24) return -EFAULT;
    const u64 *how = (const u64 *)c;
    if (how[2]) return -EINVAL; /* RESOLVE_* flags are not implemented */
    return do_open((int)a, (const char *)b, how[0], how[1]);
}
