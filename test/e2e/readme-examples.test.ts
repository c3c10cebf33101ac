// readme-examples.test.ts — runs the service examples of the README verbatim
// against a real `forkbox serve` (the CLI, as a child process, with auth on):
// every ```bash, ```python and ```js block between the forkbox:service markers
// of README.md. The
// SDKs are installed the documented way (pip / npm from ./sdk). Then SIGHUP must
// reload the key file and SIGTERM stop the server cleanly. Without /dev/kvm: one
// "skipped:" line.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { repoRoot } from '../../src/lib/paths.js';

const run = promisify(execFile);
const START = '<!-- forkbox:service:start -->';
const END = '<!-- forkbox:service:end -->';
const KEY = 'sk_readme_0123456789abcdef0123';

export function serviceSection(): { source: string; text: string } {
  for (const file of ['README.md']) {
    const path = join(repoRoot, file);
    if (!existsSync(path)) continue;
    const doc = readFileSync(path, 'utf8');
    const a = doc.indexOf(START);
    const b = doc.indexOf(END);
    if (a >= 0 && b > a) return { source: file, text: doc.slice(a + START.length, b) };
  }
  throw new Error(`no ${START} section in README.md`);
}

function blocks(text: string): { lang: string; code: string; line: number }[] {
  const out: { lang: string; code: string; line: number }[] = [];
  for (const m of text.matchAll(/^```(\w*)\n([\s\S]*?)^```\s*$/gm)) {
    out.push({ lang: m[1]!, code: m[2]!, line: text.slice(0, m.index).split('\n').length });
  }
  return out;
}

if (!existsSync('/dev/kvm')) {
  process.stdout.write('skipped: README example tests: /dev/kvm is absent\n');
} else {
  const { source, text } = serviceSection();
  const runnable = blocks(text).filter((b) => ['bash', 'python', 'js'].includes(b.lang));

  describe(`service examples of ${source}`, { timeout: 40 * 60_000 }, () => {
    let dir: string;
    let server: ChildProcess;
    let base = '';
    let serverLog = '';
    let env: NodeJS.ProcessEnv;
    let python = 'python3';

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'forkbox-readme-'));
      writeFileSync(join(dir, 'keys'), `# test key\nreadme:${KEY}\n`);
      server = spawn(process.execPath, [join(repoRoot, 'dist/src/cli/main.js'), 'serve', '--port', '0'], {
        env: { ...process.env, FORKBOX_API_KEYS_FILE: join(dir, 'keys'), FORKBOX_RATE_LIMIT: '0', FORKBOX_POOL_SIZE: '4', FORKBOX_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      server.stderr!.on('data', (d: Buffer) => { serverLog += d.toString(); });
      base = await new Promise<string>((resolve, reject) => {
        let out = '';
        server.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /forkbox listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        server.once('exit', (code) => reject(new Error(`forkbox serve exited ${code} before listening:\n${serverLog.slice(-4000)}`)));
      });
      env = { ...process.env, FORKBOX_API_KEY: KEY, FORKBOX_BASE_URL: base, PIP_DISABLE_PIP_VERSION_CHECK: '1', PIP_NO_INDEX: '1', PYTHONDONTWRITEBYTECODE: '1' };
      // The SDKs, installed as the section says.
      try {
        await run('python3', ['-m', 'venv', join(dir, 'venv')]);
        await run(join(dir, 'venv/bin/pip'), ['install', '-q', join(repoRoot, 'sdk/python')], { env });
        python = join(dir, 'venv/bin/python');
      } catch (e) {
        // Debian's python3 comes without venv/pip unless python3-venv is installed: build the
        // wheel with the package's own PEP 517 backend and unpack it, which is what pip would do.
        process.stdout.write(`# note: python venv/pip unavailable (${(e as Error).message.split('\n')[0]}); installing the SDK wheel built by its PEP 517 backend\n`);
        const wheel = (await run('python3', ['-c', 'import sys; sys.path.insert(0, sys.argv[1]); import forkbox_backend as b; print(b.build_wheel(sys.argv[2]))', join(repoRoot, 'sdk/python/_backend'), dir], { env })).stdout.trim();
        await run('python3', ['-c', 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])', join(dir, wheel), join(dir, 'site')]);
        env.PYTHONPATH = join(dir, 'site');
        python = 'python3';
      }
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'readme-js', private: true, type: 'module' }));
      await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(repoRoot, 'sdk/js')], { cwd: dir, env });
    }, { timeout: 30 * 60_000 });

    after(async () => {
      if (server && server.exitCode === null) server.kill('SIGKILL');
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('the section has runnable examples of each kind', () => {
      for (const lang of ['bash', 'python', 'js']) assert.ok(runnable.some((b) => b.lang === lang), `no \`\`\`${lang} block`);
    });

    for (const b of runnable) {
      test(`${b.lang} block at line ${b.line}`, async () => {
        try {
          if (b.lang === 'bash') {
            const code = b.code.replaceAll('http://127.0.0.1:8080', base);
            const r = await run('bash', ['-euo', 'pipefail', '-c', code], { env, cwd: dir });
            if (code.includes('/v1/exec')) assert.match(r.stdout, /"exit_code":/);
          } else if (b.lang === 'python') {
            writeFileSync(join(dir, 'example.py'), b.code);
            await run(python, [join(dir, 'example.py')], { env, cwd: dir });
          } else {
            writeFileSync(join(dir, 'example.mjs'), b.code);
            await run(process.execPath, [join(dir, 'example.mjs')], { env, cwd: dir });
          }
        } catch (e) {
          const x = e as { stdout?: string; stderr?: string; message: string };
          assert.fail(`${source} ${b.lang} block at line ${b.line} failed: ${x.message}\nstdout: ${x.stdout}\nstderr: ${x.stderr}`);
        }
      });
    }

    test('SIGHUP reloads the key file (new key in, old key out)', async () => {
      const NEW = 'sk_rotated_0123456789abcdef';
      const call = (key: string) => fetch(`${base}/v1/exec`, {
        method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: '{"code":"print(7)"}',
      }).then((r) => r.status);
      assert.equal(await call(KEY), 200);
      writeFileSync(join(dir, 'keys'), `rotated:${NEW}\n`);
      server.kill('SIGHUP');
      let status = 0;
      for (let i = 0; i < 100 && status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 20));
        status = await call(NEW);
      }
      assert.equal(status, 200);
      assert.equal(await call(KEY), 401);
      assert.ok(serverLog.includes('"auth.reloaded"'));
      writeFileSync(join(dir, 'keys'), `readme:${KEY}\n`);
      server.kill('SIGHUP');
      for (let i = 0; i < 100 && (await call(KEY)) !== 200; i++) await new Promise((r) => setTimeout(r, 20));
    });

    test('SIGTERM: graceful shutdown, exit 0, every VM released', async () => {
      const exited = new Promise<number | null>((resolve) => server.once('exit', (code) => resolve(code)));
      server.kill('SIGTERM');
      assert.equal(await exited, 0, serverLog.slice(-2000));
      const stopped = serverLog.split('\n').filter((l) => l.includes('"server.stopped"')).map((l) => JSON.parse(l));
      assert.equal(stopped.length, 1);
      assert.equal(stopped[0].liveForks, 0);
      assert.ok(serverLog.includes('"auth.enabled"'));
      assert.ok(!serverLog.includes(KEY), 'the key never reaches the log');
    });
  });
}
