/* rogue.c — breaks the rules on request: "mmio" writes to the slot-less MMIO
 * hole, "port" writes to port 0x80 (denied by the TSS I/O bitmap:
 * #GP), "port2" writes to port 0x7f2 (allowed, not the doorbell), "fport" does `out` to the fault port from
 * CPL3, "outlen" claims more output than the area holds, "status" answers an
 * unknown status, "ack" acknowledges the wrong request. */
#include "guest.h"

void guest_main(void)
{
    MB->status = FB_ST_READY;
    doorbell();
    for (;;) {
        if (req_is("mmio")) *(volatile uint64_t *)MMIO_HOLE = 0x1234;
        if (req_is("port")) outb_port(0x80);
        if (req_is("port2")) outb_port(FB_PORT_DOORBELL + 2);
        if (req_is("fport")) outb_port(FB_PORT_FAULT);
        if (req_is("outlen")) respond(FB_ST_DONE, 0, FB_MB_OUT_SIZE + 1);
        if (req_is("status")) { MB->ack_seq = MB->seq; MB->status = 99; doorbell(); }
        if (req_is("ack")) { MB->ack_seq = MB->seq + 5; MB->status = FB_ST_DONE; doorbell(); }
        respond(FB_ST_DONE, 0, 0);
    }
}
