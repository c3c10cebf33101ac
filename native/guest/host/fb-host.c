/*
 * fb-host.c — runs the guest runtime as an ordinary Linux process, for tests
 * and debugging: maps guest RAM at address 0, the image read-only at
 * FB_IMAGE_BASE and the mailbox at FB_MAILBOX_BASE, writes the boot info,
 * loads runtime.elf and jumps to it. The guest's `out` to the doorbell traps
 * (SIGSEGV): the handler plays the VMM (prints the response, fills the next
 * request) and resumes after the instruction. The guest owns FS while it
 * runs; the handler swaps the host's FS base in before touching libc.
 * Guest-to-host calls (FB_ST_CALL) are answered with -ENOSYS, as by a host
 * that serves no processes; with --processes the harness serves fork, wait,
 * kill and the wait call itself with host processes (one per guest process,
 * a shared table for pids and signals), enough to test the runtime's side.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>
#include "abi.h"

#define MAXREQ 256
static struct { const char *data; size_t len; int bad; uint32_t kind; } g_req[MAXREQ];
static uint32_t g_kind = FB_REQ_EXEC; /* --kind N: the kind of the next request */
static int g_nreq, g_next, g_quiet, g_dirty, g_touch;
static uint64_t g_host_fs, g_tsc_khz, g_ram, g_mem_limit, g_seq, g_t_boot, g_out_cap = FB_MB_OUT_SIZE;
static int g_seen_ready;
static uint64_t g_t_resume;
static struct fb_mailbox *g_mb;

/* --processes: one host process per guest process; the table is shared by all */
#define MAXPROC 64
#define FIRST_PID 2   /* the group's first process keeps pid 2, its parent is 1 (abi.h) */
struct proc_ent { int used, gpid, gppid, hpid; uint64_t sigs; };
static struct proc_ent *g_procs;
static int g_self, g_processes;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
static inline uint64_t rdtsc(void) { uint32_t lo, hi; __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi)); return ((uint64_t)hi << 32) | lo; }
static inline uint64_t rdfs(void) { uint64_t v; __asm__ volatile("rdfsbase %0" : "=r"(v)); return v; }
static inline void wrfs(uint64_t v) { __asm__ volatile("wrfsbase %0" : : "r"(v) : "memory"); }

static void die(const char *what)
{
    fprintf(stderr, "fb-host: %s: %s\n", what, strerror(errno));
    exit(2);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) die(path);
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    size_t r;
    while ((r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) b = realloc(b, cap *= 2);
    }
    fclose(f);
    *len = n;
    return b;
}

/* --dirty: guest RAM is write-protected at each doorbell; the first write to
 * a page faults once, is counted and unprotected: the pages a fork would copy. */
static long g_dirty_rt, g_dirty_arena;
static FILE *g_dirty_log;
static void clear_dirty(void)
{
    g_dirty_rt = g_dirty_arena = 0;
    if (mprotect((void *)0, g_ram, g_touch ? PROT_NONE : PROT_READ | PROT_EXEC)) g_dirty = 0;
}

static void put_area(const char *name, const uint8_t *p, uint64_t len, uint64_t max)
{
    if (len > max) { printf("#%s invalid length %llu\n", name, (unsigned long long)len); return; }
    printf("#%s %llu\n", name, (unsigned long long)len);
    fwrite(p, 1, len, stdout);
    if (len && p[len - 1] != '\n') putchar('\n');
}

static void print_response(void)
{
    struct fb_mailbox *m = g_mb;
    static const char *names[] = { "?", "READY", "DONE", "EXIT", "ERROR" };
    uint32_t st = m->status;
    printf("#response seq=%llu status=%s exit=%d syscalls=%llu arena=%llu flags=%u\n",
           (unsigned long long)m->ack_seq, st <= 4 ? names[st] : "?", m->exit_code,
           (unsigned long long)m->syscalls, (unsigned long long)m->arena_used, m->out_flags);
    put_area("stdout", (uint8_t *)m + FB_MB_OUT_OFF, m->out_len, FB_MB_OUT_SIZE);
    put_area("stderr", (uint8_t *)m + FB_MB_ERR_OFF, m->err_len, FB_MB_ERR_SIZE);
    put_area("result", (uint8_t *)m + FB_MB_RESULT_OFF, m->result_len, FB_MB_RESULT_SIZE);
}

