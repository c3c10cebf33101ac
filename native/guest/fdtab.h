/*
 * fdtab.h — the descriptor layer: the open file description, the file
 * operations each descriptor type provides, and the table (fd.c) that
 * dispatches through them. fd.c knows no type by name: files and directories
 * (file.c), pipes, FIFOs, socketpairs and epoll (ipc.c), eventfd (eventfd.c),
 * devices and the console (dev.c) each fill a struct file_ops.
 */
#ifndef FB_FDTAB_H
#define FB_FDTAB_H
#include "rt.h"

struct file;
/* what one descriptor type does; a NULL entry gets the answer written beside it */
struct file_ops {
    u32 mode;        /* S_IFREG, S_IFDIR, S_IFIFO, S_IFCHR, S_IFSOCK: what fcntl locks and fstat see */
    u32 caps;        /* FOP_* below */
    i64 (*read)(struct file *f, u8 *buf, u64 n, u64 *off);          /* NULL: EBADF */
    i64 (*write)(struct file *f, const u8 *buf, u64 n, u64 *off);   /* NULL: EBADF */
    i64 (*lseek)(struct file *f, i64 off, int whence);              /* NULL: ESPIPE */
    i64 (*ioctl)(struct file *f, u64 req, u64 arg);                 /* NULL: ENOTTY */
    i64 (*fcntl)(struct file *f, u64 cmd, u64 arg);                 /* type-specific commands; NULL: EINVAL */
    short (*poll)(struct file *f);                                  /* readiness; NULL: POLLIN | POLLOUT */
    int (*stat)(struct file *f, struct kstat *st);                  /* NULL: vfs_stat of f->ref */
    int (*map)(struct file *f, const u8 **data, u64 *size);         /* mmap source; NULL: ENODEV */
    void (*release)(struct file *f);                                /* last reference gone */
};
#define FOP_PIO 1        /* pread/pwrite at an offset */
#define FOP_NOEPOLL 2    /* epoll refuses it (EPERM), as Linux does regular files */
#define FOP_HOST 4       /* a host pipe end (hostfd.c): readiness comes from the host */

#define PIPE_CAP 65536
struct pipe {
    u8 *buf;
    u64 head, len;
    int readers, writers;
    u32 r_opens, w_opens;    /* FIFO: opens of each end so far (a waiting open sees a brief partner) */
    struct onode *fifo;      /* FIFO: the node whose buffer this is */
    u32 host_id, conv_gen;   /* hostfd_prepare_fork: the host pipe it became, in that pass */
    int conv_r, conv_w;      /* ... and the descriptions of each end the table holds */
};
struct epitem { int fd; u32 events; u64 data; };
struct file {
    int refs;
    const struct file_ops *ops;
    u32 flags;
    u64 off;
    struct vref ref;         /* the node it names (files, directories, devices, O_PATH); VK_NONE otherwise */
    char *path;              /* directories only (also O_PATH ones): the canonical path */
    /* owned by the type's ops */
    u8 *text; u64 text_len;  /* generated /proc and /sys text */
    struct pipe *pipe;       /* receive side: a pipe's read end, a socket's own */
    struct pipe *tx;         /* send side: a pipe's write end, a socket's peer */
    struct epitem *ep;       /* epoll: interest list */
    u32 ep_n, ep_cap;
    u64 ev_count;            /* eventfd: the counter (eventfd.c) */
    int ev_sem;              /* eventfd: EFD_SEMAPHORE */
    u32 hp_rx, hp_tx;        /* host pipe ends (hostfd.c): receive side, send side; 0 none */
    u32 conv_gen;            /* hostfd_prepare_fork: the pass that counted it */
};
struct fdent { struct file *f; int cloexec; };

extern char g_cwd[PATH_MAX_RT];
extern u32 g_umask;
extern char g_path1[PATH_MAX_RT], g_path2[PATH_MAX_RT];

struct file *fget(i64 fd);
int fd_install(struct file *f, int min, int cloexec);
struct file *fnew(const struct file_ops *ops, u32 flags);
void fput(struct file *f);
int upath(const char *u, char *dst);
i64 fd_read(i64 fd, u8 *buf, u64 n);
i64 fd_write(i64 fd, const u8 *buf, u64 n);
i64 fd_close(i64 fd);
void fd_exec_close(void);                 /* execve: close the O_CLOEXEC descriptors */
int fd_stat(struct file *f, struct kstat *st);
int readable(struct file *f);
int writable(struct file *f);
/* lseek over a file of `size` bytes (SEEK_SET/CUR/END/DATA/HOLE) */
i64 fd_seek(struct file *f, i64 off, int whence, i64 size);
/* fstat of a descriptor that names no node (pipes, the console, epoll) */
int fd_anon_stat(struct kstat *st, u32 mode, u64 ino);

#define POLLIN 1
#define POLLPRI 2
#define POLLOUT 4
#define POLLERR 8
#define POLLHUP 16
#define POLLNVAL 32
short fd_revents(i64 fd, short ev);

/* ---- providers ---- */
/* file.c: files, directories, O_PATH */
extern const struct file_ops g_file_ops, g_dir_ops;
/* ipc.c: open the FIFO an overlay node is */
int fifo_open(struct onode *o, u32 flags, struct file **out);
/* ipc.c: what kind of local pipe end f is, and its release without the type's
 * other parts (a FIFO's node reference stays) */
enum { PT_NONE, PT_PIPE_R, PT_PIPE_W, PT_SOCK, PT_FIFO_R, PT_FIFO_W, PT_FIFO_RW };
int ipc_pipe_type(const struct file *f);
void pipe_unref(struct file *f);
/* hostfd.c: host pipe ends (pipes that crossed a fork) */
extern const struct file_ops g_hsock_ops;
extern int g_hostfd_n;                       /* host descriptions alive: 0 = no host polling */
struct pscan {                               /* one readiness scan's host entries */
    struct fb_poll_ent *pe; u16 *rev;        /* kmalloc'd, grown as needed */
    int n, cap, pos;
    int local;                               /* local descriptors in the scan too */
    int err;
};
int hostfd_poll_add(struct file *f, short ev, struct pscan *s);   /* 0 or -ENOMEM */
short hostfd_poll_get(struct file *f, short ev, struct pscan *s); /* after hostfd_poll_call */
int hostfd_poll_call(struct pscan *s);       /* one FB_CALL_POLL: 0 or -errno */
i64 hostfd_shutdown(struct file *f, u64 how);
/* dev.c: open the device a VK_DEV ref names */
int dev_open(const struct vref *r, u32 flags, struct file **out);

#endif
