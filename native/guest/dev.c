/*
 * dev.c — synthetic files (/dev/null, zero, urandom, the /proc and /sys
 * entries the runtimes read) and their file operations, the console (fd 1/2
 * write into the mailbox OUT and ERR areas, bounded by the host's caps, never
 * blocking; fd 0 is empty), and the control device /dev/forkbox: read() rings the doorbell when no request is open and
 * returns the request payload; write() stores the response; exit rings with
 * FB_ST_EXIT. Requests of the runtime's own kinds (file requests, files.c) are
 * answered inside read(), which rings again: the program never sees them.
 * Every mailbox field written by the host is validated.
 */
#include "fdtab.h"
#include "files.h"

void fb_doorbell(void);

const struct devfile g_devs[] = {
    { "/dev", DEV_DIR, S_IFDIR | 0755 },
    { "/dev/null", DEV_NULL, S_IFCHR | 0666 },
    { "/dev/zero", DEV_ZERO, S_IFCHR | 0666 },
    { "/dev/urandom", DEV_URANDOM, S_IFCHR | 0666 },
    { "/dev/random", DEV_URANDOM, S_IFCHR | 0666 },
    { "/dev/forkbox", DEV_CTL, S_IFCHR | 0600 },
    { "/proc", DEV_DIR, S_IFDIR | 0555 },
    { "/proc/self", DEV_DIR, S_IFDIR | 0555 },
    { "/proc/self/exe", DEV_LINK, S_IFLNK | 0777 },
    { "/proc/self/maps", DEV_TEXT, S_IFREG | 0444 },
    { "/proc/self/stat", DEV_TEXT, S_IFREG | 0444 },
    { "/proc/cpuinfo", DEV_TEXT, S_IFREG | 0444 },
    { "/proc/meminfo", DEV_TEXT, S_IFREG | 0444 },
    { "/proc/forkbox", DEV_DIR, S_IFDIR | 0555 },
    { "/proc/forkbox/syscalls", DEV_TEXT, S_IFREG | 0444 },
    { "/proc/sys", DEV_DIR, S_IFDIR | 0555 },
    { "/proc/sys/kernel", DEV_DIR, S_IFDIR | 0555 },
    { "/proc/sys/kernel/random", DEV_DIR, S_IFDIR | 0555 },
    { "/proc/sys/kernel/random/uuid", DEV_TEXT, S_IFREG | 0444 },
    { "/proc/sys/kernel/random/boot_id", DEV_TEXT, S_IFREG | 0444 },
    { "/sys", DEV_DIR, S_IFDIR | 0555 },
    { "/sys/devices", DEV_DIR, S_IFDIR | 0555 },
    { "/sys/devices/system", DEV_DIR, S_IFDIR | 0555 },
    { "/sys/devices/system/cpu", DEV_DIR, S_IFDIR | 0555 },
    { "/sys/devices/system/cpu/cpu0", DEV_DIR, S_IFDIR | 0555 },
    { "/sys/devices/system/cpu/online", DEV_TEXT, S_IFREG | 0444 },
    { "/sys/devices/system/cpu/possible", DEV_TEXT, S_IFREG | 0444 },
};
#define NDEV (int)(sizeof g_devs / sizeof g_devs[0])

int dev_count(void) { return NDEV; }
int dev_lookup(const char *path)
{
    for (int i = 0; i < NDEV; i++) if (!strcmp(g_devs[i].path, path)) return i;
    return -ENOENT;
}
const char *dev_link_target(int idx) { (void)idx; return g_exe_path; }

static void uuid_text(char *b, int boot)
{
    static u8 boot_id[16];
    u8 u[16];
    if (boot) { if (!boot_id[6]) { rng_fill(boot_id, 16); boot_id[6] = (boot_id[6] & 0x0f) | 0x40; } memcpy(u, boot_id, 16); }
    else { rng_fill(u, 16); u[6] = (u[6] & 0x0f) | 0x40; }
    u[8] = (u[8] & 0x3f) | 0x80;
    int o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) b[o++] = '-';
        b[o++] = "0123456789abcdef"[u[i] >> 4];
        b[o++] = "0123456789abcdef"[u[i] & 15];
    }
    b[o++] = '\n';
    b[o] = 0;
}

