// posix-fidelity.test.ts — the guest runtime's POSIX fidelity checks
// (native/guest/host/posix.py: timestamps, hard links, FIFOs, statfs,
// priorities, affinity, chown, signals and timers, blocking calls that nothing
// can satisfy) run by Python in a real fork, as a session: a module written in
// one exec is imported by the next. Also a one-shot exec, where a blocking read
// only an alarm handler can satisfy must complete (it used to wait out the
// timeout). Needs /dev/kvm; otherwise prints one "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runtimeElf } from '../../src/lib/paths.js';
import { setLogLevel } from '../../src/lib/log.js';
import { probe } from '../../src/vmm/vmm.js';
import { createEngine, type ForkboxEngine } from '../../src/engine/index.js';

const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: posix fidelity e2e tests: ${!p.available ? p.reason : 'guest runtime not built'}\n`);
} else {
  describe('posix fidelity in a fork', { timeout: 900_000 }, () => {
    let dir: string;
    let engine: ForkboxEngine;
    before(async () => {
      if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
      dir = mkdtempSync(join(tmpdir(), 'forkbox-posix-'));
      engine = await createEngine({ poolSize: 1, workers: 1, memLimitMb: 256, warmForks: 0, sessionDir: dir,
        onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
    }, { timeout: 900_000 });
    after(async () => {
      await engine?.close(1000);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('posix.py passes in a session, and its module is imported by the next exec', async () => {
      const code = readFileSync(join(repoRoot, 'native/guest/host/posix.py'), 'utf8');
      const s = await engine.createSession({ owner: 'a', language: 'python' });
      const r1 = await engine.execSession('a', s.id, { code, language: 'python', timeoutSeconds: 60 });
      assert.equal(r1.exitCode, 0, r1.stderr);
      assert.equal(r1.stdout, 'posix ok\n', r1.stderr);
      const r2 = await engine.execSession('a', s.id, { code: 'import m_later; m_later.C', language: 'python', timeoutSeconds: 30 });
      assert.equal(r2.exitCode, 0, r2.stderr);
      assert.equal(r2.result, '3');
      await engine.deleteSession('a', s.id);
    });

    test('a read only a SIGALRM handler can satisfy completes in a one-shot exec', async () => {
      const r = await engine.exec({ language: 'python', timeoutSeconds: 20, code: [
        'import os, signal',
        'r, w = os.pipe()',
        'signal.signal(signal.SIGALRM, lambda s, f: os.write(w, b"bar"))',
        'signal.alarm(1)',
        'print(os.read(r, 3))',
      ].join('\n') });
      assert.equal(r.outcome, 'exited', r.stderr);
      assert.equal(r.stdout, "b'bar'\n");
    });
  });
}
