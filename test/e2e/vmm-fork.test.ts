// vmm-fork.test.ts — the native binding and the typed wrapper against the tiny
// test guests (native/out/guests): echo round trip, counter isolation between
// forks, timeout, kick, crash detail, rogue guests, the MMIO test hole (test
// vms only), required finite deadlines, a 1 MiB response, and no fd or VM
// growth over many forks. Needs /dev/kvm; otherwise prints one
// "skipped:" line and passes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGuestDir } from '../../src/lib/paths.js';
import { FB_REQ_ECHO, FB_ST_DONE } from '../../src/vmm/abi.js';
import { Pool, Snapshot, Vm, probe, stats } from '../../src/vmm/vmm.js';
import { buildTestTemplate, type TemplateInfo } from '../../src/template/build.js';

const OK = 0, CRASH_FAULT = 1, CRASH_IO = 2, CRASH_MMIO = 3, CRASH_PROTOCOL = 7, TIMEOUT = 8, KILLED = 9;

const p = probe();
const guestsBuilt = existsSync(join(testGuestDir, 'echo.elf'));
if (!p.available || !guestsBuilt) {
  process.stdout.write(`skipped: vmm e2e tests: ${!p.available ? p.reason : 'test guests not built (make -C native guests)'}\n`);
} else {
  describe('vmm with test guests', () => {
    let root: string;
    const t: Record<string, TemplateInfo> = {};
    const snaps: Record<string, Snapshot> = {};
    before(async () => {
      root = mkdtempSync(join(tmpdir(), 'forkbox-vmm-test-'));
      for (const g of ['echo', 'counter', 'spin', 'crash', 'rogue', 'big'] as const) {
        t[g] = await buildTestTemplate(g, root);
        snaps[g] = new Snapshot(t[g]!.memPath, t[g]!.statePath);
      }
    });
    after(() => {
      for (const s of Object.values(snaps)) s.close();
      rmSync(root, { recursive: true, force: true });
    });
    const echo = (s: string) => ({ kind: FB_REQ_ECHO, payload: s, timeoutMs: 5000 });

    test('template build is cached by key', async () => {
      const again = await buildTestTemplate('echo', root);
      assert.equal(again.built, false);
      assert.equal(again.key, t.echo!.key);
      assert.ok(again.manifest.sizes.memory > 0);
    });

    test('echo round trip, twice on one fork', async () => {
      const vm = await snaps.echo!.fork();
      try {
        const r1 = await vm.run(echo('hello'));
        assert.equal(r1.outcomeCode, OK, r1.detail);
        assert.equal(r1.status, FB_ST_DONE);
        assert.equal(r1.stdout.toString(), 'hello');
        const r2 = await vm.run(echo('second request'));
        assert.equal(r2.stdout.toString(), 'second request');
        assert.ok(r2.exits >= 1 && r2.exits <= 3, `exits per run: ${r2.exits}`);
      } finally {
        vm.close();
      }
    });

    test('output cap is honoured', async () => {
      const vm = await snaps.echo!.fork();
      const r = await vm.run({ ...echo('0123456789'), outCap: 4 });
      assert.equal(r.stdout.toString(), '0123');
      vm.close();
    });

    test('counter: forks are isolated copies of the template', async () => {
      const a = await snaps.counter!.fork();
      const b = await snaps.counter!.fork();
      try {
        const a1 = await a.run(echo('x'));
        const a2 = await a.run(echo('x'));
        const b1 = await b.run(echo('x'));
        assert.equal(a2.exitCode, a1.exitCode + 1);
        assert.equal(b1.exitCode, a1.exitCode, 'fork b must not see fork a\'s writes');
        const c = await snaps.counter!.forkRun(echo('x')).done;
        assert.equal(c.response.exitCode, a1.exitCode);
      } finally {
        a.close();
        b.close();
      }
    });

    test('spin: the deadline ends the run and the vm is dead', async () => {
      const vm = await snaps.spin!.fork();
      const t0 = performance.now();
      const r = await vm.run({ ...echo('go'), timeoutMs: 200 });
      const el = performance.now() - t0;
      assert.equal(r.outcomeCode, TIMEOUT, r.outcome);
      assert.ok(el >= 150 && el < 3000, `timeout took ${el} ms`);
      await assert.rejects(vm.run(echo('again')), (e: Error & { code?: string }) => typeof e.code === 'string');
      vm.close();
    });

    test('kick ends a run in flight', { timeout: 20_000 }, async () => {
      const vm = await snaps.spin!.fork();
      const pr = vm.run({ ...echo('go'), timeoutMs: 60_000 });
      setTimeout(() => vm.kick(), 100);
      const r = await pr;
      assert.equal(r.outcomeCode, KILLED, r.outcome);
      vm.close();
    });

    test('kick before the fork exists (forkRun) ends its run', { timeout: 20_000 }, async () => {
      const fr = snaps.spin!.forkRun({ ...echo('go'), timeoutMs: 60_000 });
      fr.kick();
      const r = await fr.done;
      assert.equal(r.response.outcomeCode, KILLED);
    });

    test('crash detail: #UD, #PF with CR2, #DE, write to the read-only image slot', async () => {
      const cases: [string, number][] = [['ud2', 6], ['pf', 14], ['div', 0], ['ro', 14]];
      for (const [what, vector] of cases) {
        const r = (await snaps.crash!.forkRun(echo(what)).done).response;
        assert.equal(r.outcomeCode, CRASH_FAULT, `${what}: ${r.outcome} ${r.detail}`);
        assert.equal(r.faultVector, vector, `${what}: vector`);
        assert.ok(r.faultRip >= 0x100000 && r.faultRip < 0x200000, `${what}: rip 0x${r.faultRip.toString(16)}`);
        if (what === 'pf') assert.equal(r.faultCr2, 0x700000000000);
        assert.ok(r.detail.length > 0);
      }
      const ok = (await snaps.crash!.forkRun(echo('fine')).done).response;
      assert.equal(ok.outcomeCode, OK);
    });

    test('rogue guests are contained', async () => {
      // A port other than the doorbell is refused by the TSS I/O bitmap (#GP) or seen as an I/O exit.
      const cases: [string, number][] = [['port', -1], ['fport', -1], ['outlen', CRASH_PROTOCOL],
        ['status', CRASH_PROTOCOL], ['ack', CRASH_PROTOCOL]];
      for (const [what, outcome] of cases) {
        const r = (await snaps.rogue!.forkRun(echo(what)).done).response;
        if (outcome === -1) {
          assert.ok(r.outcomeCode === CRASH_IO || (r.outcomeCode === CRASH_FAULT && r.faultVector === 13), `${what}: ${r.outcome} ${r.detail}`);
        }
        else assert.equal(r.outcomeCode, outcome, `${what}: ${r.outcome} ${r.detail}`);
        assert.ok(r.stdout.length <= 16 * 1024 * 1024);
      }
      const r = (await snaps.echo!.forkRun(echo('still fine')).done).response;
      assert.equal(r.stdout.toString(), 'still fine');
    });

    test('the MMIO test hole: absent from production-path forks (#PF), an MMIO exit only for a test vm that asks', async () => {
      const r = (await snaps.rogue!.forkRun(echo('mmio')).done).response;
      assert.equal(r.outcomeCode, CRASH_FAULT, `${r.outcome} ${r.detail}`);
      assert.equal(r.faultVector, 14);
      assert.equal(r.faultCr2, 0xC0000000 + 0x4000000);
      const vm = Vm.boot({ ramSize: 64 << 20, guestElf: join(testGuestDir, 'rogue.elf'), testMmioHole: true });
      try {
        const ready = await vm.start(5000);
        assert.equal(ready.outcomeCode, OK, ready.detail);
        const m = await vm.run(echo('mmio'));
        assert.equal(m.outcomeCode, CRASH_MMIO, `${m.outcome} ${m.detail}`);
        assert.equal(m.mmioAddr, 0xC0000000 + 0x4000000);
      } finally {
        vm.close();
      }
    });

    test('every run needs a finite deadline: timeoutMs 0 is refused before the guest runs', async () => {
      const vm = await snaps.echo!.fork();
      try {
        assert.throws(() => vm.run({ ...echo('x'), timeoutMs: 0 }), RangeError);
        assert.throws(() => vm.run({ kind: FB_REQ_ECHO } as unknown as Parameters<Vm['run']>[0]), RangeError);
        // Sub-nanosecond deadlines round up to a real (tiny) deadline, never to "none".
        const r = await snaps.spin!.forkRun({ ...echo('go'), timeoutMs: 1e-7 }).done;
        assert.equal(r.response.outcomeCode, TIMEOUT, r.response.outcome);
        assert.equal((await vm.run(echo('still'))).stdout.toString(), 'still');
      } finally {
        vm.close();
      }
    });

    test('big: a 1 MiB response arrives whole', async () => {
      const vm = await snaps.big!.fork();
      try {
        for (let k = 0; k < 2; k++) {
          const r = await vm.run({ kind: FB_REQ_ECHO, timeoutMs: 5000 });
          assert.equal(r.stdout.length, 1 << 20);
          const seq = r.stdout[0]!; // byte 0 = seq & 0xff
          for (let i = 0; i < r.stdout.length; i += 4093) assert.equal(r.stdout[i], (i * 7 + seq) & 0xff, `byte ${i}`);
        }
      } finally {
        vm.close();
      }
    });

    test('pooled forks work and the pool refills', async () => {
      const pool = new Pool(4, snaps.echo!.ramSize);
      try {
        for (let i = 0; i < 10; i++) {
          const r = await snaps.echo!.forkRun(echo(`p${i}`), { pool }).done;
          assert.equal(r.response.stdout.toString(), `p${i}`);
        }
        const s = pool.stats();
        assert.equal(s.target, 4);
        assert.ok(s.taken + s.misses >= 10, JSON.stringify(s));
      } finally {
        pool.close();
      }
    });

    test('many forks: no fd or vm growth', async () => {
      const fds = (): number => readdirSync('/proc/self/fd').length;
      // warm up (workers, lazily opened files)
      await Promise.all(Array.from({ length: 8 }, () => snaps.echo!.forkRun(echo('w')).done));
      // forkRun destroys its fork after answering: wait for those teardowns
      const settle = async (): Promise<void> => {
        for (let i = 0; i < 500 && stats().pendingJobs > 0; i++) await new Promise((r) => setTimeout(r, 10));
      };
      await settle();
      const fd0 = fds();
      const live0 = stats().vmsLive;
      for (let round = 0; round < 10; round++) {
        const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => snaps.echo!.forkRun(echo(`${round}.${i}`)).done));
        rs.forEach((r, i) => assert.equal(r.response.stdout.toString(), `${round}.${i}`));
      }
      const kept: Vm[] = [];
      for (let i = 0; i < 20; i++) kept.push(await snaps.echo!.fork());
      for (const v of kept) v.close();
      // closes are queued on the workers: let them drain
      await settle();
      assert.equal(stats().vmsLive, live0);
      assert.ok(fds() <= fd0 + 2, `fds grew from ${fd0} to ${fds()}`);
    });
  });
}
