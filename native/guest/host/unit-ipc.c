/*
 * unit-ipc.c — host unit test (ASan/UBSan) of host descriptors and the host
 * wait: fd.c, ipc.c, hostfd.c, eventfd.c and sched.c are compiled in, and
 * host_call() is a fake host that serves host pipes (PIPE_NEW/REF/READ/WRITE,
 * POLL, WAIT) as abi.h describes and logs every call. Checked: no call is made
 * by a program that never forked; hostfd_prepare_fork() turns pipes,
 * socketpairs and FIFO ends into host ends in place (buffered bytes, counts,
 * dup'd fds, the local buffers freed, an error leaves everything local); reads
 * and writes become calls (EOF, EAGAIN, EPIPE, a blocking read that waits on
 * its entry with one WAIT); close and shutdown drop the counts; fstat; poll,
 * select and epoll over local + host descriptors with one POLL per scan; and
 * the scheduler's union WAIT over several W_HOST threads, its deadline, the
 * look at the host while another thread runs, signals in an answer making the
 * waiters look again (their next wait is the EINTR).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../fdtab.h"

/* ---- stand-ins for the rest of the runtime ---- */
void *kmalloc(u64 n) { return malloc(n ? n : 1); }
void *kzalloc(u64 n) { return calloc(1, n ? n : 1); }
void kfree(void *p) { free(p); }
void *krealloc(void *p, u64 n) { return realloc(p, n); }
int uaccess_ok(const void *p, u64 n) { (void)n; return p != 0; }
int uaccess_w(const void *p, u64 n) { (void)n; return p != 0; }
int ustr_ok(const char *s, u64 max) { size_t l = strnlen(s, max); return l == max ? -ENAMETOOLONG : (int)l; }
int vfs_stat(const struct vref *r, struct kstat *st) { memset(st, 0, sizeof *st); st->mode = S_IFIFO | 0644; return 0; }
static int g_ovl_puts;
void ovl_put(struct onode *o) { (void)o; g_ovl_puts++; }
static u64 g_mono = 1000000000ull;
u64 time_mono_ns(void) { return g_mono; }
u64 g_sys_total;
int g_pid = FB_PID, g_ppid = FB_PPID;  /* the process identity eventfd.c may check */
void time_spin_until_mono(u64 ns) { if (g_mono < ns) g_mono = ns; }
int rt_snprintf(char *b, size_t cap, const char *fmt, ...) { return snprintf(b, cap, "%s", fmt); }
i64 console_write(int which, const u8 *buf, u64 n) { (void)which; (void)buf; return (i64)n; }
void ctl_exit(int code) { exit(code); }
/* signal.c's part: signals from a host answer end the next wait with EINTR */
static u64 g_test_sigs;
int sig_block(int kind, const void *chan, u32 bitset, u64 deadline)
{
    if (g_test_sigs) { g_test_sigs = 0; return -EINTR; }
    return sched_block(kind, chan, bitset, deadline);
}
/* sched.c's context switch: record whom it switched to and come straight back */
static void *g_switched_to;
void fb_switch(u64 *save_ksp, u64 new_ksp, u8 *save_fp, u8 *load_fp) { (void)save_ksp; g_switched_to = (void *)new_ksp; (void)save_fp; (void)load_fp; }
void fb_thread_start(void) {}
void fb_fpsave(u8 *area) { (void)area; }

#include "../fd.c"
#include "../ipc.c"
#include "../hostfd.c"
#include "../eventfd.c"
#include "../sched.c"

static int fails;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #c); fails++; } } while (0)

/* ---- the fake host ---- */
#define HCAP 65536
struct hpipe { u8 buf[HCAP]; u64 len; int r_here, w_here, r_other, w_other, live; };
static struct hpipe g_hp[32];
static int g_hp_n;
static int g_calls[16];               /* calls by number */
static int g_ncalls;
static struct fb_call g_last;         /* the last call and its data */
static u8 g_last_data[1 << 16];
static u64 g_last_len;
static int g_fail_new_after = -1;     /* PIPE_NEW fails (-ENOMEM) after this many */
static u64 g_signals_next;            /* signals in the next WAIT's answer */
static i64 g_wait_ret;                /* what WAIT answers */
static void (*g_on_wait)(void);       /* the other process acting while we wait */

