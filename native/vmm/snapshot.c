/*
 * snapshot.c — writing and opening snapshots. Save: complete the pending
 * doorbell `out`, read the vCPU state, write RAM sparse (all-zero pages stay
 * holes) and the checksummed state file, each via tmp + rename (state last: it
 * is the commit point); temp files are created O_EXCL|O_NOFOLLOW, 0600, and
 * the directory is fsynced after the rename. Open: validate every header field
 * before trusting any size, accept an image only inside the expected image
 * directory, then keep the memory fd and one shared read-only image mapping
 * that every fork reuses. A snapshot is refcounted by its live forks.
 */
#define _GNU_SOURCE
#include <errno.h>
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
#include "snapshot.h"

uint64_t fnv1a64(uint64_t h, const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++) { h ^= b[i]; h *= 0x100000001b3ull; }
    return h;
}
#define FNV0 0xcbf29ce484222325ull

static uint64_t mtime_ns(const struct stat *st)
{
    return (uint64_t)st->st_mtim.tv_sec * 1000000000ull + (uint64_t)st->st_mtim.tv_nsec;
}

static int write_all(int fd, const void *buf, size_t n, off_t off)
{
    const uint8_t *p = buf;
    while (n) {
        ssize_t w = pwrite(fd, p, n, off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? -errno : -EIO;
        p += w; n -= (size_t)w; off += w;
    }
    return 0;
}

/* Creates a save's temp file. Never follows a symlink planted at its name
 * (O_EXCL|O_NOFOLLOW); a stale one left by a crashed save with the same pid is
 * unlinked (unlink does not follow either) and the create retried once. */
static int create_tmp(const char *tmp)
{
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST && unlink(tmp) == 0)
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    return fd < 0 ? -errno : fd;
}

/* Makes a rename into path's directory durable. */
static int sync_parent(const char *path)
{
    char dir[4200];
    const char *slash = strrchr(path, '/');
    size_t n = slash ? (size_t)(slash - path) : 0;
    if (n >= sizeof dir) return -ENAMETOOLONG;
    if (slash && n == 0) n = 1;                       /* "/name" */
    memcpy(dir, slash ? path : ".", slash ? n : 1);
    dir[slash ? n : 1] = 0;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = fsync(fd) < 0 ? -errno : 0;
    close(fd);
    return rc;
}

static int page_is_zero(const uint8_t *p)
{
    const uint64_t *q = (const uint64_t *)p;
    for (size_t i = 0; i < FB_PAGE_SIZE / 8; i++) if (q[i]) return 0;
    return 1;
}

/* Writes [start,end) of RAM, skipping all-zero pages (they stay holes). */
static int write_range(int fd, const uint8_t *ram, uint64_t start, uint64_t end)
{
    uint64_t run = start;
    for (uint64_t a = start; a <= end; a += FB_PAGE_SIZE) {
        if (a < end && !page_is_zero(ram + a)) continue;
        if (a > run) {
            int rc = write_all(fd, ram + run, a - run, (off_t)run);
            if (rc) return rc;
        }
        run = a + FB_PAGE_SIZE;
    }
    return 0;
}

/* A fork's RAM is a private mapping of its snapshot's memory file. A page can
 * be non-zero only if the file has data there or the page is resident (the
 * fork wrote it, or read it in); everything else is a hole never touched, so
 * it is skipped without faulting it in. */
