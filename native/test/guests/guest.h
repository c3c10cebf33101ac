/*
 * guest.h — shared helpers of the tiny test guests: mailbox access, the
 * doorbell, a copy loop. The guests are freestanding, run at CPL3 with
 * guest virtual == guest physical, and each exercises one VMM behaviour.
 */
#ifndef FORKBOX_TEST_GUEST_H
#define FORKBOX_TEST_GUEST_H

#include <stdint.h>
#include "abi.h"

#define MB ((volatile struct fb_mailbox *)FB_MAILBOX_BASE)
#define REQ ((volatile uint8_t *)(FB_MAILBOX_BASE + FB_MB_REQ_OFF))
#define OUT ((volatile uint8_t *)(FB_MAILBOX_BASE + FB_MB_OUT_OFF))
/* The VMM maps this 2 MiB page in the page tables with no memory behind it. */
#define MMIO_HOLE (FB_MAILBOX_BASE + FB_MAILBOX_SIZE)

static inline void doorbell(void)
{
    __asm__ volatile("outl %%eax, %%dx" : : "a"(0), "d"((uint16_t)FB_PORT_DOORBELL) : "memory");
}

static inline void outb_port(uint16_t port)
{
    __asm__ volatile("outb %%al, %%dx" : : "a"(0), "d"(port) : "memory");
}

static inline void copy(volatile uint8_t *dst, const volatile uint8_t *src, uint64_t n)
{
    __asm__ volatile("rep movsb" : "+D"(dst), "+S"(src), "+c"(n) : : "memory");
}

/* Answers the current request and waits for the next one. */
static inline void respond(uint32_t status, int32_t code, uint64_t out_len)
{
    MB->out_len = out_len;
    MB->err_len = 0;
    MB->result_len = 0;
    MB->exit_code = code;
    MB->ack_seq = MB->seq;
    MB->status = status;
    doorbell();
}

static inline int req_is(const char *s)
{
    uint64_t n = 0;
    while (s[n]) n++;
    if (MB->req_len != n) return 0;
    for (uint64_t i = 0; i < n; i++)
        if (REQ[i] != (uint8_t)s[i]) return 0;
    return 1;
}

void guest_main(void);

#endif
