/*
 * unit.c — host unit tests (ASan/UBSan) of runtime pieces that do not need
 * the guest layout: the ChaCha20 block function (RFC 8439 vector) and the
 * file tree (image lookup, symlinks, "..", overlay create/rename/unlink,
 * whiteouts, directory listings, a corrupt header) and the runtime-served
 * file requests of files.c (every kind, path normalization, the change log,
 * the quota, and random garbage requests that must only ever get an errno),
 * and timestamps (a directory's mtime/ctime on create, remove and rename, in
 * the overlay and over image directories; file writes, truncation, copy-up)
 * and hard links (two names of one node through rename and unlink).
 * vfs.c and files.c are compiled in with libc standing in for the runtime's
 * allocator and string helpers.
 * usage: guest-unit IMAGE   (built by mkimage.py in run-tests.sh)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../rt.h"

/* ---- stand-ins for the rest of the runtime ---- */
void *kmalloc(u64 n) { return malloc(n ? n : 1); }
void *kzalloc(u64 n) { return calloc(1, n ? n : 1); }
void kfree(void *p) { free(p); }
void *krealloc(void *p, u64 n) { return realloc(p, n); }
static u64 g_now = 1700000000ull * 1000000000ull;
u64 time_wall_ns(void) { return g_now; }
const struct devfile g_devs[] = { { "/dev", DEV_DIR, S_IFDIR | 0755 }, { "/dev/null", DEV_NULL, S_IFCHR | 0666 } };
int dev_count(void) { return 2; }
int dev_lookup(const char *p) { for (int i = 0; i < 2; i++) if (!strcmp(g_devs[i].path, p)) return i; return -ENOENT; }
const char *dev_link_target(int i) { (void)i; return "/x"; }
char g_cwd[PATH_MAX_RT] = "/";
int fd_dir_path(int fd, const char **path) { (void)fd; (void)path; return -EBADF; }
int uaccess_w(const void *p, u64 n) { (void)p; (void)n; return 1; }

#include "../vfs.c"
#include "../random.c"
#include "../files.c"

static int fails;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); fails++; } } while (0)

static void test_chacha(void)
{
    /* RFC 8439 2.3.2 */
    u32 key[8], nonce[3] = { 0x09000000, 0x4a000000, 0x00000000 }, out[16];
    for (int i = 0; i < 8; i++) key[i] = (u32)(4 * i) | (u32)(4 * i + 1) << 8 | (u32)(4 * i + 2) << 16 | (u32)(4 * i + 3) << 24;
    chacha20_block(key, 1, nonce, out);
    CHECK(out[0] == 0xe4e7f110 && out[1] == 0x15593bd1 && out[15] == 0x4e3c50a2);
}

static int resolve(const char *p, int follow, struct vref *r, char *canon)
{
    return vfs_resolve(AT_FDCWD, p, follow, canon, r);
}

static int list_has(const char *dir, const char *name)
{
    struct vref r;
    char canon[PATH_MAX_RT];
    u8 buf[4096];
    u64 pos = 0;
    if (resolve(dir, 1, &r, canon)) return -1;
    i64 n;
    int found = 0;
    while ((n = vfs_getdents(canon, &r, &pos, buf, sizeof buf)) > 0)
        for (i64 o = 0; o < n;) {
            u16 rl;
            memcpy(&rl, buf + o + 16, 2);
            if (!strcmp((char *)buf + o + 19, name)) found++;
            o += rl;
        }
    return found;
}

