// The host side of guest processes (src/engine/processes.ts) against scripted fake VMs:
// each fake VM is a list of steps, each taking the answer to its previous call and giving
// its next response (a call, or its end). No KVM here: the real path is test/e2e/processes.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessGroup, encodeAnswer, parseCall, type GroupHost, type GroupShm, type GroupSnapshot, type GroupVm } from '../../src/engine/processes.js';
import type { NativeResponse as Response } from '../../src/vmm/binding.js';
import {
  FB_ST_CALL, FB_ST_DONE, FB_ST_EXIT, FB_EXIT_SIGNALED, FB_OUT_TRUNCATED, FB_CALL_FORK, FB_CALL_PIPE_NEW, FB_CALL_PIPE_REF,
  FB_CALL_PIPE_READ, FB_CALL_PIPE_WRITE, FB_CALL_POLL, FB_CALL_WAIT, FB_CALL_WAITPID, FB_CALL_KILL, FB_CALL_SHM_SHARE,
  FB_CALL_FUTEX_WAKE, FB_WAIT_CHILD, FB_REQ_ANSWER,
} from '../../src/vmm/abi.js';
import type { RunRequest } from '../../src/vmm/vmm.js';

interface Answer { ret: number; vals: number[]; signals: bigint; data: Buffer }
type Step = (a: Answer) => Response | Promise<Response>;

function decodeAnswer(p: Buffer): Answer {
  const vals = [0, 1, 2, 3].map((i) => Number(p.readBigInt64LE(8 + 8 * i)));
  const len = Number(p.readBigUInt64LE(48));
  return { ret: Number(p.readBigInt64LE(0)), vals, signals: p.readBigUInt64LE(40), data: p.subarray(64, 64 + len) };
}

function resp(status: number, o: Partial<Response> = {}): Response {
  return { outcome: 'ok', outcomeCode: 0, status, exitCode: 0, outFlags: 0, result: Buffer.alloc(0), stdout: Buffer.alloc(0),
    stderr: Buffer.alloc(0), faultVector: 0, faultError: 0, faultRip: 0, faultCr2: 0, exitReason: 0, ioPort: 0, mmioAddr: 0,
    detail: '', exits: 1, runNs: 1000, arenaUsed: 0, arenaPeak: 0, ...o };
}
function call(nr: number, args: number[] = [], data: Buffer = Buffer.alloc(0), o: Partial<Response> = {}): Response {
  const b = Buffer.alloc(64 + data.length);
  b.writeUInt32LE(nr, 0);
  args.forEach((a, i) => b.writeBigInt64LE(BigInt(a), 8 + 8 * i));
  b.writeBigUInt64LE(BigInt(data.length), 56);
  data.copy(b, 64);
  return resp(FB_ST_CALL, { result: b, ...o });
}
const pollEnt = (pipe: number, end: number, events: number): Buffer => {
  const b = Buffer.alloc(8); b.writeUInt32LE(pipe, 0); b.writeUInt16LE(end, 4); b.writeUInt16LE(events, 6); return b;
};
const futexEnt = (key: number, off: number, expect: number): Buffer => {
  const b = Buffer.alloc(16); b.writeBigUInt64LE(BigInt(key), 0); b.writeUInt32LE(off, 8); b.writeUInt32LE(expect, 12); return b;
};

class FakeShm implements GroupShm {
  buf: Buffer;
  closed = false;
  constructor(n: number) { this.buf = Buffer.alloc(n); }
  get size(): number { return this.buf.length; }
  grow(n: number): void { const b = Buffer.alloc(n); this.buf.copy(b); this.buf = b; }
  read32(off: number): number { return this.buf.readUInt32LE(off); }
  close(): void { this.closed = true; }
}

class FakeVm implements GroupVm {
  steps: Step[];
  answers: Answer[] = [];
  closed = false;
  kicked = 0;
  shares: [number, number, number, boolean][] = [];
  children: Step[][];
  pending: ((r: Response) => void) | null = null;
  constructor(steps: Step[], children: Step[][] = []) { this.steps = steps; this.children = children; }
  async run(req: RunRequest): Promise<Response> {
    assert.equal(req.kind, FB_REQ_ANSWER);
    assert.ok(req.timeoutMs > 0);
    const a = decodeAnswer(req.payload as Buffer);
    this.answers.push(a);
    const step = this.steps.shift();
    if (!step) throw new Error('fake vm: no step left');
    return step(a);
  }
  async derive(): Promise<GroupSnapshot> {
    const kids = this.children;
    return { fork: async () => new FakeVm(kids.shift() ?? []), close: () => {} };
  }
  kick(): void { this.kicked++; }
  close(gone?: () => void): void { this.closed = true; gone?.(); }
  share(gpa: number, len: number, _shm: GroupShm, off: number, copyIn: boolean): void { this.shares.push([gpa, len, off, copyIn]); }
  unshare(): void {}
}

