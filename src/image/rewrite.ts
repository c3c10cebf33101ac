// rewrite.ts — turns every `syscall` instruction (0f 05) of the ELF files in
// a tree into `call *%rax` (ff d0, same length): rax holds the syscall number,
// so the call lands in page 0's NOP sled and slides into the guest runtime.
// Sites are found by disassembling executable sections (objdump), never by
// byte search. A site is refused when its function touches memory below %rsp
// (the red zone), since the call pushes a return address at -8(%rsp).
// After patching, each file is disassembled again to prove no site is left.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { open, readFile, writeFile, readdir, lstat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { addrToOffset, execSections, isElf, mayHoldSyscall, parseElf, type ElfInfo } from './elf.js';

/** Bump when the rewriting rules change: it is part of the image cache key. */
export const REWRITER_VERSION = 1;

export interface RefusedSite { address: string; function?: [string, string]; syscall?: number; reason: string }
export interface FileRewrite {
  path: string; sites: number; rewritten: string[]; refused: RefusedSite[];
  /** 0f 05 that objdump decoded inside data embedded in .text (no function covers it, undecodable bytes around it). */
  data: Array<{ address: string; reason: string }>;
}
export interface RewriteReport { rewriterVersion: number; filesScanned: number; elfFiles: number; filesWithSites: number; files: FileRewrite[]; totalSites: number; totalRewritten: number; totalRefused: number; totalData: number }

/** An instruction with a memory operand (or lea) at a negative displacement from %rsp. */
interface RspRef { addr: number; disp: number; width: number; indexed: boolean; lea: boolean }
interface Disasm { syscalls: number[]; numbers: Map<number, number>; bad: number[]; rspRefs: RspRef[]; rspWrites: number[]; callRax: Set<number> }

const hex = (n: number): string => '0x' + n.toString(16);
// A memory operand at a negative displacement from %rsp: -0x8(%rsp), -0x10(%rsp,%rax,1) ...
const RED_ZONE_RE = /-0x([0-9a-f]+)\(%rsp([,)])/;
// Instructions that move %rsp (then offsets seen at different points are not comparable).
const RSP_WRITE_RE = /^(push|pop|leave|enter)|,%rsp$/;
/** The call's return address occupies [rsp-8, rsp). */
const SLOT = 8;
/** A `lea` of a stack buffer starting closer than this below %rsp may let a syscall write into the slot
 *  (0x30 is where gcc's va_start puts the register save area: read before the syscall, accepted). */
const LEA_MARGIN = 0x30;
/** How close an undecodable byte must be for a function-less site to count as data. */
const DATA_WINDOW = 64;

/** Bytes a memory operand may cover, from its registers or mnemonic; generous where unsure. */
function accessWidth(mnemonic: string, text: string): number {
  if (/^(fn?stenv|fldenv|fn?save|frstor|fxsave|fxrstor|xsave|xrstor)/.test(mnemonic)) return 4096;
  if (text.includes('%zmm')) return 64;
  if (text.includes('%ymm')) return 32;
  if (text.includes('%xmm') || /^(fldt|fstpt|fbld|fbstp|cmpxchg16b)/.test(mnemonic)) return 16;
  return 8;
}

/** Runs a tool and streams its stdout lines to `onLine`; rejects on a non-zero exit. */
function streamLines(cmd: string, args: string[], onLine: (line: string) => void, okCodes: number[] = [0]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { if (stderr.length < 4096) stderr += d.toString(); });
    const rl = createInterface({ input: child.stdout, crlfDelay: Infinity });
    rl.on('line', onLine);
    child.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code) => {
      if (code !== null && okCodes.includes(code)) resolve();
      else reject(new Error(`${cmd} ${args.join(' ')} failed (${code}): ${stderr.trim()}`));
    });
  });
}

