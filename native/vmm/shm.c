/*
 * shm.c — host shared memory: an object (a sealed memfd that can grow, never
 * shrink) whose pages are the memory of a page-aligned range of guest RAM in
 * every vm that shares it, at whatever guest address each chooses. A range is
 * the object mapped MAP_SHARED|MAP_FIXED over the vm's host RAM mapping; KVM
 * follows the host mapping through its MMU notifier, so the guest sees the
 * object's pages from its next access on. The host keeps one read-write
 * mapping of each object for its own reads (the futex value check).
 *
 * A vm records its ranges (each holding a reference on its object), sorted
 * and disjoint; a new range replaces whatever part of earlier ones it
 * overlaps. Derive copies the ranges' bytes into the child (they are not
 * private pages to pagemap) and gives it the ranges too, so every fork of the
 * child maps the same objects again after its RAM; the child's files hold the
 * bytes only (a resumed session has them as private memory). Unsharing maps
 * private zero pages (populated, so a derive copies them as the vm's own) and
 * drops the references. Only forks share: a booted vm's RAM is its memory
 * file, which the snapshot writer reads, and is refused (-ENOTSUP).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define SHM_SIZE_MAX FB_RAM_MAX           /* no range can be larger than RAM */

struct vmm_shm {
    atomic_int refs;
    pthread_mutex_t mu;                   /* size and the host mapping */
    int fd;
    uint64_t size;
    uint8_t *map;                         /* host mapping of [0, size) */
};

static int page_aligned(uint64_t v) { return (v & (FB_PAGE_SIZE - 1)) == 0; }

int vmm_shm_create(uint64_t size, struct vmm_shm **out, struct vmm_err *err)
{
    if (!out) return vmm_fail(err, -EINVAL, "vmm_shm_create", "missing argument");
    if (!size || !page_aligned(size) || size > SHM_SIZE_MAX)
        return vmm_fail(err, -EINVAL, "vmm_shm_create", "size %llu: a multiple of 4 KiB in [4 KiB, %llu MiB]",
                        (unsigned long long)size, (unsigned long long)(SHM_SIZE_MAX >> 20));
    struct vmm_shm *s = calloc(1, sizeof *s);
    if (!s) return vmm_fail(err, -ENOMEM, "calloc", "shared memory object");
    int rc;
    s->fd = memfd_create("forkbox-shm", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (s->fd < 0) { rc = vmm_fail(err, -errno, "memfd_create", "%s", strerror(errno)); free(s); return rc; }
    /* Never smaller: a mapping past the end would fault (SIGBUS in the host, EFAULT in KVM). */
    if (ftruncate(s->fd, (off_t)size) < 0 || fcntl(s->fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_SEAL) < 0) {
        rc = vmm_fail(err, -errno, "ftruncate", "shared memory object: %s", strerror(errno));
        goto fail;
    }
    s->map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, s->fd, 0);
    if (s->map == MAP_FAILED) { s->map = NULL; rc = vmm_fail(err, -errno, "mmap", "shared memory object: %s", strerror(errno)); goto fail; }
    s->size = size;
    atomic_init(&s->refs, 1);
    pthread_mutex_init(&s->mu, NULL);
    *out = s;
    return 0;
fail:
    close(s->fd);
    free(s);
    return rc;
}

uint64_t vmm_shm_size(struct vmm_shm *s)
{
    pthread_mutex_lock(&s->mu);
    uint64_t n = s->size;
    pthread_mutex_unlock(&s->mu);
    return n;
}

