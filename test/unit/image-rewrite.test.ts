// image-rewrite.test.ts — the syscall rewriter on a small shared object built
// here with gcc: plain syscall sites are rewritten to `call *%rax`; sites whose
// function keeps data at the return-address slot, hands the syscall a buffer
// just below %rsp, or moves %rsp are refused; 0f 05 bytes that are data (or
// the middle of another instruction) are left alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rewriteFile, rewriteTree } from '../../src/image/rewrite.js';
import { parseElf, addrToOffset } from '../../src/image/elf.js';

const SOURCE = String.raw`
/* Data that happens to hold the syscall byte pair: must not be touched. */
const unsigned char fake_syscall_bytes[] = { 0x90, 0x0f, 0x05, 0x0f, 0x05, 0xc3 };
const unsigned char *keep(void) { return fake_syscall_bytes; }

__asm__(
  ".text\n"
  ".globl plain_getpid\n.type plain_getpid,@function\n"
  "plain_getpid:\n.cfi_startproc\n"
  "  mov $39, %eax\n"
  "  syscall\n"
  "  ret\n"
  ".cfi_endproc\n.size plain_getpid,.-plain_getpid\n"

  /* Keeps a value at -8(%rsp) across the syscall: the call would clobber it. */
  ".globl redzone_getpid\n.type redzone_getpid,@function\n"
  "redzone_getpid:\n.cfi_startproc\n"
  "  mov %rdi, -8(%rsp)\n"
  "  mov $39, %eax\n"
  "  syscall\n"
  "  add -8(%rsp), %rax\n"
  "  ret\n"
  ".cfi_endproc\n.size redzone_getpid,.-redzone_getpid\n"

  /* Uses the red zone far below the return-address slot: safe, rewritten. */
  ".globl deep_redzone\n.type deep_redzone,@function\n"
  "deep_redzone:\n.cfi_startproc\n"
  "  mov %rdi, -0x40(%rsp)\n"
  "  mov $39, %eax\n"
  "  syscall\n"
  "  add -0x40(%rsp), %rax\n"
  "  ret\n"
  ".cfi_endproc\n.size deep_redzone,.-deep_redzone\n"

  /* A buffer 16 bytes below rsp handed to the syscall: it could overlap the return address. */
  ".globl lea_buffer\n.type lea_buffer,@function\n"
  "lea_buffer:\n.cfi_startproc\n"
  "  lea -0x10(%rsp), %rsi\n"
  "  mov $13, %eax\n"
  "  syscall\n"
  "  ret\n"
  ".cfi_endproc\n.size lea_buffer,.-lea_buffer\n"

  /* Red-zone use far below the slot, but the function moves rsp: offsets not comparable, refused. */
  ".globl moves_rsp\n.type moves_rsp,@function\n"
  "moves_rsp:\n.cfi_startproc\n"
  "  push %rbx\n"
  "  mov %rdi, -0x40(%rsp)\n"
  "  mov $39, %eax\n"
  "  syscall\n"
  "  pop %rbx\n"
  "  ret\n"
  ".cfi_endproc\n.size moves_rsp,.-moves_rsp\n"

  /* gcc's va_start register save area at -0x30(%rsp): accepted. */
  ".globl va_area\n.type va_area,@function\n"
  "va_area:\n.cfi_startproc\n"
  "  lea -0x30(%rsp), %rax\n"
  "  mov %rax, -0x38(%rsp)\n"
  "  mov $39, %eax\n"
  "  syscall\n"
  "  ret\n"
  ".cfi_endproc\n.size va_area,.-va_area\n"

  /* 0f 05 inside an immediate: b8 0f 05 00 00 is mov $0x50f,%eax, not a syscall. */
  ".globl imm_bytes\n.type imm_bytes,@function\n"
  "imm_bytes:\n.cfi_startproc\n"
  "  mov $0x50f, %eax\n"
  "  ret\n"
  ".cfi_endproc\n.size imm_bytes,.-imm_bytes\n"
);
`;

function symbols(file: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of execFileSync('nm', ['--defined-only', file], { encoding: 'utf8' }).split('\n')) {
    const [addr, , name] = line.trim().split(/\s+/);
    if (addr && name) out.set(name, parseInt(addr, 16));
  }
  return out;
}

