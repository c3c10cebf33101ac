// python-exec.test.ts — acceptance of the Python template through the engine:
// output, numpy, stdlib imports, per-fork isolation and uniqueness, clock,
// exit codes, output sizes and truncation, timeout, memory limit, subprocesses,
// cancellation, a sub-millisecond timeout that still ends the run. Builds (or
// reuses) the template in `before`.
// Needs /dev/kvm and the guest runtime; otherwise prints one "skipped:" line.
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
  process.stdout.write(`skipped: python e2e tests: ${!p.available ? p.reason : 'guest runtime not built (npm install)'}\n`);
} else {
  describe('python template', { timeout: 1_800_000 }, () => {
    let engine: ForkboxEngine;
    before(async () => {
      if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
      engine = await createEngine({ poolSize: 4, workers: 2, memLimitMb: 256,
        onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
    }, { timeout: 1_800_000 });
    after(async () => {
      await engine?.close(1000);
    });
    const run = (code: string, timeoutSeconds = 20, extra: Record<string, unknown> = {}): Promise<ExecResult> =>
      engine.exec({ code, language: 'python', timeoutSeconds, ...extra });
    const ok = (r: ExecResult): void => {
      assert.equal(r.outcome, 'exited', `outcome ${r.outcome}: ${r.crash ?? ''} ${r.stderr}`);
      assert.equal(r.exitCode, 0, `exit ${r.exitCode}; stderr: ${r.stderr}`);
    };

    test('print(1+1)', async () => {
      const r = await run('print(1+1)');
      ok(r);
      assert.equal(r.stdout, '2\n');
      assert.equal(r.stderr, '');
      assert.match(r.id, /^exec_/);
      assert.ok(r.forkTimeMs >= 0 && r.execTimeMs > 0 && r.totalTimeMs >= r.execTimeMs);
    });

    test('numpy: random numbers and arange mean', async () => {
      const r = await run('import numpy as np\nx = np.random.rand(5)\nprint(((x >= 0) & (x < 1)).all(), len(set(x.tolist())))\nprint(np.arange(10).mean())');
      ok(r);
      assert.equal(r.stdout, 'True 5\n4.5\n');
    });

    test('json.dumps', async () => {
      const r = await run('import json\nprint(json.dumps({"a": [1, 2.5, None, True], "b": "é"}, sort_keys=True))');
      ok(r);
      assert.equal(r.stdout, '{"a": [1, 2.5, null, true], "b": "\\u00e9"}\n');
    });

    test('modules that are not preloaded import and work', async () => {
      const code = [
        'import json, decimal, fractions, statistics, csv, re, datetime, pathlib, tempfile, hashlib, zlib, io',
        'print(decimal.Decimal("1.1") + decimal.Decimal("2.2"))',
        'print(fractions.Fraction(1, 3) + fractions.Fraction(1, 6))',
        'print(statistics.median([3, 1, 2]))',
        'print(next(csv.reader(io.StringIO("a,b,c"))))',
        'print(re.sub(r"\\d+", "#", "a1b22"))',
        'print(datetime.date(2024, 2, 29).isoformat())',
        'print(pathlib.PurePosixPath("/a/b/c.txt").suffix)',
        'print(hashlib.sha256(b"abc").hexdigest()[:16])',
        'print(len(zlib.compress(b"x" * 1000)) < 100)',
        'd = tempfile.mkdtemp(); print(d.startswith("/tmp"))',
      ].join('\n');
      const r = await run(code);
      ok(r);
      assert.equal(r.stdout, '3.3\n1/2\n2\n[\'a\', \'b\', \'c\']\na#b#\n2024-02-29\n.txt\nba7816bf8f01cfea\nTrue\nTrue\n');
    });

    test('file locks: F_GETLK reports no conflicting lock, lockf succeeds', async () => {
      const code = [
        'import fcntl, struct, os',
        'fd = os.open("/tmp/lock", os.O_RDWR | os.O_CREAT)',
        'r = fcntl.fcntl(fd, fcntl.F_GETLK, struct.pack("hhqqi", fcntl.F_WRLCK, 0, 0, 0, 0))',
        'print(struct.unpack("hhqqi", r)[0] == fcntl.F_UNLCK)',
        'fcntl.lockf(fd, fcntl.LOCK_EX); print("locked")',
      ].join('\n');
      const r = await run(code);
      ok(r);
      assert.equal(r.stdout, 'True\nlocked\n');
    });

    test('shutil.copytree/copy2 work; xattrs: none stored, honest errors', async () => {
      const code = [
        'import shutil, tempfile, os, errno',
        'd = tempfile.mkdtemp(); open(d + "/a", "w").write("x")',
        'shutil.copytree(d, d + "2"); print(os.listdir(d + "2"))',
        'shutil.copy2(d + "/a", d + "/b"); print(open(d + "/b").read())',
        'print(os.listxattr(d + "/a"))',
        'try: os.getxattr(d + "/a", "user.k")',
        'except OSError as e: print(e.errno == errno.ENODATA)',
        'try: os.setxattr(d + "/a", "user.k", b"v")',
        'except OSError as e: print(e.errno == errno.EOPNOTSUPP)',
        'try: os.listxattr("/nope")',
        'except OSError as e: print(e.errno == errno.ENOENT)',
      ].join('\n');
      const r = await run(code);
      ok(r);
      assert.equal(r.stdout, "['a']\nx\n[]\nTrue\nTrue\nTrue\n");
    });

    test('/tmp: written and read in one exec, gone in the next fork', async () => {
      const r1 = await run('open("/tmp/forkbox-test.txt", "w").write("hello")\nprint(open("/tmp/forkbox-test.txt").read())');
      ok(r1);
      assert.equal(r1.stdout, 'hello\n');
      const r2 = await run('import os\nprint(os.path.exists("/tmp/forkbox-test.txt"))');
      ok(r2);
      assert.equal(r2.stdout, 'False\n');
    });

    test('20 forks: distinct random, urandom, numpy and uuid values', async () => {
      const code = 'import random, os, uuid\nimport numpy as np\nprint(random.random(), os.urandom(8).hex(), np.random.rand(), uuid.uuid4())';
      const rs = await Promise.all(Array.from({ length: 20 }, () => run(code)));
      const rows = rs.map((r) => { ok(r); return r.stdout.trim().split(' '); });
      for (let col = 0; col < 4; col++) {
        const vals = new Set(rows.map((row) => row[col]));
        assert.equal(vals.size, 20, `column ${col} repeats: ${[...vals].join(',')}`);
      }
    });

    test('time.time() is within 1 s of the host clock', async () => {
      const before = Date.now() / 1000;
      const r = await run('import time\nprint(repr(time.time()))');
      const afterT = Date.now() / 1000;
      ok(r);
      const t = Number(r.stdout);
      assert.ok(t >= before - 1 && t <= afterT + 1, `guest ${t}, host ${before}..${afterT}`);
    });

    test('exit codes: sys.exit(3), an uncaught exception, os._exit(7)', async () => {
      const a = await run('import sys\nsys.exit(3)');
      assert.equal(a.outcome, 'exited');
      assert.equal(a.exitCode, 3);
      const b = await run('def f():\n    raise ValueError("boom")\nf()');
      assert.equal(b.outcome, 'exited');
      assert.equal(b.exitCode, 1);
      assert.match(b.stderr, /Traceback \(most recent call last\):[\s\S]*ValueError: boom/);
      const c = await run('import os\nprint("before", flush=True)\nos._exit(7)');
      assert.equal(c.outcome, 'exited');
      assert.equal(c.exitCode, 7);
      assert.equal(c.stdout, 'before\n');
    });

    test('stdin and env reach the program', async () => {
      const r = await run('import sys, os\nprint(sys.stdin.read().upper(), os.environ["FOO"])', 20, { stdin: 'abc', env: { FOO: 'bar' } });
      ok(r);
      assert.equal(r.stdout, 'ABC bar\n');
    });

    test('1 MiB of stdout arrives whole', async () => {
      const r = await run('import sys\nsys.stdout.write("x" * (1 << 20))', 20, { stdoutCap: 2 << 20 });
      ok(r);
      assert.equal(r.stdout.length, 1 << 20);
      assert.equal(r.stdoutTruncated, false);
    });

    test('50 MiB of stdout is truncated at the cap, with the flag, promptly', async () => {
      const t0 = performance.now();
      const r = await run('import sys\nchunk = "y" * (1 << 20)\nfor _ in range(50):\n    sys.stdout.write(chunk)\nprint("done", file=sys.stderr)', 30);
      const el = performance.now() - t0;
      ok(r);
      assert.equal(r.stdoutTruncated, true);
      assert.equal(r.stdout.length, 1 << 20); // the engine's default cap
      assert.ok(el < 10_000, `took ${el} ms`);
    });

    test('while True: pass ends at the timeout', async () => {
      const t0 = performance.now();
      const r = await run('while True:\n    pass', 1);
      const el = performance.now() - t0;
      assert.equal(r.outcome, 'timeout');
      assert.equal(r.exitCode, 124);
      assert.match(r.stderr, /timed out after 1 s/);
      assert.ok(el >= 900 && el < 5000, `took ${el} ms`);
    });

    test('allocating past the memory limit: MemoryError or a clear crash; the host is fine', async () => {
      const r = await run('x = []\nwhile True:\n    x.append(bytearray(16 << 20))', 30);
      if (r.outcome === 'exited') {
        assert.equal(r.exitCode, 1);
        assert.match(r.stderr, /MemoryError/);
      } else {
        assert.equal(r.outcome, 'crashed', `outcome ${r.outcome}`);
        assert.ok(r.crash && r.crash.length > 0);
      }
      const again = await run('print("alive")');
      assert.equal(again.stdout, 'alive\n');
    });

    test('subprocesses raise a Python exception quickly (threads: python-threads.test.ts)', async () => {
      const t0 = performance.now();
      const r = await run([
        'import subprocess',
        'try:\n    subprocess.run(["true"])\n    print("subprocess ran")\nexcept Exception as e:\n    print("subprocess:", type(e).__name__)',
      ].join('\n'), 20);
      ok(r);
      assert.match(r.stdout, /^subprocess: \w+\n$/);
      assert.ok(performance.now() - t0 < 5000);
    });

    test('an abort signal cancels an exec', async () => {
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 300);
      const r = await engine.exec({ code: 'while True:\n    pass', language: 'python', timeoutSeconds: 30 }, ac.signal);
      assert.equal(r.outcome, 'cancelled');
    });

    test('a sandbox keeps its fork between execs until closed', async () => {
      const sb = await engine.sandbox();
      try {
        const a = await sb.exec({ code: 'open("/tmp/state", "w").write("kept")', language: 'python', timeoutSeconds: 10 });
        ok(a);
        const b = await sb.exec({ code: 'print(open("/tmp/state").read())', language: 'python', timeoutSeconds: 10 });
        ok(b);
        assert.equal(b.stdout, 'kept\n');
        assert.equal(engine.health().liveForks, 1);
      } finally {
        sb.close();
      }
      assert.equal(engine.health().liveForks, 0);
      const c = await run('import os\nprint(os.path.exists("/tmp/state"))');
      assert.equal(c.stdout, 'False\n');
    });

    test('pre-warmed forks: each serves one exec, with its own randomness and a current clock', async () => {
      const seen = new Set<string>();
      const taken0 = engine.warmStats()?.taken ?? 0;
      for (let i = 0; i < 6; i++) {
        await new Promise((r) => setTimeout(r, 400)); // let the warm pool refill
        const t0 = Date.now() / 1000;
        const r = await run('import os, time, random\nopen("/tmp/w", "a").write("x")\nprint(os.urandom(8).hex(), random.random(), len(open("/tmp/w").read()), time.time())');
        ok(r);
        const [hex, rnd, len, t] = r.stdout.trim().split(' ');
        seen.add(`${hex}`);
        seen.add(`${rnd}`);
        assert.equal(len, '1', 'a fork never sees an earlier exec\'s files');
        assert.ok(Math.abs(Number(t) - t0) < 1, `clock ${t} vs ${t0}`);
      }
      assert.equal(seen.size, 12);
      const st = engine.warmStats();
      assert.ok(st && st.taken - taken0 >= 4, `warm forks used: ${JSON.stringify(st)}`);
    });

    test('close(grace) lets short execs finish and cancels the rest', async () => {
      const e2 = await createEngine({ poolSize: 0, warmForks: 0, workers: 2 });
      await e2.ready();
      const quick = e2.exec({ code: 'print("quick")', language: 'python', timeoutSeconds: 10 });
      const stuck = e2.exec({ code: 'while True:\n    pass', language: 'python', timeoutSeconds: 60 });
      await new Promise((r) => setTimeout(r, 200));
      const t0 = performance.now();
      await e2.close(2000);
      assert.ok(performance.now() - t0 < 8000);
      assert.equal((await quick).stdout, 'quick\n');
      assert.equal((await stuck).outcome, 'cancelled');
      await assert.rejects(e2.exec({ code: 'pass', language: 'python', timeoutSeconds: 1 }), (e: { code?: string }) => e.code === 'ShuttingDown');
    });

    test('a timeout below 1 ms still ends the run: 0.0001 s rounds up to 1 ms, never to "no deadline"', { timeout: 60_000 }, async () => {
      const t0 = performance.now();
      const r = await run('while True: pass', 0.0001);
      const ms = performance.now() - t0;
      assert.equal(r.outcome, 'timeout', `${r.outcome} ${r.crash ?? ''}`);
      assert.equal(r.exitCode, 124);
      assert.ok(ms < 30_000, `answered after ${ms} ms`);
      assert.equal((await run('print(6*7)')).stdout, '42\n');
    });

    test('health reports a ready template and a pool', () => {
      const h = engine.health();
      assert.equal(h.ready, true);
      assert.equal(h.templates.python?.ready, true);
      assert.equal(h.pool.target, 4);
      assert.equal(h.inFlight, 0);
    });
  });
}