static int write_fork_ram(struct vmm_vm *vm, int fd)
{
    size_t pages = vm->ram_size / FB_PAGE_SIZE;
    unsigned char *res = malloc(pages);
    if (!res) return -ENOMEM;
    if (mincore(vm->ram, vm->ram_size, res) < 0) memset(res, 1, pages);
    for (uint32_t i = 0; i < vm->shm.n; i++)   /* shared ranges: checked page by page */
        memset(res + vm->shm.v[i].gpa / FB_PAGE_SIZE, 1, vm->shm.v[i].len / FB_PAGE_SIZE);
    int mfd = vm->snap ? vm->snap->mem_fd : -1;
    uint64_t data_end = 0, next_data = 0;   /* current/next data range of the file */
    int rc = 0;
    for (size_t i = 0; i < pages && !rc; i++) {
        uint64_t a = i * FB_PAGE_SIZE;
        if (mfd >= 0 && a >= data_end && a >= next_data) {
            off_t d = lseek(mfd, (off_t)a, SEEK_DATA);
            if (d < 0 && errno != ENXIO) { mfd = -1; }                /* no map: check every page */
            else if (d < 0) { next_data = data_end = vm->ram_size; }  /* no more data */
            else {
                off_t h = lseek(mfd, d, SEEK_HOLE);
                next_data = (uint64_t)d;
                data_end = h < 0 ? vm->ram_size : (uint64_t)h;
            }
        }
        int in_data = mfd < 0 || (a >= next_data && a < data_end);
        if (!in_data && !(res[i] & 1)) continue;
        if (!page_is_zero(vm->ram + a)) rc = write_all(fd, vm->ram + a, FB_PAGE_SIZE, (off_t)a);
    }
    free(res);
    return rc;
}

static int write_memory(struct vmm_vm *vm, const char *path, uint64_t *mtime, struct vmm_err *err)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp)
        return vmm_fail(err, -ENAMETOOLONG, "snapshot", "memory path too long");
    int rc, fd = create_tmp(tmp);
    if (fd < 0) return vmm_fail(err, fd, "open", "%s: %s", tmp, strerror(-fd));
    if (ftruncate(fd, (off_t)vm->ram_size) < 0) { rc = vmm_fail(err, -errno, "ftruncate", "%s", tmp); goto fail; }
    if (vm->ram_fd >= 0) {
        /* Boot vms: the memfd knows which ranges were ever written. */
        off_t pos = 0;
        for (;;) {
            off_t d = lseek(vm->ram_fd, pos, SEEK_DATA);
            if (d < 0 || (uint64_t)d >= vm->ram_size) break;
            off_t h = lseek(vm->ram_fd, d, SEEK_HOLE);
            if (h < 0 || (uint64_t)h > vm->ram_size) h = (off_t)vm->ram_size;
            rc = write_range(fd, vm->ram, (uint64_t)d & ~(FB_PAGE_SIZE - 1), (uint64_t)h);
            if (rc) { rc = vmm_fail(err, rc, "write", "%s", tmp); goto fail; }
            pos = h;
        }
    } else {
        rc = write_fork_ram(vm, fd);
        if (rc) { rc = vmm_fail(err, rc, "write", "%s", tmp); goto fail; }
    }
    struct stat st;
    if (fdatasync(fd) < 0 || fstat(fd, &st) < 0) { rc = vmm_fail(err, -errno, "fdatasync", "%s", tmp); goto fail; }
    *mtime = mtime_ns(&st);
    close(fd);
    if (rename(tmp, path) < 0) { rc = vmm_fail(err, -errno, "rename", "%s: %s", path, strerror(errno)); unlink(tmp); return rc; }
    rc = sync_parent(path);
    return rc ? vmm_fail(err, rc, "fsync", "directory of %s", path) : 0;
fail:
    close(fd);
    unlink(tmp);
    return rc;
}

/* MSRs worth saving: KVM's list, minus any this vCPU refuses to read or to
 * take back. Found once per save by bisecting the batch ioctls' counts. */
