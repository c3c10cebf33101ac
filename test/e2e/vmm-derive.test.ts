// vmm-derive.test.ts — child snapshots of a live python fork: a fork holding
// 50 MiB of numpy state is derived; three forks of the child see that state,
// diverge, and never see each other's or the parent's later changes; the child
// written to disk and reopened resumes with the same state. Prints the
// derive/fork/write/resume latencies and the pages held (no timed assertion).
// Needs /dev/kvm and the python template; otherwise one "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeElf } from '../../src/lib/paths.js';
import { FB_REQ_EXEC } from '../../src/vmm/abi.js';
import { Snapshot, probe, stats, type Vm } from '../../src/vmm/vmm.js';
import { buildTemplate } from '../../src/template/build.js';

const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: child snapshot e2e tests: ${!p.available ? p.reason : 'guest runtime not built'}\n`);
} else {
  describe('child snapshots of a python fork', { timeout: 600_000 }, () => {
    let root: Snapshot;
    let dir: string;
    before(async () => {
      const info = await buildTemplate('python', { onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      root = new Snapshot(info.memPath, info.statePath);
      dir = mkdtempSync(join(tmpdir(), 'forkbox-derive-'));
    }, { timeout: 600_000 });
    after(() => {
      root?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    const exec = async (vm: Vm, code: string, reseed = false): Promise<{ out: string; result?: string }> => {
      const payload = JSON.stringify({ code, env: null, stdin: null, session: true, reseed });
      const r = await vm.run({ kind: FB_REQ_EXEC, payload, outCap: 1 << 20, errCap: 1 << 20, memLimit: 512 << 20, timeoutMs: 20_000 });
      assert.equal(r.outcome, 'ok', r.detail);
      const res = JSON.parse(r.result.toString('utf8')) as { exit_code: number; result?: string };
      assert.equal(res.exit_code, 0, r.stderr.toString());
      return { out: r.stdout.toString(), ...(res.result !== undefined ? { result: res.result } : {}) };
    };

    test('derive, fork three, diverge; write, reopen, resume', async () => {
      const live0 = stats().vmsLive;
      const parent = await root.fork();
      await exec(parent, 'import numpy as np\na = np.full(50 * 2**17, 7.0)\nname = "parent"', true);
      const t0 = performance.now();
      const child = await parent.derive(root);
      const deriveMs = performance.now() - t0;
      const pages = child.pages;
      assert.ok(child.pages >= 12800 && child.pages < 20000, `pages ${child.pages}`);
      assert.equal(child.root, root);
      const kids: Vm[] = [];
      const t1 = performance.now();
      for (let i = 0; i < 3; i++) kids.push(await child.fork());
      const forkMs = (performance.now() - t1) / 3;
      for (const [i, k] of kids.entries()) {
        assert.equal((await exec(k, 'float(a.sum()), name')).result, `(${7 * 50 * 2 ** 17}.0, 'parent')`);
        await exec(k, `a[:1000] = ${i}\nname = "kid${i}"`, true);
      }
      await exec(parent, 'a[:] = 1.0');
      for (const [i, k] of kids.entries())
        assert.equal((await exec(k, 'float(a.sum()), name')).result, `(${7 * (50 * 2 ** 17 - 1000) + 1000 * i}.0, 'kid${i}')`);
      assert.equal((await exec(parent, 'float(a.sum())')).result, `${50 * 2 ** 17}.0`);

      const mem = join(dir, 'child.mem'), state = join(dir, 'child.state');
      const t2 = performance.now();
      await child.write(mem, state);
      const writeMs = performance.now() - t2;
      assert.ok(statSync(mem).blocks * 512 < (child.pages + 1024) * 4096, 'the memory file holds only the child pages');
      for (const k of kids) k.close();
      parent.close();
      child.close();
      const t3 = performance.now();
      const back = Snapshot.openChild(root, mem, state);
      const resumed = await back.fork();
      const r = await exec(resumed, 'float(a.sum()), name');
      const resumeMs = performance.now() - t3;
      assert.equal(r.result, `(${7 * 50 * 2 ** 17}.0, 'parent')`);
      resumed.close();
      back.close();
      for (let i = 0; i < 100 && stats().vmsLive > live0; i++) await new Promise((ok) => setTimeout(ok, 20));
      assert.equal(stats().vmsLive, live0, 'every vm released');
      process.stdout.write(`# derive ${deriveMs.toFixed(1)} ms (${pages} pages), fork of the child ${forkMs.toFixed(2)} ms, ` +
        `write ${writeMs.toFixed(1)} ms, reopen+fork+exec ${resumeMs.toFixed(1)} ms\n`);
    });
  });
}
