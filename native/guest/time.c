/*
 * time.c — clocks from rdtsc. The host gives tsc_khz and a wall-clock base at
 * boot and again with every request (a fork may run on another host, its TSC
 * may restart); MONOTONIC never goes back across a rebase. The sleeps are in
 * sleep.c.
 */
#include "rt.h"

static HOT u64 g_tsc_base, g_tsc_khz, g_wall_base, g_mono_base, g_boot_tsc;

static u64 since(u64 tsc)
{
    u64 now = rdtsc();
    if (now < tsc || !g_tsc_khz) return 0;
    u64 d = now - tsc;
    return d / g_tsc_khz * 1000000ull + (d % g_tsc_khz) * 1000000ull / g_tsc_khz;
}

void time_init(u64 tsc_khz, u64 wall_ns)
{
    g_tsc_khz = (tsc_khz >= 1000 && tsc_khz < 100000000ull) ? tsc_khz : 2000000;
    g_tsc_base = g_boot_tsc = rdtsc();
    g_wall_base = wall_ns;
    g_mono_base = 1000000000ull; /* monotonic starts at 1 s */
}

void time_rebase(u64 tsc_khz, u64 wall_ns)
{
    u64 mono = time_mono_ns(), wall = time_wall_ns();
    if (tsc_khz >= 1000 && tsc_khz < 100000000ull) g_tsc_khz = tsc_khz;
    g_tsc_base = rdtsc();
    g_mono_base = mono;
    g_wall_base = wall_ns ? wall_ns : wall;
}

u64 time_mono_ns(void) { return g_mono_base + since(g_tsc_base); }
u64 time_wall_ns(void) { return g_wall_base + since(g_tsc_base); }

void time_spin_until_mono(u64 ns)
{
    while (time_mono_ns() < ns) __asm__ volatile("pause");
}

#define CLOCK_REALTIME 0
#define CLOCK_MONOTONIC 1
#define CLOCK_PROCESS_CPUTIME_ID 2
#define CLOCK_THREAD_CPUTIME_ID 3
#define CLOCK_MONOTONIC_RAW 4
#define CLOCK_REALTIME_COARSE 5
#define CLOCK_MONOTONIC_COARSE 6
#define CLOCK_BOOTTIME 7
#define CLOCK_REALTIME_ALARM 8
#define CLOCK_BOOTTIME_ALARM 9
#define CLOCK_TAI 11

int time_clock_ns(u64 clk, u64 *ns)
{
    switch (clk) {
    case CLOCK_REALTIME: case CLOCK_REALTIME_COARSE: case CLOCK_REALTIME_ALARM: case CLOCK_TAI:
        *ns = time_wall_ns(); return 0;
    case CLOCK_MONOTONIC: case CLOCK_MONOTONIC_RAW: case CLOCK_MONOTONIC_COARSE:
    case CLOCK_BOOTTIME: case CLOCK_BOOTTIME_ALARM:
        *ns = time_mono_ns(); return 0;
    case CLOCK_PROCESS_CPUTIME_ID: case CLOCK_THREAD_CPUTIME_ID:
        /* the guest's only thread has been running since boot */
        *ns = time_mono_ns() - 1000000000ull; return 0;
    default:
        return -EINVAL;
    }
}

i64 sys_clock_gettime(u64 clk, struct ktimespec *ts)
{
    u64 ns;
    int r = time_clock_ns(clk, &ns);
    if (r) return r;
    if (!uaccess_w(ts, sizeof *ts)) return -EFAULT;
    ts->sec = (i64)(ns / 1000000000ull);
    ts->nsec = (i64)(ns % 1000000000ull);
    return 0;
}

i64 sys_clock_getres(u64 clk, struct ktimespec *ts)
{
    u64 ns;
    int r = time_clock_ns(clk, &ns);
    if (r) return r;
    if (ts) {
        if (!uaccess_w(ts, sizeof *ts)) return -EFAULT;
        ts->sec = 0;
        ts->nsec = (clk == CLOCK_REALTIME_COARSE || clk == CLOCK_MONOTONIC_COARSE) ? 4000000 : 1;
    }
    return 0;
}

i64 sys_gettimeofday(void *tv, void *tz)
{
    u64 ns = time_wall_ns();
    if (tv) {
        if (!uaccess_w(tv, 16)) return -EFAULT;
        ((i64 *)tv)[0] = (i64)(ns / 1000000000ull);
        ((i64 *)tv)[1] = (i64)(ns % 1000000000ull / 1000);
    }
    if (tz) {
        if (!uaccess_w(tz, 8)) return -EFAULT;
        memset(tz, 0, 8);
    }
    return 0;
}

i64 sys_time(i64 *t)
{
    i64 s = (i64)(time_wall_ns() / 1000000000ull);
    if (t) {
        if (!uaccess_w(t, 8)) return -EFAULT;
        *t = s;
    }
    return s;
}

/* ---- the syscalls (listed in syscall.c) ---- */
SYSCALL(clock_gettime) { return sys_clock_gettime(a, (struct ktimespec *)b); }
SYSCALL(clock_getres) { return sys_clock_getres(a, (struct ktimespec *)b); }
SYSCALL(gettimeofday) { return sys_gettimeofday((void *)a, (void *)b); }
SYSCALL(time) { return sys_time((i64 *)a); }
SYSCALL(clock_settime) { return -EPERM; }
