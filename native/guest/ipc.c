/*
 * ipc.c — in-memory pipes, FIFOs (a pipe that an overlay node names),
 * AF_UNIX socketpairs (a pipe per direction, e.g. asyncio's self-pipe) and
 * epoll as descriptor types (their file_ops), and readiness over any
 * descriptor: poll, select, epoll (level-triggered).
 * A wait blocks the thread (sched.c) while other threads run; when no thread
 * could ever make it ready (e.g. there is only one), a wait with no timeout is
 * EDEADLK and a read or write that would block is EAGAIN, instead of a hang.
 */
#include "fdtab.h"

static const struct file_ops pipe_r_ops, pipe_w_ops, sock_ops, epoll_ops;
static void pipe_free(struct pipe *p);

/* ---- pipes (and the two directions of a socketpair) ---- */
/* wait for another thread to change some descriptor: 0 to look again, else
 * -EAGAIN (nobody could, or f was closed meanwhile: -EBADF). The reference
 * keeps f (and its pipes) alive while we wait. */
static int io_wait(struct file *f)
{
    f->refs++;
    int r = sig_block(W_IO, 0, 0, 0);
    int closed = f->refs == 1;
    fput(f);
    if (closed) return -EBADF;
    return r == -EDEADLK ? -EAGAIN : r == -EINTR ? -EINTR : 0;
}

/* receive side f->pipe; blocks while empty with a live writer (unless O_NONBLOCK) */
static i64 pipe_read(struct file *f, u8 *buf, u64 n, u64 *off)
{
    for (;;) {
        struct pipe *p = f->pipe;
        if (!p) return 0; /* socket shut down for reading */
        if (p->len) {
            u64 c = p->len < n ? p->len : n;
            for (u64 i = 0; i < c; i++) buf[i] = p->buf[(p->head + i) % PIPE_CAP];
            p->head = (p->head + c) % PIPE_CAP;
            p->len -= c;
            return (i64)c;
        }
        if (!p->writers) return 0;
        if (f->flags & O_NONBLOCK) return -EAGAIN;
        int r = io_wait(f);
        if (r) return r;
        if (f->ops->caps & FOP_HOST) return f->ops->read(f, buf, n, off); /* a fork made it a host end */
    }
}

/* send side f->tx (a pipe's write end, a socket's peer); a blocking write writes everything */
static i64 pipe_write(struct file *f, const u8 *buf, u64 n, u64 *off)
{
    u64 done = 0;
    for (;;) {
        struct pipe *p = f->tx;
        if (!p || !p->readers) return done ? (i64)done : -EPIPE;
        u64 room = PIPE_CAP - p->len, c = n - done < room ? n - done : room;
        for (u64 i = 0; i < c; i++) p->buf[(p->head + p->len + i) % PIPE_CAP] = buf[done + i];
        p->len += c;
        done += c;
        if (done == n || (f->flags & O_NONBLOCK)) return done ? (i64)done : -EAGAIN;
        int r = io_wait(f);
        if (r) return done ? (i64)done : r;
        if (f->ops->caps & FOP_HOST) { /* a fork made it a host end */
            i64 w = f->ops->write(f, buf + done, n - done, off);
            return w < 0 ? (done ? (i64)done : w) : (i64)(done + (u64)w);
        }
    }
}

static struct pipe *pipe_new(void)
{
    struct pipe *p = kzalloc(sizeof *p);
    if (!p) return 0;
    p->buf = kmalloc(PIPE_CAP);
    if (!p->buf) { kfree(p); return 0; }
    return p;
}


static void pipe_free(struct pipe *p)
{
    if (p->fifo) p->fifo->fifo = 0;   /* a FIFO's buffer lives while it is open */
    kfree(p->buf);
    kfree(p);
}

/* last reference to an end: the peer sees EOF or EPIPE; a pipe nobody holds is freed */
void pipe_unref(struct file *f)
{
    struct pipe *rd = f->pipe, *wr = f->tx;
    if (rd) rd->readers--;
    if (wr) wr->writers--;
    if (rd && !rd->readers && !rd->writers) pipe_free(rd);
    if (wr && wr != rd && !wr->readers && !wr->writers) pipe_free(wr); /* a FIFO opened O_RDWR holds one pipe twice */
}
static void pipe_release(struct file *f) { pipe_unref(f); }

