/* big.c — answers each request with 1 MiB of OUT in one exit; byte i is
 * (i * 7 + seq) & 0xff so the host can check every byte. */
#include "guest.h"

#define BIG (1ull << 20)

void guest_main(void)
{
    MB->status = FB_ST_READY;
    doorbell();
    for (;;) {
        uint64_t seq = MB->seq, n = BIG < MB->out_cap ? BIG : MB->out_cap;
        volatile uint64_t *o = (volatile uint64_t *)OUT;
        for (uint64_t i = 0; i < n / 8; i++) {
            uint64_t w = 0;
            for (unsigned b = 0; b < 8; b++) w |= (uint64_t)(((i * 8 + b) * 7 + seq) & 0xff) << (8 * b);
            o[i] = w;
        }
        respond(FB_ST_DONE, 0, n);
    }
}
