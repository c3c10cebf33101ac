// readme-templates.test.ts — runs the README's template examples (the yaml
// and bash blocks between the forkbox:templates markers) verbatim: the recipe
// is written to sympy.yaml in a scratch directory, the commands run there
// (dist/ is linked in), and what they print is checked.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { repoRoot } from '../../src/lib/paths.js';

const run = promisify(execFile);

function blocks(): { yaml: string; bash: string } {
  const doc = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const a = doc.indexOf('<!-- forkbox:templates:start -->');
  const b = doc.indexOf('<!-- forkbox:templates:end -->');
  assert.ok(a >= 0 && b > a, 'README.md has a forkbox:templates section');
  const part = doc.slice(a, b);
  const yaml = /```yaml\n([\s\S]*?)^```/m.exec(part)?.[1];
  const bash = /```bash\n([\s\S]*?)^```/m.exec(part)?.[1];
  assert.ok(yaml && bash, 'the section has a yaml and a bash block');
  return { yaml, bash };
}

if (!existsSync('/dev/kvm')) {
  process.stdout.write('skipped: README template examples: /dev/kvm is absent\n');
} else {
  test('README template examples build a recipe and run it and python-data by name', { timeout: 30 * 60_000 }, async () => {
    const { yaml, bash } = blocks();
    const dir = mkdtempSync(join(tmpdir(), 'fb-readme-templates-'));
    try {
      writeFileSync(join(dir, 'sympy.yaml'), yaml);
      symlinkSync(join(repoRoot, 'dist'), join(dir, 'dist'));
      const r = await run('bash', ['-euo', 'pipefail', '-c', bash], {
        cwd: dir, env: { ...process.env, FORKBOX_LOG_LEVEL: 'warn' }, maxBuffer: 1 << 26,
      });
      assert.match(r.stdout, /^(built|cached) py-sympy template /m);
      assert.match(r.stdout, /^ELF files with rewritten syscall sites: \d+$/m);
      assert.match(r.stdout, /^\(x - 1\)\*\(x \+ 1\) hello$/m, 'the recipe template answers by name');
      assert.match(r.stdout, /^6$/m, 'python-data sums with pandas');
      assert.match(r.stdout, /^py-sympy +python /m, 'template ls lists it');
      assert.match(r.stdout, /^removed \d+ build\(s\) of py-sympy$/m);
      assert.ok(existsSync(join(dir, 'sympy.yaml.lock.json')), 'the lock file is written next to the recipe');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}
