/*
 * elf.c — loads the static ELF of the guest runtime (or a test guest) into a
 * booting vm's RAM. Only ET_EXEC x86-64 images whose PT_LOAD segments lie
 * inside [FB_RUNTIME_BASE, FB_RUNTIME_LIMIT) are accepted; everything else is
 * rejected with a message naming the problem. The file is untrusted input:
 * every offset and size is checked before use.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "internal.h"

#define ELF_MAX (64u << 20) /* loadable part <= 1 MiB; the rest is symbols and debug info */

static int read_all(int fd, uint8_t *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(fd, buf + got, n - got, (off_t)got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return r < 0 ? -errno : -EIO;
        got += (size_t)r;
    }
    return 0;
}

static int check_and_copy(const uint8_t *f, size_t fsz, uint8_t *ram, uint64_t *entry, const char *path,
                          struct vmm_err *err)
{
    const Elf64_Ehdr *eh = (const Elf64_Ehdr *)f;
    if (fsz < sizeof *eh || memcmp(eh->e_ident, ELFMAG, SELFMAG))
        return vmm_fail(err, -ENOEXEC, "elf", "%s: not an ELF file", path);
    if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64)
        return vmm_fail(err, -ENOEXEC, "elf", "%s: not a little-endian x86-64 ELF64", path);
    if (eh->e_type != ET_EXEC)
        return vmm_fail(err, -ENOEXEC, "elf", "%s: not a static executable (ET_EXEC)", path);
    if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phnum == 0 || eh->e_phnum > 64 ||
        eh->e_phoff > fsz || (fsz - eh->e_phoff) / sizeof(Elf64_Phdr) < eh->e_phnum)
        return vmm_fail(err, -ENOEXEC, "elf", "%s: bad program header table", path);
    const Elf64_Phdr *ph = (const Elf64_Phdr *)(f + eh->e_phoff);
    int loads = 0, entry_ok = 0;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        const Elf64_Phdr *p = &ph[i];
        if (p->p_type == PT_INTERP || p->p_type == PT_DYNAMIC || p->p_type == PT_TLS)
            return vmm_fail(err, -ENOEXEC, "elf", "%s: segment type %u not supported (must be static, no TLS)",
                            path, p->p_type);
        if (p->p_type != PT_LOAD) continue;
        if (p->p_filesz > p->p_memsz || p->p_vaddr < FB_RUNTIME_BASE || p->p_memsz > FB_RUNTIME_LIMIT ||
            p->p_vaddr > FB_RUNTIME_LIMIT - p->p_memsz)
            return vmm_fail(err, -ENOEXEC, "elf", "%s: PT_LOAD %#llx+%#llx outside [%#llx,%#llx)", path,
                            (unsigned long long)p->p_vaddr, (unsigned long long)p->p_memsz,
                            (unsigned long long)FB_RUNTIME_BASE, (unsigned long long)FB_RUNTIME_LIMIT);
        if (p->p_offset > fsz || fsz - p->p_offset < p->p_filesz)
            return vmm_fail(err, -ENOEXEC, "elf", "%s: PT_LOAD data beyond end of file", path);
        memcpy(ram + p->p_vaddr, f + p->p_offset, p->p_filesz);
        memset(ram + p->p_vaddr + p->p_filesz, 0, p->p_memsz - p->p_filesz);
        if (eh->e_entry >= p->p_vaddr && eh->e_entry < p->p_vaddr + p->p_memsz && (p->p_flags & PF_X))
            entry_ok = 1;
        loads++;
    }
    if (!loads) return vmm_fail(err, -ENOEXEC, "elf", "%s: no PT_LOAD segment", path);
    if (!entry_ok)
        return vmm_fail(err, -ENOEXEC, "elf", "%s: entry %#llx not in an executable segment", path,
                        (unsigned long long)eh->e_entry);
    *entry = eh->e_entry;
    return 0;
}

int elf_load(const char *path, uint8_t *ram, uint64_t ram_size, uint64_t *entry, struct vmm_err *err)
{
    int rc;
    if (!path) return vmm_fail(err, -EINVAL, "elf", "no guest ELF given");
    if (ram_size < FB_RUNTIME_LIMIT) return vmm_fail(err, -EINVAL, "elf", "RAM too small");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return vmm_fail(err, -errno, "open", "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) < 0) { rc = vmm_fail(err, -errno, "fstat", "%s", path); goto close_fd; }
    if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > ELF_MAX) {
        rc = vmm_fail(err, -ENOEXEC, "elf", "%s: not a regular file of 1..%llu bytes", path,
                      (unsigned long long)ELF_MAX);
        goto close_fd;
    }
    uint8_t *buf = malloc((size_t)st.st_size);
    if (!buf) { rc = vmm_fail(err, -ENOMEM, "malloc", "elf buffer"); goto close_fd; }
    rc = read_all(fd, buf, (size_t)st.st_size);
    if (rc) { rc = vmm_fail(err, rc, "read", "%s", path); goto free_buf; }
    rc = check_and_copy(buf, (size_t)st.st_size, ram, entry, path, err);
free_buf:
    free(buf);
close_fd:
    close(fd);
    return rc;
}
