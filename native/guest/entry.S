/*
 * entry.S — the runtime's first instruction and its syscall entry.
 * _start: RSP = FB_RUNTIME_STACK_TOP (set by the VMM); call rt_start.
 * fb_syscall_entry: reached from page 0's sled after a rewritten
 * `call *%rax`; [rsp] = return address into the program. Switches to the
 * current thread's runtime stack, dispatches, restores every register but
 * rax/rcx/r11, `ret`s. Never re-entered (the runtime makes no syscalls).
 * fb_switch / fb_thread_start: the scheduler's context switch (sched.c).
 * fb_preempt_entry: where the VMM's tick sends a thread running program code
 * (native/vmm/preempt.c finds it in the table at FB_RUNTIME_BASE).
 */
    .section .text.entry,"ax"
    .globl fb_preempt_info
fb_preempt_info:                 /* at FB_RUNTIME_BASE: read by the VMM */
    .ascii "forkbox-preempt1"
    .quad fb_preempt_entry
    .quad g_nthreads
    .quad g_preempt_pending

    .text
    .globl _start
_start:
    xor %ebp, %ebp
    and $-16, %rsp
    call rt_start
1:  ud2
    jmp 1b

    .globl fb_syscall_entry
fb_syscall_entry:
    mov %rsp, fb_user_rsp(%rip)
    mov g_kstack_top(%rip), %rsp /* the current thread's runtime stack */
    push fb_user_rsp(%rip)
    pushfq
    cld
    push %rdi
    push %rsi
    push %rdx
    push %r10
    push %r8
    push %r9
    push %rbx
    push %rbp
    push %r12
    push %r13
    push %r14
    push %r15
    /* rt_syscall(nr, a1, a2, a3, a4, a5) + a6 on the stack */
    sub $8, %rsp                /* 14 pushes + 8 + 8 = 128: aligned */
    push %r9
    mov %r8, %r9
    mov %r10, %r8
    mov %rdx, %rcx
    mov %rsi, %rdx
    mov %rdi, %rsi
    mov %rax, %rdi
    call rt_syscall
    cmpl $0, g_preempt_pending(%rip) /* a tick landed while we were in the runtime */
    jne 3f
4:  add $16, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    pop %r9
    pop %r8
    pop %r10
    pop %rdx
    pop %rsi
    pop %rdi
    popfq
    pop %rsp
    ret
3:  push %rax
    sub $8, %rsp
    call sched_preempt
    add $8, %rsp
    pop %rax
    jmp 4b

/* fb_preempt_entry: the VMM interrupted program code: RSP = its RSP - 136 and
 * [RSP] = the interrupted RIP (below the 128-byte red zone). Saves every
 * general register and the flags on the thread's runtime stack, lets the
 * scheduler run someone else (fb_switch saves the FPU state), restores all,
 * and `ret $128` lands at RIP with RSP as it was. */
    .globl fb_preempt_entry
fb_preempt_entry:
    mov %rsp, fb_user_rsp(%rip)
    mov g_kstack_top(%rip), %rsp
    push fb_user_rsp(%rip)
    pushfq
    cld
    push %rax
    push %rcx
    push %rdx
    push %rbx
    push %rbp
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    push %r12
    push %r13
    push %r14
    push %r15
    sub $8, %rsp                /* 17 pushes + 8 = 144: aligned */
    call sched_preempt
    add $8, %rsp
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rbp
    pop %rbx
    pop %rdx
    pop %rcx
    pop %rax
    popfq
    pop %rsp
    ret $128

/* fb_switch(save_ksp, new_ksp, save_fp, load_fp): save callee-saved registers
 * and the fs base on this runtime stack, the whole FPU/SSE/AVX state (xsave,
 * or fxsave without OSXSAVE; MXCSR and the x87 control word are in it) in
 * save_fp, store rsp in *save_ksp, continue on new_ksp with load_fp's state.
 * The program's vector registers must survive a syscall, as under Linux.
 * Frame, lowest first: fs, r15..r12, rbx, rbp, ret. */
    .globl fb_switch
fb_switch:
    push %rbp
    push %rbx
    push %r12
    push %r13
    push %r14
    push %r15
    rdfsbase %rax
    push %rax
    mov %rdx, %r12
    mov %rcx, %r13
    cmpl $0, g_fp_xsave(%rip)
    je 1f
    mov g_xcr0(%rip), %eax
    mov g_xcr0+4(%rip), %edx
    xsave64 (%r12)
    mov %rsp, (%rdi)
    mov %rsi, %rsp
    mov g_xcr0(%rip), %eax
    mov g_xcr0+4(%rip), %edx
    xrstor64 (%r13)
    jmp 2f
1:  fxsave64 (%r12)
    mov %rsp, (%rdi)
    mov %rsi, %rsp
    fxrstor64 (%r13)
2:  pop %rax
    wrfsbase %rax
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbx
    pop %rbp
    ret

/* fb_fpsave(area): the current FPU/SSE/AVX state (a new thread inherits it) */
    .globl fb_fpsave
fb_fpsave:
    cmpl $0, g_fp_xsave(%rip)
    je 1f
    mov g_xcr0(%rip), %eax
    mov g_xcr0+4(%rip), %edx
    xsave64 (%rdi)
    ret
1:  fxsave64 (%rdi)
    ret

/* a new thread's first return from fb_switch: the parent's syscall registers
 * (sched_clone copied them), then rip and rsp; rax = 0 as clone's child */
    .globl fb_thread_start
fb_thread_start:
    pop %r15
    pop %r14
    pop %r13
    pop %r12
    pop %rbp
    pop %rbx
    pop %r9
    pop %r8
    pop %r10
    pop %rdx
    pop %rsi
    pop %rdi
    popfq
    pop %rcx
    pop %rsp
    mov $0, %eax
    jmp *%rcx

/* fb_enter_program(entry, sp): jump to the program with a clean state. */
    .globl fb_enter_program
fb_enter_program:
    mov %rsi, %rsp
    mov %rdi, %rax
    xor %ebx, %ebx
    xor %ecx, %ecx
    xor %edx, %edx
    xor %esi, %esi
    xor %edi, %edi
    xor %ebp, %ebp
    xor %r8d, %r8d
    xor %r9d, %r9d
    xor %r10d, %r10d
    xor %r11d, %r11d
    xor %r12d, %r12d
    xor %r13d, %r13d
    xor %r14d, %r14d
    xor %r15d, %r15d
    push $0x202
    popfq
    jmp *%rax

/* fb_doorbell(): one exit to the host; it fills the mailbox and resumes here. */
    .globl fb_doorbell
fb_doorbell:
    mov $0x7f0, %edx
    xor %eax, %eax
    out %eax, %dx
    ret

    .section .data.hot,"aw"
    .align 8
    .globl fb_user_rsp
fb_user_rsp:
    .quad 0
    .section .note.GNU-stack,"",@progbits
