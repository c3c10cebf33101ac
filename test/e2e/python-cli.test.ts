// python-cli.test.ts — the `forkbox exec` command end to end: stdout/stderr
// pass through, the exit code is the program's, code from stdin with '-',
// --times, and the timeout exit code. Needs /dev/kvm and the guest runtime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot, runtimeElf } from '../../src/lib/paths.js';
import { probe } from '../../src/vmm/vmm.js';

const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');
const cli = (args: string[], input?: string) =>
  spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', input, timeout: 900_000, env: { ...process.env, FORKBOX_LOG_LEVEL: 'warn' } });

const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: python cli tests: ${!p.available ? p.reason : 'guest runtime not built (npm install)'}\n`);
} else {
  test('forkbox exec: output, exit code, --times', { timeout: 900_000 }, () => {
    const r = cli(['exec', '--times', 'import sys\nprint("out")\nprint("err", file=sys.stderr)\nsys.exit(5)']);
    assert.equal(r.status, 5, r.stderr);
    assert.equal(r.stdout, 'out\n');
    assert.match(r.stderr, /^err$/m);
    assert.match(r.stderr, /fork [\d.]+ ms, exec [\d.]+ ms, total [\d.]+ ms/);
  });

  test('forkbox exec -: code from stdin', { timeout: 900_000 }, () => {
    const r = cli(['exec', '-'], 'print(6*7)\n');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, '42\n');
  });

  test('forkbox exec --timeout: exit 124', { timeout: 900_000 }, () => {
    const r = cli(['exec', '--timeout', '0.5', 'while True: pass']);
    assert.equal(r.status, 124);
    assert.match(r.stderr, /timed out/);
  });

  test('forkbox exec: usage errors exit 2', () => {
    assert.equal(cli(['exec']).status, 2);
    assert.equal(cli(['exec', '--lang', 'cobol', 'x']).status, 2);
    assert.equal(cli(['nosuchcommand']).status, 2);
  });
}
