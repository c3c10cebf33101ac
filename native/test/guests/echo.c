/* echo.c — READY at the first doorbell; then copies each request to OUT. */
#include "guest.h"

void guest_main(void)
{
    MB->status = FB_ST_READY;
    doorbell();
    for (;;) {
        uint64_t n = MB->req_len;
        if (n > FB_MB_REQ_SIZE) n = FB_MB_REQ_SIZE;
        if (n > MB->out_cap) n = MB->out_cap;
        copy(OUT, REQ, n);
        respond(FB_ST_DONE, 0, n);
    }
}