static void test_vfs(const char *image)
{
    FILE *f = fopen(image, "rb");
    if (!f) { fprintf(stderr, "cannot open %s\n", image); exit(2); }
    struct { long st_size; } st;
    fseek(f, 0, SEEK_END);
    st.st_size = ftell(f);
    fseek(f, 0, SEEK_SET);
    u8 *m = malloc((size_t)st.st_size);
    CHECK(fread(m, 1, (size_t)st.st_size, f) == (size_t)st.st_size);
    fclose(f);
    /* a corrupt header is refused */
    u8 *bad = malloc((size_t)st.st_size);
    memcpy(bad, m, (size_t)st.st_size);
    ((struct fb_img_header *)bad)->entry_count = 1ull << 40;
    CHECK(img_init((u64)bad, (u64)st.st_size) == -ENOEXEC);
    ((struct fb_img_header *)bad)->entry_count = ((struct fb_img_header *)m)->entry_count;
    ((struct fb_img_header *)bad)->magic ^= 1;
    CHECK(img_init((u64)bad, (u64)st.st_size) == -ENOEXEC);
    free(bad);
    CHECK(img_init((u64)m, (u64)st.st_size) == 0);

    struct vref r;
    char canon[PATH_MAX_RT];
    const u8 *d;
    u64 n;
    CHECK(resolve("/etc/hello.txt", 1, &r, canon) == 0 && r.kind == VK_IMG);
    CHECK(vfs_file_data(&r, &d, &n) == 0 && n == 14 && !memcmp(d, "hi from image\n", 14));
    CHECK(resolve("/etc/../etc/./link/etc/hello.txt", 1, &r, canon) == 0 && !strcmp(canon, "/etc/hello.txt"));
    CHECK(resolve("/etc/link", 0, &r, canon) == 0 && !strcmp(canon, "/etc/link"));
    u32 mode;
    CHECK(vfs_mode(&r, &mode) == 0 && (mode & S_IFMT) == S_IFLNK);
    CHECK(resolve("/../../etc//hello.txt", 1, &r, canon) == 0 && !strcmp(canon, "/etc/hello.txt"));
    CHECK(resolve("/etc/hello.txt/x", 1, &r, canon) == -ENOTDIR);
    CHECK(resolve("/nope/x", 1, &r, canon) == -ENOENT && r.kind != VK_NONE);
    CHECK(resolve("/etc/nope", 1, &r, canon) == -ENOENT && r.kind == VK_NONE && !strcmp(canon, "/etc/nope"));
    CHECK(resolve("/etc/loop", 1, &r, canon) == -ELOOP);
    CHECK(resolve("/dev/null", 1, &r, canon) == 0 && r.kind == VK_DEV);
    /* /dev/shm: an overlay directory (mode 1777) under the synthetic /dev */
    CHECK(vfs_boot_dirs() == 0);
    CHECK(resolve("/dev/shm", 1, &r, canon) == 0 && r.kind == VK_OVL && vfs_mode(&r, &mode) == 0 && mode == (S_IFDIR | 01777));
    CHECK(resolve("/dev/shm/sem.x", 1, &r, canon) == -ENOENT && r.kind == VK_NONE);
    CHECK(!vfs_synthetic("/dev/shm/sem.x") && vfs_synthetic("/dev/x") && vfs_synthetic("/dev/shmx") && vfs_synthetic("/proc/a"));
    CHECK(resolve("/dev/nope", 1, &r, canon) == -ENOENT);

    /* overlay: create, write, rename, unlink (whiteout over the image) */
    struct onode *o = ovl_create("/tmp/a", S_IFREG | 0644);
    CHECK(o && ovl_set_size(o, 5) == 0);
    memcpy(o->data, "hello", 5);
    CHECK(resolve("/tmp/a", 1, &r, canon) == 0 && r.kind == VK_OVL && r.o == o);
    CHECK(list_has("/tmp", "a") == 1);
    CHECK(vfs_rename("/tmp/a", &r, "/tmp/b") == 0);
    CHECK(resolve("/tmp/a", 1, &r, canon) == -ENOENT);
    CHECK(resolve("/tmp/b", 1, &r, canon) == 0 && vfs_file_data(&r, &d, &n) == 0 && n == 5 && !memcmp(d, "hello", 5));
    CHECK(list_has("/tmp", "a") == 0 && list_has("/tmp", "b") == 1);
    CHECK(resolve("/etc/hello.txt", 1, &r, canon) == 0);
    CHECK(vfs_unlink("/etc/hello.txt", &r, 0) == 0);
    CHECK(resolve("/etc/hello.txt", 1, &r, canon) == -ENOENT);
    CHECK(list_has("/etc", "hello.txt") == 0 && list_has("/etc", "passwd") == 1);
    /* copy-up on write leaves the image untouched */
    CHECK(resolve("/etc/passwd", 1, &r, canon) == 0 && r.kind == VK_IMG);
    o = ovl_copy_up("/etc/passwd", &r);
    CHECK(o && o->size == 14 && ovl_set_size(o, 2) == 0);
    CHECK(resolve("/etc/passwd", 1, &r, canon) == 0 && r.kind == VK_OVL && r.o->size == 2);
    CHECK(list_has("/etc", "passwd") == 1);
    /* rename an image file: the old name is whited out */
    CHECK(resolve("/etc/other.txt", 1, &r, canon) == 0 && r.kind == VK_IMG);
    CHECK(vfs_rename("/etc/other.txt", &r, "/tmp/moved") == 0);
    CHECK(resolve("/etc/other.txt", 1, &r, canon) == -ENOENT);
    CHECK(resolve("/tmp/moved", 1, &r, canon) == 0 && r.kind == VK_OVL);
    /* directories: non-empty rmdir fails, a moved overlay dir takes its children */
    CHECK(ovl_create("/tmp/dir", S_IFDIR | 0755) && ovl_create("/tmp/dir/f", S_IFREG | 0644));
    CHECK(resolve("/tmp/dir", 1, &r, canon) == 0 && vfs_unlink("/tmp/dir", &r, 1) == -ENOTEMPTY);
    CHECK(vfs_rename("/tmp/dir", &r, "/tmp/dir2") == 0);
    CHECK(resolve("/tmp/dir2/f", 1, &r, canon) == 0 && resolve("/tmp/dir/f", 1, &r, canon) == -ENOENT);
    CHECK(resolve("/etc", 1, &r, canon) == 0 && vfs_rename("/etc", &r, "/etc2") == -EXDEV);
    /* a listing that deletes as it goes sees every entry once */
    for (int i = 0; i < 50; i++) { char nm[32]; snprintf(nm, sizeof nm, "/tmp/m/%02d", i); if (!i) ovl_create("/tmp/m", S_IFDIR | 0755); ovl_create(nm, S_IFREG | 0644); }
    {
        u8 buf[200];
        u64 pos = 0;
        int seen = 0;
        i64 k;
        CHECK(resolve("/tmp/m", 1, &r, canon) == 0);
        while ((k = vfs_getdents("/tmp/m", &r, &pos, buf, sizeof buf)) > 0)
            for (i64 off = 0; off < k;) {
                u16 rl;
                memcpy(&rl, buf + off + 16, 2);
                char full[64];
                snprintf(full, sizeof full, "/tmp/m/%s", (char *)buf + off + 19);
                struct vref c;
                if (strcmp((char *)buf + off + 19, ".") && strcmp((char *)buf + off + 19, "..")) {
                    seen++;
                    CHECK(resolve(full, 0, &c, canon) == 0 && vfs_unlink(full, &c, 0) == 0);
                }
                off += rl;
            }
        CHECK(seen == 50 && list_has("/tmp", "m") == 1);
    }
    /* the image stays mapped: test_files goes on with this tree */
    (void)m;
}

