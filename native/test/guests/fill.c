/* fill.c — guest memory on request, for child-snapshot tests. A request
 * "w N V" writes byte V into the first byte of each of N pages from
 * FB_ARENA_BASE; "s N" answers with the sum of those first bytes; "c" answers
 * with a counter in RAM that each request increments. */
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
        } else if (MB->req_len && REQ[0] == 's') {
            uint64_t sum = 0;
            for (uint64_t p = 0; p < n; p++) sum += a[p * FB_PAGE_SIZE];
            code = (int32_t)(sum & 0x7fffffff);
        }
        respond(FB_ST_DONE, code, 0);
    }
}