static short hp_revents(const struct fb_poll_ent *e)
{
    if (e->pipe < 1 || (int)e->pipe > g_hp_n) return POLLERR;
    struct hpipe *p = &g_hp[e->pipe];
    if (e->end == 0) return p->len ? POLLIN : !(p->w_here + p->w_other) ? POLLHUP : 0;
    return !(p->r_here + p->r_other) ? POLLERR : p->len < HCAP ? POLLOUT : 0;
}

i64 host_call(const struct fb_call *c, const void *data, u64 len, struct fb_answer *ans, void *rbuf, u64 rcap)
{
    struct fb_answer a = { 0 };
    g_calls[c->nr < 16 ? c->nr : 0]++;
    g_ncalls++;
    g_last = *c;
    g_last_len = len;
    if (len <= sizeof g_last_data && len) memcpy(g_last_data, data, len);
    i64 id = c->arg[0];
    struct hpipe *p = id >= 1 && id <= g_hp_n ? &g_hp[id] : 0;
    switch (c->nr) {
    case FB_CALL_PIPE_NEW:
        if (g_fail_new_after == 0) { a.ret = -ENOMEM; break; }
        if (g_fail_new_after > 0) g_fail_new_after--;
        p = &g_hp[++g_hp_n];
        memset(p, 0, sizeof *p);
        if (len) memcpy(p->buf, data, len);
        p->len = len;
        p->r_here = (int)c->arg[0];
        p->w_here = (int)c->arg[1];
        p->live = 1;
        a.ret = g_hp_n;
        break;
    case FB_CALL_PIPE_REF:
        if (!p) { a.ret = -EBADF; break; }
        if (c->arg[1] == 0) p->r_here += (int)c->arg[2]; else p->w_here += (int)c->arg[2];
        CHECK(p->r_here >= 0 && p->w_here >= 0);
        break;
    case FB_CALL_PIPE_READ: {
        if (!p) { a.ret = -EBADF; break; }
        u64 n = (u64)c->arg[1] < p->len ? (u64)c->arg[1] : p->len;
        if (n) {
            memcpy(rbuf, p->buf, n < rcap ? n : rcap);
            memmove(p->buf, p->buf + n, p->len - n);
            p->len -= n;
            a.data_len = n;
            a.ret = (i64)n;
        } else a.ret = p->w_here + p->w_other ? -EAGAIN : 0;
        break;
    }
    case FB_CALL_PIPE_WRITE: {
        if (!p) { a.ret = -EBADF; break; }
        if (!(p->r_here + p->r_other)) { a.ret = -EPIPE; break; }
        u64 room = HCAP - p->len;
        if (!room || (len <= 4096 && room < len)) { a.ret = -EAGAIN; break; }
        u64 n = len < room ? len : room;
        memcpy(p->buf + p->len, data, n);
        p->len += n;
        a.ret = (i64)n;
        break;
    }
    case FB_CALL_POLL: {
        const struct fb_poll_ent *e = data;
        CHECK(len == (u64)c->arg[0] * sizeof *e);
        u16 *rev = rbuf;
        CHECK(rcap >= (u64)c->arg[0] * 2);
        for (i64 i = 0; i < c->arg[0]; i++) { rev[i] = (u16)hp_revents(&e[i]); if (rev[i]) a.ret++; }
        a.data_len = (u64)c->arg[0] * 2;
        break;
    }
    case FB_CALL_WAIT:
        CHECK(len == (u64)c->arg[1] * sizeof(struct fb_poll_ent) + (u64)c->arg[2] * sizeof(struct fb_futex_ent));
        if (g_on_wait) g_on_wait();
        a.ret = g_wait_ret;
        a.signals = g_signals_next;
        g_test_sigs |= a.signals;
        g_signals_next = 0;
        break;
    default:
        a.ret = -ENOSYS;
    }
    if (ans) *ans = a;
    return a.ret;
}

i64 host_call0(u32 nr, i64 a0, i64 a1, i64 a2, i64 a3)
{
    struct fb_call c = { .nr = nr, .arg = { a0, a1, a2, a3, 0, 0 } };
    return host_call(&c, 0, 0, 0, 0, 0);
}

static void reset_log(void) { memset(g_calls, 0, sizeof g_calls); g_ncalls = 0; }

