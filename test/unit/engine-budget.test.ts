// engine-budget.test.ts — the engine's memory budget without a VM: charges
// add up to the limit, a reservation that does not fit is refused with
// MemoryBudgetExceeded (503) after reclaiming idle charges, releases are
// idempotent, and FORKBOX_MEM_BUDGET_MB sets the default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBudget, defaultBudgetMb } from '../../src/engine/budget.js';

const MiB = 1024 * 1024;

test('charges add up to the limit; the next one is refused with MemoryBudgetExceeded', () => {
  const b = new MemoryBudget(3 * 704 * MiB);
  const c = [b.reserve(704 * MiB, 'an exec'), b.reserve(704 * MiB, 'an exec'), b.reserve(704 * MiB, 'an exec')];
  assert.equal(b.used, 3 * 704 * MiB);
  assert.throws(() => b.reserve(704 * MiB, 'an exec'), (e: { code?: string; status?: number; retryAfter?: number; message?: string }) =>
    e.code === 'MemoryBudgetExceeded' && e.status === 503 && e.retryAfter === 1 && /704 MiB/.test(e.message ?? ''));
  assert.equal(b.tryReserve(1), null);
  c[0]!.release();
  c[0]!.release();   // idempotent
  assert.equal(b.used, 2 * 704 * MiB);
  const d = b.reserve(704 * MiB, 'an exec');
  assert.deepEqual(b.stats(), { limitBytes: 3 * 704 * MiB, usedBytes: 3 * 704 * MiB, charges: 3, refused: 1 });
  for (const x of [c[1]!, c[2]!, d]) x.release();
  assert.equal(b.used, 0);
});

test('a reservation that does not fit reclaims idle charges first, and only as many as needed', () => {
  const b = new MemoryBudget(2 * MiB);
  const idle = [b.reserve(MiB, 'warm'), b.reserve(MiB, 'warm')];
  let reclaimed = 0;
  b.reclaim = () => {
    const c = idle.shift();
    if (!c) return false;
    c.release();
    reclaimed++;
    return true;
  };
  b.reserve(MiB, 'an exec');
  assert.equal(reclaimed, 1);
  assert.equal(b.tryReserve(MiB, false), null, 'no reclaim when asked not to');
  b.reserve(MiB, 'an exec');
  assert.equal(reclaimed, 2);
  assert.throws(() => b.reserve(MiB, 'an exec'), (e: { code?: string }) => e.code === 'MemoryBudgetExceeded');
});

test('a kept fork\'s charge shrinks to its measured pages and grows back to the worst case, or is refused', () => {
  const b = new MemoryBudget(10 * MiB);
  const kept = b.reserve(6 * MiB, 'a sandbox');
  kept.shrink(MiB);
  assert.equal(b.used, MiB);
  const other = b.reserve(8 * MiB, 'an exec');
  assert.throws(() => kept.grow(6 * MiB, 'a sandbox exec'), (e: { code?: string }) => e.code === 'MemoryBudgetExceeded');
  assert.equal(kept.bytes, MiB, 'a refused grow changes nothing');
  other.release();
  kept.grow(6 * MiB, 'a sandbox exec');
  assert.deepEqual(b.stats(), { limitBytes: 10 * MiB, usedBytes: 6 * MiB, charges: 1, refused: 1 });
  kept.shrink(7 * MiB);   // never above what it holds
  assert.equal(kept.bytes, 6 * MiB);
  kept.release();
  assert.equal(b.used, 0);
  assert.throws(() => kept.grow(MiB, 'x'), RangeError);
});

test('FORKBOX_MEM_BUDGET_MB sets the default; bad values are refused', () => {
  assert.equal(defaultBudgetMb({ FORKBOX_MEM_BUDGET_MB: '2048' }), 2048);
  assert.ok(defaultBudgetMb({}) > 0);
  for (const v of ['0', '-1', 'x', '1.5']) assert.throws(() => defaultBudgetMb({ FORKBOX_MEM_BUDGET_MB: v }), RangeError);
  assert.throws(() => new MemoryBudget(0), RangeError);
});
