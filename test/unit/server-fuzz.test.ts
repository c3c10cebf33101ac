// server-fuzz.test.ts — random request bodies (well-formed JSON of random
// shape, broken JSON, random bytes, odd content types) into the app: every
// answer is a 200 result or a 4xx/501 envelope with a message, never a 5xx
// and never a crash. Deterministic seed so a failure can be replayed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Engine, EngineHealth, ExecRequest, ExecResult } from '../../src/engine/types.js';
import { buildServer } from '../../src/server/app.js';
import { loadServerConfig } from '../../src/server/config.js';

class OkEngine implements Engine {
  async ready(): Promise<void> {}
  health(): EngineHealth {
    return { ready: true, templates: {}, pool: { ready: 0, target: 0, created: 0, taken: 0, misses: 0 }, liveForks: 0, inFlight: 0 };
  }
  async close(): Promise<void> {}
  async exec(req: ExecRequest): Promise<ExecResult> {
    assert.equal(typeof req.code, 'string');
    assert.ok(req.timeoutSeconds > 0 && req.timeoutSeconds <= 300);
    return { id: 'exec_f', stdout: '', stderr: '', exitCode: 0, outcome: 'exited', stdoutTruncated: false, stderrTruncated: false, forkTimeMs: 0, execTimeMs: 0, totalTimeMs: 0 };
  }
}

let seed = 0x5eed1234;
const rnd = (): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const KEYS = ['code', 'language', 'timeout_seconds', 'env', 'stdin', 'executions', 'x', '__proto__', 'constructor', ''];

function value(depth: number): unknown {
  switch (Math.floor(rnd() * (depth > 2 ? 6 : 8))) {
    case 0: return null;
    case 1: return rnd() < 0.5;
    case 2: return pick([0, -1, 1e308, -0, 0.5, 30, 301, 2 ** 53, NaN].map((n) => (Number.isNaN(n) ? 1 : n)));
    case 3: return pick(['', 'print(1)', 'python', 'node', 'cobol', '\u0000', '\ud800', 'é'.repeat(50), '30']);
    case 4: return 'x'.repeat(Math.floor(rnd() * 300));
    case 5: return Math.floor(rnd() * 1000) - 500;
    case 6: return Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = Math.floor(rnd() * 5); i > 0; i--) o[pick(KEYS)] = value(depth + 1);
      return o;
    }
  }
}

test('random bodies never produce a 5xx', async () => {
  const { app } = buildServer({ engine: new OkEngine(), config: { ...loadServerConfig([], {}), rateLimit: 0, bodyLimitBytes: 8192 } });
  const seen = new Map<number, number>();
  for (let i = 0; i < 1500; i++) {
    const url = pick(['/v1/exec', '/v1/exec/batch']);
    let payload: string | Buffer;
    let type = 'application/json';
    const kind = rnd();
    if (kind < 0.6) {
      const v = value(0);
      payload = JSON.stringify(url === '/v1/exec/batch' && rnd() < 0.5 ? { executions: [v, value(1)] } : v) ?? 'null';
    } else if (kind < 0.75) {
      payload = JSON.stringify(value(0)).slice(0, Math.floor(rnd() * 20)) + pick(['{', '"', ']', '\\', '']);
    } else if (kind < 0.9) {
      payload = Buffer.from(Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256)));
    } else {
      payload = JSON.stringify({ code: 'x'.repeat(Math.floor(rnd() * 12000)) });
      type = pick(['application/json', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1']);
    }
    const r = await app.inject({ method: 'POST', url, payload, headers: { 'content-type': type } });
    seen.set(r.statusCode, (seen.get(r.statusCode) ?? 0) + 1);
    assert.ok(r.statusCode < 500 || r.statusCode === 501, `${r.statusCode} for ${String(payload).slice(0, 200)}: ${r.body}`);
    if (r.statusCode !== 200) {
      const e = r.json();
      assert.ok(typeof e.code === 'string' && typeof e.error === 'string' && e.error.length > 0 && e.request_id === r.headers['x-request-id'], r.body);
    }
  }
  assert.ok((seen.get(200) ?? 0) > 0 && (seen.get(400) ?? 0) > 0, JSON.stringify([...seen]));
  await app.close();
});
