/*
 * test_derive.c — child snapshots: a live fork captured with only the pages
 * it changed, forks of it that see its state and diverge independently, the
 * parent re-based so that it and its children share those pages, children
 * of children, the on-disk form (write, reopen, resume), and a tampered or
 * foreign child refused. fds come back to where they started.
 */
#include "util.h"
#include "internal.h"

#define SEC 2000000000ull
#define PAGES 12800u            /* 50 MiB of touched pages */

static struct vmm_response req(struct vmm_vm *vm, const char *fmt, unsigned a, unsigned b)
{
    char p[64];
    snprintf(p, sizeof p, fmt, a, b);
    struct vmm_response r = run_req(vm, p, SEC);
    CHECK(r.outcome == VMM_OK && r.status == FB_ST_DONE);
    return r;
}

static void flip(const char *path, off_t off)
{
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    uint8_t b;
    CHECK(pread(fd, &b, 1, off) == 1);
    b ^= 0x40;
    CHECK(pwrite(fd, &b, 1, off) == 1);
    close(fd);
}

int main(int argc, char **argv)
{
    skip_without_kvm("child snapshot tests");
    g_guests = argc > 1 ? argv[1] : "out/guests";
    tmp_init();
    struct vmm_snapshot *root = make_snapshot("fill", NULL, 128ull << 20);
    struct vmm_snapshot *other = make_snapshot("echo", NULL, 128ull << 20);
    int fds0 = count_fds();

    struct vmm_vm *parent;
    OKV(vmm_fork(root, NULL, &parent, &e_));
    req(parent, "w %u %u", PAGES, 7);
    long anon0 = proc_kib("/proc/self/status", "RssAnon");
    uint64_t t0 = vmm_now_ns_test();
    struct vmm_snapshot *child;
    OKV(vmm_snapshot_derive(parent, &child, &e_));
    uint64_t t1 = vmm_now_ns_test();
    uint64_t pages = vmm_snapshot_pages(child);
    CHECK(pages >= PAGES && pages < PAGES + 256);
    CHECK(vmm_snapshot_pages(root) == 0);
    long anon1 = proc_kib("/proc/self/status", "RssAnon");
    /* The parent's private copies were given up for the shared ones. */
    CHECK(anon0 - anon1 > (long)(PAGES * 4) * 9 / 10);
    int32_t next = req(parent, "c", 0, 0).exit_code;   /* what the first request after the derive sees */
    CHECK(req(parent, "s %u", PAGES, 0).exit_code == (int32_t)(PAGES * 7));

    struct vmm_vm *kids[3];
    for (int i = 0; i < 3; i++) {
        OKV(vmm_fork(child, NULL, &kids[i], &e_));
        struct vmm_response r = req(kids[i], "c", 0, 0);
        CHECK(r.exits == 1 && r.exit_code == next);      /* the state at derive, then one more request */
        CHECK(req(kids[i], "s %u", PAGES, 0).exit_code == (int32_t)(PAGES * 7));
        req(kids[i], "w %u %u", 100, 10 + (unsigned)i);  /* diverge */
    }
    long anon2 = proc_kib("/proc/self/status", "RssAnon");
    /* A pool shell bound to the root serves a child too: the runs go over its RAM. */
    struct vmm_pool *pool;
    struct vmm_pool_config pc = { .target = 1, .max_ram_size = 128ull << 20 };
    OKV(vmm_pool_create(&pc, &pool, &e_));
    OKV(vmm_pool_bind(pool, root, &e_));
    pool_wait_full(pool, 1);
    struct vmm_vm *pooled;
    OKV(vmm_fork(child, pool, &pooled, &e_));
    struct vmm_pool_stats ps;
    vmm_pool_stats(pool, &ps);
    CHECK(ps.taken == 1 && ps.misses == 0);
    CHECK(req(pooled, "c", 0, 0).exit_code == next);
    CHECK(req(pooled, "s %u", PAGES, 0).exit_code == (int32_t)(PAGES * 7));
    vmm_vm_destroy(pooled);
    vmm_pool_destroy(pool);
    for (int i = 0; i < 3; i++)
        CHECK(req(kids[i], "s %u", PAGES, 0).exit_code == (int32_t)((PAGES - 100) * 7 + 100 * (10 + i)));
    CHECK(req(parent, "s %u", PAGES, 0).exit_code == (int32_t)(PAGES * 7));   /* untouched by its children */
    /* Three children that read all 50 MiB and wrote 100 pages each cost far less than a copy. */
    CHECK(anon2 - anon1 < 8 * 1024);

    /* A child of a child is flat: it names the root and holds the union. */
    struct vmm_snapshot *grand;
    OKV(vmm_snapshot_derive(kids[0], &grand, &e_));
    struct vmm_vm *g;
    OKV(vmm_fork(grand, NULL, &g, &e_));
    CHECK(req(g, "s %u", PAGES, 0).exit_code == (int32_t)((PAGES - 100) * 7 + 100 * 10));
    vmm_vm_destroy(g);

    /* On disk: write, drop everything but the root, reopen and resume. */
    OKV(vmm_snapshot_write(child, tmp_path("c.mem"), tmp_path("c.state"), &e_));
    struct stat st;
    CHECK(stat(tmp_path("c.state"), &st) == 0 && (st.st_mode & 0777) == 0600);
    CHECK(stat(tmp_path("c.mem"), &st) == 0 && (uint64_t)st.st_blocks * 512 < (uint64_t)(pages + 64) * 4096);
    { struct vmm_err ew = {0}; CHECK(vmm_snapshot_write(root, tmp_path("r.mem"), tmp_path("r.state"), &ew) == -EINVAL); }
    for (int i = 0; i < 3; i++) vmm_vm_destroy(kids[i]);
    vmm_vm_destroy(parent);
    vmm_snapshot_close(grand);
    vmm_snapshot_close(child);
    struct vmm_snapshot *back;
    OKV(vmm_snapshot_open_child(root, tmp_path("c.mem"), tmp_path("c.state"), &back, &e_));
    struct vmm_vm *resumed;
    OKV(vmm_fork(back, NULL, &resumed, &e_));
    CHECK(req(resumed, "c", 0, 0).exit_code == next);
    CHECK(req(resumed, "s %u", PAGES, 0).exit_code == (int32_t)(PAGES * 7));
    vmm_vm_destroy(resumed);
    vmm_snapshot_close(back);

    /* Refused: another template's child, a flipped byte, a changed memory file, a link. */
    struct vmm_err e = {0};
    struct vmm_snapshot *bad = NULL;
    CHECK(vmm_snapshot_open_child(other, tmp_path("c.mem"), tmp_path("c.state"), &bad, &e) == -EINVAL && !bad);
    CHECK(strstr(e.msg, "another template"));
    for (off_t off = 0; off < (off_t)st.st_size && off < 4096; off += 97) {
        char path[600];
        snprintf(path, sizeof path, "%s", tmp_path("c.state"));
        flip(path, off);
        CHECK(vmm_snapshot_open_child(root, tmp_path("c.mem"), path, &bad, &e) < 0 && !bad);
        flip(path, off);
    }
    CHECK(symlink(tmp_path("c.state"), tmp_path("link.state")) == 0);
    CHECK(vmm_snapshot_open_child(root, tmp_path("c.mem"), tmp_path("link.state"), &bad, &e) < 0 && !bad);
    unlink(tmp_path("link.state"));
    /* A flipped page byte with the mtime put back: only the content checksum can tell. */
    {
        struct stat ms;
        CHECK(stat(tmp_path("c.mem"), &ms) == 0);
        flip(tmp_path("c.mem"), (off_t)FB_ARENA_BASE + 5 * 4096);
        struct timespec ts[2] = { ms.st_atim, ms.st_mtim };
        CHECK(utimensat(AT_FDCWD, tmp_path("c.mem"), ts, 0) == 0);
        CHECK(vmm_snapshot_open_child(root, tmp_path("c.mem"), tmp_path("c.state"), &bad, &e) == -EBADMSG && !bad);
        flip(tmp_path("c.mem"), (off_t)FB_ARENA_BASE + 5 * 4096);
        CHECK(utimensat(AT_FDCWD, tmp_path("c.mem"), ts, 0) == 0);
        OKV(vmm_snapshot_open_child(root, tmp_path("c.mem"), tmp_path("c.state"), &bad, &e_));
        vmm_snapshot_close(bad);
        bad = NULL;
    }
    CHECK(truncate(tmp_path("c.mem"), 64 << 20) == 0);
    CHECK(vmm_snapshot_open_child(root, tmp_path("c.mem"), tmp_path("c.state"), &bad, &e) == -ESTALE && !bad);

    CHECK(count_fds() == fds0 + 1);   /* + the cached /proc/self/pagemap */
    vmm_snapshot_close(other);
    vmm_snapshot_close(root);
    tmp_cleanup();
    printf("derive: %llu pages (%.1f MiB) in %.2f ms; 3 children added %ld KiB anon; on disk and back\n",
           (unsigned long long)pages, pages * 4096.0 / (1 << 20), (t1 - t0) / 1e6, anon2 - anon1);
    return 0;
}