function host(o: Partial<GroupHost> = {}): GroupHost & { charges: number; shms: FakeShm[] } {
  const h = {
    charges: 0, shms: [] as FakeShm[],
    root: { fork: async () => { throw new Error('unused'); }, close: () => {} },
    charge: () => { h.charges++; return { release: () => { h.charges--; } }; },
    createShm: (n: number) => { const s = new FakeShm(n); h.shms.push(s); return s; },
    maxProcesses: 8, memLimit: 1 << 20, ...o,
  };
  return h;
}
const limits = (ms = 5000): { deadline: number; outCap: number; errCap: number } => ({ deadline: Date.now() + ms, outCap: 1 << 20, errCap: 1 << 20 });

/** A VM whose every answer goes to one function (state in its closure): for orders that depend on timing. */
const loop = (fn: Step): Step[] => new Array(200).fill(fn);

test('fork, a pipe across it, EOF, waitpid and the merged output', async () => {
  let pipe = 0, child = 0, got = '', phase = 'new';
  const childSteps: Step[] = [
    (a) => { assert.equal(a.ret, 0); assert.deepEqual(a.vals.slice(0, 2), [1000, 2]); return call(FB_CALL_PIPE_WRITE, [pipe], Buffer.from('hi'), { stdout: Buffer.from('child says\n') }); },
    (a) => { assert.equal(a.ret, 2); return call(FB_CALL_PIPE_REF, [pipe, 1, -1]); },
    () => resp(FB_ST_EXIT, { exitCode: 3 }),
  ];
  const root = new FakeVm(loop((a) => {
    switch (phase) {
      case 'new': pipe = a.ret; assert.ok(pipe > 0); phase = 'fork'; return call(FB_CALL_FORK);
      case 'fork': child = a.ret; assert.equal(child, 1000); phase = 'close'; return call(FB_CALL_PIPE_REF, [pipe, 1, -1]);
      case 'close': phase = 'read'; return call(FB_CALL_PIPE_READ, [pipe, 100]);
      case 'read':
        if (a.ret === -11) { phase = 'waitread'; return call(FB_CALL_WAIT, [-1, 1, 0, 0], pollEnt(pipe, 0, 1)); }
        if (a.ret > 0) { got += a.data.toString(); return call(FB_CALL_PIPE_READ, [pipe, 100]); }
        assert.equal(a.ret, 0, 'EOF once the child closed its end'); phase = 'waitpid'; return call(FB_CALL_WAITPID, [child, 0]);
      case 'waitread': phase = 'read'; return call(FB_CALL_PIPE_READ, [pipe, 100]);
      case 'waitpid':
        if (a.ret === 0) { phase = 'waitchild'; return call(FB_CALL_WAIT, [-1, 0, 0, FB_WAIT_CHILD]); }
        assert.equal(a.ret, child); phase = 'echild';
        return call(FB_CALL_WAITPID, [-1, 0], Buffer.alloc(0), { stdout: Buffer.from(`status ${a.vals[0]} got ${got}\n`) });
      case 'waitchild': phase = 'waitpid'; return call(FB_CALL_WAITPID, [child, 0]);
      case 'echild': assert.equal(a.ret, -10, 'ECHILD once reaped'); return resp(FB_ST_DONE, { stdout: Buffer.from('root done\n') });
    }
    throw new Error(phase);
  }), [childSteps]);
  const h = host();
  const g = new ProcessGroup(h, limits());
  const out = await g.run(root, call(FB_CALL_PIPE_NEW, [1, 1], Buffer.alloc(0), { stdout: Buffer.from('root starts\n') }));
  assert.equal(out.status, FB_ST_DONE);
  const text = out.stdout.toString();
  assert.match(text, /^root starts\n/);
  assert.match(text, /child says\n/);
  assert.match(text, /status 768 got hi\n/); // exit code 3 << 8
  assert.match(text, /root done\n$/);
  assert.equal(h.charges, 0, 'the child released its budget share');
  assert.equal(root.kicked, 0, 'a VM that answered is never kicked (a kick would end its next run: a session)');
});

