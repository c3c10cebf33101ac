/*
 * test_vmm.c — behaviour of the VMM library against the tiny test guests:
 * boot, round trips, snapshot and fork (one exit per request), fork isolation,
 * deadlines (required, robust to stray signals), kicks, faults, rogue I/O, the
 * MMIO hole (test vms only), protocol violations, the 1 MiB
 * response, pools and workers. Needs /dev/kvm (prints "skipped:" otherwise).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#include "util.h"

#define SEC 1000000000ull

static void test_probe(void)
{
    struct vmm_probe_info pi;
    OKV(vmm_probe(&pi, &e_));
    CHECK(pi.kvm_api_version == 12 && pi.vcpu_mmap_size >= 4096 && pi.tsc_khz > 100000);
    CHECK(pi.cap_immediate_exit && pi.cap_readonly_mem && pi.cap_xcrs);
    uint64_t ns[3];
    OKV(vmm_bench_floor(64ull << 20, 3, ns, NULL, &e_));
    CHECK(ns[0] > 0 && ns[2] > 0);
    printf("probe: tsc %llu kHz, pvm %d, xsave2 %d, floor %llu us\n", (unsigned long long)pi.tsc_khz, pi.is_pvm,
           pi.cap_xsave2, (unsigned long long)ns[2] / 1000);
}

static void test_boot_echo(void)
{
    struct vmm_vm *vm = boot_ready("echo", NULL, 0);
    for (int i = 0; i < 5; i++) {
        char msg[32];
        snprintf(msg, sizeof msg, "hello %d", i);
        struct vmm_response r = run_req(vm, msg, SEC);
        CHECK(r.outcome == VMM_OK && r.status == FB_ST_DONE && r.exits == 1);
        CHECK(r.out_len == strlen(msg) && !memcmp(r.out, msg, r.out_len));
    }
    /* A boot vm cannot be started twice; a bad request is refused, not run. */
    struct vmm_response r;
    struct vmm_err e = {0};
    CHECK(vmm_vm_start(vm, 0, &r, &e) == -EINVAL);
    struct vmm_request q = { .kind = FB_REQ_ECHO, .payload = "x", .payload_len = FB_MB_REQ_SIZE + 1 };
    CHECK(vmm_vm_run(vm, &q, &r, &e) == -E2BIG);
    vmm_vm_destroy(vm);
    /* The largest RAM works (sparse: only touched pages cost). */
    struct vmm_boot_config big = { .ram_size = FB_RAM_MAX, .guest_elf = guest_path(g_guests, "echo") };
    OKV(vmm_vm_boot(&big, &vm, &e_));
    OKV(vmm_vm_start(vm, SEC, &r, &e_));
    CHECK(r.outcome == VMM_OK && r.status == FB_ST_READY);
    vmm_vm_destroy(vm);
    /* Bad boot configs are refused with a message. */
    struct vmm_boot_config c = { .ram_size = 3 << 20, .guest_elf = guest_path(g_guests, "echo") };
    CHECK(vmm_vm_boot(&c, &vm, &e) == -EINVAL && e.msg[0]);
    c.ram_size = 64 << 20;
    c.guest_elf = "/etc/passwd";
    CHECK(vmm_vm_boot(&c, &vm, &e) == -ENOEXEC);
    printf("boot+echo: ok\n");
}

/* Boots a copy of echo.elf with one change applied; returns vmm_vm_boot's result. */
static int boot_mutated(void (*mutate)(uint8_t *f, size_t *n), struct vmm_err *e)
{
    int fd = open(guest_path(g_guests, "echo"), O_RDONLY);
    struct stat st;
    CHECK(fd >= 0 && fstat(fd, &st) == 0);
    size_t n = (size_t)st.st_size;
    uint8_t *f = malloc(n);
    CHECK(f && read(fd, f, n) == (ssize_t)n);
    close(fd);
    mutate(f, &n);
    fd = open(tmp_path("bad.elf"), O_CREAT | O_WRONLY | O_TRUNC, 0755);
    CHECK(fd >= 0 && write(fd, f, n) == (ssize_t)n);
    close(fd);
    free(f);
    struct vmm_boot_config c = { .ram_size = 64ull << 20, .guest_elf = tmp_path("bad.elf") };
    struct vmm_vm *vm = NULL;
    memset(e, 0, sizeof *e);
    int rc = vmm_vm_boot(&c, &vm, e);
    if (rc == 0) vmm_vm_destroy(vm);
    return rc;
}

