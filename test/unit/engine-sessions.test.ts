// engine-sessions.test.ts — the session registry and the session state
// machine on the fake VMM (src/engine/fake-vmm.ts), without /dev/kvm: states,
// one call at a time, owners and names, poisoning, discard, side effects, live
// fork, pause/resume through an in-memory store, idle timeouts that pause,
// lifetimes that end, caps and the memory budget, and nothing left at the end.
// (The same flows on real forks: test/e2e/sessions.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryBudget } from '../../src/engine/budget.js';
import { FakeSnapshot } from '../../src/engine/fake-vmm.js';
import { python } from '../../src/languages/python.js';
import type { PausedFiles, Session, SessionHost, SessionSnapshot } from '../../src/engine/session.js';
import type { PauseStore, SessionRecord } from '../../src/engine/session-store.js';
import { SESSION_LIMITS, SessionRegistry, type SessionLimits } from '../../src/engine/sessions.js';
import type { SessionExecResult } from '../../src/engine/session-types.js';

const MiB = 1024 * 1024;
const FORK_COST = 100 * MiB;

class MemStore implements PauseStore {
  saved = new Map<string, { child: SessionSnapshot; record: SessionRecord }>();
  async write(s: Session, child: SessionSnapshot, templateKey: string): Promise<PausedFiles> {
    const copy = new FakeSnapshot((child as FakeSnapshot).state, child.pages);   // what a disk store keeps
    this.saved.set(s.id, { child: copy, record: { version: 1, meta: s.meta, templateKey, cwdDone: s.cwdDone, pausedAt: Date.now(),
      memSize: 0, state: { sha256: '', size: 0 } } });
    return { dir: s.id, memPath: '', statePath: '', bytes: child.pages * 4096 + 1 };
  }
  async open(f: PausedFiles): Promise<SessionSnapshot> {
    const e = this.saved.get(f.dir);
    if (!e) throw new Error('not saved');
    return new FakeSnapshot((e.child as FakeSnapshot).state, e.child.pages);
  }
  async remove(id: string): Promise<void> { this.saved.delete(id); }
  async list(): Promise<Array<{ record: SessionRecord; files: PausedFiles }>> {
    return [...this.saved.values()].map((e) => ({ record: e.record, files: { dir: e.record.meta.id, memPath: '', statePath: '', bytes: 1 } }));
  }
}

function setup(limits: Partial<SessionLimits> = {}, budgetBytes = 1000 * FORK_COST) {
  const root = new FakeSnapshot();
  const budget = new MemoryBudget(budgetBytes);
  const host: SessionHost = {
    template: () => ({ snapshot: root, forkCost: FORK_COST, key: 'k1', module: python }),
    pool: () => null,
    budget,
    defaults: { stdoutCap: 1 << 20, stderrCap: 1 << 20, memLimit: 256 * MiB },
    quotaBytes: 0,
  };
  const store = new MemStore();
  const reg = new SessionRegistry(host, { ...SESSION_LIMITS, ...limits }, store, () => 'k1');
  return { reg, store, budget, host };
}

const run = (reg: SessionRegistry, id: string, code: string, extra: Record<string, unknown> = {}, owner = 'a'): Promise<SessionExecResult> =>
  reg.execSession(owner, id, { code, language: 'python', timeoutSeconds: 5, ...extra });