int read_msrs(int vcpu, struct kvm_msrs **out, struct vmm_err *err)
{
    const struct kvm_global *k = kvm_global(err);
    if (!k) return err->code;
    struct kvm_msr_list probe = { .nmsrs = 0 };
    ioctl(k->fd, KVM_GET_MSR_INDEX_LIST, &probe); /* E2BIG, fills nmsrs */
    uint32_t n = probe.nmsrs;
    if (n == 0 || n > SNAP_MSRS_MAX) return vmm_fail(err, -EINVAL, "KVM_GET_MSR_INDEX_LIST", "%u MSRs", n);
    struct kvm_msr_list *list = calloc(1, sizeof *list + n * sizeof(uint32_t));
    struct kvm_msrs *m = calloc(1, sizeof *m + n * sizeof(struct kvm_msr_entry));
    int rc = 0;
    if (!list || !m) { rc = vmm_fail(err, -ENOMEM, "calloc", "msrs"); goto fail; }
    list->nmsrs = n;
    if (ioctl(k->fd, KVM_GET_MSR_INDEX_LIST, list) < 0) { rc = vmm_fail(err, -errno, "KVM_GET_MSR_INDEX_LIST", "%s", strerror(errno)); goto fail; }
    uint32_t kept = 0;
    for (uint32_t i = 0; i < list->nmsrs; i++) {
        struct { struct kvm_msrs h; struct kvm_msr_entry e; } one = { .h = { .nmsrs = 1 }, .e = { .index = list->indices[i] } };
        if (ioctl(vcpu, KVM_GET_MSRS, &one) != 1) continue;
        if (ioctl(vcpu, KVM_SET_MSRS, &one) != 1) continue;
        m->entries[kept++] = one.e;
    }
    m->nmsrs = kept;
    free(list);
    *out = m;
    return 0;
fail:
    free(list);
    free(m);
    return rc;
}

int complete_pending_io(struct vmm_vm *vm, struct vmm_err *err)
{
    if (!vm->pending_io) return 0;
    /* KVM finishes an `out` only on the next KVM_RUN; with immediate_exit it
     * completes it (RIP past the `out`) and returns -EINTR before running. */
    __atomic_store_n(&vm->sh.run->immediate_exit, 1, __ATOMIC_RELAXED);
    int r = ioctl(vm->sh.vcpu_fd, KVM_RUN, 0);
    int e = errno;
    __atomic_store_n(&vm->sh.run->immediate_exit, 0, __ATOMIC_RELAXED);
    if (r == 0 || e != EINTR)
        return vmm_fail(err, r == 0 ? -EIO : -e, "KVM_RUN", "completing the doorbell: %s", r == 0 ? "ran" : strerror(e));
    vm->pending_io = 0;
    return 0;
}

