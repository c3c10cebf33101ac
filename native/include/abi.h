/*
 * abi.h — the one definition of the forkbox host/guest ABI.
 *
 * Included by the VMM (native/vmm), the guest runtime (native/guest) and the
 * test guests (native/test/guests). The guest is kernel-less: it runs only at
 * CPL3, guest virtual == guest physical, and the VMM owns the page tables.
 * Everything here is fixed-size and position-independent so a snapshot taken
 * by one build can be forked by another build with the same FB_ABI_VERSION.
 */
#ifndef FORKBOX_ABI_H
#define FORKBOX_ABI_H

#include <stdint.h>

#define FB_ABI_VERSION 3u  /* 2: RESULT grew to 1020 KiB (rich outputs); 3: guest-to-host calls (processes) */

/* ---- I/O ports --------------------------------------------------------
 * FB_PORT_DOORBELL: the guest has written a response into the mailbox (or is
 *   ready for its first request) and waits; `out %eax,%dx` with any value.
 *   The TSS I/O bitmap allows only this port at CPL3 (IOPL is 0).
 * FB_PORT_FAULT: used only by the CPL0 fault stub; the vector, error code and
 *   faulting frame are on the CPL0 stack (struct fb_fault_frame at RSP).
 * Any other exit (other port, MMIO, HLT, shutdown, internal error) is a crash
 * of that VM. */
#define FB_PORT_DOORBELL 0x7f0
#define FB_PORT_FAULT    0x7f1

/* ---- Guest physical (== virtual) layout ---------------------------------
 *
 *  0x0000_0000  page 0: syscall sled (NOPs, then jmp to the runtime's entry)
 *  0x0000_1000  boot info page (struct fb_boot_info), written by the VMM at boot
 *  0x0000_2000  runtime stack, grows down from FB_RUNTIME_STACK_TOP
 *  0x0010_0000  runtime / test guest static ELF (text+data+bss), <= 1 MiB
 *  0x0020_0000  system area, supervisor-only 2 MiB page: page tables, GDT,
 *               TSS (+ I/O bitmap), IDT, fault stubs, CPL0 stack
 *  0x0040_0000  arena: program (non-PIE python3 links here), brk, mmap
 *  ...          up to ram_size (RAM slot 0, backed by the memory file)
 *  0x8000_0000  image slot: read-only image file, mapped user read-only
 *  0xC000_0000  mailbox slot: fresh anonymous memory per fork, user RW
 *
 * All of it is mapped with 2 MiB pages; unmapped ranges fault (#PF -> crash).
 */
#define FB_PAGE_SIZE          0x1000ull
#define FB_HUGE_PAGE_SIZE     0x200000ull
#define FB_SLED_BASE          0x0ull
#define FB_SLED_SIZE          0x1000ull
#define FB_BOOT_INFO_ADDR     0x1000ull
#define FB_RUNTIME_STACK_LOW  0x2000ull
#define FB_RUNTIME_STACK_TOP  0x100000ull
#define FB_RUNTIME_BASE       0x100000ull
#define FB_RUNTIME_LIMIT      0x200000ull
#define FB_SYSTEM_BASE        0x200000ull
#define FB_SYSTEM_SIZE        0x200000ull
#define FB_ARENA_BASE         0x400000ull
#define FB_RAM_MIN            (64ull << 20)
#define FB_RAM_MAX            (2048ull << 20)
#define FB_IMAGE_BASE         0x80000000ull
#define FB_IMAGE_MAX          (1024ull << 20)
#define FB_MAILBOX_BASE       0xC0000000ull

/* ---- Mailbox ------------------------------------------------------------
 * One region per VM at FB_MAILBOX_BASE. The host fills a request (header
 * fields + REQ area) before it resumes the vCPU; the guest fills the response
 * fields + RESULT/OUT/ERR areas and rings the doorbell. Every length in it is
 * guest-writable and MUST be bounds-checked by the host against the area size
 * (and by the guest against the host's caps). */
