/*
 * exp_hugefault.c — experiment (not part of `make test`): where a fresh fork's
 * first exec spends its exits, and whether host-side backing changes cut them.
 * Forks a saved template, runs one exec, reports KVM's per-vm stats (4 KiB /
 * 2 MiB shadow entries, fixed faults, exits), the 2 MiB regions touched and
 * written, and the private pages. Build and run: see docs/architecture.md
 * ("Fresh-fork first exec").
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define PAGE 4096ull
#define HUGE (2ull << 20)
#define ROUNDS 30

enum variant { V_BASE, V_HUGE, V_PRECOW_WRITTEN, V_PRECOW_MAPPED, V_POPULATE, V__N };
static const char *const vname[V__N] = { "base", "madv-hugepage", "precow-written", "precow-host-mapped", "populate-read" };

static int stat_read(int fd, const char *const *names, uint64_t *vals)
{
    int sfd = ioctl(fd, KVM_GET_STATS_FD, NULL);
    if (sfd < 0) return -errno;
    struct kvm_stats_header h;
    int rc = -EIO;
    if (pread(sfd, &h, sizeof h, 0) != (ssize_t)sizeof h || h.num_desc > 4096 || h.name_size > 256) goto out;
    size_t dsz = sizeof(struct kvm_stats_desc) + h.name_size;
    char *d = malloc(dsz * h.num_desc);
    if (!d) goto out;
    if (pread(sfd, d, dsz * h.num_desc, h.desc_offset) == (ssize_t)(dsz * h.num_desc)) {
        for (unsigned i = 0; i < h.num_desc; i++) {
            struct kvm_stats_desc *x = (void *)(d + i * dsz);
            x->name[h.name_size - 1] = 0;
            for (int j = 0; names[j]; j++)
                if (!strcmp(x->name, names[j]) && pread(sfd, &vals[j], 8, h.data_offset + x->offset) != 8) vals[j] = 0;
        }
        rc = 0;
    }
    free(d);
out:
    close(sfd);
    return rc;
}

/* Host view of the fork's RAM: mapped pages, private (anonymous) pages, and
 * the 2 MiB regions with any mapped / any private page. Optional lists out. */
struct host_view { uint64_t mapped, anon, regions, written_regions; };
static int host_view(const uint8_t *ram, uint64_t size, struct host_view *v, uint32_t **anon_list,
                     uint32_t **mapped_list)
{
    size_t n = size / PAGE;
    uint64_t *pm = malloc(n * 8);
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (!pm || fd < 0 || pread(fd, pm, n * 8, (off_t)((uintptr_t)ram / PAGE) * 8) != (ssize_t)(n * 8)) {
        free(pm);
        if (fd >= 0) close(fd);
        return -EIO;
    }
    close(fd);
    memset(v, 0, sizeof *v);
    uint32_t *al = anon_list ? calloc(n + 1, 4) : NULL, *ml = mapped_list ? calloc(n + 1, 4) : NULL;
    size_t na = 0, nm = 0;
    for (size_t r = 0; r < n / 512; r++) {
        int m = 0, w = 0;
        for (int i = 0; i < 512; i++) {
            uint64_t e = pm[r * 512 + i];
            if (!(e >> 63)) continue;
            m++;
            if (ml) ml[nm++] = (uint32_t)(r * 512 + i) + 1;
            if (!((e >> 61) & 1)) { w++; if (al) al[na++] = (uint32_t)(r * 512 + i) + 1; }
        }
        v->mapped += m; v->anon += w; v->regions += m > 0; v->written_regions += w > 0;
    }
    free(pm);
    if (anon_list) *anon_list = al;
    if (mapped_list) *mapped_list = ml;
    return 0;
}

static const char PAYLOAD[] = "{\"code\":\"print(1+1)\",\"env\":{},\"stdin\":\"\"}";

struct sample { uint64_t run_ns, exits, pages_4k, pages_2m, pf_fixed; struct host_view hv; };

