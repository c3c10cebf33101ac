/*
 * derive.c — child snapshots. A vm stopped at a doorbell is captured as a
 * snapshot of its own: its vCPU state, and only the RAM pages that differ from
 * its *root* (the booted template it descends from), copied into a sparse
 * memfd. A fork of a child maps the root's memory file privately and lays the
 * child's page runs over it (MAP_FIXED), so every fork shares the root's clean
 * pages and the child's pages copy-on-write. The captured vm is re-based the
 * same way: after a derive it no longer owns private copies of those pages.
 * Children are flat (a child of a child names the root, holds the union of
 * pages), so a fork never maps more than two files. On disk a child is a
 * sparse memory file (its runs only) and a state file naming the root by the
 * checksum of the root's state header.
 * Which pages differ is read from /proc/self/pagemap: a page of the private
 * mapping that is present and not file-backed (or swapped) is the vm's own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define PM_PRESENT (1ull << 63)
#define PM_SWAP    (1ull << 62)
#define PM_FILE    (1ull << 61)   /* file page or shared anonymous */
#define PAGES_PER_READ 8192u

/* Page runs a fork maps: runs closer than `gap` pages are joined (the gap's
 * root pages are copied too), and the gap doubles until at most RUNS_MAX are
 * left, which bounds the mappings (VMAs) a child costs each of its forks. */
#define RUNS_MAX 512u

#define CHILD_MAGIC   0x444c484358424b46ull   /* "FKBXCHLD" */
#define CHILD_VERSION 1u

struct child_header {
    uint64_t magic;
    uint32_t version, header_size;
    uint32_t abi_version, n_runs;
    uint64_t root_id;            /* the root's id (its state header checksum) */
    uint64_t ram_size, tsc_khz, seq;
    uint64_t mem_size, mem_mtime_ns;   /* identity of the memory file */
    uint32_t xsave_size, n_msrs, n_cpuid;
    uint32_t regs_size, sregs_size, events_size, xcrs_size, reserved0;
    uint64_t body_size, body_fnv;
    uint64_t mem_sum;            /* content_sum() of the runs' bytes in the memory file */
    uint8_t reserved[56];
    uint64_t header_fnv;         /* FNV-1a-64 of the bytes above */
};
_Static_assert(sizeof(struct child_header) == 192, "child header is 192 bytes");
#define CHILD_STATE_MAX (8u << 20)
#define FNV0 0xcbf29ce484222325ull

static int pagemap_fd = -1;
static pthread_mutex_t pagemap_lock = PTHREAD_MUTEX_INITIALIZER;

static int open_pagemap(struct vmm_err *err)
{
    pthread_mutex_lock(&pagemap_lock);
    if (pagemap_fd < 0) pagemap_fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    int fd = pagemap_fd;
    pthread_mutex_unlock(&pagemap_lock);
    if (fd < 0) return vmm_fail(err, -errno, "open", "/proc/self/pagemap: %s", strerror(errno));
    return fd;
}

/* Marks in `own` (one byte a page) the pages of ram that the vm owns privately. */
static int mark_private(const uint8_t *ram, uint64_t size, uint8_t *own, struct vmm_err *err)
{
    int fd = open_pagemap(err);
    if (fd < 0) return fd;
    uint64_t *buf = malloc(PAGES_PER_READ * sizeof *buf);
    if (!buf) return vmm_fail(err, -ENOMEM, "malloc", "pagemap buffer");
    uint64_t pages = size / FB_PAGE_SIZE, first = (uintptr_t)ram / FB_PAGE_SIZE;
    int rc = 0;
    for (uint64_t i = 0; i < pages && !rc;) {
        uint64_t n = pages - i < PAGES_PER_READ ? pages - i : PAGES_PER_READ;
        ssize_t got = pread(fd, buf, n * sizeof *buf, (off_t)((first + i) * sizeof *buf));
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0 || got % (ssize_t)sizeof *buf) { rc = vmm_fail(err, got < 0 ? -errno : -EIO, "pread", "pagemap"); break; }
        for (uint64_t j = 0; j < (uint64_t)got / sizeof *buf; j++)
            if (((buf[j] & PM_PRESENT) && !(buf[j] & PM_FILE)) || (buf[j] & PM_SWAP)) own[i + j] = 1;
        i += (uint64_t)got / sizeof *buf;
    }
    free(buf);
    return rc;
}

