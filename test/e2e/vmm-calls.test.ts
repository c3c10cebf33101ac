// vmm-calls.test.ts — guest-to-host calls through the native binding and the
// typed wrapper, against the `caller` test guest (native/test/guests/caller.c):
// a fork stops at FB_ST_CALL, is answered with FB_REQ_ANSWER and answers DONE
// with the echoed value; the same through Snapshot.forkRun(destroy=true), which
// keeps a fork that calls open (onGone fires only once it is closed); a derive
// at a call gives forks that each take their own answer; a vm at a call takes
// nothing but the answer and is not recycled. Needs /dev/kvm; otherwise one
// "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGuestDir } from '../../src/lib/paths.js';
import { FB_ANSWER_HDR, FB_CALL_HDR, FB_REQ_ANSWER, FB_REQ_ECHO, FB_ST_CALL, FB_ST_DONE } from '../../src/vmm/abi.js';
import { Snapshot, probe, stats, type Response, type Vm } from '../../src/vmm/vmm.js';
import { buildTestTemplate } from '../../src/template/build.js';

const p = probe();
const built = existsSync(join(testGuestDir, 'caller.elf'));
if (!p.available || !built) {
  process.stdout.write(`skipped: vmm call e2e tests: ${!p.available ? p.reason : 'test guests not built (make -C native guests)'}\n`);
} else {
  describe('guest-to-host calls', () => {
    let root: string;
    let snap: Snapshot;
    before(async () => {
      root = mkdtempSync(join(tmpdir(), 'forkbox-vmm-calls-'));
      const t = await buildTestTemplate('caller', root);
      snap = new Snapshot(t.memPath, t.statePath);
    });
    after(() => {
      snap?.close();
      rmSync(root, { recursive: true, force: true });
    });

    const echo = (s: string) => ({ kind: FB_REQ_ECHO, payload: s, timeoutMs: 5000 });
    const answer = (ret: number, data = '') => {
      const d = Buffer.from(data);
      const b = Buffer.alloc(FB_ANSWER_HDR + d.length);
      b.writeBigInt64LE(BigInt(ret), 0);
      b.writeBigInt64LE(BigInt(ret * 2), 8);            // val[0]
      b.writeBigUInt64LE(BigInt(d.length), 48);         // data_len
      d.copy(b, FB_ANSWER_HDR);
      return { kind: FB_REQ_ANSWER, payload: b, timeoutMs: 5000 };
    };
    const isCall = (r: Response, nr: number, arg0: number) => {
      assert.equal(r.outcome, 'ok', r.detail);
      assert.equal(r.status, FB_ST_CALL);
      assert.equal(r.result.length, FB_CALL_HDR + 4);
      assert.equal(r.result.readUInt32LE(0), nr);
      assert.equal(r.result.readBigInt64LE(8), BigInt(arg0));
      assert.equal(r.result.readBigUInt64LE(56), 4n);
      assert.equal(r.result.subarray(FB_CALL_HDR).toString(), 'ping');
    };
    const isAnswered = (r: Response, ret: number, data: string) => {
      assert.equal(r.outcome, 'ok', r.detail);
      assert.equal(r.status, FB_ST_DONE);
      assert.equal(r.exitCode, ret);
      assert.equal(r.stdout.toString(), data);
      assert.equal(r.result.readBigInt64LE(0), BigInt(ret * 2));
    };

    test('fork, call, answer, DONE with the echoed value', async () => {
      const vm = await snap.fork();
      try {
        isCall(await vm.run(echo('c 5 77')), 5, 77);
        await assert.rejects(vm.run(echo('r 0x400000')), (e: Error & { code?: string }) => e.code === 'EINVAL');
        isAnswered(await vm.run(answer(4321, 'pong')), 4321, 'pong');
        const r = await vm.run(echo('r 0x400000'));
        assert.equal(r.status, FB_ST_DONE);
      } finally {
        vm.close();
      }
    });

    test('a vm stopped at a call is not recycled', async () => {
      const vm = await snap.fork();
      isCall(await vm.run(echo('c 1 2')), 1, 2);
      await assert.rejects(vm.recycle(), /DONE/);
      vm.close();
    });

    test('forkRun(destroy=true) keeps a fork that calls; onGone after its close', async () => {
      const live0 = stats().vmsLive;
      let gone = 0;
      const { done } = snap.forkRun(echo('c 9 3'), { destroy: true, onGone: () => { gone++; } });
      const r = await done;
      isCall(r.response, 9, 3);
      assert.ok(r.vm, 'the vm is returned at a call');
      const vm = r.vm as Vm;
      await new Promise((res) => setTimeout(res, 30));
      assert.equal(gone, 0);
      isAnswered(await vm.run(answer(-2, 'x')), -2, 'x');
      let closeGone = 0;
      await new Promise<void>((res) => vm.close(() => { closeGone++; res(); }));
      for (let i = 0; i < 100 && gone === 0; i++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(gone, 1);
      assert.equal(closeGone, 1);
      assert.ok(stats().vmsLive <= live0, `vms live ${stats().vmsLive}, before ${live0}`);   // an earlier test's vm may still be reaped

      // a one-shot that answers DONE is still torn down, vm null
      let gone2 = 0;
      const d = await snap.forkRun(echo('r 0x400000'), { destroy: true, onGone: () => { gone2++; } }).done;
      assert.equal(d.response.status, FB_ST_DONE);
      assert.equal(d.vm, null);
      for (let i = 0; i < 100 && gone2 === 0; i++) await new Promise((res) => setTimeout(res, 10));
      assert.equal(gone2, 1);
    });

    test('derive + fork at a call: each vm takes its own answer', async () => {
      const parent = await snap.fork();
      assert.equal((await parent.run(echo('w 0x500000 31'))).status, FB_ST_DONE);
      isCall(await parent.run(echo('c 1 8')), 1, 8);
      const child = await parent.derive(snap);
      const a = await child.fork();
      const b = await child.fork();
      try {
        isAnswered(await a.run(answer(11, 'a')), 11, 'a');
        isAnswered(await b.run(answer(22, 'bb')), 22, 'bb');
        isAnswered(await parent.run(answer(33, 'parent')), 33, 'parent');
        assert.equal((await a.run(echo('w 0x500000 1'))).status, FB_ST_DONE);
        assert.equal((await b.run(echo('r 0x500000'))).exitCode, 31);
        assert.equal((await parent.run(echo('r 0x500000'))).exitCode, 31);
        assert.equal((await a.run(echo('r 0x500000'))).exitCode, 1);
      } finally {
        a.close();
        b.close();
        parent.close();
        child.close();
      }
    });
  });
}
