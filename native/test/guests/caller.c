/* caller.c — guest-to-host calls (FB_ST_CALL) and plain memory words, for the
 * call and shared-memory tests. Requests (ECHO kind, text; numbers decimal or
 * 0x hex):
 *   "c NR A"  one call: struct fb_call {nr NR, arg0 A} + the 4 bytes "ping" in
 *             RESULT. The answer (FB_REQ_ANSWER) is echoed: DONE with
 *             exit_code = answer.ret, OUT = the answer's data, RESULT = its
 *             val[0..3] (32 bytes). Any other kind in answer: ERROR, code 90.
 *   "n K"     K calls in a row (nr 1, arg0 = i); DONE with the sum of the rets.
 *   "w ADDR V" writes the 32-bit V at ADDR; DONE with exit_code 0.
 *   "r ADDR"  DONE with exit_code = the 32-bit word at ADDR.
 *   "z ADDR"  DONE with exit_code 1 when the page at ADDR is all zero, else 0.
 *   "p ADDR V" spins until the 32-bit word at ADDR is V (another vm writes it), then DONE.
 *   "s"       CALL with result_len below the call header (protocol violation).
 *   "d"       CALL whose data_len runs past result_len (protocol violation).
 *   "q"       CALL acknowledging a stale seq (protocol violation). */
#include "guest.h"

#define RES ((volatile uint8_t *)(FB_MAILBOX_BASE + FB_MB_RESULT_OFF))

static uint64_t num(uint64_t *i)
{
    uint64_t v = 0;
    while (*i < MB->req_len && REQ[*i] == ' ') (*i)++;
    if (*i + 1 < MB->req_len && REQ[*i] == '0' && REQ[*i + 1] == 'x') {
        *i += 2;
        for (;;) {
            if (*i >= MB->req_len) break;
            uint8_t c = REQ[*i];
            if (c >= '0' && c <= '9') v = v * 16 + (uint64_t)(c - '0');
            else if (c >= 'a' && c <= 'f') v = v * 16 + (uint64_t)(c - 'a' + 10);
            else break;
            (*i)++;
        }
        return v;
    }
    while (*i < MB->req_len && REQ[*i] >= '0' && REQ[*i] <= '9') v = v * 10 + (uint64_t)(REQ[(*i)++] - '0');
    return v;
}

/* Rings the doorbell with a call; returns 0 with the answer header in *a, or
 * -1 when the host answered with another kind. */
static int call(uint32_t nr, int64_t arg0, uint64_t result_len, uint64_t data_len, uint64_t ack,
                struct fb_answer *a)
{
    volatile struct fb_call *c = (volatile struct fb_call *)RES;
    c->nr = nr;
    c->flags = 0;
    for (int k = 0; k < 6; k++) c->arg[k] = 0;
    c->arg[0] = arg0;
    c->data_len = data_len;
    RES[64] = 'p'; RES[65] = 'i'; RES[66] = 'n'; RES[67] = 'g';
    MB->result_len = result_len;
    MB->out_len = 0;
    MB->err_len = 0;
    MB->exit_code = 0;
    MB->ack_seq = ack;
    MB->status = FB_ST_CALL;
    doorbell();
    if (MB->req_kind != FB_REQ_ANSWER || MB->req_len < sizeof *a) return -1;
    const volatile struct fb_answer *src = (const volatile struct fb_answer *)REQ;
    a->ret = src->ret;
    for (int k = 0; k < 4; k++) a->val[k] = src->val[k];
    a->signals = src->signals;
    a->data_len = src->data_len;
    if (a->data_len > MB->req_len - sizeof *a) a->data_len = MB->req_len - sizeof *a;
    return 0;
}

static void done_with(int32_t code, uint64_t out_len, uint64_t result_len)
{
    MB->out_len = out_len;
    MB->err_len = 0;
    MB->result_len = result_len;
    MB->exit_code = code;
    MB->ack_seq = MB->seq;
    MB->status = FB_ST_DONE;
    doorbell();
}

void guest_main(void)
{
    MB->status = FB_ST_READY;
    doorbell();
    for (;;) {
        uint8_t op = MB->req_len ? REQ[0] : 0;
        uint64_t i = 1, x = num(&i), y = num(&i);
        struct fb_answer a;
        if (op == 'c') {
            if (call((uint32_t)x, (int64_t)y, 64 + 4, 4, MB->seq, &a)) { respond(FB_ST_ERROR, 90, 0); continue; }
            uint64_t n = a.data_len;
            if (n > MB->out_cap) n = MB->out_cap;
            copy(OUT, REQ + sizeof a, n);
            for (int k = 0; k < 4; k++) ((volatile int64_t *)RES)[k] = a.val[k];
            done_with((int32_t)a.ret, n, 32);
        } else if (op == 'n') {
            int64_t sum = 0;
            int bad = 0;
            for (uint64_t k = 0; k < x && !bad; k++) {
                bad = call(1, (int64_t)k, 64, 0, MB->seq, &a);
                sum += a.ret;
            }
            if (bad) respond(FB_ST_ERROR, 90, 0);
            else done_with((int32_t)sum, 0, 0);
        } else if (op == 'w') {
            *(volatile uint32_t *)x = (uint32_t)y;
            done_with(0, 0, 0);
        } else if (op == 'r') {
            done_with((int32_t)*(volatile uint32_t *)x, 0, 0);
        } else if (op == 'p') {
            while (*(volatile uint32_t *)x != (uint32_t)y) __asm__ volatile("pause");
            done_with(0, 0, 0);
        } else if (op == 'z') {
            const volatile uint64_t *p = (const volatile uint64_t *)(x & ~(FB_PAGE_SIZE - 1));
            int32_t zero = 1;
            for (uint64_t k = 0; k < FB_PAGE_SIZE / 8; k++) if (p[k]) zero = 0;
            done_with(zero, 0, 0);
        } else if (op == 's') {
            call(1, 0, 32, 0, MB->seq, &a);
            respond(FB_ST_ERROR, 91, 0);
        } else if (op == 'd') {
            call(1, 0, 64 + 4, 5, MB->seq, &a);
            respond(FB_ST_ERROR, 91, 0);
        } else if (op == 'q') {
            call(1, 0, 64, 0, MB->seq - 1, &a);
            respond(FB_ST_ERROR, 91, 0);
        } else {
            respond(FB_ST_ERROR, 92, 0);
        }
    }
}