static short rx_ready(struct pipe *p) { return !p || !p->writers ? POLLHUP | POLLIN : p->len ? POLLIN : 0; }
static short tx_ready(struct pipe *t) { return !t || !t->readers ? POLLERR : t->len < PIPE_CAP ? POLLOUT : 0; }
static short pipe_r_poll(struct file *f) { return rx_ready(f->pipe); }
static short pipe_w_poll(struct file *f) { return tx_ready(f->tx); }
static short sock_poll(struct file *f) { return rx_ready(f->pipe) | tx_ready(f->tx); }

#define FIONREAD 0x541B
static i64 pipe_ioctl(struct file *f, u64 req, u64 arg)
{
    if (req != FIONREAD) return -ENOTTY;
    if (!uaccess_w((void *)arg, 4)) return -EFAULT;
    struct pipe *p = f->pipe ? f->pipe : f->tx;
    if (!p) return -ENOTTY;
    *(int *)arg = (int)p->len;
    return 0;
}

#define F_GETPIPE_SZ 1032
static i64 pipe_fcntl(struct file *f, u64 cmd, u64 arg)
{
    if (cmd != F_GETPIPE_SZ) return -EINVAL;
    return f->pipe || f->tx ? PIPE_CAP : -EBADF;
}

static int pipe_r_stat(struct file *f, struct kstat *st) { return fd_anon_stat(st, S_IFIFO | 0600, 61); }
static int pipe_w_stat(struct file *f, struct kstat *st) { return fd_anon_stat(st, S_IFIFO | 0600, 62); }
static int sock_stat(struct file *f, struct kstat *st) { return fd_anon_stat(st, 0140000 | 0777, 64); }

static const struct file_ops pipe_r_ops = {
    .mode = S_IFIFO, .read = pipe_read, .ioctl = pipe_ioctl, .fcntl = pipe_fcntl, .poll = pipe_r_poll,
    .stat = pipe_r_stat, .release = pipe_release,
};
static const struct file_ops pipe_w_ops = {
    .mode = S_IFIFO, .write = pipe_write, .ioctl = pipe_ioctl, .fcntl = pipe_fcntl, .poll = pipe_w_poll,
    .stat = pipe_w_stat, .release = pipe_release,
};
static const struct file_ops sock_ops = {
    .mode = 0140000, .read = pipe_read, .write = pipe_write, .ioctl = pipe_ioctl, .fcntl = pipe_fcntl,
    .poll = sock_poll, .stat = sock_stat, .release = pipe_release,
};

/* ---- FIFOs: an overlay node (mknod) whose pipe exists while some end is open ---- */
static void fifo_release(struct file *f) { pipe_unref(f); ovl_put(f->ref.o); }
static short fifo_rw_poll(struct file *f) { return rx_ready(f->pipe) | tx_ready(f->tx); }
static const struct file_ops fifo_r_ops = {
    .mode = S_IFIFO, .read = pipe_read, .ioctl = pipe_ioctl, .fcntl = pipe_fcntl, .poll = pipe_r_poll, .release = fifo_release,
};
static const struct file_ops fifo_w_ops = {
    .mode = S_IFIFO, .write = pipe_write, .ioctl = pipe_ioctl, .fcntl = pipe_fcntl, .poll = pipe_w_poll, .release = fifo_release,
};
static const struct file_ops fifo_rw_ops = {
    .mode = S_IFIFO, .read = pipe_read, .write = pipe_write, .ioctl = pipe_ioctl, .fcntl = pipe_fcntl, .poll = fifo_rw_poll,
    .release = fifo_release,
};

int ipc_pipe_type(const struct file *f)
{
    const struct file_ops *o = f->ops;
    return o == &pipe_r_ops ? PT_PIPE_R : o == &pipe_w_ops ? PT_PIPE_W : o == &sock_ops ? PT_SOCK
         : o == &fifo_r_ops ? PT_FIFO_R : o == &fifo_w_ops ? PT_FIFO_W : o == &fifo_rw_ops ? PT_FIFO_RW : PT_NONE;
}

