// vmm-shm.test.ts — host shared memory through the native binding and the typed
// wrapper (Shm, Vm.share, Vm.unshare), against the `caller` test guest: two forks
// share a page at different addresses and see each other's writes, the host reads
// them with read32; unshare gives zeros; a derive at a call carries the range to
// the child's forks while the parent keeps it; every argument is validated; no vm
// or handle is left. Needs /dev/kvm; otherwise one "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGuestDir } from '../../src/lib/paths.js';
import { FB_ANSWER_HDR, FB_REQ_ANSWER, FB_REQ_ECHO, FB_ST_CALL, FB_ST_DONE } from '../../src/vmm/abi.js';
import { Shm, Snapshot, probe, stats, type Vm } from '../../src/vmm/vmm.js';
import { buildTestTemplate } from '../../src/template/build.js';

const p = probe();
const built = existsSync(join(testGuestDir, 'caller.elf'));
if (!p.available || !built) {
  process.stdout.write(`skipped: vmm shared memory e2e tests: ${!p.available ? p.reason : 'test guests not built (make -C native guests)'}\n`);
} else {
  describe('host shared memory', () => {
    let root: string;
    let snap: Snapshot;
    before(async () => {
      root = mkdtempSync(join(tmpdir(), 'forkbox-vmm-shm-'));
      const t = await buildTestTemplate('caller', root);
      snap = new Snapshot(t.memPath, t.statePath);
    });
    after(() => {
      snap?.close();
      rmSync(root, { recursive: true, force: true });
    });

    const PG = 4096;
    const req = async (vm: Vm, s: string): Promise<number> => {
      const r = await vm.run({ kind: FB_REQ_ECHO, payload: s, timeoutMs: 5000 });
      assert.equal(r.outcome, 'ok', r.detail);
      assert.equal(r.status, FB_ST_DONE);
      return r.exitCode >>> 0;
    };
    const w = (vm: Vm, a: number, v: number) => req(vm, `w 0x${a.toString(16)} ${v}`);
    const rd = (vm: Vm, a: number) => req(vm, `r 0x${a.toString(16)}`);

    test('two forks share a page; the host reads it; unshare gives zeros', async () => {
      const shm = Shm.create(2 * PG);
      const a = await snap.fork();
      const b = await snap.fork();
      try {
        assert.equal(shm.size, 2 * PG);
        await w(a, 0x600000, 0xfeed);
        a.share(0x600000, PG, shm, 0, true);
        assert.equal(shm.read32(0), 0xfeed);
        b.share(0x700000, PG, shm, 0, false);
        assert.equal(await rd(b, 0x700000), 0xfeed);
        await w(b, 0x700010, 4000000000);
        assert.equal(shm.read32(16), 4000000000);
        assert.equal(await rd(a, 0x600010), 4000000000);
        b.unshare(0x700000, PG);
        assert.equal(await req(b, 'z 0x700000'), 1);
        assert.equal(await rd(a, 0x600000), 0xfeed);
        shm.grow(3 * PG);
        assert.equal(shm.size, 3 * PG);
        b.share(0x800000, PG, shm, 2 * PG, false);
        await w(b, 0x800000, 12);
        assert.equal(shm.read32(2 * PG), 12);
        await assert.rejects(a.recycle(), /shared memory/);
      } finally {
        a.close();
        b.close();
      }
      assert.equal(shm.read32(16), 4000000000);   // the object outlives its vms
      shm.close();
      assert.throws(() => shm.read32(0), /closed/);
    });

    test('arguments are validated', async () => {
      const shm = Shm.create(PG);
      const vm = await snap.fork();
      try {
        assert.throws(() => Shm.create(0), RangeError);
        assert.throws(() => Shm.create(100), RangeError);
        assert.throws(() => Shm.create(2 ** 40), RangeError);
        assert.throws(() => shm.grow(PG + 1), RangeError);
        assert.throws(() => shm.grow(0), /never shrink/);
        assert.throws(() => shm.read32(2), RangeError);
        assert.throws(() => shm.read32(PG), RangeError);
        assert.throws(() => shm.read32(-4), RangeError);
        assert.throws(() => vm.share(0x600001, PG, shm, 0, false), RangeError);
        assert.throws(() => vm.share(0x600000, 0, shm, 0, false), RangeError);
        assert.throws(() => vm.share(0x200000, PG, shm, 0, false), RangeError);     // below the arena
        assert.throws(() => vm.share(0x600000, PG, shm, PG, false), RangeError);    // past the object
        assert.throws(() => vm.share(0x600000, PG, shm, 12, false), RangeError);
        assert.throws(() => vm.share(Number.MAX_SAFE_INTEGER, PG, shm, 0, false), RangeError);
        assert.throws(() => vm.share(0x600000, PG, {} as Shm, 0, false), TypeError);
        // past this vm's RAM (64 MiB): the VMM's own check
        assert.throws(() => vm.share(64 << 20, PG, shm, 0, false), (e: Error & { code?: string }) => e.code === 'EINVAL');
        assert.throws(() => vm.unshare(0x600000, 100), RangeError);
        assert.equal(await rd(vm, 0x600000), 0);   // still alive and unchanged
      } finally {
        vm.close();
        shm.close();
      }
    });

    test('derive at a call carries the range; the parent keeps it', async () => {
      const shm = Shm.create(PG);
      const parent = await snap.fork();
      const kids: Vm[] = [];
      try {
        const c = await parent.run({ kind: FB_REQ_ECHO, payload: 'c 1 0', timeoutMs: 5000 });
        assert.equal(c.status, FB_ST_CALL);
        parent.share(0x600000, PG, shm, 0, true);   // stopped at the call
        const child = await parent.derive(snap);
        kids.push(await child.fork(), await child.fork());
        child.close();
        const answer = Buffer.alloc(FB_ANSWER_HDR);
        for (const vm of [parent, ...kids]) {
          const r = await vm.run({ kind: FB_REQ_ANSWER, payload: answer, timeoutMs: 5000 });
          assert.equal(r.status, FB_ST_DONE, r.detail);
        }
        await w(kids[0]!, 0x600000, 7);
        assert.equal(shm.read32(0), 7);
        assert.equal(await rd(kids[1]!, 0x600000), 7);
        assert.equal(await rd(parent, 0x600000), 7);
        await w(parent, 0x600004, 8);
        assert.equal(await rd(kids[0]!, 0x600004), 8);
      } finally {
        for (const k of kids) k.close();
        parent.close();
        shm.close();
      }
      for (let i = 0; i < 200 && stats().vmsLive > 0; i++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(stats().vmsLive, 0);
    });
  });
}
