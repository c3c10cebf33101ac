/*
 * internal.h — private types of the VMM library (not part of vmm.h).
 *
 * A vm is a *shell* (VM fd, vCPU fd, kvm_run mapping, CPUID, mailbox slot:
 * everything independent of what runs in it) plus its RAM and image slots.
 * The process-wide KVM handle, supported CPUID and MSR list are created once.
 */
#ifndef FORKBOX_VMM_INTERNAL_H
#define FORKBOX_VMM_INTERNAL_H

#include <linux/kvm.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "abi.h"
#include "vmm.h"

#define VMM_SLOT_RAM     0u
#define VMM_SLOT_IMAGE   1u
#define VMM_SLOT_MAILBOX 2u

/* A 2 MiB page mapped in the page tables with no memory slot behind it: any
 * access is an MMIO exit, reported as VMM_CRASH_MMIO. Only vms booted with
 * vmm_boot_config.test_mmio_hole get its PTE (the test guests); production
 * guests have none, so an access there is a #PF. */
#define VMM_MMIO_HOLE (FB_MAILBOX_BASE + FB_MAILBOX_SIZE)

/* System area (supervisor-only 2 MiB page at FB_SYSTEM_BASE). */
#define SYS_PML4      (FB_SYSTEM_BASE + 0x0000)
#define SYS_PDPT      (FB_SYSTEM_BASE + 0x1000)
#define SYS_PD0       (FB_SYSTEM_BASE + 0x2000)   /* 4 PDs: 0..4 GiB */
#define SYS_GDT       (FB_SYSTEM_BASE + 0x6000)
#define SYS_IDT       (FB_SYSTEM_BASE + 0x7000)
#define SYS_TSS       (FB_SYSTEM_BASE + 0x8000)   /* 0x68 bytes + 8 KiB I/O bitmap + 1 */
#define SYS_STUBS     (FB_SYSTEM_BASE + 0xB000)   /* 32 stubs of 16 bytes */
#define SYS_STACK_LOW (FB_SYSTEM_BASE + 0xC000)
#define SYS_STACK_TOP (FB_SYSTEM_BASE + 0x10000)
#define SYS_STUB_SIZE 16u
#define SYS_TSS_IOMAP 0x68u
#define SYS_TSS_LIMIT (SYS_TSS_IOMAP + 8192u)

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x1b
#define SEL_UCODE 0x23
#define SEL_TSS   0x28

struct kvm_global {
    int fd;
    int vcpu_mmap_size;
    int cap_immediate_exit, cap_readonly_mem, cap_xsave2, cap_xcrs, cap_tsc_khz;
    uint64_t tsc_khz;
    int xsave_size;              /* bytes for KVM_GET_XSAVE(2) */
    uint64_t xcr0;               /* x87|SSE|AVX(|AVX-512) per CPUID; 0 = no XSAVE for guests */
    struct kvm_cpuid2 *cpuid;    /* fixed-up supported CPUID */
    int is_pvm;
};

/* Returns the process-wide KVM handle (opened once), or NULL with err set. */
const struct kvm_global *kvm_global(struct vmm_err *err);

struct vmm_shell {
    int vm_fd, vcpu_fd;
    struct kvm_run *run;
    size_t run_size;
    uint8_t *mailbox;            /* FB_MAILBOX_SIZE, anonymous, slot 2 */
    /* Pre-bound shells (pool bound to a snapshot): RAM mapped, slots 0/1 set. */
    struct vmm_snapshot *bound;  /* referenced */
    uint8_t *ram;
    uint64_t ram_size;
};

/* A range of guest RAM [gpa, gpa+len) that is the object's [off, off+len) (shm.c). */
struct shm_range { uint64_t gpa, len, off; struct vmm_shm *shm; /* referenced */ };
/* A vm's (or a child snapshot's) ranges: sorted by gpa, disjoint. */
struct shm_ranges { struct shm_range *v; uint32_t n, cap; };
#define VMM_SHM_RANGES_MAX 1024u   /* per vm: each is a host mapping (VMA), and the process has
                                      vm.max_map_count (65,530 by default) for all vms */

struct vmm_vm {
    struct vmm_shell sh;
    uint8_t *ram;                /* host mapping of slot 0 */
    uint64_t ram_size;
    int ram_fd;                  /* boot vms: memfd; forks: -1 (mapping of the snapshot fd) */
    const uint8_t *image;        /* slot 1 host mapping (owned unless image_shared) */
    uint64_t image_size, image_map_size;
    int image_shared;            /* mapping belongs to the snapshot */
    char *image_path;            /* boot vms: for the state file */
    uint64_t image_mtime_ns;
    struct vmm_snapshot *snap;   /* forks: the snapshot (referenced) */
    const struct kvm_cpuid2 *cpuid; /* the CPUID this vm was given (saved in snapshots) */
    int booted;                  /* 1 = from ELF, 0 = fork */
    int started;                 /* first run done */
    int dead;                    /* a non-OK outcome happened */
    int pending_io;              /* stopped at a doorbell whose `out` is not completed yet */
    uint32_t last_status;        /* FB_ST_* of the last OK doorbell (recycle.c wants DONE) */
    uint64_t seq;
    uint64_t tsc_khz;
    uint64_t out_cap, err_cap;   /* caps of the current request */
    struct shm_ranges shm;       /* host shared memory mapped over RAM (shm.c) */
    int had_shm;                 /* ever shared or unshared memory: never recycled */
    /* kick */
    pthread_mutex_t lock;
    int running;
    pthread_t thread;
    atomic_int killed;
};