static Elf64_Phdr *first_load(uint8_t *f)
{
    Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
    Elf64_Phdr *ph = (Elf64_Phdr *)(f + eh->e_phoff);
    for (int i = 0; i < eh->e_phnum; i++) if (ph[i].p_type == PT_LOAD) return &ph[i];
    CHECK(0);
    return NULL;
}
static void m_none(uint8_t *f, size_t *n) { (void)f; (void)n; }
static void m_low(uint8_t *f, size_t *n) { (void)n; first_load(f)->p_vaddr = 0x1000; }
static void m_high(uint8_t *f, size_t *n) { (void)n; first_load(f)->p_vaddr = FB_RUNTIME_LIMIT - 16; }
static void m_huge(uint8_t *f, size_t *n) { (void)n; first_load(f)->p_memsz = ~0ull - 0x1000; }
static void m_offset(uint8_t *f, size_t *n) { (void)n; first_load(f)->p_offset = ~0ull - 8; }
static void m_interp(uint8_t *f, size_t *n) { (void)n; first_load(f)->p_type = PT_INTERP; }
static void m_dyn(uint8_t *f, size_t *n) { (void)n; ((Elf64_Ehdr *)f)->e_type = ET_DYN; }
static void m_entry(uint8_t *f, size_t *n) { (void)n; ((Elf64_Ehdr *)f)->e_entry = FB_RUNTIME_LIMIT + 4; }
static void m_phnum(uint8_t *f, size_t *n) { (void)n; ((Elf64_Ehdr *)f)->e_phoff = ~0ull - 100; }
static void m_trunc(uint8_t *f, size_t *n) { (void)f; *n = 40; }
static void m_class(uint8_t *f, size_t *n) { (void)n; f[EI_CLASS] = ELFCLASS32; }

static void test_elf_reject(void)
{
    struct vmm_err e;
    CHECK(boot_mutated(m_none, &e) == 0);
    void (*bad[])(uint8_t *, size_t *) = { m_low, m_high, m_huge, m_offset, m_interp, m_dyn, m_entry, m_phnum,
                                           m_trunc, m_class };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int rc = boot_mutated(bad[i], &e);
        if (rc != -ENOEXEC) fprintf(stderr, "mutation %zu: rc %d (%s)\n", i, rc, e.msg);
        CHECK(rc == -ENOEXEC && e.msg[0]);
    }
    printf("elf: %zu malformed guests refused, e.g. \"%s\"\n", sizeof bad / sizeof bad[0], e.msg);
}

static void test_fork_echo(struct vmm_snapshot *echo)
{
    for (int k = 0; k < 3; k++) {
        struct vmm_vm *vm;
        OKV(vmm_fork(echo, NULL, &vm, &e_));
        for (int i = 0; i < 4; i++) {
            struct vmm_response r = run_req(vm, "fork says hi", SEC);
            CHECK(r.outcome == VMM_OK && r.status == FB_ST_DONE);
            CHECK(r.exits == 1);   /* resumes after the snapshot's `out`: one exit per request */
            CHECK(r.out_len == 12 && !memcmp(r.out, "fork says hi", 12));
        }
        vmm_vm_destroy(vm);
    }
    printf("fork+echo: one exit per request\n");
}

static void test_counter(void)
{
    struct vmm_vm *t = boot_ready("counter", NULL, 0);
    struct vmm_response r = run_req(t, "", SEC);
    CHECK(r.outcome == VMM_OK && r.exit_code == 1);
    OKV(vmm_snapshot_save(t, tmp_path("counter.mem"), tmp_path("counter.state"), &e_));
    r = run_req(t, "", SEC);             /* the template goes on after its snapshot */
    CHECK(r.outcome == VMM_OK && r.exit_code == 2);
    struct vmm_snapshot *s;
    OKV(vmm_snapshot_open(tmp_path("counter.mem"), tmp_path("counter.state"), &s, &e_));
    struct vmm_vm *a, *b;
    OKV(vmm_fork(s, NULL, &a, &e_));
    OKV(vmm_fork(s, NULL, &b, &e_));
    CHECK(run_req(a, "", SEC).exit_code == 2);
    CHECK(run_req(a, "", SEC).exit_code == 3);
    CHECK(run_req(a, "", SEC).exit_code == 4);
    CHECK(run_req(b, "", SEC).exit_code == 2);   /* b never sees a's writes */
    CHECK(run_req(t, "", SEC).exit_code == 3);
    /* A fork can be snapshotted too (RAM written from its private mapping):
     * forks of that snapshot continue from the fork's value. */
    OKV(vmm_snapshot_save(a, tmp_path("counter2.mem"), tmp_path("counter2.state"), &e_));
    CHECK(run_req(a, "", SEC).exit_code == 5);
    struct vmm_snapshot *s2;
    OKV(vmm_snapshot_open(tmp_path("counter2.mem"), tmp_path("counter2.state"), &s2, &e_));
    struct vmm_vm *c;
    OKV(vmm_fork(s2, NULL, &c, &e_));
    struct vmm_response rc = run_req(c, "", SEC);
    CHECK(rc.outcome == VMM_OK && rc.exits == 1 && rc.exit_code == 5);
    vmm_vm_destroy(c);
    vmm_snapshot_close(s2);
    vmm_vm_destroy(a);
    vmm_vm_destroy(b);
    vmm_vm_destroy(t);
    vmm_snapshot_close(s);
    printf("counter: forks see the template value and are independent; a fork's snapshot continues it\n");
}