extern u64 g_ram_size;
int dev_text(int idx, char **out, u64 *len)
{
    const char *p = g_devs[idx].path;
    u64 cap = !strcmp(p, "/proc/self/maps") || !strcmp(p, "/proc/forkbox/syscalls") ? 65536 : 1024;
    char *b = kmalloc(cap);
    if (!b) return -ENOMEM;
    if (!strcmp(p, "/proc/self/maps")) mm_maps_text(b, cap);
    else if (!strcmp(p, "/proc/forkbox/syscalls")) {
        /* debugging: "number count" for every syscall number seen since boot */
        u64 o = 0;
        for (int n = 0; n < 512 && o + 32 < cap; n++)
            if (g_sys_count[n]) o += (u64)rt_snprintf(b + o, cap - o, "%d %u\n", n, g_sys_count[n]);
        b[o] = 0;
    } else if (!strcmp(p, "/proc/self/stat")) {
        /* proc(5)'s 52 fields; libuv (Node's process.memoryUsage) reads field 24, rss in
         * pages. Used arena pages stand for both vsize and rss; times are not kept. */
        u64 used = mm_used_bytes();
        const char *comm = g_exe_path;
        for (const char *c = g_exe_path; *c; c++) if (*c == '/') comm = c + 1;
        rt_snprintf(b, cap, "%d (%s) R %d %d %d 0 -1 4194304 0 0 0 0 0 0 0 0 20 0 %d 0 0 %lu %lu "
                            "18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n",
                    g_pid, *comm ? comm : "program", g_ppid, FB_PID, FB_PID, g_nthreads, used, used / PAGE);
    } else if (!strcmp(p, "/proc/cpuinfo"))
        rt_snprintf(b, cap, "processor\t: 0\nvendor_id\t: forkbox\nmodel name\t: forkbox vCPU\n"
                            "cpu MHz\t\t: %lu\ncpu cores\t: 1\nsiblings\t: 1\n\n", (u64)0);
    else if (!strcmp(p, "/proc/meminfo")) {
        u64 tot = (g_mem_limit ? g_mem_limit : g_ram_size) >> 10, used = mm_used_bytes() >> 10;
        u64 fr = tot > used ? tot - used : 0;
        rt_snprintf(b, cap, "MemTotal:       %lu kB\nMemFree:        %lu kB\nMemAvailable:   %lu kB\n", tot, fr, fr);
    } else if (!strcmp(p, "/proc/sys/kernel/random/uuid")) uuid_text(b, 0);
    else if (!strcmp(p, "/proc/sys/kernel/random/boot_id")) uuid_text(b, 1);
    else if (!strcmp(p, "/sys/devices/system/cpu/online") || !strcmp(p, "/sys/devices/system/cpu/possible"))
        strcpy_n(b, "0\n", cap);
    else { kfree(b); return -ENOENT; }
    *out = b;
    *len = strlen(b);
    return 0;
}

/* ---- descriptor types (fdtab.h) ---- */
static i64 seek_nothing(struct file *f, i64 off, int whence) { return 0; }
static i64 null_read(struct file *f, u8 *buf, u64 n, u64 *off) { return 0; }
static i64 sink_write(struct file *f, const u8 *buf, u64 n, u64 *off) { return (i64)n; }
#define FIONREAD 0x541B
static i64 null_ioctl(struct file *f, u64 req, u64 arg)
{
    if (req != FIONREAD) return -ENOTTY;
    if (!uaccess_w((void *)arg, 4)) return -EFAULT;
    *(int *)arg = 0;
    return 0;
}
static const struct file_ops null_ops = {
    .mode = S_IFCHR, .read = null_read, .write = sink_write, .lseek = seek_nothing, .ioctl = null_ioctl,
};

static i64 zero_read(struct file *f, u8 *buf, u64 n, u64 *off) { memset(buf, 0, n); return (i64)n; }
static int zero_map(struct file *f, const u8 **data, u64 *size) { *data = 0; *size = 0; return 0; }
static const struct file_ops zero_ops = {
    .mode = S_IFCHR, .read = zero_read, .write = sink_write, .lseek = seek_nothing, .map = zero_map,
};

static i64 random_read(struct file *f, u8 *buf, u64 n, u64 *off) { rng_fill(buf, n); return (i64)n; }
static i64 random_write(struct file *f, const u8 *buf, u64 n, u64 *off) { rng_reseed(buf, n < 64 ? n : 64); return (i64)n; }
static const struct file_ops random_ops = {
    .mode = S_IFCHR, .read = random_read, .write = random_write, .lseek = seek_nothing,
};