/* open(2) of a FIFO, as Linux: O_RDWR never waits; a blocking open for reading
 * (writing) waits until a writer (reader) opens; O_WRONLY|O_NONBLOCK without a
 * reader is ENXIO. A wait no thread could ever end is EDEADLK instead of a hang. */
int fifo_open(struct onode *o, u32 flags, struct file **out)
{
    u32 acc = flags & O_ACCMODE;
    if (acc == O_ACCMODE) return -EINVAL;
    struct pipe *p = o->fifo;
    if (!p) {
        if (!(p = pipe_new())) return -ENFILE;
        p->fifo = o;
        o->fifo = p;
    }
    if (acc == O_WRONLY && !p->readers && (flags & O_NONBLOCK)) {
        if (!p->readers && !p->writers) pipe_free(p);
        return -ENXIO;
    }
    struct file *f = fnew(acc == O_RDONLY ? &fifo_r_ops : acc == O_WRONLY ? &fifo_w_ops : &fifo_rw_ops, flags);
    if (!f) { if (!p->readers && !p->writers) pipe_free(p); return -ENOMEM; }
    f->ref.kind = VK_OVL; f->ref.o = o; o->refs++;
    if (acc != O_WRONLY) { f->pipe = p; p->readers++; p->r_opens++; }
    if (acc != O_RDONLY) { f->tx = p; p->writers++; p->w_opens++; }
    if (acc != O_RDWR && !(flags & O_NONBLOCK)) {
        u32 seen = acc == O_RDONLY ? p->w_opens : p->r_opens;
        while (acc == O_RDONLY ? !p->writers && p->w_opens == seen : !p->readers && p->r_opens == seen) {
            f->refs++;
            int r = sig_block(W_IO, 0, 0, 0);
            f->refs--;
            if (r) { fput(f); return r == -EDEADLK ? -EDEADLK : r; }
        }
    }
    *out = f;
    return 0;
}

static i64 sys_pipe2(int *fds, u64 flags)
{
    if (flags & ~(u64)(O_CLOEXEC | O_NONBLOCK)) return -EINVAL;
    if (!uaccess_w(fds, 8)) return -EFAULT;
    struct pipe *p = pipe_new();
    if (!p) return -ENFILE;
    struct file *r = fnew(&pipe_r_ops, O_RDONLY | (u32)(flags & O_NONBLOCK));
    struct file *w = fnew(&pipe_w_ops, O_WRONLY | (u32)(flags & O_NONBLOCK));
    if (!r || !w) { kfree(p->buf); kfree(p); kfree(r); kfree(w); return -ENFILE; }
    r->pipe = w->tx = p;
    p->readers = p->writers = 1;
    int a = fd_install(r, 0, !!(flags & O_CLOEXEC));
    if (a < 0) { fput(r); fput(w); return a; }
    int b = fd_install(w, 0, !!(flags & O_CLOEXEC));
    if (b < 0) { fd_close(a); fput(w); return b; }
    fds[0] = a; fds[1] = b;
    return 0;
}


/* ---- readiness ----
 * A scan over descriptors that include host ones (g_hostfd_n > 0) runs twice:
 * the first pass collects the host ends, one FB_CALL_POLL asks about all of
 * them, the second pass computes every descriptor's revents in the same order.
 * Blocking then waits on the host with those entries (and is also ended by
 * another thread's syscall when local descriptors take part). Without host
 * descriptors a scan is one pass and no call, as it always was. */
static short scan_fd(i64 fd, short ev, struct pscan *s, int collect)
{
    struct file *f = fget(fd);
    if (!f) return POLLNVAL;
    if (f->ops->caps & FOP_HOST) {
        if (!collect) return hostfd_poll_get(f, ev, s);
        if (hostfd_poll_add(f, ev, s)) s->err = -ENOMEM;
        return 0;
    }
    if (collect) { s->local++; return 0; }
    return fd_revents(fd, ev);
}

static int scan_begin(struct pscan *s)
{
    s->n = s->pos = s->local = s->err = 0;
    return g_hostfd_n > 0;
}