test('states, REPL results, one call at a time, owners, names, side effects', async () => {
  const live0 = FakeSnapshot.live;
  const { reg, budget } = setup();
  await reg.start();
  const s = await reg.createSession({ owner: 'a', language: 'python', name: 'n1' });
  assert.equal(s.state, 'ready');
  assert.equal(budget.stats().usedBytes < FORK_COST, true, 'an idle session is charged what it holds, not its worst case');
  assert.equal((await run(reg, s.id, 'set x 41')).result, undefined);
  assert.equal((await run(reg, s.id, 'get x')).result, '"41"');
  assert.equal(reg.getSession('a', s.id).state, 'idle');
  assert.equal(reg.getSession('a', s.id).execs, 2);
  const slow = run(reg, s.id, 'sleep 50');
  await assert.rejects(run(reg, s.id, 'get x'), { code: 'Conflict' });
  assert.equal(reg.getSession('a', s.id).state, 'running');
  await slow;
  assert.throws(() => reg.getSession('b', s.id), { code: 'NotFound' });
  await assert.rejects(run(reg, s.id, 'get x', {}, 'b'), { code: 'NotFound' });
  await assert.rejects(reg.createSession({ owner: 'a', language: 'python', name: 'n1' }), { code: 'Conflict' });
  const other = await reg.createSession({ owner: 'b', language: 'python', name: 'n1' });   // names are per key
  const e = await run(reg, s.id, 'write /workspace/a.txt hello\ntouch 3');
  assert.deepEqual(e.sideEffects.filesCreated, [{ path: '/workspace/a.txt', size: 5 }]);
  assert.equal(e.sideEffects.pagesDirtied, 3);
  const e2 = await run(reg, s.id, 'write /workspace/a.txt bye\nrm /workspace/a.txt');
  assert.deepEqual([e2.sideEffects.filesModified, e2.sideEffects.filesDeleted], [[], [{ path: '/workspace/a.txt' }]]);
  await assert.rejects(reg.createSession({ owner: 'a', language: 'python', name: '../x' }), { code: 'InvalidRequest' });
  await assert.rejects(run(reg, s.id, 'get x', { language: 'cobol' }), { code: 'InvalidRequest' });
  await reg.deleteSession('a', s.id);
  await reg.deleteSession('b', other.id);
  await assert.rejects(run(reg, s.id, 'get x'), { code: 'Gone' });
  await reg.close();
  assert.equal(FakeSnapshot.live, live0, 'every VM released');
  assert.equal(budget.stats().usedBytes, 0, 'every budget share released');
});

test('timeouts, crashes and exits poison the session (410 with the reason); delete while running', async () => {
  const live0 = FakeSnapshot.live;
  const { reg } = setup();
  await reg.start();
  for (const [code, why, outcome] of [['spin', /timed out/, 'timeout'], ['crash', /crashed/, 'crashed'], ['exit 3', /exited/, 'exited']] as const) {
    const s = await reg.createSession({ owner: 'a', language: 'python' });
    const r = await run(reg, s.id, code, { timeoutSeconds: 0.05 });
    assert.equal(r.outcome, outcome);
    if (outcome === 'exited') assert.equal(r.exitCode, 3, 'the process ended with its code: the result says so, the session ends');
    assert.equal(reg.getSession('a', s.id).state, 'poisoned');
    await assert.rejects(run(reg, s.id, 'get x'), (err: { code?: string; message?: string }) => err.code === 'Gone' && why.test(err.message ?? ''));
  }
  const s = await reg.createSession({ owner: 'a', language: 'python' });
  const p = run(reg, s.id, 'spin', { timeoutSeconds: 30 });
  await new Promise((r) => setTimeout(r, 20));
  await reg.deleteSession('a', s.id);
  assert.equal((await p).outcome, 'cancelled', 'a delete ends the call in flight');
  await reg.close();
  assert.equal(FakeSnapshot.live, live0);
});

