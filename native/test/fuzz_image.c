/*
 * fuzz_image.c — libFuzzer target: the guest runtime's image parser and file
 * tree (native/guest/vfs.c, compiled in with libc standing in for the runtime
 * as native/guest/host/unit.c does). The input is an image file in an exactly
 * sized heap buffer (ASan sees any read past it); the harness mounts it and
 * walks it: directory listings, lookups with and without following symlinks,
 * stat, readlink and every byte of every file's data.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../guest/rt.h"

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

/* the change log (files.c) is the file-request server's, not the image reader's */
void chg_note(const char *path, int existed, u32 mode, u64 size) { (void)path; (void)existed; (void)mode; (void)size; }

#include "../guest/vfs.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile u64 g_sink;
static int g_budget;

static void visit(const char *path, int depth)
{
    struct vref r;
    char canon[PATH_MAX_RT];
    if (--g_budget < 0) return;
    for (int follow = 0; follow < 2; follow++) {
        if (vfs_resolve(AT_FDCWD, path, follow, canon, &r)) continue;
        struct kstat st;
        if (vfs_stat(&r, &st) == 0) g_sink += (u64)st.size;
        char link[PATH_MAX_RT];
        if (vfs_readlink(&r, link, sizeof link) >= 0) g_sink += (u8)link[0];
        const u8 *d;
        u64 n;
        if (vfs_file_data(&r, &d, &n) == 0)
            for (u64 i = 0; i < n; i++) g_sink += d[i];
        if (!follow || depth >= 4) continue;
        u32 mode;
        if (vfs_mode(&r, &mode) || (mode & S_IFMT) != S_IFDIR) continue;
        u8 buf[2048];
        u64 pos = 0;
        i64 got;
        while (g_budget > 0 && (got = vfs_getdents(canon, &r, &pos, buf, sizeof buf)) > 0) {
            for (i64 o = 0; o + 19 < got;) {
                u16 rl;
                memcpy(&rl, buf + o + 16, 2);
                if (rl < 20 || o + rl > got) __builtin_trap();   /* malformed record from getdents */
                const char *name = (const char *)buf + o + 19;
                if (strcmp(name, ".") && strcmp(name, "..")) {
                    char child[PATH_MAX_RT];
                    if (snprintf(child, sizeof child, "%s/%s", strcmp(canon, "/") ? canon : "", name) < (int)sizeof child)
                        visit(child, depth + 1);
                }
                o += rl;
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    u8 *img = malloc(size ? size : 1);
    if (!img) return 0;
    memcpy(img, data, size);
    if (img_init((u64)(uintptr_t)img, size) == 0) {
        g_budget = 256;
        visit("/", 0);
        visit("/etc/passwd", 0);
        visit("/etc/link/etc/hello.txt", 0);
        visit("/no/such/file", 0);
    }
    g_img_base = 0;
    g_img_size = 0;
    free(img);
    return 0;
}
