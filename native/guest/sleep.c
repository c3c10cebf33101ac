/*
 * sleep.c — nanosleep and clock_nanosleep: the thread waits for its deadline
 * (signal.c's sig_block over sched.c: other threads run meanwhile; with none
 * the runtime spins on the TSC); a signal to deliver cuts the sleep short with
 * EINTR and the time left.
 */
#include "rt.h"

#define CLOCK_PROCESS_CPUTIME_ID 2
#define CLOCK_THREAD_CPUTIME_ID 3

static int ts_ns(const struct ktimespec *req, u64 *ns)
{
    if (!uaccess_ok(req, sizeof *req)) return -EFAULT;
    if (req->sec < 0 || req->nsec < 0 || req->nsec >= 1000000000) return -EINVAL;
    if ((u64)req->sec > 100000000ull) { *ns = 100000000ull * 1000000000ull; return 0; }
    *ns = (u64)req->sec * 1000000000ull + (u64)req->nsec;
    return 0;
}

/* a sleep's answer: 0 at its end; interrupted by a signal, EINTR and the time left */
static i64 sleep_rem(int r, u64 end, struct ktimespec *rem)
{
    u64 now = time_mono_ns(), left = r == -EINTR && end > now ? end - now : 0;
    if (rem && uaccess_w(rem, sizeof *rem)) { rem->sec = (i64)(left / 1000000000ull); rem->nsec = (i64)(left % 1000000000ull); }
    return r == -EINTR ? -EINTR : 0;
}

i64 sys_nanosleep(const struct ktimespec *req, struct ktimespec *rem)
{
    u64 ns;
    int r = ts_ns(req, &ns);
    if (r) return r;
    u64 end = time_mono_ns() + ns;
    return sleep_rem(sig_block(W_SLEEP, 0, 0, end), end, rem);
}

#define TIMER_ABSTIME 1
i64 sys_clock_nanosleep(u64 clk, u64 flags, const struct ktimespec *req, struct ktimespec *rem)
{
    u64 ns, now;
    int r = ts_ns(req, &ns);
    if (r) return r;
    r = time_clock_ns(clk, &now);
    if (r) return r;
    if (clk == CLOCK_PROCESS_CPUTIME_ID || clk == CLOCK_THREAD_CPUTIME_ID) return -EINVAL;
    u64 wait = (flags & TIMER_ABSTIME) ? (ns > now ? ns - now : 0) : ns;
    u64 end = time_mono_ns() + wait;
    return sleep_rem(sig_block(W_SLEEP, 0, 0, end), end, (flags & TIMER_ABSTIME) ? 0 : rem);
}

/* ---- the syscalls (listed in syscall.c) ---- */
SYSCALL(clock_nanosleep) { return sys_clock_nanosleep(a, b, (const struct ktimespec *)c, (struct ktimespec *)d); }
SYSCALL(nanosleep) { return sys_nanosleep((const struct ktimespec *)a, (struct ktimespec *)b); }
