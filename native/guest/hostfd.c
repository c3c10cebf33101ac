/*
 * hostfd.c — descriptors served by the host: the pipe ends, socketpair ends
 * and FIFO ends that crossed a fork (abi.h, "Guest-to-host calls").
 *
 * hostfd_prepare_fork(), called before FB_CALL_FORK, turns every local pipe
 * buffer that a descriptor of the table reaches into a host pipe (one
 * FB_CALL_PIPE_NEW with the buffered bytes and this VM's counts of read and
 * write descriptions; a socketpair is two pipes, one per direction) and every
 * such open file description into a host one, in place: every fd sharing the
 * description sees the change. Afterwards read/write are PIPE_READ/PIPE_WRITE
 * calls, blocking through host_wait_block() (sched.c) on the one entry,
 * readiness is one FB_CALL_POLL per poll/select/epoll scan (ipc.c), and the
 * last close of a description is PIPE_REF -1 for each of its ends. Pipes made
 * after a fork stay local until the next fork; nothing here runs (and no call
 * is made) in a program that never forked.
 */
#include "fdtab.h"

static const struct file_ops hpipe_r_ops, hpipe_w_ops, hfifo_r_ops, hfifo_w_ops, hfifo_rw_ops;
int g_hostfd_n;

#define HP_READ_MAX  (FB_MB_REQ_SIZE - 64)     /* a PIPE_READ's answer fits REQ */
#define HP_WRITE_MAX (FB_MB_RESULT_SIZE - 64)  /* a PIPE_WRITE's data fits RESULT */

/* wait for the host to have news for one end; f is kept alive meanwhile.
 * 0 to look again, -EBADF when f was closed meanwhile, else the wait's error;
 * a deadlock the host found (no process could ever change it) is EAGAIN, as for
 * a local pipe */
static int hp_wait(struct file *f, u32 id, u16 end, u16 ev)
{
    struct fb_poll_ent pe = { .pipe = id, .end = end, .events = ev };
    f->refs++;
    int r = host_wait_block(&pe, 1, 0, 0, 0, 0);
    int closed = f->refs == 1;
    fput(f);
    if (closed) return -EBADF;
    return r == -ETIMEDOUT ? 0 : r == -EDEADLK ? -EAGAIN : r;
}

static i64 hp_read(struct file *f, u8 *buf, u64 n, u64 *off)
{
    if (n > HP_READ_MAX) n = HP_READ_MAX;
    for (;;) {
        u32 id = f->hp_rx;
        if (!id || !n) return 0; /* shut down for reading; a read of 0 bytes */
        struct fb_call c = { .nr = FB_CALL_PIPE_READ, .arg = { id, (i64)n } };
        struct fb_answer a;
        i64 r = host_call(&c, 0, 0, &a, buf, n);
        if (r > 0) return (u64)r > n || (u64)r > a.data_len ? -EIO : r;
        if (r != -EAGAIN) return r; /* 0: end of file */
        if (f->flags & O_NONBLOCK) return -EAGAIN;
        int w = hp_wait(f, id, 0, POLLIN);
        if (w) return w;
    }
}

/* a blocking write writes everything (or stops at an error after a part) */
static i64 hp_write(struct file *f, const u8 *buf, u64 n, u64 *off)
{
    u64 done = 0;
    while (done < n) {
        u32 id = f->hp_tx;
        if (!id) return done ? (i64)done : -EPIPE; /* shut down for writing */
        u64 chunk = n - done < HP_WRITE_MAX ? n - done : HP_WRITE_MAX;
        struct fb_call c = { .nr = FB_CALL_PIPE_WRITE, .arg = { id } };
        i64 r = host_call(&c, buf + done, chunk, 0, 0, 0);
        if (r > 0) {
            if ((u64)r > chunk) return -EIO;
            done += (u64)r;
            continue;
        }
        if (r != -EAGAIN) return done ? (i64)done : r; /* -EPIPE: no reader left */
        if (f->flags & O_NONBLOCK) return done ? (i64)done : -EAGAIN;
        int w = hp_wait(f, id, 1, POLLOUT);
        if (w) return done ? (i64)done : w;
    }
    return (i64)done;
}

static void hp_release(struct file *f)
{
    if (f->hp_rx) host_call0(FB_CALL_PIPE_REF, f->hp_rx, 0, -1, 0);
    if (f->hp_tx) host_call0(FB_CALL_PIPE_REF, f->hp_tx, 1, -1, 0);
    f->hp_rx = f->hp_tx = 0;
    g_hostfd_n--;
}
static void hfifo_release(struct file *f) { hp_release(f); ovl_put(f->ref.o); }

/* shutdown(2) of a host socket end: that direction's description count drops */
i64 hostfd_shutdown(struct file *f, u64 how)
{
    if ((how == 0 || how == 2) && f->hp_rx) { host_call0(FB_CALL_PIPE_REF, f->hp_rx, 0, -1, 0); f->hp_rx = 0; }
    if ((how == 1 || how == 2) && f->hp_tx) { host_call0(FB_CALL_PIPE_REF, f->hp_tx, 1, -1, 0); f->hp_tx = 0; }
    return 0;
}