static i64 ctl_fread(struct file *f, u8 *buf, u64 n, u64 *off) { return ctl_read(buf, n); }
static i64 ctl_fwrite(struct file *f, const u8 *buf, u64 n, u64 *off) { return ctl_write(buf, n); }
static const struct file_ops ctl_ops = { .mode = S_IFCHR, .read = ctl_fread, .write = ctl_fwrite };

static i64 text_read(struct file *f, u8 *buf, u64 n, u64 *off)
{
    if (*off >= f->text_len) return 0;
    u64 c = f->text_len - *off < n ? f->text_len - *off : n;
    memcpy(buf, f->text + *off, c);
    *off += c;
    return (i64)c;
}
static i64 text_lseek(struct file *f, i64 off, int whence) { return fd_seek(f, off, whence, (i64)f->text_len); }
static void text_release(struct file *f) { kfree(f->text); }
static const struct file_ops text_ops = {
    .mode = S_IFREG, .caps = FOP_PIO, .read = text_read, .lseek = text_lseek, .release = text_release,
};

/* a device node found by vfs_resolve (directories and links are not opened here) */
int dev_open(const struct vref *r, u32 flags, struct file **out)
{
    int t = g_devs[r->dev].type;
    const struct file_ops *ops = t == DEV_NULL ? &null_ops : t == DEV_ZERO ? &zero_ops : t == DEV_URANDOM ? &random_ops
                               : t == DEV_CTL ? &ctl_ops : &text_ops;
    if (ops == &text_ops && (flags & O_ACCMODE) != O_RDONLY) return -EACCES;
    struct file *f = fnew(ops, flags);
    if (!f) return -ENOMEM;
    f->ref = *r;
    int e;
    if (ops == &text_ops && (e = dev_text(r->dev, (char **)&f->text, &f->text_len))) { fput(f); return e; }
    *out = f;
    return 0;
}

/* the console: stdin is empty, stdout and stderr go to the mailbox */
static i64 out_write(struct file *f, const u8 *buf, u64 n, u64 *off) { return console_write(1, buf, n); }
static i64 err_write(struct file *f, const u8 *buf, u64 n, u64 *off) { return console_write(2, buf, n); }
static int out_stat(struct file *f, struct kstat *st) { return fd_anon_stat(st, S_IFIFO | 0600, 58); }
static int err_stat(struct file *f, struct kstat *st) { return fd_anon_stat(st, S_IFIFO | 0600, 59); }
static int in_stat(struct file *f, struct kstat *st) { return fd_anon_stat(st, S_IFIFO | 0600, 60); }
static const struct file_ops stdin_ops = { .mode = S_IFIFO, .read = null_read, .stat = in_stat };
static const struct file_ops stdout_ops = { .mode = S_IFIFO, .write = out_write, .stat = out_stat };
static const struct file_ops stderr_ops = { .mode = S_IFIFO, .write = err_write, .stat = err_stat };

void console_init(void)
{
    struct file *in = fnew(&stdin_ops, O_RDONLY), *out = fnew(&stdout_ops, O_WRONLY), *err = fnew(&stderr_ops, O_WRONLY);
    if (!in || !out || !err) rt_panic("console_init: out of memory");
    if (fd_install(in, 0, 0) != 0 || fd_install(out, 1, 0) != 1 || fd_install(err, 2, 0) != 2) rt_panic("console_init: fds 0-2 taken");
}

/* ---- mailbox, console, control device ---- */
static HOT struct fb_mailbox *g_mb;
static HOT u64 g_out_cap, g_err_cap, g_out_len, g_err_len, g_seq, g_req_len, g_req_pos;
static HOT u32 g_flags;
static HOT int g_req_open, g_responded;
HOT u64 g_mem_limit;

static int mb_valid(const struct fb_mailbox *m)
{
    return m->magic == FB_MAILBOX_MAGIC && m->abi_version == FB_ABI_VERSION &&
           m->req_len <= FB_MB_REQ_SIZE && m->out_cap <= FB_MB_OUT_SIZE && m->err_cap <= FB_MB_ERR_SIZE;
}