/* Runs of owned pages; a run ends at `gap` consecutive pages not owned. With
 * runs == NULL only counts. */
static uint32_t scan_runs(const uint8_t *own, uint64_t pages, uint64_t gap, struct snap_run *runs)
{
    uint32_t n = 0;
    uint64_t p = 0;
    while (p < pages && !own[p]) p++;
    while (p < pages) {
        uint64_t start = p, end = p + 1;
        for (uint64_t q = end; q < pages && q - end < gap; q++)
            if (own[q]) end = q + 1;
        if (runs) runs[n] = (struct snap_run){ start * FB_PAGE_SIZE, (end - start) * FB_PAGE_SIZE };
        n++;
        p = end;
        while (p < pages && !own[p]) p++;
    }
    return n;
}

/* Turns the page map into at most RUNS_MAX runs (joining across ever larger gaps). */
static int make_runs(const uint8_t *own, uint64_t pages, struct snap_run **out, uint32_t *n_out, struct vmm_err *err)
{
    uint64_t gap = 1;
    uint32_t n;
    while ((n = scan_runs(own, pages, gap, NULL)) > RUNS_MAX) gap *= 2;
    struct snap_run *runs = calloc(n ? n : 1, sizeof *runs);
    if (!runs) return vmm_fail(err, -ENOMEM, "calloc", "runs");
    scan_runs(own, pages, gap, runs);
    *out = runs;
    *n_out = n;
    return 0;
}

/* The vCPU state of a vm stopped at a doorbell, into s (in memory; the file
 * codecs of roots and children both serialize these fields). */
int vcpu_state_capture(struct vmm_vm *vm, struct vmm_snapshot *s, struct vmm_err *err)
{
    const struct kvm_global *k = kvm_global(err);
    if (!k) return err ? err->code : -ENODEV;
    int rc = complete_pending_io(vm, err);
    if (rc) return rc;
    int vcpu = vm->sh.vcpu_fd;
    s->xsave_size = (uint32_t)k->xsave_size;
    s->xsave = calloc(1, s->xsave_size);
    size_t cpuid_sz = sizeof *s->cpuid + vm->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    s->cpuid = malloc(cpuid_sz);
    if (!s->xsave || !s->cpuid) return vmm_fail(err, -ENOMEM, "calloc", "vcpu state");
    memcpy(s->cpuid, vm->cpuid, cpuid_sz);
    if (ioctl(vcpu, KVM_GET_REGS, &s->regs) < 0) return vmm_fail(err, -errno, "KVM_GET_REGS", "%s", strerror(errno));
    if (ioctl(vcpu, KVM_GET_SREGS, &s->sregs) < 0) return vmm_fail(err, -errno, "KVM_GET_SREGS", "%s", strerror(errno));
    if (ioctl(vcpu, KVM_GET_VCPU_EVENTS, &s->events) < 0)
        return vmm_fail(err, -errno, "KVM_GET_VCPU_EVENTS", "%s", strerror(errno));
    if (k->xcr0 && ioctl(vcpu, KVM_GET_XCRS, &s->xcrs) < 0) return vmm_fail(err, -errno, "KVM_GET_XCRS", "%s", strerror(errno));
    if (ioctl(vcpu, k->cap_xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, s->xsave) < 0)
        return vmm_fail(err, -errno, "KVM_GET_XSAVE2", "%s", strerror(errno));
    rc = read_msrs(vcpu, &s->msrs, err);
    if (rc) return rc;
    s->tsc_khz = vm->tsc_khz;
    s->seq = vm->seq;
    s->last_status = vm->last_status;
    return 0;
}

int snapshot_overlay(const struct vmm_snapshot *s, uint8_t *ram, struct vmm_err *err)
{
    for (uint32_t i = 0; i < s->n_runs; i++) {
        const struct snap_run *r = &s->runs[i];
        void *m = mmap(ram + r->off, r->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE,
                       s->mem_fd, (off_t)r->off);
        if (m == MAP_FAILED) return vmm_fail(err, -errno, "mmap", "child run %u: %s", i, strerror(errno));
    }
    return 0;
}

/* A fast 64-bit checksum of page contents (a multiply-xorshift per word):
 * it detects corruption of a paused session's memory file, not tampering
 * (the store's directory is the service's own, like the template cache). */
