/*
 * fs.c — the path-based file syscalls over vfs.c: the stat family, statfs,
 * access, readlink, getdents64, mkdir, mknod (FIFOs), link, unlink/rmdir, rename,
 * symlink, truncate, chdir/getcwd, chmod, chown, utimensat. Paths are copied from the program into
 * runtime buffers (bounded, faults checked) before they are resolved.
 */
#include "fdtab.h"
#include "files.h"

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
            return fd_stat(f, st);
        }
    }
    int e = vfs_resolve(dirfd, g_path1, !(flags & AT_SYMLINK_NOFOLLOW), g_path2, &r);
    if (e) return e;
    return vfs_stat(&r, st);
}


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
    sx->atime.sec = st.atime; sx->atime.nsec = (u32)st.atime_ns;
    sx->mtime.sec = st.mtime; sx->mtime.nsec = (u32)st.mtime_ns;
    sx->ctime.sec = sx->btime.sec = st.ctime; sx->ctime.nsec = sx->btime.nsec = (u32)st.ctime_ns;
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
    if (f->ops != &g_dir_ops) return -ENOTDIR;
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

static i64 sys_linkat(int ofd, const char *op, int nfd, const char *np, u64 flags)
{
    static char from[PATH_MAX_RT];
    struct vref fr, tr;
    if (flags & ~(u64)(AT_SYMLINK_FOLLOW | AT_EMPTY_PATH)) return -EINVAL;
    int l = upath(op, g_path1);
    if (l < 0) return l;
    int e;
    if (!l) {
        if (!(flags & AT_EMPTY_PATH)) return -ENOENT;
        struct file *f = fget(ofd);
        if (!f) return -EBADF;
        return -ENOENT;  /* linking a descriptor back into the tree (O_TMPFILE) is not served */
    }
    e = vfs_resolve(ofd, g_path1, !!(flags & AT_SYMLINK_FOLLOW), from, &fr);
    if (e) return e;
    l = upath(np, g_path1);
    if (l < 0) return l;
    e = vfs_resolve(nfd, g_path1, 0, g_path2, &tr);
    if (!e) return -EEXIST;
    if (e != -ENOENT || tr.kind != VK_NONE) return e;
    if (g_path1[l - 1] == '/') return -ENOENT;
    if (tr.kind == VK_DEV || vfs_synthetic(g_path2)) return -EXDEV;
    return vfs_link(from, &fr, g_path2);
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
    if (f->ops != &g_file_ops || !writable(f) || f->ref.kind != VK_OVL) return -EINVAL;
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
    ovl_stamp(r.o, TS_C);
    return 0;
}

