/*
 * recycle.c — a fork that answered a request put back into the state of a
 * fresh fork of its snapshot, so it can serve the next one without paying the
 * first-touch faults again: every RAM page it owns privately gets the memory
 * file's bytes back (copied in place, or dropped with MADV_DONTNEED past a
 * cap), every touched mailbox page is zeroed, the vCPU state is the
 * snapshot's. Also: a byte-for-byte comparison of a vm against its snapshot
 * (the isolation tests' check, never on the serving path) and KVM's vCPU
 * counters (first-touch faults, for the benchmarks).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

/* Past this many private pages the copies are dropped instead of restored:
 * restoring keeps the pages (and their writable shadow entries), dropping
 * frees them (a program that wrote a lot is not the common case). */
#define RECYCLE_KEEP_MAX 8192u   /* 32 MiB */

/* PAGEMAP_SCAN (Linux 6.7+; include/uapi/linux/fs.h), declared here for
 * older headers. */
#ifndef PAGEMAP_SCAN
#define PAGE_IS_FILE    (1ull << 2)
#define PAGE_IS_PRESENT (1ull << 3)
#define PAGE_IS_SWAPPED (1ull << 4)
struct page_region { uint64_t start, end, categories; };
struct pm_scan_arg {
    uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
    uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE    (1ull << 61)

int recycle_force_pread;   /* tests: take the /proc/self/pagemap read path */

/* A growable list of page runs [off, off+len) relative to a mapping's start. */
struct runs { struct snap_run *v; uint32_t n, cap; uint64_t pages; };

static int runs_add(struct runs *r, uint64_t off, uint64_t len, struct vmm_err *err)
{
    if (r->n && r->v[r->n - 1].off + r->v[r->n - 1].len == off) {
        r->v[r->n - 1].len += len;
    } else {
        if (r->n == r->cap) {
            uint32_t cap = r->cap ? r->cap * 2 : 64;
            struct snap_run *v = realloc(r->v, cap * sizeof *v);
            if (!v) return vmm_fail(err, -ENOMEM, "realloc", "recycle runs");
            r->v = v;
            r->cap = cap;
        }
        r->v[r->n++] = (struct snap_run){ off, len };
    }
    r->pages += len / FB_PAGE_SIZE;
    return 0;
}

/* Private pages of [base, base+len): copies (not file pages), resident or swapped. */
static int scan_ioctl(int fd, const uint8_t *base, uint64_t len, struct runs *out, struct vmm_err *err)
{
    struct page_region vec[256];
    uint64_t start = (uint64_t)(uintptr_t)base, end = start + len;
    while (start < end) {
        struct pm_scan_arg a = { .size = sizeof a, .start = start, .end = end,
            .vec = (uint64_t)(uintptr_t)vec, .vec_len = 256,
            .category_inverted = PAGE_IS_FILE, .category_mask = PAGE_IS_FILE,
            .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED,
            .return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED };
        long n = ioctl(fd, PAGEMAP_SCAN, &a);
        if (n < 0) {
            int e = errno;
            if (e == ENOTTY || e == EINVAL || e == EOPNOTSUPP) return 1;   /* older kernel: fall back */
            return vmm_fail(err, -e, "PAGEMAP_SCAN", "%s", strerror(e));
        }
        for (long i = 0; i < n; i++) {
            if (vec[i].start < start || vec[i].end > end || vec[i].end <= vec[i].start)
                return vmm_fail(err, -EIO, "PAGEMAP_SCAN", "region out of range");
            int rc = runs_add(out, vec[i].start - (uint64_t)(uintptr_t)base, vec[i].end - vec[i].start, err);
            if (rc) return rc;
        }
        if (a.walk_end <= start || a.walk_end > end) return vmm_fail(err, -EIO, "PAGEMAP_SCAN", "no progress");
        start = a.walk_end;
    }
    return 0;
}

static int scan_pread(int fd, const uint8_t *base, uint64_t len, struct runs *out, struct vmm_err *err)
{
    enum { N = 4096 };
    uint64_t *buf = malloc(N * sizeof *buf);
    if (!buf) return vmm_fail(err, -ENOMEM, "malloc", "pagemap buffer");
    uint64_t first = (uint64_t)(uintptr_t)base / FB_PAGE_SIZE, n = len / FB_PAGE_SIZE;
    int rc = 0;
    for (uint64_t done = 0; done < n && !rc;) {
        uint64_t want = n - done < N ? n - done : N;
        ssize_t got = pread(fd, buf, want * 8, (off_t)((first + done) * 8));
        if (got < 8) { rc = vmm_fail(err, got < 0 ? -errno : -EIO, "pread", "/proc/self/pagemap"); break; }
        uint64_t k = (uint64_t)got / 8;
        for (uint64_t i = 0; i < k && !rc; i++) {
            uint64_t e = buf[i];
            if ((e & (PM_PRESENT | PM_SWAPPED)) && !(e & PM_FILE))
                rc = runs_add(out, (done + i) * FB_PAGE_SIZE, FB_PAGE_SIZE, err);
        }
        done += k;
    }
    free(buf);
    return rc;
}

/* Anonymous (private) pages of a mapping, as runs. */
static int private_runs(int fd, const uint8_t *base, uint64_t len, struct runs *out, struct vmm_err *err)
{
    if (!recycle_force_pread) {
        int rc = scan_ioctl(fd, base, len, out, err);
        if (rc <= 0) return rc;
        out->n = 0;
        out->pages = 0;
    }
    return scan_pread(fd, base, len, out, err);
}

/* The memory file mapped read-only and shared (its page cache: no copy), once
 * per snapshot; racing first recycles keep one mapping. */
static const uint8_t *clean_map(struct vmm_snapshot *s, struct vmm_err *err)
{
    const uint8_t *m = atomic_load(&s->clean);
    if (m) return m;
    void *p = mmap(NULL, s->ram_size, PROT_READ, MAP_SHARED | MAP_NORESERVE, s->mem_fd, 0);
    if (p == MAP_FAILED) { vmm_fail(err, -errno, "mmap", "memory file (read-only): %s", strerror(errno)); return NULL; }
    const uint8_t *expect = NULL;
    if (!atomic_compare_exchange_strong(&s->clean, &expect, (const uint8_t *)p)) {
        munmap(p, s->ram_size);
        return expect;
    }
    return p;
}

/* RAM: the memory file's bytes back into every private page (or the pages
 * dropped when there are too many). The system area is never written by a
 * guest that answered (CPL3 cannot reach it; the fault stack is written only
 * by a crash): a private page there refuses the recycle. */
static int reset_ram(struct vmm_vm *vm, int pm, struct vmm_recycle_stats *st, struct vmm_err *err)
{
    struct runs r = { 0 };
    int rc = private_runs(pm, vm->ram, vm->ram_size, &r, err);
    if (rc) goto out;
    for (uint32_t i = 0; i < r.n; i++) {
        if (r.v[i].off < FB_SYSTEM_BASE + FB_HUGE_PAGE_SIZE && r.v[i].off + r.v[i].len > FB_SYSTEM_BASE) {
            rc = vmm_fail(err, -EPERM, "vmm_vm_recycle", "the system area was written");
            goto out;
        }
    }
    st->ram_pages = r.pages;
    int drop = r.pages > RECYCLE_KEEP_MAX;
    const uint8_t *clean = drop ? NULL : clean_map(vm->snap, err);
    if (!drop && !clean) { rc = err ? err->code : -ENOMEM; goto out; }
    for (uint32_t i = 0; i < r.n; i++) {
        uint8_t *p = vm->ram + r.v[i].off;
        uint64_t len = r.v[i].len;
        if (drop) {
            if (madvise(p, len, MADV_DONTNEED) < 0) { rc = vmm_fail(err, -errno, "madvise", "ram: %s", strerror(errno)); goto out; }
            continue;
        }
        memcpy(p, clean + r.v[i].off, len);
    }
    if (drop) st->dropped = r.pages; else st->restored = r.pages;
out:
    free(r.v);
    return rc;
}

/* Mailbox: fresh anonymous memory reads as zeros; so does this one after. */
static int reset_mailbox(struct vmm_vm *vm, int pm, struct vmm_recycle_stats *st, struct vmm_err *err)
{
    struct runs r = { 0 };
    int rc = private_runs(pm, vm->sh.mailbox, FB_MAILBOX_SIZE, &r, err);
    if (rc) goto out;
    st->mailbox_pages = r.pages;
    for (uint32_t i = 0; i < r.n; i++) {
        if (r.pages > RECYCLE_KEEP_MAX) {
            if (madvise(vm->sh.mailbox + r.v[i].off, r.v[i].len, MADV_DONTNEED) < 0) {
                rc = vmm_fail(err, -errno, "madvise", "mailbox: %s", strerror(errno));
                goto out;
            }
        } else {
            memset(vm->sh.mailbox + r.v[i].off, 0, r.v[i].len);
        }
    }
out:
    free(r.v);
    return rc;
}

int vmm_vm_recycle(struct vmm_vm *vm, struct vmm_recycle_stats *st, struct vmm_err *err)
{
    struct vmm_recycle_stats local;
    if (!st) st = &local;
    memset(st, 0, sizeof *st);
    if (!vm) return vmm_fail(err, -EINVAL, "vmm_vm_recycle", "missing argument");
    uint64_t t0 = vmm_now_ns();
    int rc;
    if (vm->booted || !vm->snap || vm->snap->root || vm->ram_fd >= 0) {
        rc = vmm_fail(err, -ENOTSUP, "vmm_vm_recycle", "only forks of a root snapshot are recycled");
        goto fail;
    }
    if (vm->had_shm) {
        rc = vmm_fail(err, -ENOTSUP, "vmm_vm_recycle", "the vm shared memory with other vms");
        goto fail;
    }
    if (vm->dead || atomic_load(&vm->killed) || vm->last_status != FB_ST_DONE || !vm->pending_io) {
        rc = vmm_fail(err, -EINVAL, "vmm_vm_recycle", "the vm did not end its last run with a DONE answer");
        goto fail;
    }
    rc = complete_pending_io(vm, err);
    if (rc) goto fail;
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm < 0) { rc = vmm_fail(err, -errno, "open", "/proc/self/pagemap: %s", strerror(errno)); goto fail; }
    rc = reset_ram(vm, pm, st, err);
    if (!rc) rc = reset_mailbox(vm, pm, st, err);
    close(pm);
    if (rc) goto fail;
    rc = fork_restore(vm, vm->snap, err);
    if (rc) goto fail;
    vm->seq = vm->snap->seq;
    vm->out_cap = vm->err_cap = 0;
    vm->last_status = 0;
    __atomic_store_n(&vm->sh.run->immediate_exit, 0, __ATOMIC_RELAXED);
    st->ns = vmm_now_ns() - t0;
    stat_add(ST_RECYCLES, 1);
    return 0;
fail:
    /* Never half reset: the vm cannot run again, its owner destroys it. */
    if (vm) vm->dead = 1;
    return rc;
}

