/*
 * syscall.c — the dispatcher the entry stub calls: counts every call (per
 * number, for debugging, published as a total in the mailbox) and routes it
 * to the file layer or the rest. Unknown numbers return ENOSYS.
 */
#include "rt.h"

HOT u32 g_sys_count[512];
HOT u64 g_sys_total;

i64 rt_syscall(u64 nr, u64 a, u64 b, u64 c, u64 d, u64 e, u64 f)
{
    int handled;
    g_sys_total++;
    g_sys_count[nr < 512 ? nr : 511]++;
    i64 r = fd_syscall(nr, a, b, c, d, e, f, &handled);
    if (handled) return r;
    r = misc_syscall(nr, a, b, c, d, e, f, &handled);
    if (handled) return r;
    r = ev_syscall(nr, a, b, c, d, e, f, &handled);
    if (handled) return r;
    return -ENOSYS;
}
