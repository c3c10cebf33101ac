/*
 * probe.c — the process-wide KVM handle and what it supports: opened once,
 * never closed (every vm and snapshot borrows it). Also vmm_probe() and the
 * bare-VM timing floor that cold forks are compared against.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

#define XCR0_X87 0x1ull
#define XCR0_SSE 0x2ull
#define XCR0_AVX 0x4ull
#define XCR0_AVX512 0xe0ull /* opmask | ZMM_Hi256 | Hi16_ZMM */
#define CPUID_MAX 256

static struct kvm_global g;
static struct vmm_err g_err;
static int g_rc = 1; /* 1 = not tried yet */
static pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

static struct kvm_cpuid_entry2 *cpuid_find(struct kvm_cpuid2 *c, uint32_t fn, uint32_t idx)
{
    for (uint32_t i = 0; i < c->nent; i++)
        if (c->entries[i].function == fn &&
            (!(c->entries[i].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) || c->entries[i].index == idx))
            return &c->entries[i];
    return NULL;
}

/* Guests get XCR0 = x87|SSE|AVX, plus AVX-512 state when CPUID advertises
 * AVX-512F (glibc picks AVX-512 routines from CPUID, and they need it enabled).
 * Leaf 0xD is trimmed to the same set so CPUID and XCR0 never disagree. */
static int cpuid_fixup(struct kvm_cpuid2 *c, uint64_t *xcr0, struct vmm_err *err)
{
    struct kvm_cpuid_entry2 *l1 = cpuid_find(c, 1, 0);
    struct kvm_cpuid_entry2 *l7 = cpuid_find(c, 7, 0);
    struct kvm_cpuid_entry2 *ld = cpuid_find(c, 0xd, 0);
    if (!l1) return vmm_fail(err, -ENOTSUP, "KVM_GET_SUPPORTED_CPUID", "no CPUID leaf 1");
    if (!ld || !(l1->ecx & (1u << 26))) {
        /* PVM's supported CPUID omits XSAVE, and KVM then refuses CR4.OSXSAVE
         * and XCR0. PVM shows guest CPL3 code the host's CPUID anyway (with
         * OSXSAVE set on some hosts, clear on others) and runs it with the
         * host's XCR0; KVM_GET_XSAVE2 saves that full state. test_vmm checks
         * the guest's view is consistent and that vector registers survive
         * a fork. */
        l1->ecx &= ~((1u << 26) | (1u << 27) | (1u << 28));
        *xcr0 = 0;
        return 0;
    }
    uint64_t sup = ld->eax | ((uint64_t)ld->edx << 32);
    uint64_t want = XCR0_X87 | XCR0_SSE | XCR0_AVX;
    if ((sup & want) != want)
        return vmm_fail(err, -ENOTSUP, "KVM_GET_SUPPORTED_CPUID", "AVX state not supported (xcr0 mask %#llx)",
                        (unsigned long long)sup);
    if (l7 && (l7->ebx & (1u << 16)) && (sup & XCR0_AVX512) == XCR0_AVX512)
        want |= XCR0_AVX512;
    ld->eax = (uint32_t)want;
    ld->edx = (uint32_t)(want >> 32);
    l1->ecx |= 1u << 27; /* OSXSAVE: the VMM sets CR4.OSXSAVE */
    /* Drop the sub-leaves of state components the guest does not get. */
    for (uint32_t i = 0; i < c->nent; i++) {
        struct kvm_cpuid_entry2 *e = &c->entries[i];
        if (e->function == 0xd && e->index >= 2 && e->index < 63 && !(want & (1ull << e->index)))
            e->eax = e->ebx = e->ecx = e->edx = 0;
    }
    *xcr0 = want;
    return 0;
}