/* the end of a scan that found nothing: wait for a change until the deadline */
static int scan_wait(struct pscan *s, int host, u64 deadline)
{
    if (host && s->n) return host_wait_ex(s->pe, s->n, 0, 0, 0, deadline, s->local > 0, 0, 0);
    return sig_block(W_IO, 0, 0, deadline);
}

static void scan_end(struct pscan *s) { kfree(s->pe); kfree(s->rev); }

struct pollfd { int fd; short events, revents; };
static i64 poll_scan(struct pollfd *p, u64 n, i64 timeout_ms, struct pscan *s)
{
    u64 deadline = timeout_ms > 0 ? time_mono_ns() + (u64)timeout_ms * 1000000ull : 0;
    if (timeout_ms > 0 && !deadline) deadline = 1;
    for (;;) {
        int host = scan_begin(s);
        if (host) {
            for (u64 i = 0; i < n; i++) if (p[i].fd >= 0) scan_fd(p[i].fd, p[i].events, s, 1);
            if (s->err) return s->err;
            int e = hostfd_poll_call(s);
            if (e) return e;
        }
        i64 c = 0;
        for (u64 i = 0; i < n; i++) {
            p[i].revents = p[i].fd < 0 ? 0 : host ? scan_fd(p[i].fd, p[i].events, s, 0) : fd_revents(p[i].fd, p[i].events);
            if (p[i].revents) c++;
        }
        if (c || timeout_ms == 0) return c;
        /* another thread (or process) may make one ready; with none, EDEADLK or the timeout */
        int r = scan_wait(s, host, deadline);
        if (r == -ETIMEDOUT) return 0;
        if (r) return r;
    }
}

static i64 do_poll(struct pollfd *p, u64 n, i64 timeout_ms)
{
    if (n > NFD) return -EINVAL;
    if (!uaccess_w(p, n * sizeof *p)) return -EFAULT;
    struct pscan s = { 0 };
    i64 r = poll_scan(p, n, timeout_ms, &s);
    scan_end(&s);
    return r;
}

static i64 sys_ppoll(struct pollfd *p, u64 n, const struct ktimespec *ts)
{
    i64 ms = -1;
    if (ts) {
        if (!uaccess_ok(ts, sizeof *ts)) return -EFAULT;
        ms = ts->sec * 1000 + ts->nsec / 1000000;
    }
    return do_poll(p, n, ms);
}

static i64 select_scan(i64 n, u64 *rd, u64 *wr, u64 *ex, const u64 *in_r, const u64 *in_w, const u64 *in_x,
                       i64 timeout_ns, struct pscan *s)
{
    u64 deadline = timeout_ns > 0 ? time_mono_ns() + (u64)timeout_ns : 0;
    for (;;) {
        int host = scan_begin(s);
        if (host) {
            for (i64 fd = 0; fd < n; fd++) {
                u64 bit = 1ull << (fd & 63), w = (u64)fd / 64;
                if ((in_r[w] | in_w[w] | in_x[w]) & bit) scan_fd(fd, POLLIN | POLLOUT, s, 1);
            }
            if (s->err) return s->err;
            int e = hostfd_poll_call(s);
            if (e) return e;
        }
        i64 c = 0;
        for (i64 fd = 0; fd < n; fd++) {
            u64 bit = 1ull << (fd & 63), w = (u64)fd / 64;
            int want_r = (in_r[w] & bit) != 0, want_w = (in_w[w] & bit) != 0;
            if (!want_r && !want_w && !(in_x[w] & bit)) continue;
            short r = host ? scan_fd(fd, POLLIN | POLLOUT, s, 0) : fd_revents(fd, POLLIN | POLLOUT);
            if (r & POLLNVAL) return -EBADF;
            if (want_r) { if (r & (POLLIN | POLLHUP)) { c++; rd[w] |= bit; } else rd[w] &= ~bit; }
            if (want_w) { if (r & (POLLOUT | POLLERR)) { c++; wr[w] |= bit; } else wr[w] &= ~bit; }
            if (ex) ex[w] &= ~bit;
        }
        if (c || timeout_ns == 0) return c;
        int r = scan_wait(s, host, deadline);
        if (r == -ETIMEDOUT) return 0;
        if (r) return r;
    }
}

