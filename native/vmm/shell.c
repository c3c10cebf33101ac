/*
 * shell.c — VM shells and vm teardown. A shell is everything of a vm that does
 * not depend on what runs in it: VM fd, vCPU fd, kvm_run mapping, CPUID, and
 * the per-vm mailbox (fresh anonymous memory in slot 2). Pools pre-create
 * shells; boot and fork add the RAM and image slots.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "internal.h"

int shell_set_slot(struct vmm_shell *sh, uint32_t slot, uint32_t flags, uint64_t gpa,
                   uint64_t size, const void *host, struct vmm_err *err)
{
    struct kvm_userspace_memory_region r = { .slot = slot, .flags = flags, .guest_phys_addr = gpa,
        .memory_size = size, .userspace_addr = (uintptr_t)host };
    if (ioctl(sh->vm_fd, KVM_SET_USER_MEMORY_REGION, &r) < 0)
        return vmm_fail(err, -errno, "KVM_SET_USER_MEMORY_REGION", "slot %u: %s", slot, strerror(errno));
    return 0;
}

static void shell_init(struct vmm_shell *sh)
{
    memset(sh, 0, sizeof *sh);
    sh->vm_fd = sh->vcpu_fd = -1;
}

int shell_create(struct vmm_shell *sh, struct vmm_err *err)
{
    int rc;
    const struct kvm_global *k = kvm_global(err);
    shell_init(sh);
    if (!k) return err ? err->code : -ENODEV;
    sh->vm_fd = ioctl(k->fd, KVM_CREATE_VM, 0);
    if (sh->vm_fd < 0) return vmm_fail(err, -errno, "KVM_CREATE_VM", "%s", strerror(errno));
    sh->vcpu_fd = ioctl(sh->vm_fd, KVM_CREATE_VCPU, 0);
    if (sh->vcpu_fd < 0) { rc = vmm_fail(err, -errno, "KVM_CREATE_VCPU", "%s", strerror(errno)); goto close_vm; }
    sh->run_size = (size_t)k->vcpu_mmap_size;
    sh->run = mmap(NULL, sh->run_size, PROT_READ | PROT_WRITE, MAP_SHARED, sh->vcpu_fd, 0);
    if (sh->run == MAP_FAILED) { rc = vmm_fail(err, -errno, "mmap", "kvm_run: %s", strerror(errno)); goto close_vcpu; }
    if (ioctl(sh->vcpu_fd, KVM_SET_CPUID2, k->cpuid) < 0) {
        rc = vmm_fail(err, -errno, "KVM_SET_CPUID2", "%s", strerror(errno));
        goto unmap_run;
    }
    /* MAP_NORESERVE: 64 MiB of address space, only the pages the guest or
     * host touch cost memory. MAP_PRIVATE anonymous: zero, never shared. */
    sh->mailbox = mmap(NULL, FB_MAILBOX_SIZE, PROT_READ | PROT_WRITE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (sh->mailbox == MAP_FAILED) { rc = vmm_fail(err, -errno, "mmap", "mailbox: %s", strerror(errno)); goto unmap_run; }
    rc = shell_set_slot(sh, VMM_SLOT_MAILBOX, 0, FB_MAILBOX_BASE, FB_MAILBOX_SIZE, sh->mailbox, err);
    if (rc) goto unmap_mailbox;
    return 0;
unmap_mailbox:
    munmap(sh->mailbox, FB_MAILBOX_SIZE);
unmap_run:
    munmap(sh->run, sh->run_size);
close_vcpu:
    close(sh->vcpu_fd);
close_vm:
    close(sh->vm_fd);
    shell_init(sh);
    return rc;
}

