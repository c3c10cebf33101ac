/* rogue.c — breaks the rules on request: "mmio" writes to the slot-less MMIO
 * hole, "port" writes to port 0x80 (denied by the TSS I/O bitmap:
 * #GP), "port2" writes to port 0x7f2 (allowed, not the doorbell), "fport" does `out` to the fault port from
 * CPL3, "outlen" claims more output than the area holds, "status" answers an
 * unknown status, "ack" acknowledges the wrong request, "fuzz" fills the
 * response fields from the request's entropy (valid and invalid values). */
#include "guest.h"

static uint64_t ent64(unsigned at)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++) v |= (uint64_t)MB->entropy[(at + i) % FB_ENTROPY_SIZE] << (8 * i);
    return v;
}

static uint64_t pick_len(uint8_t sel, uint64_t cap, unsigned at)
{
    switch (sel % 4) {
    case 0: return ent64(at) & 0xfff;
    case 1: return cap;
    case 2: return cap + 1;
    default: return ent64(at);
    }
}

static void fuzz(void)
{
    static const uint32_t statuses[8] = { 0, FB_ST_READY, FB_ST_DONE, FB_ST_EXIT, FB_ST_ERROR, 5, 99, 0xffffffffu };
    volatile uint8_t *e = MB->entropy;
    MB->out_len = pick_len(e[2], MB->out_cap, 16);
    MB->err_len = pick_len(e[3], MB->err_cap, 24);
    MB->result_len = pick_len(e[4], FB_MB_RESULT_SIZE, 32);
    MB->exit_code = (int32_t)ent64(40);
    MB->out_flags = (uint32_t)ent64(48);
    MB->ack_seq = (e[1] & 3) ? MB->seq : ent64(8);
    MB->status = (e[0] & 1) ? FB_ST_DONE : statuses[(e[0] >> 1) % 8];
    doorbell();
}

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
        if (req_is("fuzz")) fuzz();
        respond(FB_ST_DONE, 0, 0);
    }
}
