// server-app.test.ts — the HTTP app in-process (fastify.inject) over an Engine
// double that runs tiny scripted "programs" (no VM: this tests validation,
// auth, limits, envelopes, batching, metrics and logs; the real engine is
// exercised by test/e2e/server-*.test.ts). A client-disconnect test uses a socket.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { test } from 'node:test';
import type { Engine, EngineHealth, ExecRequest, ExecResult } from '../../src/engine/types.js';
import { internal, templateNotReady } from '../../src/lib/errors.js';
import { setLogLevel, setLogSink } from '../../src/lib/log.js';
import { buildServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig, type ServerConfig } from '../../src/server/config.js';

/** Programs: "echo X", "exit N", "sleep MS", "platform-error", "not-ready", "env NAME", "stdin". */
class DoubleEngine implements Engine {
  live = 0;
  running = 0;
  maxRunning = 0;
  seen: ExecRequest[] = [];
  aborted = 0;
  private n = 0;
  async ready(): Promise<void> {}
  health(): EngineHealth {
    return { ready: true, templates: { python: { ready: true, key: 'k0' } }, pool: { ready: 4, target: 4, created: 4, taken: 0, misses: 0 }, liveForks: this.live, inFlight: this.running };
  }
  async close(): Promise<void> {}
  async exec(req: ExecRequest, signal?: AbortSignal): Promise<ExecResult> {
    this.seen.push(req);
    const [op, arg = ''] = req.code.split(' ');
    if (op === 'platform-error') throw internal('vmm exploded: secret detail');
    if (op === 'not-ready') throw templateNotReady('python template is building');
    this.live++;
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    const id = `exec_${++this.n}`;
    const base = { id, stderr: '', stdoutTruncated: false, stderrTruncated: false, forkTimeMs: 0.25, execTimeMs: 1.5, totalTimeMs: 2 };
    try {
      if (op === 'sleep') {
        const outcome = await new Promise<'exited' | 'cancelled'>((resolve) => {
          const t = setTimeout(() => resolve('exited'), Number(arg));
          signal?.addEventListener('abort', () => { clearTimeout(t); this.aborted++; resolve('cancelled'); }, { once: true });
        });
        return { ...base, stdout: outcome === 'exited' ? 'slept\n' : '', exitCode: outcome === 'exited' ? 0 : 137, outcome };
      }
      if (op === 'exit') return { ...base, stdout: '', stderr: 'boom\n', exitCode: Number(arg), outcome: 'exited' };
      if (op === 'env') return { ...base, stdout: req.env?.[arg] ?? '', exitCode: 0, outcome: 'exited' };
      if (op === 'stdin') return { ...base, stdout: req.stdin ?? '', exitCode: 0, outcome: 'exited' };
      return { ...base, stdout: arg + '\n', exitCode: 0, outcome: 'exited' };
    } finally {
      this.live--;
      this.running--;
    }
  }
}

const KEY = 'sk_test_0123456789abcdef';
function setup(over: Partial<ServerConfig> = {}, keys = '') {
  const engine = new DoubleEngine();
  const config = { ...loadServerConfig([], {}), ...over };
  const server = buildServer({ engine, config, keys: parseKeyFile(keys) });
  return { engine, server, app: server.app };
}
const post = (app: ReturnType<typeof setup>['app'], url: string, payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, payload: payload as object, headers });

function captureLogs(): { lines: Record<string, unknown>[]; restore: () => void } {
  const lines: Record<string, unknown>[] = [];
  const prev = setLogSink((l) => lines.push(JSON.parse(l)));
  setLogLevel('info'); // whatever FORKBOX_LOG_LEVEL says
  return { lines, restore: () => { setLogSink(prev); setLogLevel((process.env.FORKBOX_LOG_LEVEL as 'info' | undefined) ?? 'info'); } };
}