int vmm_shm_grow(struct vmm_shm *s, uint64_t size, struct vmm_err *err)
{
    if (!s) return vmm_fail(err, -EINVAL, "vmm_shm_grow", "missing argument");
    if (!page_aligned(size) || size > SHM_SIZE_MAX)
        return vmm_fail(err, -EINVAL, "vmm_shm_grow", "size %llu: a multiple of 4 KiB, at most %llu MiB",
                        (unsigned long long)size, (unsigned long long)(SHM_SIZE_MAX >> 20));
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (size < s->size) {
        rc = vmm_fail(err, -EINVAL, "vmm_shm_grow", "size %llu is below the object's %llu: objects never shrink",
                      (unsigned long long)size, (unsigned long long)s->size);
    } else if (size > s->size) {
        void *m;
        if (ftruncate(s->fd, (off_t)size) < 0) {
            rc = vmm_fail(err, -errno, "ftruncate", "shared memory object: %s", strerror(errno));
        } else if ((m = mremap(s->map, s->size, size, MREMAP_MAYMOVE)) == MAP_FAILED) {
            /* The file grew; the host mapping keeps its old size (reads past it are refused). */
            rc = vmm_fail(err, -errno, "mremap", "shared memory object: %s", strerror(errno));
        } else {
            s->map = m;
            s->size = size;
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int vmm_shm_read_u32(struct vmm_shm *s, uint64_t off, uint32_t *v, struct vmm_err *err)
{
    if (!s || !v) return vmm_fail(err, -EINVAL, "vmm_shm_read_u32", "missing argument");
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    if (off % 4 || off >= s->size || s->size - off < 4)
        rc = vmm_fail(err, -EINVAL, "vmm_shm_read_u32", "offset %llu: 4-aligned and inside the object's %llu bytes",
                      (unsigned long long)off, (unsigned long long)s->size);
    else
        *v = __atomic_load_n((const uint32_t *)(s->map + off), __ATOMIC_ACQUIRE);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

void shm_get(struct vmm_shm *s)
{
    atomic_fetch_add(&s->refs, 1);
}

void vmm_shm_put(struct vmm_shm *s)
{
    if (!s || atomic_fetch_sub(&s->refs, 1) != 1) return;
    munmap(s->map, s->size);
    close(s->fd);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* ---- ranges ------------------------------------------------------------------ */

void shm_ranges_free(struct shm_ranges *r)
{
    for (uint32_t i = 0; i < r->n; i++) vmm_shm_put(r->v[i].shm);
    free(r->v);
    memset(r, 0, sizeof *r);
}

int shm_ranges_copy(struct shm_ranges *dst, const struct shm_ranges *src, struct vmm_err *err)
{
    memset(dst, 0, sizeof *dst);
    if (!src->n) return 0;
    dst->v = malloc(src->n * sizeof *dst->v);
    if (!dst->v) return vmm_fail(err, -ENOMEM, "malloc", "shared ranges");
    memcpy(dst->v, src->v, src->n * sizeof *dst->v);
    dst->n = dst->cap = src->n;
    for (uint32_t i = 0; i < dst->n; i++) shm_get(dst->v[i].shm);
    return 0;
}

/* 1 when cutting [gpa, gpa+len) splits a range in two (it lies strictly inside one). */
static uint32_t splits(const struct shm_ranges *r, uint64_t gpa, uint64_t len)
{
    for (uint32_t i = 0; i < r->n; i++)
        if (r->v[i].gpa < gpa && r->v[i].gpa + r->v[i].len > gpa + len) return 1;
    return 0;
}

/* Room for `extra` more entries, within VMM_SHM_RANGES_MAX. */
static int reserve(struct shm_ranges *r, uint32_t extra, struct vmm_err *err)
{
    if (r->n + extra > VMM_SHM_RANGES_MAX)
        return vmm_fail(err, -ENOSPC, "vmm_vm_share", "more than %u shared ranges in one vm", VMM_SHM_RANGES_MAX);
    if (r->n + extra <= r->cap) return 0;
    uint32_t cap = r->cap ? r->cap * 2 : 8;
    while (cap < r->n + extra) cap *= 2;
    struct shm_range *v = realloc(r->v, cap * sizeof *v);
    if (!v) return vmm_fail(err, -ENOMEM, "realloc", "shared ranges");
    r->v = v;
    r->cap = cap;
    return 0;
}

/* Removes [gpa, gpa+len) from the list: ranges inside it go (their references
 * dropped), ranges across its edges are trimmed, one around it is split (room
 * for one more entry must be reserved: splits()). */
static void cut(struct shm_ranges *r, uint64_t gpa, uint64_t len)
{
    uint64_t end = gpa + len;
    for (uint32_t i = 0; i < r->n;) {
        struct shm_range *x = &r->v[i];
        uint64_t xe = x->gpa + x->len;
        if (xe <= gpa || x->gpa >= end) { i++; continue; }
        if (x->gpa >= gpa && xe <= end) {            /* inside: goes */
            vmm_shm_put(x->shm);
            memmove(x, x + 1, (r->n - i - 1) * sizeof *x);
            r->n--;
            continue;
        }
        if (x->gpa < gpa && xe > end) {              /* around: split in two */
            struct shm_range tail = { end, xe - end, x->off + (end - x->gpa), x->shm };
            shm_get(x->shm);
            x->len = gpa - x->gpa;
            memmove(x + 2, x + 1, (r->n - i - 1) * sizeof *x);
            r->v[i + 1] = tail;
            r->n++;
            i += 2;
            continue;
        }
        if (x->gpa < gpa) {                          /* over the start: keep its head */
            x->len = gpa - x->gpa;
        } else {                                     /* over the end: keep its tail */
            x->off += end - x->gpa;
            x->len = xe - end;
            x->gpa = end;
        }
        i++;
    }
}

/* a and b (a before b) are one contiguous piece of one object. */
static int joins(const struct shm_range *a, const struct shm_range *b)
{
    return a->shm == b->shm && a->gpa + a->len == b->gpa && a->off + a->len == b->off;
}

/* Inserts (sorted by gpa; room reserved, the range's reference already taken),
 * joined with a neighbour that continues it (the kernel merges such mappings
 * too), so sharing page by page does not use up VMM_SHM_RANGES_MAX. */
static void insert(struct shm_ranges *r, struct shm_range nr)
{
    uint32_t i = 0;
    while (i < r->n && r->v[i].gpa < nr.gpa) i++;
    memmove(&r->v[i + 1], &r->v[i], (r->n - i) * sizeof nr);
    r->v[i] = nr;
    r->n++;
    if (i + 1 < r->n && joins(&r->v[i], &r->v[i + 1])) {
        r->v[i].len += r->v[i + 1].len;
        vmm_shm_put(r->v[i + 1].shm);
        memmove(&r->v[i + 1], &r->v[i + 2], (r->n - i - 2) * sizeof nr);
        r->n--;
    }
    if (i > 0 && joins(&r->v[i - 1], &r->v[i])) {
        r->v[i - 1].len += r->v[i].len;
        vmm_shm_put(r->v[i].shm);
        memmove(&r->v[i], &r->v[i + 1], (r->n - i - 1) * sizeof nr);
        r->n--;
    }
}

static int map_range(uint8_t *ram, const struct shm_range *x, struct vmm_err *err)
{
    void *m = mmap(ram + x->gpa, x->len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, x->shm->fd, (off_t)x->off);
    if (m == MAP_FAILED)
        return vmm_fail(err, -errno, "mmap", "shared range [%#llx +%#llx): %s", (unsigned long long)x->gpa,
                        (unsigned long long)x->len, strerror(errno));
    return 0;
}

int shm_ranges_map(uint8_t *ram, const struct shm_ranges *r, struct vmm_err *err)
{
    for (uint32_t i = 0; i < r->n; i++) {
        int rc = map_range(ram, &r->v[i], err);
        if (rc) return rc;
    }
    return 0;
}

/* The checks every share and unshare makes before touching anything. */
static int check_range(struct vmm_vm *vm, uint64_t gpa, uint64_t len, const char *op, struct vmm_err *err)
{
    if (!vm) return vmm_fail(err, -EINVAL, op, "missing argument");
    if (vm->booted || vm->ram_fd >= 0 || !vm->snap)
        return vmm_fail(err, -ENOTSUP, op, "only a fork shares memory (a booted vm's RAM is its memory file)");
    if (vm->dead || atomic_load(&vm->killed))
        return vmm_fail(err, -EIO, op, "the vm is dead after an earlier crash, timeout or kill");
    pthread_mutex_lock(&vm->lock);
    int running = vm->running;
    pthread_mutex_unlock(&vm->lock);
    if (running) return vmm_fail(err, -EBUSY, op, "the vm is running: share and unshare only between runs");
    if (!len || !page_aligned(gpa) || !page_aligned(len) || gpa < FB_ARENA_BASE || gpa > vm->ram_size ||
        len > vm->ram_size - gpa)
        return vmm_fail(err, -EINVAL, op, "range [%#llx +%#llx): page-aligned, non-empty, inside the arena "
                        "[%#llx, %#llx)", (unsigned long long)gpa, (unsigned long long)len,
                        (unsigned long long)FB_ARENA_BASE, (unsigned long long)vm->ram_size);
    return 0;
}

int vmm_vm_share(struct vmm_vm *vm, uint64_t gpa, uint64_t len, struct vmm_shm *shm, uint64_t off, int copy_in,
                 struct vmm_err *err)
{
    int rc = check_range(vm, gpa, len, "vmm_vm_share", err);
    if (rc) return rc;
    if (!shm) return vmm_fail(err, -EINVAL, "vmm_vm_share", "missing shared memory object");
    uint64_t size = vmm_shm_size(shm);
    if (!page_aligned(off) || off > size || len > size - off)
        return vmm_fail(err, -EINVAL, "vmm_vm_share", "object range [%#llx +%#llx): page-aligned, inside its %#llx bytes",
                        (unsigned long long)off, (unsigned long long)len, (unsigned long long)size);
    rc = reserve(&vm->shm, 1 + splits(&vm->shm, gpa, len), err);   /* the new range, and a split's second half */
    if (rc) return rc;
    if (copy_in) {
        /* The vm's current bytes (private, or an earlier range's) into the object. */
        for (uint64_t done = 0; done < len;) {
            ssize_t w = pwrite(shm->fd, vm->ram + gpa + done, len - done, (off_t)(off + done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0) return vmm_fail(err, w < 0 ? -errno : -EIO, "pwrite", "shared memory object: %s",
                                        w < 0 ? strerror(errno) : "short write");
            done += (uint64_t)w;
        }
    }
    struct shm_range nr = { gpa, len, off, shm };
    rc = map_range(vm->ram, &nr, err);
    if (rc) {
        /* MAP_FIXED may have unmapped the old pages before failing: no half state. */
        vm->dead = 1;
        return rc;
    }
    shm_get(shm);
    cut(&vm->shm, gpa, len);
    insert(&vm->shm, nr);
    vm->had_shm = 1;
    return 0;
}

int vmm_vm_unshare(struct vmm_vm *vm, uint64_t gpa, uint64_t len, struct vmm_err *err)
{
    int rc = check_range(vm, gpa, len, "vmm_vm_unshare", err);
    if (rc) return rc;
    rc = reserve(&vm->shm, splits(&vm->shm, gpa, len), err);   /* a split's second half */
    if (rc) return rc;
    uint8_t *p = vm->ram + gpa;
    if (mmap(p, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) == MAP_FAILED) {
        vm->dead = 1;
        return vmm_fail(err, -errno, "mmap", "private memory over [%#llx +%#llx): %s", (unsigned long long)gpa,
                        (unsigned long long)len, strerror(errno));
    }
    /* Populated: present private pages, so a derive copies these zeros as the
     * vm's own instead of taking the root's bytes for pages never touched. */
    if (madvise(p, len, MADV_POPULATE_WRITE) < 0) memset(p, 0, len);
    cut(&vm->shm, gpa, len);
    vm->had_shm = 1;
    return 0;
}

uint32_t vmm_vm_shared_ranges(struct vmm_vm *vm)
{
    return vm ? vm->shm.n : 0;
}
