/*
 * vmm.h — the forkbox VMM as a plain C library.
 *
 * Objects: a *snapshot* (memory file + state file, opened read-only and shared
 * by every fork of it), a *vm* (one KVM VM with one vCPU: booted from a static
 * ELF at build time, or forked from a snapshot), a *pool* of pre-created VM
 * shells, *workers* (native threads that own vCPUs: every KVM_RUN of a vm
 * happens on the one worker it is bound to), and the *async* API on top of
 * them (jobs with C completion callbacks, and the reaper).
 *
 * Conventions: functions return 0 or -errno; `err` (may be NULL) receives the
 * failing operation and a message. Nothing here prints, exits or aborts on
 * guest input. Every guest-supplied length is bounds-checked.
 */
#ifndef FORKBOX_VMM_H
#define FORKBOX_VMM_H

#include <stddef.h>
#include <stdint.h>

#define VMM_MUST_CHECK __attribute__((warn_unused_result))

struct vmm_err {
    int code;            /* -errno */
    const char *op;      /* failing call, e.g. "KVM_SET_SREGS"; static string */
    char msg[160];
};

/* ---- probe ---------------------------------------------------------------- */
struct vmm_probe_info {
    int kvm_api_version;     /* KVM_GET_API_VERSION */
    int vcpu_mmap_size;
    uint64_t tsc_khz;        /* host TSC frequency used for guests */
    int cap_immediate_exit, cap_readonly_mem, cap_xsave2, cap_xcrs;
    int is_pvm;              /* best guess: kvm_pvm module loaded */
};
int vmm_probe(struct vmm_probe_info *out, struct vmm_err *err) VMM_MUST_CHECK;

/* Bare floor: KVM_CREATE_VM + one memory slot of ram_size + vCPU + CPUID, then
 * teardown, timed `n` times; durations in ns written to out_ns[n], and the
 * creation part alone (everything before teardown) to out_create_ns[n] unless NULL. */
int vmm_bench_floor(uint64_t ram_size, int n, uint64_t *out_ns, uint64_t *out_create_ns,
                    struct vmm_err *err) VMM_MUST_CHECK;

/* ---- exit reasons of a run -------------------------------------------------- */
enum vmm_outcome {
    VMM_OK = 0,          /* doorbell: the guest responded (status in resp) */
    VMM_CRASH_FAULT,     /* CPU exception reported by the fault stub */
    VMM_CRASH_IO,        /* I/O on a port other than the doorbell */
    VMM_CRASH_MMIO,      /* access to guest-physical memory with no slot */
    VMM_CRASH_SHUTDOWN,  /* triple fault */
    VMM_CRASH_HLT,
    VMM_CRASH_INTERNAL,  /* KVM_EXIT_INTERNAL_ERROR / FAIL_ENTRY / other */
    VMM_CRASH_PROTOCOL,  /* the guest broke the mailbox protocol (bad length, status) */
    VMM_TIMEOUT,         /* the run's deadline passed; the vm is dead */
    VMM_KILLED,          /* vmm_vm_kick() was called; the vm is dead */
};
const char *vmm_outcome_name(enum vmm_outcome o);

struct vmm_request {
    uint32_t kind;               /* FB_REQ_* */
    const void *payload;         /* copied to the mailbox REQ area */
    uint64_t payload_len;        /* <= FB_MB_REQ_SIZE */
    uint64_t out_cap, err_cap;   /* 0 = area size */
    uint64_t mem_limit;          /* 0 = no limit below RAM */
    uint64_t timeout_ns;         /* deadline, > 0: every run is finite (0 is refused, -EINVAL) */
    const uint8_t *entropy;      /* FB_ENTROPY_SIZE bytes, or NULL = fresh getrandom() */
};

/* A response points into the vm's mailbox: valid until the next run or the
 * vm's destruction. Lengths are already clamped to their areas. */
