/* cpuinfo.c — reports what the guest CPU looks like from inside: "cpuid1"
 * -> CPUID.1:ECX, "cpuid7" -> CPUID.7.0:EBX, "xcr0" -> XGETBV(0) (low half),
 * "avx" -> runs a 256-bit AVX instruction, "sse" -> an SSE one; exit_code
 * carries the value (or 1 after the instruction ran). "setvec" loads a
 * pattern into xmm9, ymm10 and zmm17 (AVX-512, if present) and answers;
 * "getvec" stores them to OUT (16 + 32 + 64 bytes): vector state must survive
 * the doorbell and a snapshot/fork in between. "setxmm"/"getxmm" do the same
 * for xmm9 alone (SSE only, for CPUs that do not offer AVX to the guest). */
#include "guest.h"

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4])
{
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

void guest_main(void)
{
    MB->status = FB_ST_READY;
    doorbell();
    for (;;) {
        uint32_t r[4] = { 0 };
        int32_t v = -1;
        if (req_is("cpuid1")) { cpuid(1, 0, r); v = (int32_t)r[2]; }
        if (req_is("cpuid7")) { cpuid(7, 0, r); v = (int32_t)r[1]; }
        if (req_is("xcr0")) { uint32_t lo, hi; __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0)); v = (int32_t)lo; }
        if (req_is("avx")) { __asm__ volatile("vpxor %%ymm0, %%ymm0, %%ymm0" ::: "memory"); v = 1; }
        if (req_is("sse")) { __asm__ volatile("pxor %%xmm0, %%xmm0" ::: "memory"); v = 1; }
        if (req_is("setvec")) {
            static const uint8_t pat[64] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39,
                40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62,
                63, 64 };
            __asm__ volatile("movdqu (%0), %%xmm9\n vmovdqu (%0), %%ymm10" : : "r"(pat) : "memory");
            cpuid(7, 0, r);
            if (r[1] & (1u << 16)) __asm__ volatile("vmovdqu64 (%0), %%zmm17" : : "r"(pat) : "memory");
            v = 1;
        }
        if (req_is("setxmm")) {
            static const uint8_t pat[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
            __asm__ volatile("movdqu (%0), %%xmm9" : : "r"(pat) : "memory");
            v = 1;
        }
        if (req_is("getxmm")) {
            __asm__ volatile("movdqu %%xmm9, (%0)" : : "r"(OUT) : "memory");
            respond(FB_ST_DONE, 1, 16);
            continue;
        }
        if (req_is("getvec")) {
            volatile uint8_t *o = OUT;
            __asm__ volatile("movdqu %%xmm9, (%0)\n vmovdqu %%ymm10, 16(%0)" : : "r"(o) : "memory");
            cpuid(7, 0, r);
            uint64_t n = 48;
            if (r[1] & (1u << 16)) { __asm__ volatile("vmovdqu64 %%zmm17, 48(%0)" : : "r"(o) : "memory"); n = 112; }
            respond(FB_ST_DONE, 1, n);
            continue;
        }
        respond(FB_ST_DONE, v, 0);
    }
}
