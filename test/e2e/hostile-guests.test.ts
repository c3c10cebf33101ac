// hostile-guests.test.ts — hostile guest programs against one engine on real
// /dev/kvm: spins with and without a tiny timeout, writing all reachable RAM
// (past the runtime's memory limit), using up descriptors, deep C recursion,
// overwriting the runtime's code or the mailbox header and ringing the
// doorbell with garbage, a CPL3 write into the system area, output floods, and
// the memory budget refusing work honestly when full. Each case ends its own
// sandbox with a clear outcome while a concurrent normal exec answers
// correctly, and the live-fork count and budget return to their baseline.
// Needs /dev/kvm and the guest runtime; otherwise prints one "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { runtimeElf } from '../../src/lib/paths.js';
import { probe } from '../../src/vmm/vmm.js';
import { FB_MAILBOX_SIZE } from '../../src/vmm/abi.js';
import { createEngine, type ForkboxEngine } from '../../src/engine/index.js';
import type { ExecResult } from '../../src/engine/types.js';
import { setLogLevel } from '../../src/lib/log.js';

const MiB = 1024 * 1024;
const RAM_MB = 640;                       // the python template's RAM (memLimitMb 256 fits it)
const FORK_MB = RAM_MB + FB_MAILBOX_SIZE / MiB;
const SLOTS = 5;                          // live forks the budget admits (the one warm fork included)

