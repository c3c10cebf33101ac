/*
 * unit.c — host unit tests (ASan/UBSan) of runtime pieces that do not need
 * the guest layout: the ChaCha20 block function (RFC 8439 vector) and the
 * file tree (image lookup, symlinks, "..", overlay create/rename/unlink,
 * whiteouts, directory listings, a corrupt header). vfs.c is compiled in with
 * libc standing in for the runtime's allocator and string helpers.
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
u64 time_wall_ns(void) { return 1700000000ull * 1000000000ull; }
const struct devfile g_devs[] = { { "/dev", DEV_DIR, S_IFDIR | 0755 }, { "/dev/null", DEV_NULL, S_IFCHR | 0666 } };
int dev_count(void) { return 2; }
int dev_lookup(const char *p) { for (int i = 0; i < 2; i++) if (!strcmp(g_devs[i].path, p)) return i; return -ENOENT; }
const char *dev_link_target(int i) { (void)i; return "/x"; }
char g_cwd[PATH_MAX_RT] = "/";
int fd_dir_path(int fd, const char **path) { (void)fd; (void)path; return -EBADF; }
int uaccess_w(const void *p, u64 n) { (void)p; (void)n; return 1; }

#include "../vfs.c"
#include "../random.c"

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
    free(m);
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: guest-unit IMAGE\n"); return 2; }
    test_chacha();
    test_vfs(argv[1]);
    if (fails) { fprintf(stderr, "guest-unit: %d failures\n", fails); return 1; }
    printf("guest-unit: ok\n");
    return 0;
}
