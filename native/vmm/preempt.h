/*
 * preempt.h — the host side of guest thread preemption (preempt.c), called
 * from the run loop: arm the periodic tick after the deadline timer, and turn
 * each tick (a KVM_RUN -EINTR) into a call of the runtime's preempt entry.
 */
#ifndef FB_VMM_PREEMPT_H
#define FB_VMM_PREEMPT_H
#include <stdint.h>
#include <time.h>

struct vmm_vm;
/* after the deadline timer is armed: re-arm it to the first tick (or the deadline) */
void vmm_preempt_arm(struct vmm_vm *vm, timer_t timer, uint64_t deadline_ns);
/* on -EINTR, after the deadline check: preempt the guest if it runs threads, re-arm */
void vmm_preempt_tick(struct vmm_vm *vm, timer_t timer, uint64_t deadline_ns);

#endif