int shell_bind(struct vmm_shell *sh, struct vmm_snapshot *s, uint8_t **ram, struct vmm_err *err)
{
    /* MAP_PRIVATE: reads share the page cache of the memory file, the first
     * write to a page copies it for this vm only. NORESERVE: a fork costs the
     * pages it writes, not its RAM size. */
    const struct vmm_snapshot *base = s->root ? s->root : s;
    uint8_t *m = mmap(NULL, s->ram_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, base->mem_fd, 0);
    if (m == MAP_FAILED) return vmm_fail(err, -errno, "mmap", "ram: %s", strerror(errno));
    int rc = s->root ? snapshot_overlay(s, m, err) : 0;
    if (!rc) rc = shell_set_slot(sh, VMM_SLOT_RAM, 0, 0, s->ram_size, m, err);
    if (!rc && s->image)
        rc = shell_set_slot(sh, VMM_SLOT_IMAGE, KVM_MEM_READONLY, FB_IMAGE_BASE, s->image_map_size, s->image, err);
    if (rc) {
        /* The slot may already point at m: the caller destroys this shell. */
        sh->ram = m;
        sh->ram_size = s->ram_size;
        return rc;
    }
    *ram = m;
    return 0;
}

/* The VM goes first (vCPU fd, then the kvm_run mapping that pins it, then the
 * VM fd: the last reference), so unmapping guest memory afterwards no longer
 * runs KVM's MMU notifiers for it. vmm_vm_destroy unmaps the RAM after this. */
void shell_destroy(struct vmm_shell *sh)
{
    if (sh->vcpu_fd >= 0) close(sh->vcpu_fd);
    if (sh->run) munmap(sh->run, sh->run_size);
    if (sh->vm_fd >= 0) close(sh->vm_fd);
    if (sh->ram) munmap(sh->ram, sh->ram_size);
    if (sh->bound) snapshot_put(sh->bound);
    if (sh->mailbox) munmap(sh->mailbox, FB_MAILBOX_SIZE);
    shell_init(sh);
}

struct vmm_vm *vm_alloc(void)
{
    struct vmm_vm *vm = calloc(1, sizeof *vm);
    if (!vm) return NULL;
    vm->ram_fd = -1;
    shell_init(&vm->sh);
    pthread_mutex_init(&vm->lock, NULL);
    return vm;
}

/* The image slot must be a whole number of 2 MiB pages (the guest maps it with
 * 2 MiB pages). The file is mapped over the first part of an anonymous
 * read-only reservation, so the tail past EOF (rounded to 4 KiB) is zero
 * memory, never a file page beyond EOF that would SIGBUS a host access. */
int image_map(int fd, uint64_t size, const uint8_t **out, uint64_t *map_size, struct vmm_err *err)
{
    if (size == 0 || size > FB_IMAGE_MAX)
        return vmm_fail(err, -EINVAL, "image", "image size %llu out of range (1..%llu)",
                        (unsigned long long)size, (unsigned long long)FB_IMAGE_MAX);
    uint64_t total = (size + FB_HUGE_PAGE_SIZE - 1) & ~(FB_HUGE_PAGE_SIZE - 1);
    uint64_t file_part = (size + FB_PAGE_SIZE - 1) & ~(FB_PAGE_SIZE - 1);
    uint8_t *base = mmap(NULL, total, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return vmm_fail(err, -errno, "mmap", "image reservation: %s", strerror(errno));
    if (mmap(base, file_part, PROT_READ, MAP_PRIVATE | MAP_FIXED, fd, 0) == MAP_FAILED) {
        int e = errno;
        munmap(base, total);
        return vmm_fail(err, -e, "mmap", "image file: %s", strerror(e));
    }
    *out = base;
    *map_size = total;
    return 0;
}

void vmm_vm_destroy(struct vmm_vm *vm)
{
    if (!vm) return;
    shell_destroy(&vm->sh);
    if (vm->ram) munmap(vm->ram, vm->ram_size);   /* the shared ranges' mappings with it */
    shm_ranges_free(&vm->shm);
    if (vm->ram_fd >= 0) close(vm->ram_fd);
    if (vm->image && !vm->image_shared) munmap((void *)vm->image, vm->image_map_size);
    free(vm->image_path);
    if (vm->snap) snapshot_put(vm->snap);
    pthread_mutex_destroy(&vm->lock);
    free(vm);
    stat_add(ST_LIVE, -1);
    stat_add(ST_DESTROYED, 1);
}