test('POST /v1/exec: Zeroboot-shaped result, defaults applied, request id header', async () => {
  const { app, engine } = setup();
  const res = await post(app, '/v1/exec', { code: 'echo hi' });
  assert.equal(res.statusCode, 200);
  const body = res.json();
  assert.deepEqual(Object.keys(body).sort(), ['duration_ms', 'exec_time_ms', 'exit_code', 'fork_time_ms', 'id', 'outcome', 'output', 'results', 'results_truncated', 'stderr', 'stderr_truncated',
    'stdout', 'stdout_truncated', 'total_time_ms'].sort());
  assert.equal(body.stdout, 'hi\n');
  assert.equal(body.output, 'hi\n', 'output is stdout (Zeroboot\'s field)');
  assert.equal(body.duration_ms, body.total_time_ms);
  assert.equal(body.exit_code, 0);
  assert.match(String(res.headers['x-request-id']), /^req_/);
  assert.equal(engine.seen[0]!.language, 'python');
  assert.equal(engine.seen[0]!.timeoutSeconds, 30);
  // A client's X-Request-Id is logged beside the server's id, never instead of it.
  const logs = captureLogs();
  const res2 = await post(app, '/v1/exec', { code: 'echo x' }, { 'x-request-id': 'client-id-42' });
  logs.restore();
  assert.match(String(res2.headers['x-request-id']), /^req_/);
  const rec = logs.lines.find((l) => l.event === 'http.request');
  assert.equal(rec?.requestId, res2.headers['x-request-id']);
  assert.equal(rec?.clientRequestId, 'client-id-42');
  assert.equal(logs.lines.find((l) => l.event === 'exec.finished')?.clientRequestId, 'client-id-42');
});

test('POST /v1/exec: guest failure is 200 with its exit code; env and stdin pass through', async () => {
  const { app } = setup();
  const r = await post(app, '/v1/exec', { code: 'exit 3', timeout_seconds: 5 });
  assert.equal(r.statusCode, 200);
  assert.equal(r.json().exit_code, 3);
  assert.equal(r.json().stderr, 'boom\n');
  assert.equal(r.json().output, '', 'output is stdout alone: stderr is not merged into it');
  assert.equal((await post(app, '/v1/exec', { code: 'env GREETING', env: { GREETING: 'hello' } })).json().stdout, 'hello');
  assert.equal((await post(app, '/v1/exec', { code: 'stdin', stdin: 'in put' })).json().stdout, 'in put');
});