/* the host reports no byte counts: FIONREAD is not served (ENOTTY, as for an
 * ioctl the type does not know) */
static i64 hp_ioctl(struct file *f, u64 req, u64 arg) { return -ENOTTY; }
#define F_GETPIPE_SZ 1032
static i64 hp_fcntl(struct file *f, u64 cmd, u64 arg) { return cmd == F_GETPIPE_SZ ? PIPE_CAP : -EINVAL; }

static int hpipe_r_stat(struct file *f, struct kstat *st) { return fd_anon_stat(st, S_IFIFO | 0600, 61); }
static int hpipe_w_stat(struct file *f, struct kstat *st) { return fd_anon_stat(st, S_IFIFO | 0600, 62); }
static int hsock_stat(struct file *f, struct kstat *st) { return fd_anon_stat(st, 0140000 | 0777, 64); }
/* readiness is never asked one descriptor at a time (ipc.c scans with hostfd_poll_*) */
static short hp_poll(struct file *f) { return 0; }

static const struct file_ops hpipe_r_ops = {
    .mode = S_IFIFO, .caps = FOP_HOST, .read = hp_read, .ioctl = hp_ioctl, .fcntl = hp_fcntl, .poll = hp_poll,
    .stat = hpipe_r_stat, .release = hp_release,
};
static const struct file_ops hpipe_w_ops = {
    .mode = S_IFIFO, .caps = FOP_HOST, .write = hp_write, .ioctl = hp_ioctl, .fcntl = hp_fcntl, .poll = hp_poll,
    .stat = hpipe_w_stat, .release = hp_release,
};
const struct file_ops g_hsock_ops = {
    .mode = 0140000, .caps = FOP_HOST, .read = hp_read, .write = hp_write, .ioctl = hp_ioctl, .fcntl = hp_fcntl,
    .poll = hp_poll, .stat = hsock_stat, .release = hp_release,
};
static const struct file_ops hfifo_r_ops = {
    .mode = S_IFIFO, .caps = FOP_HOST, .read = hp_read, .ioctl = hp_ioctl, .fcntl = hp_fcntl, .poll = hp_poll,
    .release = hfifo_release,
};
static const struct file_ops hfifo_w_ops = {
    .mode = S_IFIFO, .caps = FOP_HOST, .write = hp_write, .ioctl = hp_ioctl, .fcntl = hp_fcntl, .poll = hp_poll,
    .release = hfifo_release,
};
static const struct file_ops hfifo_rw_ops = {
    .mode = S_IFIFO, .caps = FOP_HOST, .read = hp_read, .write = hp_write, .ioctl = hp_ioctl, .fcntl = hp_fcntl,
    .poll = hp_poll, .release = hfifo_release,
};

/* ---- readiness: a scan collects every host end, asks once, then reads the answers
 * back in the same order (nothing runs in between: no thread switches inside it) ---- */
static int ent_add(struct pscan *s, u32 id, u16 end, u16 ev)
{
    if (s->n == s->cap) {
        int nc = s->cap ? s->cap * 2 : 16;
        struct fb_poll_ent *pe = krealloc(s->pe, (u64)nc * sizeof *pe);
        if (!pe) return -ENOMEM;
        s->pe = pe;
        u16 *rev = krealloc(s->rev, (u64)nc * sizeof *rev);
        if (!rev) return -ENOMEM;
        s->rev = rev;
        s->cap = nc;
    }
    s->pe[s->n] = (struct fb_poll_ent){ .pipe = id, .end = end, .events = ev };
    s->rev[s->n] = 0;
    s->n++;
    return 0;
}

/* which ends of f a scan asks about: the read end when POLLIN is wanted (or it is
 * the only end: its hang-up still counts), the write end likewise */
static int want_rx(struct file *f, short ev) { return f->hp_rx && ((ev & POLLIN) || !f->hp_tx); }
static int want_tx(struct file *f, short ev) { return f->hp_tx && ((ev & POLLOUT) || !f->hp_rx); }

int hostfd_poll_add(struct file *f, short ev, struct pscan *s)
{
    int e = 0;
    if (want_rx(f, ev)) e = ent_add(s, f->hp_rx, 0, POLLIN);
    if (!e && want_tx(f, ev)) e = ent_add(s, f->hp_tx, 1, POLLOUT);
    return e;
}

short hostfd_poll_get(struct file *f, short ev, struct pscan *s)
{
    short r = 0;
    if (!f->hp_rx && !f->hp_tx) r = POLLHUP | POLLIN;  /* both directions shut down */
    if (want_rx(f, ev) && s->pos < s->n) r |= (short)(s->rev[s->pos++] & (POLLIN | POLLERR | POLLHUP));
    if (want_tx(f, ev) && s->pos < s->n) r |= (short)(s->rev[s->pos++] & (POLLOUT | POLLERR | POLLHUP));
    return r & (ev | POLLERR | POLLHUP);
}