void ctl_boot(void)
{
    const struct fb_boot_info *b = g_boot;
    if (b->mailbox_base != FB_MAILBOX_BASE || b->mailbox_size < FB_MAILBOX_SIZE) rt_panic("boot info: bad mailbox");
    g_mb = (struct fb_mailbox *)FB_MAILBOX_BASE;
    /* output before the first request (start-up errors, a traceback) is kept so the
     * host can show why a template failed; caps are the host's if it set a header */
    g_out_cap = FB_MB_OUT_SIZE;
    g_err_cap = FB_MB_ERR_SIZE;
    if (mb_valid(g_mb)) { g_out_cap = g_mb->out_cap; g_err_cap = g_mb->err_cap; }
}

i64 console_write(int which, const u8 *buf, u64 n)
{
    u64 *len = which == 1 ? &g_out_len : &g_err_len;
    u64 cap = which == 1 ? g_out_cap : g_err_cap;
    u8 *area = (u8 *)FB_MAILBOX_BASE + (which == 1 ? FB_MB_OUT_OFF : FB_MB_ERR_OFF);
    u64 room = cap > *len ? cap - *len : 0, c = n < room ? n : room;
    memcpy(area + *len, buf, c);
    *len += c;
    if (c < n) g_flags |= which == 1 ? FB_OUT_TRUNCATED : FB_ERR_TRUNCATED;
    return (i64)n;
}

static void publish(u32 status, int code)
{
    g_mb->exit_code = code;
    g_mb->ack_seq = g_seq;
    g_mb->out_len = g_out_len;
    g_mb->err_len = g_err_len;
    g_mb->out_flags = g_flags;
    g_mb->syscalls = g_sys_total;
    g_mb->arena_used = mm_used_bytes();
    g_mb->arena_peak = mm_peak_bytes();
    g_mb->status = status;
}

static void error_result(const char *msg)
{
    u64 l = strlen(msg);
    memcpy((u8 *)g_mb + FB_MB_RESULT_OFF, msg, l);
    g_mb->result_len = l;
}

/* a request of the runtime's own: the answer is a struct fb_file_resp + OUT */
static void serve_runtime(u32 kind)
{
    struct fb_file_resp rs;
    u64 ol = 0;
    shmap_sync_all(); /* the host reads what shared file mappings hold */
    files_serve(kind, (const u8 *)g_mb + FB_MB_REQ_OFF, g_req_len, &rs, (u8 *)g_mb + FB_MB_OUT_OFF, g_out_cap, &ol);
    memcpy((u8 *)g_mb + FB_MB_RESULT_OFF, &rs, sizeof rs);
    g_mb->result_len = sizeof rs;
    g_out_len = ol;
}

i64 ctl_read(u8 *buf, u64 n)
{
    if (!g_req_open) {
        u32 st = g_responded ? FB_ST_DONE : FB_ST_READY, kind;
        for (;;) {
            publish(st, 0);
            fb_doorbell();
            /* the host has filled a request (for a fork: right after the snapshot point) */
            if (!mb_valid(g_mb)) {
                error_result("guest: invalid mailbox header");
                st = FB_ST_ERROR;
                continue;
            }
            g_seq = g_mb->seq;
            g_req_len = g_mb->req_len;
            g_out_cap = g_mb->out_cap;
            g_err_cap = g_mb->err_cap;
            g_mem_limit = g_mb->mem_limit;
            mm_set_limit(g_mem_limit);
            time_rebase(g_mb->tsc_khz, g_mb->wall_ns);
            rng_reseed(g_mb->entropy, FB_ENTROPY_SIZE);
            g_out_len = g_err_len = 0;
            g_flags = 0;
            g_mb->result_len = 0;
            kind = g_mb->req_kind;
            if (kind < FB_REQ_RT_FIRST || kind > FB_REQ_RT_LAST) break;
            serve_runtime(kind);
            st = FB_ST_DONE;
        }
        /* the change log covers what happened since this exec began */
        if (kind == FB_REQ_EXEC) { chg_reset(); mm_peak_reset(); }
        g_req_pos = 0;
        g_req_open = 1;
    }
    u64 c = g_req_len - g_req_pos;
    if (c > n) c = n;
    memcpy(buf, (u8 *)g_mb + FB_MB_REQ_OFF + g_req_pos, c);
    g_req_pos += c;
    return (i64)c;
}

