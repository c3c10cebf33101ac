/*
 * vm.c — booting a vm from a static ELF: fresh sparse RAM (a memfd mapped
 * MAP_SHARED, so the snapshot writer can find its data with SEEK_DATA), the
 * optional read-only image slot, the system area (layout.c), boot info, and
 * the initial CPL3 long-mode vCPU state. Booting happens once per template;
 * forks (fork.c) never come through here.
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