/* Compares [a, a+len) with the file at `fd` (offset 0) page by page. */
static int diff_file(const uint8_t *a, uint64_t len, int fd, uint64_t *diff, struct vmm_err *err)
{
    uint8_t *buf = malloc(1 << 20);
    if (!buf) return vmm_fail(err, -ENOMEM, "malloc", "diff buffer");
    int rc = 0;
    for (uint64_t off = 0; off < len && !rc; off += 1 << 20) {
        uint64_t n = len - off < (1 << 20) ? len - off : (1 << 20);
        memset(buf, 0, n);
        ssize_t got = pread(fd, buf, n, (off_t)off);   /* short past EOF: the rest reads as zeros */
        if (got < 0) { rc = vmm_fail(err, -errno, "pread", "memory file"); break; }
        for (uint64_t p = 0; p < n; p += FB_PAGE_SIZE)
            if (memcmp(a + off + p, buf + p, FB_PAGE_SIZE)) (*diff)++;
    }
    free(buf);
    return rc;
}

int vmm_vm_diff_snapshot(struct vmm_vm *vm, uint64_t *ram_diff, uint64_t *mailbox_nonzero, struct vmm_err *err)
{
    if (!vm || !ram_diff || !mailbox_nonzero) return vmm_fail(err, -EINVAL, "vmm_vm_diff_snapshot", "missing argument");
    if (vm->booted || !vm->snap || vm->snap->root)
        return vmm_fail(err, -ENOTSUP, "vmm_vm_diff_snapshot", "only forks of a root snapshot");
    *ram_diff = *mailbox_nonzero = 0;
    int rc = diff_file(vm->ram, vm->ram_size, vm->snap->mem_fd, ram_diff, err);
    if (rc) return rc;
    /* Only resident mailbox pages can hold anything: scan those. */
    int pm = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (pm < 0) return vmm_fail(err, -errno, "open", "/proc/self/pagemap");
    struct runs r = { 0 };
    rc = scan_pread(pm, vm->sh.mailbox, FB_MAILBOX_SIZE, &r, err);
    close(pm);
    static const uint8_t zero[FB_PAGE_SIZE];
    for (uint32_t i = 0; !rc && i < r.n; i++)
        for (uint64_t p = 0; p < r.v[i].len; p += FB_PAGE_SIZE)
            if (memcmp(vm->sh.mailbox + r.v[i].off + p, zero, FB_PAGE_SIZE)) (*mailbox_nonzero)++;
    free(r.v);
    return rc;
}