static void fill_header(uint32_t kind, uint64_t len)
{
    struct fb_mailbox *m = g_mb;
    m->magic = FB_MAILBOX_MAGIC;
    m->abi_version = FB_ABI_VERSION;
    m->req_kind = kind;
    m->seq = ++g_seq;
    m->req_len = len;
    m->wall_ns = now_ns();
    m->tsc_khz = g_tsc_khz;
    m->out_cap = g_out_cap;
    m->err_cap = FB_MB_ERR_SIZE;
    m->mem_limit = g_mem_limit;
    if (getrandom(m->entropy, sizeof m->entropy, 0) != sizeof m->entropy) die("getrandom");
}

/* Linux wait status of a waitid() answer */
static int wstatus(const siginfo_t *si)
{
    if (si->si_code == CLD_EXITED) return (si->si_status & 0xff) << 8;
    return (si->si_status & 0x7f) | (si->si_code == CLD_DUMPED ? 0x80 : 0);
}

static struct proc_ent *proc_by_gpid(int gpid)
{
    for (int i = 0; i < MAXPROC; i++) if (g_procs[i].used && g_procs[i].gpid == gpid) return &g_procs[i];
    return 0;
}

/* a guest-to-host call: without --processes every call is -ENOSYS */
static void serve_call(void)
{
    struct fb_mailbox *m = g_mb;
    struct fb_call c;
    memcpy(&c, (uint8_t *)m + FB_MB_RESULT_OFF, sizeof c);
    struct fb_answer a;
    memset(&a, 0, sizeof a);
    a.ret = -ENOSYS;
    struct proc_ent *me = g_processes ? &g_procs[g_self] : 0;
    if (me && c.nr == FB_CALL_FORK) {
        int k = 1;
        while (k < MAXPROC && g_procs[k].used) k++;
        if (k == MAXPROC) a.ret = -EAGAIN;
        else {
            g_procs[k].used = 1;
            g_procs[k].gpid = k * FB_PID_STRIDE;
            g_procs[k].gppid = me->gpid;
            g_procs[k].sigs = 0;
            fflush(stdout);
            pid_t h = fork();
            if (h < 0) { g_procs[k].used = 0; a.ret = -EAGAIN; }
            else if (h == 0) {
                g_self = k;
                g_procs[k].hpid = getpid();
                a.ret = 0;
                a.val[0] = g_procs[k].gpid;
                a.val[1] = me->gpid;
                me = &g_procs[k];
            } else {
                g_procs[k].hpid = h;
                a.ret = g_procs[k].gpid;
            }
        }
    } else if (me && c.nr == FB_CALL_WAITPID) {
        int hp = 0;
        struct proc_ent *t = 0;
        if (c.arg[0] > 0) {
            t = proc_by_gpid((int)c.arg[0]);
            if (!t || t->gppid != me->gpid) { a.ret = -ECHILD; goto answer; }
            hp = t->hpid;
        }
        siginfo_t si;
        memset(&si, 0, sizeof si);
        int opts = WEXITED | WNOHANG | ((c.arg[1] & 0x01000000) ? WNOWAIT : 0);
        if (waitid(hp ? P_PID : P_ALL, (id_t)hp, &si, opts)) { a.ret = -errno; goto answer; }
        if (!si.si_pid) { a.ret = 0; goto answer; }
        for (int i = 0; i < MAXPROC; i++)
            if (g_procs[i].used && g_procs[i].hpid == si.si_pid) {
                a.ret = g_procs[i].gpid;
                a.val[0] = wstatus(&si);
                if (!(opts & WNOWAIT)) g_procs[i].used = 0;
            }
    } else if (me && c.nr == FB_CALL_KILL) {
        int sig = (int)c.arg[1], n = 0;
        if (sig < 0 || sig > 64) { a.ret = -EINVAL; goto answer; }
        for (int i = 0; i < MAXPROC; i++) {
            struct proc_ent *t = &g_procs[i];
            if (!t->used || t == me || (c.arg[0] > 0 && t->gpid != c.arg[0])) continue;
            if (kill(t->hpid, 0)) continue;
            n++;
            if (sig == SIGKILL) kill(t->hpid, SIGKILL);
            else if (sig) __atomic_fetch_or(&t->sigs, 1ull << (sig - 1), __ATOMIC_SEQ_CST);
        }
        a.ret = n ? 0 : -ESRCH;
    } else if (me && c.nr == FB_CALL_WAIT) {
        /* until a signal, a child's end (FB_WAIT_CHILD) or the timeout; pipes and futexes
         * are not served here, so a wait naming them ends at once (callers look again) */
        uint64_t end = c.arg[0] < 0 ? 0 : mono_ns() + (uint64_t)c.arg[0];
        a.ret = 0;
        for (;;) {
            if (__atomic_load_n(&me->sigs, __ATOMIC_SEQ_CST) || c.arg[1] || c.arg[2]) break;
            if (c.arg[3] & FB_WAIT_CHILD) {
                siginfo_t si;
                memset(&si, 0, sizeof si);
                if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) || si.si_pid) break;
            }
            if (end && mono_ns() >= end) { a.ret = -ETIMEDOUT; break; }
            usleep(500);
        }
    }