function hasTools(): string | undefined {
  for (const tool of ['gcc', 'objdump', 'readelf', 'nm']) {
    try { execFileSync(tool, ['--version'], { stdio: 'ignore' }); } catch { return tool; }
  }
  return undefined;
}

test('rewrites syscall sites found by disassembly, refuses red-zone sites, leaves data alone', async (t) => {
  const missing = hasTools();
  if (missing) { t.skip(`skipped: ${missing} is not installed`); return; }
  const work = mkdtempSync(join(tmpdir(), 'fb-rewrite-'));
  try {
    writeFileSync(join(work, 't.c'), SOURCE);
    const so = join(work, 't.so');
    execFileSync('gcc', ['-O1', '-shared', '-fPIC', '-o', so, join(work, 't.c')]);
    const before = readFileSync(so);
    const elf = parseElf(before)!;
    const sym = symbols(so);
    const plainSite = sym.get('plain_getpid')! + 5; // after `mov $39,%eax` (5 bytes)
    const redSite = sym.get('redzone_getpid')! + 10;
    const deepSite = sym.get('deep_redzone')! + 10;
    const leaSite = sym.get('lea_buffer')! + 10;
    const movesSite = sym.get('moves_rsp')! + 11;
    const vaSite = sym.get('va_area')! + 15;
    const hex = (n: number): string => '0x' + n.toString(16);

    const r = await rewriteFile(so, '/t.so');
    assert.ok(r);
    assert.equal(r.sites, 6);
    assert.deepEqual(r.rewritten.sort(), [hex(plainSite), hex(deepSite), hex(vaSite)].sort());
    const refused = new Map(r.refused.map((x) => [x.address, x]));
    assert.deepEqual([...refused.keys()].sort(), [hex(redSite), hex(leaSite), hex(movesSite)].sort());
    assert.match(refused.get(hex(redSite))!.reason, /red zone: .* overlaps the return-address slot/);
    assert.match(refused.get(hex(leaSite))!.reason, /syscall buffer/);
    assert.match(refused.get(hex(movesSite))!.reason, /moves %rsp/);
    assert.equal(refused.get(hex(redSite))!.syscall, 39);
    assert.equal(refused.get(hex(leaSite))!.syscall, 13);

    const after = readFileSync(so);
    const changed: number[] = [];
    for (let i = 0; i < before.length; i++) if (before[i] !== after[i]) changed.push(i);
    const pOff = addrToOffset(elf, plainSite)!;
    const dOff = addrToOffset(elf, deepSite)!;
    const vOff = addrToOffset(elf, vaSite)!;
    assert.deepEqual(changed, [pOff, pOff + 1, dOff, dOff + 1, vOff, vOff + 1].sort((a, b) => a - b), 'only the rewritten sites changed');
    assert.deepEqual([...after.subarray(pOff, pOff + 2)], [0xff, 0xd0]);
    const rOff = addrToOffset(elf, redSite)!;
    assert.deepEqual([...after.subarray(rOff, rOff + 2)], [0x0f, 0x05], 'refused site left as is');
    const dis = execFileSync('objdump', ['-d', '--no-show-raw-insn', so], { encoding: 'utf8' });
    assert.match(dis, new RegExp(`${plainSite.toString(16)}:\\s+call\\s+\\*%rax`));

    // A second pass over the tree finds only the refused site and changes nothing.
    const tree = join(work, 'tree');
    mkdirSync(join(tree, 'lib'), { recursive: true });
    copyFileSync(so, join(tree, 'lib', 't.so'));
    writeFileSync(join(tree, 'lib', 'data.bin'), Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x0f, 0x05, ...Buffer.alloc(100)]));
    const rep = await rewriteTree(tree);
    assert.equal(rep.filesWithSites, 1);
    assert.equal(rep.totalSites, 3);
    assert.equal(rep.totalRewritten, 0);
    assert.equal(rep.totalRefused, 3);
    assert.ok(readFileSync(join(tree, 'lib', 't.so')).equals(after));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