struct vmm_response {
    enum vmm_outcome outcome;
    uint32_t status;             /* FB_ST_* when outcome == VMM_OK */
    int32_t exit_code;
    uint32_t out_flags;
    const uint8_t *result; uint64_t result_len;
    const uint8_t *out;    uint64_t out_len;
    const uint8_t *err;    uint64_t err_len;
    /* crash detail */
    uint64_t fault_vector, fault_error, fault_rip, fault_cr2;
    uint32_t exit_reason;        /* raw KVM exit reason of the crash */
    uint32_t io_port;
    uint64_t mmio_addr;
    char detail[128];            /* human-readable reason */
    /* accounting */
    uint64_t arena_used, arena_peak;   /* as the guest reports them: informational only */
    uint64_t exits;              /* VM exits during this run */
    uint64_t run_ns;             /* wall time inside vmm_vm_run */
};

/* ---- snapshots ------------------------------------------------------------- */
struct vmm_snapshot;
/* Opens and validates (magic, version, sizes, checksum) a snapshot. The image
 * file named in the state file (absolute path) is opened too, and only if the
 * file opened lies inside image_dir (-EPERM otherwise); it and the memory file
 * must still have the size and mtime recorded at save (-ESTALE). */
int vmm_snapshot_open_in(const char *mem_path, const char *state_path, const char *image_dir,
                         struct vmm_snapshot **out, struct vmm_err *err) VMM_MUST_CHECK;
/* vmm_snapshot_open_in with the cache layout's image directory:
 * <cache>/templates/<key>/state accepts images under <cache>/images only. */
int vmm_snapshot_open(const char *mem_path, const char *state_path,
                      struct vmm_snapshot **out, struct vmm_err *err) VMM_MUST_CHECK;
/* Drops the opener's reference; live forks and bound pools hold their own,
 * so the files stay open (and forks keep working) until the last one goes. */
void vmm_snapshot_close(struct vmm_snapshot *s);
uint64_t vmm_snapshot_ram_size(const struct vmm_snapshot *s);

/* ---- vms ------------------------------------------------------------------ */
struct vmm_vm;

struct vmm_boot_config {
    uint64_t ram_size;           /* FB_RAM_MIN..FB_RAM_MAX, multiple of 2 MiB */
    const char *guest_elf;       /* static ELF linked inside [FB_RUNTIME_BASE, FB_RUNTIME_LIMIT) */
    const char *image_path;      /* read-only image file or NULL */
    const char *args;            /* boot args blob (see fb_boot_info.args) */
    uint32_t args_len;
    int test_mmio_hole;          /* tests only: map VMM_MMIO_HOLE (a 2 MiB page with no
                                    slot behind it) so the guest can provoke an MMIO exit.
                                    0 (production): no PTE, an access there is a #PF. */
};
/* Creates a VM with fresh (memfd) RAM, loads the ELF, builds page tables,
 * GDT/TSS/IDT, boot info; the first vmm_vm_run starts it. */
int vmm_vm_boot(const struct vmm_boot_config *cfg, struct vmm_vm **out,
                struct vmm_err *err) VMM_MUST_CHECK;

struct vmm_pool;
/* Forks `snap`: a shell from `pool` (or a new one when pool is NULL or empty)
 * + mmap(MAP_PRIVATE) of the memory file + state restore. The vm resumes at
 * the doorbell the snapshot was taken at. */
int vmm_fork(struct vmm_snapshot *snap, struct vmm_pool *pool,
             struct vmm_vm **out, struct vmm_err *err) VMM_MUST_CHECK;

/* Fills the request into the mailbox, runs the vCPU until the next doorbell,
 * crash, deadline or kick. A vm whose last response was a call (FB_ST_CALL, also
 * a fork of a child derived at one) takes only kind FB_REQ_ANSWER next (-EINVAL
 * otherwise; the vm stays usable). Must be called on the vm's own thread (every run
 * of one vm on the same thread: KVM ties a vCPU to the last thread that ran
 * it). After any outcome other than VMM_OK the vm is dead: runs fail -EIO.
 * Deadlines and kicks interrupt KVM_RUN with the realtime signal SIGRTMIN+3
 * (handler installed on the first run, no SA_RESTART; each running thread
 * gets a POSIX timer and unblocks that signal for itself). Every return of
 * KVM_RUN for a signal (-EINTR or KVM_EXIT_INTR) re-checks the clock against
 * the deadline and re-arms the one-shot timer, so no stray signal can switch
 * the deadline off. req->timeout_ns == 0 is refused with -EINVAL. */