answer:
    if (me) a.signals = __atomic_exchange_n(&me->sigs, 0, __ATOMIC_SEQ_CST);
    if (!g_quiet || c.nr != FB_CALL_WAIT)
        printf("#call nr=%u arg0=%lld ret=%lld pid=%d\n", c.nr, (long long)c.arg[0], (long long)a.ret,
               me ? me->gpid : FIRST_PID);
    memcpy((uint8_t *)m + FB_MB_REQ_OFF, &a, sizeof a);
    fill_header(FB_REQ_ANSWER, sizeof a);
}

static void fill_request(void)
{
    struct fb_mailbox *m = g_mb;
    size_t len = g_req[g_next].len;
    if (len > FB_MB_REQ_SIZE) len = FB_MB_REQ_SIZE;
    memcpy((uint8_t *)m + FB_MB_REQ_OFF, g_req[g_next].data, len);
    int bad = g_req[g_next].bad;
    g_next++;
    fill_header(g_req[g_next - 1].kind, bad ? FB_MB_REQ_SIZE + 1 : len); /* --bad-request: the guest must refuse it */
}

static void on_signal(int sig, siginfo_t *si, void *ctx)
{
    uint64_t guest_fs = rdfs();
    wrfs(g_host_fs);
    ucontext_t *uc = ctx;
    greg_t *gr = uc->uc_mcontext.gregs;
    uint8_t *ip = (uint8_t *)gr[REG_RIP];
    int len = 0;
    uint64_t port = 0;
    if (g_dirty && sig == SIGSEGV && si->si_code == SEGV_ACCERR && (uint64_t)si->si_addr < g_ram) {
        uint64_t pg = (uint64_t)si->si_addr & ~4095ull;
        if (!mprotect((void *)pg, 4096, PROT_READ | PROT_WRITE | PROT_EXEC)) {
            if (pg < FB_ARENA_BASE) g_dirty_rt++; else g_dirty_arena++;
            if (g_dirty_log) fprintf(g_dirty_log, "%llx %llx\n", (unsigned long long)pg, (unsigned long long)gr[REG_RIP]);
            wrfs(guest_fs);
            return;
        }
    }
    if (sig == SIGSEGV && (uint64_t)ip < FB_RUNTIME_LIMIT && (uint64_t)ip >= FB_RUNTIME_BASE) {
        if (ip[0] == 0xee || ip[0] == 0xef) { len = 1; port = (uint16_t)gr[REG_RDX]; }
        else if (ip[0] == 0xe6 || ip[0] == 0xe7) { len = 2; port = ip[1]; }
    }
    if (!len || port != FB_PORT_DOORBELL) {
        fprintf(stderr, "fb-host: guest crash: signal %d at rip=%p addr=%p rsp=%llx fs=%llx\n", sig, (void *)ip,
                si->si_addr, (unsigned long long)gr[REG_RSP], (unsigned long long)guest_fs);
        fflush(stdout);
        _exit(139);
    }
    uint64_t t = mono_ns();
    uint32_t st = g_mb->status;
    if (st == FB_ST_CALL) {
        /* the output since the previous doorbell goes with the call */
        if (g_mb->out_len) put_area("stdout", (uint8_t *)g_mb + FB_MB_OUT_OFF, g_mb->out_len, FB_MB_OUT_SIZE);
        if (g_mb->err_len) put_area("stderr", (uint8_t *)g_mb + FB_MB_ERR_OFF, g_mb->err_len, FB_MB_ERR_SIZE);
        serve_call();
        fflush(stdout);
        gr[REG_RIP] += len;
        wrfs(guest_fs);
        return;
    }
    if (g_dirty && st != FB_ST_READY)
        printf("#%s runtime=%ld arena=%ld\n", g_touch ? "touched" : "dirty", g_dirty_rt, g_dirty_arena);
    if (st == FB_ST_READY) {
        g_seen_ready = 1;
        if (!g_quiet) printf("#ready boot_ms=%.1f\n", (t - g_t_boot) / 1e6);
        if (g_mb->out_len || g_mb->err_len) print_response();
    } else {
        if (!g_quiet) printf("#exec_ms %.3f\n", (t - g_t_resume) / 1e6);
        print_response();
        /* an ERROR answer to a bad request is not fatal: the guest waits for the next one */
        if (st != FB_ST_DONE && !(st == FB_ST_ERROR && g_seen_ready)) {
            fflush(stdout);
            if (st == FB_ST_EXIT && g_processes && (g_mb->out_flags & FB_EXIT_SIGNALED)) {
                /* a guest killed by a signal: this process ends the same way for its waiter */
                int sig = g_mb->exit_code - 128;
                if (sig > 0 && sig < 32) {
                    signal(sig, SIG_DFL);
                    sigset_t ss;
                    sigemptyset(&ss);
                    sigaddset(&ss, sig);
                    sigprocmask(SIG_UNBLOCK, &ss, 0);
                    raise(sig);
                }
            }
            _exit(st == FB_ST_EXIT ? (g_mb->exit_code & 0xff) : 3);
        }
    }
    fflush(stdout);
    if (g_next >= g_nreq) _exit(0);
    fill_request();
    if (g_dirty) { if (g_dirty_log) fprintf(g_dirty_log, "--- request %llu\n", (unsigned long long)g_seq); clear_dirty(); }
    gr[REG_RIP] += len;
    g_t_resume = mono_ns();
    wrfs(guest_fs);
}

