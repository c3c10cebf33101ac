// readme-cli.test.ts — runs the README's command-line examples (the ```bash
// block between the forkbox:cli markers) verbatim from the repository root,
// against the real python template, and checks what they print.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { repoRoot } from '../../src/lib/paths.js';

const run = promisify(execFile);

function cliBlock(): string {
  const doc = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const a = doc.indexOf('<!-- forkbox:cli:start -->');
  const b = doc.indexOf('<!-- forkbox:cli:end -->');
  assert.ok(a >= 0 && b > a, 'README.md has a forkbox:cli section');
  const m = /```bash\n([\s\S]*?)^```/m.exec(doc.slice(a, b));
  assert.ok(m, 'the cli section has a ```bash block');
  return m[1]!;
}

if (!existsSync('/dev/kvm')) {
  process.stdout.write('skipped: README command-line examples: /dev/kvm is absent\n');
} else {
  test('README command-line examples run and print what they promise', { timeout: 20 * 60_000 }, async () => {
    const r = await run('bash', ['-euo', 'pipefail', '-c', cliBlock()], {
      cwd: repoRoot, env: { ...process.env, FORKBOX_LOG_LEVEL: 'warn' }, maxBuffer: 1 << 24,
    });
    const out = r.stdout;
    assert.match(out, /^4\.5$/m, 'numpy mean');
    assert.match(r.stderr, /to stderr/, 'stderr of the program reaches stderr');
    assert.match(out, /^exit code 3$/m, 'sys.exit(3) becomes the exit code');
    assert.match(out, /^499999500000$/m, 'sum(range(10**6))');
    assert.match(r.stderr, /fork.*exec.*total|total/i, '--times prints the times');
    assert.match(out, /python/, 'template ls lists the python template');
  });
}
