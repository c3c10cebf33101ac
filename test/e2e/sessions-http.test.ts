// sessions-http.test.ts — sessions over HTTP on the REAL engine (createEngine,
// app in-process via inject): the whole lifecycle — create, upload a
// CSV, numpy reads it and writes a result, download it, fork into 3 that
// diverge, pause one, restart the engine and resume it, delete all, and nothing
// left behind (no sessions, no live forks) — plus discard and the side-effect
// report with exact expectations. Then the README's session section (curl, SDK
// and CLI blocks between the forkbox:sessions markers) runs verbatim against a
// `forkbox serve` child. Skips with one "skipped:" line without /dev/kvm or
// while the engine has no createSession.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { ForkboxEngine, createEngine } from '../../src/engine/index.js';
import { repoRoot } from '../../src/lib/paths.js';
import { readTar, writeTar } from '../../src/lib/tar.js';
import { buildServer, type ForkboxServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig } from '../../src/server/config.js';

const run = promisify(execFile);
const KEY = 'sk_sessions_e2e_0123456789abcdef';
const H = { authorization: `Bearer ${KEY}` };
const START = '<!-- forkbox:sessions:start -->';
const END = '<!-- forkbox:sessions:end -->';

const hasSessions = typeof (ForkboxEngine.prototype as unknown as { createSession?: unknown }).createSession === 'function';

