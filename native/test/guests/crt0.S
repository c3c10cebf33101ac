/* crt0.S — entry of the test guests: the VMM starts us at CPL3 with RSP at
 * FB_RUNTIME_STACK_TOP; keep it 16-byte aligned and call guest_main. */
    .text
    .globl _start
_start:
    and $-16, %rsp
    call guest_main
1:  ud2
    jmp 1b
    .section .note.GNU-stack,"",@progbits