test('WAIT blocks until a peer writes, and a timed WAIT ends with ETIMEDOUT', async () => {
  let pipe = 0;
  let t0 = 0;
  const root = new FakeVm([
    (a) => { pipe = a.ret; return call(FB_CALL_WAIT, [20e6, 0, 0, 0]); },   // 20 ms, nothing named
    (a) => { assert.equal(a.ret, -110); assert.ok(Date.now() - t0 >= 15); return call(FB_CALL_FORK); },
    () => call(FB_CALL_WAIT, [-1, 1, 0, 0], pollEnt(pipe, 0, 1)),
    (a) => { assert.equal(a.ret, 0); assert.equal(a.data.readUInt16LE(0) & 1, 1, 'POLLIN'); return call(FB_CALL_POLL, [1], pollEnt(pipe, 0, 1)); },
    (a) => { assert.equal(a.ret, 1); return resp(FB_ST_DONE); },
  ], [[
    async () => { await new Promise((r) => setTimeout(r, 30)); return call(FB_CALL_PIPE_WRITE, [pipe], Buffer.from('x')); },
    () => call(FB_CALL_WAIT, [-1, 0, 0, 0]),   // waits for ever: ended with the group
  ]]);
  t0 = Date.now();
  const out = await new ProcessGroup(host(), limits()).run(root, call(FB_CALL_PIPE_NEW, [1, 1]));
  assert.equal(out.status, FB_ST_DONE);
});

test('kill: a signal reaches a waiting child in its answer; SIGKILL ends one at once', async () => {
  let seen = 0n, phase = 'fork2';
  const statuses = new Map<number, number>();
  const root = new FakeVm(loop((a) => {
    switch (phase) {
      case 'fork2': assert.equal(a.ret, 1000); phase = 'term'; return call(FB_CALL_FORK);
      case 'term': assert.equal(a.ret, 2000); phase = 'kill'; return call(FB_CALL_KILL, [1000, 15]);
      case 'kill': assert.equal(a.ret, 0); phase = 'reap'; return call(FB_CALL_KILL, [2000, 9]);
      case 'reap':
        if (a.ret > 0) statuses.set(a.ret, a.vals[0]!);
        if (statuses.size === 2) { phase = 'esrch'; return call(FB_CALL_KILL, [77777, 0]); }
        phase = 'waitpid'; return call(FB_CALL_WAITPID, [-1, 0]);
      case 'waitpid':
        if (a.ret > 0) { statuses.set(a.ret, a.vals[0]!); if (statuses.size === 2) { phase = 'esrch'; return call(FB_CALL_KILL, [77777, 0]); } }
        phase = 'reap'; return a.ret === 0 ? call(FB_CALL_WAIT, [-1, 0, 0, FB_WAIT_CHILD]) : call(FB_CALL_WAITPID, [-1, 0]);
      case 'esrch': assert.equal(a.ret, -3, 'ESRCH'); return resp(FB_ST_DONE);
    }
    throw new Error(phase);
  }), [
    [() => call(FB_CALL_WAIT, [-1, 0, 0, 0]), (a) => { seen = a.signals; return resp(FB_ST_EXIT, { exitCode: 128 + 15, outFlags: FB_EXIT_SIGNALED }); }],
    [() => call(FB_CALL_WAIT, [-1, 0, 0, 0])],
  ]);
  const out = await new ProcessGroup(host(), limits()).run(root, call(FB_CALL_FORK));
  assert.equal(out.status, FB_ST_DONE);
  assert.equal(seen, 1n << 14n, 'SIGTERM');
  assert.equal(statuses.get(1000), 15, 'ended by its SIGTERM');
  assert.equal(statuses.get(2000), 9, 'ended by SIGKILL');
});

test('a group where every process waits for ever: the first one is told EDEADLK, with a note on stderr', async () => {
  const root = new FakeVm([
    () => call(FB_CALL_WAIT, [-1, 0, 0, 0]),
    (a) => { assert.equal(a.ret, -35); return resp(FB_ST_EXIT, { exitCode: 134 }); },
  ], [[() => call(FB_CALL_WAIT, [-1, 0, 0, 0])]]);
  const out = await new ProcessGroup(host(), limits()).run(root, call(FB_CALL_FORK));
  assert.equal(out.status, FB_ST_EXIT);
  assert.match(out.stderr.toString(), /deadlock: 2 process/);
});

test('the process cap and the memory budget refuse a fork with EAGAIN; a host without processes says ENOSYS', async () => {
  for (const h of [host({ maxProcesses: 1 }), host({ charge: () => { throw new Error('budget'); } })]) {
    const root = new FakeVm([(a) => { assert.equal(a.ret, -11); return resp(FB_ST_DONE); }]);
    await new ProcessGroup(h, limits()).run(root, call(FB_CALL_FORK));
    assert.equal(root.answers.length, 1);
  }
  const root = new FakeVm([(a) => { assert.equal(a.ret, -38); return resp(FB_ST_DONE); }]);
  await new ProcessGroup(host({ maxProcesses: 0 }), limits()).run(root, call(FB_CALL_FORK));
});