function sessionBlocks(): { lang: string; code: string; line: number }[] {
  const doc = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  assert.ok(a >= 0 && b > a, `README.md has a ${START} section`);
  const text = doc.slice(a + START.length, b);
  return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```\s*$/gm)]
    .map((m) => ({ lang: m[1]!, code: m[2]!, line: text.slice(0, m.index).split('\n').length }))
    .filter((x) => ['bash', 'python', 'js'].includes(x.lang));
}

if (!existsSync('/dev/kvm')) {
  process.stdout.write('skipped: session e2e tests: /dev/kvm is absent\n');
} else if (!hasSessions) {
  process.stdout.write('skipped: session e2e tests: the engine does not implement sessions (createSession) yet\n');
} else {
  describe('sessions over HTTP on the real engine', { timeout: 40 * 60_000 }, () => {
    let engine: ForkboxEngine;
    let server: ForkboxServer;
    const mk = (e: ForkboxEngine): ForkboxServer => buildServer({ engine: e, config: { ...loadServerConfig([], {}), rateLimit: 0 }, keys: parseKeyFile(`e2e:${KEY}`) });
    const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown, headers: Record<string, string> = {}) =>
      server.app.inject({ method, url, ...(payload !== undefined ? { payload: payload as object } : {}), headers: { ...H, ...headers } });
    const exec = async (id: string, code: string, extra: Record<string, unknown> = {}) => {
      const r = await call('POST', `/v1/sessions/${id}/exec`, { code, ...extra });
      assert.equal(r.statusCode, 200, r.body);
      return r.json();
    };

    before(async () => {
      engine = await createEngine({ poolSize: 2, onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
      server = mk(engine);
    }, { timeout: 30 * 60_000 });

    after(async () => {
      await server?.app.close();
      await engine?.close(1000);
    });

    test('the lifecycle: create, upload, numpy, download, fork ×3, pause, restart, resume, delete, nothing left', async () => {
      const c = await call('POST', '/v1/sessions', { language: 'python', name: 'lifecycle' });
      assert.equal(c.statusCode, 201, c.body);
      const id = c.json().id as string;
      // 1. upload a CSV
      const csv = 'x,y\n1,2\n3,4\n5,6\n';
      const up = await call('PUT', `/v1/sessions/${id}/files?path=/workspace/data.csv&parents=true`, csv, { 'content-type': 'text/csv' });
      assert.equal(up.statusCode, 200, up.body);
      assert.equal(up.json().size, csv.length);
      // 2. numpy reads it and writes a result; download the result
      const r = await exec(id, [
        'import numpy as np',
        "a = np.loadtxt('/workspace/data.csv', delimiter=',', skiprows=1)",
        "open('/workspace/result.txt', 'w').write(str(a.sum(axis=0).tolist()))",
        'int(a.sum())',
      ].join('\n'));
      assert.equal(r.exit_code, 0, r.stderr);
      assert.equal(r.result, '21');
      assert.deepEqual(r.side_effects.files_created.map((f: { path: string; size: number }) => [f.path, f.size]), [['/workspace/result.txt', 11]]);
      const got = await call('GET', `/v1/sessions/${id}/files?path=/workspace/result.txt`);
      assert.equal(got.body, '[9.0, 12.0]');
      // Globals persist.
      assert.equal((await exec(id, 'a.shape')).result, '(3, 2)');
      // 3. fork into 3 that diverge; each sees only its own changes
      const f = await call('POST', `/v1/sessions/${id}/fork`, { count: 3 });
      assert.equal(f.statusCode, 201, f.body);
      const kids = (f.json().sessions as Array<{ id: string }>).map((k) => k.id);
      assert.equal(kids.length, 3);
      for (const [i, k] of kids.entries()) await exec(k, `mine = ${i}\nopen('/workspace/kid${i}.txt', 'w').write('${i}')`);
      for (const [i, k] of kids.entries()) {
        assert.equal((await exec(k, 'mine')).result, String(i));
        const ls = await call('GET', `/v1/sessions/${k}/files?path=/workspace`);
        assert.deepEqual(ls.json().entries.map((e: { name: string }) => e.name).sort(), ['data.csv', `kid${i}.txt`, 'result.txt']);
      }
      assert.match((await exec(id, "'mine' in globals()")).result, /False/);
      // 4. pause one, restart the engine and the server, resume it with its state
      const p = await call('POST', `/v1/sessions/${kids[0]}/pause`);
      assert.equal(p.statusCode, 200, p.body);
      assert.equal(p.json().state, 'paused');
      await server.app.close();
      await engine.close(1000);
      engine = await createEngine({ poolSize: 2 });
      await engine.ready();
      server = mk(engine);
      assert.equal((await exec(kids[0]!, 'mine')).result, '0');
      assert.equal((await call('GET', `/v1/sessions/${kids[0]}/files?path=/workspace/kid0.txt`)).body, '0');
      // 5. delete them all; nothing is left
      for (const s of (await call('GET', '/v1/sessions')).json().sessions as Array<{ id: string }>) {
        assert.equal((await call('DELETE', `/v1/sessions/${s.id}`)).statusCode, 204);
      }
      assert.deepEqual((await call('GET', '/v1/sessions')).json().sessions, []);
      assert.equal(engine.health().liveForks, 0);
    });

    test('discard and the side-effect report, exactly', async () => {
      const id = (await call('POST', '/v1/sessions', {})).json().id as string;
      await call('PUT', `/v1/sessions/${id}/files?path=/workspace/keep.txt&parents=true`, 'keep');
      await call('PUT', `/v1/sessions/${id}/files?path=/workspace/old.txt`, 'old');
      await exec(id, 'n = 1');
      const d = await exec(id, [
        'import os',
        'n = 2',
        "open('/workspace/new.txt', 'w').write('12345')",
        "open('/workspace/keep.txt', 'a').write('!')",
        "os.remove('/workspace/old.txt')",
        'n',
      ].join('\n'), { discard: true });
      assert.equal(d.result, '2');
      assert.deepEqual(d.side_effects.files_created, [{ path: '/workspace/new.txt', size: 5 }]);
      assert.deepEqual(d.side_effects.files_modified, [{ path: '/workspace/keep.txt', size: 5 }]);
      assert.deepEqual(d.side_effects.files_deleted, [{ path: '/workspace/old.txt' }]);
      assert.equal(d.side_effects.files_truncated, false);
      assert.ok(d.side_effects.pages_dirtied > 0);
      assert.ok(d.side_effects.peak_memory_bytes > 0);
      // The session itself is untouched.
      assert.equal((await exec(id, 'n')).result, '1');
      const ls = await call('GET', `/v1/sessions/${id}/files?path=/workspace`);
      assert.deepEqual(ls.json().entries.map((e: { name: string; size: number }) => [e.name, e.size]).sort(), [['keep.txt', 4], ['old.txt', 3]]);
      // Tar in and out through the engine.
      const tar = Buffer.from(writeTar([{ name: 'src/m.py', type: 'file', mode: 0o644, mtime: 0, data: Buffer.from('print(5)') }]));
      assert.equal((await call('PUT', `/v1/sessions/${id}/archive?path=/workspace&delete=true`, tar, { 'content-type': 'application/x-tar' })).statusCode, 200);
      const back = readTar((await call('GET', `/v1/sessions/${id}/archive?path=/workspace`)).rawPayload);
      assert.deepEqual(back.map((e) => e.name).sort(), ['src', 'src/m.py']);
      assert.equal((await call('DELETE', `/v1/sessions/${id}`)).statusCode, 204);
    });
  });

  describe('README session examples', { timeout: 40 * 60_000 }, () => {
    let dir: string;
    let srv: ChildProcess;
    let env: NodeJS.ProcessEnv;
    let log = '';
    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'forkbox-readme-sessions-'));
      writeFileSync(join(dir, 'keys'), `readme:${KEY}\n`);
      srv = spawn(process.execPath, [join(repoRoot, 'dist/src/cli/main.js'), 'serve', '--port', '0'], {
        env: { ...process.env, FORKBOX_API_KEYS_FILE: join(dir, 'keys'), FORKBOX_RATE_LIMIT: '0', FORKBOX_POOL_SIZE: '2', FORKBOX_LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      srv.stderr!.on('data', (d: Buffer) => { log += d.toString(); });
      const base = await new Promise<string>((resolve, reject) => {
        let out = '';
        srv.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /forkbox listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        srv.once('exit', (code) => reject(new Error(`forkbox serve exited ${code}:\n${log.slice(-4000)}`)));
      });
      env = { ...process.env, FORKBOX_API_KEY: KEY, FORKBOX_BASE_URL: base, PATH: `${join(repoRoot, 'node_modules/.bin')}:${process.env.PATH}`,
        PYTHONPATH: join(repoRoot, 'sdk/python'), PYTHONDONTWRITEBYTECODE: '1' };
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'readme-sessions', private: true, type: 'module' }));
      await run('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error', join(repoRoot, 'sdk/js')], { cwd: dir, env });
    }, { timeout: 30 * 60_000 });
    after(async () => {
      if (srv && srv.exitCode === null) srv.kill('SIGTERM');
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    const blocks = sessionBlocks();
    test('the section has curl, SDK and CLI examples', () => {
      for (const lang of ['bash', 'python', 'js']) assert.ok(blocks.some((b) => b.lang === lang), `no \`\`\`${lang} block`);
    });
    for (const b of blocks) {
      test(`${b.lang} block at line ${b.line}`, async () => {
        try {
          if (b.lang === 'bash') {
            // `forkbox` is the CLI of this checkout; the examples' URL is the test server's.
            const code = `forkbox() { "${process.execPath}" "${join(repoRoot, 'dist/src/cli/main.js')}" "$@"; }\n` + b.code.replaceAll('http://127.0.0.1:8080', env.FORKBOX_BASE_URL!);
            await run('bash', ['-euo', 'pipefail', '-c', code], { env, cwd: dir });
          } else if (b.lang === 'python') {
            writeFileSync(join(dir, 'example.py'), b.code);
            await run('python3', [join(dir, 'example.py')], { env, cwd: dir });
          } else {
            writeFileSync(join(dir, 'example.mjs'), b.code);
            await run(process.execPath, [join(dir, 'example.mjs')], { env, cwd: dir });
          }
        } catch (e) {
          const x = e as { stdout?: string; stderr?: string; message: string };
          assert.fail(`README sessions ${b.lang} block at line ${b.line} failed: ${x.message}\nstdout: ${x.stdout}\nstderr: ${x.stderr}`);
        }
      });
    }
  });
}
