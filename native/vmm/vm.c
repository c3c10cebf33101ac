/*
 * vm.c — booting a vm from a static ELF: fresh sparse RAM (a memfd mapped
 * MAP_SHARED, so the snapshot writer can find its data with SEEK_DATA), the
 * optional read-only image slot, the system area (layout.c), boot info, and
 * the initial CPL3 long-mode vCPU state. Booting happens once per template;
 * forks (fork.c) never come through here. Also: a vm's private memory, read
 * from /proc/self/pagemap (for the engine's memory budget).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static int set_initial_state(struct vmm_vm *vm, uint64_t entry, struct vmm_err *err)
{
    const struct kvm_global *k = kvm_global(err);
    if (!k) return err ? err->code : -ENODEV;
    struct kvm_sregs sregs;
    if (ioctl(vm->sh.vcpu_fd, KVM_GET_SREGS, &sregs) < 0)
        return vmm_fail(err, -errno, "KVM_GET_SREGS", "%s", strerror(errno));
    layout_initial_sregs(&sregs, k->xcr0 != 0);
    if (ioctl(vm->sh.vcpu_fd, KVM_SET_SREGS, &sregs) < 0)
        return vmm_fail(err, -errno, "KVM_SET_SREGS", "%s", strerror(errno));
    struct kvm_xcrs xcrs = { .nr_xcrs = 1, .xcrs = { { .xcr = 0, .value = k->xcr0 } } };
    if (k->xcr0 && ioctl(vm->sh.vcpu_fd, KVM_SET_XCRS, &xcrs) < 0)
        return vmm_fail(err, -errno, "KVM_SET_XCRS", "xcr0 %#llx: %s", (unsigned long long)k->xcr0, strerror(errno));
    struct kvm_regs regs = { .rip = entry, .rsp = FB_RUNTIME_STACK_TOP, .rflags = 0x2 };
    if (ioctl(vm->sh.vcpu_fd, KVM_SET_REGS, &regs) < 0)
        return vmm_fail(err, -errno, "KVM_SET_REGS", "%s", strerror(errno));
    return 0;
}

static int open_image(struct vmm_vm *vm, const char *path, struct vmm_err *err)
{
    int rc, fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vmm_fail(err, -errno, "open", "image %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) { rc = vmm_fail(err, -errno, "fstat", "image %s", path); goto close_fd; }
    if (!S_ISREG(st.st_mode)) { rc = vmm_fail(err, -EINVAL, "image", "%s: not a regular file", path); goto close_fd; }
    rc = image_map(fd, (uint64_t)st.st_size, &vm->image, &vm->image_map_size, err);
    if (rc) goto close_fd;
    vm->image_size = (uint64_t)st.st_size;
    vm->image_mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
    vm->image_path = realpath(path, NULL);
    if (!vm->image_path) rc = vmm_fail(err, -errno, "realpath", "image %s", path);
close_fd:
    close(fd); /* the mapping keeps the file */
    return rc;
}