int vmm_snapshot_save(struct vmm_vm *vm, const char *mem_path, const char *state_path, struct vmm_err *err)
{
    int rc;
    if (!vm || !mem_path || !state_path) return vmm_fail(err, -EINVAL, "vmm_snapshot_save", "missing argument");
    if (vm->dead || (vm->booted && !vm->started) || atomic_load(&vm->killed))
        return vmm_fail(err, -EINVAL, "vmm_snapshot_save", "the vm is not stopped at a doorbell");
    const struct kvm_global *k = kvm_global(err);
    if (!k) return err->code;
    rc = complete_pending_io(vm, err);
    if (rc) return rc;

    struct snap_header h;
    memset(&h, 0, sizeof h);
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_vcpu_events events;
    struct kvm_xcrs xcrs;
    memset(&xcrs, 0, sizeof xcrs);
    struct kvm_msrs *msrs = NULL;
    struct kvm_cpuid2 *cpuid = NULL;
    uint8_t *state = NULL;
    struct kvm_xsave *xsave = calloc(1, (size_t)k->xsave_size);
    if (!xsave) return vmm_fail(err, -ENOMEM, "calloc", "xsave");
    int vcpu = vm->sh.vcpu_fd;
    if (ioctl(vcpu, KVM_GET_REGS, &regs) < 0) { rc = vmm_fail(err, -errno, "KVM_GET_REGS", "%s", strerror(errno)); goto out; }
    if (ioctl(vcpu, KVM_GET_SREGS, &sregs) < 0) { rc = vmm_fail(err, -errno, "KVM_GET_SREGS", "%s", strerror(errno)); goto out; }
    if (ioctl(vcpu, KVM_GET_VCPU_EVENTS, &events) < 0) { rc = vmm_fail(err, -errno, "KVM_GET_VCPU_EVENTS", "%s", strerror(errno)); goto out; }
    if (k->xcr0 && ioctl(vcpu, KVM_GET_XCRS, &xcrs) < 0) { rc = vmm_fail(err, -errno, "KVM_GET_XCRS", "%s", strerror(errno)); goto out; }
    if (ioctl(vcpu, k->cap_xsave2 ? KVM_GET_XSAVE2 : KVM_GET_XSAVE, xsave) < 0) {
        rc = vmm_fail(err, -errno, "KVM_GET_XSAVE2", "%s", strerror(errno));
        goto out;
    }
    rc = read_msrs(vcpu, &msrs, err);
    if (rc) goto out;
    /* The CPUID the vm was configured with, not KVM_GET_CPUID2's view of it:
     * PVM reports the host's there, and forks must be given the same input. */
    size_t cpuid_sz = sizeof *cpuid + vm->cpuid->nent * sizeof(struct kvm_cpuid_entry2);
    cpuid = malloc(cpuid_sz);
    if (!cpuid) { rc = vmm_fail(err, -ENOMEM, "malloc", "cpuid"); goto out; }
    memcpy(cpuid, vm->cpuid, cpuid_sz);
    const char *ipath = vm->image_path ? vm->image_path : vm->snap ? vm->snap->image_path : NULL;
    size_t path_len = ipath ? strlen(ipath) : 0;
    if (path_len > SNAP_PATH_MAX) { rc = vmm_fail(err, -ENAMETOOLONG, "snapshot", "image path too long"); goto out; }
    h.magic = SNAP_MAGIC;
    h.version = SNAP_VERSION;
    h.header_size = SNAP_HEADER_SIZE;
    h.abi_version = FB_ABI_VERSION;
    h.ram_size = vm->ram_size;
    h.mailbox_size = FB_MAILBOX_SIZE;
    h.image_size = vm->image_size;
    h.image_mtime_ns = vm->image_mtime_ns;
    h.tsc_khz = vm->tsc_khz;
    h.seq = vm->seq;
    h.image_path_len = (uint32_t)path_len;
    h.xsave_size = (uint32_t)k->xsave_size;
    h.n_msrs = msrs->nmsrs;
    h.n_cpuid = cpuid->nent;
    h.regs_size = sizeof regs; h.sregs_size = sizeof sregs; h.events_size = sizeof events; h.xcrs_size = sizeof xcrs;
    size_t msr_bytes = h.n_msrs * sizeof(struct kvm_msr_entry), cpuid_bytes = h.n_cpuid * sizeof(struct kvm_cpuid_entry2);
    h.body_size = sizeof regs + sizeof sregs + sizeof events + sizeof xcrs + h.xsave_size + msr_bytes + cpuid_bytes + path_len;
    state = malloc(SNAP_HEADER_SIZE + h.body_size);
    if (!state) { rc = vmm_fail(err, -ENOMEM, "malloc", "state"); goto out; }
    uint8_t *p = state + SNAP_HEADER_SIZE;
#define PUT(src, n) do { memcpy(p, (src), (n)); p += (n); } while (0)
    PUT(&regs, sizeof regs); PUT(&sregs, sizeof sregs); PUT(&events, sizeof events); PUT(&xcrs, sizeof xcrs);
    PUT(xsave, h.xsave_size); PUT(msrs->entries, msr_bytes); PUT(cpuid->entries, cpuid_bytes);
    if (path_len) PUT(ipath, path_len);
#undef PUT

    rc = write_memory(vm, mem_path, &h.mem_mtime_ns, err);
    if (rc) goto out;
    h.body_fnv = fnv1a64(FNV0, state + SNAP_HEADER_SIZE, h.body_size);
    h.header_fnv = fnv1a64(FNV0, &h, offsetof(struct snap_header, header_fnv));
    memcpy(state, &h, sizeof h);

    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", state_path, (int)getpid()) >= (int)sizeof tmp) {
        rc = vmm_fail(err, -ENAMETOOLONG, "snapshot", "state path too long");
        goto out;
    }
    int fd = create_tmp(tmp);
    if (fd < 0) { rc = vmm_fail(err, fd, "open", "%s: %s", tmp, strerror(-fd)); goto out; }
    rc = write_all(fd, state, SNAP_HEADER_SIZE + h.body_size, 0);
    if (!rc && fdatasync(fd) < 0) rc = -errno;
    close(fd);
    if (!rc && rename(tmp, state_path) < 0) rc = -errno;
    if (rc) { unlink(tmp); rc = vmm_fail(err, rc, "write", "%s: %s", state_path, strerror(-rc)); }
    else if ((rc = sync_parent(state_path))) rc = vmm_fail(err, rc, "fsync", "directory of %s", state_path);