int vmm_vm_kvm_stats(struct vmm_vm *vm, struct vmm_kvm_stats *out, struct vmm_err *err)
{
    if (!vm || !out) return vmm_fail(err, -EINVAL, "vmm_vm_kvm_stats", "missing argument");
    memset(out, 0, sizeof *out);
    int sfd = ioctl(vm->sh.vcpu_fd, KVM_GET_STATS_FD, NULL);
    if (sfd < 0) return vmm_fail(err, errno == EINVAL || errno == ENOTTY ? -ENOTSUP : -errno, "KVM_GET_STATS_FD", "%s", strerror(errno));
    struct kvm_stats_header h;
    int rc = 0;
    char *d = NULL;
    if (pread(sfd, &h, sizeof h, 0) != (ssize_t)sizeof h || h.num_desc > 4096 || h.name_size < 8 || h.name_size > 256) {
        rc = vmm_fail(err, -EIO, "KVM_GET_STATS_FD", "bad stats header");
        goto out;
    }
    size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
    d = malloc(dsz * h.num_desc);
    if (!d) { rc = vmm_fail(err, -ENOMEM, "malloc", "stats descriptors"); goto out; }
    if (pread(sfd, d, dsz * h.num_desc, h.desc_offset) != (ssize_t)(dsz * h.num_desc)) {
        rc = vmm_fail(err, -EIO, "pread", "stats descriptors");
        goto out;
    }
    for (unsigned i = 0; i < h.num_desc; i++) {
        struct kvm_stats_desc *x = (struct kvm_stats_desc *)(d + i * dsz);
        x->name[h.name_size - 1] = 0;
        uint64_t *dst = !strcmp(x->name, "exits") ? &out->exits : !strcmp(x->name, "pf_fixed") ? &out->pf_fixed
                      : !strcmp(x->name, "pf_taken") ? &out->pf_taken : NULL;
        if (dst && x->size >= 1 && pread(sfd, dst, 8, h.data_offset + x->offset) != 8) *dst = 0;
    }
out:
    free(d);
    close(sfd);
    return rc;
}
