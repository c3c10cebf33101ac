// conformance-subset.test.ts — `forkbox conformance python` on a few fast
// CPython test modules that need nothing the runtime refuses: the results are
// parsed, the host baseline ran, and the fork passes exactly what the host
// passes. Needs /dev/kvm, the guest runtime and the host's python3.11.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runtimeElf } from '../../src/lib/paths.js';
import { probe } from '../../src/vmm/vmm.js';
import { DEFAULT_HOST_PYTHON } from '../../src/conformance/run.js';
import type { Row, Totals } from '../../src/conformance/report.js';

const MODULES = ['test_math', 'test_string', 'test_textwrap', 'test_bisect'];
const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

const p = probe();
const why = !p.available ? p.reason : !existsSync(runtimeElf) ? 'guest runtime not built (npm install)'
  : !existsSync(DEFAULT_HOST_PYTHON) ? `${DEFAULT_HOST_PYTHON} missing` : '';
if (why) {
  process.stdout.write(`skipped: conformance subset: ${why}\n`);
} else {
  test(`forkbox conformance python: ${MODULES.join(', ')} pass in forks as on the host`, { timeout: 900_000 }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'fbconf-e2e-'));
    try {
      const out = join(dir, 'out.json');
      const r = spawnSync(process.execPath, [main, 'conformance', 'python', '--modules', MODULES.join(','), '--json', out, '--jobs', '2'],
        { encoding: 'utf8', timeout: 900_000, env: { ...process.env, FORKBOX_LOG_LEVEL: 'warn' } });
      assert.equal(r.status, 0, r.stderr);
      const j = JSON.parse(readFileSync(out, 'utf8')) as { rows: Row[]; totals: Totals; finished?: string };
      assert.ok(j.finished);
      assert.deepEqual(j.rows.map((x) => x.module), MODULES);
      for (const row of j.rows) {
        assert.equal(row.hostStatus, 'ok', `${row.module} on the host: ${row.hostDetail ?? ''}`);
        assert.equal(row.forkStatus, 'ok', `${row.module} in the fork: ${row.forkDetail ?? ''}`);
        assert.ok(row.hostPass >= 20, `${row.module}: the host passed only ${row.hostPass}`);
        assert.deepEqual(row.gap, [], `${row.module}: passes on the host but not in the fork`);
        assert.equal(row.forkPassOfHost, row.hostPass, row.module);
        assert.equal(row.forkPass, row.hostPass, row.module);
      }
      assert.match(r.stdout, /^TOTAL +\d+ +\d+ /m);
      assert.match(r.stdout, /^test_textwrap +(\d+) +\1 +100\.0% +ok$/m);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