/** Disassembles all executable sections; collects syscall sites, red-zone references and `call *%rax` sites. */
async function disassemble(file: string): Promise<Disasm> {
  const out: Disasm = { syscalls: [], numbers: new Map(), bad: [], rspRefs: [], rspWrites: [], callRax: new Set() };
  // The syscall number: the last `mov $N,%eax` a few instructions before the site (informational).
  let lastNr: { nr: number; seen: number } | undefined;
  let count = 0;
  await streamLines('objdump', ['-d', '-w', '--no-show-raw-insn', file], (line) => {
    const m = /^\s*([0-9a-f]+):\t(.*)$/.exec(line);
    if (!m) return;
    const addr = parseInt(m[1]!, 16);
    const text = m[2]!.trim();
    const words = text.split(/\s+/);
    // Skip instruction prefixes to find the mnemonic.
    let i = 0;
    while (i < words.length - 1 && /^(rex(\.\w+)?|data16|addr32|cs|ds|es|ss|fs|gs|notrack|bnd|lock|rep\w*)$/.test(words[i]!)) i++;
    const mnemonic = words[i];
    count++;
    if (mnemonic === '(bad)' || mnemonic === '.byte') out.bad.push(addr);
    if (mnemonic === 'syscall') {
      out.syscalls.push(addr);
      if (lastNr && count - lastNr.seen <= 8) out.numbers.set(addr, lastNr.nr);
    } else if (mnemonic === 'mov' && /^\$0x[0-9a-f]+,%(eax|rax)$/.test(words[i + 1] ?? '')) {
      lastNr = { nr: parseInt(words[i + 1]!.slice(3), 16), seen: count };
    } else if (/^(j|ret|call)/.test(mnemonic ?? '')) lastNr = undefined;
    if (mnemonic === 'call' && words[i + 1] === '*%rax') out.callRax.add(addr);
    if (mnemonic === undefined) return;
    const rz = RED_ZONE_RE.exec(text);
    if (rz) {
      out.rspRefs.push({ addr, disp: -parseInt(rz[1]!, 16), width: accessWidth(mnemonic, text), indexed: rz[2] === ',', lea: mnemonic === 'lea' });
    }
    if (RSP_WRITE_RE.test(words.slice(i).join(' '))) out.rspWrites.push(addr);
  });
  return out;
}

/** Function ranges [lo, hi) from .eh_frame FDEs, then FUNC symbols (symtab/dynsym) with a size. */
async function functionRanges(file: string): Promise<{ fde: Array<[number, number]>; sym: Array<[number, number]> }> {
  const fde: Array<[number, number]> = [];
  await streamLines('readelf', ['--debug-dump=frames', '-W', file], (line) => {
    const m = /\bFDE cie=\S+ pc=([0-9a-f]+)\.\.([0-9a-f]+)/.exec(line);
    if (m) fde.push([parseInt(m[1]!, 16), parseInt(m[2]!, 16)]);
  }, [0, 1]); // readelf exits 1 on warnings such as a NOBITS .eh_frame in a split-debug stub
  const sym: Array<[number, number]> = [];
  await streamLines('readelf', ['-sW', file], (line) => {
    const w = line.trim().split(/\s+/);
    // Num: Value Size Type Bind Vis Ndx Name
    if (w.length >= 7 && w[3] === 'FUNC' && w[6] !== 'UND') {
      const lo = parseInt(w[1]!, 16);
      const size = w[2]!.startsWith('0x') ? parseInt(w[2]!, 16) : parseInt(w[2]!, 10);
      if (size > 0) sym.push([lo, lo + size]);
    }
  });
  return { fde, sym };
}

/**
 * Why the function in `range` may keep live data where the call's return
 * address goes, or undefined when it cannot. Rules (see docs/syscall-rewrite.md):
 * an access overlapping [rsp-8, rsp); an indexed access below rsp; a `lea` of
 * a buffer starting within LEA_MARGIN below rsp (a syscall may write it); and
 * any access below rsp at all when the function also moves %rsp.
 */
function redZoneConflict(dis: Disasm, range: [number, number]): string | undefined {
  const refs = dis.rspRefs.filter((r) => r.addr >= range[0] && r.addr < range[1]);
  if (refs.length === 0) return undefined;
  const at = (r: RspRef): string => `instruction at ${hex(r.addr)} (${r.lea ? 'lea' : 'access'} at ${r.disp}(%rsp))`;
  if (dis.rspWrites.some((a) => a >= range[0] && a < range[1])) return `${at(refs[0]!)} in a function that moves %rsp`;
  for (const r of refs) {
    if (r.indexed) return `${at(r)} is indexed`;
    if (r.lea && r.disp > -LEA_MARGIN) return `${at(r)} may point a syscall buffer at the return-address slot`;
    if (!r.lea && r.disp + r.width > -SLOT) return `${at(r)} overlaps the return-address slot`;
  }
  return undefined;
}

/** Fallback bounds for code no FDE covers: the gap between the FDE ranges around it, inside its section. */
function gapBetween(fde: Array<[number, number]>, elf: ElfInfo, addr: number): [number, number] | undefined {
  const sec = execSections(elf).find((s) => addr >= s.addr && addr < s.addr + s.size);
  if (!sec || fde.length === 0) return undefined;
  let lo = sec.addr;
  let hi = sec.addr + sec.size;
  for (const [a, b] of fde) {
    if (b <= addr && b > lo) lo = b;
    if (a > addr && a < hi) hi = a;
  }
  return [lo, hi];
}

