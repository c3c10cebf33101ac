/*
 * fuzz_mailbox.c — libFuzzer target: the VMM's check of a guest-written
 * mailbox response (doorbell() in run.c, compiled into this harness so its
 * static functions are reachable; run.c itself is unchanged). The input fills
 * the mailbox header page; a response the VMM accepts must point only inside
 * the mailbox and within the caps it was given, and an accepted call must fit
 * in its result_len. Input bytes past the header page fill the start of RESULT.
 */
#include <sys/mman.h>

#include "../vmm/run.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t *g_mailbox;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!g_mailbox) {
        g_mailbox = mmap(NULL, FB_MAILBOX_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (g_mailbox == MAP_FAILED) __builtin_trap();
    }
    if (size < 1) return 0;
    int first = data[0] & 1;
    data++, size--;
    memset(g_mailbox, 0, FB_MB_HDR_SIZE + FB_PAGE_SIZE);
    memcpy(g_mailbox + FB_MB_HDR_OFF, data, size < FB_MB_HDR_SIZE ? size : FB_MB_HDR_SIZE);
    /* bytes past the header page: the start of RESULT (a call's struct fb_call) */
    if (size > FB_MB_HDR_SIZE) {
        size_t n = size - FB_MB_HDR_SIZE;
        memcpy(g_mailbox + FB_MB_RESULT_OFF, data + FB_MB_HDR_SIZE, n < FB_PAGE_SIZE ? n : FB_PAGE_SIZE);
    }
    const struct fb_mailbox *mb = (const struct fb_mailbox *)(g_mailbox + FB_MB_HDR_OFF);
    static struct vmm_vm vm;
    memset(&vm, 0, sizeof vm);
    vm.sh.mailbox = g_mailbox;
    vm.seq = mb->seq;
    vm.out_cap = mb->out_cap % (FB_MB_OUT_SIZE + 1);
    vm.err_cap = mb->err_cap % (FB_MB_ERR_SIZE + 1);
    struct vmm_response r;
    resp_init(&r);
    doorbell(&vm, first, &r);
    if (r.outcome == VMM_OK) {
        uint64_t ocap = first ? FB_MB_OUT_SIZE : vm.out_cap, ecap = first ? FB_MB_ERR_SIZE : vm.err_cap;
        const uint8_t *end = g_mailbox + FB_MAILBOX_SIZE;
        if (r.result_len > FB_MB_RESULT_SIZE || r.out_len > ocap || r.err_len > ecap) __builtin_trap();
        if (r.result + r.result_len > end || r.out + r.out_len > end || r.err + r.err_len > end) __builtin_trap();
        if ((r.status == FB_ST_DONE || r.status == FB_ST_CALL) && mb->ack_seq != vm.seq) __builtin_trap();
        if (first ? (r.status == FB_ST_DONE || r.status == FB_ST_CALL) : r.status == FB_ST_READY) __builtin_trap();
        if (r.status == FB_ST_CALL) {
            const struct fb_call *c = (const struct fb_call *)r.result;
            if (r.result_len < sizeof *c || c->data_len > r.result_len - sizeof *c) __builtin_trap();
        }
    }
    return 0;
}