static void test_timeout(struct vmm_snapshot *spin)
{
    struct vmm_vm *vm;
    OKV(vmm_fork(spin, NULL, &vm, &e_));
    uint64_t t0 = vmm_now_ns_test();
    struct vmm_response r = run_req(vm, "go", 100000000ull);
    uint64_t dt = vmm_now_ns_test() - t0;
    CHECK(r.outcome == VMM_TIMEOUT);
    CHECK(dt >= 100000000ull && dt < 1000000000ull);   /* ends at the deadline; the upper bound only catches "never" on a loaded machine */
    struct vmm_err e = {0};
    CHECK(vmm_vm_run(vm, &(struct vmm_request){ .kind = FB_REQ_ECHO }, &r, &e) == -EIO);
    vmm_vm_destroy(vm);
    printf("timeout: deadline 100 ms, took %.1f ms\n", dt / 1e6);
}

/* Every run has a finite deadline: timeout 0 is refused before the guest runs
 * (the vm stays usable), for vmm_vm_start as for vmm_vm_run. */
static void test_deadline_required(struct vmm_snapshot *spin)
{
    struct vmm_vm *vm;
    struct vmm_response r;
    struct vmm_err e = {0};
    OKV(vmm_fork(spin, NULL, &vm, &e_));
    struct vmm_request q = { .kind = FB_REQ_ECHO, .payload = "go", .payload_len = 2, .timeout_ns = 0 };
    CHECK(vmm_vm_run(vm, &q, &r, &e) == -EINVAL && e.msg[0]);
    r = run_req(vm, "go", 50000000ull);
    CHECK(r.outcome == VMM_TIMEOUT);
    vmm_vm_destroy(vm);
    struct vmm_boot_config c = { .ram_size = 64ull << 20, .guest_elf = guest_path(g_guests, "echo") };
    OKV(vmm_vm_boot(&c, &vm, &e_));
    CHECK(vmm_vm_start(vm, 0, &r, &e) == -EINVAL);
    vmm_vm_destroy(vm);
    printf("deadline: timeout 0 refused (%s)\n", e.msg);
}

/* Stray signals (the kick signal itself, from outside the VMM) interrupt
 * KVM_RUN many times before the deadline: none may end the run early or
 * switch the one-shot deadline off. */