static uint64_t content_sum(uint64_t h, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0x9e3779b97f4a7c15ull;
        h ^= h >> 31;
    }
    return h;
}

/* Copies the runs from src_ram (or src_fd) to dst at the same offsets; the
 * checksum of what was copied goes to *sum when it is not NULL. */
static int copy_runs(int dst, const uint8_t *src_ram, int src_fd, const struct snap_run *runs, uint32_t n, uint64_t *sum)
{
    uint64_t h = FNV0;
    uint8_t *buf = src_ram ? NULL : malloc(1u << 20);
    if (!src_ram && !buf) return -ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; i < n && !rc; i++) {
        for (uint64_t done = 0; done < runs[i].len && !rc;) {
            uint64_t off = runs[i].off + done, n1 = runs[i].len - done;
            if (n1 > (1u << 20)) n1 = 1u << 20;   /* 1 MiB at a time: never a short write */
            const uint8_t *p;
            if (src_ram) p = src_ram + off;
            else {
                ssize_t r = pread(src_fd, buf, n1, (off_t)off);
                if (r < 0 && errno == EINTR) continue;
                if (r <= 0) { rc = r < 0 ? -errno : -EIO; break; }
                n1 = (uint64_t)r & ~7ull;
                if (!n1) { rc = -EIO; break; }
                p = buf;
            }
            if (dst < 0) {            /* checksum only */
                h = content_sum(h, p, n1);
                done += n1;
                continue;
            }
            ssize_t w = pwrite(dst, p, n1, (off_t)off);
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) { rc = w < 0 ? -errno : -EIO; break; }
            if ((uint64_t)w == n1) h = content_sum(h, p, n1);
            else { rc = -EIO; break; }   /* short writes of page-aligned chunks do not happen on these files */
            done += (uint64_t)w;
        }
    }
    free(buf);
    if (sum) *sum = h;
    return rc;
}

static struct vmm_snapshot *child_alloc(struct vmm_snapshot *root)
{
    struct vmm_snapshot *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    atomic_init(&s->refs, 1);
    s->mem_fd = s->image_fd = -1;
    atomic_fetch_add(&root->refs, 1);
    s->root = root;
    s->ram_size = root->ram_size;
    s->image = root->image;              /* borrowed: the root unmaps it */
    s->image_size = root->image_size;
    s->image_map_size = root->image_map_size;
    s->image_mtime_ns = root->image_mtime_ns;
    s->cpuid_same = root->cpuid_same;
    return s;
}

/* A child of the vm's root holding the vm's vCPU state and the runs of pages
 * it owns (its earlier child's runs and its private pages); no memory yet. */
static int child_of(struct vmm_vm *vm, const char *op, struct vmm_snapshot **out, struct vmm_err *err)
{
    if (!vm->snap || vm->dead || atomic_load(&vm->killed) || vm->ram_fd >= 0)
        return vmm_fail(err, -EINVAL, op, "only a live fork stopped at a doorbell can be captured as a child");
    struct vmm_snapshot *root = vm->snap->root ? vm->snap->root : vm->snap;
    uint64_t pages = vm->ram_size / FB_PAGE_SIZE;
    uint8_t *own = calloc(pages, 1);
    if (!own) return vmm_fail(err, -ENOMEM, "calloc", "page map");
    struct vmm_snapshot *s = child_alloc(root);
    int rc;
    if (!s) { free(own); return vmm_fail(err, -ENOMEM, "calloc", "snapshot"); }
    rc = vcpu_state_capture(vm, s, err);
    if (rc) goto fail;
    for (uint32_t i = 0; i < vm->snap->n_runs; i++)
        memset(own + vm->snap->runs[i].off / FB_PAGE_SIZE, 1, vm->snap->runs[i].len / FB_PAGE_SIZE);
    rc = mark_private(vm->ram, vm->ram_size, own, err);
    if (rc) goto fail;
    /* Shared ranges are file pages to pagemap: their bytes are the child's too. */
    for (uint32_t i = 0; i < vm->shm.n; i++)
        memset(own + vm->shm.v[i].gpa / FB_PAGE_SIZE, 1, vm->shm.v[i].len / FB_PAGE_SIZE);
    rc = make_runs(own, pages, &s->runs, &s->n_runs, err);
    if (rc) goto fail;
    for (uint32_t i = 0; i < s->n_runs; i++) s->pages += s->runs[i].len / FB_PAGE_SIZE;
    free(own);
    *out = s;
    return 0;
fail:
    free(own);
    snapshot_put(s);
    return rc;
}