out:
    free(state);
    free(cpuid);
    free(msrs);
    free(xsave);
    return rc;
}

static int read_state(const char *path, uint8_t **out, size_t *len, struct vmm_err *err)
{
    int rc = 0, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vmm_fail(err, -errno, "open", "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) { rc = vmm_fail(err, -errno, "fstat", "%s", path); goto close_fd; }
    if (!S_ISREG(st.st_mode) || st.st_size < SNAP_HEADER_SIZE || st.st_size > SNAP_STATE_MAX) {
        rc = vmm_fail(err, -EINVAL, "snapshot", "%s: %lld bytes is not a state file (%u..%u)", path,
                      (long long)st.st_size, SNAP_HEADER_SIZE, SNAP_STATE_MAX);
        goto close_fd;
    }
    uint8_t *buf = malloc((size_t)st.st_size);
    if (!buf) { rc = vmm_fail(err, -ENOMEM, "malloc", "state"); goto close_fd; }
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = pread(fd, buf + got, (size_t)st.st_size - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) { free(buf); rc = vmm_fail(err, r < 0 ? -errno : -EIO, "read", "%s", path); goto close_fd; }
        got += (size_t)r;
    }
    *out = buf;
    *len = got;
close_fd:
    close(fd);
    return rc;
}

static int check_header(const struct snap_header *h, const uint8_t *b, size_t len, const char *path,
                        struct vmm_err *err)
{
#define BAD(...) vmm_fail(err, -EINVAL, "snapshot", __VA_ARGS__)
    if (h->magic != SNAP_MAGIC) return BAD("%s: not a forkbox state file (bad magic)", path);
    if (h->version != SNAP_VERSION) return BAD("%s: state file version %u, this build reads %u", path, h->version, SNAP_VERSION);
    if (h->header_size != SNAP_HEADER_SIZE) return BAD("%s: header size %u", path, h->header_size);
    if (h->header_fnv != fnv1a64(FNV0, h, offsetof(struct snap_header, header_fnv)))
        return BAD("%s: header checksum mismatch (corrupt)", path);
    if (h->abi_version != FB_ABI_VERSION) return BAD("%s: guest ABI %u, this build speaks %u", path, h->abi_version, FB_ABI_VERSION);
    if (h->flags) return BAD("%s: unknown flags %#x", path, h->flags);
    if (h->ram_size < FB_RAM_MIN || h->ram_size > FB_RAM_MAX || h->ram_size % FB_HUGE_PAGE_SIZE)
        return BAD("%s: ram size %llu out of range", path, (unsigned long long)h->ram_size);
    if (h->mailbox_size != FB_MAILBOX_SIZE) return BAD("%s: mailbox size %llu", path, (unsigned long long)h->mailbox_size);
    if (h->image_size > FB_IMAGE_MAX || (h->image_path_len == 0) != (h->image_size == 0) || h->image_path_len > SNAP_PATH_MAX)
        return BAD("%s: bad image fields", path);
    if (h->regs_size != sizeof(struct kvm_regs) || h->sregs_size != sizeof(struct kvm_sregs) ||
        h->events_size != sizeof(struct kvm_vcpu_events) || h->xcrs_size != sizeof(struct kvm_xcrs))
        return BAD("%s: vCPU state sizes differ from this build's", path);
    if (h->xsave_size < sizeof(struct kvm_xsave) || h->xsave_size > SNAP_XSAVE_MAX || h->xsave_size % 64)
        return BAD("%s: xsave size %u", path, h->xsave_size);
    if (h->n_msrs > SNAP_MSRS_MAX || h->n_cpuid == 0 || h->n_cpuid > SNAP_CPUID_MAX)
        return BAD("%s: %u MSRs / %u CPUID entries", path, h->n_msrs, h->n_cpuid);
    if (h->tsc_khz == 0 || h->tsc_khz > 100000000ull) return BAD("%s: tsc %llu kHz", path, (unsigned long long)h->tsc_khz);
    uint64_t body = (uint64_t)h->regs_size + h->sregs_size + h->events_size + h->xcrs_size + h->xsave_size +
                    (uint64_t)h->n_msrs * sizeof(struct kvm_msr_entry) +
                    (uint64_t)h->n_cpuid * sizeof(struct kvm_cpuid_entry2) + h->image_path_len;
    if (h->body_size != body || len != SNAP_HEADER_SIZE + body)
        return BAD("%s: %zu bytes, header describes %llu (truncated or padded)", path, len,
                   (unsigned long long)(SNAP_HEADER_SIZE + body));
    if (h->body_fnv != fnv1a64(FNV0, b, body)) return BAD("%s: body checksum mismatch (corrupt)", path);
    if (h->image_path_len) {
        const uint8_t *ip = b + body - h->image_path_len;
        if (ip[0] != '/' || memchr(ip, 0, h->image_path_len)) return BAD("%s: image path is not absolute", path);
    }
    return 0;
#undef BAD
}

