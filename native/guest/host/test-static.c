/*
 * test-static.c — a static, libc-free test program for the runtime: makes its
 * syscalls with `call *%rax` (what the image builder turns `syscall` into),
 * exercises memory, files, the overlay, time, randomness, then serves
 * requests from /dev/forkbox: "echo X", "rand", "file", "sleep MS", "brk",
 * "limit", "cat PATH", "exit N".
 */
typedef unsigned long u64;
typedef long i64;

static i64 sc6(i64 n, i64 a, i64 b, i64 c, i64 d, i64 e, i64 f)
{
    i64 r;
    register i64 r10 __asm__("r10") = d, r8 __asm__("r8") = e, r9 __asm__("r9") = f;
    __asm__ volatile("call *%%rax" : "=a"(r) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10), "r"(r8), "r"(r9) : "rcx", "r11", "memory");
    return r;
}
#define sc(n, a, b, c) sc6(n, (i64)(a), (i64)(b), (i64)(c), 0, 0, 0)

static u64 slen(const char *s) { u64 n = 0; while (s[n]) n++; return n; }
static void puts1(const char *s) { sc(1, 1, s, slen(s)); }
static int eq(const char *a, const char *b, u64 n) { for (u64 i = 0; i < n; i++) if (a[i] != b[i]) return 0; return 1; }
static void fail(const char *what) { sc(1, 2, "FAIL ", 5); sc(1, 2, what, slen(what)); sc(1, 2, "\n", 1); sc(231, 1, 0, 0); }
static char *num(char *p, i64 v)
{
    char t[24]; int n = 0;
    if (v < 0) { *p++ = '-'; v = -v; }
    do { t[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    while (n) *p++ = t[--n];
    *p = 0;
    return p;
}
static i64 atoi1(const char *s, u64 n) { i64 v = 0; for (u64 i = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++) v = v * 10 + s[i] - '0'; return v; }
static i64 now_ms(void) { i64 ts[2]; sc(228, 1, ts, 0); return ts[0] * 1000 + ts[1] / 1000000; }

static char buf[65536], out[4096];

void cmain(i64 *sp)
{
    i64 argc = sp[0];
    char **argv = (char **)(sp + 1);
    puts1("hello from static\n");
    if (argc != 2 || !eq(argv[1], "arg1", 5)) fail("argv");
    if (sc(39, 0, 0, 0) != 2) fail("getpid");
    if (sc(999, 0, 0, 0) != -38) fail("ENOSYS");
    /* memory */
    char *m = (char *)sc6(9, 0, 1 << 20, 3, 0x22, -1, 0);
    if ((i64)m < 0) fail("mmap");
    for (int i = 0; i < 1 << 20; i += 4096) { if (m[i]) fail("mmap zero"); m[i] = 1; }
    if (sc(11, m, 1 << 20, 0)) fail("munmap");
    char *m2 = (char *)sc6(9, 0, 1 << 20, 3, 0x22, -1, 0);
    for (int i = 0; i < 1 << 20; i += 4096) if (m2[i]) fail("reused mmap not zero");
    m2[0] = 7;
    char *m3 = (char *)sc6(25, (i64)m2, 1 << 20, 4 << 20, 1, 0, 0);
    if ((i64)m3 < 0 || m3[0] != 7 || m3[3 << 20]) fail("mremap");
    m3[5] = 9;
    if (sc(28, m3, 4096, 4) || m3[5]) fail("madvise dontneed");
    if (sc6(9, 0, 1ul << 40, 3, 0x22, -1, 0) != -12) fail("huge mmap must be ENOMEM");
    if (sc(0, 0, (void *)0x7fff00000000ul, 10) != -14) fail("EFAULT on wild pointer");
    /* files */
    i64 fd = sc(257, -100, "/etc/hello.txt", 0);
    if (fd < 0) fail("open image file");
    i64 n = sc(0, fd, buf, sizeof buf);
    sc(1, 1, buf, n);
    sc(3, fd, 0, 0);
    fd = sc(257, -100, "/tmp/new.txt", 0101 | 01000);
    if (fd < 0) fail("create in /tmp");
    sc(1, fd, "overlay data\n", 13);
    sc(3, fd, 0, 0);
    if (sc(82, "/tmp/new.txt", "/tmp/renamed.txt", 0)) fail("rename");
    fd = sc(257, -100, "/tmp/renamed.txt", 0);
    n = sc(0, fd, buf, sizeof buf);
    if (n != 13 || !eq(buf, "overlay data\n", 13)) fail("read back renamed");
    sc(3, fd, 0, 0);
    if (sc(257, -100, "/tmp/new.txt", 0) != -2) fail("old name gone");
    if (sc(87, "/etc/hello.txt", 0, 0)) fail("unlink image file");
    if (sc(257, -100, "/etc/hello.txt", 0) != -2) fail("whiteout");
    if (sc(257, -100, "/etc/../etc/./link/../etc/passwd", 0) < 0) fail("path with .. and symlink");
    fd = sc(257, -100, "/dev/forkbox", 2);
    if (fd < 0) fail("open ctl");
    for (;;) {
        n = sc(0, fd, buf, sizeof buf);
        if (n < 0) fail("ctl read");
        if (sc(0, fd, out, 1) != 0) fail("second read must be 0");
        char *o = out;
        if (n >= 5 && eq(buf, "echo ", 5)) { sc(1, 1, buf + 5, n - 5); o = num(out, n - 5); }
        else if (n == 4 && eq(buf, "rand", 4)) {
            unsigned char r[8];
            if (sc(318, r, 8, 0) != 8) fail("getrandom");
            for (int i = 0; i < 8; i++) { *o++ = "0123456789abcdef"[r[i] >> 4]; *o++ = "0123456789abcdef"[r[i] & 15]; }
        } else if (n > 6 && eq(buf, "sleep ", 6)) {
            i64 ms = atoi1(buf + 6, n - 6), t0 = now_ms();
            i64 ts[2] = { ms / 1000, (ms % 1000) * 1000000 };
            sc(35, ts, 0, 0);
            o = num(out, now_ms() - t0);
        } else if (n == 5 && eq(buf, "limit", 5)) {
            /* mem_limit from the request: a 64 MiB mapping must fail cleanly */
            o = num(out, sc6(9, 0, 64 << 20, 3, 0x22, -1, 0) == -12 ? 1 : 0);
        } else if (n > 4 && eq(buf, "cat ", 4) && n < (i64)sizeof buf) {
            /* a file as the program sees it (file requests put it there): to stdout, size as the result */
            buf[n] = 0;
            i64 f = sc(257, -100, buf + 4, 0), k, tot = 0;
            if (f < 0) o = num(out, -f + 1000);
            else {
                while ((k = sc(0, f, out, sizeof out)) > 0) { sc(1, 1, out, k); tot += k; }
                sc(3, f, 0, 0);
                o = num(out, tot);
            }
        } else if (n > 5 && eq(buf, "exit ", 5)) {
            sc(231, atoi1(buf + 5, n - 5), 0, 0);
        } else fail("unknown request");
        sc(1, fd, out, o - out);
    }
}

__asm__(".globl _start\n_start:\n mov %rsp, %rdi\n and $-16, %rsp\n call cmain\n ud2\n");
