// server-budget.test.ts — byte budgets and fairness on the REAL engine: 8
// concurrent batches of 64 executions that each write 1 MiB of every byte value
// to stdout and to stderr. Every answer must be a 200 or a clear error envelope,
// the server must answer afterwards, and the process's peak RSS (sampled) must
// stay under the bound in docs/security.md. Then one key floods while another
// key's print(1) is served. Without /dev/kvm: one "skipped:" line.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';
import { createEngine } from '../../src/engine/index.js';
import type { Engine } from '../../src/engine/types.js';
import { buildServer, type ForkboxServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig, type ServerConfig } from '../../src/server/config.js';

const MiB = 1024 * 1024;
/** The bound documented in docs/security.md: peak RSS at most this much above the RSS before the flood. */
const RSS_GROWTH_BOUND = 1536 * MiB;

const FLOOD = [
  'import sys',
  'b = bytes(range(256)) * 4096',
  'sys.stdout.buffer.write(b); sys.stdout.flush()',
  'sys.stderr.buffer.write(b); sys.stderr.flush()',
].join('\n');

if (!existsSync('/dev/kvm')) {
  process.stdout.write('skipped: server budget e2e tests: /dev/kvm is absent\n');
} else {
  describe('byte budgets and fairness on the real engine', { timeout: 30 * 60_000 }, () => {
    let engine: Engine;
    const servers: ForkboxServer[] = [];
    const mk = (over: Partial<ServerConfig> = {}, keys = ''): ForkboxServer => {
      const s = buildServer({ engine, config: { ...loadServerConfig([], {}), ...over }, keys: parseKeyFile(keys) });
      servers.push(s);
      return s;
    };

    before(async () => {
      engine = await createEngine({ poolSize: 4, onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
    }, { timeout: 20 * 60_000 });

    after(async () => {
      for (const s of servers) await s.app.close();
      await engine?.close(1000);
    });

    // First with the defaults (the batch output cap answers 413), then with that cap lifted (the global
    // result budget answers 503). One client address sends all 8 batches: the per-key queue cap is lifted.
    for (const [label, over] of [['defaults', {}], ['no batch cap', { maxBatchOutputBytes: 4096 * MiB }]] as const) {
    test(`8 concurrent batches of 64 binary-output execs (${label}): clear answers, server up, RSS bounded`, async () => {
      const s = mk({ rateLimit: 0, maxQueuedPerKey: 1000, ...over });
      const one = await s.app.inject({ method: 'POST', url: '/v1/exec', payload: { code: FLOOD } });
      assert.equal(one.statusCode, 200);
      assert.equal(one.json().stdout_truncated, false);
      const jsonPerExec = Buffer.byteLength(one.body);
      global.gc?.();
      const base = process.memoryUsage().rss;
      let peak = base;
      const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 10);
      const batch = { executions: Array.from({ length: 64 }, () => ({ code: FLOOD, timeout_seconds: 60 })) };
      const t0 = performance.now();
      const answers = await Promise.all(Array.from({ length: 8 }, async () => {
        const r = await s.app.inject({ method: 'POST', url: '/v1/exec/batch', payload: batch });
        peak = Math.max(peak, process.memoryUsage().rss);
        if (r.statusCode === 200) {
          const n = (r.json().results as unknown[]).length;
          return { status: 200, code: `results:${n}`, retryAfter: undefined };
        }
        const e = r.json();
        assert.equal(typeof e.error, 'string', r.body.slice(0, 300));
        assert.equal(e.request_id, r.headers['x-request-id']);
        return { status: r.statusCode, code: e.code as string, retryAfter: r.headers['retry-after'] };
      }));
      clearInterval(sampler);
      const ms = Math.round(performance.now() - t0);
      for (const a of answers) {
        const clear = (a.status === 200 && a.code === 'results:64') || (a.status === 413 && a.code === 'PayloadTooLarge') ||
          (a.status === 503 && a.code === 'Overloaded' && Number(a.retryAfter) >= 1) || (a.status === 429 && a.code === 'RateLimited');
        assert.ok(clear, JSON.stringify(a));
      }
      const growth = peak - base;
      process.stdout.write(`# budget flood (${label}): ${ms} ms; one exec's answer ${(jsonPerExec / MiB).toFixed(2)} MiB of JSON; answers ${JSON.stringify(answers.map((a) => `${a.status} ${a.code}`))}; ` +
        `rss before ${(base / MiB).toFixed(0)} MiB, peak ${(peak / MiB).toFixed(0)} MiB (+${(growth / MiB).toFixed(0)} MiB); result budget peak ${(s.ctx.resultBudget.peak / MiB).toFixed(1)} MiB\n`);
      assert.ok(growth < RSS_GROWTH_BOUND, `peak RSS grew by ${(growth / MiB).toFixed(0)} MiB`);
      assert.ok(s.ctx.resultBudget.peak <= s.ctx.config.resultBudgetBytes + 8 * jsonPerExec);
      assert.equal(s.ctx.resultBudget.inUse, 0, 'every hold returned');
      assert.equal(s.ctx.bodyBudget.inUse, 0, 'every hold returned');
      const after1 = await s.app.inject({ method: 'POST', url: '/v1/exec', payload: { code: 'print(1)' } });
      assert.equal(after1.statusCode, 200);
      assert.equal(after1.json().stdout, '1\n');
    });
    }

    test('two keys: one floods, the other key\'s print(1) is served ahead of the flood', async () => {
      const A = 'sk_flood_e2e_0123456789';
      const B = 'sk_quiet_e2e_0123456789';
      const s = mk({ rateLimit: 0, maxQueuedPerKey: 400 }, `a:${A}\nb:${B}`);
      const auth = (k: string) => ({ authorization: `Bearer ${k}` });
      let floodDone = 0;
      const flood = Array.from({ length: 4 }, () => s.app.inject({
        method: 'POST', url: '/v1/exec/batch', headers: auth(A),
        payload: { executions: Array.from({ length: 64 }, () => ({ code: 'import time; time.sleep(0.05)' })) },
      }).then((r) => { floodDone++; return r; }));
      await new Promise((r) => setTimeout(r, 200));
      const t0 = performance.now();
      const quiet = await s.app.inject({ method: 'POST', url: '/v1/exec', headers: auth(B), payload: { code: 'print(1)' } });
      const ms = Math.round(performance.now() - t0);
      assert.equal(quiet.statusCode, 200);
      assert.equal(quiet.json().stdout, '1\n');
      assert.equal(floodDone, 0, 'the quiet key did not wait for the flood to drain');
      process.stdout.write(`# fairness: print(1) of the quiet key answered in ${ms} ms while the other key had 256 executions queued\n`);
      for (const r of await Promise.all(flood)) assert.equal(r.statusCode, 200, r.body.slice(0, 200));
    });
  });
}