test('discard, live fork, pause and resume, and a restart finds paused sessions', async () => {
  const live0 = FakeSnapshot.live;
  const { reg, store, host } = setup();
  await reg.start();
  const s = await reg.createSession({ owner: 'a', language: 'python' });
  await run(reg, s.id, 'set x parent\nwrite /workspace/f.txt p');
  const d = await run(reg, s.id, 'set x changed\nget x', { discard: true });
  assert.equal(d.result, '"changed"');
  assert.equal((await run(reg, s.id, 'get x')).result, '"parent"', 'a discarded exec leaves the session as it was');
  const kids = await reg.forkSession('a', s.id, 2);
  assert.deepEqual(kids.map((k) => k.parentId), [s.id, s.id]);
  await run(reg, kids[0]!.id, 'set x kid0');
  assert.equal((await run(reg, kids[1]!.id, 'get x')).result, '"parent"');
  assert.equal((await run(reg, s.id, 'get x')).result, '"parent"');
  assert.equal((await run(reg, kids[0]!.id, 'get x')).result, '"kid0"');
  await assert.rejects(reg.forkSession('a', s.id, 0), { code: 'InvalidRequest' });
  await assert.rejects(reg.forkSession('a', s.id, 17), { code: 'InvalidRequest' });
  const p = await reg.pauseSession('a', kids[0]!.id);
  assert.deepEqual([p.state, p.memoryBytes > 0], ['paused', false]);
  assert.ok(p.diskBytes > 0);
  assert.equal(store.saved.size, 1);
  assert.equal((await run(reg, kids[0]!.id, 'get x')).result, '"kid0"', 'the next call resumes it');
  assert.equal(reg.getSession('a', kids[0]!.id).state, 'idle');
  assert.equal(store.saved.size, 0, 'a resumed session leaves nothing on disk');
  await reg.pauseSession('a', kids[1]!.id);
  assert.deepEqual((await reg.readFile('a', kids[1]!.id, '/workspace/f.txt')).toString(), 'p', 'a file call resumes too');
  await reg.pauseSession('a', kids[1]!.id);
  await reg.close();   // a restart: live sessions end, paused ones stay
  const again = new SessionRegistry(host, SESSION_LIMITS, store, () => 'k1');
  await again.start();
  assert.deepEqual(again.listSessions('a').map((x) => [x.id, x.state]), [[kids[1]!.id, 'paused']]);
  assert.equal((await run(again, kids[1]!.id, 'get x')).result, '"parent"');
  await again.close();
  assert.equal(FakeSnapshot.live, live0);
});

test('idle timeouts pause (never delete); lifetimes end sessions; caps', async () => {
  const live0 = FakeSnapshot.live;
  const { reg } = setup({ maxPerOwner: 2 });
  await reg.start();
  const idle = await reg.createSession({ owner: 'a', language: 'python', idleTimeoutSeconds: 1 });
  const short = await reg.createSession({ owner: 'a', language: 'python', timeoutSeconds: 1 });
  await assert.rejects(reg.createSession({ owner: 'a', language: 'python' }), { code: 'Conflict' }, 'per-key cap');
  await run(reg, idle.id, 'set x kept');
  await new Promise((r) => setTimeout(r, 2300));
  assert.equal(reg.getSession('a', idle.id).state, 'paused');
  assert.equal((await run(reg, idle.id, 'get x')).result, '"kept"');
  await assert.rejects(run(reg, short.id, 'get x'), (e: { code?: string; message?: string }) => e.code === 'Gone' && /expired/.test(e.message ?? ''));
  await reg.close();
  assert.equal(FakeSnapshot.live, live0);
});

test('the memory budget: a session charges its worst case while it runs, what it holds while idle', async () => {
  const live0 = FakeSnapshot.live;
  const { reg, budget } = setup({}, 2 * FORK_COST + 10 * MiB);
  await reg.start();
  const a = await reg.createSession({ owner: 'a', language: 'python' });
  const b = await reg.createSession({ owner: 'a', language: 'python' });
  const c = await reg.createSession({ owner: 'a', language: 'python' });   // idle ones are small: three fit
  await run(reg, a.id, 'touch 10');
  assert.ok(budget.stats().usedBytes < FORK_COST);
  const slow = [run(reg, a.id, 'sleep 100'), run(reg, b.id, 'sleep 100')];
  await assert.rejects(run(reg, c.id, 'get x'), { code: 'MemoryBudgetExceeded' });
  await Promise.all(slow);
  assert.equal((await run(reg, c.id, 'get x')).outcome, 'exited', 'refused, not poisoned: it runs once there is room');
  await reg.close();
  assert.equal(budget.stats().usedBytes, 0);
});
