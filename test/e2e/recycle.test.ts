// recycle.test.ts — recycled forks on real /dev/kvm are indistinguishable from
// fresh ones. VMM level: after ordinary and hostile python execs (writes all
// over the arena, the mailbox areas, files, threads), a recycle leaves no RAM
// page that differs from the template's memory file and no non-zero mailbox
// page, and a crashed, timed-out or exited fork is refused. Engine level:
// files, environment, cwd, globals, modules, stdin and RNG streams carry no
// trace of the previous exec, the clock is current, a state fingerprint equals
// a fresh fork's, unclean answers and sessions are never recycled, and the
// memory budget is back to the kept forks' shares.
// Needs /dev/kvm and the guest runtime; otherwise prints one "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runtimeElf } from '../../src/lib/paths.js';
import { Snapshot, probe, stats, type Vm } from '../../src/vmm/vmm.js';
import { FB_MAILBOX_SIZE, FB_REQ_EXEC, FB_ST_DONE, FB_ST_EXIT } from '../../src/vmm/abi.js';
import { createEngine, type ForkboxEngine } from '../../src/engine/index.js';
import type { ExecResult } from '../../src/engine/types.js';
import { setLogLevel } from '../../src/lib/log.js';

const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: recycle tests: ${!p.available ? p.reason : 'guest runtime not built (npm install)'}\n`);
} else {
  describe('recycled forks', { timeout: 1_800_000 }, () => {
    let engine: ForkboxEngine;
    let fresh: ForkboxEngine;
    before(async () => {
      if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('error');
      // One worker and no warm-up forks: every exec after the first runs in a recycled fork.
      engine = await createEngine({ poolSize: 2, workers: 1, memLimitMb: 256, warmForks: 0, recycle: true,
        onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      fresh = await createEngine({ poolSize: 2, workers: 1, memLimitMb: 256, warmForks: 0, recycle: false });
      await Promise.all([engine.ready(), fresh.ready()]);
    }, { timeout: 1_800_000 });
    after(async () => {
      await engine?.close(1000);
      await fresh?.close(1000);
    });

    const run = (code: string, extra: Record<string, unknown> = {}, e = engine): Promise<ExecResult> =>
      e.exec({ code, language: 'python', timeoutSeconds: 20, ...extra });
    const ok = (r: ExecResult): void => {
      assert.equal(r.outcome, 'exited', `outcome ${r.outcome}: ${r.crash ?? ''} ${r.stderr}`);
      assert.equal(r.exitCode, 0, `exit ${r.exitCode}; stderr: ${r.stderr}`);
    };
    /** Waits until the pool holds a recycled fork (the recycle runs after the answer). */
    const recycledReady = async (): Promise<void> => {
      for (let i = 0; i < 400 && (engine.warmStats()?.ready ?? 0) < 1; i++) await new Promise((r) => setTimeout(r, 10));
      assert.ok((engine.warmStats()?.ready ?? 0) >= 1, `no recycled fork: ${JSON.stringify(engine.warmStats())}`);
    };
    /** Runs `code` in a recycled fork (asserted through the pool's counters). */
    const runRecycled = async (code: string, extra: Record<string, unknown> = {}): Promise<ExecResult> => {
      await recycledReady();
      const taken = engine.warmStats()!.taken;
      const r = await run(code, extra);
      assert.equal(engine.warmStats()!.taken, taken + 1, 'the exec did not take a recycled fork');
      return r;
    };

    describe('VMM level: RAM and mailbox byte for byte', () => {
      let snap: Snapshot;
      before(() => {
        const t = engine.templateInfo('python')!;
        snap = new Snapshot(t.memPath, t.statePath);
      });
      after(() => snap?.close());
      const req = (code: string, timeoutMs = 30_000) => ({
        kind: FB_REQ_EXEC, payload: JSON.stringify({ code, env: { SECRET: 'tiger' }, stdin: 'stdin-secret' }),
        outCap: 1 << 20, errCap: 1 << 20, memLimit: 256 << 20, timeoutMs,
      });
      const fork = async (code: string, timeoutMs?: number): Promise<{ vm: Vm; status: number; outcome: string; stdout: string }> => {
        const r = await snap.forkRun(req(code, timeoutMs), { destroy: false }).done;
        assert.ok(r.vm);
        return { vm: r.vm, status: r.response.status, outcome: r.response.outcome, stdout: r.response.stdout.toString() };
      };

      const NORMAL = [
        'import os, random, numpy as np, threading',
        'open("/tmp/left-behind", "w").write("x" * 100000)',
        'os.environ["LEAK"] = "1"; os.chdir("/tmp")',
        'import builtins; builtins.leak = bytearray(30 << 20)',
        'threading.Thread(target=lambda: None).start()',
        'print(random.random(), np.random.rand(), os.urandom(8).hex())',
      ].join('\n');
      // Everything python can reach without killing the runtime: every arena gap,
      // the mailbox's stdout and stderr areas, then a clean exit.
      const HOSTILE = [
        'import ctypes, sys',
        'RAM = 640 << 20',
        'used = []',
        'for line in open("/proc/self/maps"):',
        '    a, b = (int(x, 16) for x in line.split()[0].split("-"))',
        '    if a < RAM: used.append((a, min(b, RAM)))',
        'at = 0x400000',
        'for a, b in sorted(used) + [(RAM, RAM)]:',
        '    if a > at: ctypes.memset(at, 0x5a, a - at)',
        '    at = max(at, b)',
        'ctypes.memset(0xC0000000 + 0x1000000, 0xa5, 16 << 20)',
        'ctypes.memset(0xC0000000 + 0x2000000, 0xa5, 16 << 20)',
        'sys.modules.clear()',
      ].join('\n');

      for (const [name, code] of [['an ordinary exec', NORMAL], ['a hostile exec that writes everywhere it can and exits 0', HOSTILE]] as const) {
        test(`after ${name}, no page differs from the template`, async () => {
          const { vm, status, outcome } = await fork(code);
          try {
            assert.equal(outcome, 'ok');
            assert.equal(status, FB_ST_DONE);
            const before = await vm.diffSnapshot();
            assert.ok(before.ramPagesDiffering > 50 && before.mailboxPagesNonZero > 0, `the exec changed nothing? ${JSON.stringify(before)}`);
            const st = await vm.recycle();
            assert.ok(st.ramPages >= before.ramPagesDiffering, JSON.stringify(st));
            const d = await vm.diffSnapshot();
            assert.deepEqual(d, { ramPagesDiffering: 0, mailboxPagesNonZero: 0 });
            // ...and it answers as a fresh fork does.
            const r = await vm.run(req('import os, builtins\nprint(os.path.exists("/tmp/left-behind"), "LEAK" in os.environ, hasattr(builtins, "leak"))'));
            assert.equal(r.status, FB_ST_DONE);
            assert.equal(r.stdout.toString(), 'False False False\n');
            process.stdout.write(`# ${name}: ${before.ramPagesDiffering} RAM pages differed, ${before.mailboxPagesNonZero} mailbox pages; recycle reset ${st.ramPages} pages (${st.restored} restored, ${st.dropped} dropped) in ${(st.ns / 1e6).toFixed(2)} ms\n`);
          } finally {
            vm.close();
          }
        });
      }

      test('a crashed, timed-out or exited fork is refused and left dead', async () => {
        const cases: Array<[string, number | undefined]> = [
          ['import ctypes\nctypes.memset(0x100000, 0xcc, 0x100000)', undefined],   // the runtime's code: a fault
          ['while True: pass', 300],                                              // timeout
          ['import os\nos._exit(0)', undefined],                                  // exit_group
        ];
        for (const [code, timeoutMs] of cases) {
          const { vm, status, outcome } = await fork(code, timeoutMs);
          try {
            assert.ok(outcome !== 'ok' || status === FB_ST_EXIT, `${code}: ${outcome} ${status}`);
            await assert.rejects(vm.recycle(), code);
            await assert.rejects(vm.run(req('print(1)')), /dead|EIO/);
          } finally {
            vm.close();
          }
        }
      });
    });

    describe('engine level: no trace of the previous exec', () => {
      test('files, environment, cwd, globals, modules and stdin', async () => {
        ok(await run('print(1)'));   // the first fork, recycled after this
        const r1 = await runRecycled([
          'import os, sys, builtins, json',
          'open("/tmp/trace", "w").write("secret")',
          'os.makedirs("/workspace/trace-dir", exist_ok=True)',
          'os.environ["TRACE"] = "1"',
          'os.chdir("/tmp")',
          'builtins.TRACE = 1',
          'global_trace = 1',
          'import email.mime.text',
          'print(sys.stdin.read())',
        ].join('\n'), { stdin: 'stdin-secret', env: { PASSED: 'yes' } });
        ok(r1);
        assert.equal(r1.stdout, 'stdin-secret\n');
        const r2 = await runRecycled([
          'import os, sys, builtins',
          'print(os.path.exists("/tmp/trace"), os.path.exists("/workspace/trace-dir"), "TRACE" in os.environ, "PASSED" in os.environ)',
          'print(os.getcwd(), hasattr(builtins, "TRACE"), "global_trace" in globals(), "email.mime.text" in sys.modules)',
          'print(repr(sys.stdin.read()))',
        ].join('\n'));
        ok(r2);
        const f = await run('import os\nprint(os.getcwd())', {}, fresh);
        assert.equal(r2.stdout, `False False False False\n${f.stdout.trim()} False False False\n''\n`);
      });

      test('a state fingerprint equals a fresh fork\'s', async () => {
        const code = [
          'import sys, os, gc, threading',
          'print(sorted(sys.modules))',
          'print(os.getcwd(), sorted(os.environ), sorted(globals()))',
          'print(sorted(os.listdir("/tmp")), threading.active_count(), len(gc.get_objects()) // 100)',
        ].join('\n');
        ok(await run('import json, decimal\nopen("/tmp/x", "w").write("1")\nx = [object() for _ in range(10000)]'));
        const rec = await runRecycled(code);
        const fr = await run(code, {}, fresh);
        ok(rec);
        ok(fr);
        assert.equal(rec.stdout, fr.stdout);
      });

      test('RNG streams differ from the previous exec and from each other; the clock is current', async () => {
        const code = [
          'import random, os, time, numpy as np',
          'print(random.random(), np.random.rand(), os.urandom(16).hex(), time.time(), time.monotonic())',
        ].join('\n');
        const seen = new Set<string>();
        for (let i = 0; i < 6; i++) {
          const host0 = Date.now() / 1000;
          const r = i === 0 ? await run(code) : await runRecycled(code);
          const host1 = Date.now() / 1000;
          ok(r);
          const [a, b, c, t, mono] = r.stdout.trim().split(' ');
          for (const v of [a!, b!, c!]) {
            assert.ok(!seen.has(v), `RNG value ${v} repeated`);
            seen.add(v);
          }
          assert.ok(Number(t) >= host0 - 1 && Number(t) <= host1 + 1, `time.time() ${t} not in [${host0}, ${host1}]`);
          assert.ok(Number(mono) >= 0 && Number.isFinite(Number(mono)));
        }
      });

      test('a crashed, timed-out, cancelled, exited or failing exec is never recycled', async () => {
        await recycledReady();
        const recycled0 = engine.warmStats()!.recycled;
        const results = [
          await run('import ctypes\nctypes.memset(0x100000, 0xcc, 0x100000)'),
          await engine.exec({ code: 'while True: pass', language: 'python', timeoutSeconds: 0.3 }),
          await run('import os\nos._exit(0)'),
          await run('import sys\nsys.exit(3)'),
          await run('raise ValueError("x")'),
        ];
        const ac = new AbortController();
        const c = engine.exec({ code: 'import time\ntime.sleep(30)', language: 'python', timeoutSeconds: 60 }, ac.signal);
        setTimeout(() => ac.abort(), 300);
        results.push(await c);
        assert.deepEqual(results.map((r) => r.outcome), ['crashed', 'timeout', 'exited', 'exited', 'exited', 'cancelled']);
        assert.deepEqual(results.slice(2, 5).map((r) => r.exitCode), [0, 3, 1]);
        await new Promise((r) => setTimeout(r, 200));
        assert.equal(engine.warmStats()!.recycled, recycled0);
        assert.equal(engine.warmStats()!.recycleFailed, 0);
        assert.equal(engine.health().liveForks, 0);
      });

      test('sessions are never recycled', async () => {
        const recycled0 = engine.warmStats()!.recycled;
        const sb = await engine.sandbox();
        try {
          for (let i = 0; i < 3; i++) ok(await sb.exec({ code: 'x = 1', language: 'python', timeoutSeconds: 20 }));
        } finally {
          sb.close();
        }
        assert.equal(engine.warmStats()!.recycled, recycled0);
      });

      test('the budget holds only the kept forks\' shares; live VMs return to the baseline', async () => {
        for (let i = 0; i < 5; i++) ok(await run('print(1)'));
        await recycledReady();
        await new Promise((r) => setTimeout(r, 300));
        const w = engine.warmStats()!;
        const m = engine.memoryStats();
        assert.equal(m.charges, w.ready, JSON.stringify({ w, m }));
        assert.equal(m.usedBytes, w.ready * ((640 << 20) + FB_MAILBOX_SIZE));
        assert.equal(engine.health().liveForks, 0);
        assert.ok(stats().recycles >= w.recycled);
      });
    });
  });
}
