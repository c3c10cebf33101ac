/*
 * elf.c — loads an ELF64 x86-64 program or its interpreter from the file tree
 * of the image (never the overlay: only the image's files were rewritten at
 * build) by copying its PT_LOAD segments into the arena: ET_EXEC at its link address
 * (Debian's python3.11 is not PIE: 0x400000), ET_DYN at a top-down arena
 * address. Every header field is checked against the file size first;
 * elf_probe does only those checks (execve's, before it frees the old program).
 */
#include "rt.h"

extern u64 g_ram_size;

struct ehdr { u8 ident[16]; u16 type, machine; u32 version; u64 entry, phoff, shoff; u32 flags;
              u16 ehsize, phentsize, phnum, shentsize, shnum, shstrndx; };
struct phdr { u32 type, flags; u64 offset, vaddr, paddr, filesz, memsz, align; };
#define PT_LOAD 1
#define PT_INTERP 3
#define PT_PHDR 6

static int elf_do(const char *path, int is_interp, struct loaded *out, int load)
{
    static char canon[PATH_MAX_RT];
    struct vref r;
    const u8 *d;
    u64 size;
    int e = vfs_resolve(AT_FDCWD, path, 1, canon, &r);
    if (e) return e;
    u32 mode;
    if ((e = vfs_mode(&r, &mode))) return e;
    if ((mode & S_IFMT) != S_IFREG) return -EACCES;
    if (r.kind != VK_IMG) return -EACCES; /* only the image's programs were rewritten (syscall -> call) */
    if ((e = vfs_file_data(&r, &d, &size))) return e;
    const struct ehdr *h = (const void *)d;
    if (size < sizeof *h || memcmp(h->ident, "\177ELF", 4) || h->ident[4] != 2 || h->ident[5] != 1 ||
        h->machine != 62 || (h->type != 2 && h->type != 3) || h->phentsize != sizeof(struct phdr) ||
        h->phnum == 0 || h->phnum > 256 || h->phoff > size || (u64)h->phnum * sizeof(struct phdr) > size - h->phoff)
        return -ENOEXEC;
    if (is_interp && h->type != 3) return -ENOEXEC;
    const struct phdr *ph = (const void *)(d + h->phoff);
    u64 lo = ~0ull, hi = 0, phdr_addr = 0;
    memset(out, 0, sizeof *out);
    for (int i = 0; i < h->phnum; i++) {
        if (ph[i].type == PT_LOAD) {
            if (ph[i].filesz > ph[i].memsz || ph[i].offset > size || ph[i].filesz > size - ph[i].offset ||
                ph[i].vaddr + ph[i].memsz < ph[i].vaddr || ph[i].vaddr + ph[i].memsz > (1ull << 46) ||
                (ph[i].vaddr & (PAGE - 1)) != (ph[i].offset & (PAGE - 1)))
                return -ENOEXEC;
            if (PAGE_DOWN(ph[i].vaddr) < lo) lo = PAGE_DOWN(ph[i].vaddr);
            if (PAGE_UP(ph[i].vaddr + ph[i].memsz) > hi) hi = PAGE_UP(ph[i].vaddr + ph[i].memsz);
        } else if (ph[i].type == PT_INTERP && !is_interp) {
            if (ph[i].offset > size || ph[i].filesz > size - ph[i].offset || ph[i].filesz >= sizeof out->interp ||
                ph[i].filesz < 2)
                return -ENOEXEC;
            memcpy(out->interp, d + ph[i].offset, ph[i].filesz);
            out->interp[ph[i].filesz] = 0;
        } else if (ph[i].type == PT_PHDR) {
            phdr_addr = ph[i].vaddr;
        }
    }
    if (hi <= lo) return -ENOEXEC;
    if (h->type == 2 && (lo < FB_ARENA_BASE || hi > g_ram_size)) return -ENOEXEC;
    if (!load) {
        /* the segments' range must be free once the program's pages are (execve) */
        if (h->type == 2 && mm_runtime_holds(lo, hi - lo)) return -ENOMEM;
        return 0;
    }
    u64 bias = 0;
    if (h->type == 2) {
        if (!mm_range_free(lo, hi - lo)) return -ENOMEM;
        if ((e = mm_reserve(lo, hi - lo))) return e == -EFAULT ? -ENOEXEC : e;
        /* bss and gaps are zero: after an execve these pages hold the old program's bytes
         * (zero_pages writes only the words that are not zero) */
        zero_pages((void *)lo, hi - lo);
    } else {
        int err = -ENOMEM;
        u64 base = mm_alloc_top(hi - lo, &err);
        if (!base) return err;
        bias = base - lo;
    }
    for (int i = 0; i < h->phnum; i++) {
        if (ph[i].type != PT_LOAD) continue;
        memcpy((void *)(bias + ph[i].vaddr), d + ph[i].offset, ph[i].filesz);
        if (!phdr_addr && ph[i].offset <= h->phoff && h->phoff < ph[i].offset + ph[i].filesz)
            phdr_addr = ph[i].vaddr + (h->phoff - ph[i].offset);
    }
    out->entry = bias + h->entry;
    out->base = bias + lo;
    out->phdr = phdr_addr ? bias + phdr_addr : 0;
    out->phnum = h->phnum;
    out->phent = h->phentsize;
    out->end = bias + hi;
    return 0;
}

int elf_load(const char *path, int is_interp, struct loaded *out) { return elf_do(path, is_interp, out, 1); }
int elf_probe(const char *path, int is_interp, struct loaded *out) { return elf_do(path, is_interp, out, 0); }