static i64 do_select(i64 n, u64 *rd, u64 *wr, u64 *ex, i64 timeout_ns)
{
    if (n < 0 || n > NFD) return -EINVAL;
    u64 words = ((u64)n + 63) / 64;
    if ((rd && !uaccess_w(rd, words * 8)) || (wr && !uaccess_w(wr, words * 8)) || (ex && !uaccess_w(ex, words * 8))) return -EFAULT;
    u64 in_r[NFD / 64], in_w[NFD / 64], in_x[NFD / 64]; /* the sets asked for, kept across waits */
    for (u64 i = 0; i < words; i++) { in_r[i] = rd ? rd[i] : 0; in_w[i] = wr ? wr[i] : 0; in_x[i] = ex ? ex[i] : 0; }
    struct pscan s = { 0 };
    i64 r = select_scan(n, rd, wr, ex, in_r, in_w, in_x, timeout_ns, &s);
    scan_end(&s);
    return r;
}

/* ---- AF_UNIX socketpair: two pipes, one per direction (asyncio's self-pipe) ---- */
#define AF_UNIX 1
#define SOCK_STREAM 1
#define SOCK_NONBLOCK 04000
#define SOCK_CLOEXEC 02000000
static i64 sys_socketpair(u64 dom, u64 type, u64 proto, int *sv)
{
    if (dom != AF_UNIX) return -EAFNOSUPPORT;
    if ((type & ~(u64)(SOCK_NONBLOCK | SOCK_CLOEXEC)) != SOCK_STREAM || proto) return -EOPNOTSUPP;
    if (!uaccess_w(sv, 8)) return -EFAULT;
    struct pipe *p1 = pipe_new(), *p2 = pipe_new();
    struct file *a = fnew(&sock_ops, O_RDWR | (u32)(type & O_NONBLOCK)), *b = fnew(&sock_ops, O_RDWR | (u32)(type & O_NONBLOCK));
    if (!p1 || !p2 || !a || !b) {
        if (p1) { kfree(p1->buf); kfree(p1); }
        if (p2) { kfree(p2->buf); kfree(p2); }
        kfree(a); kfree(b);
        return -ENFILE;
    }
    a->pipe = p1; a->tx = p2; b->pipe = p2; b->tx = p1;
    p1->readers = p1->writers = p2->readers = p2->writers = 1;
    int cl = !!(type & SOCK_CLOEXEC);
    int x = fd_install(a, 0, cl);
    if (x < 0) { fput(a); fput(b); return x; }
    int y = fd_install(b, 0, cl);
    if (y < 0) { fd_close(x); fput(b); return y; }
    sv[0] = x; sv[1] = y;
    return 0;
}

static struct file *sock_get(i64 fd, i64 *err)
{
    struct file *f = fget(fd);
    *err = !f ? -EBADF : f->ops != &sock_ops && f->ops != &g_hsock_ops ? -ENOTSOCK : 0;
    return *err ? 0 : f;
}

#define SOL_SOCKET 1
#define SO_TYPE 3
#define SO_ERROR 4
#define SO_DOMAIN 39
static i64 sys_getsockopt(i64 fd, u64 level, u64 opt, int *val, u32 *len)
{
    i64 e;
    if (!sock_get(fd, &e)) return e;
    if (!uaccess_w(len, 4) || *len < 4 || !uaccess_w(val, 4)) return -EFAULT;
    if (level != SOL_SOCKET) return -ENOPROTOOPT;
    if (opt == SO_TYPE) *val = SOCK_STREAM;
    else if (opt == SO_ERROR) *val = 0;
    else if (opt == SO_DOMAIN) *val = AF_UNIX;
    else return -ENOPROTOOPT;
    *len = 4;
    return 0;
}

static i64 sys_getsockname(i64 fd, u8 *addr, u32 *len)
{
    i64 e;
    if (!sock_get(fd, &e)) return e;
    if (!uaccess_w(len, 4) || !uaccess_w(addr, *len)) return -EFAULT;
    if (*len >= 2) { addr[0] = AF_UNIX; addr[1] = 0; }
    *len = 2; /* unnamed AF_UNIX socket */
    return 0;
}