int vmm_vm_boot(const struct vmm_boot_config *cfg, struct vmm_vm **out, struct vmm_err *err)
{
    int rc;
    if (!cfg || !out) return vmm_fail(err, -EINVAL, "vmm_vm_boot", "missing argument");
    if (cfg->ram_size < FB_RAM_MIN || cfg->ram_size > FB_RAM_MAX || cfg->ram_size % FB_HUGE_PAGE_SIZE)
        return vmm_fail(err, -EINVAL, "vmm_vm_boot", "ram_size %llu: must be %llu..%llu MiB in 2 MiB steps",
                        (unsigned long long)cfg->ram_size, FB_RAM_MIN >> 20, FB_RAM_MAX >> 20);
    if (cfg->args_len > FB_BOOT_ARGS_MAX || (cfg->args_len && !cfg->args))
        return vmm_fail(err, -E2BIG, "vmm_vm_boot", "boot args: %u bytes, at most %llu", cfg->args_len,
                        (unsigned long long)FB_BOOT_ARGS_MAX);
    const struct kvm_global *k = kvm_global(err);
    if (!k) return err ? err->code : -ENODEV;
    struct vmm_vm *vm = vm_alloc();
    if (!vm) return vmm_fail(err, -ENOMEM, "calloc", "vm");
    vm->booted = 1;
    vm->cpuid = k->cpuid;
    vm->ram_size = cfg->ram_size;
    vm->tsc_khz = k->tsc_khz;
    stat_add(ST_LIVE, 1);
    stat_add(ST_CREATED, 1);
    rc = shell_create(&vm->sh, err);
    if (rc) goto fail;
    vm->ram_fd = memfd_create("forkbox-ram", MFD_CLOEXEC);
    if (vm->ram_fd < 0) { rc = vmm_fail(err, -errno, "memfd_create", "%s", strerror(errno)); goto fail; }
    if (ftruncate(vm->ram_fd, (off_t)vm->ram_size) < 0) { rc = vmm_fail(err, -errno, "ftruncate", "ram"); goto fail; }
    vm->ram = mmap(NULL, vm->ram_size, PROT_READ | PROT_WRITE, MAP_SHARED, vm->ram_fd, 0);
    if (vm->ram == MAP_FAILED) { vm->ram = NULL; rc = vmm_fail(err, -errno, "mmap", "ram: %s", strerror(errno)); goto fail; }
    if (cfg->image_path) {
        rc = open_image(vm, cfg->image_path, err);
        if (rc) goto fail;
    }
    rc = layout_build(vm->ram, vm->ram_size, vm->image_map_size, cfg->test_mmio_hole, err);
    if (rc) goto fail;
    uint64_t entry;
    rc = elf_load(cfg->guest_elf, vm->ram, vm->ram_size, &entry, err);
    if (rc) goto fail;

    struct fb_boot_info *bi = (struct fb_boot_info *)(vm->ram + FB_BOOT_INFO_ADDR);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    bi->magic = FB_BOOT_MAGIC;
    bi->abi_version = FB_ABI_VERSION;
    bi->args_len = cfg->args_len;
    bi->ram_size = vm->ram_size;
    bi->image_base = vm->image ? FB_IMAGE_BASE : 0;
    bi->image_size = vm->image_size;
    bi->mailbox_base = FB_MAILBOX_BASE;
    bi->mailbox_size = FB_MAILBOX_SIZE;
    bi->tsc_khz = vm->tsc_khz;
    bi->wall_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
    if (cfg->args_len) memcpy(bi->args, cfg->args, cfg->args_len);

    rc = shell_set_slot(&vm->sh, VMM_SLOT_RAM, 0, 0, vm->ram_size, vm->ram, err);
    if (rc) goto fail;
    if (vm->image) {
        rc = shell_set_slot(&vm->sh, VMM_SLOT_IMAGE, KVM_MEM_READONLY, FB_IMAGE_BASE, vm->image_map_size,
                            vm->image, err);
        if (rc) goto fail;
    }
    rc = set_initial_state(vm, entry, err);
    if (rc) goto fail;
    stat_add(ST_BOOTS, 1);
    *out = vm;
    return 0;
fail:
    vmm_vm_destroy(vm);
    return rc;
}

/* pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst) */
#define PM_PRESENT (1ull << 63)
#define PM_SWAPPED (1ull << 62)
#define PM_FILE    (1ull << 61)   /* file page or shared anonymous */

/* Adds the pages of [addr, addr+len) that count as private to *bytes. */
static int pagemap_count(int fd, const uint8_t *addr, uint64_t len, int need_private, uint64_t *bytes,
                         struct vmm_err *err)
{
    const uint64_t page = 4096;
    uint64_t buf[1024];
    uint64_t first = (uint64_t)(uintptr_t)addr / page, n = len / page;
    for (uint64_t done = 0; done < n;) {
        uint64_t want = n - done < 1024 ? n - done : 1024;
        ssize_t got = pread(fd, buf, want * 8, (off_t)((first + done) * 8));
        if (got < 0) return vmm_fail(err, -errno, "pread", "/proc/self/pagemap: %s", strerror(errno));
        if (got < 8) return vmm_fail(err, -EIO, "pread", "/proc/self/pagemap: short read");
        uint64_t k = (uint64_t)got / 8;
        for (uint64_t i = 0; i < k; i++) {
            uint64_t e = buf[i];
            if (!(e & (PM_PRESENT | PM_SWAPPED))) continue;
            if (need_private && (e & PM_FILE)) continue;
            *bytes += page;
        }
        done += k;
    }
    return 0;
}

int vmm_vm_private_bytes(struct vmm_vm *vm, uint64_t *out, struct vmm_err *err)
{
    if (!vm || !out) return vmm_fail(err, -EINVAL, "vmm_vm_private_bytes", "missing argument");
    int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vmm_fail(err, -errno, "open", "/proc/self/pagemap: %s", strerror(errno));
    uint64_t bytes = 0;
    /* A fork's RAM is a private mapping of the memory file: only its copies are its own. */
    int rc = vm->ram ? pagemap_count(fd, vm->ram, vm->ram_size, !vm->booted, &bytes, err) : 0;
    if (!rc && vm->sh.mailbox) rc = pagemap_count(fd, vm->sh.mailbox, FB_MAILBOX_SIZE, 0, &bytes, err);
    close(fd);
    if (!rc) *out = bytes;
    return rc;
}