#define FB_MB_HDR_OFF      0x0ull
#define FB_MB_HDR_SIZE     0x1000ull
#define FB_MB_RESULT_OFF   0x1000ull       /* control response payload (runner result) */
#define FB_MB_RESULT_SIZE  0xFF000ull      /* 1020 KiB: up to REQ; a runner's answer with its rich outputs */
#define FB_MB_REQ_OFF      0x100000ull     /* request payload */
#define FB_MB_REQ_SIZE     0x800000ull     /* 8 MiB */
#define FB_MB_OUT_OFF      0x1000000ull    /* stdout of the exec, or a generic response */
#define FB_MB_OUT_SIZE     0x1000000ull    /* 16 MiB */
#define FB_MB_ERR_OFF      0x2000000ull    /* stderr of the exec */
#define FB_MB_ERR_SIZE     0x800000ull     /* 8 MiB */
#define FB_MAILBOX_SIZE    0x4000000ull    /* 64 MiB of address space; only touched pages cost */

_Static_assert(FB_MB_RESULT_OFF + FB_MB_RESULT_SIZE <= FB_MB_REQ_OFF, "RESULT ends before REQ");

#define FB_MAILBOX_MAGIC   0x584f424d42464b46ull /* "FKBFMBOX" little-endian */

/* request kinds (host -> guest) */
#define FB_REQ_NONE   0u   /* at boot: no request yet */
#define FB_REQ_EXEC   1u   /* payload is for the runner (JSON for runner.py) */
#define FB_REQ_ECHO   2u   /* test guests: copy payload to OUT */
#define FB_REQ_ANSWER 3u   /* the answer to the guest's pending call (FB_ST_CALL): REQ holds a
                              struct fb_answer, then answer.data_len bytes */
/* Kinds FB_REQ_RT_FIRST..FB_REQ_RT_LAST are served by the guest runtime itself
 * (native/guest/files.c), never by the program: the payload is a struct
 * fb_file_req, the RESULT area gets a struct fb_file_resp, bulk data goes to
 * OUT. An unknown kind in this range is answered with err = ENOSYS. */
#define FB_REQ_RT_FIRST    16u
#define FB_REQ_FILE_WRITE  16u  /* path, data at offset (flags: TRUNC, APPEND, EXCL, PARENTS) */
#define FB_REQ_FILE_READ   17u  /* path, offset, length (0 = as much as fits): data -> OUT */
#define FB_REQ_FILE_STAT   18u  /* path (flag NOFOLLOW) */
#define FB_REQ_FILE_LIST   19u  /* directory path, cursor in offset, max entries in length */
#define FB_REQ_FILE_MKDIR  20u  /* path, mode (flag PARENTS: mkdir -p) */
#define FB_REQ_FILE_REMOVE 21u  /* path: file, symlink or empty dir (flag RECURSIVE) */
#define FB_REQ_FILE_RENAME 22u  /* path -> path2 (flags EXCL, PARENTS) */
#define FB_REQ_CHANGES     23u  /* the change log since the last FB_REQ_EXEC began (flag RESET) */
#define FB_REQ_FS_QUOTA    24u  /* set the overlay quota to `quota` bytes (0 = none); answers usage */
#define FB_REQ_RT_LAST     31u

/* response status (guest -> host) */
#define FB_ST_READY   1u   /* waiting for the first request (snapshot point) */
#define FB_ST_DONE    2u   /* a response to request `ack_seq` is complete */
#define FB_ST_EXIT    3u   /* the program called exit_group; the VM cannot go on */
#define FB_ST_ERROR   4u   /* the runtime failed (result holds a message) */
#define FB_ST_CALL    5u   /* the guest asks the host (a process call, see below): RESULT holds a
                              struct fb_call, then call.data_len bytes. The host answers with a
                              request of kind FB_REQ_ANSWER, now or later (a blocking call), and
                              never with another kind while a call is pending. */