static i64 sys_shutdown(i64 fd, u64 how)
{
    i64 e;
    struct file *f = sock_get(fd, &e);
    if (!f) return e;
    if (how > 2) return -EINVAL;
    if (f->ops == &g_hsock_ops) return hostfd_shutdown(f, how);
    /* one process: shutting a direction marks its pipe end gone for the peer */
    struct pipe *gone[2] = { 0, 0 };
    if ((how == 0 || how == 2) && f->pipe) { f->pipe->readers--; f->pipe->len = 0; gone[0] = f->pipe; f->pipe = 0; }
    if ((how == 1 || how == 2) && f->tx) { f->tx->writers--; gone[1] = f->tx; f->tx = 0; }
    for (int i = 0; i < 2; i++)
        if (gone[i] && !gone[i]->readers && !gone[i]->writers) pipe_free(gone[i]);
    return 0;
}

/* ---- epoll over the descriptors above (level-triggered; EPOLLET/ONESHOT bookkeeping only) ---- */
struct epoll_event_k { u32 events; u64 data; } __attribute__((packed));
static short epoll_poll(struct file *f) { return 0; }
static int epoll_stat(struct file *f, struct kstat *st) { return fd_anon_stat(st, 0600, 65); }
static void epoll_release(struct file *f) { kfree(f->ep); }
static const struct file_ops epoll_ops = { .mode = 0, .poll = epoll_poll, .stat = epoll_stat, .release = epoll_release };

static i64 sys_epoll_create(u64 flags)
{
    if (flags & ~(u64)O_CLOEXEC) return -EINVAL;
    struct file *f = fnew(&epoll_ops, O_RDWR);
    if (!f) return -ENOMEM;
    int fd = fd_install(f, 0, !!(flags & O_CLOEXEC));
    if (fd < 0) fput(f);
    return fd;
}

static i64 sys_epoll_ctl(i64 epfd, u64 op, i64 fd, const struct epoll_event_k *ev)
{
    struct file *ep = fget(epfd), *t = fget(fd);
    if (!ep || !t) return -EBADF;
    if (ep->ops != &epoll_ops || ep == t) return -EINVAL;
    if (t->ops->caps & FOP_NOEPOLL) return -EPERM; /* like Linux: regular files cannot be polled */
    if (op != 2 && !uaccess_ok(ev, sizeof *ev)) return -EFAULT;
    u32 i;
    for (i = 0; i < ep->ep_n && ep->ep[i].fd != fd; i++) {}
    if (op == 1) { /* ADD */
        if (i < ep->ep_n) return -EEXIST;
        if (ep->ep_n == ep->ep_cap) {
            u32 nc = ep->ep_cap ? ep->ep_cap * 2 : 16;
            struct epitem *n = krealloc(ep->ep, nc * sizeof *n);
            if (!n) return -ENOMEM;
            ep->ep = n; ep->ep_cap = nc;
        }
        ep->ep[ep->ep_n++] = (struct epitem){ (int)fd, ev->events, ev->data };
        return 0;
    }
    if (i == ep->ep_n) return -ENOENT;
    if (op == 2) { ep->ep[i] = ep->ep[--ep->ep_n]; return 0; }
    if (op == 3) { ep->ep[i].events = ev->events; ep->ep[i].data = ev->data; return 0; }
    return -EINVAL;
}

static i64 epoll_scan(struct file *ep, struct epoll_event_k *out, i64 max, i64 timeout_ms, struct pscan *s)
{
    u64 deadline = timeout_ms > 0 ? time_mono_ns() + (u64)timeout_ms * 1000000ull : 0;
    for (;;) {
        int host = scan_begin(s);
        u32 n = ep->ep_n;
        if (host) {
            for (u32 i = 0; i < n; i++) scan_fd(ep->ep[i].fd, (short)(ep->ep[i].events & 0xffff), s, 1);
            if (s->err) return s->err;
            int e = hostfd_poll_call(s);
            if (e) return e;
        }
        i64 c = 0;
        for (u32 i = 0; i < n; i++) {
            short ev = (short)(ep->ep[i].events & 0xffff);
            short r = host ? scan_fd(ep->ep[i].fd, ev, s, 0) : fd_revents(ep->ep[i].fd, ev);
            if (r & POLLNVAL) continue; /* closed: Linux drops it with its last reference */
            if (r && c < max) { out[c].events = (u32)r; out[c].data = ep->ep[i].data; c++; }
        }
        if (c || timeout_ms == 0) return c;
        /* nothing ready: another thread (or process) may change that; with none, EDEADLK or the timeout */
        ep->refs++;
        int r = scan_wait(s, host, deadline);
        int closed = ep->refs == 1;
        fput(ep);
        if (closed) return -EBADF;
        if (r == -ETIMEDOUT) return 0;
        if (r) return r;
    }
}

