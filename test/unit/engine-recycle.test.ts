// engine-recycle.test.ts — the engine's recycling rules without /dev/kvm: which
// answers may be recycled, the FORKBOX_RECYCLE switch, and the warm pool's side
// (a recycled fork joins the ready list with its budget share, a failed or
// surplus one is closed and its share released, an exec waits for a recycle
// under way but not for long, close() ends everything). The VMs are stand-ins
// with recycle()/close(); the reset itself is tested on KVM (test_recycle.c,
// test/e2e/recycle.test.ts).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FB_ST_DONE, FB_ST_EXIT } from '../../src/vmm/abi.js';
import type { Response, Snapshot, Vm } from '../../src/vmm/vmm.js';
import { recyclable, recycleDefault } from '../../src/engine/recycle.js';
import { RECYCLE_WAIT_MS, WarmPool } from '../../src/engine/warm-pool.js';
import { MemoryBudget } from '../../src/engine/budget.js';
import { VMM_OK, VMM_TIMEOUT } from '../../src/engine/decode.js';

const resp = (o: Partial<Response>): Response => ({ outcomeCode: VMM_OK, status: FB_ST_DONE, exitCode: 0, ...o }) as Response;

test('only a clean answer is recyclable', () => {
  assert.equal(recyclable(resp({}), 0, false), true);
  assert.equal(recyclable(resp({}), 1, false), false);                       // exception / sys.exit(1)
  assert.equal(recyclable(resp({}), 0, true), false);                        // cancelled
  assert.equal(recyclable(resp({ status: FB_ST_EXIT }), 0, false), false);   // os._exit
  assert.equal(recyclable(resp({ outcomeCode: VMM_TIMEOUT }), 0, false), false);
  assert.equal(recyclable(resp({ outcomeCode: 1 }), 0, false), false);       // a crash
});

test('FORKBOX_RECYCLE: on unless switched off; garbage is an error', () => {
  assert.equal(recycleDefault({}), true);
  for (const v of ['0', 'false', 'off', 'no']) assert.equal(recycleDefault({ FORKBOX_RECYCLE: v }), false);
  for (const v of ['1', 'true', 'on', '']) assert.equal(recycleDefault({ FORKBOX_RECYCLE: v }), true);
  assert.throws(() => recycleDefault({ FORKBOX_RECYCLE: 'maybe' }), /FORKBOX_RECYCLE/);
});

class FakeVm {
  closed = 0;
  recycles = 0;
  constructor(private readonly behave: () => Promise<unknown>) {}
  recycle(): Promise<unknown> { this.recycles++; return this.behave(); }
  close(): void { this.closed++; }
}
const ok = (): Promise<unknown> => Promise.resolve({ ramPages: 10, restored: 10, dropped: 0, mailboxPages: 2, ns: 1000 });
const tick = (ms = 0): Promise<void> => new Promise((r) => setTimeout(r, ms));
const MiB = 1 << 20;

function pool(recycleMax: number): { p: WarmPool; budget: MemoryBudget } {
  const budget = new MemoryBudget(100 * MiB);
  // target 0: no warm-up forks, so the snapshot is never used
  const p = new WarmPool({} as Snapshot, null, { target: 0, memLimit: 0, outCap: 0, errCap: 0, budget, forkCost: 10 * MiB, recycleMax });
  return { p, budget };
}

test('a recycled fork joins the pool with its share; a surplus or failed one is closed and released', async () => {
  const { p, budget } = pool(1);
  const a = new FakeVm(ok), b = new FakeVm(ok), c = new FakeVm(() => Promise.reject(new Error('EIO')));
  p.recycle(a as unknown as Vm, budget.reserve(10 * MiB, 'x'));
  p.recycle(b as unknown as Vm, budget.reserve(10 * MiB, 'x'));   // no room: one beyond a target of 0
  assert.equal(b.closed, 1);
  assert.equal(b.recycles, 0);
  await tick();
  assert.equal(p.size, 1);
  assert.equal(budget.used, 10 * MiB);
  const w = await p.acquire();
  assert.equal(w?.vm, a as unknown as Vm);
  assert.equal(w?.recycled, true);
  w!.charge!.release();
  p.recycle(c as unknown as Vm, budget.reserve(10 * MiB, 'x'));
  await tick();
  assert.equal(c.closed, 1);
  assert.equal(p.size, 0);
  assert.equal(budget.used, 0);
  const s = p.stats();
  assert.equal(s.recycled, 1);
  assert.equal(s.recycleFailed, 1);
  assert.equal(s.recycleDropped, 1);
  assert.equal(s.ramPages, 10);
});

test('an exec waits for a recycle under way, but not past RECYCLE_WAIT_MS', async () => {
  const { p, budget } = pool(4);
  let finish!: () => void;
  const slow = new FakeVm(() => new Promise((r) => { finish = () => r({ ramPages: 1, restored: 1, dropped: 0, mailboxPages: 0, ns: 1 }); }));
  const fast = new FakeVm(() => tick(1).then(ok));
  p.recycle(fast as unknown as Vm, budget.reserve(10 * MiB, 'x'));
  const got = await p.acquire();              // handed over as soon as it is reset
  assert.equal(got?.vm, fast as unknown as Vm);
  got!.charge!.release();
  p.recycle(slow as unknown as Vm, budget.reserve(10 * MiB, 'x'));
  const t0 = performance.now();
  assert.equal(await p.acquire(), null);       // gave up: the exec forks fresh
  assert.ok(performance.now() - t0 >= RECYCLE_WAIT_MS - 1);
  finish();
  await tick();
  assert.equal(p.size, 1);                     // the late fork is kept for the next exec
  assert.equal(await p.acquire().then((w) => w?.vm), slow as unknown as Vm);
});

test('close() closes kept forks, releases their shares and ends recycles under way', async () => {
  const { p, budget } = pool(4);
  const a = new FakeVm(ok);
  let finish!: () => void;
  const b = new FakeVm(() => new Promise((r) => { finish = () => r({ ramPages: 0, restored: 0, dropped: 0, mailboxPages: 0, ns: 0 }); }));
  p.recycle(a as unknown as Vm, budget.reserve(10 * MiB, 'x'));
  await tick();
  p.recycle(b as unknown as Vm, budget.reserve(10 * MiB, 'x'));
  p.close();
  assert.equal(a.closed, 1);
  finish();
  await tick();
  assert.equal(b.closed, 1);
  assert.equal(budget.used, 0);
  const c = new FakeVm(ok);
  p.recycle(c as unknown as Vm, budget.reserve(10 * MiB, 'x'));
  assert.equal(c.closed, 1);
  assert.equal(budget.used, 0);
});

test('evictOne() frees an idle recycled fork for a reservation that needs the room', async () => {
  const { p, budget } = pool(4);
  budget.reclaim = () => p.evictOne();
  const vms = Array.from({ length: 4 }, () => new FakeVm(ok));
  for (const v of vms) p.recycle(v as unknown as Vm, budget.reserve(10 * MiB, 'x'));
  await tick();
  assert.equal(p.size, 4);
  const big = budget.reserve(80 * MiB, 'an exec');   // 40 + 80 > 100: two kept forks go
  assert.equal(p.size, 2);
  assert.equal(vms.filter((v) => v.closed).length, 2);
  big.release();
});