int vmm_vm_run(struct vmm_vm *vm, const struct vmm_request *req,
               struct vmm_response *resp, struct vmm_err *err) VMM_MUST_CHECK;

/* The first run of a booted vm: runs to the guest's first doorbell
 * (status FB_ST_READY expected) without filling a request. timeout_ns > 0
 * (0 is refused with -EINVAL, as for vmm_vm_run). */
int vmm_vm_start(struct vmm_vm *vm, uint64_t timeout_ns, struct vmm_response *resp,
                 struct vmm_err *err) VMM_MUST_CHECK;

/* From any thread: ends the current (or next) run with VMM_KILLED. */
void vmm_vm_kick(struct vmm_vm *vm);

/* Snapshot a vm that is stopped at a doorbell: memory file + state file. */
int vmm_snapshot_save(struct vmm_vm *vm, const char *mem_path, const char *state_path,
                      struct vmm_err *err) VMM_MUST_CHECK;

/* Host memory the vm holds privately, in bytes: its RAM pages written since
 * the fork (copy-on-write copies; every resident page for a booted vm) plus
 * its resident mailbox pages, read from /proc/self/pagemap. Costs about 1 ms
 * per GiB of RAM: for vms kept between runs, not the one-shot path. Pages of
 * shared memory ranges are not counted (they are their object's). Not while
 * a run of the vm is in progress (the count would be stale, never unsafe). */
int vmm_vm_private_bytes(struct vmm_vm *vm, uint64_t *out, struct vmm_err *err) VMM_MUST_CHECK;

/* ---- recycling (recycle.c) ------------------------------------------------
 * A fork of a root snapshot whose last run ended OK with a DONE answer is put
 * back into the state of a fresh fork of that snapshot, in place: every RAM
 * page it holds privately gets the memory file's bytes back (copied into the
 * page, or dropped with MADV_DONTNEED when there are more than 8,192), every
 * mailbox page it touched is zeroed, the pending doorbell is completed and
 * the snapshot's vCPU state restored, the request sequence reset. Pages it
 * only read keep their host and shadow mappings, so the next run skips their
 * first-touch faults. Anything else (a booted vm, a fork of a child, a dead,
 * killed or exited vm, a written system area, a failing call) is refused and
 * leaves the vm dead: it is destroyed, never handed out half reset (so is a vm
 * stopped at a call: its last answer was not DONE). Not while
 * a run of the vm is in progress (on its worker: vmm_async_recycle). */
struct vmm_recycle_stats {
    uint64_t ram_pages;       /* private RAM pages found */
    uint64_t restored;        /* of those, copied back from the memory file (kept) */
    uint64_t dropped;         /* of those, dropped (more than the cap) */
    uint64_t mailbox_pages;   /* mailbox pages zeroed */
    uint64_t ns;              /* wall time of the reset */
};
int vmm_vm_recycle(struct vmm_vm *vm, struct vmm_recycle_stats *st, struct vmm_err *err) VMM_MUST_CHECK;
/* Isolation check (tests): RAM pages that differ from the snapshot's memory
 * file and resident mailbox pages that are not all zero. Reads all of RAM:
 * slow, never on the serving path. */
int vmm_vm_diff_snapshot(struct vmm_vm *vm, uint64_t *ram_diff, uint64_t *mailbox_nonzero,
                         struct vmm_err *err) VMM_MUST_CHECK;

/* KVM's own counters of the vm's vCPU since it was created (KVM_GET_STATS_FD):
 * exits it handled, including those that never reach the VMM, and page faults
 * fixed in the kernel (first touches under shadow paging). -ENOTSUP when the
 * kernel has no binary stats. */