static uint64_t load_runtime(const char *path)
{
    size_t n;
    char *f = slurp(path, &n);
    Elf64_Ehdr *h = (Elf64_Ehdr *)f;
    if (n < sizeof *h || memcmp(h->e_ident, ELFMAG, 4) || h->e_phoff > n || h->e_phnum * sizeof(Elf64_Phdr) > n - h->e_phoff) {
        fprintf(stderr, "fb-host: %s: not an ELF\n", path);
        exit(2);
    }
    Elf64_Phdr *ph = (Elf64_Phdr *)(f + h->e_phoff);
    for (int i = 0; i < h->e_phnum; i++) {
        if (ph[i].p_type != PT_LOAD) continue;
        if (ph[i].p_vaddr < FB_RUNTIME_BASE || ph[i].p_vaddr + ph[i].p_memsz > FB_RUNTIME_LIMIT ||
            ph[i].p_offset + ph[i].p_filesz > n || ph[i].p_filesz > ph[i].p_memsz) {
            fprintf(stderr, "fb-host: runtime segment out of range\n");
            exit(2);
        }
        memcpy((void *)ph[i].p_vaddr, f + ph[i].p_offset, ph[i].p_filesz);
    }
    uint64_t e = h->e_entry;
    free(f);
    return e;
}