const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: hostile guest tests: ${!p.available ? p.reason : 'guest runtime not built (npm install)'}\n`);
} else {
  describe('hostile guests', { timeout: 1_800_000 }, () => {
    let engine: ForkboxEngine;
    before(async () => {
      if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('error');
      engine = await createEngine({ poolSize: 2, workers: 2, memLimitMb: 256, ramSizeMb: RAM_MB, warmForks: 1,
        memBudgetMb: SLOTS * FORK_MB, onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
    }, { timeout: 1_800_000 });
    after(async () => {
      await engine?.close(1000);
    });
    /** A warm fork that is still warming holds its share and cannot be evicted: wait for it. */
    const warmReady = async (): Promise<void> => {
      for (let i = 0; i < 200 && (engine.warmStats()?.ready ?? 0) < 1; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok((engine.warmStats()?.ready ?? 0) >= 1);
    };
    /** A fork's share is released once its memory is (after teardown, off the answer's path): wait
     *  until only the idle forks of the warm pool (the warm fork, recycled forks: evictable) are
     *  charged, so each case starts with the whole budget. */
    const idleCharged = (): number => Math.max(1, engine.warmStats()?.ready ?? 0) * FORK_MB * MiB;
    const settled = async (): Promise<void> => {
      for (let i = 0; i < 400 && engine.memoryStats().usedBytes > idleCharged(); i++) await new Promise((r) => setTimeout(r, 25));
      assert.ok(engine.memoryStats().usedBytes <= idleCharged(), `charged after teardown: ${JSON.stringify(engine.memoryStats())}`);
    };
    const run = (code: string, timeoutSeconds = 30): Promise<ExecResult> =>
      engine.exec({ code, language: 'python', timeoutSeconds });
    const normal = async (): Promise<void> => {
      const r = await run('import numpy as np\nprint(int(np.arange(10).sum()) * 6 // 45 * 7)');
      assert.equal(r.outcome, 'exited', `${r.outcome} ${r.crash ?? ''} ${r.stderr}`);
      assert.equal(r.stdout, '42\n');
    };
    /** Runs `code` beside a normal exec; returns the hostile result after checking the normal one and the baseline. */
    const hostile = async (code: string, timeoutSeconds = 30): Promise<ExecResult> => {
      await settled();
      const [r] = await Promise.all([run(code, timeoutSeconds), normal()]);
      assert.equal(engine.health().liveForks, 0, 'live forks back to the baseline');
      assert.equal(engine.health().inFlight, 0);
      await normal();
      return r;
    };

    test('a spin with a normal timeout ends as timeout', async () => {
      const t0 = performance.now();
      const r = await hostile('while True: pass', 0.5);
      assert.equal(r.outcome, 'timeout');
      assert.equal(r.exitCode, 124);
      assert.ok(performance.now() - t0 >= 500);
    });

    test('a spin with a 0.0001 s timeout ends as timeout (rounded up to 1 ms, never "none")', async () => {
      const r = await hostile('while True: pass', 0.0001);
      assert.equal(r.outcome, 'timeout');
    });

    test('several guests write all the RAM they can reach, past their memory limit; the host bound holds', async () => {
      const writer = [
        'import ctypes',
        `RAM = ${RAM_MB} << 20`,
        'used = []',
        'for line in open("/proc/self/maps"):',
        '    a, b = (int(x, 16) for x in line.split()[0].split("-"))',
        '    if a < RAM: used.append((a, min(b, RAM)))',
        'total, at = 0, 0x400000',
        'for a, b in sorted(used) + [(RAM, RAM)]:',
        '    if a > at:',
        '        ctypes.memset(at, 0x5a, a - at)',
        '        total += a - at',
        '    at = max(at, b)',
        'print("wrote", total >> 20)',
      ].join('\n');
      await settled();
      await warmReady();
      const rss0 = rssMb();
      const n = SLOTS - 2;
      const [results] = await Promise.all([Promise.all(Array.from({ length: n }, () => run(writer, 120))), normal()]);
      for (const r of results) {
        assert.equal(r.outcome, 'exited', `${r.outcome} ${r.crash ?? ''} ${r.stderr}`);
        const mb = Number(r.stdout.split(' ')[1]);
        assert.ok(mb > 256, `wrote ${mb} MiB: more than the 256 MiB limit the runtime enforces`);
        assert.ok(mb <= RAM_MB);
      }
      assert.equal(engine.health().liveForks, 0);
      await normal();
      const rss1 = rssMb();
      await new Promise((r) => setTimeout(r, 500));
      process.stdout.write(`# ${n} writers, each ${results[0]!.stdout.trim()} MiB; host RSS ${rss0} MiB before, ${rss1} at the answers, ${rssMb()} 0.5 s later\n`);
    });

    test('the memory budget refuses work honestly when full, and admits it again afterwards', async () => {
      await settled();
      await warmReady();
      const before = engine.memoryStats();
      const spins = Array.from({ length: SLOTS }, () => run('while True: pass', 3));
      await new Promise((r) => setTimeout(r, 200));
      await assert.rejects(run('print(1)'), (e: { code?: string; status?: number; message?: string }) =>
        e.code === 'MemoryBudgetExceeded' && e.status === 503 && /memory budget/.test(e.message ?? ''));
      assert.ok(engine.memoryStats().usedBytes <= engine.memoryStats().limitBytes);
      await assert.rejects(engine.sandbox(), (e: { code?: string }) => e.code === 'MemoryBudgetExceeded');
      for (const r of await Promise.all(spins)) assert.equal(r.outcome, 'timeout');
      await normal();
      assert.equal(engine.health().liveForks, 0);
      const after = engine.memoryStats();
      assert.ok(after.refused >= before.refused + 2);
      await settled();
    });

    test('a sandbox is charged its measured pages while idle and its worst case while it runs', async () => {
      await settled();
      await warmReady();
      const used0 = engine.memoryStats().usedBytes;
      const sb = await engine.sandbox();
      try {
        const sbExec = (code: string): Promise<ExecResult> => sb.exec({ code, language: 'python', timeoutSeconds: 30 });
        assert.equal((await sbExec('x = 6 * 7\nprint(x)')).stdout, '42\n');
        const idle = engine.memoryStats().usedBytes - used0;
        assert.ok(idle > 0 && idle < 256 * MiB, `idle sandbox charged ${idle / MiB} MiB`);
        // Writing 300 MiB raw (past the runtime's limit) is measured after the exec.
        const w = await sbExec('import ctypes\nctypes.memset(0x10000000, 0x5a, 300 << 20)\nprint("ok")');
        assert.equal(w.stdout, 'ok\n');
        const grown = engine.memoryStats().usedBytes - used0;
        assert.ok(grown >= 300 * MiB && grown <= FORK_MB * MiB, `after writing 300 MiB: ${grown / MiB} MiB`);
        process.stdout.write(`# idle sandbox charged ${(idle / MiB).toFixed(1)} MiB, ${(grown / MiB).toFixed(1)} MiB after writing 300 MiB\n`);
        // Another idle sandbox holding 50 MiB and SLOTS - 1 spinning execs leave less than this
        // sandbox's worst case free: its next exec is refused, and the sandbox stays usable.
        const other = await engine.sandbox();
        try {
          await other.exec({ code: 'import ctypes\nctypes.memset(0x10000000, 1, 50 << 20)', language: 'python', timeoutSeconds: 30 });
          const spins = Array.from({ length: SLOTS - 1 }, () => run('while True: pass', 2));
          await new Promise((r) => setTimeout(r, 200));
          await assert.rejects(sbExec('print(6 * 7)'), (e: { code?: string }) => e.code === 'MemoryBudgetExceeded');
          for (const r of await Promise.all(spins)) assert.equal(r.outcome, 'timeout');
        } finally {
          other.close();
        }
        assert.equal((await sbExec('print(6 * 7)')).stdout, '42\n');
      } finally {
        sb.close();
      }
      assert.equal(engine.health().liveForks, 0);
      await settled();

    });

    test('using up descriptors fails inside the guest (EMFILE) and the program goes on', async () => {
      const r = await hostile([
        'import os', 'fds = []', 'try:', '    while True: fds.append(os.open("/dev/null", os.O_RDONLY))',
        'except OSError as e:', '    print("stopped", e.errno, len(fds) > 100)', 'for fd in fds: os.close(fd)',
        'print(open("/dev/null").read() == "")',
      ].join('\n'));
      assert.equal(r.outcome, 'exited', `${r.outcome} ${r.crash ?? ''} ${r.stderr}`);
      assert.match(r.stdout, /^stopped (24|23|12) True\nTrue\n$/);
    });

    test('deep C recursion (nested repr with the recursion limit off) crashes only its sandbox', async () => {
      const r = await hostile('import sys\nsys.setrecursionlimit(10**9)\nl = []\nfor i in range(10**6): l = [l]\nprint(len(repr(l)))', 60);
      assert.ok(r.outcome === 'crashed' || (r.outcome === 'exited' && r.exitCode !== 0), `${r.outcome} ${r.stdout.slice(0, 100)}`);
    });

    test('overwriting the runtime\'s code through ctypes crashes only its sandbox', async () => {
      const r = await hostile('import ctypes\nctypes.memset(0x100000, 0xcc, 0x100000)\nprint("still here")');
      assert.equal(r.outcome, 'crashed');
      assert.ok(r.crash && /vector/.test(r.crash), r.crash);
      assert.doesNotMatch(r.stdout, /still here/);
    });

    test('garbage in the mailbox header, then the doorbell rung from CPL3: a protocol crash', async () => {
      const r = await hostile([
        'import ctypes', 'ctypes.memset(0xC0000000, 0xff, 4096)',
        'code = bytes([0x66, 0xba, 0xf0, 0x07, 0xee, 0xc3])   # mov $0x7f0,%dx; out %al,%dx; ret',
        'buf = ctypes.create_string_buffer(code)', 'ctypes.CFUNCTYPE(None)(ctypes.addressof(buf))()', 'print("still here")',
      ].join('\n'));
      assert.equal(r.outcome, 'crashed');
      assert.match(r.crash ?? '', /status|length|ack/);
    });

    test('a CPL3 write into the system area (page tables, GDT, IDT) is a #PF', async () => {
      for (const addr of [0x200000, 0x202000, 0x206000, 0x207000]) {
        const r = await hostile(`import ctypes\nctypes.memset(${addr}, 0, 64)\nprint("still here")`);
        assert.equal(r.outcome, 'crashed');
        assert.match(r.crash ?? '', new RegExp(`#PF.*address 0x${addr.toString(16)}`));
      }
    });

    test('output floods on both streams are cut at the caps', async () => {
      const r = await hostile('import os\nb = bytes(range(256)) * 4096\nfor i in range(20):\n    os.write(1, b); os.write(2, b)\nprint("done")');
      assert.equal(r.outcome, 'exited');
      assert.ok(r.stdoutTruncated && r.stderrTruncated);
      assert.ok(Buffer.byteLength(r.stdout) <= 3 * MiB && Buffer.byteLength(r.stderr) <= 3 * MiB + 200);
      const t = await hostile('import sys\nwhile True:\n    sys.stdout.write("o" * 65536); sys.stderr.write("e" * 65536)', 2);
      assert.equal(t.outcome, 'timeout');
      assert.ok(t.stdout.length <= MiB && t.stderr.length <= MiB + 200);
    });
  });
}

function rssMb(): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : -1;
}