struct vmm_kvm_stats { uint64_t exits, pf_fixed, pf_taken; };
int vmm_vm_kvm_stats(struct vmm_vm *vm, struct vmm_kvm_stats *out, struct vmm_err *err) VMM_MUST_CHECK;

/* ---- child snapshots (derive.c) -------------------------------------------
 * A live fork stopped at a doorbell becomes a snapshot of its own, holding the
 * vCPU state and only the pages that differ from its root template (copied to
 * a memfd). The vm is re-based onto it, so the vm and every fork of the child
 * share those pages copy-on-write. Children are flat: a child of a child names
 * the same root. The caller closes *out with vmm_snapshot_close. */
int vmm_snapshot_derive(struct vmm_vm *vm, struct vmm_snapshot **out, struct vmm_err *err) VMM_MUST_CHECK;
/* Pages a child holds (0 for a root). */
uint64_t vmm_snapshot_pages(const struct vmm_snapshot *s);
/* Writes a child: a sparse memory file with its pages only, and a checksummed
 * state file naming the root (tmp + rename, 0600, never following a link). */
int vmm_snapshot_write(struct vmm_snapshot *s, const char *mem_path, const char *state_path,
                       struct vmm_err *err) VMM_MUST_CHECK;
/* Writes the child a derive of this vm would give, straight from its RAM (no
 * memfd, no re-base): for a pause, after which the vm is destroyed. */
int vmm_snapshot_save_child(struct vmm_vm *vm, const char *mem_path, const char *state_path,
                            struct vmm_err *err) VMM_MUST_CHECK;
/* Opens a child written by vmm_snapshot_write; it must name `root`. */
int vmm_snapshot_open_child(struct vmm_snapshot *root, const char *mem_path, const char *state_path,
                            struct vmm_snapshot **out, struct vmm_err *err) VMM_MUST_CHECK;

/* Releases every fd and mapping of the vm. Not while a run is in progress.
 * Synchronous; KVM's VM teardown makes it cost ~0.4 ms of CPU on PVM, so a
 * caller should answer its client before destroying. */
void vmm_vm_destroy(struct vmm_vm *vm);

/* ---- pool of pre-created shells (VM + vCPU + CPUID + run mapping + mailbox) --
 * The refill thread runs at SCHED_IDLE: it only uses otherwise idle CPU, so
 * under full load the pool drains and forks create their shells inline.
 * A fork never waits for the refill thread (a busy pool lock is a miss). */
struct vmm_pool_config { int target; uint64_t max_ram_size; };
int vmm_pool_create(const struct vmm_pool_config *cfg, struct vmm_pool **out,
                    struct vmm_err *err) VMM_MUST_CHECK;   /* starts its refill thread */
/* Drops the creator's reference: the refill thread stops and the shells go once
 * no fork submitted through vmm_async_fork(_run) still holds the pool. */
void vmm_pool_destroy(struct vmm_pool *p);
/* Optional: binds the pool to one snapshot. Shells made from then on also get
 * that snapshot's RAM mapped (a private copy-on-write mapping of its memory
 * file) and its RAM and image slots set, off the fork path; a vmm_fork of that
 * snapshot then only restores the vCPU state. Ready shells of an earlier
 * binding are dropped. The pool holds a reference to `snap` (NULL unbinds);
 * forks of other snapshots still work (such a shell is replaced inline). */
int vmm_pool_bind(struct vmm_pool *p, struct vmm_snapshot *snap, struct vmm_err *err) VMM_MUST_CHECK;
struct vmm_pool_stats { int ready; int target; uint64_t created, taken, misses; };
void vmm_pool_stats(struct vmm_pool *p, struct vmm_pool_stats *out);

