/* observe.c — what a guest can see of the host, for docs/security.md and the
 * observation test. Each request runs one probe and answers raw bytes in OUT:
 * "cpuid" -> (leaf, subleaf, eax, ebx, ecx, edx) u32 records for a fixed list
 * of leaves; "tsc" -> two RDTSC values around a short loop; "rdtscp" -> TSC
 * and TSC_AUX; "rdrand" -> 8 bytes and the carry flag; "sgdt"/"sidt" -> the
 * 10-byte descriptor; "sldt"/"str"/"smsw" -> the 8-byte result. An instruction
 * the platform refuses faults, and the VMM reports that as a crash. */
#include "guest.h"

static const uint32_t leaves[][2] = {
    { 0, 0 }, { 1, 0 }, { 6, 0 }, { 7, 0 }, { 0xb, 0 }, { 0xd, 0 }, { 0xd, 1 }, { 0x15, 0 }, { 0x16, 0 },
    { 0x40000000, 0 }, { 0x40000001, 0 }, { 0x80000000, 0 }, { 0x80000001, 0 }, { 0x80000002, 0 },
    { 0x80000003, 0 }, { 0x80000004, 0 }, { 0x80000007, 0 }, { 0x80000008, 0 },
};

static inline uint64_t rdtsc(void)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (uint64_t)hi << 32 | lo;
}

static void put64(volatile uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

void guest_main(void)
{
    MB->status = FB_ST_READY;
    doorbell();
    for (;;) {
        uint64_t n = 0;
        uint8_t d[16] = { 0 };
        if (req_is("cpuid")) {
            for (uint64_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
                uint32_t r[6] = { leaves[i][0], leaves[i][1], 0, 0, 0, 0 };
                __asm__ volatile("cpuid" : "=a"(r[2]), "=b"(r[3]), "=c"(r[4]), "=d"(r[5]) : "a"(r[0]), "c"(r[1]));
                for (int k = 0; k < 6; k++)
                    for (int b = 0; b < 4; b++) OUT[n++] = (uint8_t)(r[k] >> (8 * b));
            }
        } else if (req_is("tsc")) {
            uint64_t a = rdtsc();
            for (volatile int i = 0; i < 100000; i++) {}
            put64(OUT, a);
            put64(OUT + 8, rdtsc());
            n = 16;
        } else if (req_is("rdtscp")) {
            uint32_t lo, hi, aux;
            __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi), "=c"(aux));
            put64(OUT, (uint64_t)hi << 32 | lo);
            put64(OUT + 8, aux);
            n = 16;
        } else if (req_is("rdrand")) {
            uint64_t v = 0;
            uint8_t ok;
            __asm__ volatile("rdrand %0; setc %1" : "=r"(v), "=qm"(ok));
            put64(OUT, v);
            OUT[8] = ok;
            n = 9;
        } else if (req_is("sgdt") || req_is("sidt")) {
            if (req_is("sgdt")) __asm__ volatile("sgdt %0" : "=m"(d));
            else __asm__ volatile("sidt %0" : "=m"(d));
            for (int i = 0; i < 10; i++) OUT[i] = d[i];
            n = 10;
        } else if (req_is("sldt") || req_is("str") || req_is("smsw")) {
            uint64_t v = 0;
            if (req_is("sldt")) __asm__ volatile("sldt %0" : "=r"(v));
            else if (req_is("str")) __asm__ volatile("str %0" : "=r"(v));
            else __asm__ volatile("smsw %0" : "=r"(v));
            put64(OUT, v);
            n = 8;
        }
        respond(FB_ST_DONE, n ? 1 : -1, n);
    }
}