/* ---- the tests ---- */
static void other_writes_hi(void)
{
    /* the other process writes to host pipe 1 while we wait */
    memcpy(g_hp[1].buf + g_hp[1].len, "hi", 2);
    g_hp[1].len += 2;
}

static void test_pipes(void)
{
    int fds[2], sv[2];
    u8 b[64];
    reset_log();
    CHECK(sc_pipe2((u64)fds, 0, 0, 0, 0, 0) == 0);
    CHECK(fd_write(fds[1], (const u8 *)"abc", 3) == 3);
    CHECK(fd_read(fds[0], b, 2) == 2 && !memcmp(b, "ab", 2));
    struct pollfd pf = { fds[0], POLLIN, 0 };
    CHECK(do_poll(&pf, 1, 0) == 1 && pf.revents == POLLIN);
    CHECK(g_ncalls == 0);                                   /* no fork yet: nothing goes to the host */

    int dupped = (int)sc_dup((u64)fds[1], 0, 0, 0, 0, 0);   /* one write description, two fds */
    CHECK(dupped > fds[1]);
    CHECK(sc_socketpair(1, 1, 0, (u64)sv, 0, 0) == 0);
    CHECK(fd_write(sv[0], (const u8 *)"xyz", 3) == 3);
    int efd = (int)sc_eventfd2(0, 0, 0, 0, 0, 0);
    CHECK(efd >= 0);

    /* a failed pass leaves everything local and drops the host pipes it made */
    g_fail_new_after = 1;
    CHECK(hostfd_prepare_fork() == -ENOMEM);
    g_fail_new_after = -1;
    CHECK(g_hp_n == 1 && g_hp[1].r_here == 0 && g_hp[1].w_here == 0);
    CHECK(fget(fds[0])->ops == &pipe_r_ops && g_hostfd_n == 0);
    CHECK(fd_read(fds[0], b, 8) == 1 && b[0] == 'c');     /* the local byte is still there */
    CHECK(fd_write(fds[1], (const u8 *)"c", 1) == 1);
    g_hp_n = 0;

    reset_log();
    CHECK(hostfd_prepare_fork() == 0);
    CHECK(g_calls[FB_CALL_PIPE_NEW] == 3);                  /* the pipe, the socketpair's two directions */
    CHECK(g_hostfd_n == 4);
    struct file *r = fget(fds[0]), *w = fget(fds[1]);
    CHECK(r->ops == &hpipe_r_ops && w->ops == &hpipe_w_ops && fget(dupped) == w);
    CHECK(r->hp_rx == 1 && w->hp_tx == 1 && !r->pipe && !w->tx);
    CHECK(g_hp[1].len == 1 && g_hp[1].buf[0] == 'c' && g_hp[1].r_here == 1 && g_hp[1].w_here == 1);
    struct file *s0 = fget(sv[0]), *s1 = fget(sv[1]);
    CHECK(s0->ops == &g_hsock_ops && s0->hp_tx == s1->hp_rx && s0->hp_rx == s1->hp_tx && s0->hp_rx != s0->hp_tx);
    CHECK(g_hp[s1->hp_rx].len == 3 && !memcmp(g_hp[s1->hp_rx].buf, "xyz", 3));
    CHECK(fget(efd)->ops == &eventfd_ops);                  /* not a pipe: untouched */
    reset_log();
    CHECK(hostfd_prepare_fork() == 0 && g_ncalls == 0);     /* already host ends: nothing to do */

    struct kstat st;
    CHECK(sc_fstat((u64)fds[0], (u64)&st, 0, 0, 0, 0) == 0 && (st.mode & S_IFMT) == S_IFIFO);
    CHECK(sc_fstat((u64)sv[0], (u64)&st, 0, 0, 0, 0) == 0 && (st.mode & S_IFMT) == 0140000);
    CHECK(sc_getsockopt((u64)sv[0], 1, 3, (u64)&(int){ 0 }, (u64)&(u32){ 4 }, 0) == 0); /* still a socket */

    /* reads and writes are calls */
    CHECK(fd_read(fds[0], b, 8) == 1 && b[0] == 'c');
    CHECK(fd_write(dupped, (const u8 *)"de", 2) == 2 && g_hp[1].len == 2);
    CHECK(fd_read(sv[1], b, sizeof b) == 3 && !memcmp(b, "xyz", 3));
    CHECK(fd_read(fds[0], b, 8) == 2 && !memcmp(b, "de", 2));
    /* empty with a writer: O_NONBLOCK gets EAGAIN without a wait */
    sc_fcntl((u64)fds[0], 4, O_NONBLOCK, 0, 0, 0);
    reset_log();
    CHECK(fd_read(fds[0], b, 8) == -EAGAIN && g_calls[FB_CALL_WAIT] == 0);
    sc_fcntl((u64)fds[0], 4, 0, 0, 0, 0);
    /* blocking: one thread, so one WAIT naming the read end, then the data */
    g_on_wait = other_writes_hi;
    reset_log();
    CHECK(fd_read(fds[0], b, 8) == 2 && !memcmp(b, "hi", 2));
    CHECK(g_calls[FB_CALL_WAIT] == 1 && g_calls[FB_CALL_PIPE_READ] == 2);
    g_on_wait = 0;
    /* a signal from another process: the read looks again, and its next wait ends with EINTR */
    g_signals_next = 1ull << 9;
    reset_log();
    CHECK(fd_read(fds[0], b, 8) == -EINTR && g_calls[FB_CALL_WAIT] == 1 && g_calls[FB_CALL_PIPE_READ] == 2);
    /* a host that serves no processes: the wait's -ENOSYS is returned, not a hang */
    g_wait_ret = -ENOSYS;
    CHECK(fd_read(fds[0], b, 8) == -ENOSYS);
    g_wait_ret = 0;
    /* the host found every process blocked: EAGAIN, as a local pipe nobody could fill */
    g_wait_ret = -EDEADLK;
    CHECK(fd_read(fds[0], b, 8) == -EAGAIN);
    g_wait_ret = 0;

    /* poll over a local eventfd and host pipe ends: one POLL per scan */
    u64 one = 1;
    CHECK(fd_write(efd, (const u8 *)&one, 8) == 8);
    struct pollfd p3[3] = { { fds[0], POLLIN, 0 }, { efd, POLLIN, 0 }, { fds[1], POLLOUT, 0 } };
    reset_log();
    CHECK(do_poll(p3, 3, 0) == 2 && p3[0].revents == 0 && p3[1].revents == POLLIN && p3[2].revents == POLLOUT);
    CHECK(g_calls[FB_CALL_POLL] == 1 && g_ncalls == 1 && g_last.arg[0] == 2);
    /* a poll that must wait on the host: WAIT with the host entries, then scan again */
    CHECK(fd_read(efd, b, 8) == 8);
    g_on_wait = other_writes_hi;
    struct pollfd p2[2] = { { fds[0], POLLIN, 0 }, { efd, POLLIN, 0 } };
    reset_log();
    CHECK(do_poll(p2, 2, -1) == 1 && p2[0].revents == POLLIN && p2[1].revents == 0);
    CHECK(g_calls[FB_CALL_WAIT] == 1 && g_calls[FB_CALL_POLL] == 2);
    g_on_wait = 0;
    /* a timeout through the host: the WAIT says -ETIMEDOUT, poll returns 0 */
    CHECK(fd_read(fds[0], b, 8) == 2);
    g_wait_ret = -ETIMEDOUT;
    CHECK(do_poll(p2, 1, 50) == 0);
    g_wait_ret = 0;

    /* select: the host end readable after the other process writes */
    other_writes_hi();
    u64 rd[1] = { (1ull << fds[0]) | (1ull << efd) }, wr[1] = { 1ull << fds[1] };
    reset_log();
    CHECK(do_select(efd + 1 > fds[1] + 1 ? efd + 1 : fds[1] + 1, rd, wr, 0, 0) == 2);
    CHECK(rd[0] == (1ull << fds[0]) && wr[0] == (1ull << fds[1]) && g_calls[FB_CALL_POLL] == 1);

    /* epoll over both kinds */
    int ep = (int)sc_epoll_create1(0, 0, 0, 0, 0, 0);
    struct epoll_event_k ev = { POLLIN, 7 }, ev2 = { POLLIN, 8 }, out[4];
    CHECK(sc_epoll_ctl((u64)ep, 1, (u64)fds[0], (u64)&ev, 0, 0) == 0);
    CHECK(sc_epoll_ctl((u64)ep, 1, (u64)efd, (u64)&ev2, 0, 0) == 0);
    reset_log();
    CHECK(sys_epoll_wait(ep, out, 4, 0) == 1 && out[0].data == 7 && g_calls[FB_CALL_POLL] == 1);
    CHECK(fd_read(fds[0], b, 8) == 2);

    /* EOF once the other side has no writer; EPIPE once it has no reader */
    reset_log();
    CHECK(fd_close(fds[1]) == 0 && g_calls[FB_CALL_PIPE_REF] == 0); /* the dup keeps the description */
    CHECK(fd_close(dupped) == 0 && g_calls[FB_CALL_PIPE_REF] == 1 && g_hp[1].w_here == 0);
    CHECK(fd_read(fds[0], b, 8) == 0);
    pf = (struct pollfd){ fds[0], POLLIN, 0 };
    CHECK(do_poll(&pf, 1, 0) == 1 && (pf.revents & POLLHUP));
    CHECK(sc_shutdown((u64)sv[1], 0, 0, 0, 0, 0) == 0 && g_hp[s1->hp_tx].w_here == 1 && !s1->hp_rx);
    CHECK(fd_write(sv[0], (const u8 *)"q", 1) == -EPIPE);   /* sv[1] no longer reads */
    CHECK(fd_read(sv[1], b, 8) == 0);                       /* shut down for reading */
    CHECK(fd_close(fds[0]) == 0 && g_hp[1].r_here == 0);
    CHECK(fd_close(sv[0]) == 0 && fd_close(sv[1]) == 0);
    for (int i = 1; i <= g_hp_n; i++) CHECK(g_hp[i].r_here == 0 && g_hp[i].w_here == 0);
    CHECK(g_hostfd_n == 0);
    fd_close(ep);
    fd_close(efd);

    /* pipes made after the fork stay local until the next one */
    reset_log();
    CHECK(sc_pipe2((u64)fds, 0, 0, 0, 0, 0) == 0);
    CHECK(fd_write(fds[1], (const u8 *)"z", 1) == 1 && fd_read(fds[0], b, 1) == 1 && g_ncalls == 0);
    fd_close(fds[0]);
    fd_close(fds[1]);
}