/* ---- workers: native threads that own vCPUs -------------------------------- */
struct vmm_workers;
typedef void (*vmm_job_fn)(void *arg);
int vmm_workers_create(int n, struct vmm_workers **out, struct vmm_err *err) VMM_MUST_CHECK;
/* Runs fn(arg) on worker `index % n` (jobs of one worker run in order). */
int vmm_workers_submit(struct vmm_workers *w, unsigned index, vmm_job_fn fn, void *arg) VMM_MUST_CHECK;
void vmm_workers_destroy(struct vmm_workers *w);   /* drains, then joins */

/* ---- async: jobs on the workers, completions through a C callback (async.c) --
 * A vmm_async owns a set of workers and the reaper, a low-priority thread that
 * tears finished vms down off the latency path (KVM's VM release and the unmaps
 * cost hundreds of µs of CPU; past a backlog of 32 the worker destroys inline,
 * so dead vms never pile up). A vmm_async_vm is a vm bound for life to one
 * worker (every job touching it runs there, in submission order); it exists
 * before its vm does (a fork in flight), so it can be kicked from any thread at
 * any time. Completions are called on the worker (gone callbacks on the reaper
 * or the worker); a successful submission calls its callback exactly once, a
 * failed one (rc < 0) never. Callbacks must not block for long: they hold up
 * every vm of their worker. */
struct vmm_async;
struct vmm_async_vm;

struct vmm_async_result {
    int rc;                        /* 0 or -errno, err says where */
    struct vmm_err err;
    int has_resp;                  /* start, run, fork+run with rc == 0 */
    struct vmm_response resp;      /* result/out/err point into this result: copied out
                                      of the mailbox, clamped to the mailbox areas */
    struct vmm_snapshot *derived;  /* derive: the child; freed with the result unless the
                                      callee takes it (sets it to NULL) */
    uint64_t fork_ns, run_ns;      /* fork, fork+run: wall time of each part */
    struct vmm_recycle_stats recycle;   /* recycle (and diff: see vmm_async_diff) */
};
/* `res` belongs to the callee: release it with vmm_async_result_free (any thread). */
typedef void (*vmm_async_cb)(void *arg, struct vmm_async_result *res);
typedef void (*vmm_async_gone_fn)(void *arg);
void vmm_async_result_free(struct vmm_async_result *res);

/* Starts `workers` worker threads (1..1024) and the reaper. */
int vmm_async_create(int workers, struct vmm_async **out, struct vmm_err *err) VMM_MUST_CHECK;
int vmm_async_workers(const struct vmm_async *a);
/* Kicks every vm, drains the workers and the reaper (their callbacks are still
 * called, on those threads), destroys every vm left and frees `a`. Handles
 * stay valid for vmm_async_vm_put (other calls on them fail -ESHUTDOWN). Not
 * concurrently with other calls on `a` or its handles. */
void vmm_async_shutdown(struct vmm_async *a);

/* Hands a booted (not yet started) vm to `a`, bound to the next worker. On
 * failure the caller still owns vm. *out holds one reference. */
int vmm_async_adopt(struct vmm_async *a, struct vmm_vm *vm, struct vmm_async_vm **out,
                    struct vmm_err *err) VMM_MUST_CHECK;
/* Drops a reference; the handle is freed after the last (a vm never passed to
 * vmm_async_destroy is destroyed then: no job holds it any more). A job drops
 * its reference just after its callback returns, on the worker. */
void vmm_async_vm_put(struct vmm_async_vm *v);

/* Forks `snap` (through `pool`, may be NULL) on the next worker; *out (one
 * reference) exists at once. Job references keep snap and pool alive until the
 * fork is done. A failed fork leaves a closed handle (runs fail -EBADF). */
int vmm_async_fork(struct vmm_async *a, struct vmm_snapshot *snap, struct vmm_pool *pool,
                   vmm_async_cb cb, void *arg, struct vmm_async_vm **out, struct vmm_err *err) VMM_MUST_CHECK;