int snap_parse_state(const uint8_t *buf, size_t len, const char *path, struct snap_header *h, struct vmm_err *err)
{
    if (len < SNAP_HEADER_SIZE) return vmm_fail(err, -EINVAL, "snapshot", "%s: %zu bytes is not a state file", path, len);
    memcpy(h, buf, sizeof *h);
    return check_header(h, buf + SNAP_HEADER_SIZE, len, path, err);
}

/* 0 when the file open on fd lies inside dir (both resolved by the kernel:
 * /proc/self/fd names what was actually opened, so no swap can race it). */
static int fd_inside(int fd, const char *dir, const char *what, struct vmm_err *err)
{
    char link[64], got[4200];
    char *want = realpath(dir, NULL);
    if (!want) return vmm_fail(err, -EPERM, "snapshot", "%s outside the image directory %s (%s)", what, dir, strerror(errno));
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, got, sizeof got - 1);
    int rc = 0;
    size_t wl = strlen(want);
    if (n < 0) rc = vmm_fail(err, -errno, "readlink", "%s", link);
    else {
        got[n] = 0;
        if ((size_t)n <= wl || strncmp(got, want, wl) || (got[wl] != '/' && strcmp(want, "/")))
            rc = vmm_fail(err, -EPERM, "snapshot", "%s %s is outside the image directory %s", what, got, want);
    }
    free(want);
    return rc;
}

/* Opens path and checks it is still the file the snapshot recorded; with
 * dir1 (and optionally dir2) it must also lie inside one of them. */
static int open_identity(const char *path, uint64_t size, uint64_t mtime, const char *what, const char *dir1,
                         const char *dir2, int *fd_out, struct vmm_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | (dir1 ? O_NOFOLLOW : 0));
    if (fd < 0) return vmm_fail(err, -errno, "open", "%s %s: %s", what, path, strerror(errno));
    if (dir1) {
        int rc = fd_inside(fd, dir1, what, err);
        if (rc && dir2) rc = fd_inside(fd, dir2, what, err);
        if (rc) { close(fd); return rc; }
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != size || mtime_ns(&st) != mtime) {
        close(fd);
        return vmm_fail(err, -ESTALE, "snapshot", "%s %s changed since the snapshot was taken (size/mtime)", what, path);
    }
    *fd_out = fd;
    return 0;
}

