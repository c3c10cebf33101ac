/*
 * string.c — the mem and str helpers the runtime (and gcc's implicit calls)
 * need, plus a tiny bounded formatter. Freestanding: no libc underneath.
 * zero_pages() reads before it writes so already-zero pages stay clean
 * (a first write to a CoW page after a fork is expensive).
 */
#include <stdarg.h>
#include "rt.h"

void *memcpy(void *d, const void *s, size_t n)
{
    void *r = d;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return r;
}

void *memmove(void *d, const void *s, size_t n)
{
    u8 *dp = d;
    const u8 *sp = s;
    if (dp == sp || n == 0) return d;
    if (dp < sp || dp >= sp + n) return memcpy(d, s, n);
    dp += n - 1; sp += n - 1;
    __asm__ volatile("std; rep movsb; cld" : "+D"(dp), "+S"(sp), "+c"(n) : : "memory");
    return d;
}

void *memset(void *d, int c, size_t n)
{
    void *r = d;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return r;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const u8 *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
    return 0;
}

size_t strlen(const char *s) { size_t n = 0; while (s[n]) n++; return n; }
size_t strnlen(const char *s, size_t max) { size_t n = 0; while (n < max && s[n]) n++; return n; }

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b) { a++; b++; }
    return (u8)*a - (u8)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (a[i] != b[i]) return (u8)a[i] - (u8)b[i];
        if (!a[i]) return 0;
    }
    return 0;
}

char *strcpy_n(char *d, const char *s, size_t cap)
{
    size_t i = 0;
    if (!cap) return d;
    for (; i + 1 < cap && s[i]; i++) d[i] = s[i];
    d[i] = 0;
    return d;
}

int fmt_u64(char *buf, u64 v)
{
    char t[24]; int n = 0, i;
    do { t[n++] = (char)('0' + v % 10); v /= 10; } while (v);
    for (i = 0; i < n; i++) buf[i] = t[n - 1 - i];
    buf[n] = 0;
    return n;
}

int fmt_hex(char *buf, u64 v, int width)
{
    char t[20]; int n = 0, i;
    do { t[n++] = "0123456789abcdef"[v & 15]; v >>= 4; } while (v);
    while (n < width) t[n++] = '0';
    for (i = 0; i < n; i++) buf[i] = t[n - 1 - i];
    buf[n] = 0;
    return n;
}

int rt_snprintf(char *buf, size_t cap, const char *fmt, ...)
{
    va_list ap;
    size_t o = 0;
    char tmp[32];
    va_start(ap, fmt);
#define PUT(ch) do { if (o + 1 < cap) buf[o] = (ch); o++; } while (0)
    for (; *fmt; fmt++) {
        if (*fmt != '%') { PUT(*fmt); continue; }
        fmt++;
        int lng = 0, width = 0;
        while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
        while (*fmt == 'l') { lng = 1; fmt++; }
        const char *s = tmp;
        switch (*fmt) {
        case 's': s = va_arg(ap, const char *); if (!s) s = "(null)"; break;
        case 'c': tmp[0] = (char)va_arg(ap, int); tmp[1] = 0; break;
        case 'u': fmt_u64(tmp, lng ? va_arg(ap, u64) : va_arg(ap, unsigned)); break;
        case 'd': {
            i64 v = lng ? va_arg(ap, i64) : va_arg(ap, int);
            if (v < 0) { tmp[0] = '-'; fmt_u64(tmp + 1, (u64)-v); } else fmt_u64(tmp, (u64)v);
            break;
        }
        case 'x': fmt_hex(tmp, lng ? va_arg(ap, u64) : va_arg(ap, unsigned), width); width = 0; break;
        default: tmp[0] = '%'; tmp[1] = *fmt; tmp[2] = 0; if (!*fmt) fmt--; break;
        }
        size_t l = strlen(s);
        for (size_t i = l; (int)i < width; i++) PUT(' ');
        for (size_t i = 0; i < l; i++) PUT(s[i]);
    }
#undef PUT
    if (cap) buf[o < cap ? o : cap - 1] = 0;
    va_end(ap);
    return (int)o;
}

void zero_pages(void *p, u64 len)
{
    u8 *b = p, *end = b + len;
    while (b < end) {
        u8 *stop = (u8 *)PAGE_DOWN((u64)b + PAGE);
        if (stop > end) stop = end;
        u8 *q = b;
        while (q + 8 <= stop && *(u64 *)q == 0) q += 8;
        while (q < stop && *q == 0) q++;
        if (q < stop) memset(q, 0, (size_t)(stop - q));
        b = stop;
    }
}