/* The one-shot path: fork and run `req` in one job. With VMM_ASYNC_DESTROY the
 * handle is closed at once (vmm_async_destroy gives -EALREADY) and the fork is
 * torn down after cb returns, by the reaper; gone(gone_arg) (may be NULL) is
 * called once its memory is released. Except at a call: when the response is
 * status FB_ST_CALL the fork is kept and its handle opens (before cb), so the
 * caller answers the call with vmm_async_run (FB_REQ_ANSWER) and closes it
 * with vmm_async_destroy; gone(gone_arg) is then called once that vm is
 * released, after the destroy's own gone (also when the handle's last
 * reference goes without a destroy, or at vmm_async_shutdown). A
 * vmm_async_destroy while the one-shot runs (-EALREADY) makes it tear the
 * fork down even at a call. */
#define VMM_ASYNC_DESTROY 1u
int vmm_async_fork_run(struct vmm_async *a, struct vmm_snapshot *snap, struct vmm_pool *pool,
                       const struct vmm_request *req, unsigned flags, vmm_async_cb cb, void *arg,
                       vmm_async_gone_fn gone, void *gone_arg, struct vmm_async_vm **out,
                       struct vmm_err *err) VMM_MUST_CHECK;
/* vmm_vm_start / vmm_vm_run / vmm_snapshot_save / vmm_snapshot_derive on the
 * vm's worker. The request (payload, entropy) is copied at submission. -EBADF
 * when the handle is closed. */
int vmm_async_start(struct vmm_async_vm *v, uint64_t timeout_ns, vmm_async_cb cb, void *arg,
                    struct vmm_err *err) VMM_MUST_CHECK;
int vmm_async_run(struct vmm_async_vm *v, const struct vmm_request *req, vmm_async_cb cb, void *arg,
                  struct vmm_err *err) VMM_MUST_CHECK;
int vmm_async_save(struct vmm_async_vm *v, const char *mem_path, const char *state_path,
                   vmm_async_cb cb, void *arg, struct vmm_err *err) VMM_MUST_CHECK;
int vmm_async_derive(struct vmm_async_vm *v, vmm_async_cb cb, void *arg, struct vmm_err *err) VMM_MUST_CHECK;
int vmm_async_save_child(struct vmm_async_vm *v, const char *mem_path, const char *state_path,
                         vmm_async_cb cb, void *arg, struct vmm_err *err) VMM_MUST_CHECK;
/* vmm_snapshot_write on a worker (the snapshot is referenced until done). */
int vmm_async_write(struct vmm_async *a, struct vmm_snapshot *snap, const char *mem_path,
                    const char *state_path, vmm_async_cb cb, void *arg, struct vmm_err *err) VMM_MUST_CHECK;
/* From any thread: ends the current or next run of v with VMM_KILLED, also
 * when the fork that makes its vm is still queued. */
void vmm_async_kick(struct vmm_async_vm *v);
/* Closes v: once the jobs queued before it are done, its vm goes to the
 * reaper; gone(arg) (may be NULL) is called once its memory is released.
 * -EALREADY (gone not called) when v was closed already. */
int vmm_async_destroy(struct vmm_async_vm *v, vmm_async_gone_fn gone, void *arg);
/* vmm_vm_recycle on the vm's worker, after the jobs queued before it; the
 * result's `recycle` holds the counts. On failure the vm is dead (close it). */
int vmm_async_recycle(struct vmm_async_vm *v, vmm_async_cb cb, void *arg, struct vmm_err *err) VMM_MUST_CHECK;
/* vmm_vm_diff_snapshot on the vm's worker; the counts are in the result's
 * `recycle.ram_pages` (RAM pages that differ) and `recycle.mailbox_pages`. */
int vmm_async_diff(struct vmm_async_vm *v, vmm_async_cb cb, void *arg, struct vmm_err *err) VMM_MUST_CHECK;
/* vmm_vm_kvm_stats on the calling thread (-EBADF once closed); between jobs. */
int vmm_async_kvm_stats(struct vmm_async_vm *v, struct vmm_kvm_stats *out, struct vmm_err *err) VMM_MUST_CHECK;
/* vmm_vm_private_bytes on the calling thread (-EBADF once closed); not while
 * a job of v is running (the count would be stale, never unsafe). */