/* a FIFO opened O_RDWR: one buffer, both ends, the node reference kept until close */
static void test_fifo(void)
{
    struct onode o;
    memset(&o, 0, sizeof o);
    struct file *f;
    CHECK(fifo_open(&o, O_RDWR, &f) == 0);
    int fd = fd_install(f, 0, 0);
    CHECK(fd_write(fd, (const u8 *)"ff", 2) == 2);
    int n0 = g_hp_n;
    g_ovl_puts = 0;
    CHECK(hostfd_prepare_fork() == 0 && g_hp_n == n0 + 1);
    CHECK(f->ops == &hfifo_rw_ops && f->hp_rx == f->hp_tx && !o.fifo);
    CHECK(g_hp[g_hp_n].r_here == 1 && g_hp[g_hp_n].w_here == 1 && g_hp[g_hp_n].len == 2);
    u8 b[4];
    CHECK(fd_read(fd, b, 4) == 2 && !memcmp(b, "ff", 2));
    CHECK(fd_close(fd) == 0 && g_ovl_puts == 1 && g_hp[g_hp_n].r_here == 0 && g_hp[g_hp_n].w_here == 0);
}

/* the scheduler with several threads: fake thread records in the ring */
static struct fb_poll_ent g_t2_pe = { 5, 0, POLLIN };
static struct fb_futex_ent g_t2_fe = { 9, 16, 3 };
static struct fb_poll_ent g_lastwait_pe[8];
static int g_lastwait_npe;
static void copy_wait_entries(void)
{
    g_lastwait_npe = (int)g_last.arg[1];
    memcpy(g_lastwait_pe, g_last_data, (u64)g_lastwait_npe * sizeof(struct fb_poll_ent));
}