int vmm_snapshot_derive(struct vmm_vm *vm, struct vmm_snapshot **out, struct vmm_err *err)
{
    if (!vm || !out) return vmm_fail(err, -EINVAL, "vmm_snapshot_derive", "missing argument");
    struct vmm_snapshot *s;
    int rc = child_of(vm, "vmm_snapshot_derive", &s, err);
    if (rc) return rc;
    s->mem_fd = memfd_create("forkbox-child", MFD_CLOEXEC);
    if (s->mem_fd < 0) { rc = vmm_fail(err, -errno, "memfd_create", "%s", strerror(errno)); goto fail; }
    if (ftruncate(s->mem_fd, (off_t)s->ram_size) < 0) { rc = vmm_fail(err, -errno, "ftruncate", "child memory"); goto fail; }
    rc = copy_runs(s->mem_fd, vm->ram, -1, s->runs, s->n_runs, NULL);
    if (rc) { rc = vmm_fail(err, rc, "pwrite", "child memory: %s", strerror(-rc)); goto fail; }
    /* Re-base: the vm's own pages are replaced by the same bytes from the
     * child's file. If a mapping fails half-way the content is still right,
     * but the vm is marked dead rather than left half shared. */
    rc = shm_ranges_copy(&s->shm, &vm->shm, err);
    if (rc) goto fail;
    rc = snapshot_overlay(s, vm->ram, err);
    /* The re-base mapped private pages over the vm's shared ranges too: map them again. */
    if (!rc) rc = shm_ranges_map(vm->ram, &vm->shm, err);
    if (rc) { vm->dead = 1; goto fail; }
    atomic_fetch_add(&s->refs, 1);
    snapshot_put(vm->snap);
    vm->snap = s;
    *out = s;
    return 0;
fail:
    snapshot_put(s);
    return rc;
}

uint64_t vmm_snapshot_pages(const struct vmm_snapshot *s) { return s->root ? s->pages : 0; }

/* ---- files --------------------------------------------------------------- */

static uint64_t mtime_ns(const struct stat *st)
{
    return (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
}

static int write_file_at(const char *path, const void *buf, size_t n, int (*fill)(int, void *), void *arg,
                         uint64_t *mtime, struct vmm_err *err)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return vmm_fail(err, -ENAMETOOLONG, "snapshot", "path too long");
    int rc = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) return vmm_fail(err, -errno, "open", "%s: %s", tmp, strerror(errno));
    if (fill) rc = fill(fd, arg);
    for (size_t done = 0; !rc && done < n;) {
        ssize_t w = pwrite(fd, (const uint8_t *)buf + done, n - done, (off_t)done);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) rc = w < 0 ? -errno : -EIO;
        else done += (size_t)w;
    }
    struct stat st;
    if (!rc && (fdatasync(fd) < 0 || fstat(fd, &st) < 0)) rc = -errno;
    close(fd);
    if (!rc && mtime) *mtime = mtime_ns(&st);
    if (!rc && rename(tmp, path) < 0) rc = -errno;
    if (rc) { unlink(tmp); return vmm_fail(err, rc, "write", "%s: %s", path, strerror(-rc)); }
    return 0;
}

struct fill { const struct vmm_snapshot *s; const uint8_t *ram; uint64_t sum; };

/* The runs' bytes from a live vm's RAM (save_child) or from the child's memfd. */
static int fill_memory(int fd, void *arg)
{
    struct fill *f = arg;
    if (ftruncate(fd, (off_t)f->s->ram_size) < 0) return -errno;
    return copy_runs(fd, f->ram, f->ram ? -1 : f->s->mem_fd, f->s->runs, f->s->n_runs, &f->sum);
}

