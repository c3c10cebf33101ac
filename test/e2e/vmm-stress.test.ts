// vmm-stress.test.ts — the binding under a random mix for a few seconds:
// forkRun with and without destroy, pooled and cold forks, kicks at random
// moments (before the fork exists, mid-run, after), closes while a run is in
// flight, handles dropped for the finalizer, crashing and timing-out guests.
// Afterwards every VM is gone and no job is pending. Needs /dev/kvm.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { testGuestDir } from '../../src/lib/paths.js';
import { FB_REQ_ECHO } from '../../src/vmm/abi.js';
import { Pool, Snapshot, probe, stats } from '../../src/vmm/vmm.js';
import { buildTestTemplate } from '../../src/template/build.js';

const p = probe();
if (!p.available || !existsSync(join(testGuestDir, 'echo.elf'))) {
  process.stdout.write(`skipped: vmm stress test: ${p.available ? 'test guests not built' : p.reason}\n`);
} else {
  test('random mix of forks, runs, kicks and closes leaves nothing behind', { timeout: 120_000 }, async () => {
    const root = mkdtempSync(join(tmpdir(), 'forkbox-stress-'));
    const guests = ['echo', 'spin', 'crash', 'counter'] as const;
    const snaps = {} as Record<(typeof guests)[number], Snapshot>;
    for (const g of guests) {
      const t = await buildTestTemplate(g, root);
      snaps[g] = new Snapshot(t.memPath, t.statePath);
    }
    const pool = new Pool(4, snaps.echo.ramSize);
    pool.bind(snaps.echo);
    // the template boots' VMs are torn down asynchronously: settle first
    for (let i = 0; i < 300 && stats().pendingJobs > 0; i++) await new Promise((r) => setTimeout(r, 10));
    const live0 = stats().vmsLive;
    const rnd = (n: number): number => Math.floor(Math.random() * n);
    let ops = 0;
    const one = async (): Promise<void> => {
      const g = guests[rnd(guests.length)]!;
      const payload = g === 'crash' ? ['ud2', 'pf', 'x'][rnd(3)]! : 'hi';
      switch (rnd(3)) {
        case 0: {
          const fr = snaps[g].forkRun({ kind: FB_REQ_ECHO, payload, timeoutMs: 50 }, { pool: rnd(2) ? pool : null, destroy: !!rnd(2) });
          if (rnd(3) === 0) fr.kick();
          else if (rnd(2)) setTimeout(fr.kick, rnd(5));
          const r = await fr.done;
          if (r.vm && rnd(2)) r.vm.close(); // else: left to the finalizer
          break;
        }
        case 1: {
          const vm = await snaps[g].fork(rnd(2) ? pool : null);
          const run = vm.run({ kind: FB_REQ_ECHO, payload, timeoutMs: 30 });
          if (rnd(2)) vm.kick();
          if (rnd(3) === 0) vm.close(); // the destroy queues behind the run
          await run.catch(() => {});
          vm.close();
          break;
        }
        default: {
          const vm = await snaps[g].fork();
          for (let i = 0; i < 3; i++) {
            const r = await vm.run({ kind: FB_REQ_ECHO, payload, timeoutMs: 20 }).catch(() => null);
            if (!r || r.outcomeCode !== 0) break;
          }
          vm.close();
        }
      }
      ops++;
    };
    const t0 = Date.now();
    while (Date.now() - t0 < 5000) await Promise.all(Array.from({ length: 12 }, one));
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void; // to run the finalizers of dropped handles
    for (let i = 0; i < 300 && (stats().pendingJobs > 0 || stats().vmsLive > live0); i++) {
      gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    pool.close();
    for (const s of Object.values(snaps)) s.close();
    rmSync(root, { recursive: true, force: true });
    assert.ok(ops > 100, `only ${ops} operations`);
    assert.equal(stats().pendingJobs, 0);
    // handles dropped without close() were destroyed by their finalizers
    assert.equal(stats().vmsLive, live0);
  });
}
