/*
 * random.c — the runtime's CSPRNG: ChaCha20 (RFC 8439 block function) in a
 * fast-key-erasure style. Seeded at boot from rdrand + boot info, reseeded
 * from the mailbox entropy at every request so two forks of one snapshot never
 * share output. Serves getrandom(2) and /dev/urandom.
 */
#include "rt.h"

static HOT u32 g_key[8];
static HOT u32 g_nonce[3];
static HOT u32 g_ctr;

#define ROTL(v, n) (((v) << (n)) | ((v) >> (32 - (n))))
#define QR(a, b, c, d) \
    a += b; d ^= a; d = ROTL(d, 16); c += d; b ^= c; b = ROTL(b, 12); \
    a += b; d ^= a; d = ROTL(d, 8);  c += d; b ^= c; b = ROTL(b, 7)

void chacha20_block(const u32 key[8], u32 counter, const u32 nonce[3], u32 out[16])
{
    u32 s[16] = { 0x61707865, 0x3320646e, 0x79622d32, 0x6b206574,
                  key[0], key[1], key[2], key[3], key[4], key[5], key[6], key[7],
                  counter, nonce[0], nonce[1], nonce[2] };
    u32 x[16];
    for (int i = 0; i < 16; i++) x[i] = s[i];
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]); QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]); QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]); QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]); QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) out[i] = x[i] + s[i];
}

/* mix `len` bytes into the key: key' = first half of block(key ^ fold(seed)) */
static void mix(const u8 *seed, u64 len)
{
    u32 out[16];
    for (u64 i = 0; i < len; i++) ((u8 *)g_key)[i % 32] ^= seed[i];
    for (u64 i = 32; i < len && i < 44; i++) ((u8 *)g_nonce)[i - 32] ^= seed[i];
    chacha20_block(g_key, 0xffffffffu, g_nonce, out);
    for (int i = 0; i < 8; i++) g_key[i] = out[i];
    for (int i = 0; i < 16; i++) out[i] = 0;
    g_ctr = 0;
}

void rng_seed(const u8 *seed, u64 len)
{
    u8 hw[32];
    for (int i = 0; i < 4; i++) {
        u64 v = 0;
        unsigned char ok = 0;
        for (int t = 0; t < 10 && !ok; t++)
            __asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
        v ^= rdtsc();
        memcpy(hw + 8 * i, &v, 8);
    }
    mix(hw, sizeof hw);
    mix(seed, len);
}

void rng_reseed(const u8 *seed, u64 len) { mix(seed, len); }

void rng_fill(u8 *dst, u64 len)
{
    u32 blk[16];
    while (len) {
        chacha20_block(g_key, g_ctr++, g_nonce, blk);
        if (g_ctr == 0xfffffff0u) mix((const u8 *)blk, 32);
        u64 c = len < 64 ? len : 64;
        memcpy(dst, blk, c);
        dst += c; len -= c;
    }
    /* fast key erasure: the output so far cannot be recomputed from the state */
    chacha20_block(g_key, g_ctr++, g_nonce, blk);
    for (int i = 0; i < 8; i++) g_key[i] = blk[i];
    g_ctr = 0;
    for (int i = 0; i < 16; i++) blk[i] = 0;
}

#define GRND_NONBLOCK 1
#define GRND_RANDOM 2
#define GRND_INSECURE 4
i64 sys_getrandom(u8 *buf, u64 len, u64 flags)
{
    if (flags & ~7ull) return -EINVAL;
    if (len > 33554431) len = 33554431;
    if (!uaccess_w(buf, len)) return -EFAULT;
    rng_fill(buf, len);
    return (i64)len;
}

SYSCALL(getrandom) { return sys_getrandom((u8 *)a, b, c); } /* listed in syscall.c */