test('validation: clear 400 envelopes', async () => {
  const { app } = setup();
  const cases: [unknown, RegExp][] = [
    [{}, /missing required field "code"/],
    [{ code: 1 }, /body\.code must be a string/],
    [{ code: 'x', language: 'cobol' }, /body\.language must be one of: python/],
    [{ code: 'x', timeout_seconds: 0 }, /body\.timeout_seconds must be > 0/],
    [{ code: 'x', timeout_seconds: 301 }, /body\.timeout_seconds must be <= 300/],
    [{ code: 'x', timeout_seconds: '30' }, /body\.timeout_seconds must be a number/],
    [{ code: 'x', extra: true }, /unknown field "extra"/],
    [{ code: 'x', env: { A: 1 } }, /body\.env\.A must be a string/],
    [{ code: 'x', env: { '1BAD': 'v' } }, /invalid variable name/],
    [[1, 2], /body must be an object/],
  ];
  for (const [payload, re] of cases) {
    const r = await post(app, '/v1/exec', payload);
    assert.equal(r.statusCode, 400, JSON.stringify(payload));
    const e = r.json();
    assert.equal(e.code, 'InvalidRequest');
    assert.match(e.error, re, JSON.stringify(payload));
    assert.equal(e.request_id, r.headers['x-request-id']);
  }
  const rb = await post(app, '/v1/exec', { code: 'puts 1', language: 'ruby' });
  assert.equal(rb.statusCode, 501);
  assert.equal(rb.json().code, 'Unsupported');
  assert.match(rb.json().error, /language "ruby" is not supported by this server yet \(supported: python, javascript, typescript, /);
  const bad = await app.inject({ method: 'POST', url: '/v1/exec', payload: '{"code":', headers: { 'content-type': 'application/json' } });
  assert.equal(bad.statusCode, 400);
  assert.match(bad.json().error, /not valid JSON/);
  const text = await app.inject({ method: 'POST', url: '/v1/exec', payload: 'print(1)', headers: { 'content-type': 'text/plain' } });
  assert.equal(text.statusCode, 415);
  assert.equal(text.json().code, 'InvalidRequest');
});

test('body cap → 413 envelope', async () => {
  const { app } = setup({ bodyLimitBytes: 4096 });
  const r = await post(app, '/v1/exec', { code: 'x'.repeat(5000) });
  assert.equal(r.statusCode, 413);
  assert.equal(r.json().code, 'PayloadTooLarge');
  assert.match(r.json().error, /larger than 4096 bytes/);
});

test('auth: 401 without/with wrong key, health open, metrics behind auth unless configured', async () => {
  const { app } = setup({}, `ci:${KEY}`);
  const none = await post(app, '/v1/exec', { code: 'echo a' });
  assert.equal(none.statusCode, 401);
  assert.equal(none.json().code, 'Unauthorized');
  assert.match(none.json().error, /missing API key/);
  assert.equal(none.headers['www-authenticate'], 'Bearer');
  const wrong = await post(app, '/v1/exec', { code: 'echo a' }, { authorization: 'Bearer sk_wrong_0123456789abcdef' });
  assert.equal(wrong.statusCode, 401);
  assert.match(wrong.json().error, /invalid API key/);
  const ok = await post(app, '/v1/exec', { code: 'echo a' }, { authorization: `Bearer ${KEY}` });
  assert.equal(ok.statusCode, 200);
  const health = await app.inject('/v1/health');
  assert.equal(health.statusCode, 200);
  assert.deepEqual(health.json().templates, { python: { ready: true } });
  const trusted = await app.inject({ url: '/v1/health', headers: { authorization: `Bearer ${KEY}` } });
  assert.deepEqual(trusted.json().templates, { python: { ready: true, key: 'k0' } });
  assert.equal(health.json().status, 'ok');
  assert.equal((await app.inject('/v1/metrics')).statusCode, 401);
  assert.equal((await app.inject({ url: '/v1/metrics', headers: { authorization: `Bearer ${KEY}` } })).statusCode, 200);
  assert.equal((await app.inject('/v1/nope')).statusCode, 401, 'unknown routes do not leak past auth');
  const open = setup({ metricsAuth: false }, `ci:${KEY}`);
  assert.equal((await open.app.inject('/v1/metrics')).statusCode, 200);
});

test('rate limit → 429 + Retry-After, per key', async () => {
  const { app } = setup({ rateLimit: 0.01, rateBurst: 2 }, `a:${KEY}\nb:sk_other_0123456789abcdef`);
  const h = { authorization: `Bearer ${KEY}` };
  assert.equal((await post(app, '/v1/exec', { code: 'echo 1' }, h)).statusCode, 200);
  assert.equal((await post(app, '/v1/exec', { code: 'echo 2' }, h)).statusCode, 200);
  const r = await post(app, '/v1/exec', { code: 'echo 3' }, h);
  assert.equal(r.statusCode, 429);
  assert.equal(r.json().code, 'RateLimited');
  assert.ok(Number(r.headers['retry-after']) >= 1);
  assert.equal((await post(app, '/v1/exec', { code: 'echo 4' }, { authorization: 'Bearer sk_other_0123456789abcdef' })).statusCode, 200);
});

test('concurrency limit with a bounded queue → 503 + Retry-After when full', async () => {
  const { app, engine } = setup({ maxConcurrency: 1, maxQueue: 1 });
  const a = post(app, '/v1/exec', { code: 'sleep 150' });
  const b = post(app, '/v1/exec', { code: 'sleep 10' });
  await new Promise((r) => setTimeout(r, 30));
  const c = await post(app, '/v1/exec', { code: 'echo c' });
  assert.equal(c.statusCode, 503);
  assert.equal(c.json().code, 'Overloaded');
  assert.ok(Number(c.headers['retry-after']) >= 1);
  assert.equal((await a).statusCode, 200);
  assert.equal((await b).statusCode, 200);
  assert.equal(engine.maxRunning, 1);
});

test('batch: results in order, bounded parallelism, size cap, platform error fails the batch', async () => {
  const { app, engine } = setup({ batchParallelism: 3, maxBatch: 10 });
  const executions = Array.from({ length: 8 }, (_, i) => ({ code: i % 2 ? `sleep ${40 - i * 4}` : `echo ${i}` }));
  const r = await post(app, '/v1/exec/batch', { executions });
  assert.equal(r.statusCode, 200);
  const results = r.json().results as { stdout: string; output: string; duration_ms: number; total_time_ms: number }[];
  assert.deepEqual(results.map((x) => x.stdout), executions.map((e, i) => (i % 2 ? 'slept\n' : `${i}\n`)));
  assert.deepEqual(results.map((x) => [x.output, x.duration_ms]), results.map((x) => [x.stdout, x.total_time_ms]), 'batch items carry output and duration_ms');
  assert.ok(engine.maxRunning <= 3 && engine.maxRunning >= 2, `max running ${engine.maxRunning}`);
  const big = await post(app, '/v1/exec/batch', { executions: Array.from({ length: 11 }, () => ({ code: 'echo' })) });
  assert.equal(big.statusCode, 400);
  assert.match(big.json().error, /must NOT have more than 10 items/);
  const badItem = await post(app, '/v1/exec/batch', { executions: [{ code: 'echo' }, { code: 'echo', language: 'cobol' }] });
  assert.equal(badItem.statusCode, 400);
  assert.match(badItem.json().error, /body\.executions\[1\]\.language must be one of/);
  const failed = await post(app, '/v1/exec/batch', { executions: [{ code: 'sleep 200' }, { code: 'platform-error' }] });
  assert.equal(failed.statusCode, 500);
  assert.equal(failed.json().code, 'Internal');
  assert.equal(engine.live, 0);
  assert.ok(engine.aborted >= 1, 'the sibling exec was cancelled');
});

test('platform errors: envelope, status from the catalog, no internal detail leaked', async () => {
  const { app } = setup();
  const logs = captureLogs();
  const r = await post(app, '/v1/exec', { code: 'platform-error' });
  logs.restore();
  assert.equal(r.statusCode, 500);
  assert.equal(r.json().code, 'Internal');
  assert.doesNotMatch(r.json().error, /secret detail/);
  assert.ok(logs.lines.some((l) => l.event === 'http.error' && JSON.stringify(l).includes('secret detail')));
  const nr = await post(app, '/v1/exec', { code: 'not-ready' });
  assert.equal(nr.statusCode, 503);
  assert.equal(nr.json().code, 'TemplateNotReady');
  assert.equal(nr.headers['retry-after'], '5');
  const nf = await app.inject('/v2/whatever');
  assert.equal(nf.statusCode, 404);
  assert.equal(nf.json().code, 'NotFound');
});

test('metrics: Prometheus text with histograms, counters and gauges', async () => {
  const { app } = setup();
  await post(app, '/v1/exec', { code: 'echo 1' });
  await post(app, '/v1/exec', { code: 'exit 2' });
  await post(app, '/v1/exec', {});
  const r = await app.inject('/v1/metrics');
  assert.equal(r.statusCode, 200);
  assert.match(String(r.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  const t = r.body;
  assert.match(t, /^forkbox_fork_duration_seconds_count 2$/m);
  assert.match(t, /^forkbox_exec_duration_seconds_bucket\{le="0\.0025"\} 2$/m);
  assert.match(t, /^forkbox_total_duration_seconds_sum 0\.004$/m);
  assert.match(t, /^forkbox_executions_total\{language="python",outcome="exited"\} 2$/m);
  assert.match(t, /^forkbox_errors_total\{code="InvalidRequest"\} 1$/m);
  assert.match(t, /^forkbox_pool_ready 4$/m);
  assert.match(t, /^forkbox_live_forks 0$/m);
  assert.match(t, /^# TYPE forkbox_timeouts_total counter$/m);
});

test('metrics: warm and recycled fork counters per template, read from the engine at render time', async () => {
  const engine = new DoubleEngine();
  let recycled = 0;
  Object.assign(engine, { warmStats: (t: string) => (t === 'python' ? { ready: 3, taken: 7, misses: 2, recycled, recycleFailed: 1 } : null) });
  const server = buildServer({ engine, config: loadServerConfig([], {}), keys: [] });
  recycled = 5;
  const t = (await server.app.inject('/v1/metrics')).body;
  assert.match(t, /^# TYPE forkbox_forks_recycled_total counter$/m);
  assert.match(t, /^forkbox_forks_recycled_total\{template="python"\} 5$/m);
  assert.match(t, /^forkbox_warm_forks_ready\{template="python"\} 3$/m);
  assert.match(t, /^forkbox_warm_forks_missed_total\{template="python"\} 2$/m);
  assert.match(t, /^forkbox_forks_recycle_failed_total\{template="python"\} 1$/m);
  // The plain double has no warm pool: no such family at all.
  assert.doesNotMatch((await setup().app.inject('/v1/metrics')).body, /forkbox_forks_recycled_total/);
});

test('logs: request id and key id, never the key; code only when opted in', async () => {
  for (const logCode of [false, true]) {
    const { app } = setup({ logCode }, `ci:${KEY}`);
    const logs = captureLogs();
    const r = await post(app, '/v1/exec', { code: 'echo SECRET_CODE_MARK' }, { authorization: `Bearer ${KEY}` });
    logs.restore();
    const all = JSON.stringify(logs.lines);
    assert.ok(!all.includes(KEY), 'the key never reaches the log');
    const ex = logs.lines.find((l) => l.event === 'exec.finished');
    assert.ok(ex);
    assert.equal(ex.requestId, r.headers['x-request-id']);
    assert.equal(ex.keyId, 'ci');
    assert.equal(ex.language, 'python');
    assert.equal(ex.exitCode, 0);
    assert.equal(typeof ex.totalMs, 'number');
    assert.equal(all.includes('SECRET_CODE_MARK'), logCode);
    assert.ok(logs.lines.some((l) => l.event === 'http.request' && l.status === 200 && l.requestId === r.headers['x-request-id']));
  }
});

test('shutdown: new requests get 503 ShuttingDown; health says so', async () => {
  const { app, server } = setup();
  server.beginShutdown();
  const r = await post(app, '/v1/exec', { code: 'echo 1' });
  assert.equal(r.statusCode, 503);
  assert.equal(r.json().code, 'ShuttingDown');
  assert.equal(r.headers['retry-after'], '1');
});

test('client disconnect mid-exec aborts the exec and frees the fork (real socket)', async () => {
  const { app, engine } = setup();
  await app.listen({ host: '127.0.0.1', port: 0 });
  try {
    const addr = app.server.address() as { port: number };
    await new Promise<void>((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port: addr.port, method: 'POST', path: '/v1/exec', headers: { 'content-type': 'application/json' } });
      req.on('error', () => resolve());
      req.end(JSON.stringify({ code: 'sleep 5000' }));
      setTimeout(() => { req.destroy(); resolve(); }, 150);
    });
    const t0 = Date.now();
    while ((engine.live > 0 || engine.aborted === 0) && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 10));
    assert.equal(engine.aborted, 1);
    assert.equal(engine.live, 0);
  } finally {
    await app.close();
  }
});

test('client disconnect while queued: leaves the queue, logged as client_gone, not an error', async () => {
  const { app, server } = setup({ maxConcurrency: 1, maxQueue: 4 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const logs = captureLogs();
  try {
    const port = (app.server.address() as { port: number }).port;
    const holder = post(app, '/v1/exec', { code: 'sleep 400' });
    await new Promise((r) => setTimeout(r, 20));
    const req = httpRequest({ host: '127.0.0.1', port, method: 'POST', path: '/v1/exec', headers: { 'content-type': 'application/json' } });
    req.on('error', () => undefined);
    req.end(JSON.stringify({ code: 'echo queued' }));
    const t0 = Date.now();
    while (server.ctx.admission.queued === 0 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(server.ctx.admission.queued, 1);
    req.destroy();
    while (server.ctx.admission.queued > 0 && Date.now() - t0 < 2000) await new Promise((r) => setTimeout(r, 5));
    assert.equal(server.ctx.admission.queued, 0);
    assert.equal((await holder).statusCode, 200);
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(logs.lines.some((l) => l.event === 'http.client_gone'), JSON.stringify(logs.lines.map((l) => l.event)));
    assert.ok(!logs.lines.some((l) => l.event === 'http.error'));
  } finally {
    logs.restore();
    await app.close();
  }
});