test('hostile calls get EINVAL or EPIPE, never a host error', async () => {
  const bad = resp(FB_ST_CALL, { result: Buffer.alloc(10) });
  const over = call(FB_CALL_PIPE_READ, [1, 1]); over.result.writeBigUInt64LE(1n << 40n, 56); // data_len past the area
  const root = new FakeVm([
    (a) => { assert.equal(a.ret, -22); return over; },
    (a) => { assert.equal(a.ret, -22); return call(FB_CALL_PIPE_READ, [12345, 10]); },
    (a) => { assert.equal(a.ret, -22); return call(FB_CALL_PIPE_NEW, [1, 0]); },
    (a) => call(FB_CALL_PIPE_WRITE, [a.ret], Buffer.from('x')),       // we hold no write end
    () => call(FB_CALL_PIPE_NEW, [0, 1]),
    (a) => call(FB_CALL_PIPE_WRITE, [a.ret], Buffer.from('x')),       // no reader
    (a) => { assert.equal(a.ret, -32); return call(FB_CALL_WAIT, [-1, 5000, 0, 0]); },  // entries it did not send
    (a) => { assert.equal(a.ret, -22); return call(FB_CALL_SHM_SHARE, [4097, 4096, 0, 0]); },
    (a) => { assert.equal(a.ret, -22); return call(99); },
    (a) => { assert.equal(a.ret, -38); return resp(FB_ST_DONE); },
  ]);
  const out = await new ProcessGroup(host(), limits()).run(root, bad);
  assert.equal(out.status, FB_ST_DONE);
  assert.equal(root.answers.length, 10);
});

test('shared memory: a new object copies the range in, a WAIT on its word ends at a peer FUTEX_WAKE or a changed value', async () => {
  const h = host();
  let key = 0;
  const root = new FakeVm([
    (a) => { key = a.ret; assert.equal(key, 1); return call(FB_CALL_FORK); },
    () => call(FB_CALL_WAIT, [-1, 0, 1, 0], futexEnt(key, 0, 0)),
    (a) => { assert.equal(a.ret, 0); h.shms[0]!.buf.writeUInt32LE(7, 4); return call(FB_CALL_WAIT, [-1, 0, 1, 0], futexEnt(key, 4, 0)); },
    (a) => { assert.equal(a.ret, 0, 'the word already differs'); return call(FB_CALL_SHM_SHARE, [0x900000, 8192, key, 4096]); },
    (a) => { assert.equal(a.ret, key); assert.equal(h.shms[0]!.size, 12288, 'grown to offset + length'); return resp(FB_ST_DONE); },
  ], [[
    async () => { await new Promise((r) => setTimeout(r, 20)); return call(FB_CALL_FUTEX_WAKE, [key, 0, 1, -1 >>> 0]); },
    (a) => { assert.equal(a.ret, 1, 'one waiter woken'); return resp(FB_ST_EXIT); },
  ]]);
  const out = await new ProcessGroup(h, limits()).run(root, call(FB_CALL_SHM_SHARE, [0x800000, 4096, 0, 0]));
  assert.equal(out.status, FB_ST_DONE);
  assert.deepEqual(root.shares[0], [0x800000, 4096, 0, true]);
  assert.deepEqual(root.shares[1], [0x900000, 8192, 4096, false]);
  assert.ok(h.shms[0]!.closed, 'objects are released with the group');
});

test('output caps hold across processes; the deadline ends a group that waits for ever', async () => {
  const root = new FakeVm([
    () => call(FB_CALL_WAIT, [-1, 0, 0, 0], Buffer.alloc(0), { stdout: Buffer.alloc(8, 'b') }),
    (a) => { assert.equal(a.ret, -110); return resp(FB_ST_DONE); },
    () => resp(FB_ST_DONE, { outcome: 'timeout', outcomeCode: 8 }),
  ], [[() => call(FB_CALL_WAIT, [5e9, 0, 0, 0])]]);
  const g = new ProcessGroup(host(), { deadline: Date.now() + 60, outCap: 10, errCap: 10 });
  const out = await g.run(root, call(FB_CALL_FORK, [], Buffer.alloc(0), { stdout: Buffer.alloc(6, 'a') }));
  assert.equal(out.stdout.toString(), 'aaaaaabbbb');
  assert.ok(out.outFlags & FB_OUT_TRUNCATED);
  assert.equal(out.outcome, 'timeout');
});

test('parseCall and encodeAnswer round-trip; a short RESULT is malformed', () => {
  const c = parseCall(call(FB_CALL_KILL, [5, 9], Buffer.from('ab')).result)!;
  assert.equal(c.nr, FB_CALL_KILL);
  assert.equal(c.args[0], 5n);
  assert.equal(c.data.toString(), 'ab');
  assert.equal(parseCall(Buffer.alloc(63)), null);
  const a = decodeAnswer(encodeAnswer(-4, [1, 2], 3n, Buffer.from('z')));
  assert.deepEqual([a.ret, a.vals[0], a.vals[1], a.signals, a.data.toString()], [-4, 1, 2, 3n, 'z']);
});