/* ---- timestamps (Linux semantics) ---- */
static struct kstat stat_of(const char *p)
{
    struct vref r;
    struct kstat st;
    char canon[PATH_MAX_RT];
    memset(&st, 0, sizeof st);
    if (resolve(p, 0, &r, canon) || vfs_stat(&r, &st)) st.mode = 0;
    return st;
}
#define AT(s, ns) (st.mtime == (s) && st.mtime_ns == (ns))
static void test_times(void)
{
    const struct fb_img_header *h = (const void *)g_img_base;
    i64 bt = (i64)h->build_time, t0 = 1700000100;
    struct kstat st;
    struct vref r;
    char canon[PATH_MAX_RT];
    /* image entries keep the build time */
    st = stat_of("/etc/stamp.txt");
    CHECK(st.mode && AT(bt, 0) && st.ctime == bt && st.atime == bt);
    /* creating in an image directory moves its mtime and ctime (to the ns) */
    g_now = (u64)t0 * 1000000000ull + 123456789;
    CHECK(ovl_create("/etc/new.py", S_IFREG | 0644) != 0);
    st = stat_of("/etc");
    CHECK(AT(t0, 123456789) && st.ctime == t0 && st.ctime_ns == 123456789);
    st = stat_of("/etc/new.py");
    CHECK(AT(t0, 123456789) && st.ctime == t0 && st.atime == t0);
    /* the root holds /etc: unchanged by a change inside /etc */
    CHECK(stat_of("/").mtime != t0);
    /* removing: the directory moves again, 1 ns later is enough to tell */
    g_now += 1;
    CHECK(resolve("/etc/new.py", 0, &r, canon) == 0 && vfs_unlink("/etc/new.py", &r, 0) == 0);
    st = stat_of("/etc");
    CHECK(AT(t0, 123456790));
    /* rename across directories: both parents and the node's ctime; not its mtime */
    CHECK(ovl_create("/tmp/td", S_IFDIR | 0755) && ovl_create("/tmp/td/x", S_IFREG | 0644));
    i64 xm = stat_of("/tmp/td/x").mtime_ns;
    g_now += 1000;
    CHECK(resolve("/tmp/td/x", 0, &r, canon) == 0 && vfs_rename("/tmp/td/x", &r, "/etc/x") == 0);
    st = stat_of("/tmp/td");
    CHECK(AT(t0, 123457790));
    st = stat_of("/etc");
    CHECK(AT(t0, 123457790));
    st = stat_of("/etc/x");
    CHECK(st.mtime_ns == xm && st.ctime_ns == 123457790);
    /* a copy-up keeps the image's stamps; a write changes mtime and ctime only */
    CHECK(resolve("/etc/stamp.txt", 0, &r, canon) == 0);
    g_now += 1000;
    struct onode *o = ovl_copy_up("/etc/stamp.txt", &r);
    CHECK(o && o->mtime.sec == bt && o->ctime.sec == bt);
    CHECK(ovl_set_size(o, 0) == 0 && o->mtime.nsec == 123458790 && o->ctime.nsec == 123458790 && o->atime.sec == bt);
    /* a copied-up image directory starts from its stamp, not the build time */
    CHECK(resolve("/etc", 0, &r, canon) == 0 && r.kind == VK_IMG);
    o = ovl_copy_up("/etc", &r);
    CHECK(o && o->mtime.nsec == 123457790);
}