static int write_child(const struct vmm_snapshot *s, const uint8_t *ram, const char *mem_path, const char *state_path,
                       struct vmm_err *err)
{
    struct child_header h;
    memset(&h, 0, sizeof h);
    struct fill f = { .s = s, .ram = ram };
    int rc = write_file_at(mem_path, NULL, 0, fill_memory, &f, &h.mem_mtime_ns, err);
    if (rc) return rc;
    h.mem_sum = f.sum;
    size_t msr_bytes = s->msrs->nmsrs * sizeof(struct kvm_msr_entry);
    size_t cpuid_bytes = s->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    size_t run_bytes = s->n_runs * sizeof(struct snap_run);
    h.magic = CHILD_MAGIC;
    h.version = CHILD_VERSION;
    h.header_size = sizeof h;
    h.abi_version = FB_ABI_VERSION;
    h.n_runs = s->n_runs;
    h.root_id = s->root->id;
    h.ram_size = s->ram_size;
    h.tsc_khz = s->tsc_khz;
    h.seq = s->seq;
    h.mem_size = s->ram_size;
    h.xsave_size = s->xsave_size;
    h.n_msrs = s->msrs->nmsrs;
    h.n_cpuid = s->cpuid->nent;
    h.regs_size = sizeof s->regs; h.sregs_size = sizeof s->sregs;
    h.events_size = sizeof s->events; h.xcrs_size = sizeof s->xcrs;
    h.body_size = sizeof s->regs + sizeof s->sregs + sizeof s->events + sizeof s->xcrs + h.xsave_size +
                  msr_bytes + cpuid_bytes + run_bytes;
    uint8_t *state = malloc(sizeof h + h.body_size);
    if (!state) return vmm_fail(err, -ENOMEM, "malloc", "child state");
    uint8_t *p = state + sizeof h;
#define PUT(src, n) do { memcpy(p, (src), (n)); p += (n); } while (0)
    PUT(&s->regs, sizeof s->regs); PUT(&s->sregs, sizeof s->sregs); PUT(&s->events, sizeof s->events);
    PUT(&s->xcrs, sizeof s->xcrs); PUT(s->xsave, h.xsave_size); PUT(s->msrs->entries, msr_bytes);
    PUT(s->cpuid->entries, cpuid_bytes); PUT(s->runs, run_bytes);
#undef PUT
    h.body_fnv = fnv1a64(FNV0, state + sizeof h, h.body_size);
    h.header_fnv = fnv1a64(FNV0, &h, offsetof(struct child_header, header_fnv));
    memcpy(state, &h, sizeof h);
    rc = write_file_at(state_path, state, sizeof h + h.body_size, NULL, NULL, NULL, err);
    free(state);
    return rc;
}

int vmm_snapshot_write(struct vmm_snapshot *s, const char *mem_path, const char *state_path, struct vmm_err *err)
{
    if (!s || !mem_path || !state_path) return vmm_fail(err, -EINVAL, "vmm_snapshot_write", "missing argument");
    if (!s->root) return vmm_fail(err, -EINVAL, "vmm_snapshot_write", "only child snapshots are written this way");
    return write_child(s, NULL, mem_path, state_path, err);
}

/* A child's pages and state written straight from the live vm: what a derive
 * then a write would give, without the memfd copy or the re-base (a pause,
 * whose vm is released next). */
int vmm_snapshot_save_child(struct vmm_vm *vm, const char *mem_path, const char *state_path, struct vmm_err *err)
{
    if (!vm || !mem_path || !state_path) return vmm_fail(err, -EINVAL, "vmm_snapshot_save_child", "missing argument");
    struct vmm_snapshot *s;
    int rc = child_of(vm, "vmm_snapshot_save_child", &s, err);
    if (rc) return rc;
    rc = write_child(s, vm->ram, mem_path, state_path, err);
    snapshot_put(s);
    return rc;
}

/* Every field is checked before any size is trusted; runs must be sorted,
 * page-aligned, inside RAM and disjoint. Exposed for the fuzz test. */