/* out_flags */
#define FB_OUT_TRUNCATED    0x1u
#define FB_ERR_TRUNCATED    0x2u
#define FB_RESULT_TRUNCATED 0x4u
#define FB_EXIT_SIGNALED    0x8u   /* FB_ST_EXIT: ended by a signal's default action; exit_code = 128 + signal */

#define FB_ENTROPY_SIZE 64

/* ---- Runtime-served file requests ------------------------------------------
 * REQ area: struct fb_file_req, then path_len bytes of path, then path2_len
 * bytes of path2, then (FILE_WRITE) `length` bytes of data; the sum must not
 * exceed req_len. Paths are absolute, not NUL-terminated, < 1024 bytes, and are
 * resolved by the runtime's own resolver ("/.." is "/"). */
#define FB_FILE_TRUNC     0x1u  /* write: truncate to 0 first */
#define FB_FILE_APPEND    0x2u  /* write: at the end (offset ignored) */
#define FB_FILE_EXCL      0x4u  /* write: fail if it exists; rename: fail if path2 exists */
#define FB_FILE_PARENTS   0x8u  /* write/rename: create missing parents; mkdir: -p */
#define FB_FILE_RECURSIVE 0x10u /* remove: a directory and everything under it */
#define FB_FILE_NOFOLLOW  0x20u /* stat: do not follow a final symlink */
#define FB_FILE_RESET     0x40u /* changes: clear the log after reading it */

struct fb_file_req {
    uint32_t flags;      /* FB_FILE_* */
    uint32_t mode;       /* write (new file) / mkdir: permission bits; 0 = 0644 / 0755 */
    uint64_t offset;     /* write/read: byte offset; list: cursor (0 = start) */
    uint64_t length;     /* write: data bytes; read: max bytes; list/changes: max entries (0 = no limit) */
    uint32_t path_len;
    uint32_t path2_len;  /* rename only */
    uint64_t quota;      /* FS_QUOTA: overlay bytes, 0 = unlimited */
    uint64_t reserved[2];
};
_Static_assert(sizeof(struct fb_file_req) == 56, "file request header");

/* resp.flags */
#define FB_FILE_MORE      0x1u  /* list/changes: more entries than were returned (list: page on with cursor) */
#define FB_FILE_OVERFLOW  0x2u  /* changes: the log itself overflowed; entries are missing */

/* RESULT area of every runtime-served request (status FB_ST_DONE). */
struct fb_file_resp {
    int32_t  err;        /* 0, or a positive errno */
    uint32_t flags;      /* FB_FILE_MORE, FB_FILE_OVERFLOW */
    uint64_t size;       /* read/stat/write: file size (after the write) */
    uint64_t length;     /* read: data bytes in OUT; list/changes: entries in OUT */
    uint64_t cursor;     /* list: pass as offset to get the next page */
    uint32_t mode;       /* stat/read/write: st_mode */
    uint32_t reserved0;
    int64_t  mtime;      /* seconds since the epoch */
    uint64_t quota;      /* overlay quota in bytes (0 = none) */
    uint64_t used;       /* overlay bytes in use */
    uint64_t reserved[2];
};
_Static_assert(sizeof(struct fb_file_resp) == 80, "file response");

/* OUT area of FILE_LIST and CHANGES: records, each 8-byte aligned. */
#define FB_FT_REG 1u
#define FB_FT_DIR 2u
#define FB_FT_LNK 3u
#define FB_FT_CHR 4u
#define FB_FT_OTHER 5u
#define FB_CHG_CREATED  1u
#define FB_CHG_MODIFIED 2u
#define FB_CHG_DELETED  3u
struct fb_file_ent {
    uint32_t reclen;     /* bytes of this record incl. name and padding */
    uint16_t name_len;   /* list: entry name; changes: absolute path */
    uint8_t  type;       /* FB_FT_* (changes: the type before a delete) */
    uint8_t  change;     /* changes: FB_CHG_*; list: 0 */
    uint32_t mode;
    uint32_t reserved0;
    uint64_t size;       /* changes: size now, or before the delete */
    int64_t  mtime;
    /* char name[name_len], then zero padding to reclen */
};
_Static_assert(sizeof(struct fb_file_ent) == 32, "file entry");