static int snapshot_open(const char *mem_path, const char *state_path, const char *dir1, const char *dir2,
                         struct vmm_snapshot **out, struct vmm_err *err);

/* vmm_snapshot_open's image directories for a state file: the cache layout's
 * <cache>/templates/<key>/state -> <cache>/images, and the state file's own
 * directory (snapshots saved side by side with their image, as in the tests).
 * Either way a tampered path cannot reach a file elsewhere on the host. */
static int default_image_dirs(const char *state_path, char *dirs, size_t cap, struct vmm_err *err)
{
    char *real = realpath(state_path, NULL);
    if (!real) return vmm_fail(err, -errno, "realpath", "%s: %s", state_path, strerror(errno));
    char *slash = strrchr(real, '/');
    if (slash) *slash = 0;
    size_t own = strlen(real) + 1;
    int n = snprintf(dirs, cap, "%s", real);
    for (int i = 0; i < 2; i++) {
        slash = strrchr(real, '/');
        if (slash) *slash = 0;
    }
    if (n >= 0 && (size_t)n < cap) n = snprintf(dirs + own, cap - own, "%s/images", real);
    free(real);
    return n < 0 || (size_t)n >= cap - own ? vmm_fail(err, -ENAMETOOLONG, "snapshot", "image directory path too long") : 0;
}

int vmm_snapshot_open(const char *mem_path, const char *state_path, struct vmm_snapshot **out, struct vmm_err *err)
{
    char dirs[8400];
    if (!mem_path || !state_path || !out) return vmm_fail(err, -EINVAL, "vmm_snapshot_open", "missing argument");
    int rc = default_image_dirs(state_path, dirs, sizeof dirs, err);
    return rc ? rc : snapshot_open(mem_path, state_path, dirs, dirs + strlen(dirs) + 1, out, err);
}

int vmm_snapshot_open_in(const char *mem_path, const char *state_path, const char *image_dir,
                         struct vmm_snapshot **out, struct vmm_err *err)
{
    if (!image_dir) return vmm_fail(err, -EINVAL, "vmm_snapshot_open", "missing argument");
    return snapshot_open(mem_path, state_path, image_dir, NULL, out, err);
}