/* ---- hard links: two names, one node ---- */
static void test_links(void)
{
    struct vref r, r2;
    char canon[PATH_MAX_RT];
    struct onode *o = ovl_create("/tmp/l1", S_IFREG | 0644);
    CHECK(o && ovl_set_size(o, 3) == 0);
    memcpy(o->data, "abc", 3);
    CHECK(resolve("/tmp/l1", 0, &r, canon) == 0 && vfs_link("/tmp/l1", &r, "/tmp/l2") == 0);
    CHECK(resolve("/tmp/l2", 0, &r2, canon) == 0 && r2.kind == VK_OVL && r2.o == o);
    CHECK(stat_of("/tmp/l1").nlink == 2 && stat_of("/tmp/l2").ino == stat_of("/tmp/l1").ino);
    CHECK(list_has("/tmp", "l1") == 1 && list_has("/tmp", "l2") == 1);
    /* a rename between two names of one node changes nothing */
    CHECK(vfs_rename("/tmp/l1", &r, "/tmp/l2") == 0 && list_has("/tmp", "l1") == 1);
    /* removing the first name keeps the node under the second */
    CHECK(vfs_unlink("/tmp/l1", &r, 0) == 0 && resolve("/tmp/l1", 0, &r, canon) == -ENOENT);
    CHECK(resolve("/tmp/l2", 0, &r2, canon) == 0 && r2.o == o && o->size == 3 && !memcmp(o->data, "abc", 3));
    CHECK(stat_of("/tmp/l2").nlink == 1);
    /* the second name moves, then goes: the node with it */
    CHECK(vfs_rename("/tmp/l2", &r2, "/tmp/l3") == 0 && resolve("/tmp/l3", 0, &r2, canon) == 0 && r2.o == o);
    CHECK(list_has("/tmp", "l2") == 0 && list_has("/tmp", "l3") == 1);
    CHECK(vfs_unlink("/tmp/l3", &r2, 0) == 0 && resolve("/tmp/l3", 0, &r2, canon) == -ENOENT);
    /* an image file is copied up first; the image name then sees the same bytes */
    CHECK(resolve("/etc/linkme.txt", 0, &r, canon) == 0 && r.kind == VK_IMG);
    CHECK(vfs_link("/etc/linkme.txt", &r, "/tmp/lm") == 0);
    CHECK(resolve("/etc/linkme.txt", 0, &r, canon) == 0 && resolve("/tmp/lm", 0, &r2, canon) == 0);
    CHECK(r.kind == VK_OVL && r.o == r2.o && r.o->size == 14 && r.o->links == 1);
    /* unlinking the second name leaves the first */
    CHECK(vfs_unlink("/tmp/lm", &r2, 0) == 0 && resolve("/etc/linkme.txt", 0, &r, canon) == 0 && r.o->links == 0);
    /* directories cannot be linked */
    CHECK(resolve("/tmp", 0, &r, canon) == 0 && vfs_link("/tmp", &r, "/tmp2") == -EPERM);
}

/* ---- file requests ---- */
static u8 rq[1 << 17], outb[1 << 16];
static u64 outl;
static struct fb_file_resp rs;

static int freq_cap(u32 kind, u32 flags, u32 mode, u64 off, u64 len, const char *p1, const char *p2,
                    const void *data, u64 dlen, u64 cap)
{
    struct fb_file_req q;
    memset(&q, 0, sizeof q);
    q.flags = flags; q.mode = mode; q.offset = off; q.length = len;
    q.path_len = p1 ? (u32)strlen(p1) : 0; q.path2_len = p2 ? (u32)strlen(p2) : 0;
    if (kind == FB_REQ_FS_QUOTA) q.quota = off;
    u64 o = sizeof q;
    memcpy(rq, &q, sizeof q);
    if (p1) { memcpy(rq + o, p1, q.path_len); o += q.path_len; }
    if (p2) { memcpy(rq + o, p2, q.path2_len); o += q.path2_len; }
    if (dlen) { memcpy(rq + o, data, dlen); o += dlen; }
    memset(outb, 0xee, sizeof outb);
    files_serve(kind, rq, o, &rs, outb, cap, &outl);
    return rs.err;
}
static int freq(u32 kind, u32 flags, u32 mode, u64 off, u64 len, const char *p1, const char *p2, const void *data, u64 dlen)
{
    return freq_cap(kind, flags, mode, off, len, p1, p2, data, dlen, sizeof outb);
}
static int fwrite_s(const char *path, u32 flags, const char *text)
{
    return freq(FB_REQ_FILE_WRITE, flags, 0, 0, strlen(text), path, 0, text, strlen(text));
}
/* OUT records as "name:type:change:size;" */
static const char *ents(char *buf, u64 cap)
{
    u64 o = 0, b = 0;
    buf[0] = 0;
    for (u64 i = 0; i < rs.length && o + sizeof(struct fb_file_ent) <= outl; i++) {
        struct fb_file_ent e;
        memcpy(&e, outb + o, sizeof e);
        if (e.reclen < sizeof e || e.reclen % 8 || o + e.reclen > outl) { snprintf(buf, cap, "BAD RECORD"); return buf; }
        b += (u64)snprintf(buf + b, cap - b, "%.*s:%u:%u:%lu;", (int)e.name_len, (const char *)outb + o + sizeof e,
                           e.type, e.change, (unsigned long)e.size);
        o += e.reclen;
    }
    return buf;
}
static u64 overlay_bytes(void)
{
    u64 t = 0;
    for (struct onode *n = g_all; n; n = n->anext) t += n->size;
    return t;
}