struct storm_arg { pthread_t target; atomic_int stop; int sent; };
static void *storm(void *p)
{
    struct storm_arg *a = p;
    struct timespec ts = { 0, 2000000 };
    while (!atomic_load(&a->stop)) {
        pthread_kill(a->target, SIGRTMIN + 3);
        a->sent++;
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_deadline_signals(struct vmm_snapshot *spin)
{
    struct vmm_vm *vm;
    OKV(vmm_fork(spin, NULL, &vm, &e_));
    struct storm_arg a = { .target = pthread_self() };
    pthread_t th;
    CHECK(pthread_create(&th, NULL, storm, &a) == 0);
    uint64_t t0 = vmm_now_ns_test();
    struct vmm_response r = run_req(vm, "go", 300000000ull);
    uint64_t dt = vmm_now_ns_test() - t0;
    atomic_store(&a.stop, 1);
    pthread_join(th, NULL);
    CHECK(r.outcome == VMM_TIMEOUT);
    CHECK(dt >= 300000000ull && dt < 5 * SEC);
    CHECK(a.sent > 10);
    vmm_vm_destroy(vm);
    printf("deadline: %d stray signals during a 300 ms run, timed out after %.1f ms\n", a.sent, dt / 1e6);
}

/* A fork's private memory: small when fresh, and it grows by what the host
 * and the guest write (a 1 MiB request copied in, echoed to the out area). */
static void test_private_bytes(struct vmm_snapshot *echo)
{
    struct vmm_vm *vm;
    OKV(vmm_fork(echo, NULL, &vm, &e_));
    uint64_t p0, p1;
    OKV(vmm_vm_private_bytes(vm, &p0, &e_));
    static char big[1 << 20];
    memset(big, 'b', sizeof big);
    struct vmm_request q = { .kind = FB_REQ_ECHO, .payload = big, .payload_len = sizeof big, .timeout_ns = SEC };
    struct vmm_response r;
    OKV(vmm_vm_run(vm, &q, &r, &e_));
    CHECK(r.outcome == VMM_OK && r.out_len == sizeof big);
    OKV(vmm_vm_private_bytes(vm, &p1, &e_));
    CHECK(p0 < (8ull << 20));
    CHECK(p1 >= p0 + (2ull << 20) && p1 < p0 + (8ull << 20) + vmm_snapshot_ram_size(echo) / 16);
    vmm_vm_destroy(vm);
    struct vmm_err e = {0};
    CHECK(vmm_vm_private_bytes(NULL, &p0, &e) == -EINVAL);
    printf("private bytes: %llu KiB after the fork, %llu KiB after a 1 MiB echo\n", (unsigned long long)p0 >> 10,
           (unsigned long long)p1 >> 10);
}

struct kick_arg { struct vmm_vm *vm; };
static void *kicker(void *p)
{
    struct kick_arg *a = p;
    struct timespec ts = { 0, 50000000 };
    nanosleep(&ts, NULL);
    vmm_vm_kick(a->vm);
    return NULL;
}

static void test_kick(struct vmm_snapshot *spin)
{
    struct vmm_vm *vm;
    OKV(vmm_fork(spin, NULL, &vm, &e_));
    struct kick_arg a = { vm };
    pthread_t th;
    CHECK(pthread_create(&th, NULL, kicker, &a) == 0);
    uint64_t t0 = vmm_now_ns_test();
    struct vmm_response r = run_req(vm, "go", 5 * SEC);
    uint64_t dt = vmm_now_ns_test() - t0;
    pthread_join(th, NULL);
    CHECK(r.outcome == VMM_KILLED);
    CHECK(dt >= 50000000ull && dt < 1000000000ull);
    vmm_vm_destroy(vm);
    /* A kick before the run also ends it. */
    OKV(vmm_fork(spin, NULL, &vm, &e_));
    vmm_vm_kick(vm);
    r = run_req(vm, "go", 5 * SEC);
    CHECK(r.outcome == VMM_KILLED);
    vmm_vm_destroy(vm);
    printf("kick: killed after %.1f ms\n", dt / 1e6);
}

static struct vmm_response crash_run(struct vmm_snapshot *s, const char *what)
{
    struct vmm_vm *vm;
    OKV(vmm_fork(s, NULL, &vm, &e_));
    struct vmm_response r = run_req(vm, what, SEC);
    struct vmm_response r2;
    struct vmm_err e = {0};
    if (r.outcome != VMM_OK) CHECK(vmm_vm_run(vm, &(struct vmm_request){ .kind = FB_REQ_ECHO }, &r2, &e) == -EIO);
    vmm_vm_destroy(vm);
    printf("  %-7s -> %s: %s\n", what, vmm_outcome_name(r.outcome), r.detail);
    return r;
}

static void test_crashes(void)
{
    /* An image file of 1 MiB + 5000 bytes: the read-only slot is padded to 2 MiB. */
    int fd = open(tmp_path("image.bin"), O_CREAT | O_WRONLY | O_TRUNC, 0644);
    static char buf[(1 << 20) + 5000];
    memset(buf, 'i', sizeof buf);
    CHECK(fd >= 0 && write(fd, buf, sizeof buf) == (ssize_t)sizeof buf);
    close(fd);
    struct vmm_snapshot *s = make_snapshot("crash", tmp_path("image.bin"), 0);
    printf("crash:\n");
    struct vmm_response r = crash_run(s, "ud2");
    CHECK(r.outcome == VMM_CRASH_FAULT && r.fault_vector == 6);
    CHECK(r.fault_rip == elf_symbol(guest_path(g_guests, "crash"), "crash_ud2_at"));
    r = crash_run(s, "pf");
    CHECK(r.outcome == VMM_CRASH_FAULT && r.fault_vector == 14 && r.fault_cr2 == 0x700000000000ull);
    CHECK((r.fault_error & 1) == 0 && (r.fault_error & 4));   /* not present, user mode */
    r = crash_run(s, "ro");
    CHECK(r.outcome == VMM_CRASH_FAULT && r.fault_vector == 14 && r.fault_cr2 == FB_IMAGE_BASE);
    CHECK((r.fault_error & 3) == 3);                            /* present, write */
    r = crash_run(s, "div");
    CHECK(r.outcome == VMM_CRASH_FAULT && r.fault_vector == 0);
    r = crash_run(s, "nothing");
    CHECK(r.outcome == VMM_OK);
    r = crash_run(s, "img");
    CHECK(r.outcome == VMM_OK && r.exit_code == 0x69696969);
    /* The image shrinks under a live snapshot: the guest's read of a page past
     * the new EOF must crash that vm (KVM_RUN -EFAULT), never SIGBUS the host. */
    CHECK(truncate(tmp_path("image.bin"), 4096) == 0);
    r = crash_run(s, "img");
    CHECK(r.outcome == VMM_CRASH_INTERNAL);
    vmm_snapshot_close(s);
}

/* Like make_snapshot, with the test-only MMIO hole mapped. */
static struct vmm_snapshot *make_snapshot_mmio(const char *guest)
{
    struct vmm_boot_config c = { .ram_size = 64ull << 20, .guest_elf = guest_path(g_guests, guest),
                                 .test_mmio_hole = 1 };
    struct vmm_vm *vm = NULL;
    struct vmm_response r;
    OKV(vmm_vm_boot(&c, &vm, &e_));
    OKV(vmm_vm_start(vm, 2 * SEC, &r, &e_));
    CHECK(r.outcome == VMM_OK && r.status == FB_ST_READY);
    OKV(vmm_snapshot_save(vm, tmp_path("mmio.mem"), tmp_path("mmio.state"), &e_));
    vmm_vm_destroy(vm);
    struct vmm_snapshot *s = NULL;
    OKV(vmm_snapshot_open(tmp_path("mmio.mem"), tmp_path("mmio.state"), &s, &e_));
    return s;
}

static void test_rogue(void)
{
    struct vmm_snapshot *s = make_snapshot("rogue", NULL, 0);
    printf("rogue:\n");
    /* Production layout: no PTE for the MMIO hole, the access is a #PF. */
    struct vmm_response r = crash_run(s, "mmio");
    CHECK(r.outcome == VMM_CRASH_FAULT && r.fault_vector == 14 && r.fault_cr2 == FB_MAILBOX_BASE + FB_MAILBOX_SIZE);
    CHECK((r.fault_error & 1) == 0);                            /* not present */
    /* A test vm that asks for the hole gets its MMIO exit. */
    struct vmm_snapshot *sm = make_snapshot_mmio("rogue");
    r = crash_run(sm, "mmio");
    CHECK(r.outcome == VMM_CRASH_MMIO && r.mmio_addr == FB_MAILBOX_BASE + FB_MAILBOX_SIZE);
    vmm_snapshot_close(sm);
    /* Port 0x80 is denied by the TSS I/O bitmap: #GP where the bitmap is honoured
     * (VT-x, AMD-V and PVM alike); an I/O exit if a hypervisor let it through. */
    r = crash_run(s, "port");
    CHECK((r.outcome == VMM_CRASH_FAULT && r.fault_vector == 13) || (r.outcome == VMM_CRASH_IO && r.io_port == 0x80));
    r = crash_run(s, "port2");
    CHECK(r.outcome == VMM_CRASH_IO && r.io_port == FB_PORT_DOORBELL + 2);
    r = crash_run(s, "fport");
    CHECK(r.outcome == VMM_CRASH_IO && r.io_port == FB_PORT_FAULT);
    r = crash_run(s, "outlen");
    CHECK(r.outcome == VMM_CRASH_PROTOCOL);
    r = crash_run(s, "status");
    CHECK(r.outcome == VMM_CRASH_PROTOCOL);
    r = crash_run(s, "ack");
    CHECK(r.outcome == VMM_CRASH_PROTOCOL);
    /* A smaller out_cap is part of the contract too. */
    struct vmm_vm *vm;
    OKV(vmm_fork(s, NULL, &vm, &e_));
    struct vmm_request q = { .kind = FB_REQ_ECHO, .payload = "x", .payload_len = 1, .out_cap = 16, .timeout_ns = SEC };
    OKV(vmm_vm_run(vm, &q, &r, &e_));
    CHECK(r.outcome == VMM_OK);
    vmm_vm_destroy(vm);
    vmm_snapshot_close(s);
}

/* The guest fills the response fields from the request entropy; whatever
 * it writes, the host answers OK only with a valid status and in-bounds
 * lengths, and CRASH_PROTOCOL otherwise. */
static void test_mailbox_fuzz(void)
{
    struct vmm_snapshot *s = make_snapshot("rogue", NULL, 0);
    struct vmm_pool *p;
    OKV(vmm_pool_create(&(struct vmm_pool_config){ .target = 4 }, &p, &e_));
    OKV(vmm_pool_bind(p, s, &e_));
    int ok = 0, proto = 0;
    unsigned seed = 12345;
    for (int i = 0; i < 400; i++) {
        struct vmm_vm *vm;
        OKV(vmm_fork(s, p, &vm, &e_));
        uint64_t cap = (i % 3) ? 4096 : 0;
        uint8_t ent[FB_ENTROPY_SIZE];
        for (int b = 0; b < FB_ENTROPY_SIZE; b++) ent[b] = (uint8_t)(rand_r(&seed) >> 7);   /* reproducible */
        struct vmm_request q = { .kind = FB_REQ_ECHO, .payload = "fuzz", .payload_len = 4, .out_cap = cap,
                                 .err_cap = cap, .timeout_ns = SEC, .entropy = ent };
        struct vmm_response r;
        OKV(vmm_vm_run(vm, &q, &r, &e_));
        uint64_t ocap = cap ? cap : FB_MB_OUT_SIZE, ecap = cap ? cap : FB_MB_ERR_SIZE;
        if (r.outcome == VMM_OK) {
            ok++;
            CHECK(r.status == FB_ST_DONE || r.status == FB_ST_EXIT || r.status == FB_ST_ERROR || r.status == FB_ST_CALL);
            CHECK(r.out_len <= ocap && r.err_len <= ecap && r.result_len <= FB_MB_RESULT_SIZE);
            if (r.status == FB_ST_CALL) {   /* the call header and its data fit in result_len */
                struct fb_call c;
                CHECK(r.result_len >= sizeof c);
                memcpy(&c, r.result, sizeof c);
                CHECK(c.data_len <= r.result_len - sizeof c);
            }
            CHECK(r.out == NULL || r.out + r.out_len <= r.out - FB_MB_OUT_OFF + FB_MAILBOX_SIZE);
        } else {
            CHECK(r.outcome == VMM_CRASH_PROTOCOL && r.detail[0]);
            CHECK(r.out_len == 0 && r.err_len == 0 && r.result_len == 0 && r.out == NULL);
            proto++;
        }
        vmm_vm_destroy(vm);
    }
    CHECK(ok >= 5 && proto >= 100);   /* ~6% of the combinations are valid */
    vmm_pool_destroy(p);
    vmm_snapshot_close(s);
    printf("mailbox fuzz: 400 random responses, %d accepted, %d protocol violations\n", ok, proto);
}

static void test_big(void)
{
    struct vmm_snapshot *s = make_snapshot("big", NULL, 0);
    struct vmm_vm *vm;
    OKV(vmm_fork(s, NULL, &vm, &e_));
    for (int k = 0; k < 2; k++) {
        struct vmm_response r = run_req(vm, "", SEC);
        CHECK(r.outcome == VMM_OK && r.exits == 1 && r.out_len == (1u << 20));
        uint64_t seq = (uint64_t)k + 1;
        for (uint64_t i = 0; i < r.out_len; i++)
            if (r.out[i] != (uint8_t)((i * 7 + seq) & 0xff)) { fprintf(stderr, "byte %llu\n", (unsigned long long)i); CHECK(0); }
        printf("big: 1 MiB in %llu exit, %.2f ms\n", (unsigned long long)r.exits, r.run_ns / 1e6);
    }
    vmm_vm_destroy(vm);
    vmm_snapshot_close(s);
}


static void test_pool(struct vmm_snapshot *echo, struct vmm_snapshot *other)
{
    struct vmm_pool *p;
    OKV(vmm_pool_create(&(struct vmm_pool_config){ .target = 4 }, &p, &e_));
    struct vmm_pool_stats st;
    for (int i = 0; i < 500; i++) {
        vmm_pool_stats(p, &st);
        if (st.ready == 4) break;
        usleep(2000);
    }
    CHECK(st.ready == 4 && st.created >= 4);
    struct vmm_vm *vm;
    OKV(vmm_fork(echo, p, &vm, &e_));
    vmm_pool_stats(p, &st);
    CHECK(st.taken == 1 && st.misses == 0);
    struct vmm_response r = run_req(vm, "pooled", SEC);
    CHECK(r.outcome == VMM_OK && r.exits == 1 && r.out_len == 6);
    vmm_vm_destroy(vm);
    /* Bound to a snapshot: shells come with its RAM mapped. */
    OKV(vmm_pool_bind(p, echo, &e_));
    for (int k = 0; k < 6; k++) {
        pool_wait_full(p, 4);   /* refill idle: the take cannot find its lock busy */
        OKV(vmm_fork(echo, p, &vm, &e_));
        r = run_req(vm, "bound", SEC);
        CHECK(r.outcome == VMM_OK && r.exits == 1 && r.out_len == 5 && !memcmp(r.out, "bound", 5));
        vmm_vm_destroy(vm);
    }
    pool_wait_full(p, 4);
    OKV(vmm_fork(other, p, &vm, &e_));    /* another snapshot through a bound pool */
    vmm_vm_kick(vm);
    r = run_req(vm, "", SEC);
    CHECK(r.outcome == VMM_KILLED);
    vmm_vm_destroy(vm);
    vmm_pool_stats(p, &st);
    CHECK(st.taken == 8 && st.misses == 0);
    vmm_pool_destroy(p);
    printf("pool: hit path ok (unbound and bound)\n");
}

struct wjob { struct vmm_snapshot *s; int idx; int *order; int *n; pthread_mutex_t *mu; int ok; };
static void wjob_fn(void *arg)
{
    struct wjob *j = arg;
    struct vmm_vm *vm;
    struct vmm_err e = {0};
    if (vmm_fork(j->s, NULL, &vm, &e) == 0) {
        struct vmm_request q = { .kind = FB_REQ_ECHO, .payload = "w", .payload_len = 1, .timeout_ns = SEC };
        struct vmm_response r;
        j->ok = vmm_vm_run(vm, &q, &r, &e) == 0 && r.outcome == VMM_OK && r.out_len == 1;
        vmm_vm_destroy(vm);
    }
    pthread_mutex_lock(j->mu);
    j->order[(*j->n)++] = j->idx;
    pthread_mutex_unlock(j->mu);
}

static void test_workers(struct vmm_snapshot *echo)
{
    struct vmm_workers *w;
    OKV(vmm_workers_create(2, &w, &e_));
    enum { N = 16 };
    struct wjob jobs[N];
    int order[N], n = 0;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    for (int i = 0; i < N; i++) {
        jobs[i] = (struct wjob){ echo, i, order, &n, &mu, 0 };
        CHECK(vmm_workers_submit(w, 0, wjob_fn, &jobs[i]) == 0);   /* all on worker 0: in order */
    }
    vmm_workers_destroy(w);   /* drains */
    CHECK(n == N);
    for (int i = 0; i < N; i++) CHECK(order[i] == i && jobs[i].ok);
    printf("workers: %d jobs ran in order\n", N);
}

/* What the guest sees must be consistent where software relies on it: with
 * CPUID.OSXSAVE set, XCR0 must enable the state of every vector extension
 * CPUID offers (glibc picks AVX/AVX-512 routines from that). Without OSXSAVE
 * software may not use AVX at all, and only SSE state is checked. Vector
 * state must survive snapshot + fork either way. */
static void test_vector_state(void)
{
    struct vmm_vm *t = boot_ready("cpuinfo", NULL, 0);
    uint32_t c1 = (uint32_t)run_req(t, "cpuid1", SEC).exit_code;
    uint32_t c7 = (uint32_t)run_req(t, "cpuid7", SEC).exit_code;
    int osxsave = (c1 >> 27) & 1, avx = osxsave && ((c1 >> 28) & 1), avx512 = avx && ((c7 >> 16) & 1);
    uint32_t xcr0 = 0;
    if (osxsave) {
        struct vmm_response r = run_req(t, "xcr0", SEC);
        CHECK(r.outcome == VMM_OK);
        xcr0 = (uint32_t)r.exit_code;
        CHECK((xcr0 & 3) == 3);
        if (avx) CHECK(xcr0 & 4);
        if (avx512) CHECK((xcr0 & 0xe0) == 0xe0);
    }
    CHECK(run_req(t, "sse", SEC).outcome == VMM_OK);
    const char *set = avx ? "setvec" : "setxmm", *get = avx ? "getvec" : "getxmm";
    uint64_t want = avx512 ? 112 : avx ? 48 : 16;
    CHECK(run_req(t, set, SEC).outcome == VMM_OK);
    OKV(vmm_snapshot_save(t, tmp_path("vec.mem"), tmp_path("vec.state"), &e_));
    struct vmm_snapshot *s;
    OKV(vmm_snapshot_open(tmp_path("vec.mem"), tmp_path("vec.state"), &s, &e_));
    struct vmm_vm *f;
    OKV(vmm_fork(s, NULL, &f, &e_));
    struct vmm_response r = run_req(f, get, SEC);
    CHECK(r.outcome == VMM_OK && r.out_len == want);
    for (int i = 0; i < 16; i++) CHECK(r.out[i] == i + 1);                    /* xmm9 */
    for (int i = 0; avx && i < 32; i++) CHECK(r.out[16 + i] == i + 1);        /* ymm10 */
    for (int i = 0; avx512 && i < 64; i++) CHECK(r.out[48 + i] == i + 1);     /* zmm17 */
    vmm_vm_destroy(f);
    vmm_snapshot_close(s);
    vmm_vm_destroy(t);
    printf("vector state: cpuid.1:ecx %#x (osxsave %d), avx %d, avx512 %d, xcr0 %#x; %llu bytes of vector "
           "registers survive a fork\n", c1, osxsave, avx, avx512, xcr0, (unsigned long long)want);
}

/* Many workers fork the same snapshot through one bound pool at once, each
 * fork echoing its own payloads; meanwhile spinning forks on other workers
 * are kicked from this thread. */
struct cjob { struct vmm_snapshot *s; struct vmm_pool *p; int id; int ok; struct vmm_vm *_Atomic vm; int spin; };
static void cjob_fn(void *arg)
{
    struct cjob *j = arg;
    struct vmm_vm *vm;
    struct vmm_err e = {0};
    if (vmm_fork(j->s, j->p, &vm, &e) != 0) return;
    if (j->spin) {
        atomic_store(&j->vm, vm);
        struct vmm_request q = { .kind = FB_REQ_ECHO, .payload = "go", .payload_len = 2, .timeout_ns = 10 * SEC };
        struct vmm_response r;
        j->ok = vmm_vm_run(vm, &q, &r, &e) == 0 && r.outcome == VMM_KILLED;
        while (atomic_load(&j->vm)) usleep(100);   /* the kicker is done with it */
        vmm_vm_destroy(vm);
        return;
    }
    int good = 1;
    for (int k = 0; k < 20; k++) {
        char msg[48];
        int n = snprintf(msg, sizeof msg, "job %d request %d", j->id, k);
        struct vmm_request q = { .kind = FB_REQ_ECHO, .payload = msg, .payload_len = (uint64_t)n, .timeout_ns = SEC };
        struct vmm_response r;
        if (vmm_vm_run(vm, &q, &r, &e) != 0 || r.outcome != VMM_OK || r.exits != 1 || r.out_len != (uint64_t)n ||
            memcmp(r.out, msg, (size_t)n))
            good = 0;
    }
    vmm_vm_destroy(vm);
    j->ok = good;
}

static void test_concurrency(struct vmm_snapshot *echo, struct vmm_snapshot *spin)
{
    struct vmm_workers *w;
    struct vmm_pool *p;
    OKV(vmm_workers_create(6, &w, &e_));
    OKV(vmm_pool_create(&(struct vmm_pool_config){ .target = 8 }, &p, &e_));
    OKV(vmm_pool_bind(p, echo, &e_));
    enum { N = 48, S = 4 };
    static struct cjob jobs[N + S];
    for (int i = 0; i < N + S; i++) {
        jobs[i] = (struct cjob){ .s = i < N ? echo : spin, .p = i < N ? p : NULL, .id = i, .spin = i >= N };
        CHECK(vmm_workers_submit(w, i < N ? (unsigned)(i % 4) : (unsigned)(4 + i % 2), cjob_fn, &jobs[i]) == 0);
    }
    for (int i = N; i < N + S; i++) {   /* kick each spinning fork once it runs */
        struct vmm_vm *vm;
        while (!(vm = atomic_load(&jobs[i].vm))) usleep(100);
        usleep(5000);
        vmm_vm_kick(vm);
        atomic_store(&jobs[i].vm, NULL);
    }
    vmm_workers_destroy(w);
    for (int i = 0; i < N + S; i++) CHECK(jobs[i].ok);
    vmm_pool_destroy(p);
    printf("concurrency: %d forks echoing on 4 workers, %d kicked on 2 more: all correct\n", N, S);
}

int main(int argc, char **argv)
{
    skip_without_kvm("VMM tests");
    CHECK(argc == 2);
    g_guests = argv[1];
    tmp_init();
    test_probe();
    test_boot_echo();
    test_elf_reject();
    struct vmm_snapshot *echo = make_snapshot("echo", NULL, 0);
    struct vmm_snapshot *spin = make_snapshot("spin", NULL, 0);
    test_fork_echo(echo);
    test_private_bytes(echo);
    test_counter();
    test_vector_state();
    test_timeout(spin);
    test_deadline_required(spin);
    test_deadline_signals(spin);
    test_kick(spin);
    test_crashes();
    test_rogue();
    test_mailbox_fuzz();
    test_big();
    test_pool(echo, spin);
    test_workers(echo);
    test_concurrency(echo, spin);
    vmm_snapshot_close(echo);
    vmm_snapshot_close(spin);
    struct vmm_stats st;
    vmm_stats_get(&st);
    CHECK(st.vms_live == 0 && st.vms_created == st.vms_destroyed);
    printf("stats: %llu vms, %llu forks, %llu runs, %llu exits, %llu crashes, %llu timeouts, %llu kicks\n",
           (unsigned long long)st.vms_created, (unsigned long long)st.forks, (unsigned long long)st.runs,
           (unsigned long long)st.exits, (unsigned long long)st.crashes, (unsigned long long)st.timeouts,
           (unsigned long long)st.kicks);
    tmp_cleanup();
    printf("test_vmm: all passed\n");
    return 0;
}
