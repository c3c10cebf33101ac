/*
 * fdtab.h — internal to the descriptor layer (fd.c, fs.c, ipc.c): the open
 * file description, the pipe buffer, and the helpers they share.
 */
#ifndef FB_FDTAB_H
#define FB_FDTAB_H
#include "rt.h"

enum { F_FILE = 1, F_DIR, F_NULL, F_ZERO, F_RANDOM, F_CTL, F_TEXT, F_OUT, F_ERR, F_IN, F_PIPE_R, F_PIPE_W, F_PATHONLY,
       F_SOCK, F_EPOLL, F_EVENTFD };
#define PIPE_CAP 65536
struct pipe { u8 *buf; u64 head, len; int readers, writers; };
struct file {
    int refs, type;
    u32 flags;
    u64 off;
    struct vref ref;
    char *path;
    u8 *text; u64 text_len;
    struct pipe *pipe;       /* pipe end; socket: receive side */
    struct pipe *tx;         /* socket: send side (the peer's receive side) */
    struct epitem *ep;       /* epoll: interest list */
    u32 ep_n, ep_cap;
    u64 ev_count;            /* eventfd: the counter (eventfd.c) */
    int ev_sem;              /* eventfd: EFD_SEMAPHORE */
};
struct epitem { int fd; u32 events; u64 data; };
struct fdent { struct file *f; int cloexec; };

extern char g_cwd[PATH_MAX_RT];
extern u32 g_umask;
extern char g_path1[PATH_MAX_RT], g_path2[PATH_MAX_RT];

struct file *fget(i64 fd);
int fd_install(struct file *f, int min, int cloexec);
struct file *fnew(int type, u32 flags);
void fput(struct file *f);
int upath(const char *u, char *dst);
i64 sys_read(i64 fd, u8 *buf, u64 n);
i64 sys_write(i64 fd, const u8 *buf, u64 n);
i64 sys_close(i64 fd);
int writable(struct file *f);
i64 pipe_read(struct file *f, u8 *buf, u64 n);   /* may block the thread */
i64 pipe_write(struct file *f, const u8 *buf, u64 n);
struct pipe *pipe_new(void);

#define POLLIN 1
#define POLLPRI 2
#define POLLOUT 4
#define POLLERR 8
#define POLLHUP 16
#define POLLNVAL 32
short revents(i64 fd, short ev);
/* eventfd.c */
i64 eventfd_read(struct file *f, u8 *buf, u64 n);
i64 eventfd_write(struct file *f, const u8 *buf, u64 n);
short eventfd_revents(const struct file *f);

i64 fs_syscall(u64 nr, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, int *handled);
i64 ipc_syscall(u64 nr, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f, int *handled);

#endif