/* ---- Guest-to-host calls: processes --------------------------------------------
 * A guest process is one VM; the processes of one exec (or session command) form a
 * *group* whose host side (src/engine/processes.ts) serves what crosses VMs: fork,
 * pipes shared between processes, wait, kill, shared memory and its futexes.
 * docs/processes.md has the design, docs/guest-abi.md the rules. A call rings the
 * doorbell with status FB_ST_CALL; RESULT holds struct fb_call + data. The host
 * answers with FB_REQ_ANSWER (the mailbox header as for any request: seq, clocks,
 * entropy, caps, mem_limit), REQ holding struct fb_answer + data. A host that does
 * not serve processes answers every call with ret = -ENOSYS.
 *
 * Every call except WAIT answers at once. Blocking (a pipe with nothing to read,
 * wait4 without WNOHANG, a futex in shared memory) is the runtime's: its scheduler
 * runs the other threads, and when none can run it makes one WAIT call naming
 * everything its threads wait for; the host answers WAIT when one of them may have
 * changed, a signal arrived, or the timeout passed, and the runtime looks again.
 *
 * Output: at every FB_ST_CALL, FB_ST_DONE and FB_ST_EXIT, OUT and ERR hold the bytes
 * written since the previous doorbell of this VM (out_len / err_len); after a call
 * the runtime starts both areas from 0 again, with the answer's out_cap / err_cap
 * (what is left of the exec's caps). A VM that never calls is unchanged by this.
 *
 * Pids: the host assigns them. The first process keeps FB_PID (2); a child gets a
 * multiple of FB_PID_STRIDE and its threads the tids after it, so pids and tids
 * never collide within a group. */
#define FB_PID_STRIDE 1000

#define FB_CALL_FORK        1  /* arg0 = FB_FORK_* flags. Before it the runtime has made every
                                  descriptor that can cross (pipes, socketpairs) a host pipe and
                                  every shared mapping host shared memory. Parent: ret = child pid.
                                  Child (a copy of the VM stopped at this call): ret = 0,
                                  val0 = its pid, val1 = the parent's pid. -EAGAIN: the group's
                                  process cap or the memory budget. */
#define FB_CALL_PIPE_NEW    2  /* a host pipe: data = bytes already buffered (<= 64 KiB);
                                  arg0 = read-end descriptions this VM holds, arg1 = write-end
                                  descriptions. ret = pipe id (> 0). */
#define FB_CALL_PIPE_REF    3  /* arg0 = pipe id, arg1 = end (0 read, 1 write), arg2 = +1 / -1:
                                  this VM's count of open descriptions of that end changed (a fork
                                  copies the parent's counts to the child; an exit drops them).
                                  No readers left: writes get EPIPE; no writers: reads get EOF. */
#define FB_CALL_PIPE_READ   4  /* arg0 = pipe id, arg1 = max bytes (<= FB_MB_REQ_SIZE - 64):
                                  ret = bytes (in the answer's data), 0 = end of file (no writer
                                  left), -EAGAIN = empty while a writer exists. */
#define FB_CALL_PIPE_WRITE  5  /* arg0 = pipe id, data = bytes: ret = bytes taken (> 0), -EAGAIN =
                                  no room (a write of <= 4096 bytes is taken whole or not at all),
                                  -EPIPE = no reader left (the runtime raises SIGPIPE). */
#define FB_CALL_POLL        6  /* data = arg0 struct fb_poll_ent: answer data = arg0 u16 revents
                                  (POLLIN 1, POLLOUT 4, POLLERR 8, POLLHUP 16). ret = entries ready. */