static void usage(void)
{
    fprintf(stderr, "usage: fb-host [--runtime ELF] [--ram MiB] [--mem-limit BYTES] [--quiet] [--processes] [--dirty|--touched] [--dirty-log FILE]\n"
                    "               [[--kind N] --request STR | --request-file FILE | --bad-request STR]... [--out-cap N] [--env K=V]... IMAGE PROGRAM [ARGS...]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *runtime = "native/out/runtime.elf";
    static char args[FB_BOOT_ARGS_MAX];
    const char *envs[64];
    int nenv = 0, i;
    g_ram = 1024ull << 20;
    for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1] == '-'; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--quiet")) { g_quiet = 1; continue; }
        if (!strcmp(o, "--processes")) { g_processes = 1; continue; }
        if (!strcmp(o, "--dirty")) { g_dirty = 1; continue; }
        if (!strcmp(o, "--touched")) { g_dirty = g_touch = 1; continue; } /* count reads too */
        if (!strcmp(o, "--dirty-log") && i + 1 < argc) { g_dirty = 1; g_dirty_log = fopen(argv[++i], "w"); if (!g_dirty_log) die("dirty log"); continue; }
        if (i + 1 >= argc) usage();
        const char *v = argv[++i];
        if (!strcmp(o, "--runtime")) runtime = v;
        else if (!strcmp(o, "--ram")) g_ram = strtoull(v, 0, 0) << 20;
        else if (!strcmp(o, "--mem-limit")) g_mem_limit = strtoull(v, 0, 0);
        else if (!strcmp(o, "--kind")) { g_kind = (uint32_t)strtoul(v, 0, 0); continue; }
        else if (!strcmp(o, "--request") && g_nreq < MAXREQ) { g_req[g_nreq].data = v; g_req[g_nreq++].len = strlen(v); }
        else if (!strcmp(o, "--request-file") && g_nreq < MAXREQ) { g_req[g_nreq].data = slurp(v, &g_req[g_nreq].len); g_nreq++; }
        else if (!strcmp(o, "--env") && nenv < 64) envs[nenv++] = v;
        else if (!strcmp(o, "--bad-request") && g_nreq < MAXREQ) { g_req[g_nreq].data = v; g_req[g_nreq].len = strlen(v); g_req[g_nreq++].bad = 1; }
        else if (!strcmp(o, "--out-cap")) g_out_cap = strtoull(v, 0, 0) > FB_MB_OUT_SIZE ? FB_MB_OUT_SIZE : strtoull(v, 0, 0);
        else usage();
        if (g_nreq && !g_req[g_nreq - 1].kind) { g_req[g_nreq - 1].kind = g_kind; g_kind = FB_REQ_EXEC; }
    }
    if (argc - i < 2) usage();
    const char *image = argv[i++];

    int fd = open(image, O_RDONLY);
    if (fd < 0) die(image);
    struct stat st;
    if (fstat(fd, &st)) die("fstat");
    if ((uint64_t)st.st_size > FB_IMAGE_MAX) { fprintf(stderr, "fb-host: image too big\n"); return 2; }
    if (mmap((void *)FB_IMAGE_BASE, (size_t)st.st_size, PROT_READ, MAP_PRIVATE | MAP_FIXED_NOREPLACE, fd, 0) != (void *)FB_IMAGE_BASE)
        die("mmap image");
    close(fd);
    if (mmap((void *)0, g_ram, PROT_READ | PROT_WRITE | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0) != (void *)0) {
        fprintf(stderr, "fb-host: cannot map guest RAM at address 0 (needs vm.mmap_min_addr=0): %s\n", strerror(errno));
        return 77;
    }
    g_mb = mmap((void *)FB_MAILBOX_BASE, FB_MAILBOX_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE | MAP_NORESERVE, -1, 0);
    if (g_mb != (void *)FB_MAILBOX_BASE) die("mmap mailbox");

    /* TSC frequency: calibrate against CLOCK_MONOTONIC */
    uint64_t t0 = mono_ns(), c0 = rdtsc();
    while (mono_ns() - t0 < 20000000) {}
    uint64_t t1 = mono_ns(), c1 = rdtsc();
    g_tsc_khz = (c1 - c0) * 1000000ull / (t1 - t0);

    struct fb_boot_info *b = (struct fb_boot_info *)FB_BOOT_INFO_ADDR;
    b->magic = FB_BOOT_MAGIC;
    b->abi_version = FB_ABI_VERSION;
    b->ram_size = g_ram;
    b->image_base = FB_IMAGE_BASE;
    b->image_size = (uint64_t)st.st_size;
    b->mailbox_base = FB_MAILBOX_BASE;
    b->mailbox_size = FB_MAILBOX_SIZE;
    b->tsc_khz = g_tsc_khz;
    b->wall_ns = now_ns();
    size_t o = 0;
    for (int k = i; k < argc; k++) {
        size_t l = strlen(argv[k]) + 1;
        if (o + l + 2 > sizeof args) { fprintf(stderr, "fb-host: args too long\n"); return 2; }
        memcpy(args + o, argv[k], l); o += l;
    }
    args[o++] = 0;
    for (int k = 0; k < nenv; k++) {
        size_t l = strlen(envs[k]) + 1;
        if (o + l + 1 > sizeof args) { fprintf(stderr, "fb-host: args too long\n"); return 2; }
        memcpy(args + o, envs[k], l); o += l;
    }
    args[o++] = 0;
    memcpy(b->args, args, o);
    b->args_len = (uint32_t)o;
    /* boot-time output (start-up errors) is kept */
    g_mb->magic = FB_MAILBOX_MAGIC;
    g_mb->abi_version = FB_ABI_VERSION;
    g_mb->out_cap = FB_MB_OUT_SIZE;
    g_mb->err_cap = FB_MB_ERR_SIZE;

    uint64_t entry = load_runtime(runtime);
    if (g_processes) {
        g_procs = mmap(0, MAXPROC * sizeof *g_procs, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (g_procs == MAP_FAILED) die("mmap process table");
        g_procs[0] = (struct proc_ent){ .used = 1, .gpid = FIRST_PID, .gppid = 1, .hpid = getpid() };
    }

    static uint8_t altstack[1 << 16];
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack };
    if (sigaltstack(&ss, 0)) die("sigaltstack");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_signal;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_NODEFER;
    int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGTRAP };
    for (unsigned k = 0; k < sizeof sigs / sizeof sigs[0]; k++)
        if (sigaction(sigs[k], &sa, 0)) die("sigaction");
    fflush(stdout);
    g_host_fs = rdfs();
    g_t_boot = mono_ns();
    __asm__ volatile("mov %0, %%rsp\n\tjmp *%1" : : "r"(FB_RUNTIME_STACK_TOP), "r"(entry) : "memory");
    __builtin_unreachable();
}