static int snapshot_open(const char *mem_path, const char *state_path, const char *dir1, const char *dir2,
                         struct vmm_snapshot **out, struct vmm_err *err)
{
    if (!mem_path || !state_path || !out) return vmm_fail(err, -EINVAL, "vmm_snapshot_open", "missing argument");
    const struct kvm_global *k = kvm_global(err);
    if (!k) return err ? err->code : -ENODEV;
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = read_state(state_path, &buf, &len, err);
    if (rc) return rc;
    struct snap_header h;
    rc = snap_parse_state(buf, len, state_path, &h, err);
    if (rc) { free(buf); return rc; }
    if (h.xsave_size > (uint32_t)k->xsave_size && !k->cap_xsave2) {
        free(buf);
        return vmm_fail(err, -ENOTSUP, "snapshot", "%s: xsave state of %u bytes, this host takes %d", state_path,
                        h.xsave_size, k->xsave_size);
    }
    struct vmm_snapshot *s = calloc(1, sizeof *s);
    if (!s) { free(buf); return vmm_fail(err, -ENOMEM, "calloc", "snapshot"); }
    s->mem_fd = s->image_fd = -1;
    atomic_init(&s->refs, 1);
    s->id = h.header_fnv;
    s->ram_size = h.ram_size;
    s->tsc_khz = h.tsc_khz;
    s->seq = h.seq;
    s->image_size = h.image_size;
    s->image_mtime_ns = h.image_mtime_ns;
    const uint8_t *p = buf + SNAP_HEADER_SIZE;
    memcpy(&s->regs, p, sizeof s->regs); p += sizeof s->regs;
    memcpy(&s->sregs, p, sizeof s->sregs); p += sizeof s->sregs;
    memcpy(&s->events, p, sizeof s->events); p += sizeof s->events;
    memcpy(&s->xcrs, p, sizeof s->xcrs); p += sizeof s->xcrs;
    s->xsave_size = h.xsave_size > (uint32_t)k->xsave_size ? h.xsave_size : (uint32_t)k->xsave_size;
    s->xsave = calloc(1, s->xsave_size);
    s->msrs = calloc(1, sizeof *s->msrs + h.n_msrs * sizeof(struct kvm_msr_entry));
    s->cpuid = calloc(1, sizeof *s->cpuid + h.n_cpuid * sizeof(struct kvm_cpuid_entry2));
    if (!s->xsave || !s->msrs || !s->cpuid) { rc = vmm_fail(err, -ENOMEM, "calloc", "snapshot state"); goto fail; }
    memcpy(s->xsave, p, h.xsave_size); p += h.xsave_size;
    s->msrs->nmsrs = h.n_msrs;
    memcpy(s->msrs->entries, p, h.n_msrs * sizeof(struct kvm_msr_entry)); p += h.n_msrs * sizeof(struct kvm_msr_entry);
    s->cpuid->nent = h.n_cpuid;
    memcpy(s->cpuid->entries, p, h.n_cpuid * sizeof(struct kvm_cpuid_entry2)); p += h.n_cpuid * sizeof(struct kvm_cpuid_entry2);
    s->cpuid_same = k->cpuid->nent == h.n_cpuid &&
                    !memcmp(k->cpuid->entries, s->cpuid->entries, h.n_cpuid * sizeof(struct kvm_cpuid_entry2));
    if (s->xcrs.nr_xcrs > KVM_MAX_XCRS) { rc = vmm_fail(err, -EINVAL, "snapshot", "%s: %u xcrs", state_path, s->xcrs.nr_xcrs); goto fail; }
    if (h.image_path_len) {
        s->image_path = strndup((const char *)p, h.image_path_len);
        if (!s->image_path || strlen(s->image_path) != h.image_path_len) {
            rc = vmm_fail(err, -EINVAL, "snapshot", "%s: bad image path", state_path);
            goto fail;
        }
        rc = open_identity(s->image_path, h.image_size, h.image_mtime_ns, "image", dir1, dir2, &s->image_fd, err);
        if (rc) goto fail;
        rc = image_map(s->image_fd, s->image_size, &s->image, &s->image_map_size, err);
        if (rc) goto fail;
    }
    rc = open_identity(mem_path, h.ram_size, h.mem_mtime_ns, "memory file", NULL, NULL, &s->mem_fd, err);
    if (rc) goto fail;
    free(buf);
    *out = s;
    return 0;
fail:
    free(buf);
    s->refs = 1;
    vmm_snapshot_close(s);
    return rc;
}

void snapshot_put(struct vmm_snapshot *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1) return;
    if (s->root) {
        child_free(s);                /* its image mapping is the root's */
    } else {
        if (s->image) munmap((void *)s->image, s->image_map_size);
        const uint8_t *clean = atomic_load(&s->clean);
        if (clean) munmap((void *)clean, s->ram_size);
        if (s->image_fd >= 0) close(s->image_fd);
    }
    if (s->mem_fd >= 0) close(s->mem_fd);
    free(s->image_path);
    free(s->xsave);
    free(s->msrs);
    free(s->cpuid);
    free(s);
}

/* Forks hold references: the files stay open until the last fork is gone. */
void vmm_snapshot_close(struct vmm_snapshot *s)
{
    if (s) snapshot_put(s);
}

uint64_t vmm_snapshot_ram_size(const struct vmm_snapshot *s) { return s->ram_size; }
