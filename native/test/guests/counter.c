/* counter.c — a counter in guest RAM; each request increments it and reports
 * it as exit_code, so a fork of a template always answers template+1. */
#include "guest.h"

static volatile int32_t counter = 0;

void guest_main(void)
{
    MB->status = FB_ST_READY;
    doorbell();
    for (;;) {
        counter = counter + 1;
        respond(FB_ST_DONE, counter, 0);
    }
}
