/*
 * futex.c — the futex syscall over the scheduler (sched.c): WAIT and
 * WAIT_BITSET block the thread until a WAKE on the same address (bitsets
 * honoured), the timeout, or a deadlock; a word in host shared memory (a
 * mapping shared across a fork, shmap.c) also waits on the host and is woken
 * from other VMs. Requeue, PI and wake-op are ENOSYS.
 */
#include "rt.h"

#define FUTEX_WAIT 0
#define FUTEX_WAKE 1
#define FUTEX_WAIT_BITSET 9
#define FUTEX_WAKE_BITSET 10
#define FUTEX_PRIVATE_FLAG 128
#define FUTEX_CLOCK_REALTIME 256
/* WAIT blocks this thread (sched.c) until a WAKE on the same address, the
 * timeout, or a deadlock (EDEADLK: no thread could ever wake it). A shared
 * (not FUTEX_PRIVATE) futex whose word lies in host shared memory (shmap.c)
 * also waits on the host and is woken from other VMs; its WAKE wakes there
 * too. Everything else never calls the host. */
static i64 sys_futex(u32 *uaddr, u64 op, u64 val, const struct ktimespec *ts, u64 val3)
{
    u64 cmd = op & 0x7f;
    if (cmd == FUTEX_WAKE || cmd == FUTEX_WAKE_BITSET) {
        u32 bits = cmd == FUTEX_WAKE ? ~0u : (u32)val3;
        if (!bits) return -EINVAL;
        int n = val > 0x7fffffff ? 0x7fffffff : (int)val;
        int c = sched_wake(uaddr, bits, n);
        if (g_shm_host_n && !(op & FUTEX_PRIVATE_FLAG)) return shm_futex_wake(uaddr, bits, n, c);
        return c;
    }
    if (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) {
        u32 bits = cmd == FUTEX_WAIT ? ~0u : (u32)val3;
        if (!bits) return -EINVAL;
        if (((u64)uaddr & 3) || !uaccess_ok(uaddr, 4)) return -EFAULT;
        u64 deadline = 0;
        if (ts) {
            if (!uaccess_ok(ts, sizeof *ts)) return -EFAULT;
            if (ts->sec < 0 || ts->nsec < 0 || ts->nsec >= 1000000000) return -EINVAL;
            /* waits longer than 10^8 s are cut to that (the arithmetic stays in range) */
            u64 cap = 100000000ull, ns, mono = time_mono_ns();
            if (cmd == FUTEX_WAIT_BITSET) { /* absolute, on the clock asked for */
                u64 now = (op & FUTEX_CLOCK_REALTIME) ? time_wall_ns() : mono;
                if ((u64)ts->sec >= now / 1000000000ull + cap) ns = cap * 1000000000ull;
                else {
                    u64 at = (u64)ts->sec * 1000000000ull + (u64)ts->nsec;
                    ns = at > now ? at - now : 0;
                }
            } else ns = (u64)ts->sec > cap ? cap * 1000000000ull : (u64)ts->sec * 1000000000ull + (u64)ts->nsec;
            deadline = mono + (ns ? ns : 1);
        }
        if (*uaddr != (u32)val) return -EAGAIN;
        if (g_shm_host_n && !(op & FUTEX_PRIVATE_FLAG)) {
            struct fb_futex_ent fe;
            int h = shm_futex_ent(uaddr, (u32)val, &fe);
            if (h < 0) return h;
            if (h) return host_wait_ex(0, 0, &fe, 1, 0, deadline, 0, uaddr, bits);
        }
        return sig_block(W_FUTEX, uaddr, bits, deadline);
    }
    return -ENOSYS;
}

SYSCALL(futex) { return sys_futex((u32 *)a, b, c, (const struct ktimespec *)d, f); }
