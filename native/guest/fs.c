/*
 * fs.c — the path-based file syscalls over vfs.c: the stat family, access,
 * readlink, getdents64, mkdir, unlink/rmdir, rename, symlink, truncate,
 * chdir/getcwd, chmod, utimensat. Paths are copied from the program into
 * runtime buffers (bounded, faults checked) before they are resolved.
 */
#include "fdtab.h"

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


/* ---- dispatch ---- */
i64 fs_syscall(u64 nr, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, int *handled)
{
    *handled = 1;
    switch (nr) {
    case 4: return stat_path(AT_FDCWD, (const char *)a, (struct kstat *)b, 0);
    case 5: return sys_fstat((i64)a, (struct kstat *)b);
    case 6: return stat_path(AT_FDCWD, (const char *)a, (struct kstat *)b, AT_SYMLINK_NOFOLLOW);
    case 21: return sys_access(AT_FDCWD, (const char *)a, b, 0);
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
    case 262: return stat_path((int)a, (const char *)b, (struct kstat *)c, d);
    case 332: return sys_statx((int)a, (const char *)b, c, d, (struct kstatx *)e);
    case 269: return sys_access((int)a, (const char *)b, c, 0);
    case 439: return sys_access((int)a, (const char *)b, c, d);
    case 280: return sys_utimensat((int)a, (const char *)b, (const struct ktimespec *)c, d);
    /* Extended attributes: the image and the overlay store none. Listing gives an
     * empty list, reading or removing one ENODATA, setting one EOPNOTSUPP — what
     * a filesystem without stored xattrs answers (shutil.copy2 relies on it). */
    case 188: case 189: case 190: return -EOPNOTSUPP;
    case 191: case 192: case 194: case 195: case 197: case 198: {
        i64 r = sys_access(AT_FDCWD, (const char *)a, 0, (nr == 192 || nr == 195 || nr == 198) ? AT_SYMLINK_NOFOLLOW : 0);
        if (r < 0) return r;   /* the path must exist, as for the kernel */
        return (nr == 194 || nr == 195) ? 0 : -ENODATA;
    }
    case 193: case 196: case 199: {
        if (!fget((i64)a)) return -EBADF;
        return nr == 196 ? 0 : -ENODATA;
    }
    default: return ipc_syscall(nr, a, b, c, d, e, f, handled);
    }
}
