// processes.test.ts — guest processes on real /dev/kvm: every os.fork() is a live fork of
// the calling VM (docs/processes.md). Pipes across processes, waitpid and exit statuses,
// signals between processes, multiprocessing (fork and spawn contexts) and
// concurrent.futures.ProcessPoolExecutor, shared semaphores, the process cap, the
// deadline ending every process, sessions, and nothing left behind (VMs, budget).
// Needs /dev/kvm and the guest runtime; otherwise prints one "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runtimeElf } from '../../src/lib/paths.js';
import { probe, stats } from '../../src/vmm/vmm.js';
import { createEngine, type ForkboxEngine } from '../../src/engine/index.js';
import type { ExecResult } from '../../src/engine/types.js';
import { setLogLevel } from '../../src/lib/log.js';

const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: process tests: ${!p.available ? p.reason : 'guest runtime not built (npm install)'}\n`);
} else {
  describe('guest processes', { timeout: 1_800_000 }, () => {
    let engine: ForkboxEngine;
    before(async () => {
      if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('error');
      engine = await createEngine({ poolSize: 4, memLimitMb: 256, warmForks: 1, onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
    }, { timeout: 1_800_000 });
    after(async () => { await engine?.close(1000); });

    const run = (code: string, timeoutSeconds = 60): Promise<ExecResult> =>
      engine.exec({ code, language: 'python', timeoutSeconds });
    const ok = (r: ExecResult): void => {
      assert.equal(r.outcome, 'exited', `outcome ${r.outcome}: ${r.crash ?? ''}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
      assert.equal(r.exitCode, 0, `exit ${r.exitCode}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
    };
    /** Live VMs settle back to the warm pool's after an exec (children are torn down on the reaper). */
    const settled = async (before: number): Promise<void> => {
      for (let i = 0; i < 300 && stats().vmsLive > before; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok(stats().vmsLive <= before, `VMs left behind: ${stats().vmsLive} live, ${before} before`);
    };

    test('os.fork: the child is a copy, its pid is its own, a pipe carries bytes back, waitpid gets its exit code', async () => {
      const r = await run(`
import os
r, w = os.pipe()
x = 41
pid = os.fork()
if pid == 0:
    os.close(r)
    x += 1
    os.write(w, f"child pid={os.getpid()} ppid={os.getppid()} x={x}".encode())
    os._exit(7)
os.close(w)
data = b""
while True:
    b = os.read(r, 100)
    if not b: break
    data += b
got, status = os.waitpid(pid, 0)
print(data.decode())
print("parent", os.getpid(), "x", x, "child", pid == got, "code", os.waitstatus_to_exitcode(status))
`);
      ok(r);
      const [child, parent] = r.stdout.trim().split('\n');
      assert.match(child!, /^child pid=(\d+) ppid=(\d+) x=42$/);
      const m = /pid=(\d+) ppid=(\d+)/.exec(child!)!;
      assert.notEqual(m[1], m[2]);
      assert.match(parent!, new RegExp(`^parent ${m[2]} x 41 child True code 7$`));
    });

    test('the child writes to the same stdout and stderr; memory written after the fork stays private', async () => {
      const r = await run(`
import os, sys
buf = bytearray(b"a" * 1000000)
pid = os.fork()
if pid == 0:
    buf[0:5] = b"child"
    print("from child", bytes(buf[:5]), flush=True)
    print("child err", file=sys.stderr, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print("from parent", bytes(buf[:5]))
`);
      ok(r);
      assert.match(r.stdout, /from child b'child'/);
      assert.match(r.stdout, /from parent b'aaaaa'/);
      assert.match(r.stderr, /child err/);
      assert.ok(r.stdout.indexOf('from child') < r.stdout.indexOf('from parent'), 'output in the order it was written');
    });

    test('signals: SIGTERM ends a waiting child (status says so), a handler in the child runs, SIGKILL cannot be caught', async () => {
      const r = await run(`
import os, signal, time
r, w = os.pipe()
idle_r, idle_w = os.pipe()
a = os.fork()
if a == 0:
    os.read(idle_r, 1)     # blocks: nobody writes to this one
    os._exit(0)
b = os.fork()
if b == 0:
    def h(sig, frame):
        os.write(w, b"H")
        os._exit(5)
    signal.signal(signal.SIGUSR1, h)
    os.write(w, b"R")
    while True: time.sleep(0.01)
assert os.read(r, 1) == b"R"
os.kill(a, signal.SIGTERM)
os.kill(b, signal.SIGUSR1)
_, sa = os.waitpid(a, 0)
_, sb = os.waitpid(b, 0)
print(os.WIFSIGNALED(sa), os.WTERMSIG(sa) == signal.SIGTERM, os.read(r, 1), os.waitstatus_to_exitcode(sb))
c = os.fork()
if c == 0:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    while True: time.sleep(0.01)
os.kill(c, signal.SIGKILL)
_, sc = os.waitpid(c, 0)
print(os.WTERMSIG(sc) == signal.SIGKILL)
try:
    os.kill(999999, 0)
except ProcessLookupError:
    print("ESRCH")
`);
      ok(r);
      assert.equal(r.stdout, "True True b'H' 5\nTrue\nESRCH\n");
    });

    test('multiprocessing (fork): Pool.map, Queue, Lock and Value across processes', async () => {
      const r = await run(`
import multiprocessing as mp
def sq(x): return x * x
def bump(lock, v, n):
    for _ in range(n):
        with lock:
            v.value += 1
if __name__ == "__main__" or True:
    ctx = mp.get_context("fork")
    with ctx.Pool(3) as pool:
        print(pool.map(sq, range(10)))
    q = ctx.Queue()
    ps = [ctx.Process(target=q.put, args=(i,)) for i in range(4)]
    for p in ps: p.start()
    got = sorted(q.get(timeout=20) for _ in ps)
    for p in ps: p.join()
    print(got, [p.exitcode for p in ps])
    lock, v = ctx.Lock(), ctx.Value("i", 0)
    ps = [ctx.Process(target=bump, args=(lock, v, 200)) for _ in range(3)]
    for p in ps: p.start()
    for p in ps: p.join()
    print(v.value)
`, 120);
      ok(r);
      assert.equal(r.stdout, '[0, 1, 4, 9, 16, 25, 36, 49, 64, 81]\n[0, 1, 2, 3] [0, 0, 0, 0]\n600\n');
    });

    test('concurrent.futures.ProcessPoolExecutor (fork): map, an exception from a worker, a worker that dies', async () => {
      const r = await run(`
import concurrent.futures as cf, multiprocessing as mp, os
def f(x): return x + 1
def boom(x): raise ValueError(f"bad {x}")
def die(x): os._exit(3)
ctx = mp.get_context("fork")
with cf.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ex:
    print(list(ex.map(f, range(8))))
    try:
        ex.submit(boom, 4).result(timeout=30)
    except ValueError as e:
        print("raised", e)
with cf.ProcessPoolExecutor(max_workers=2, mp_context=ctx) as ex:
    try:
        ex.submit(die, 1).result(timeout=30)
    except cf.process.BrokenProcessPool:
        print("broken")
`, 120);
      ok(r);
      assert.equal(r.stdout, '[1, 2, 3, 4, 5, 6, 7, 8]\nraised bad 4\nbroken\n');
    });

    test('multiprocessing spawn: a child interpreter started by execve runs a function by reference', async () => {
      const r = await run(`
import multiprocessing as mp, sys
ctx = mp.get_context("spawn")
with ctx.Pool(2) as pool:
    print(pool.map(abs, [-1, -2, 3]))
`, 120);
      ok(r);
      assert.equal(r.stdout, '[1, 2, 3]\n');
    });

    test('a fork bomb ends in EAGAIN at the process cap, and the exec still answers', async () => {
      const capped = await createEngine({ poolSize: 2, memLimitMb: 256, warmForks: 0, maxProcesses: 8 });
      await capped.ready();
      const live = stats().vmsLive;
      const r = await capped.exec({ language: 'python', timeoutSeconds: 120, code: `
import os, time
n = 0
kids = []
try:
    while True:
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        kids.append(pid)
except BlockingIOError as e:
    print("EAGAIN after", len(kids))
` });
      try {
        ok(r);
        const m = /^EAGAIN after (\d+)\n$/.exec(r.stdout);
        assert.ok(m, r.stdout + r.stderr);
        assert.equal(Number(m[1]), 7, 'the cap is 8 processes, the first included');
        await settled(live);
      } finally {
        await capped.close(1000);
      }
    });

    test('the deadline ends every process; nothing is left behind', async () => {
      const live = stats().vmsLive;
      const r = await run(`
import os, time
for _ in range(3):
    if os.fork() == 0:
        while True: pass
time.sleep(100)
`, 2);
      assert.equal(r.outcome, 'timeout');
      await settled(live);
      const again = await run('print(1+1)');
      ok(again);
      assert.equal(again.stdout, '2\n');
    });

    test('a session forks processes; its state and files are still there afterwards', async () => {
      const s = await engine.createSession({ owner: 't', language: 'python' });
      try {
        let r = await engine.execSession('t', s.id, { language: 'python', timeoutSeconds: 60, code: 'import os\nx = 5\nopen("f.txt", "w").write("kept")' });
        assert.equal(r.exitCode, 0, r.stderr);
        r = await engine.execSession('t', s.id, { language: 'python', timeoutSeconds: 60, code: `
pid = os.fork()
if pid == 0:
    os._exit(x)
print(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
` });
        assert.equal(r.exitCode, 0, r.stderr);
        assert.equal(r.stdout, '5\n');
        r = await engine.execSession('t', s.id, { language: 'python', timeoutSeconds: 60, code: 'print(x, open("f.txt").read())' });
        assert.equal(r.stdout, '5 kept\n');
      } finally {
        await engine.deleteSession('t', s.id);
      }
    });
  });
}
