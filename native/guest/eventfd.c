/*
 * eventfd.c — eventfd/eventfd2 descriptors (libuv's loop wakeup, uv_async):
 * a 64-bit counter; read takes it (or 1 with EFD_SEMAPHORE) and blocks at 0
 * unless non-blocking, write adds and fails with EAGAIN on overflow; its
 * file_ops give poll/epoll readiness. Also the few process-wide calls Node.js
 * makes at start that no other file owns (pkey_alloc, capget).
 */
#include "fdtab.h"

static const struct file_ops eventfd_ops;

#define EFD_SEMAPHORE 1
#define EFD_MAX 0xfffffffffffffffeull

static i64 sys_eventfd2(u64 initval, u64 flags)
{
    if (flags & ~(u64)(EFD_SEMAPHORE | O_NONBLOCK | O_CLOEXEC)) return -EINVAL;
    if (initval > 0xffffffffull) return -EINVAL;
    struct file *f = fnew(&eventfd_ops, O_RDWR | (u32)(flags & O_NONBLOCK));
    if (!f) return -ENFILE;
    f->ev_count = initval;
    f->ev_sem = !!(flags & EFD_SEMAPHORE);
    int fd = fd_install(f, 0, !!(flags & O_CLOEXEC));
    if (fd < 0) fput(f);
    return fd;
}

static i64 eventfd_read(struct file *f, u8 *buf, u64 n, u64 *off)
{
    if (n < 8) return -EINVAL;
    while (f->ev_count == 0) {
        if (f->flags & O_NONBLOCK) return -EAGAIN;
        f->refs++;
        int r = sig_block(W_IO, 0, 0, 0);
        int closed = f->refs == 1;
        fput(f);
        if (closed) return -EBADF;
        if (r == -EDEADLK) return -EAGAIN; /* no thread could ever write it */
        if (r == -EINTR) return -EINTR;
    }
    u64 v = f->ev_sem ? 1 : f->ev_count;
    f->ev_count -= v;
    memcpy(buf, &v, 8);
    return 8;
}

static i64 eventfd_write(struct file *f, const u8 *buf, u64 n, u64 *off)
{
    u64 v;
    if (n < 8) return -EINVAL;
    memcpy(&v, buf, 8);
    if (v == ~0ull) return -EINVAL;
    /* a write that would overflow blocks on Linux; with one process nothing could drain it
     * but another thread — treat it as non-blocking (EAGAIN), which libuv never reaches */
    if (v > EFD_MAX - f->ev_count) return -EAGAIN;
    f->ev_count += v;
    return 8;
}

static short eventfd_poll(struct file *f)
{
    short r = POLLOUT;
    if (f->ev_count) r |= POLLIN;
    if (f->ev_count == EFD_MAX) r &= ~POLLOUT;
    return r;
}

static int eventfd_stat(struct file *f, struct kstat *st) { return fd_anon_stat(st, S_IFCHR | 0620, 66); }
static const struct file_ops eventfd_ops = {
    .mode = 0, .read = eventfd_read, .write = eventfd_write, .poll = eventfd_poll, .stat = eventfd_stat,
};

/* ---- the syscalls (listed in syscall.c) ---- */
SYSCALL(eventfd) { return sys_eventfd2(a, 0); }
SYSCALL(eventfd2) { return sys_eventfd2(a, b); }
SYSCALL(pkey_alloc) { return -ENOSPC; }     /* no protection keys (V8 falls back) */
SYSCALL(capget)                             /* no capabilities */
{
    u32 *hdr = (u32 *)a, *data = (u32 *)b;
    if (!uaccess_w(hdr, 8)) return -EFAULT;
    u32 ver = hdr[0];
    if (ver != 0x19980330 && ver != 0x20071026 && ver != 0x20080522) { hdr[0] = 0x20080522; return data ? -EINVAL : 0; }
    if (hdr[1] && (i32)hdr[1] != g_pid) return -ESRCH;
    if (data) {
        u64 words = ver == 0x19980330 ? 1 : 2;
        if (!uaccess_w(data, words * 12)) return -EFAULT;
        memset(data, 0, words * 12);
    }
    return 0;
}
SYSCALL(capset) { return -EPERM; }