static i64 sys_epoll_wait(i64 epfd, struct epoll_event_k *out, i64 max, i64 timeout_ms)
{
    struct file *ep = fget(epfd);
    if (!ep) return -EBADF;
    if (ep->ops != &epoll_ops || max <= 0 || max > 65536) return -EINVAL;
    if (!uaccess_w(out, (u64)max * sizeof *out)) return -EFAULT;
    struct pscan s = { 0 };
    i64 r = epoll_scan(ep, out, max, timeout_ms, &s);
    scan_end(&s);
    return r;
}


/* ---- the syscalls (listed in syscall.c) ---- */
SYSCALL(poll) { return do_poll((struct pollfd *)a, b, (i64)(int)c); }
SYSCALL(ppoll) { return sys_ppoll((struct pollfd *)a, b, (const struct ktimespec *)c); }
SYSCALL(pipe) { return sys_pipe2((int *)a, 0); }
SYSCALL(pipe2) { return sys_pipe2((int *)a, b); }
SYSCALL(select)
{
    i64 ns = -1;
    if (e) { if (!uaccess_ok((void *)e, 16)) return -EFAULT; ns = ((i64 *)e)[0] * 1000000000 + ((i64 *)e)[1] * 1000; }
    return do_select((i64)a, (u64 *)b, (u64 *)c, (u64 *)d, ns);
}
SYSCALL(pselect6)
{
    i64 ns = -1;
    if (e) { if (!uaccess_ok((void *)e, 16)) return -EFAULT; ns = ((i64 *)e)[0] * 1000000000 + ((i64 *)e)[1]; }
    return do_select((i64)a, (u64 *)b, (u64 *)c, (u64 *)d, ns);
}
SYSCALL(socketpair) { return sys_socketpair(a, b, c, (int *)d); }
SYSCALL(sendto) { i64 er; if (!sock_get((i64)a, &er)) return er; if (e) return -EISCONN; return fd_write((i64)a, (const u8 *)b, c); }
SYSCALL(recvfrom)
{
    i64 er;
    if (!sock_get((i64)a, &er)) return er;
    if (e && uaccess_w((void *)f, 4)) *(u32 *)f = 0;
    return fd_read((i64)a, (u8 *)b, c);
}
SYSCALL(shutdown) { return sys_shutdown((i64)a, b); }
SYSCALL(getsockname) { return sys_getsockname((i64)a, (u8 *)b, (u32 *)c); }
SYSCALL(setsockopt) { i64 er; if (!sock_get((i64)a, &er)) return er; return 0; } /* options have no effect here */
SYSCALL(getsockopt) { return sys_getsockopt((i64)a, b, c, (int *)d, (u32 *)e); }
SYSCALL(epoll_create) { return (i64)a > 0 ? sys_epoll_create(0) : -EINVAL; }
SYSCALL(epoll_create1) { return sys_epoll_create(a); }
SYSCALL(epoll_ctl) { return sys_epoll_ctl((i64)a, b, (i64)c, (const struct epoll_event_k *)d); }
SYSCALL(epoll_wait) { return sys_epoll_wait((i64)a, (struct epoll_event_k *)b, (i64)(int)c, (i64)(int)d); }
SYSCALL(epoll_pwait2)
{
    i64 ms = -1;
    if (d) { if (!uaccess_ok((void *)d, 16)) return -EFAULT; ms = ((i64 *)d)[0] * 1000 + ((i64 *)d)[1] / 1000000; }
    return sys_epoll_wait((i64)a, (struct epoll_event_k *)b, (i64)(int)c, ms);
}
