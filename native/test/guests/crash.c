/* crash.c — faults on request: "ud2" -> #UD, "pf" -> read of an unmapped
 * address (#PF, CR2 = that address), "ro" -> write to the read-only image
 * slot (#PF), "div" -> #DE, "img" -> reads the image at 1 MiB and answers
 * the low 32 bits as exit_code; anything else is answered with 0. */
#include "guest.h"

#define UNMAPPED 0x700000000000ull

void guest_main(void)
{
    MB->status = FB_ST_READY;
    doorbell();
    for (;;) {
        if (req_is("ud2")) __asm__ volatile(".globl crash_ud2_at\ncrash_ud2_at: ud2");
        if (req_is("pf")) (void)*(volatile uint64_t *)UNMAPPED;
        if (req_is("ro")) *(volatile uint64_t *)FB_IMAGE_BASE = 1;
        if (req_is("div")) { volatile uint32_t z = 0; __asm__ volatile("divl %0" : : "r"(z), "a"(1), "d"(0)); }
        if (req_is("img")) { respond(FB_ST_DONE, (int32_t)*(volatile uint32_t *)(FB_IMAGE_BASE + 0x100000), 0); continue; }
        respond(FB_ST_DONE, 0, 0);
    }
}