int child_state_check(const uint8_t *b, size_t len, uint64_t root_id, uint64_t ram_size, struct child_header *out,
                      struct vmm_err *err)
{
#define BAD(...) vmm_fail(err, -EINVAL, "snapshot", __VA_ARGS__)
    struct child_header h;
    if (len < sizeof h) return BAD("child state: %zu bytes is too short", len);
    memcpy(&h, b, sizeof h);
    if (h.magic != CHILD_MAGIC) return BAD("not a forkbox child state file (bad magic)");
    if (h.version != CHILD_VERSION || h.header_size != sizeof h) return BAD("child state version %u", h.version);
    if (h.header_fnv != fnv1a64(FNV0, &h, offsetof(struct child_header, header_fnv))) return BAD("child state header checksum mismatch");
    if (h.abi_version != FB_ABI_VERSION) return BAD("child state: guest ABI %u, this build speaks %u", h.abi_version, FB_ABI_VERSION);
    if (h.root_id != root_id) return BAD("child state belongs to another template");
    if (h.ram_size != ram_size || h.mem_size != ram_size) return BAD("child state: ram size differs from its template's");
    if (h.regs_size != sizeof(struct kvm_regs) || h.sregs_size != sizeof(struct kvm_sregs) ||
        h.events_size != sizeof(struct kvm_vcpu_events) || h.xcrs_size != sizeof(struct kvm_xcrs))
        return BAD("child state: vCPU state sizes differ from this build's");
    if (h.xsave_size < sizeof(struct kvm_xsave) || h.xsave_size > (1u << 20) || h.xsave_size % 64)
        return BAD("child state: xsave size %u", h.xsave_size);
    if (h.n_msrs > 4096 || h.n_cpuid == 0 || h.n_cpuid > 256 || h.n_runs > RUNS_MAX)
        return BAD("child state: %u MSRs, %u CPUID entries, %u runs", h.n_msrs, h.n_cpuid, h.n_runs);
    if (h.tsc_khz == 0 || h.tsc_khz > 100000000ull) return BAD("child state: tsc %llu kHz", (unsigned long long)h.tsc_khz);
    uint64_t body = (uint64_t)h.regs_size + h.sregs_size + h.events_size + h.xcrs_size + h.xsave_size +
                    (uint64_t)h.n_msrs * sizeof(struct kvm_msr_entry) + (uint64_t)h.n_cpuid * sizeof(struct kvm_cpuid_entry2) +
                    (uint64_t)h.n_runs * sizeof(struct snap_run);
    if (h.body_size != body || len != sizeof h + body) return BAD("child state: %zu bytes, header describes %llu", len,
                                                                   (unsigned long long)(sizeof h + body));
    if (h.body_fnv != fnv1a64(FNV0, b + sizeof h, body)) return BAD("child state body checksum mismatch (corrupt)");
    const uint8_t *rp = b + len - (size_t)h.n_runs * sizeof(struct snap_run);
    uint64_t prev_end = 0;
    for (uint32_t i = 0; i < h.n_runs; i++) {
        struct snap_run r;
        memcpy(&r, rp + i * sizeof r, sizeof r);
        if (r.len == 0 || r.off % FB_PAGE_SIZE || r.len % FB_PAGE_SIZE || r.off < prev_end ||
            r.off > ram_size || r.len > ram_size - r.off)
            return BAD("child state: run %u [%#llx +%#llx) is out of order or range", i,
                       (unsigned long long)r.off, (unsigned long long)r.len);
        prev_end = r.off + r.len;
    }
    *out = h;
    return 0;
#undef BAD
}