static void test_files(void)
{
    char b[4096];
    chg_reset();
    /* write creates (with parents on request), read gives data and the total size */
    CHECK(fwrite_s("/work/in/data.csv", 0, "a,b\n1,2\n") == ENOENT);
    CHECK(fwrite_s("/work/in/data.csv", FB_FILE_PARENTS, "a,b\n1,2\n") == 0 && rs.size == 8);
    CHECK(freq(FB_REQ_FILE_READ, 0, 0, 0, 0, "/work/in/data.csv", 0, 0, 0) == 0 && outl == 8 && rs.size == 8 &&
          !memcmp(outb, "a,b\n1,2\n", 8) && (rs.mode & S_IFMT) == S_IFREG && (rs.mode & 0777) == 0644);
    /* chunks: read at an offset with a max length; write at an offset, append, truncate */
    CHECK(freq(FB_REQ_FILE_READ, 0, 0, 4, 2, "/work/in/data.csv", 0, 0, 0) == 0 && outl == 2 && !memcmp(outb, "1,", 2));
    CHECK(freq_cap(FB_REQ_FILE_READ, 0, 0, 0, 0, "/work/in/data.csv", 0, 0, 0, 3) == 0 && outl == 3 && rs.size == 8);
    CHECK(freq(FB_REQ_FILE_READ, 0, 0, 100, 0, "/work/in/data.csv", 0, 0, 0) == 0 && outl == 0 && rs.size == 8);
    CHECK(freq(FB_REQ_FILE_WRITE, 0, 0, 10, 2, "/work/in/data.csv", 0, "zz", 2) == 0 && rs.size == 12);
    CHECK(freq(FB_REQ_FILE_READ, 0, 0, 8, 0, "/work/in/data.csv", 0, 0, 0) == 0 && outl == 4 && !memcmp(outb, "\0\0zz", 4));
    CHECK(fwrite_s("/work/in/data.csv", FB_FILE_TRUNC, "x") == 0 && rs.size == 1);
    CHECK(fwrite_s("/work/in/data.csv", FB_FILE_APPEND, "yz") == 0 && rs.size == 3);
    CHECK(fwrite_s("/work/in/data.csv", FB_FILE_EXCL, "no") == EEXIST);
    CHECK(freq(FB_REQ_FILE_WRITE, 0, 0600, 0, 1, "/work/mode", 0, "m", 1) == 0 && (rs.mode & 0777) == 0600);
    /* stat, directories, errors */
    CHECK(freq(FB_REQ_FILE_STAT, 0, 0, 0, 0, "/work/in", 0, 0, 0) == 0 && (rs.mode & S_IFMT) == S_IFDIR);
    CHECK(freq(FB_REQ_FILE_STAT, 0, 0, 0, 0, "/work/nope", 0, 0, 0) == ENOENT);
    CHECK(freq(FB_REQ_FILE_STAT, FB_FILE_NOFOLLOW, 0, 0, 0, "/etc/link", 0, 0, 0) == 0 && (rs.mode & S_IFMT) == S_IFLNK);
    CHECK(freq(FB_REQ_FILE_READ, 0, 0, 0, 0, "/work/in", 0, 0, 0) == EISDIR);
    CHECK(fwrite_s("/work/in", 0, "x") == EISDIR);
    CHECK(fwrite_s("/work/in/data.csv/x", FB_FILE_PARENTS, "x") == ENOTDIR);
    CHECK(fwrite_s("/dev/null", 0, "x") == EACCES && fwrite_s("/dev/new", 0, "x") == EACCES);
    CHECK(freq(FB_REQ_FILE_READ, 0, 0, 0, 0, "/dev/null", 0, 0, 0) == EINVAL);
    CHECK(freq(FB_REQ_FILE_REMOVE, 0, 0, 0, 0, "/dev/null", 0, 0, 0) == EACCES);
    CHECK(freq(FB_REQ_FILE_REMOVE, FB_FILE_RECURSIVE, 0, 0, 0, "/", 0, 0, 0) == EBUSY);
    CHECK(freq(FB_REQ_FILE_MKDIR, 0, 0, 0, 0, "/work/in", 0, 0, 0) == EEXIST);
    CHECK(freq(FB_REQ_FILE_MKDIR, FB_FILE_PARENTS, 0, 0, 0, "/work/in", 0, 0, 0) == 0);
    CHECK(freq(FB_REQ_FILE_MKDIR, 0, 0, 0, 0, "/work/a/b", 0, 0, 0) == ENOENT);
    CHECK(freq(FB_REQ_FILE_MKDIR, FB_FILE_PARENTS, 0700, 0, 0, "/work/a/b/", 0, 0, 0) == 0);
    CHECK(freq(FB_REQ_FILE_STAT, 0, 0, 0, 0, "/work/a/b", 0, 0, 0) == 0 && rs.mode == (S_IFDIR | 0700));
    /* paths: absolute only, no NUL, ".." stops at "/", symlinks resolve inside the tree */
    CHECK(fwrite_s("work/rel", 0, "x") == EINVAL);
    {
        static const char nul[] = "/work/a\0b";
        struct fb_file_req q;
        memset(&q, 0, sizeof q);
        q.path_len = sizeof nul - 1;
        memcpy(rq, &q, sizeof q);
        memcpy(rq + sizeof q, nul, sizeof nul - 1);
        files_serve(FB_REQ_FILE_STAT, rq, sizeof q + sizeof nul - 1, &rs, outb, sizeof outb, &outl);
        CHECK(rs.err == EINVAL);
    }
    CHECK(fwrite_s("/../../../work/esc", 0, "inside") == 0);
    CHECK(freq(FB_REQ_FILE_READ, 0, 0, 0, 0, "/work/esc", 0, 0, 0) == 0 && outl == 6);
    CHECK(freq(FB_REQ_FILE_READ, 0, 0, 0, 0, "/work/../../../etc/passwd", 0, 0, 0) == 0 && outl == 2 && !memcmp(outb, "hi", 2));
    CHECK(freq(FB_REQ_FILE_READ, 0, 0, 0, 0, "/etc/link/../etc/link/work/esc", 0, 0, 0) == 0 && outl == 6);
    memset(b, 'a', sizeof b); b[0] = '/'; b[PATH_MAX_RT] = 0;
    CHECK(freq(FB_REQ_FILE_STAT, 0, 0, 0, 0, b, 0, 0, 0) == ENAMETOOLONG);
    /* an image file is written through an overlay copy; the image bytes stay */
    CHECK(fwrite_s("/etc/passwd", FB_FILE_APPEND, "!") == 0 && rs.size == 3);
    /* listing: names, types, sizes; paging with a cursor sees each entry once */
    CHECK(freq(FB_REQ_FILE_LIST, 0, 0, 0, 0, "/work/in", 0, 0, 0) == 0 && rs.length == 1 && !(rs.flags & FB_FILE_MORE));
    CHECK(!strcmp(ents(b, sizeof b), "data.csv:1:0:3;"));
    CHECK(freq(FB_REQ_FILE_LIST, 0, 0, 0, 0, "/work/in/data.csv", 0, 0, 0) == ENOTDIR);
    for (int i = 0; i < 30; i++) { char nm[64]; snprintf(nm, sizeof nm, "/work/many/f%02d", i); CHECK(fwrite_s(nm, FB_FILE_PARENTS, "12345") == 0); }
    {
        u64 cur = 0;
        int pages = 0, seen = 0;
        do {
            CHECK(freq(FB_REQ_FILE_LIST, 0, 0, cur, 7, "/work/many", 0, 0, 0) == 0);
            seen += (int)rs.length;
            cur = rs.cursor;
            pages++;
        } while ((rs.flags & FB_FILE_MORE) && pages < 100);
        CHECK(seen == 30 && pages == 5);
        /* an OUT area too small for all of them: MORE, and the cursor goes on from there */
        CHECK(freq_cap(FB_REQ_FILE_LIST, 0, 0, 0, 0, "/work/many", 0, 0, 0, 100) == 0 && rs.length == 2 && (rs.flags & FB_FILE_MORE));
        CHECK(freq(FB_REQ_FILE_LIST, 0, 0, rs.cursor, 0, "/work/many", 0, 0, 0) == 0 && rs.length == 28 && !(rs.flags & FB_FILE_MORE));
        /* the image's /etc merged with the overlay */
        CHECK(freq(FB_REQ_FILE_LIST, 0, 0, 0, 0, "/etc", 0, 0, 0) == 0);
        ents(b, sizeof b);
        CHECK(strstr(b, "passwd:1:0:3;") && strstr(b, "link:3:0:") && !strstr(b, "hello.txt"));
    }
    /* rename (with parents; EXCL), remove (file, non-empty dir, recursive) */
    CHECK(freq(FB_REQ_FILE_RENAME, 0, 0, 0, 0, "/work/mode", "/work/x/y/mode", 0, 0) == ENOENT);
    CHECK(freq(FB_REQ_FILE_RENAME, FB_FILE_PARENTS, 0, 0, 0, "/work/mode", "/work/x/y/mode", 0, 0) == 0);
    CHECK(freq(FB_REQ_FILE_STAT, 0, 0, 0, 0, "/work/x/y/mode", 0, 0, 0) == 0 && freq(FB_REQ_FILE_STAT, 0, 0, 0, 0, "/work/mode", 0, 0, 0) == ENOENT);
    CHECK(freq(FB_REQ_FILE_RENAME, FB_FILE_EXCL, 0, 0, 0, "/work/esc", "/work/in/data.csv", 0, 0) == EEXIST);
    CHECK(freq(FB_REQ_FILE_REMOVE, 0, 0, 0, 0, "/work/many", 0, 0, 0) == ENOTEMPTY);
    CHECK(freq(FB_REQ_FILE_REMOVE, FB_FILE_RECURSIVE, 0, 0, 0, "/work/x", 0, 0, 0) == 0);
    CHECK(freq(FB_REQ_FILE_STAT, 0, 0, 0, 0, "/work/x", 0, 0, 0) == ENOENT);
    CHECK(freq(FB_REQ_FILE_REMOVE, 0, 0, 0, 0, "/work/esc", 0, 0, 0) == 0 && freq(FB_REQ_FILE_REMOVE, 0, 0, 0, 0, "/work/esc", 0, 0, 0) == ENOENT);
    CHECK(overlay_bytes() == g_ovl_used);

    /* a directory whose only entry has a long name is not empty */
    {
        char lp[PATH_MAX_RT];
        int k = snprintf(lp, sizeof lp, "/work/long/");
        memset(lp + k, 'n', 900); lp[k + 900] = 0;
        CHECK(fwrite_s(lp, FB_FILE_PARENTS, "x") == 0);
        CHECK(freq(FB_REQ_FILE_REMOVE, 0, 0, 0, 0, "/work/long", 0, 0, 0) == ENOTEMPTY);
        CHECK(freq(FB_REQ_FILE_LIST, 0, 0, 0, 0, "/work/long", 0, 0, 0) == 0 && rs.length == 1);
        CHECK(freq(FB_REQ_FILE_REMOVE, FB_FILE_RECURSIVE, 0, 0, 0, "/work/long", 0, 0, 0) == 0);
        CHECK(freq(FB_REQ_FILE_STAT, 0, 0, 0, 0, lp, 0, 0, 0) == ENOENT);
    }

    /* the change log, exactly: created, modified, deleted; create+delete cancels */
    chg_reset();
    CHECK(fwrite_s("/work/new.txt", 0, "new!") == 0);                     /* created */
    CHECK(fwrite_s("/work/in/data.csv", FB_FILE_APPEND, "++") == 0);       /* modified */
    CHECK(freq(FB_REQ_FILE_REMOVE, 0, 0, 0, 0, "/work/many/f00", 0, 0, 0) == 0); /* deleted */
    CHECK(fwrite_s("/work/tmp.txt", 0, "t") == 0);
    CHECK(freq(FB_REQ_FILE_REMOVE, 0, 0, 0, 0, "/work/tmp.txt", 0, 0, 0) == 0); /* nothing */
    CHECK(freq(FB_REQ_FILE_RENAME, 0, 0, 0, 0, "/work/many/f01", "/work/f01", 0, 0) == 0);
    CHECK(freq(FB_REQ_FILE_REMOVE, 0, 0, 0, 0, "/etc/passwd", 0, 0, 0) == 0); /* image file deleted */
    {
        struct vref r;
        char canon[PATH_MAX_RT];
        CHECK(resolve("/work/many/f02", 1, &r, canon) == 0);
        ovl_touch(r.o); /* a program's write in place */
    }
    CHECK(freq(FB_REQ_CHANGES, 0, 0, 0, 0, 0, 0, 0, 0) == 0 && !(rs.flags & (FB_FILE_MORE | FB_FILE_OVERFLOW)));
    CHECK(!strcmp(ents(b, sizeof b), "/work/new.txt:1:1:4;/work/in/data.csv:1:2:5;/work/many/f00:1:3:5;"
                                     "/work/many/f01:1:3:5;/work/f01:1:1:5;/etc/passwd:1:3:3;/work/many/f02:1:2:5;"));
    CHECK(freq(FB_REQ_CHANGES, 0, 0, 0, 2, 0, 0, 0, 0) == 0 && rs.length == 2 && (rs.flags & FB_FILE_MORE) && rs.cursor == 2);
    CHECK(freq(FB_REQ_CHANGES, FB_FILE_RESET, 0, 2, 0, 0, 0, 0, 0) == 0 && rs.length == 5);
    CHECK(freq(FB_REQ_CHANGES, 0, 0, 0, 0, 0, 0, 0, 0) == 0 && rs.length == 0);
    /* delete then re-create: modified */
    CHECK(freq(FB_REQ_FILE_REMOVE, 0, 0, 0, 0, "/work/new.txt", 0, 0, 0) == 0 && fwrite_s("/work/new.txt", 0, "again!") == 0);
    CHECK(freq(FB_REQ_CHANGES, 0, 0, 0, 0, 0, 0, 0, 0) == 0 && !strcmp(ents(b, sizeof b), "/work/new.txt:1:2:6;"));
    /* overflow is reported */
    chg_reset();
    for (int i = 0; i < CHG_MAX + 5; i++) { char nm[64]; snprintf(nm, sizeof nm, "/n%d", i); chg_note(nm, 0, S_IFREG, 0); }
    CHECK(freq(FB_REQ_CHANGES, FB_FILE_RESET, 0, 0, 0, 0, 0, 0, 0) == 0 && (rs.flags & FB_FILE_OVERFLOW) && rs.length == 0);
    CHECK(freq(FB_REQ_CHANGES, 0, 0, 0, 0, 0, 0, 0, 0) == 0 && !(rs.flags & FB_FILE_OVERFLOW));

    /* quota: writes past it fail with ENOSPC, also for a program's growth */
    u64 used = g_ovl_used;
    CHECK(freq(FB_REQ_FS_QUOTA, 0, 0, used + 100, 0, 0, 0, 0, 0) == 0 && rs.quota == used + 100 && rs.used == used);
    CHECK(freq(FB_REQ_FILE_WRITE, 0, 0, 0, 100, "/work/q1", 0, rq + 2000, 100) == 0);
    CHECK(freq(FB_REQ_FILE_WRITE, 0, 0, 0, 1, "/work/q2", 0, "x", 1) == ENOSPC && rs.used == used + 100);
    {
        struct vref r;
        char canon[PATH_MAX_RT];
        CHECK(resolve("/work/q1", 1, &r, canon) == 0 && ovl_set_size(r.o, 101) == -ENOSPC && ovl_set_size(r.o, 50) == 0);
    }
    CHECK(freq(FB_REQ_FS_QUOTA, 0, 0, 0, 0, 0, 0, 0, 0) == 0 && rs.quota == 0 && rs.used == used + 50);
    CHECK(overlay_bytes() == g_ovl_used);

    /* malformed requests: an errno, nothing else */
    CHECK(freq(FB_REQ_FILE_STAT, 0x8000, 0, 0, 0, "/work", 0, 0, 0) == EINVAL);
    CHECK(freq(FB_REQ_FILE_WRITE, 0, 0, 0, 5, "/work/w", 0, "abc", 3) == EINVAL);
    CHECK(freq(FB_REQ_FILE_STAT, 0, 0, 0, 0, "/work", 0, "junk", 4) == EINVAL);
    CHECK(freq(25, 0, 0, 0, 0, "/work", 0, 0, 0) == ENOSYS);
    files_serve(FB_REQ_FILE_STAT, rq, 10, &rs, outb, sizeof outb, &outl);
    CHECK(rs.err == EINVAL && outl == 0);
    {
        struct fb_file_req q;
        memset(&q, 0, sizeof q);
        q.path_len = 0xffffffffu; q.path2_len = 0xffffffffu;
        memcpy(rq, &q, sizeof q);
        files_serve(FB_REQ_FILE_RENAME, rq, sizeof q + 10, &rs, outb, sizeof outb, &outl);
        CHECK(rs.err == EINVAL);
    }
}