int vmm_async_private_bytes(struct vmm_async_vm *v, uint64_t *out, struct vmm_err *err) VMM_MUST_CHECK;

/* ---- host shared memory (shm.c) ----------------------------------------------
 * A shared memory object is a memfd of `size` bytes (a multiple of 4 KiB, at
 * most FB_RAM_MAX) that can grow and never shrinks, refcounted (the creator's
 * reference, one per range mapping it, one per child snapshot range), and
 * mapped once in the host so the host can read its words. vmm_vm_share makes
 * the page-aligned guest range [gpa, gpa+len) (inside the arena:
 * >= FB_ARENA_BASE, <= ram_size) of a fork be the object's [off, off+len): the
 * same physical pages in every vm that maps it, seen by the guest from its
 * next access. With copy_in the vm's current bytes of the range are written
 * into the object first. A range that overlaps earlier ones replaces those
 * parts of them. vmm_vm_unshare makes a range private zero memory again
 * (allocated: it counts in private_bytes). Both only between runs of the vm
 * (-EBUSY while it runs; on its worker or with no job in flight), only on
 * forks (-ENOTSUP for a booted vm), at most 1024 ranges a vm (-ENOSPC; a share
 * that continues a range of the same object joins it). A failed mapping leaves the vm dead. A derive gives the
 * child the vm's ranges (every fork of it maps them after its RAM, pool
 * shells included) and copies their bytes into the child, so a child written
 * to files keeps their content as private memory; the vm keeps its ranges. A
 * vm that ever shared memory is never recycled. private_bytes does not count
 * shared pages (they are the object's). */
struct vmm_shm;
int vmm_shm_create(uint64_t size, struct vmm_shm **out, struct vmm_err *err) VMM_MUST_CHECK;
/* Grows the object to `size` (a multiple of 4 KiB, >= its size; equal is a no-op). */
int vmm_shm_grow(struct vmm_shm *shm, uint64_t size, struct vmm_err *err) VMM_MUST_CHECK;
/* The 32-bit word at byte `off` (4-aligned, inside the object), read atomically. */
int vmm_shm_read_u32(struct vmm_shm *shm, uint64_t off, uint32_t *v, struct vmm_err *err) VMM_MUST_CHECK;
uint64_t vmm_shm_size(struct vmm_shm *shm);
/* Drops a reference; the memfd and the host mapping go with the last one. */
void vmm_shm_put(struct vmm_shm *shm);
int vmm_vm_share(struct vmm_vm *vm, uint64_t gpa, uint64_t len, struct vmm_shm *shm, uint64_t off,
                 int copy_in, struct vmm_err *err) VMM_MUST_CHECK;
int vmm_vm_unshare(struct vmm_vm *vm, uint64_t gpa, uint64_t len, struct vmm_err *err) VMM_MUST_CHECK;
/* Ranges the vm has now (tests). */
uint32_t vmm_vm_shared_ranges(struct vmm_vm *vm);
/* vmm_vm_share / vmm_vm_unshare on the calling thread, for a handle whose vm is
 * stopped between jobs: -EBUSY while a job of v is running, -EBADF once closed. */
int vmm_async_share(struct vmm_async_vm *v, uint64_t gpa, uint64_t len, struct vmm_shm *shm, uint64_t off,
                    int copy_in, struct vmm_err *err) VMM_MUST_CHECK;
int vmm_async_unshare(struct vmm_async_vm *v, uint64_t gpa, uint64_t len, struct vmm_err *err) VMM_MUST_CHECK;

/* ---- counters --------------------------------------------------------------- */
struct vmm_stats {
    uint64_t vms_live, vms_created, vms_destroyed, forks, boots;
    uint64_t runs, exits, doorbells, crashes, timeouts, kicks, recycles;
};
void vmm_stats_get(struct vmm_stats *out);

#endif /* FORKBOX_VMM_H */