#define FB_CALL_WAIT        7  /* block until something may have changed: arg0 = timeout ns
                                  (-1 = none), data = arg1 struct fb_poll_ent then arg2 struct
                                  fb_futex_ent; arg3 = FB_WAIT_* flags. ret = 0, or -ETIMEDOUT;
                                  answer data = arg1 u16 revents as for POLL. */
#define FB_CALL_WAITPID     8  /* arg0 = pid (> 0 that child, <= 0 any child), arg1 = options
                                  (WNOHANG 1 is implied: the call never blocks; WNOWAIT
                                  0x01000000 leaves it waitable). ret = pid with val0 = Linux wait
                                  status, 0 = children but none has ended, -ECHILD = none. */
#define FB_CALL_KILL        9  /* arg0 = pid (> 0; 0 or -1: every other process of the group),
                                  arg1 = signal (0: existence check). ret = 0, -ESRCH. SIGKILL
                                  ends the target at once; others arrive in its next answer. */
#define FB_CALL_SHM_SHARE  10  /* arg0 = guest address, arg1 = length (both page-aligned),
                                  arg2 = key (0 = new object holding the range's current bytes),
                                  arg3 = byte offset into the object (page-aligned). The range
                                  becomes that object's memory, shared with every VM that maps it.
                                  ret = key (> 0). */
#define FB_CALL_SHM_UNSHARE 11 /* arg0 = guest address, arg1 = length: the range is private
                                  memory again (zero-filled); ret = 0. */
#define FB_CALL_FUTEX_WAKE 12  /* arg0 = key, arg1 = byte offset, arg2 = max waiters, arg3 =
                                  bitset: wakes WAITs of other VMs on that word. ret = woken. */

#define FB_FORK_VFORK   0x1u   /* vfork(), or clone(CLONE_VFORK): served as a fork */
#define FB_WAIT_CHILD   0x1u   /* a thread waits in wait4/waitid: a child's exit ends the WAIT */

struct fb_call {
    uint32_t nr;         /* FB_CALL_* */
    uint32_t flags;      /* 0 */
    int64_t  arg[6];
    uint64_t data_len;   /* bytes after this header in RESULT, <= FB_MB_RESULT_SIZE - 64 */
};
_Static_assert(sizeof(struct fb_call) == 64, "call header");

struct fb_answer {
    int64_t  ret;        /* >= 0, or -errno */
    int64_t  val[4];
    uint64_t signals;    /* signals other processes sent this one: bit n-1 = signal n */
    uint64_t data_len;   /* bytes after this header in REQ */
    uint64_t reserved;
};
_Static_assert(sizeof(struct fb_answer) == 64, "answer header");

struct fb_poll_ent {
    uint32_t pipe;       /* pipe id */
    uint16_t end;        /* 0 read, 1 write */
    uint16_t events;     /* POLLIN / POLLOUT */
};
_Static_assert(sizeof(struct fb_poll_ent) == 8, "poll entry");

struct fb_futex_ent {
    uint64_t key;        /* shared memory object */
    uint32_t off;        /* byte offset of the 4-byte word, aligned */
    uint32_t expect;     /* the WAIT ends at once when the word differs */
};
_Static_assert(sizeof(struct fb_futex_ent) == 16, "futex entry");

struct fb_mailbox {
    /* --- written by the host before each resume --- */
    uint64_t magic;                    /* FB_MAILBOX_MAGIC */
    uint32_t abi_version;              /* FB_ABI_VERSION */
    uint32_t req_kind;                 /* FB_REQ_* */
    uint64_t seq;                      /* request sequence number, 1, 2, ... */
    uint64_t req_len;                  /* bytes at FB_MB_REQ_OFF, <= FB_MB_REQ_SIZE */
    uint64_t wall_ns;                  /* host CLOCK_REALTIME, ns since epoch, at fill */
    uint64_t tsc_khz;                  /* guest TSC frequency */
    uint64_t out_cap;                  /* stdout bytes the guest may keep, <= FB_MB_OUT_SIZE */
    uint64_t err_cap;                  /* stderr bytes the guest may keep, <= FB_MB_ERR_SIZE */
    uint64_t mem_limit;                /* arena bytes the program may use (0 = all RAM) */
    uint8_t  entropy[FB_ENTROPY_SIZE]; /* fresh host randomness for this request */
    uint8_t  host_reserved[64];
    /* --- written by the guest before each doorbell --- */
    uint32_t status;                   /* FB_ST_* */
    int32_t  exit_code;
    uint64_t ack_seq;                  /* seq this response answers */
    uint64_t result_len;               /* bytes at FB_MB_RESULT_OFF */
    uint64_t out_len;                  /* bytes at FB_MB_OUT_OFF */
    uint64_t err_len;                  /* bytes at FB_MB_ERR_OFF */
    uint32_t out_flags;                /* FB_*_TRUNCATED */
    uint32_t guest_reserved0;
    uint64_t syscalls;                 /* guest counters, informational */
    uint64_t arena_used;               /* arena bytes in use now */
    uint64_t arena_peak;               /* most arena bytes in use since this exec request began */
    uint8_t  guest_reserved[40];
};
_Static_assert(sizeof(struct fb_mailbox) <= FB_MB_HDR_SIZE, "mailbox header fits its page");

/* ---- Boot info ------------------------------------------------------------
 * Written once by the VMM before the first instruction; lives in RAM, so it is
 * part of every snapshot. args: NUL-terminated strings, argv then an empty
 * string, then envp then an empty string. */
#define FB_BOOT_MAGIC 0x544f4f4258424b46ull /* "FKBXBOOT" */
#define FB_BOOT_ARGS_MAX (FB_PAGE_SIZE - 128)

struct fb_boot_info {
    uint64_t magic;          /* FB_BOOT_MAGIC */
    uint32_t abi_version;
    uint32_t args_len;       /* bytes used in args[] */
    uint64_t ram_size;       /* RAM slot size (arena ends here) */
    uint64_t image_base;     /* FB_IMAGE_BASE, or 0 when no image */
    uint64_t image_size;     /* bytes of the image file */
    uint64_t mailbox_base;   /* FB_MAILBOX_BASE */
    uint64_t mailbox_size;   /* FB_MAILBOX_SIZE */
    uint64_t tsc_khz;        /* guest TSC frequency at boot */
    uint64_t wall_ns;        /* host CLOCK_REALTIME at boot */
    uint64_t reserved[7];
    char     args[FB_BOOT_ARGS_MAX];
};
_Static_assert(sizeof(struct fb_boot_info) == FB_PAGE_SIZE, "boot info is one page");

/* ---- Fault report ---------------------------------------------------------
 * The CPL0 stub for vector v pushes an error code (0 when the CPU gives none)
 * and v, then does `out %al, $FB_PORT_FAULT`. At that exit, RSP (CPL0 stack in
 * the system area) points at this frame: */
struct fb_fault_frame {
    uint64_t vector;
    uint64_t error_code;
    uint64_t rip;
    uint64_t cs;
    uint64_t rflags;
    uint64_t rsp;
    uint64_t ss;
};

/* ---- Syscall entry ----------------------------------------------------------
 * The image builder rewrites each `syscall` (0f 05) into `call *%rax` (ff d0).
 * With rax = syscall number (< FB_SLED_SIZE) this lands in page 0's NOP sled,
 * which ends in a jump to the runtime's entry. At the entry: rax = number,
 * [rsp] = return address, args in rdi, rsi, rdx, r10, r8, r9. Like the kernel,
 * the entry may clobber rcx and r11 and returns the result in rax; every other
 * register, including all vector state, is preserved. The runtime writes the
 * sled itself at start (page 0 is ordinary RAM): NOPs up to FB_SLED_JUMP_OFF,
 * then a jump to its entry; the VMM leaves page 0 zero. */
#define FB_SLED_JUMP_OFF (FB_SLED_SIZE - 16)

#endif /* FORKBOX_ABI_H */
