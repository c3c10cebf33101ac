/* fill.c — guest memory on request, for child-snapshot and recycle tests. A
 * request "w N V" writes byte V into the first byte of each of N pages from
 * FB_ARENA_BASE; "s N" answers with the sum of those first bytes; "c" answers
 * with a counter in RAM that each request increments; "h V" is hostile: it
 * writes every page it can reach (every page of the low 2 MiB — page 0, boot
 * info, its own stack and image, rewritten in place — then V over the whole
 * arena and every mailbox page past the header); "x" answers EXIT. */
#include "guest.h"

static volatile int32_t counter;

static uint64_t num(uint64_t *i)
{
    uint64_t v = 0;
    while (*i < MB->req_len && REQ[*i] == ' ') (*i)++;
    while (*i < MB->req_len && REQ[*i] >= '0' && REQ[*i] <= '9') v = v * 10 + (uint64_t)(REQ[(*i)++] - '0');
    return v;
}

void guest_main(void)
{
    MB->status = FB_ST_READY;
    doorbell();
    for (;;) {
        counter = counter + 1;
        uint64_t i = 1, n = num(&i), v = num(&i);
        volatile uint8_t *a = (volatile uint8_t *)FB_ARENA_BASE;
        int32_t code = counter;
        if (MB->req_len && REQ[0] == 'w') {
            for (uint64_t p = 0; p < n; p++) a[p * FB_PAGE_SIZE] = (uint8_t)v;
        } else if (MB->req_len && REQ[0] == 'h') {
            /* Dirty every page below the system area without breaking the
             * code and stack this runs on: each word is rewritten with itself
             * (the address is laundered: page 0 is a real page here). */
            uint64_t ram = ((volatile struct fb_boot_info *)FB_BOOT_INFO_ADDR)->ram_size;
            for (uint64_t p = 0; p < FB_SYSTEM_BASE; p += FB_PAGE_SIZE) {
                uint64_t q = p;
                __asm__ volatile("" : "+r"(q));
                volatile uint64_t *w = (volatile uint64_t *)q;
                *w = *w;
            }
            volatile uint8_t *bi = (volatile uint8_t *)FB_BOOT_INFO_ADDR;
            for (uint64_t o = 0; o < FB_PAGE_SIZE; o++) bi[o] = (uint8_t)n;
            for (uint64_t p = FB_ARENA_BASE; p < ram; p += FB_PAGE_SIZE) *(volatile uint8_t *)p = (uint8_t)n;
            for (uint64_t p = FB_MAILBOX_BASE + FB_PAGE_SIZE; p < FB_MAILBOX_BASE + FB_MAILBOX_SIZE; p += FB_PAGE_SIZE)
                *(volatile uint8_t *)(p + 17) = (uint8_t)n;
        } else if (MB->req_len && REQ[0] == 'x') {
            respond(FB_ST_EXIT, 3, 0);
            continue;
        } else if (MB->req_len && REQ[0] == 's') {
            uint64_t sum = 0;
            for (uint64_t p = 0; p < n; p++) sum += a[p * FB_PAGE_SIZE];
            code = (int32_t)(sum & 0x7fffffff);
        }
        respond(FB_ST_DONE, code, 0);
    }
}