/* random requests: mostly-plausible headers over random bytes; only errnos may come back */
static void test_files_fuzz(void)
{
    static const char *paths[] = { "/", "/work", "/work/in/data.csv", "/etc", "/etc/link", "/etc/loop", "/dev",
                                   "/dev/null", "/tmp", "/work/../..", "/fz", "/fz/a", "/fz/a/b", "/proc/x" };
    u64 seed = 0x9e3779b97f4a7c15ull;
    int errs = 0, oks = 0;
    for (int it = 0; it < 20000; it++) {
        seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17;
        u64 r = seed;
        u32 kind = FB_REQ_RT_FIRST + (u32)(r % 16);
        struct fb_file_req q;
        u8 *raw = (u8 *)&q;
        for (u64 i = 0; i < sizeof q; i++) { seed ^= seed << 13; seed ^= seed >> 7; seed ^= seed << 17; raw[i] = (u8)seed; }
        u64 len = sizeof q;
        if (r & 0x100) {
            /* plausible: small flags and lengths, a known path */
            const char *p = paths[(r >> 12) % (sizeof paths / sizeof paths[0])];
            const char *p2 = paths[(r >> 20) % (sizeof paths / sizeof paths[0])];
            q.flags = (r >> 50) & 3 ? 0 : q.flags & 0x7f; q.mode &= 07777; q.offset %= 64; q.length %= 64;
            q.path_len = (u32)strlen(p); q.path2_len = kind == FB_REQ_FILE_RENAME ? (u32)strlen(p2) : 0;
            if (kind == FB_REQ_FS_QUOTA || kind == FB_REQ_CHANGES) { q.path_len = q.path2_len = 0; q.flags &= FB_FILE_RESET; q.quota = 0; }
            memcpy(rq + len, p, q.path_len); len += q.path_len;
            memcpy(rq + len, p2, q.path2_len); len += q.path2_len;
            if (kind == FB_REQ_FILE_WRITE) { memset(rq + len, 'z', q.length); len += q.length; }
        } else {
            len += r >> 40 & 0xfff;
            for (u64 i = sizeof q; i < len; i++) rq[i] = (u8)(i * 131 + r);
        }
        memcpy(rq, &q, sizeof q);
        u64 cap = (r >> 32) & 1 ? sizeof outb : (r >> 33) % 256;
        files_serve(kind, rq, (r & 0x300) ? len : (r >> 24) % (len + 1), &rs, outb, cap, &outl);
        CHECK(outl <= cap && rs.err >= 0 && rs.err < 200);
        if (rs.err) errs++; else oks++;
    }
    if (errs < 1000 || oks < 1000) fprintf(stderr, "fuzz: %d errors, %d ok\n", errs, oks);
    CHECK(errs > 1000 && oks > 1000);
    CHECK(overlay_bytes() == g_ovl_used);
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: guest-unit IMAGE\n"); return 2; }
    test_chacha();
    test_vfs(argv[1]);
    test_files();
    test_files_fuzz();
    test_times();
    test_links();
    if (fails) { fprintf(stderr, "guest-unit: %d failures\n", fails); return 1; }
    printf("guest-unit: ok\n");
    return 0;
}