static int one(struct vmm_snapshot *snap, enum variant var, const uint32_t *list, struct sample *s,
               uint32_t **anon_out, uint32_t **mapped_out)
{
    struct vmm_err err = { 0 };
    struct vmm_vm *vm = NULL;
    int rc = vmm_fork(snap, NULL, &vm, &err);
    if (rc) { fprintf(stderr, "fork: %s\n", err.msg); return rc; }
    if (var == V_HUGE) madvise(vm->ram, vm->ram_size, MADV_HUGEPAGE);
    if ((var == V_PRECOW_WRITTEN || var == V_PRECOW_MAPPED) && list)
        for (const uint32_t *p = list; *p; p++) { volatile uint8_t *b = vm->ram + (uint64_t)(*p - 1) * PAGE; *b = *b; }
    if (var == V_POPULATE) {
        off_t pos = 0;
        for (;;) {
            off_t d = lseek(snap->mem_fd, pos, SEEK_DATA);
            if (d < 0) break;
            off_t h = lseek(snap->mem_fd, d, SEEK_HOLE);
            if (h < 0) h = (off_t)snap->ram_size;
            d &= ~(off_t)(PAGE - 1);
            h = (h + (off_t)PAGE - 1) & ~(off_t)(PAGE - 1);
            madvise(vm->ram + d, (size_t)(h - d), MADV_POPULATE_READ);
            pos = h;
        }
    }
    struct vmm_request req = { .kind = FB_REQ_EXEC, .payload = PAYLOAD, .payload_len = sizeof PAYLOAD - 1,
                               .timeout_ns = 10000000000ull };
    struct vmm_response resp;
    rc = vmm_vm_run(vm, &req, &resp, &err);
    if (rc || resp.outcome != VMM_OK || resp.out_len != 2 || memcmp(resp.out, "2\n", 2)) {
        fprintf(stderr, "exec failed: rc %d outcome %d %s %.*s\n", rc, rc ? -1 : (int)resp.outcome, err.msg,
                rc ? 0 : (int)resp.err_len, rc ? "" : (const char *)resp.err);
        vmm_vm_destroy(vm);
        return rc ? rc : -EIO;
    }
    static const char *const vmn[] = { "pages_4k", "pages_2m", NULL };
    static const char *const cpn[] = { "pf_fixed", "exits", NULL };
    uint64_t a[2] = { 0 }, b[2] = { 0 };
    stat_read(vm->sh.vm_fd, vmn, a);
    stat_read(vm->sh.vcpu_fd, cpn, b);
    s->run_ns = resp.run_ns; s->exits = b[1]; s->pages_4k = a[0]; s->pages_2m = a[1]; s->pf_fixed = b[0];
    host_view(vm->ram, vm->ram_size, &s->hv, anon_out, mapped_out);
    vmm_vm_destroy(vm);
    return 0;
}

static int cmp64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (access("/dev/kvm", R_OK | W_OK) != 0) { printf("skipped: /dev/kvm not available\n"); return 0; }
    if (argc != 3) { fprintf(stderr, "usage: exp_hugefault MEMORY STATE\n"); return 2; }
    struct vmm_err err = { 0 };
    struct vmm_snapshot *snap = NULL;
    if (vmm_snapshot_open(argv[1], argv[2], &snap, &err)) { fprintf(stderr, "open: %s\n", err.msg); return 1; }
    uint32_t *anon = NULL, *mapped = NULL;
    struct sample s;
    if (one(snap, V_BASE, NULL, &s, &anon, &mapped)) return 1;   /* learning fork */
    for (int v = 0; v < V__N; v++) {
        const uint32_t *list = v == V_PRECOW_WRITTEN ? anon : v == V_PRECOW_MAPPED ? mapped : NULL;
        uint64_t t[ROUNDS];
        for (int i = 0; i < ROUNDS; i++) {
            if (one(snap, (enum variant)v, list, &s, NULL, NULL)) return 1;
            t[i] = s.run_ns;
        }
        qsort(t, ROUNDS, 8, cmp64);
        printf("%-20s exec p50 %6.3f ms  vm exits %5llu  pf_fixed %5llu  spte 4k %5llu 2m %3llu  | host: mapped %5llu "
               "private %5llu (%llu KiB)  2M regions touched %llu written %llu\n",
               vname[v], t[ROUNDS / 2] / 1e6, (unsigned long long)s.exits, (unsigned long long)s.pf_fixed,
               (unsigned long long)s.pages_4k, (unsigned long long)s.pages_2m, (unsigned long long)s.hv.mapped,
               (unsigned long long)s.hv.anon, (unsigned long long)s.hv.anon * 4, (unsigned long long)s.hv.regions,
               (unsigned long long)s.hv.written_regions);
        fflush(stdout);
    }
    free(anon);
    free(mapped);
    vmm_snapshot_close(snap);
    return 0;
}
