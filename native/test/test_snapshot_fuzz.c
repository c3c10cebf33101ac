/*
 * test_snapshot_fuzz.c — the state file parser against hostile bytes: every
 * single-byte flip, truncations, and well-checksummed headers with wrong
 * versions or absurd sizes must give a clean error (never a crash or a
 * half-open snapshot); a changed memory file is refused as stale.
 */
#include <stddef.h>
#include <sys/time.h>

#include "util.h"
#include "internal.h"
#include "snapshot.h"

static uint8_t *orig;
static size_t orig_len;

static void put_file(const char *path, const void *buf, size_t n)
{
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    CHECK(fd >= 0 && write(fd, buf, n) == (ssize_t)n);
    close(fd);
}

static int try_open(const uint8_t *buf, size_t n, struct vmm_err *e)
{
    put_file(tmp_path("fuzz.state"), buf, n);
    struct vmm_snapshot *s = NULL;
    memset(e, 0, sizeof *e);
    int rc = vmm_snapshot_open(tmp_path("echo.mem"), tmp_path("fuzz.state"), &s, e);
    if (rc == 0) vmm_snapshot_close(s);
    else CHECK(rc < 0 && e->code == rc && e->msg[0] && e->op);
    return rc;
}

/* Rewrites a header field and fixes the header checksum, so only the field's
 * own validation can catch it. */
static int try_header(size_t off, const void *val, size_t n, struct vmm_err *e)
{
    uint8_t *b = malloc(orig_len);
    memcpy(b, orig, orig_len);
    memcpy(b + off, val, n);
    struct snap_header h;
    memcpy(&h, b, sizeof h);
    h.header_fnv = fnv1a64(0xcbf29ce484222325ull, &h, offsetof(struct snap_header, header_fnv));
    memcpy(b, &h, sizeof h);
    int rc = try_open(b, orig_len, e);
    free(b);
    return rc;
}

int main(int argc, char **argv)
{
    skip_without_kvm("snapshot fuzz test");
    CHECK(argc == 2);
    g_guests = argv[1];
    tmp_init();
    struct vmm_snapshot *s = make_snapshot("echo", NULL, 0);
    vmm_snapshot_close(s);
    int fd = open(tmp_path("echo.state"), O_RDONLY);
    struct stat st;
    CHECK(fd >= 0 && fstat(fd, &st) == 0);
    orig_len = (size_t)st.st_size;
    orig = malloc(orig_len);
    CHECK(read(fd, orig, orig_len) == (ssize_t)orig_len);
    close(fd);
    struct vmm_err e;
    CHECK(try_open(orig, orig_len, &e) == 0);

    /* Every byte of the file flipped (FNV-1a detects any single-byte change). */
    uint8_t *b = malloc(orig_len);
    int flips = 0;
    for (size_t i = 0; i < orig_len; i++) {
        memcpy(b, orig, orig_len);
        b[i] ^= (uint8_t)(1u << (i % 8));
        CHECK(try_open(b, orig_len, &e) < 0);
        flips++;
    }
    /* Truncations and an extra byte. */
    int truncs = 0;
    for (size_t n = 0; n < orig_len; n += (n < 300 ? 1 : 97)) { CHECK(try_open(orig, n, &e) < 0); truncs++; }
    memcpy(b, orig, orig_len);
    uint8_t *longer = malloc(orig_len + 1);
    memcpy(longer, orig, orig_len);
    longer[orig_len] = 0;
    CHECK(try_open(longer, orig_len + 1, &e) < 0);
    free(longer);

    /* Checksummed but wrong: version, ABI, sizes. */
    uint32_t v32 = SNAP_VERSION + 1;
    CHECK(try_header(offsetof(struct snap_header, version), &v32, 4, &e) == -EINVAL && strstr(e.msg, "version"));
    v32 = 99;
    CHECK(try_header(offsetof(struct snap_header, abi_version), &v32, 4, &e) == -EINVAL && strstr(e.msg, "ABI"));
    v32 = 0xffffffffu;
    CHECK(try_header(offsetof(struct snap_header, n_msrs), &v32, 4, &e) == -EINVAL);
    CHECK(try_header(offsetof(struct snap_header, n_cpuid), &v32, 4, &e) == -EINVAL);
    CHECK(try_header(offsetof(struct snap_header, xsave_size), &v32, 4, &e) == -EINVAL);
    CHECK(try_header(offsetof(struct snap_header, image_path_len), &v32, 4, &e) == -EINVAL);
    uint64_t v64 = 1ull << 62;
    CHECK(try_header(offsetof(struct snap_header, ram_size), &v64, 8, &e) == -EINVAL);
    CHECK(try_header(offsetof(struct snap_header, body_size), &v64, 8, &e) == -EINVAL);
    v64 = 0;
    CHECK(try_header(offsetof(struct snap_header, tsc_khz), &v64, 8, &e) == -EINVAL);

    /* The memory file is bound to its state file by size and mtime. */
    CHECK(try_open(orig, orig_len, &e) == 0);
    struct timeval tv[2] = { { 1000, 0 }, { 1000, 0 } };
    CHECK(utimes(tmp_path("echo.mem"), tv) == 0);
    CHECK(try_open(orig, orig_len, &e) == -ESTALE);
    unlink(tmp_path("echo.mem"));
    CHECK(try_open(orig, orig_len, &e) == -ENOENT);

    struct vmm_stats stats;
    vmm_stats_get(&stats);
    CHECK(stats.vms_live == 0);
    free(b);
    free(orig);
    tmp_cleanup();
    printf("snapshot fuzz: %d byte flips, %d truncations, 9 bad headers, stale/missing memory file: all clean errors\n",
           flips, truncs);
    return 0;
}
