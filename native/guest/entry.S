/*
 * entry.S — the runtime's first instruction and its syscall entry.
 * _start: RSP = FB_RUNTIME_STACK_TOP (set by the VMM); call rt_start.
 * fb_syscall_entry: reached from page 0's sled after a rewritten
 * `call *%rax`; [rsp] = return address into the program. Switches to the
 * runtime stack, dispatches, restores every register but rax/rcx/r11, `ret`s.
 * Single-threaded and never re-entered (the runtime itself makes no syscalls).
 */
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
    mov $0x100000, %rsp          /* FB_RUNTIME_STACK_TOP */
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
    sub $16, %rsp               /* 13 pushes + 16 + 8 = 128: aligned */
    push %r9
    mov %r8, %r9
    mov %r10, %r8
    mov %rdx, %rcx
    mov %rsi, %rdx
    mov %rdi, %rsi
    mov %rax, %rdi
    call rt_syscall
    add $24, %rsp
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
    mov fb_user_rsp(%rip), %rsp
    ret

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
