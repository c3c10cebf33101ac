// sdk-clients.test.ts — both SDKs over HTTP against the app on the REAL engine
// and python template: run (numpy, exit codes, timeout, env/stdin), batch
// order, health, typed errors (InvalidRequest, Unauthorized), and a JS
// AbortSignal that cancels the exec on the server. Without /dev/kvm: one
// "skipped:" line.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { createEngine } from '../../src/engine/index.js';
import type { Engine } from '../../src/engine/types.js';
import { repoRoot } from '../../src/lib/paths.js';
import { buildServer, type ForkboxServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig } from '../../src/server/config.js';

const KEY = 'sk_sdk_e2e_0123456789abcdef';

if (!existsSync('/dev/kvm')) {
  process.stdout.write('skipped: SDK e2e tests: /dev/kvm is absent\n');
} else {
  describe('SDKs against the real engine', { timeout: 40 * 60_000 }, () => {
    let engine: Engine;
    let server: ForkboxServer;
    let base = '';

    before(async () => {
      engine = await createEngine({ poolSize: 4, onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
      server = buildServer({ engine, config: { ...loadServerConfig([], {}), rateLimit: 0 }, keys: parseKeyFile(`sdk:${KEY}`) });
      await server.app.listen({ host: '127.0.0.1', port: 0 });
      base = `http://127.0.0.1:${(server.app.server.address() as { port: number }).port}`;
    }, { timeout: 30 * 60_000 });

    after(async () => {
      await server?.app.close();
      await engine?.close(1000);
    });

    test('TypeScript SDK', async () => {
      const sdk = await import(join(repoRoot, 'sdk/js/lib/index.js'));
      const sb = new sdk.Sandbox(KEY, base);
      const r = await sb.run('import numpy as np\nprint(np.arange(10).mean())');
      assert.equal(r.stdout, '4.5\n');
      assert.equal(r.exitCode, 0);
      assert.equal(r.outcome, 'exited');
      assert.ok(r.totalTimeMs > 0 && r.forkTimeMs >= 0);
      const io = await sb.run('import os, sys\nprint(os.environ["A"] + sys.stdin.read())', { env: { A: 'x' }, stdin: 'y' });
      assert.equal(io.stdout, 'xy\n');
      assert.equal((await sb.run('import sys; sys.exit(5)')).exitCode, 5);
      const t = await sb.run('while True: pass', { timeout: 1 });
      assert.equal(t.outcome, 'timeout');
      const batch = await sb.runBatch(Array.from({ length: 6 }, (_, i) => `print(${i} * ${i})`));
      assert.deepEqual(batch.map((x: { stdout: string }) => x.stdout), [0, 1, 4, 9, 16, 25].map((n) => `${n}\n`));
      assert.equal((await sb.health()).status, 'ok');
      await assert.rejects(sb.run('1', { timeout: 100000 }), (e: Error) => e instanceof sdk.InvalidRequest && /timeout_seconds/.test(e.message));
      await assert.rejects(new sdk.Sandbox('sk_bad_key_0123456789abc', base).run('1'), sdk.Unauthorized);
      // Aborting the request cancels the exec on the server.
      const ac = new AbortController();
      const p = sb.run('while True: pass', { timeout: 60, signal: ac.signal });
      const t0 = Date.now();
      while (engine.health().inFlight === 0 && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
      ac.abort();
      await assert.rejects(p, (e: Error) => e.name === 'AbortError');
      const t1 = Date.now();
      while (engine.health().inFlight > 0 && Date.now() - t1 < 5000) await new Promise((r) => setTimeout(r, 10));
      assert.equal(engine.health().inFlight, 0);
    });

    test('Python SDK', async () => {
      const script = `
import json, sys, forkbox
sb = forkbox.Sandbox(api_key=sys.argv[2], base_url=sys.argv[1])
out = {}
r = sb.run("import numpy as np\\nprint(np.arange(10).mean())")
out["numpy"] = [r.stdout, r.exit_code, r.outcome, r.total_time_ms > 0]
out["io"] = sb.run("import os, sys\\nprint(os.environ['A'] + sys.stdin.read())", env={"A": "x"}, stdin="y").stdout
out["exit"] = sb.run("raise SystemExit(6)").exit_code
t = sb.run("while True: pass", timeout=1)
out["timeout"] = [t.outcome, t.exit_code]
out["batch"] = [x.stdout for x in sb.run_batch([f"print({i} + 1)" for i in range(5)])]
out["health"] = sb.health()["status"]
try:
    sb.run("1", language="cobol")
except forkbox.InvalidRequest as e:
    out["invalid"] = [e.status, e.message]
try:
    forkbox.Sandbox(api_key="sk_bad_key_0123456789abc", base_url=sys.argv[1]).run("1")
except forkbox.Unauthorized as e:
    out["unauth"] = e.status
print(json.dumps(out))
`;
      const p = await promisify(execFile)('python3', ['-c', script, base, KEY], {
        env: { ...process.env, PYTHONPATH: join(repoRoot, 'sdk/python'), PYTHONDONTWRITEBYTECODE: '1' }, timeout: 120_000,
      });
      const out = JSON.parse(p.stdout);
      assert.deepEqual(out.numpy, ['4.5\n', 0, 'exited', true]);
      assert.equal(out.io, 'xy\n');
      assert.equal(out.exit, 6);
      assert.deepEqual(out.timeout, ['timeout', 124]);
      assert.deepEqual(out.batch, ['1\n', '2\n', '3\n', '4\n', '5\n']);
      assert.equal(out.health, 'ok');
      assert.equal(out.invalid[0], 400);
      assert.match(out.invalid[1], /language must be one of: python/);
      assert.equal(out.unauth, 401);
    });
  });
}