function containing(ranges: Array<[number, number]>, addr: number): [number, number] | undefined {
  let best: [number, number] | undefined;
  for (const r of ranges) if (addr >= r[0] && addr < r[1] && (!best || r[1] - r[0] < best[1] - best[0])) best = r;
  return best;
}

/** Rewrites one ELF file in place; returns undefined when it holds no syscall instruction. */
export async function rewriteFile(file: string, displayPath = file): Promise<FileRewrite | undefined> {
  const buf = await readFile(file);
  const elf = parseElf(buf);
  if (!elf || !mayHoldSyscall(buf, elf)) return undefined;
  const dis = await disassemble(file);
  if (dis.syscalls.length === 0) return undefined;
  const { fde, sym } = await functionRanges(file);
  const result: FileRewrite = { path: displayPath, sites: dis.syscalls.length, rewritten: [], refused: [], data: [] };
  const patched: number[] = [];
  const nr = (addr: number): { syscall?: number } => {
    const n = dis.numbers.get(addr);
    return n === undefined ? {} : { syscall: n };
  };
  for (const addr of dis.syscalls) {
    const fn = containing(fde, addr) ?? containing(sym, addr);
    if (!fn && dis.bad.some((b) => Math.abs(b - addr) <= DATA_WINDOW)) {
      result.data.push({ address: hex(addr), reason: `outside every function, undecodable bytes within ${DATA_WINDOW} bytes` });
      continue;
    }
    const range = fn ?? gapBetween(fde, elf, addr);
    const off = addrToOffset(elf, addr, 2);
    if (off === undefined || buf[off] !== 0x0f || buf[off + 1] !== 0x05) {
      result.refused.push({ address: hex(addr), reason: 'bytes at the mapped file offset are not 0f 05' });
      continue;
    }
    if (!range) {
      result.refused.push({ address: hex(addr), ...nr(addr), reason: 'no function bounds (no FDE, sized symbol or FDE gap covers it)' });
      continue;
    }
    const why = redZoneConflict(dis, range);
    if (why) {
      result.refused.push({ address: hex(addr), function: [hex(range[0]), hex(range[1])], ...nr(addr), reason: `red zone: ${why}` });
      continue;
    }
    buf[off] = 0xff;
    buf[off + 1] = 0xd0;
    patched.push(addr);
    result.rewritten.push(hex(addr));
  }
  if (patched.length > 0) {
    await writeFile(file, buf);
    await verifyFile(file, elf, patched, [...result.refused, ...result.data].map((r) => parseInt(r.address, 16)));
  }
  return result;
}

/** Re-disassembles a rewritten file: only refused sites may still be `syscall`, every patch is `call *%rax`. */
async function verifyFile(file: string, _elf: ElfInfo, patched: number[], refused: number[]): Promise<void> {
  const dis = await disassemble(file);
  const allowed = new Set(refused);
  const left = dis.syscalls.filter((a) => !allowed.has(a));
  if (left.length > 0) throw new Error(`${file}: ${left.length} syscall instruction(s) left after rewriting, first at ${hex(left[0]!)}`);
  const missing = patched.filter((a) => !dis.callRax.has(a));
  if (missing.length > 0) throw new Error(`${file}: patched site ${hex(missing[0]!)} does not disassemble as call *%rax`);
}

async function readHead(file: string): Promise<Buffer> {
  const fh = await open(file, 'r');
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return b.subarray(0, bytesRead);
  } finally {
    await fh.close();
  }
}

async function* walkFiles(dir: string): AsyncGenerator<string> {
  for (const name of (await readdir(dir)).sort()) {
    const p = join(dir, name);
    const st = await lstat(p);
    if (st.isDirectory()) yield* walkFiles(p);
    else if (st.isFile() && st.size >= 64) yield p;
  }
}

/** Rewrites every ELF file under `root`; paths in the report are image paths ("/usr/lib/..."). */
export async function rewriteTree(root: string, onFile?: (f: FileRewrite) => void): Promise<RewriteReport> {
  const report: RewriteReport = { rewriterVersion: REWRITER_VERSION, filesScanned: 0, elfFiles: 0, filesWithSites: 0, files: [], totalSites: 0, totalRewritten: 0, totalRefused: 0, totalData: 0 };
  for await (const file of walkFiles(root)) {
    report.filesScanned++;
    if (!isElf(await readHead(file))) continue;
    report.elfFiles++;
    const r = await rewriteFile(file, '/' + relative(root, file));
    if (!r) continue;
    report.filesWithSites++;
    report.files.push(r);
    report.totalSites += r.sites;
    report.totalRewritten += r.rewritten.length;
    report.totalRefused += r.refused.length;
    report.totalData += r.data.length;
    onFile?.(r);
  }
  return report;
}