#define UTIME_NOW ((1l << 30) - 1)
#define UTIME_OMIT ((1l << 30) - 2)
static i64 sys_utimensat(int dirfd, const char *up, const struct ktimespec *ts, u64 flags)
{
    struct vref r;
    int e;
    if (flags & ~(u64)(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return -EINVAL;
    if (ts && !uaccess_ok(ts, 2 * sizeof *ts)) return -EFAULT;
    struct ktimespec t[2] = { { 0, UTIME_NOW }, { 0, UTIME_NOW } };
    if (ts) { t[0] = ts[0]; t[1] = ts[1]; }
    for (int i = 0; i < 2; i++)
        if (t[i].nsec != UTIME_NOW && t[i].nsec != UTIME_OMIT && (t[i].nsec < 0 || t[i].nsec >= 1000000000)) return -EINVAL;
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
    if (t[0].nsec == UTIME_OMIT && t[1].nsec == UTIME_OMIT) return 0;
    if (r.kind == VK_IMG) {
        if (!g_path2[0]) return -EROFS;
        struct onode *o = ovl_copy_up(g_path2, &r);
        if (!o) return -ENOMEM;
        r.kind = VK_OVL; r.o = o;
    }
    struct onode *o = r.o;
    ovl_stamp(o, TS_C);
    if (t[0].nsec == UTIME_NOW) o->atime = o->ctime; else if (t[0].nsec != UTIME_OMIT) o->atime = t[0];
    if (t[1].nsec == UTIME_NOW) o->mtime = o->ctime; else if (t[1].nsec != UTIME_OMIT) o->mtime = t[1];
    return 0;
}

/* ---- ownership: uid/gid 1000 owns what it created, uid 0 the image and devices ---- */
static i64 chown_ref(struct vref *r, u64 uid, u64 gid)
{
    struct kstat st;
    int e = vfs_stat(r, &st);
    if (e) return e;
    u32 u = (u32)uid, g = (u32)gid, mine = st.uid == FB_UID;
    /* as Linux for an unprivileged caller: the owner may "change" the owner to
     * itself and the group to its current group or one of its own (1000) */
    if (u != (u32)-1 && !(mine && u == st.uid)) return -EPERM;
    if (g != (u32)-1 && !(mine && (g == st.gid || g == FB_GID))) return -EPERM;
    if (r->kind == VK_OVL) ovl_stamp(r->o, TS_C);
    return 0;
}

SYSCALL(fchown);
static i64 sys_fchownat(int dirfd, const char *up, u64 uid, u64 gid, u64 flags)
{
    struct vref r;
    if (flags & ~(u64)(AT_SYMLINK_NOFOLLOW | AT_EMPTY_PATH)) return -EINVAL;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    if (!l) {
        if (!(flags & AT_EMPTY_PATH)) return -ENOENT;
        if (dirfd != AT_FDCWD) return sc_fchown((u64)dirfd, uid, gid, 0, 0, 0);
        g_path1[0] = '.'; g_path1[1] = 0;
    }
    int e = vfs_resolve(dirfd, g_path1, !(flags & AT_SYMLINK_NOFOLLOW), g_path2, &r);
    if (e) return e;
    return chown_ref(&r, uid, gid);
}

/* ---- statfs: the tree is one in-memory filesystem (the overlay over the image) ---- */
struct kstatfs { i64 type, bsize; u64 blocks, bfree, bavail, files, ffree; i32 fsid[2]; i64 namelen, frsize, flags, spare[4]; };
_Static_assert(sizeof(struct kstatfs) == 120, "statfs");
extern u64 g_ram_size;
static i64 fill_statfs(const char *path, int dev, struct kstatfs *sf)
{
    if (!uaccess_w(sf, sizeof *sf)) return -EFAULT;
    memset(sf, 0, sizeof *sf);
    u64 cap = g_ovl_quota ? g_ovl_quota : g_mem_limit ? g_mem_limit : g_ram_size;
    u64 used = g_ovl_used < cap ? g_ovl_used : cap;
    sf->type = 0x01021994;                                  /* TMPFS_MAGIC */
    if (dev && !strncmp(path, "/proc", 5)) sf->type = 0x9fa0;   /* PROC_SUPER_MAGIC */
    if (dev && !strncmp(path, "/sys", 4)) sf->type = 0x62656572; /* SYSFS_MAGIC */
    sf->bsize = sf->frsize = 4096;
    sf->blocks = cap / 4096;
    sf->bfree = sf->bavail = (cap - used) / 4096;
    sf->files = 1 << 20; sf->ffree = 1 << 19;
    sf->namelen = 255;
    sf->flags = 0x20 | 0x400;                               /* ST_VALID | ST_RELATIME */
    return 0;
}
static i64 sys_statfs(const char *up, struct kstatfs *sf)
{
    struct vref r;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    int e = vfs_resolve(AT_FDCWD, g_path1, 1, g_path2, &r);
    if (e) return e;
    return fill_statfs(g_path2, r.kind == VK_DEV, sf);
}
static i64 sys_fstatfs(i64 fd, struct kstatfs *sf)
{
    struct file *f = fget(fd);
    if (!f) return -EBADF;
    return fill_statfs(f->path ? f->path : "/", f->ref.kind == VK_DEV, sf);
}

/* ---- mknod: FIFOs and empty regular files in the overlay; devices need privilege ---- */
static i64 sys_mknodat(int dirfd, const char *up, u64 mode, u64 dev)
{
    struct vref r;
    u32 t = (u32)mode & S_IFMT;
    if (t == 0) t = S_IFREG;
    if (t == S_IFCHR || t == 0060000u) return -EPERM;        /* S_IFBLK: CAP_MKNOD */
    if (t != S_IFREG && t != S_IFIFO && t != 0140000u) return -EINVAL;
    int l = upath(up, g_path1);
    if (l < 0) return l;
    int e = vfs_resolve(dirfd, g_path1, 0, g_path2, &r);
    if (!e) return -EEXIST;
    if (e != -ENOENT || r.kind != VK_NONE) return e;
    if (g_path1[l - 1] == '/') return -ENOENT;
    if (dev_lookup(g_path2) >= 0 || vfs_synthetic(g_path2)) return -EACCES;
    return ovl_create(g_path2, t | ((u32)mode & 07777 & ~g_umask)) ? 0 : -ENOMEM;
}

/* ---- the syscalls (listed in syscall.c) ---- */
SYSCALL(stat) { return stat_path(AT_FDCWD, (const char *)a, (struct kstat *)b, 0); }
SYSCALL(lstat) { return stat_path(AT_FDCWD, (const char *)a, (struct kstat *)b, AT_SYMLINK_NOFOLLOW); }
SYSCALL(newfstatat) { return stat_path((int)a, (const char *)b, (struct kstat *)c, d); }
SYSCALL(statx) { return sys_statx((int)a, (const char *)b, c, d, (struct kstatx *)e); }
SYSCALL(access) { return sys_access(AT_FDCWD, (const char *)a, b, 0); }
SYSCALL(faccessat) { return sys_access((int)a, (const char *)b, c, 0); }
SYSCALL(faccessat2) { return sys_access((int)a, (const char *)b, c, d); }
SYSCALL(truncate) { return sys_truncate((const char *)a, (i64)b); }
SYSCALL(ftruncate) { return sys_ftruncate((i64)a, (i64)b); }
SYSCALL(getdents64) { return sys_getdents64((i64)a, (u8 *)b, c); }
SYSCALL(getcwd) { return sys_getcwd((char *)a, b); }
SYSCALL(chdir) { return sys_chdir((const char *)a); }
SYSCALL(fchdir) { struct file *x = fget((i64)a); if (!x) return -EBADF; if (!x->path) return -ENOTDIR; return sys_chdir_ref(&x->ref, x->path); }
SYSCALL(rename) { return sys_renameat(AT_FDCWD, (const char *)a, AT_FDCWD, (const char *)b, 0); }
SYSCALL(renameat) { return sys_renameat((int)a, (const char *)b, (int)c, (const char *)d, 0); }
SYSCALL(renameat2) { return sys_renameat((int)a, (const char *)b, (int)c, (const char *)d, e); }
SYSCALL(mkdir) { return sys_mkdir(AT_FDCWD, (const char *)a, b); }
SYSCALL(mkdirat) { return sys_mkdir((int)a, (const char *)b, c); }
SYSCALL(rmdir) { return sys_unlinkat(AT_FDCWD, (const char *)a, AT_REMOVEDIR); }
SYSCALL(link) { return sys_linkat(AT_FDCWD, (const char *)a, AT_FDCWD, (const char *)b, 0); }
SYSCALL(linkat) { return sys_linkat((int)a, (const char *)b, (int)c, (const char *)d, e); }
SYSCALL(unlink) { return sys_unlinkat(AT_FDCWD, (const char *)a, 0); }
SYSCALL(unlinkat) { return sys_unlinkat((int)a, (const char *)b, c); }
SYSCALL(symlink) { return sys_symlinkat((const char *)a, AT_FDCWD, (const char *)b); }
SYSCALL(symlinkat) { return sys_symlinkat((const char *)a, (int)b, (const char *)c); }
SYSCALL(readlink) { return sys_readlink(AT_FDCWD, (const char *)a, (char *)b, (i64)c); }
SYSCALL(readlinkat) { return sys_readlink((int)a, (const char *)b, (char *)c, (i64)d); }
SYSCALL(chmod) { return sys_chmodat(AT_FDCWD, (const char *)a, b); }
SYSCALL(fchmodat) { return sys_chmodat((int)a, (const char *)b, c); }
SYSCALL(fchmod)
{
    struct file *x = fget((i64)a);
    if (!x) return -EBADF;
    if (x->ref.kind == VK_OVL) { x->ref.o->mode = (x->ref.o->mode & S_IFMT) | (u32)(b & 07777); ovl_stamp(x->ref.o, TS_C); return 0; }
    return x->ref.kind == VK_IMG ? -EROFS : 0;
}
SYSCALL(chown) { return sys_fchownat(AT_FDCWD, (const char *)a, b, c, 0); }
SYSCALL(lchown) { return sys_fchownat(AT_FDCWD, (const char *)a, b, c, AT_SYMLINK_NOFOLLOW); }
SYSCALL(fchown)
{
    struct file *x = fget((i64)a);
    if (!x) return -EBADF;
    return x->ref.kind == VK_NONE ? 0 : chown_ref(&x->ref, b, c);
}
SYSCALL(fchownat) { return sys_fchownat((int)a, (const char *)b, c, d, e); }
SYSCALL(statfs) { return sys_statfs((const char *)a, (struct kstatfs *)b); }
SYSCALL(fstatfs) { return sys_fstatfs((i64)a, (struct kstatfs *)b); }
SYSCALL(mknod) { return sys_mknodat(AT_FDCWD, (const char *)a, b, c); }
SYSCALL(mknodat) { return sys_mknodat((int)a, (const char *)b, c, d); }
SYSCALL(utimensat) { return sys_utimensat((int)a, (const char *)b, (const struct ktimespec *)c, d); }
/* Extended attributes: the image and the overlay store none. Listing gives an
 * empty list, reading or removing one ENODATA, setting one EOPNOTSUPP — what
 * a filesystem without stored xattrs answers (shutil.copy2 relies on it). */
SYSCALL(setxattr) { return -EOPNOTSUPP; }
static i64 xattr_path(u64 path, int nofollow, i64 answer)
{
    i64 r = sys_access(AT_FDCWD, (const char *)path, 0, nofollow ? AT_SYMLINK_NOFOLLOW : 0);
    return r < 0 ? r : answer;   /* the path must exist, as for the kernel */
}
SYSCALL(getxattr) { return xattr_path(a, 0, -ENODATA); }
SYSCALL(lgetxattr) { return xattr_path(a, 1, -ENODATA); }
SYSCALL(listxattr) { return xattr_path(a, 0, 0); }
SYSCALL(llistxattr) { return xattr_path(a, 1, 0); }
SYSCALL(removexattr) { return xattr_path(a, 0, -ENODATA); }
SYSCALL(lremovexattr) { return xattr_path(a, 1, -ENODATA); }
SYSCALL(fgetxattr) { return fget((i64)a) ? -ENODATA : -EBADF; }
SYSCALL(flistxattr) { return fget((i64)a) ? 0 : -EBADF; }
