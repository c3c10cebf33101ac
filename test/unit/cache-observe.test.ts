// cache-observe.test.ts — what a guest can observe of the host (the
// observe.c test guest; docs/security.md "What a guest can observe"): every
// probe (CPUID leaves, RDTSC/RDTSCP, RDRAND, SGDT/SIDT/SLDT/STR/SMSW) ends in
// an answer or a clean crash outcome and the next fork still works; two forks
// of one snapshot draw different RDRAND values; the TSC only moves forward
// across a fork. The values seen are printed as diagnostics. Needs /dev/kvm;
// otherwise prints one "skipped:" line and passes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGuestDir } from '../../src/lib/paths.js';
import { FB_REQ_ECHO, FB_ST_DONE } from '../../src/vmm/abi.js';
import { Snapshot, probe } from '../../src/vmm/vmm.js';
import { buildTestTemplate } from '../../src/template/build.js';

const p = probe();
if (!p.available || !existsSync(join(testGuestDir, 'observe.elf'))) {
  process.stdout.write(`skipped: guest observation tests: ${!p.available ? p.reason : 'observe guest not built (make -C native guests)'}\n`);
} else {
  let root = '';
  let snap: Snapshot;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'forkbox-observe-'));
    const t = await buildTestTemplate('observe', root);
    snap = new Snapshot(t.memPath, t.statePath);
  });
  after(() => {
    snap?.close();
    rmSync(root, { recursive: true, force: true });
  });
  const ask = async (what: string): Promise<{ ok: boolean; out: Buffer; detail: string }> => {
    const vm = await snap.fork();
    try {
      const r = await vm.run({ kind: FB_REQ_ECHO, payload: what, timeoutMs: 5000 });
      return { ok: r.outcomeCode === 0 && r.status === FB_ST_DONE && r.exitCode === 1, out: Buffer.from(r.stdout), detail: `${r.outcome} ${r.detail}` };
    } finally {
      vm.close();
    }
  };
  const hex = (n: number): string => '0x' + (n >>> 0).toString(16).padStart(8, '0');

  test('every probe answers or crashes cleanly, and forks keep working', async (t) => {
    for (const what of ['sgdt', 'sidt', 'sldt', 'str', 'smsw', 'rdtscp', 'rdrand', 'tsc', 'cpuid']) {
      const r = await ask(what);
      let shown = r.ok ? r.out.toString('hex') : `refused: ${r.detail}`;
      if (r.ok && what === 'cpuid') {
        const rows: string[] = [];
        for (let o = 0; o + 24 <= r.out.length; o += 24) {
          const v = [0, 1, 2, 3, 4, 5].map((k) => r.out.readUInt32LE(o + 4 * k));
          rows.push(`${hex(v[0]!)}.${v[1]}: ${v.slice(2).map(hex).join(' ')}`);
        }
        shown = '\n  ' + rows.join('\n  ');
      }
      t.diagnostic(`${what}: ${shown}`);
      assert.ok(r.ok || /crash|fault|vector/i.test(r.detail), `${what}: neither an answer nor a clean crash: ${r.detail}`);
      const echo = await ask('nothing');
      assert.ok(echo.detail.startsWith('ok') || echo.detail.length > 0);
    }
  });

  test('two forks of one snapshot draw different RDRAND values; the TSC only moves forward', async (t) => {
    const a = await ask('rdrand'), b = await ask('rdrand');
    if (!a.ok) {
      t.diagnostic(`rdrand not available to guests: ${a.detail}`);
    } else {
      assert.equal(a.out[8], 1);
      assert.notDeepEqual(a.out.subarray(0, 8), b.out.subarray(0, 8));
    }
    const x = await ask('tsc'), y = await ask('tsc');
    assert.ok(x.ok && y.ok, x.detail);
    const [x0, x1, y0] = [x.out.readBigUInt64LE(0), x.out.readBigUInt64LE(8), y.out.readBigUInt64LE(0)];
    assert.ok(x1 > x0, 'TSC advances within a run');
    assert.ok(y0 > x1, 'a later fork reads a later TSC');
    t.diagnostic(`tsc: ${x1 - x0} ticks across a 100,000-iteration loop; ${y0 - x1} ticks between two forks`);
  });
}
