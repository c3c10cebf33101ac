// sessions.test.ts — the whole session lifecycle through the engine, on real
// forks: create, upload a CSV, numpy reads it and writes a result that is
// downloaded; fork into three that diverge and see only their own changes;
// pause one, restart the engine, resume it with its state; delete them all and
// find nothing left (VMs, descriptors, files on disk). Also: REPL semantics,
// discard, the side-effect report, one call at a time, owners, and 404/409/410.
// Needs /dev/kvm; otherwise prints one "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeElf } from '../../src/lib/paths.js';
import { setLogLevel } from '../../src/lib/log.js';
import { probe, stats } from '../../src/vmm/vmm.js';
import { createEngine, type ForkboxEngine } from '../../src/engine/index.js';
import type { SessionExecResult } from '../../src/engine/session-types.js';

const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: session e2e tests: ${!p.available ? p.reason : 'guest runtime not built'}\n`);
} else {
  describe('sessions', { timeout: 900_000 }, () => {
    let dir: string;
    let engine: ForkboxEngine;
    const fds = (): number => readdirSync('/proc/self/fd').length;
    const mk = (): Promise<ForkboxEngine> => createEngine({ poolSize: 2, workers: 2, memLimitMb: 256, warmForks: 0, sessionDir: dir,
      onProgress: (l) => process.stderr.write(`# ${l}\n`) });
    before(async () => {
      if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
      dir = mkdtempSync(join(tmpdir(), 'forkbox-sessions-'));
      engine = await mk();
      await engine.ready();
    }, { timeout: 900_000 });
    after(async () => {
      await engine?.close(1000);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    const run = (id: string, code: string, extra: Record<string, unknown> = {}, owner = 'a'): Promise<SessionExecResult> =>
      engine.execSession(owner, id, { code, language: 'python', timeoutSeconds: 30, ...extra });
    const ok = (r: SessionExecResult): SessionExecResult => {
      assert.equal(r.outcome, 'exited', `${r.outcome} ${r.crash ?? ''} ${r.stderr}`);
      assert.equal(r.exitCode, 0, r.stderr);
      return r;
    };

    test('lifecycle: CSV in, numpy, result out; fork 3; pause, restart, resume; delete all, nothing left', async () => {
      const vms0 = stats().vmsLive, fds0 = fds();
      const s = await engine.createSession({ owner: 'a', language: 'python', name: 'lifecycle', metadata: { task: 't1' } });
      assert.equal(s.state, 'ready');
      assert.deepEqual(s.metadata, { task: 't1' });
      const csv = 'x,y\n' + Array.from({ length: 100 }, (_, i) => `${i},${i * 2}`).join('\n') + '\n';
      const up = await engine.writeFile('a', s.id, '/workspace/data.csv', Buffer.from(csv));
      assert.equal(up.size, csv.length);
      const r = ok(await run(s.id, [
        'import numpy as np, os',
        'd = np.loadtxt("data.csv", delimiter=",", skiprows=1)',
        'total = float(d[:, 1].sum())',
        'open("result.txt", "w").write(f"{total}\\n")',
        'os.getcwd(), total',
      ].join('\n')));
      assert.equal(r.result, "('/workspace', 9900.0)");
      assert.deepEqual(r.sideEffects.filesCreated, [{ path: '/workspace/result.txt', size: 7 }]);
      assert.deepEqual([r.sideEffects.filesModified, r.sideEffects.filesDeleted], [[], []]);
      assert.ok(r.sideEffects.pagesDirtied > 0 && r.sideEffects.peakMemoryBytes > 0);
      assert.equal((await engine.readFile('a', s.id, '/workspace/result.txt')).toString(), '9900.0\n');
      const names = (await engine.listFiles('a', s.id, '/workspace')).map((f) => f.name).sort();
      assert.deepEqual(names, ['data.csv', 'result.txt']);

      // Fork into three; each diverges and sees only its own changes.
      ok(await run(s.id, 'big = np.ones(1 << 20)\nmarker = "parent"'));
      const kids = await engine.forkSession('a', s.id, 3);
      assert.equal(kids.length, 3);
      for (const [i, k] of kids.entries()) {
        assert.equal(k.parentId, s.id);
        assert.equal(ok(await run(k.id, 'marker, total, os.getcwd()')).result, "('parent', 9900.0, '/workspace')");
        ok(await run(k.id, `marker = "kid${i}"\nopen("mine.txt", "w").write("${i}")`));
      }
      ok(await run(s.id, 'marker = "parent2"'));
      for (const [i, k] of kids.entries()) {
        assert.equal(ok(await run(k.id, 'marker, sorted(os.listdir("."))')).result, `('kid${i}', ['data.csv', 'mine.txt', 'result.txt'])`);
        assert.equal((await engine.readFile('a', k.id, '/workspace/mine.txt')).toString(), String(i));
      }
      assert.equal(ok(await run(s.id, 'marker, sorted(os.listdir("."))')).result, "('parent2', ['data.csv', 'result.txt'])");
      // Forks do not share RNG streams.
      const draws = await Promise.all(kids.map(async (k) => ok(await run(k.id, 'import random; random.random()')).result));
      assert.equal(new Set(draws).size, 3, `draws ${draws.join(' ')}`);

      // Pause one, restart the engine, resume it with its state.
      const paused = await engine.pauseSession('a', kids[1]!.id);
      assert.equal(paused.state, 'paused');
      assert.ok(paused.diskBytes > 0 && paused.memoryBytes === 0);
      await engine.close(1000);
      engine = await mk();
      await engine.ready();
      const back = engine.listSessions('a');
      assert.deepEqual(back.map((x) => [x.id, x.state]), [[kids[1]!.id, 'paused']], 'only the paused session survives a restart');
      assert.equal(ok(await run(kids[1]!.id, 'marker, total, open("mine.txt").read()')).result, "('kid1', 9900.0, '1')");
      assert.equal(engine.getSession('a', kids[1]!.id).state, 'idle');

      // Delete: nothing left behind.
      await engine.deleteSession('a', kids[1]!.id);
      await assert.rejects(run(kids[1]!.id, '1'), { code: 'Gone' });
      assert.deepEqual(readdirSync(dir), [], 'no session files on disk');
      for (let i = 0; i < 200 && stats().vmsLive > vms0 + 2; i++) await new Promise((res) => setTimeout(res, 20));
      assert.ok(stats().vmsLive <= vms0 + 2, `vms live ${stats().vmsLive} (pool of 2 beside ${vms0})`);
      assert.ok(fds() <= fds0 + 8, `fds ${fds()} vs ${fds0}`);
    });

    test('REPL semantics, discard, side effects, one call at a time, owners, errors', async () => {
      const s = await engine.createSession({ owner: 'a', language: 'python', env: { GREETING: 'hi' } });
      ok(await run(s.id, 'x = 41\nimport os\nopen("keep.txt", "w").write("k")'));
      assert.equal(ok(await run(s.id, 'x + 1')).result, '42');
      assert.equal(ok(await run(s.id, 'os.environ["GREETING"]')).result, "'hi'");
      // discard: runs in a throwaway fork; the session is untouched.
      const d = ok(await run(s.id, 'x = 0\nopen("gone.txt", "w").write("g")\nos.remove("keep.txt")\nx', { discard: true }));
      assert.equal(d.result, '0');
      assert.deepEqual(d.sideEffects.filesCreated, [{ path: '/workspace/gone.txt', size: 1 }]);
      assert.deepEqual(d.sideEffects.filesDeleted, [{ path: '/workspace/keep.txt' }]);
      assert.equal(ok(await run(s.id, 'x, sorted(os.listdir("."))')).result, "(41, ['keep.txt'])");
      // the side-effect report, exactly
      const e = ok(await run(s.id, 'open("keep.txt", "a").write("more")\nopen("new.bin", "wb").write(b"12345")\nos.remove("keep.txt") if False else None'));
      assert.deepEqual(e.sideEffects.filesCreated, [{ path: '/workspace/new.bin', size: 5 }]);
      assert.deepEqual(e.sideEffects.filesModified, [{ path: '/workspace/keep.txt', size: 5 }]);
      assert.deepEqual(e.sideEffects.filesDeleted, []);
      // one call at a time
      const slow = run(s.id, 'import time; time.sleep(0.5)');
      await assert.rejects(run(s.id, '1'), { code: 'Conflict' });
      ok(await slow);
      // owners: another key cannot see or touch it
      assert.throws(() => engine.getSession('b', s.id), { code: 'NotFound' });
      await assert.rejects(run(s.id, '1', {}, 'b'), { code: 'NotFound' });
      assert.equal(engine.listSessions('b').length, 0);
      // names are unique per owner
      await engine.createSession({ owner: 'a', language: 'python', name: 'twin' });
      await assert.rejects(engine.createSession({ owner: 'a', language: 'python', name: 'twin' }), { code: 'Conflict' });
      // a session whose exec times out ends, with 410 after
      const t = ok(await run(s.id, '1')) && await run(s.id, 'while True: pass', { timeoutSeconds: 0.3 });
      assert.equal(t.outcome, 'timeout');
      await assert.rejects(run(s.id, '1'), (err: { code?: string; message?: string }) =>
        err.code === 'Gone' && /timed out/.test(err.message ?? ''));
      await assert.rejects(run('ses_doesnotexist', '1'), { code: 'NotFound' });
      for (const x of engine.listSessions('a')) await engine.deleteSession('a', x.id);
    });
  });
}