static int global_init(struct vmm_err *err)
{
    int rc, vm = -1, vcpu = -1;
    g.fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);
    if (g.fd < 0)
        return vmm_fail(err, -errno, "open", "/dev/kvm: %s", strerror(errno));
    int api = ioctl(g.fd, KVM_GET_API_VERSION, 0);
    if (api != KVM_API_VERSION) {
        rc = vmm_fail(err, -ENOTSUP, "KVM_GET_API_VERSION", "KVM API version %d, need %d", api, KVM_API_VERSION);
        goto close_kvm;
    }
    g.vcpu_mmap_size = ioctl(g.fd, KVM_GET_VCPU_MMAP_SIZE, 0);
    if (g.vcpu_mmap_size < (int)sizeof(struct kvm_run)) {
        rc = vmm_fail(err, -ENOTSUP, "KVM_GET_VCPU_MMAP_SIZE", "bad vcpu mmap size %d", g.vcpu_mmap_size);
        goto close_kvm;
    }
    g.cap_immediate_exit = ioctl(g.fd, KVM_CHECK_EXTENSION, KVM_CAP_IMMEDIATE_EXIT) > 0;
    g.cap_readonly_mem = ioctl(g.fd, KVM_CHECK_EXTENSION, KVM_CAP_READONLY_MEM) > 0;
    g.cap_xcrs = ioctl(g.fd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS) > 0;
    g.cap_tsc_khz = ioctl(g.fd, KVM_CHECK_EXTENSION, KVM_CAP_GET_TSC_KHZ) > 0;
    g.is_pvm = access("/sys/module/kvm_pvm", F_OK) == 0;
    if (!g.cap_immediate_exit || !g.cap_readonly_mem || !g.cap_xcrs) {
        rc = vmm_fail(err, -ENOTSUP, "KVM_CHECK_EXTENSION",
                      "missing capability (immediate_exit=%d readonly_mem=%d xcrs=%d)",
                      g.cap_immediate_exit, g.cap_readonly_mem, g.cap_xcrs);
        goto close_kvm;
    }

    size_t csz = sizeof(struct kvm_cpuid2) + CPUID_MAX * sizeof(struct kvm_cpuid_entry2);
    g.cpuid = calloc(1, csz);
    if (!g.cpuid) { rc = vmm_fail(err, -ENOMEM, "calloc", "cpuid"); goto close_kvm; }
    g.cpuid->nent = CPUID_MAX;
    if (ioctl(g.fd, KVM_GET_SUPPORTED_CPUID, g.cpuid) < 0) {
        rc = vmm_fail(err, -errno, "KVM_GET_SUPPORTED_CPUID", "%s", strerror(errno));
        goto free_cpuid;
    }
    rc = cpuid_fixup(g.cpuid, &g.xcr0, err);
    if (rc) goto free_cpuid;

    /* A throwaway VM answers the per-VM/per-vCPU questions. */
    vm = ioctl(g.fd, KVM_CREATE_VM, 0);
    if (vm < 0) { rc = vmm_fail(err, -errno, "KVM_CREATE_VM", "%s", strerror(errno)); goto free_cpuid; }
    int x2 = ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2);
    g.cap_xsave2 = x2 > 0;
    g.xsave_size = x2 > (int)sizeof(struct kvm_xsave) ? x2 : (int)sizeof(struct kvm_xsave);
    vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) { rc = vmm_fail(err, -errno, "KVM_CREATE_VCPU", "%s", strerror(errno)); goto close_vm; }
    int khz = ioctl(vcpu, KVM_GET_TSC_KHZ, 0);
    if (khz <= 0) { rc = vmm_fail(err, khz < 0 ? -errno : -ENOTSUP, "KVM_GET_TSC_KHZ", "no TSC frequency"); goto close_vcpu; }
    g.tsc_khz = (uint64_t)khz;
    rc = 0;
close_vcpu:
    close(vcpu);
close_vm:
    close(vm);
    if (rc == 0) return 0;
free_cpuid:
    free(g.cpuid);
    g.cpuid = NULL;
close_kvm:
    close(g.fd);
    g.fd = -1;
    return rc;
}

const struct kvm_global *kvm_global(struct vmm_err *err)
{
    pthread_mutex_lock(&g_lock);
    if (g_rc == 1) {
        memset(&g_err, 0, sizeof g_err);
        g_rc = global_init(&g_err);
    }
    int rc = g_rc;
    pthread_mutex_unlock(&g_lock);
    if (rc) {
        if (err) *err = g_err;
        return NULL;
    }
    return &g;
}

