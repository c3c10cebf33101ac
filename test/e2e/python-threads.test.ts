// python-threads.test.ts — threads in the guest runtime through the engine:
// threading's primitives, queue, Timer, ThreadPoolExecutor, asyncio.to_thread,
// blocking pipe reads and select across threads, a CPU-bound thread beside
// waiting ones (preemption), deadlocks ending with a clear error instead of the
// timeout, and single-threaded code unchanged. Needs /dev/kvm and the runtime.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runtimeElf } from '../../src/lib/paths.js';
import { probe } from '../../src/vmm/vmm.js';
import { createEngine, type ForkboxEngine } from '../../src/engine/index.js';
import type { ExecResult } from '../../src/engine/types.js';
import { setLogLevel } from '../../src/lib/log.js';

const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: python threads e2e tests: ${!p.available ? p.reason : 'guest runtime not built (npm install)'}\n`);
} else {
  describe('python threads', { timeout: 1_800_000 }, () => {
    let engine: ForkboxEngine;
    before(async () => {
      if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
      engine = await createEngine({ poolSize: 2, workers: 2, memLimitMb: 256,
        onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
    }, { timeout: 1_800_000 });
    after(async () => {
      await engine?.close(1000);
    });
    const run = (code: string, timeoutSeconds = 30): Promise<ExecResult> =>
      engine.exec({ code, language: 'python', timeoutSeconds });
    const ok = (r: ExecResult): void => {
      assert.equal(r.outcome, 'exited', `outcome ${r.outcome}: ${r.crash ?? ''} ${r.stderr}`);
      assert.equal(r.exitCode, 0, `exit ${r.exitCode}; stderr: ${r.stderr}`);
    };

    test('Thread, Lock, distinct native ids', async () => {
      const r = await run([
        'import threading',
        'lock = threading.Lock(); n = [0]; ids = set()',
        'def work():',
        '    ids.add(threading.get_native_id())',
        '    for _ in range(1000):',
        '        with lock: n[0] += 1',
        'ts = [threading.Thread(target=work) for _ in range(4)]',
        'for t in ts: t.start()',
        'for t in ts: t.join()',
        'print(n[0], len(ids), threading.get_native_id() not in ids, threading.active_count())',
      ].join('\n'));
      ok(r);
      assert.equal(r.stdout, '4000 4 True 1\n');
    });

    test('Condition, Event, queue.Queue, Timer', async () => {
      const r = await run([
        'import threading, queue, time',
        'q = queue.Queue(); got = []; done = threading.Event()',
        'def prod():',
        '    for i in range(20): q.put(i)',
        '    q.put(None)',
        'def cons():',
        '    while (x := q.get()) is not None: got.append(x)',
        '    done.set()',
        'a = threading.Thread(target=prod); b = threading.Thread(target=cons); b.start(); a.start()',
        'print("event", done.wait(10)); a.join(); b.join(); print(got == list(range(20)))',
        'c = threading.Condition(); state = []',
        'def notifier():',
        '    with c: state.append(1); c.notify_all()',
        'with c:',
        '    threading.Thread(target=notifier).start()',
        '    print("cond", bool(c.wait_for(lambda: state, timeout=10)))',
        'fired = []; t0 = time.monotonic()',
        'tm = threading.Timer(0.05, lambda: fired.append(time.monotonic() - t0)); tm.start(); tm.join()',
        'print("timer", len(fired), fired[0] >= 0.05)',
        'e = threading.Event(); t0 = time.monotonic(); print("wait timeout", e.wait(0.05), time.monotonic() - t0 >= 0.05)',
      ].join('\n'));
      ok(r);
      assert.equal(r.stdout, 'event True\nTrue\ncond True\ntimer 1 True\nwait timeout False True\n');
    });

    test('ThreadPoolExecutor.map and asyncio.to_thread', async () => {
      const r = await run([
        'import concurrent.futures, asyncio, time',
        'def sq(x):',
        '    time.sleep(0.001)',
        '    return x * x',
        'with concurrent.futures.ThreadPoolExecutor(4) as ex: print(list(ex.map(sq, range(10))))',
        'async def main():',
        '    return await asyncio.gather(asyncio.to_thread(sum, [1, 2, 3]), asyncio.to_thread(sq, 7))',
        'print(asyncio.run(main()))',
      ].join('\n'));
      ok(r);
      assert.equal(r.stdout, '[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n[6, 49]\n');
    });

    test('a blocking pipe read and select wait for a writer thread', async () => {
      const r = await run([
        'import os, select, socket, threading, time',
        'r, w = os.pipe()',
        'threading.Thread(target=lambda: (time.sleep(0.02), os.write(w, b"hi"))).start()',
        'print(os.read(r, 10))',
        'threading.Thread(target=lambda: (time.sleep(0.02), os.write(w, b"sel"))).start()',
        'print(select.select([r], [], [], 10)[0] == [r], os.read(r, 10))',
        'a, b = socket.socketpair()',
        'threading.Thread(target=lambda: b.sendall(b"x" * 200000)).start()',
        'n = 0',
        'while n < 200000: n += len(a.recv(65536))',
        'print(n)',
      ].join('\n'));
      ok(r);
      assert.equal(r.stdout, "b'hi'\nTrue b'sel'\n200000\n");
    });

    test('a CPU-bound thread beside sleeping and queue-waiting ones: all make progress (preemption)', async () => {
      const r = await run([
        'import threading, time, queue',
        'stop = False; spins = [0]; seen = []; q = queue.Queue(); got = []',
        'def cpu():',
        '    while not stop: spins[0] += 1',
        'def sleeper():',
        '    for _ in range(5):',
        '        time.sleep(0.02); seen.append(spins[0])',
        'def feeder():',
        '    for i in range(5): time.sleep(0.01); q.put(i)',
        'def eater():',
        '    for _ in range(5): got.append(q.get(timeout=20))',
        'ts = [threading.Thread(target=f) for f in (cpu, sleeper, feeder, eater)]',
        'for t in ts: t.start()',
        'for t in ts[1:]: t.join()',
        'stop = True; ts[0].join()',
        'print(len(seen), seen[0] > 0, seen[-1] > seen[0], got)',
      ].join('\n'), 60);
      ok(r);
      assert.equal(r.stdout, '5 True True [0, 1, 2, 3, 4]\n');
    });

    test('deadlocks end the exec with a clear error, not the timeout', async () => {
      const t0 = performance.now();
      const one = await run('import threading\nl = threading.Lock()\nl.acquire()\nl.acquire()\nprint("unreachable")', 60);
      assert.equal(one.outcome, 'exited', `${one.outcome} ${one.stderr}`);
      assert.notEqual(one.exitCode, 0);
      assert.match(one.stderr, /forkbox: deadlock/);
      assert.equal(one.stdout, '');
      const two = await run([
        'import threading',
        'go = threading.Event()',
        'a = threading.Thread(target=lambda: (go.wait(), b.join())); b = threading.Thread(target=lambda: (go.wait(), a.join()))',
        'a.start(); b.start(); go.set(); a.join(); print("unreachable")',
      ].join('\n'), 60);
      assert.equal(two.outcome, 'exited', `${two.outcome} ${two.stderr}`);
      assert.notEqual(two.exitCode, 0);
      assert.match(two.stderr, /forkbox: deadlock: 3 thread/);
      // a loose bound far below the 2 x 60 s timeouts: the error came from the deadlock
      assert.ok(performance.now() - t0 < 60_000);
    });

    test('print(1+1) still answers, and a new fork after threaded execs', async () => {
      const r = await run('print(1+1)');
      ok(r);
      assert.equal(r.stdout, '2\n');
    });
  });
}
