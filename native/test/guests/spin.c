/* spin.c — answers READY, then loops forever on the first request. */
#include "guest.h"

void guest_main(void)
{
    MB->status = FB_ST_READY;
    doorbell();
    for (;;) __asm__ volatile("" ::: "memory");
}