int vmm_probe(struct vmm_probe_info *out, struct vmm_err *err)
{
    const struct kvm_global *k = kvm_global(err);
    if (!k) return err ? err->code : -ENODEV;
    memset(out, 0, sizeof *out);
    out->kvm_api_version = ioctl(k->fd, KVM_GET_API_VERSION, 0);
    out->vcpu_mmap_size = k->vcpu_mmap_size;
    out->tsc_khz = k->tsc_khz;
    out->cap_immediate_exit = k->cap_immediate_exit;
    out->cap_readonly_mem = k->cap_readonly_mem;
    out->cap_xsave2 = k->cap_xsave2;
    out->cap_xcrs = k->cap_xcrs;
    out->is_pvm = k->is_pvm;
    return 0;
}

/* One bare VM: create, one RAM slot, a vCPU with its run mapping and CPUID, teardown.
 * *create_ns gets the time up to the end of KVM_SET_CPUID2 (the part a fork waits for;
 * forkbox tears its VMs down off the request path). */
static int floor_once(const struct kvm_global *k, uint64_t ram_size, uint64_t *create_ns,
                      struct vmm_err *err)
{
    int rc = 0;
    uint64_t t0 = vmm_now_ns();
    int vm = ioctl(k->fd, KVM_CREATE_VM, 0);
    if (vm < 0) return vmm_fail(err, -errno, "KVM_CREATE_VM", "%s", strerror(errno));
    void *ram = mmap(NULL, ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (ram == MAP_FAILED) { rc = vmm_fail(err, -errno, "mmap", "ram"); goto close_vm; }
    struct kvm_userspace_memory_region r = { .slot = 0, .guest_phys_addr = 0,
        .memory_size = ram_size, .userspace_addr = (uintptr_t)ram };
    if (ioctl(vm, KVM_SET_USER_MEMORY_REGION, &r) < 0) {
        rc = vmm_fail(err, -errno, "KVM_SET_USER_MEMORY_REGION", "%s", strerror(errno));
        goto unmap_ram;
    }
    int vcpu = ioctl(vm, KVM_CREATE_VCPU, 0);
    if (vcpu < 0) { rc = vmm_fail(err, -errno, "KVM_CREATE_VCPU", "%s", strerror(errno)); goto unmap_ram; }
    void *run = mmap(NULL, (size_t)k->vcpu_mmap_size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpu, 0);
    if (run == MAP_FAILED) { rc = vmm_fail(err, -errno, "mmap", "kvm_run"); goto close_vcpu; }
    if (ioctl(vcpu, KVM_SET_CPUID2, k->cpuid) < 0)
        rc = vmm_fail(err, -errno, "KVM_SET_CPUID2", "%s", strerror(errno));
    *create_ns = vmm_now_ns() - t0;
    munmap(run, (size_t)k->vcpu_mmap_size);
close_vcpu:
    close(vcpu);
unmap_ram:
    munmap(ram, ram_size);
close_vm:
    close(vm);
    return rc;
}

int vmm_bench_floor(uint64_t ram_size, int n, uint64_t *out_ns, uint64_t *out_create_ns,
                    struct vmm_err *err)
{
    const struct kvm_global *k = kvm_global(err);
    if (!k) return err ? err->code : -ENODEV;
    if (n < 0 || ram_size < FB_RAM_MIN || ram_size > FB_RAM_MAX || ram_size % FB_HUGE_PAGE_SIZE)
        return vmm_fail(err, -EINVAL, "vmm_bench_floor", "bad arguments");
    for (int i = 0; i < n; i++) {
        uint64_t t0 = vmm_now_ns();
        uint64_t create_ns = 0;
        int rc = floor_once(k, ram_size, &create_ns, err);
        if (rc) return rc;
        out_ns[i] = vmm_now_ns() - t0;
        if (out_create_ns) out_create_ns[i] = create_ns;
    }
    return 0;
}