int hostfd_poll_call(struct pscan *s)
{
    s->pos = 0;
    if (!s->n) return 0;
    struct fb_call c = { .nr = FB_CALL_POLL, .arg = { s->n } };
    struct fb_answer a;
    for (int i = 0; i < s->n; i++) s->rev[i] = 0;
    i64 r = host_call(&c, s->pe, (u64)s->n * sizeof *s->pe, &a, s->rev, (u64)s->n * sizeof *s->rev);
    if (r < 0) return (int)r;
    if (a.data_len < (u64)s->n * sizeof *s->rev) return -EIO;
    return 0;
}

/* ---- the fork: local pipe buffers become host pipes ---- */
static const struct file_ops *host_ops_for(int pt)
{
    switch (pt) {
    case PT_PIPE_R: return &hpipe_r_ops;
    case PT_PIPE_W: return &hpipe_w_ops;
    case PT_SOCK: return &g_hsock_ops;
    case PT_FIFO_R: return &hfifo_r_ops;
    case PT_FIFO_W: return &hfifo_w_ops;
    case PT_FIFO_RW: return &hfifo_rw_ops;
    }
    return 0;
}

/* one PIPE_NEW for p (once per pass): its bytes in order, the table's counts;
 * the local bytes stay until every call of the pass has succeeded */
static int pipe_to_host(struct pipe *p)
{
    if (p->host_id) return 0;
    u8 *data = 0;
    if (p->len) {
        if (!(data = kmalloc(p->len))) return -ENOMEM;
        for (u64 i = 0; i < p->len; i++) data[i] = p->buf[(p->head + i) % PIPE_CAP];
    }
    struct fb_call c = { .nr = FB_CALL_PIPE_NEW, .arg = { p->conv_r, p->conv_w } };
    i64 r = host_call(&c, data, p->len, 0, 0, 0);
    kfree(data);
    if (r <= 0 || r > 0xffffffffll) return r < 0 ? (int)r : -EIO;
    p->host_id = (u32)r;
    return 0;
}

/* a failed pass: the host pipes it made lose this VM's descriptions (so they end) */
static void pipe_undo(struct pipe *p, u32 gen)
{
    if (!p || p->conv_gen != gen || !p->host_id) return;
    for (int k = 0; k < p->conv_r; k++) host_call0(FB_CALL_PIPE_REF, p->host_id, 0, -1, 0);
    for (int k = 0; k < p->conv_w; k++) host_call0(FB_CALL_PIPE_REF, p->host_id, 1, -1, 0);
    p->host_id = 0;
}

static void count_end(struct pipe *p, u32 gen, int rd)
{
    if (!p) return;
    if (p->conv_gen != gen) { p->conv_gen = gen; p->conv_r = p->conv_w = 0; p->host_id = 0; }
    if (rd) p->conv_r++; else p->conv_w++;
}

/* Every pipe end the descriptor table reaches becomes a host pipe end: first a
 * host pipe per local buffer (on an error those are dropped again and everything
 * stays local), then every description is switched over. A local description
 * that no fd names (a thread blocked in read() on an fd another thread closed)
 * keeps the local husk: its peers are gone for it (EOF, EPIPE). */
int hostfd_prepare_fork(void)
{
    static u32 gen;
    gen++;
    for (int i = 0; i < NFD; i++) {
        struct file *f = fget(i);
        if (!f || f->conv_gen == gen || ipc_pipe_type(f) == PT_NONE) continue;
        f->conv_gen = gen;
        count_end(f->pipe, gen, 1);
        count_end(f->tx, gen, 0);
    }
    for (int i = 0; i < NFD; i++) {
        struct file *f = fget(i);
        if (!f || ipc_pipe_type(f) == PT_NONE) continue;
        int e = f->pipe ? pipe_to_host(f->pipe) : 0;
        if (!e && f->tx) e = pipe_to_host(f->tx);
        if (e) {
            for (int j = 0; j < NFD; j++) {
                struct file *g = fget(j);
                if (g && ipc_pipe_type(g) != PT_NONE) { pipe_undo(g->pipe, gen); pipe_undo(g->tx, gen); }
            }
            return e;
        }
    }
    for (int i = 0; i < NFD; i++) {
        struct file *f = fget(i);
        int pt = f ? ipc_pipe_type(f) : PT_NONE;
        if (pt == PT_NONE) continue;
        f->hp_rx = f->pipe ? f->pipe->host_id : 0;
        f->hp_tx = f->tx ? f->tx->host_id : 0;
        if (f->pipe) f->pipe->head = f->pipe->len = 0;   /* the bytes are the host's now */
        if (f->tx) f->tx->head = f->tx->len = 0;
        pipe_unref(f);  /* the last description of a local buffer frees it */
        f->pipe = f->tx = 0;
        f->ops = host_ops_for(pt);
        g_hostfd_n++;
    }
    return 0;
}