static void test_sched(void)
{
    static struct thread t2;
    memset(&t2, 0, sizeof t2);
    t2.tid = 77; t2.state = T_WAIT; t2.wait = W_HOST; t2.ksp = 0x7777;
    t2.hpe = &g_t2_pe; t2.hnpe = 1; t2.hfe = &g_t2_fe; t2.hnfe = 1; t2.hflags = FB_WAIT_CHILD;
    t2.deadline = g_mono + 5000000;
    g_main.next = &t2; t2.next = &g_main; g_nthreads = 2;

    /* main blocks too: nobody can run, one WAIT with both threads' entries and the
     * earliest deadline; it answers, both become ready, t2 (next in the ring) runs */
    struct fb_poll_ent mine = { 3, 1, POLLOUT };
    g_on_wait = copy_wait_entries;
    reset_log();
    g_switched_to = 0;
    int r = host_wait_block(&mine, 1, 0, 0, 0, 0);
    CHECK(g_calls[FB_CALL_WAIT] == 1);
    CHECK(g_last.arg[1] == 2 && g_last.arg[2] == 1 && g_last.arg[3] == FB_WAIT_CHILD);
    CHECK(g_last.arg[0] == 5000000);                        /* timeout: t2's deadline */
    CHECK(g_lastwait_npe == 2 && g_lastwait_pe[0].pipe + g_lastwait_pe[1].pipe == 8);
    const struct fb_futex_ent *fe = (const void *)(g_last_data + 2 * sizeof(struct fb_poll_ent));
    CHECK(fe->key == 9 && fe->off == 16 && fe->expect == 3);
    CHECK(g_switched_to == (void *)0x7777 && g_cur == &t2 && t2.state == T_RUN);
    CHECK(g_main.state == T_WAIT && g_main.hdone == 1 && g_main.hres == 0);
    CHECK(r == 0);
    g_on_wait = 0;

    /* back in main: t2 waits on the host again, main can run; a look at the host at
     * most every HOST_LOOK_NS while it does */
    g_cur = &g_main; g_main.state = T_RUN; g_main.wait = W_NONE;
    t2.state = T_WAIT; t2.wait = W_HOST; t2.hdone = 0; t2.deadline = 0;
    g_host_look = g_mono;
    reset_log();
    g_wait_ret = -ETIMEDOUT;
    sched_yield();                                          /* too soon: no call */
    CHECK(g_ncalls == 0 && g_cur == &g_main);
    g_mono += HOST_LOOK_NS;
    sched_yield();
    CHECK(g_calls[FB_CALL_WAIT] == 1 && g_last.arg[0] == 0 && g_cur == &g_main && !t2.hdone);
    g_wait_ret = 0;
    g_mono += HOST_LOOK_NS;
    sched_yield();                                          /* the look answers: t2 may have news */
    CHECK(g_calls[FB_CALL_WAIT] == 2 && t2.hdone == 1 && t2.hres == 0);
    sched_yield();                                          /* ... and runs */
    CHECK(g_cur == &t2 && t2.state == T_RUN);

    /* signals in a WAIT's answer: the host waiters look again (their sig_block delivers) */
    g_cur = &g_main; g_main.state = T_RUN; g_main.wait = W_NONE;
    t2.state = T_WAIT; t2.wait = W_HOST; t2.hdone = 0;
    g_signals_next = 1ull << 14;
    host_wait_block(&mine, 1, 0, 0, 0, 0);
    CHECK(t2.hres == 0 && g_cur == &t2 && g_main.hdone && g_main.hres == 0);
    g_test_sigs = 0;

    /* a futex word waiter on the host is also woken locally */
    g_cur = &g_main; g_main.state = T_RUN; g_main.wait = W_NONE;
    static int word;
    t2.state = T_WAIT; t2.wait = W_HOST; t2.hdone = 0; t2.chan = &word; t2.bitset = ~0u; t2.woken = 0;
    CHECK(sched_wake(&word, ~0u, 1) == 1 && t2.woken == 1);

    /* back to one thread */
    g_cur = &g_main; g_main.state = T_RUN; g_main.wait = W_NONE; g_main.next = &g_main; g_nthreads = 1;
}

int main(void)
{
    /* fds 0-2 as the console would hold them */
    static const struct file_ops stub_ops = { .mode = S_IFCHR };
    for (int i = 0; i < 3; i++) fd_install(fnew(&stub_ops, O_RDWR), i, 0);
    test_pipes();
    test_fifo();
    test_sched();
    if (fails) { fprintf(stderr, "%d failure(s)\n", fails); return 1; }
    printf("ok: ipc unit test (host pipes, readiness, host wait)\n");
    return 0;
}