int vmm_snapshot_open_child(struct vmm_snapshot *root, const char *mem_path, const char *state_path,
                            struct vmm_snapshot **out, struct vmm_err *err)
{
    if (!root || !mem_path || !state_path || !out) return vmm_fail(err, -EINVAL, "vmm_snapshot_open_child", "missing argument");
    if (root->root) return vmm_fail(err, -EINVAL, "vmm_snapshot_open_child", "the parent must be a root snapshot");
    const struct kvm_global *k = kvm_global(err);
    if (!k) return err ? err->code : -ENODEV;
    int rc, fd = open(state_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return vmm_fail(err, -errno, "open", "child state: %s", strerror(errno));
    struct stat st;
    uint8_t *buf = NULL;
    struct vmm_snapshot *s = NULL;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < (off_t)sizeof(struct child_header) ||
        st.st_size > CHILD_STATE_MAX) { close(fd); return vmm_fail(err, -EINVAL, "snapshot", "child state: not a state file"); }
    size_t len = (size_t)st.st_size;
    buf = malloc(len);
    if (!buf) { close(fd); return vmm_fail(err, -ENOMEM, "malloc", "child state"); }
    for (size_t got = 0; got < len;) {
        ssize_t r = pread(fd, buf + got, len - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { close(fd); free(buf); return vmm_fail(err, r < 0 ? -errno : -EIO, "read", "child state"); }
        got += (size_t)r;
    }
    close(fd);
    struct child_header h;
    rc = child_state_check(buf, len, root->id, root->ram_size, &h, err);
    if (rc) goto fail;
    if (h.xsave_size > (uint32_t)k->xsave_size && !k->cap_xsave2) {
        rc = vmm_fail(err, -ENOTSUP, "snapshot", "child state: xsave of %u bytes, this host takes %d", h.xsave_size, k->xsave_size);
        goto fail;
    }
    s = child_alloc(root);
    if (!s) { rc = vmm_fail(err, -ENOMEM, "calloc", "snapshot"); goto fail; }
    s->tsc_khz = h.tsc_khz;
    s->seq = h.seq;
    const uint8_t *p = buf + sizeof h;
    memcpy(&s->regs, p, sizeof s->regs); p += sizeof s->regs;
    memcpy(&s->sregs, p, sizeof s->sregs); p += sizeof s->sregs;
    memcpy(&s->events, p, sizeof s->events); p += sizeof s->events;
    memcpy(&s->xcrs, p, sizeof s->xcrs); p += sizeof s->xcrs;
    if (s->xcrs.nr_xcrs > KVM_MAX_XCRS) { rc = vmm_fail(err, -EINVAL, "snapshot", "child state: %u xcrs", s->xcrs.nr_xcrs); goto fail; }
    s->xsave_size = h.xsave_size > (uint32_t)k->xsave_size ? h.xsave_size : (uint32_t)k->xsave_size;
    s->xsave = calloc(1, s->xsave_size);
    s->msrs = calloc(1, sizeof *s->msrs + h.n_msrs * sizeof(struct kvm_msr_entry));
    s->cpuid = calloc(1, sizeof *s->cpuid + h.n_cpuid * sizeof(struct kvm_cpuid_entry2));
    s->runs = calloc(h.n_runs ? h.n_runs : 1, sizeof *s->runs);
    if (!s->xsave || !s->msrs || !s->cpuid || !s->runs) { rc = vmm_fail(err, -ENOMEM, "calloc", "child state"); goto fail; }
    memcpy(s->xsave, p, h.xsave_size); p += h.xsave_size;
    s->msrs->nmsrs = h.n_msrs;
    memcpy(s->msrs->entries, p, h.n_msrs * sizeof(struct kvm_msr_entry)); p += h.n_msrs * sizeof(struct kvm_msr_entry);
    s->cpuid->nent = h.n_cpuid;
    memcpy(s->cpuid->entries, p, h.n_cpuid * sizeof(struct kvm_cpuid_entry2)); p += h.n_cpuid * sizeof(struct kvm_cpuid_entry2);
    s->cpuid_same = k->cpuid->nent == h.n_cpuid &&
                    !memcmp(k->cpuid->entries, s->cpuid->entries, h.n_cpuid * sizeof(struct kvm_cpuid_entry2));
    s->n_runs = h.n_runs;
    memcpy(s->runs, p, h.n_runs * sizeof *s->runs);
    for (uint32_t i = 0; i < s->n_runs; i++) s->pages += s->runs[i].len / FB_PAGE_SIZE;
    s->mem_fd = open(mem_path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (s->mem_fd < 0) { rc = vmm_fail(err, -errno, "open", "child memory: %s", strerror(errno)); goto fail; }
    if (fstat(s->mem_fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != h.mem_size ||
        mtime_ns(&st) != h.mem_mtime_ns) {
        rc = vmm_fail(err, -ESTALE, "snapshot", "child memory file changed since it was written (size/mtime)");
        goto fail;
    }
    uint64_t sum = 0;
    rc = copy_runs(-1, NULL, s->mem_fd, s->runs, s->n_runs, &sum);
    if (rc) { rc = vmm_fail(err, rc, "pread", "child memory: %s", strerror(-rc)); goto fail; }
    if (sum != h.mem_sum) { rc = vmm_fail(err, -EBADMSG, "snapshot", "child memory file does not match its checksum (corrupt)"); goto fail; }
    free(buf);
    *out = s;
    return 0;
fail:
    free(buf);
    if (s) snapshot_put(s);
    return rc;
}

void child_free(struct vmm_snapshot *s)
{
    free(s->runs);
    shm_ranges_free(&s->shm);
    snapshot_put(s->root);
}
