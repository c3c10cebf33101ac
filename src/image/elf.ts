// elf.ts — just enough ELF64 parsing for the syscall rewriter: identify
// x86-64 executables and shared objects, list their sections, and map a
// virtual address inside an executable section to its file offset. Every
// header field is checked against the file size (the input is a Debian
// package, but a malformed file must fail cleanly, not corrupt the tree).

export interface ElfSection { name: string; type: number; flags: number; addr: number; offset: number; size: number }
export interface ElfInfo { type: 'exec' | 'dyn'; sections: ElfSection[] }

export const SHT_NOBITS = 8;
export const SHF_EXECINSTR = 0x4;
const EM_X86_64 = 62;

/** True when `head` (the first bytes of a file) starts with the ELF magic. */
export function isElf(head: Buffer): boolean {
  return head.length >= 4 && head[0] === 0x7f && head[1] === 0x45 && head[2] === 0x4c && head[3] === 0x46;
}

/** Parses an x86-64 ELF64 executable or shared object; undefined for any other ELF (relocatable, 32-bit, other arch). */
export function parseElf(buf: Buffer): ElfInfo | undefined {
  if (!isElf(buf) || buf.length < 64) return undefined;
  if (buf[4] !== 2 || buf[5] !== 1) return undefined; // ELFCLASS64, little-endian
  const eType = buf.readUInt16LE(16);
  if (buf.readUInt16LE(18) !== EM_X86_64 || (eType !== 2 && eType !== 3)) return undefined;
  const shoff = Number(buf.readBigUInt64LE(40));
  const shentsize = buf.readUInt16LE(58);
  const shnum = buf.readUInt16LE(60);
  const shstrndx = buf.readUInt16LE(62);
  if (shnum === 0) return { type: eType === 2 ? 'exec' : 'dyn', sections: [] };
  if (shentsize < 64 || shoff + shnum * shentsize > buf.length) throw new Error('section headers outside the file');
  const raw: ElfSection[] = [];
  const nameOffs: number[] = [];
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize;
    nameOffs.push(buf.readUInt32LE(o));
    const s: ElfSection = {
      name: '', type: buf.readUInt32LE(o + 4), flags: Number(buf.readBigUInt64LE(o + 8)),
      addr: Number(buf.readBigUInt64LE(o + 16)), offset: Number(buf.readBigUInt64LE(o + 24)), size: Number(buf.readBigUInt64LE(o + 32)),
    };
    if (s.type !== SHT_NOBITS && s.offset + s.size > buf.length) throw new Error(`section ${i} outside the file`);
    raw.push(s);
  }
  const strtab = raw[shstrndx];
  if (strtab) {
    raw.forEach((s, i) => {
      const start = strtab.offset + nameOffs[i]!;
      if (start >= strtab.offset + strtab.size) return;
      const end = buf.indexOf(0, start);
      s.name = buf.toString('latin1', start, end < 0 ? strtab.offset + strtab.size : Math.min(end, strtab.offset + strtab.size));
    });
  }
  return { type: eType === 2 ? 'exec' : 'dyn', sections: raw };
}

export function execSections(elf: ElfInfo): ElfSection[] {
  return elf.sections.filter((s) => (s.flags & SHF_EXECINSTR) !== 0 && s.type !== SHT_NOBITS && s.size > 0);
}

/** File offset of virtual address `addr` inside an executable section, or undefined. */
export function addrToOffset(elf: ElfInfo, addr: number, len = 1): number | undefined {
  for (const s of execSections(elf)) {
    if (addr >= s.addr && addr + len <= s.addr + s.size) return addr - s.addr + s.offset;
  }
  return undefined;
}

/** True if any executable section holds the byte pair 0f 05 (a cheap pre-filter: no pair, no syscall). */
export function mayHoldSyscall(buf: Buffer, elf: ElfInfo): boolean {
  const pair = Buffer.from([0x0f, 0x05]);
  return execSections(elf).some((s) => {
    const i = buf.indexOf(pair, s.offset);
    return i >= 0 && i + 2 <= s.offset + s.size;
  });
}
