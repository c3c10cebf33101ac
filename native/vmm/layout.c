/*
 * layout.c — the guest's fixed machine state, built once at boot into the
 * supervisor-only system area: page tables (2 MiB pages, guest virtual ==
 * guest physical), GDT, TSS with an I/O bitmap that lets CPL3 reach only the
 * doorbell, an IDT whose 32 exception gates go to tiny CPL0 stubs that report
 * the fault frame on FB_PORT_FAULT. Accessed/dirty bits are preset everywhere
 * so the CPU never writes these pages: a fork never copies them.
 */
#include <errno.h>
#include <string.h>

#include "internal.h"

#define PTE_P   0x1ull
#define PTE_RW  0x2ull
#define PTE_US  0x4ull
#define PTE_A   0x20ull
#define PTE_D   0x40ull
#define PTE_PS  0x80ull

static void put64(uint8_t *ram, uint64_t gpa, uint64_t v) { memcpy(ram + gpa, &v, 8); }

static void gdt_entries(uint8_t *ram)
{
    uint64_t gdt[7] = {
        0,
        0x00af9b000000ffffull,   /* 0x08 kernel code, 64-bit, accessed */
        0x00cf93000000ffffull,   /* 0x10 kernel data */
        0x00cff3000000ffffull,   /* 0x18 user data DPL3 */
        0x00affb000000ffffull,   /* 0x20 user code DPL3, 64-bit */
        0, 0,                    /* 0x28 TSS (16 bytes) */
    };
    uint64_t base = SYS_TSS, limit = SYS_TSS_LIMIT;
    gdt[5] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x8bull << 40) /* P, busy 64-bit TSS */
           | (((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
    gdt[6] = base >> 32;
    memcpy(ram + SYS_GDT, gdt, sizeof gdt);
}

static void tss_and_iomap(uint8_t *ram)
{
    uint8_t *tss = ram + SYS_TSS;
    memset(tss, 0, SYS_TSS_IOMAP);
    uint64_t rsp0 = SYS_STACK_TOP;
    memcpy(tss + 4, &rsp0, 8);
    uint16_t iomap = SYS_TSS_IOMAP;
    memcpy(tss + 0x66, &iomap, 2);
    uint8_t *bm = tss + SYS_TSS_IOMAP;
    memset(bm, 0xff, 8192 + 1);                      /* deny all, plus the terminator byte */
    /* A 32-bit `out %eax,%dx` to the doorbell is checked against the bits of
     * all four ports it covers, so 0x7f0..0x7f3 are open; the VMM treats an
     * exit on any of them other than the doorbell (a CPL3 `out` to the fault
     * port included) as a crash. */
    for (unsigned p = FB_PORT_DOORBELL; p < FB_PORT_DOORBELL + 4; p++)
        bm[p / 8] &= (uint8_t)~(1u << (p % 8));
}

/* Stub for vector v: [push $0] ; push $v ; mov $FB_PORT_FAULT,%dx ; out %al,%dx ; 1: hlt ; jmp 1b */
static void idt_and_stubs(uint8_t *ram)
{
    const uint32_t has_error = (1u << 8) | (1u << 10) | (1u << 11) | (1u << 12) | (1u << 13) |
                               (1u << 14) | (1u << 17) | (1u << 21) | (1u << 29) | (1u << 30);
    for (unsigned v = 0; v < 32; v++) {
        uint64_t at = SYS_STUBS + v * SYS_STUB_SIZE;
        uint8_t *p = ram + at, *s = p;
        memset(p, 0xcc, SYS_STUB_SIZE);
        if (!(has_error & (1u << v))) { *p++ = 0x6a; *p++ = 0x00; }
        *p++ = 0x6a; *p++ = (uint8_t)v;
        *p++ = 0x66; *p++ = 0xba; *p++ = FB_PORT_FAULT & 0xff; *p++ = FB_PORT_FAULT >> 8;
        *p++ = 0xee;
        *p++ = 0xf4; *p++ = 0xeb; *p++ = 0xfd;
        (void)s;
        uint8_t gate[16] = {0};
        gate[0] = at & 0xff; gate[1] = (at >> 8) & 0xff;
        gate[2] = SEL_KCODE; gate[3] = 0;
        gate[4] = 0;                 /* IST 0: RSP0 from the TSS */
        gate[5] = 0x8e;              /* present, DPL 0, 64-bit interrupt gate */
        gate[6] = (at >> 16) & 0xff; gate[7] = (at >> 24) & 0xff;
        uint32_t hi = (uint32_t)(at >> 32);
        memcpy(gate + 8, &hi, 4);
        memcpy(ram + SYS_IDT + v * 16, gate, 16);
    }
}

int layout_build(uint8_t *ram, uint64_t ram_size, uint64_t image_map_size, int mmio_hole, struct vmm_err *err)
{
    if (ram_size < FB_RAM_MIN || ram_size > FB_RAM_MAX || ram_size % FB_HUGE_PAGE_SIZE)
        return vmm_fail(err, -EINVAL, "layout", "bad ram size");
    if (image_map_size > FB_IMAGE_MAX || image_map_size % FB_HUGE_PAGE_SIZE)
        return vmm_fail(err, -EINVAL, "layout", "bad image size");
    memset(ram + FB_SYSTEM_BASE, 0, SYS_STACK_TOP - FB_SYSTEM_BASE);
    const uint64_t tbl = PTE_P | PTE_RW | PTE_US | PTE_A;
    put64(ram, SYS_PML4, SYS_PDPT | tbl);
    for (uint64_t i = 0; i < 4; i++)
        put64(ram, SYS_PDPT + 8 * i, (SYS_PD0 + 0x1000 * i) | tbl);
    const uint64_t user_rw = PTE_P | PTE_RW | PTE_US | PTE_PS | PTE_A | PTE_D;
    const uint64_t sup_rw = PTE_P | PTE_RW | PTE_PS | PTE_A | PTE_D;
    const uint64_t user_ro = PTE_P | PTE_US | PTE_PS | PTE_A;
    /* RAM: [0,2M) user, [2M,4M) system (supervisor), [4M,ram) user. PDs are contiguous. */
    for (uint64_t gpa = 0; gpa < ram_size; gpa += FB_HUGE_PAGE_SIZE)
        put64(ram, SYS_PD0 + 8 * (gpa >> 21), gpa | (gpa == FB_SYSTEM_BASE ? sup_rw : user_rw));
    for (uint64_t off = 0; off < image_map_size; off += FB_HUGE_PAGE_SIZE)
        put64(ram, SYS_PD0 + 8 * ((FB_IMAGE_BASE + off) >> 21), (FB_IMAGE_BASE + off) | user_ro);
    for (uint64_t off = 0; off < FB_MAILBOX_SIZE; off += FB_HUGE_PAGE_SIZE)
        put64(ram, SYS_PD0 + 8 * ((FB_MAILBOX_BASE + off) >> 21), (FB_MAILBOX_BASE + off) | user_rw);
    if (mmio_hole) put64(ram, SYS_PD0 + 8 * (VMM_MMIO_HOLE >> 21), VMM_MMIO_HOLE | user_rw);
    gdt_entries(ram);
    tss_and_iomap(ram);
    idt_and_stubs(ram);
    return 0;
}

static void seg(struct kvm_segment *s, uint16_t sel, uint8_t type, uint8_t dpl, int code)
{
    memset(s, 0, sizeof *s);
    s->base = 0;
    s->limit = 0xffffffff;
    s->selector = sel;
    s->type = type;
    s->present = 1;
    s->dpl = dpl;
    s->s = 1;
    s->g = 1;
    s->l = code ? 1 : 0;
    s->db = code ? 0 : 1;
}

/* Long mode at CPL3 from the first instruction: no guest kernel ever runs. */
void layout_initial_sregs(struct kvm_sregs *s, int osxsave)
{
    seg(&s->cs, SEL_UCODE, 11, 3, 1);
    seg(&s->ss, SEL_UDATA, 3, 3, 0);
    s->ds = s->es = s->fs = s->gs = s->ss;
    memset(&s->tr, 0, sizeof s->tr);
    s->tr.base = SYS_TSS;
    s->tr.limit = SYS_TSS_LIMIT;
    s->tr.selector = SEL_TSS;
    s->tr.type = 11;
    s->tr.present = 1;
    memset(&s->ldt, 0, sizeof s->ldt);
    s->ldt.type = 2;
    s->ldt.unusable = 1;
    s->gdt.base = SYS_GDT;
    s->gdt.limit = 7 * 8 - 1;
    s->idt.base = SYS_IDT;
    s->idt.limit = 32 * 16 - 1;
    s->cr0 = 0x1 | 0x2 | 0x10 | 0x20 | 0x10000 | 0x80000000ull;  /* PE MP ET NE WP PG */
    s->cr3 = SYS_PML4;
    s->cr4 = 0x20 | 0x200 | 0x400 | 0x10000;                   /* PAE OSFXSR OSXMMEXCPT FSGSBASE */
    if (osxsave) s->cr4 |= 0x40000;                             /* OSXSAVE */
    s->efer = 0x100 | 0x400;                                    /* LME LMA */
}