i64 ctl_write(const u8 *buf, u64 n)
{
    if (!g_req_open) return -EINVAL; /* no request to answer */
    shmap_sync_all(); /* an exec's mapping writes are in its change log and its files */
    u64 c = n < FB_MB_RESULT_SIZE ? n : FB_MB_RESULT_SIZE;
    memcpy((u8 *)g_mb + FB_MB_RESULT_OFF, buf, c);
    g_mb->result_len = c;
    if (c < n) g_flags |= FB_RESULT_TRUNCATED;
    g_req_open = 0;
    g_responded = 1;
    publish(FB_ST_DONE, 0);
    return (i64)n;
}

/* A guest-to-host call (abi.h, "Guest-to-host calls"): the call and its data go to
 * RESULT, the doorbell rings with FB_ST_CALL, and the host's FB_REQ_ANSWER comes back
 * in REQ. The output written since the previous doorbell goes with the call; the areas
 * start again from 0 under the answer's caps. Returns the answer's ret; *ans (may be
 * NULL) gets the whole header; up to rcap bytes of its data are copied to rbuf.
 * Anything but a valid answer is -EIO (the host broke the protocol). The runtime's
 * threads do not switch while a call is out: one vCPU, and this is inside it. */
HOT u64 g_host_signals;   /* signals from other processes, taken by signal.c */
i64 host_call(const struct fb_call *c, const void *data, u64 len, struct fb_answer *ans, void *rbuf, u64 rcap)
{
    /* Before the first request (a template's boot, preload and warm-up) no host serves
     * calls: the program gets what a host without processes answers (a preload that runs
     * a subprocess, as loky's cpu count does, falls back as it would). */
    if (!g_req_open && !g_responded) return -ENOSYS;
    if (len > FB_MB_RESULT_SIZE - sizeof *c) return -E2BIG;
    u8 *res = (u8 *)g_mb + FB_MB_RESULT_OFF;
    memcpy(res, c, sizeof *c);
    ((struct fb_call *)res)->data_len = len;
    if (len) memcpy(res + sizeof *c, data, len);
    u64 keep_result = g_mb->result_len;
    g_mb->result_len = sizeof *c + len;
    publish(FB_ST_CALL, 0);
    fb_doorbell();
    g_mb->result_len = keep_result;
    if (!mb_valid(g_mb) || g_mb->req_kind != FB_REQ_ANSWER || g_mb->req_len < sizeof(struct fb_answer)) return -EIO;
    const struct fb_answer *a = (const struct fb_answer *)((const u8 *)g_mb + FB_MB_REQ_OFF);
    struct fb_answer copy = *a;   /* read once: the host's memory */
    if (copy.data_len > g_mb->req_len - sizeof copy) return -EIO;
    g_seq = g_mb->seq;
    g_out_cap = g_mb->out_cap;
    g_err_cap = g_mb->err_cap;
    g_out_len = g_err_len = 0;
    time_rebase(g_mb->tsc_khz, g_mb->wall_ns);
    rng_reseed(g_mb->entropy, FB_ENTROPY_SIZE);
    if (copy.signals) { g_host_signals |= copy.signals; g_sig_work = 1; } /* delivered at the syscall's return */
    if (rbuf && rcap) memcpy(rbuf, a + 1, copy.data_len < rcap ? copy.data_len : rcap);
    if (ans) *ans = copy;
    sched_after_host_call();
    return copy.ret;
}

/* Shorthand: a call without data whose answer carries none the caller wants. */
i64 host_call0(u32 nr, i64 a0, i64 a1, i64 a2, i64 a3)
{
    struct fb_call c = { .nr = nr, .arg = { a0, a1, a2, a3, 0, 0 } };
    return host_call(&c, 0, 0, 0, 0, 0);
}

/* ended by signal `sig`'s default action: the host reports "killed by signal sig" */
void ctl_exit_signal(int sig)
{
    g_flags |= FB_EXIT_SIGNALED;
    ctl_exit(128 + sig);
}

void ctl_exit(int code)
{
    shm_exit(); /* shared file mappings reach their files; host shared memory is let go */
    for (;;) {
        publish(FB_ST_EXIT, code);
        fb_doorbell();
    }
}

void rt_panic(const char *msg)
{
    if (!g_mb) g_mb = (struct fb_mailbox *)FB_MAILBOX_BASE; /* fixed by the ABI even if boot info is bad */
    {
        error_result(msg);
        for (;;) { publish(FB_ST_ERROR, 127); fb_doorbell(); }
    }
}