/* A run of pages of a child snapshot's memory file laid over its root's. */
struct snap_run { uint64_t off, len; };

struct vmm_snapshot {
    atomic_int refs;             /* the opener's + one per live fork (+ one per child) */
    uint64_t id;                 /* roots: checksum of the state header; children name their root by it */
    /* Children (derive.c): mem_fd holds only `runs`, laid over root's memory file. */
    struct vmm_snapshot *root;   /* referenced; NULL for a root */
    struct snap_run *runs;
    uint32_t n_runs;
    struct shm_ranges shm;       /* children made by derive: the vm's shared ranges, mapped into every
                                    fork after its RAM (in memory only; the files hold the bytes) */
    uint64_t pages;              /* pages in runs */
    int mem_fd, image_fd;
    uint64_t ram_size;
    char *image_path;
    uint64_t image_mtime_ns;
    uint64_t seq;
    uint32_t last_status;        /* in memory only: FB_ST_* of the doorbell it was taken at (CALL: forks
                                    take only FB_REQ_ANSWER first); 0 when opened from a file */
    int cpuid_same;              /* CPUID equals the shells' (no per-fork KVM_SET_CPUID2) */
    const uint8_t *image;        /* shared read-only image mapping for every fork */
    const uint8_t *_Atomic clean; /* roots: read-only shared mapping of mem_fd, made by the first recycle */
    uint64_t image_size, image_map_size;
    uint64_t tsc_khz;
    struct kvm_regs regs;
    struct kvm_sregs sregs;
    struct kvm_vcpu_events events;
    struct kvm_xcrs xcrs;
    struct kvm_xsave *xsave;     /* xsave_size bytes */
    uint32_t xsave_size;
    struct kvm_msrs *msrs;
    struct kvm_cpuid2 *cpuid;
};

/* err.c */
int vmm_fail(struct vmm_err *err, int code, const char *op, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
uint64_t vmm_now_ns(void);

/* shell.c */
int shell_create(struct vmm_shell *sh, struct vmm_err *err);
/* Maps `s`'s RAM privately and sets slots 0 (RAM) and 1 (image) of the shell. */
int shell_bind(struct vmm_shell *sh, struct vmm_snapshot *s, uint8_t **ram, struct vmm_err *err);
void shell_destroy(struct vmm_shell *sh);
int shell_set_slot(struct vmm_shell *sh, uint32_t slot, uint32_t flags, uint64_t gpa,
                   uint64_t size, const void *host, struct vmm_err *err);
struct vmm_vm *vm_alloc(void);
int image_map(int fd, uint64_t size, const uint8_t **out, uint64_t *map_size, struct vmm_err *err);

/* layout.c */
int layout_build(uint8_t *ram, uint64_t ram_size, uint64_t image_map_size, int mmio_hole, struct vmm_err *err);
void layout_initial_sregs(struct kvm_sregs *s, int osxsave);

/* elf.c */
int elf_load(const char *path, uint8_t *ram, uint64_t ram_size, uint64_t *entry, struct vmm_err *err);

/* fork.c: where fork time goes, summed over all forks (ns) */
enum fork_phase { FP_SHELL, FP_SLOTS, FP_XSAVE, FP_SREGS, FP_REGS, FP_MSRS, FP_EVENTS, FP__N };
extern _Atomic uint64_t fork_phase_ns[FP__N];
/* The snapshot's vCPU state (XCRS, XSAVE, SREGS, REGS, MSRs, events) into vm's vCPU. */
int fork_restore(struct vmm_vm *vm, const struct vmm_snapshot *s, struct vmm_err *err);

/* recycle.c: tests set it to take the /proc/self/pagemap read path */
extern int recycle_force_pread;

/* pool.c */
int pool_take(struct vmm_pool *p, struct vmm_shell *out);
void pool_get(struct vmm_pool *p);   /* vmm_pool_destroy drops it */

/* stats.c */
enum stat_id { ST_LIVE, ST_CREATED, ST_DESTROYED, ST_FORKS, ST_BOOTS, ST_RUNS, ST_EXITS,
               ST_DOORBELLS, ST_CRASHES, ST_TIMEOUTS, ST_KICKS, ST_RECYCLES, ST__N };
void stat_add(enum stat_id id, int64_t v);

/* snapshot.c */
uint64_t fnv1a64(uint64_t h, const void *p, size_t n);
void snapshot_put(struct vmm_snapshot *s);
int complete_pending_io(struct vmm_vm *vm, struct vmm_err *err);
int read_msrs(int vcpu, struct kvm_msrs **out, struct vmm_err *err);

/* shm.c */
void shm_get(struct vmm_shm *s);
void shm_ranges_free(struct shm_ranges *r);
int shm_ranges_copy(struct shm_ranges *dst, const struct shm_ranges *src, struct vmm_err *err);
/* Maps every range over `ram` (MAP_SHARED|MAP_FIXED). */
int shm_ranges_map(uint8_t *ram, const struct shm_ranges *r, struct vmm_err *err);

/* derive.c */
int vcpu_state_capture(struct vmm_vm *vm, struct vmm_snapshot *s, struct vmm_err *err);
/* Maps a child's runs over `ram` (a private mapping of its root's memory file). */
int snapshot_overlay(const struct vmm_snapshot *s, uint8_t *ram, struct vmm_err *err);
void child_free(struct vmm_snapshot *s);   /* runs + the root reference */

#endif /* FORKBOX_VMM_INTERNAL_H */
