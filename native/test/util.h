/*
 * util.h — helpers for the VMM tests and benchmarks: boot a test guest to its
 * READY doorbell, snapshot it into a temp dir, echo requests, look up an ELF
 * symbol (to check a reported fault RIP), and read /proc counters.
 */
#ifndef FORKBOX_TEST_UTIL_H
#define FORKBOX_TEST_UTIL_H

#include <dirent.h>
#include <errno.h>
#include <elf.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "abi.h"
#include "check.h"

static const char *g_guests;
static char g_tmp[256];

static inline void tmp_init(void)
{
    snprintf(g_tmp, sizeof g_tmp, "/tmp/forkbox-vmm-test.XXXXXX");
    CHECK(mkdtemp(g_tmp));
}

static inline void tmp_cleanup(void)
{
    DIR *d = opendir(g_tmp);
    if (!d) return;
    struct dirent *e;
    char p[600];
    while ((e = readdir(d)))
        if (e->d_name[0] != '.') { snprintf(p, sizeof p, "%s/%s", g_tmp, e->d_name); unlink(p); }
    closedir(d);
    rmdir(g_tmp);
}

static inline char *tmp_path(const char *name)
{
    static char buf[8][600];
    static int i;
    char *b = buf[i++ % 8];
    snprintf(b, 600, "%s/%s", g_tmp, name);
    return b;
}

static inline struct vmm_vm *boot_ready(const char *guest, const char *image, uint64_t ram)
{
    struct vmm_boot_config c = { .ram_size = ram ? ram : (64ull << 20), .guest_elf = guest_path(g_guests, guest),
                                 .image_path = image };
    struct vmm_vm *vm = NULL;
    struct vmm_response r;
    OKV(vmm_vm_boot(&c, &vm, &e_));
    OKV(vmm_vm_start(vm, 2000000000ull, &r, &e_));
    if (r.outcome != VMM_OK || r.status != FB_ST_READY)
        fprintf(stderr, "boot %s: outcome %s status %u detail %s\n", guest, vmm_outcome_name(r.outcome), r.status, r.detail);
    CHECK(r.outcome == VMM_OK && r.status == FB_ST_READY);
    return vm;
}

/* Boots `guest`, runs it to READY and snapshots it as <name>.mem/<name>.state. */
static inline struct vmm_snapshot *make_snapshot(const char *guest, const char *image, uint64_t ram)
{
    struct vmm_vm *vm = boot_ready(guest, image, ram);
    char mem[64], st[64];
    snprintf(mem, sizeof mem, "%s.mem", guest);
    snprintf(st, sizeof st, "%s.state", guest);
    OKV(vmm_snapshot_save(vm, tmp_path(mem), tmp_path(st), &e_));
    vmm_vm_destroy(vm);
    struct vmm_snapshot *s = NULL;
    OKV(vmm_snapshot_open(tmp_path(mem), tmp_path(st), &s, &e_));
    return s;
}

static inline struct vmm_response run_req(struct vmm_vm *vm, const char *payload, uint64_t timeout_ns)
{
    struct vmm_request q = { .kind = FB_REQ_ECHO, .payload = payload, .payload_len = strlen(payload),
                             .timeout_ns = timeout_ns };
    struct vmm_response r;
    OKV(vmm_vm_run(vm, &q, &r, &e_));
    return r;
}

static inline uint64_t elf_symbol(const char *path, const char *name)
{
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    uint8_t *f = malloc((size_t)st.st_size);
    CHECK(f && read(fd, f, (size_t)st.st_size) == st.st_size);
    close(fd);
    Elf64_Ehdr *eh = (Elf64_Ehdr *)f;
    Elf64_Shdr *sh = (Elf64_Shdr *)(f + eh->e_shoff);
    uint64_t v = 0;
    for (int i = 0; i < eh->e_shnum; i++) {
        if (sh[i].sh_type != SHT_SYMTAB) continue;
        Elf64_Sym *sym = (Elf64_Sym *)(f + sh[i].sh_offset);
        const char *str = (const char *)(f + sh[sh[i].sh_link].sh_offset);
        for (size_t j = 0; j < sh[i].sh_size / sizeof *sym; j++)
            if (!strcmp(str + sym[j].st_name, name)) v = sym[j].st_value;
    }
    free(f);
    CHECK(v != 0);
    return v;
}

static inline uint64_t vmm_now_ns_test(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    int n = 0;
    while (readdir(d)) n++;
    closedir(d);
    return n;
}

/* A "Key:   123 kB" line of a /proc file, in KiB. */
static inline long proc_kib(const char *file, const char *key)
{
    FILE *f = fopen(file, "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') v = strtol(line + kl + 1, NULL, 10);
    if (f) fclose(f);
    return v;
}

/* Waits until the pool holds n ready shells (its ready shells hold fds too, so
 * fd counts are taken with it full). The refill thread runs at SCHED_IDLE:
 * give a busy machine time. */
static inline void pool_wait_full(struct vmm_pool *p, int n)
{
    struct vmm_pool_stats st;
    for (int i = 0; i < 30000; i++) {
        vmm_pool_stats(p, &st);
        if (st.ready == n) return;
        usleep(1000);
    }
    CHECK(!"pool did not refill within 30 s");
}

static inline int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static inline uint64_t pct(uint64_t *v, int n, int p)
{
    qsort(v, (size_t)n, sizeof *v, cmp_u64);
    int i = (int)((long)n * p / 100);
    return v[i >= n ? n - 1 : i];
}

#endif
