/*
 * start.c — boot: validate the boot info, write page 0's syscall sled, bring
 * up the arena, image, clocks and CSPRNG, load the program and its PT_INTERP,
 * build the initial stack (argv, envp, auxv without a vDSO; start_stack, which
 * execve uses too) and enter the interpreter at CPL3 with a clean register
 * state. Runs once per template.
 */
#include "rt.h"

const struct fb_boot_info *g_boot;
char g_exe_path[PATH_MAX_RT];
extern u64 g_ram_size;
void fb_syscall_entry(void);

#define MAXARGS 512
#define STACK_SIZE (8ull << 20)

static void write_sled(void)
{
    u8 *sled;
    /* launder address 0 so the compiler cannot treat the stores as UB */
    __asm__("" : "=r"(sled) : "0"((u64)FB_SLED_BASE));
    memset(sled, 0x90, FB_SLED_JUMP_OFF);
    i64 rel = (i64)(u64)fb_syscall_entry - (i64)(FB_SLED_JUMP_OFF + 5);
    sled[FB_SLED_JUMP_OFF] = 0xe9;
    memcpy(sled + FB_SLED_JUMP_OFF + 1, &rel, 4);
    memset(sled + FB_SLED_JUMP_OFF + 5, 0xcc, FB_SLED_SIZE - FB_SLED_JUMP_OFF - 5);
}

static u64 push_bytes(u64 sp, const void *p, u64 n)
{
    sp -= n;
    memcpy((void *)sp, p, n);
    return sp;
}

/* The initial stack, top down: the platform string, the exec file name, the argument
 * and environment strings, 16 random bytes, then (16-aligned) argc, argv, NULL, envp,
 * NULL and the auxv (no vDSO). Boot and execve build it the same way. */
u64 start_stack(u64 top, int argc, const char *const *argv, int envc, const char *const *envp,
                const struct loaded *prog, u64 interp_base, const char *execfn)
{
    u64 sp = top & ~15ull;
    u64 plat = sp = push_bytes(sp, "x86_64", 7);
    u64 efn = sp = push_bytes(sp, execfn, strlen(execfn) + 1);
    u64 strs = 0;
    for (int k = 0; k < argc; k++) strs += strlen(argv[k]) + 1;
    for (int k = 0; k < envc; k++) strs += strlen(envp[k]) + 1;
    sp -= strs;
    u64 cur = sp;
    u8 rnd[16];
    rng_fill(rnd, 16);
    sp &= ~15ull;
    u64 rndp = sp = push_bytes(sp, rnd, 16);
    u32 eax = 1, ebx, ecx = 0, edx;
    __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
    u64 aux[][2] = {
        { 3, prog->phdr }, { 4, prog->phent }, { 5, prog->phnum }, { 6, PAGE }, { 7, interp_base }, { 8, 0 },
        { 9, prog->entry }, { 11, FB_UID }, { 12, FB_UID }, { 13, FB_GID }, { 14, FB_GID },
        { 15, plat }, { 16, edx }, { 17, 100 }, { 23, 0 }, { 25, rndp }, { 26, 2 /* FSGSBASE */ },
        { 31, efn }, { 0, 0 },
    };
    u64 words = 1 + (u64)argc + 1 + (u64)envc + 1 + 2 * (sizeof aux / sizeof aux[0]);
    if (words & 1) sp -= 8;
    sp -= words * 8;
    u64 *w = (u64 *)sp;
    *w++ = (u64)argc;
    for (int k = 0; k < argc; k++) { u64 l = strlen(argv[k]) + 1; memcpy((void *)cur, argv[k], l); *w++ = cur; cur += l; }
    *w++ = 0;
    for (int k = 0; k < envc; k++) { u64 l = strlen(envp[k]) + 1; memcpy((void *)cur, envp[k], l); *w++ = cur; cur += l; }
    *w++ = 0;
    for (u64 k = 0; k < sizeof aux / sizeof aux[0]; k++) { *w++ = aux[k][0]; *w++ = aux[k][1]; }
    return sp;
}

void rt_start(void)
{
    static const char *argv[MAXARGS], *envp[MAXARGS];
    static struct loaded prog, interp;
    const struct fb_boot_info *b;
    __asm__("" : "=r"(b) : "0"((u64)FB_BOOT_INFO_ADDR));
    g_boot = b;
    if (b->magic != FB_BOOT_MAGIC || b->abi_version != FB_ABI_VERSION) rt_panic("boot info: bad magic/version");
    ctl_boot();
    if (b->args_len > FB_BOOT_ARGS_MAX || b->ram_size < FB_RAM_MIN || b->ram_size > FB_RAM_MAX ||
        (b->ram_size & (FB_HUGE_PAGE_SIZE - 1)))
        rt_panic("boot info: bad ram size or args");
    if (b->image_base != FB_IMAGE_BASE || b->image_size > FB_IMAGE_MAX || b->image_size < 4096)
        rt_panic("boot info: no usable image");
    write_sled();
    time_init(b->tsc_khz, b->wall_ns);
    rng_seed((const u8 *)b, 128);
    mm_init(b->ram_size);
    if (mm_reserve(b->ram_size - STACK_SIZE, STACK_SIZE)) rt_panic("cannot reserve the program stack");
    if (img_init(b->image_base, b->image_size)) rt_panic("image: bad header");
    if (vfs_boot_dirs()) rt_panic("cannot create /dev/shm");
    console_init();

    /* args: argv..., "", envp..., "" */
    int argc = 0, envc = 0, part = 0;
    u64 i = 0;
    while (i < b->args_len && part < 2) {
        u64 l = strnlen(b->args + i, b->args_len - i);
        if (i + l >= b->args_len) rt_panic("boot args: unterminated");
        if (l == 0) part++;
        else if (part == 0) { if (argc == MAXARGS - 1) rt_panic("boot args: too many"); argv[argc++] = b->args + i; }
        else { if (envc == MAXARGS - 1) rt_panic("boot args: too many"); envp[envc++] = b->args + i; }
        i += l + 1;
    }
    if (!argc || argv[0][0] != '/') rt_panic("boot args: argv[0] must be an absolute path in the image");
    strcpy_n(g_exe_path, argv[0], sizeof g_exe_path);

    if (elf_load(argv[0], 0, &prog)) rt_panic("cannot load the program");
    mm_set_brk_start(prog.end);
    u64 entry = prog.entry, base = 0;
    if (prog.interp[0]) {
        if (elf_load(prog.interp, 1, &interp)) rt_panic("cannot load the ELF interpreter");
        entry = interp.entry;
        base = interp.base;
    }

    u64 sp = start_stack(b->ram_size - 64, argc, argv, envc, envp, &prog, base, argv[0]);
    fb_enter_program(entry, sp);
}
