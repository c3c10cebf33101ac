// server-hardening.test.ts — issue 7's service items over an Engine double:
// the flat error envelope as Zeroboot's Node SDK reads it, Zeroboot's key file,
// the Host guard (DNS rebinding), 5xx detail and guest text kept out of answers
// and logs, per-key fairness caps, byte budgets (results, bodies, batch output),
// and the connection cap and timeouts on a real socket.
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { test } from 'node:test';
import type { Engine, EngineHealth, ExecRequest, ExecResult } from '../../src/engine/types.js';
import { kvmUnavailable } from '../../src/lib/errors.js';
import { setLogLevel, setLogSink } from '../../src/lib/log.js';
import { Admission } from '../../src/server/admission.js';
import { buildServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { ByteBudget, jsonSize } from '../../src/server/budget.js';
import { loadServerConfig, type ServerConfig } from '../../src/server/config.js';

/** Programs: "echo X", "sleep MS", "bin N [MS]" (N bytes of every byte value on stdout and on stderr, after MS), "crash", "kvm". */
class FakeEngine implements Engine {
  running = 0;
  order: string[] = [];
  private n = 0;
  async ready(): Promise<void> {}
  health(): EngineHealth {
    return { ready: true, templates: { python: { ready: true } }, pool: { ready: 1, target: 1, created: 1, taken: 0, misses: 0 }, liveForks: this.running, inFlight: this.running };
  }
  async close(): Promise<void> {}
  async exec(req: ExecRequest, signal?: AbortSignal): Promise<ExecResult> {
    const [op, arg = '', arg2 = '5'] = req.code.split(' ');
    if (op === 'kvm') throw kvmUnavailable('KVM is not available: open /dev/kvm failed: EACCES (see /home/op/.cache/forkbox/state.json)');
    const base = { id: `exec_${++this.n}`, stdout: '', stderr: '', exitCode: 0, outcome: 'exited' as const, stdoutTruncated: false, stderrTruncated: false, forkTimeMs: 0, execTimeMs: 0, totalTimeMs: 0 };
    this.running++;
    try {
      if (op === 'sleep') {
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, Number(arg));
          signal?.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
        });
        this.order.push(req.code);
        return { ...base, stdout: 'slept\n' };
      }
      if (op === 'bin') {
        await new Promise((r) => setTimeout(r, Number(arg2))); // concurrent batches overlap
        const s = Array.from({ length: Number(arg) }, (_, i) => String.fromCharCode(i % 256)).join('');
        return { ...base, stdout: s, stderr: s };
      }
      if (op === 'crash') {
        return { ...base, exitCode: 137, outcome: 'crashed', crash: 'guest runtime reported status 3 (error): GUEST_WROTE_THIS /home/op/secret' };
      }
      this.order.push(req.code);
      return { ...base, stdout: arg + '\n' };
    } finally {
      this.running--;
    }
  }
}

function setup(over: Partial<ServerConfig> = {}, keys = '') {
  const engine = new FakeEngine();
  const config = { ...loadServerConfig([], {}), ...over };
  const server = buildServer({ engine, config, keys: parseKeyFile(keys) });
  return { engine, server, app: server.app };
}
type App = ReturnType<typeof setup>['app'];
const post = (app: App, url: string, payload: unknown, headers: Record<string, string> = {}) =>
  app.inject({ method: 'POST', url, payload: payload as object, headers });

function captureLogs(): { text: () => string; lines: Record<string, unknown>[]; restore: () => void } {
  const lines: Record<string, unknown>[] = [];
  const prev = setLogSink((l) => lines.push(JSON.parse(l)));
  setLogLevel('info');
  return { lines, text: () => JSON.stringify(lines), restore: () => { setLogSink(prev); setLogLevel((process.env.FORKBOX_LOG_LEVEL as 'info' | undefined) ?? 'info'); } };
}

/** What Zeroboot's Node SDK does with a non-2xx answer. */
function zerobootNodeSdkMessage(status: number, body: { error?: unknown }): string {
  return `API error (${status}): ${body.error}`;
}

test('envelope: {error: string, code, request_id} on every error path, as Zeroboot\'s SDK reads it', async () => {
  const { app } = setup();
  const paths = [
    { r: await post(app, '/v1/exec', { code: 'x', language: 'ruby' }), status: 501, code: 'Unsupported', re: /language "ruby" is not supported/ },
    { r: await app.inject({ method: 'GET', url: '/v1/nope' }), status: 404, code: 'NotFound', re: /no route GET \/v1\/nope/ },
    { r: await app.inject({ method: 'POST', url: '/v1/exec', payload: '{"code":', headers: { 'content-type': 'application/json' } }), status: 400, code: 'InvalidRequest', re: /not valid JSON/ },
    { r: await app.inject({ method: 'POST', url: '/v1/exec', payload: 'x', headers: { 'content-type': 'text/plain' } }), status: 415, code: 'InvalidRequest', re: /Content-Type/ },
    { r: await post(app, '/v1/exec', {}), status: 400, code: 'InvalidRequest', re: /missing required field "code"/ },
    { r: await app.inject({ method: 'GET', url: '/v1/%E0%A4%A' }), status: 400, code: 'InvalidRequest', re: /malformed request URL/ },
  ];
  for (const { r, status, code, re } of paths) {
    assert.equal(r.statusCode, status, r.body);
    const body = r.json();
    assert.deepEqual(Object.keys(body).sort(), ['code', 'error', 'request_id']);
    assert.equal(typeof body.error, 'string');
    assert.equal(body.code, code);
    assert.equal(body.request_id, r.headers['x-request-id']);
    const shown = zerobootNodeSdkMessage(r.statusCode, body);
    assert.doesNotMatch(shown, /\[object Object\]/);
    assert.match(shown, re);
    assert.ok(shown.startsWith(`API error (${status}): `));
  }
  await app.close();
});

test("Zeroboot's key file (a JSON array of keys) is accepted; malformed arrays are refused", async () => {
  const keys = parseKeyFile('["sk_zb_0123456789abcdef", "sk_zb_fedcba9876543210"]\n');
  assert.equal(keys.length, 2);
  assert.match(keys[0]!.id, /^key-[0-9a-f]{8}$/);
  const { app } = setup({}, '["sk_zb_0123456789abcdef"]');
  assert.equal((await post(app, '/v1/exec', { code: 'echo a' })).statusCode, 401);
  assert.equal((await post(app, '/v1/exec', { code: 'echo a' }, { authorization: 'Bearer sk_zb_0123456789abcdef' })).statusCode, 200);
  assert.throws(() => parseKeyFile('["sk_zb_0123456789abcdef", 7]'), /item 1 of the JSON array is not a string/);
  assert.throws(() => parseKeyFile('[ "sk_zb_0123456789abcdef"'), /not a JSON array/);
  assert.throws(() => parseKeyFile('{"a": 1}'), /id must be|shorter|whitespace|JSON/); // not an array: read as lines and refused
  assert.throws(() => parseKeyFile('["short"]'), /shorter than 16/);
  await app.close();
});

test('DNS rebinding: with auth off only loopback, the bound host and allowed hosts are accepted', async () => {
  const { app } = setup({ host: '10.1.2.3', allowedHosts: ['forkbox.internal'] });
  const at = (host: string) => app.inject({ method: 'POST', url: '/v1/exec', payload: { code: 'echo h' }, headers: { host } });
  for (const ok of ['localhost', 'localhost:8080', '127.0.0.1:8080', '127.8.9.10', '[::1]:8080', '[::1]', '10.1.2.3:8080', 'forkbox.internal', 'FORKBOX.internal:80', 'a.localhost:1']) {
    assert.equal((await at(ok)).statusCode, 200, ok);
  }
  for (const bad of ['evil.example', 'evil.example:8080', '127.0.0.1.evil.example', 'localhost.evil.example', '10.1.2.4', '[::2]:8080', 'x y', '::1']) {
    const r = await at(bad);
    assert.equal(r.statusCode, 403, `${bad} → ${r.statusCode}`);
    assert.equal(r.json().code, 'Forbidden');
    assert.match(r.json().error, /DNS-rebinding guard/);
  }
  await app.close();
  // With auth on, the key is the guard: any Host reaches auth.
  const authed = setup({}, 'sk_host_0123456789abcdef').app;
  const r = await authed.inject({ method: 'POST', url: '/v1/exec', payload: { code: 'echo h' }, headers: { host: 'evil.example', authorization: 'Bearer sk_host_0123456789abcdef' } });
  assert.equal(r.statusCode, 200);
  await authed.close();
});

test('what leaves the server: no host paths or native text in 5xx answers; guest text logged only on opt-in', async () => {
  for (const logOutput of [false, true]) {
    const { app } = setup({ logOutput });
    const logs = captureLogs();
    const k = await post(app, '/v1/exec', { code: 'kvm' }, { 'x-request-id': 'mine-1' });
    const c = await post(app, '/v1/exec', { code: 'crash' });
    logs.restore();
    assert.equal(k.statusCode, 503);
    assert.equal(k.json().code, 'KvmUnavailable');
    assert.doesNotMatch(k.body, /\/dev\/kvm|\/home|EACCES/);
    assert.match(k.json().error, new RegExp(`see the server log for request ${k.json().request_id}`));
    assert.match(String(k.headers['x-request-id']), /^req_/);
    const logged = logs.lines.find((l) => l.event === 'http.unavailable');
    assert.ok(logged && String(logged.message).includes('EACCES'), 'the detail is in the log');
    assert.equal(logged.requestId, k.headers['x-request-id']);
    assert.equal(logged.clientRequestId, 'mine-1');
    assert.equal(c.statusCode, 200);
    assert.equal(logs.text().includes('GUEST_WROTE_THIS'), logOutput, 'guest-written crash text only with logOutput');
    assert.ok(logs.lines.some((l) => l.event === 'exec.finished' && String(l.crash).startsWith('guest runtime reported status 3')));
    await app.close();
  }
});

test('admission: a freed slot goes to the key running the fewest; per-key running cap', async () => {
  const adm = new Admission(2, 100, 10_000, 2, 100);
  const a1 = await adm.acquire('a');
  const a2 = await adm.acquire('a');
  const got: string[] = [];
  const qa = [adm.acquire('a'), adm.acquire('a')].map((p) => p.then((r) => { got.push('a'); return r; }));
  const qb = adm.acquire('b').then((r) => { got.push('b'); return r; });
  a1();
  const rb = await qb;
  assert.deepEqual(got, ['b'], 'b (0 running) overtakes a\'s earlier waiters');
  a2();
  rb();
  for (const p of qa) (await p)();
  assert.equal(adm.inFlight, 0);
  // The running cap leaves a slot for other keys even when the key has work waiting.
  const capped = new Admission(3, 100, 10_000, 2, 10);
  const c1 = await capped.acquire('a');
  const c2 = await capped.acquire('a');
  let third = false;
  const c3p = capped.acquire('a').then((r) => { third = true; return r; });
  await new Promise((r) => setImmediate(r));
  assert.equal(third, false);
  assert.equal(capped.inFlight, 2);
  (await capped.acquire('b'))();
  c1();
  (await c3p)();
  c2();
  // Reservations: running + waiting per key are capped (a batch reserves every item).
  const t = capped.reserve('k', 12);
  assert.throws(() => capped.reserve('k', 1), (e: Error & { code?: string; status?: number }) => e.code === 'RateLimited' && e.status === 429);
  t.cancel();
  capped.reserve('k', 12).cancel();
  assert.deepEqual(capped.keyState('k'), { running: 0, reserved: 0 });
});

test('fairness over HTTP: one key floods, the other key\'s request is served next', async () => {
  const A = 'sk_flood_0123456789abcdef';
  const B = 'sk_quiet_0123456789abcdef';
  const { app, engine, server } = setup({ maxConcurrency: 2, maxQueuedPerKey: 40, rateLimit: 0 }, `a:${A}\nb:${B}`);
  const flood = Array.from({ length: 30 }, () => post(app, '/v1/exec', { code: 'sleep 30' }, { authorization: `Bearer ${A}` }));
  const floodBatch = post(app, '/v1/exec/batch', { executions: Array.from({ length: 8 }, () => ({ code: 'sleep 30' })) }, { authorization: `Bearer ${A}` });
  await new Promise((r) => setTimeout(r, 5));
  const quiet = await post(app, '/v1/exec', { code: 'echo quiet' }, { authorization: `Bearer ${B}` });
  assert.equal(quiet.statusCode, 200);
  assert.equal(quiet.json().stdout, 'quiet\n');
  const at = engine.order.indexOf('echo quiet');
  assert.ok(at >= 0 && at <= 1, `B ran after ${at} of A's executions (A queued ${30 + 8})`);
  // A's backlog is over its cap: one more batch is refused whole with 429.
  assert.ok(server.ctx.admission.keyState('a').reserved > 20, JSON.stringify(server.ctx.admission.keyState('a')));
  const over = await post(app, '/v1/exec/batch', { executions: Array.from({ length: 8 }, () => ({ code: 'echo x' })) }, { authorization: `Bearer ${A}` });
  assert.equal(over.statusCode, 429);
  assert.equal(over.json().code, 'RateLimited');
  assert.match(over.json().error, /a batch counts each item/);
  assert.ok(Number(over.headers['retry-after']) >= 1);
  for (const r of await Promise.all(flood)) assert.equal(r.statusCode, 200);
  assert.equal((await floodBatch).statusCode, 200);
  await app.close();
});

test('jsonSize equals JSON.stringify length, control bytes and surrogates included', () => {
  const samples = ['', 'plain', '"\\', '\u0000\u0001\u001f\b\t\n\f\r', 'é€😀', '\ud800', 'a\udc00b', '\ud83d\ude00\ud83d'];
  let rnd = 7;
  for (let k = 0; k < 50; k++) {
    samples.push(Array.from({ length: 200 }, () => { rnd = (rnd * 1103515245 + 12345) & 0x7fffffff; return String.fromCharCode(rnd % 0xffff); }).join(''));
  }
  for (const s of samples) assert.equal(jsonSize(s), Buffer.byteLength(JSON.stringify(s)), JSON.stringify(s).slice(0, 40));
  const b = new ByteBudget(100);
  assert.ok(b.take(60));
  assert.ok(!b.take(50));
  assert.ok(b.take(40));
  b.give(100);
  assert.ok(b.take(500), 'a lone request larger than the budget still runs when nothing else is held');
});

test('byte budgets: batch output cap → 413, result budget → 503 + Retry-After, body budget → 503; all returned after', async () => {
  const KiB = 1024;
  {
    const { app, server } = setup({ maxBatchOutputBytes: 300 * KiB, resultBudgetBytes: 10_000 * KiB, batchParallelism: 2 });
    const r = await post(app, '/v1/exec/batch', { executions: Array.from({ length: 16 }, () => ({ code: 'bin 32768' })) });
    assert.equal(r.statusCode, 413, r.body.slice(0, 200));
    assert.equal(r.json().code, 'PayloadTooLarge');
    assert.match(r.json().error, /batch's output is larger than 307200 bytes/);
    const ok = await post(app, '/v1/exec/batch', { executions: [{ code: 'bin 1000' }, { code: 'echo z' }] });
    assert.equal(ok.statusCode, 200);
    assert.equal(ok.json().results[0].stdout.length, 1000);
    assert.equal(server.ctx.resultBudget.inUse, 0);
    assert.ok(server.ctx.resultBudget.peak > 0);
    await app.close();
  }
  {
    // Two batches at once against a result budget that holds about one.
    const { app, server } = setup({ maxBatchOutputBytes: 100_000 * KiB, resultBudgetBytes: 600 * KiB, maxConcurrency: 24, maxRunningPerKey: 24 });
    const batch = { executions: Array.from({ length: 8 }, (_, i) => ({ code: `bin 16384 ${5 + 10 * i}` })) };
    const rs = await Promise.all([post(app, '/v1/exec/batch', batch), post(app, '/v1/exec/batch', batch), post(app, '/v1/exec/batch', batch)]);
    const codes = rs.map((r) => r.statusCode).sort();
    assert.ok(codes.includes(503), `statuses ${codes}`);
    for (const r of rs) {
      if (r.statusCode === 200) continue;
      assert.equal(r.json().code, 'Overloaded');
      assert.match(r.json().error, /too many result bytes/);
      assert.equal(r.headers['retry-after'], '2');
    }
    assert.equal(server.ctx.resultBudget.inUse, 0);
    assert.ok(server.ctx.resultBudget.peak <= 600 * KiB + 8 * (jsonSize('x'.repeat(16384)) * 6), `peak ${server.ctx.resultBudget.peak}`);
    await app.close();
  }
  {
    // Bodies: one slow request holds its body; a second big one does not fit the body budget.
    const { app, server } = setup({ bodyBudgetBytes: 64 * KiB, maxConcurrency: 1 });
    const pad = 'x'.repeat(40 * KiB);
    const slow = post(app, '/v1/exec', { code: 'sleep 100', stdin: pad });
    await new Promise((r) => setTimeout(r, 20));
    assert.ok(server.ctx.bodyBudget.inUse >= 40 * KiB);
    const r = await post(app, '/v1/exec', { code: 'echo y', stdin: pad });
    assert.equal(r.statusCode, 503);
    assert.equal(r.json().code, 'Overloaded');
    assert.match(r.json().error, /too many request body bytes/);
    assert.equal((await slow).statusCode, 200);
    assert.equal((await post(app, '/v1/exec', { code: 'echo y', stdin: pad })).statusCode, 200);
    assert.equal(server.ctx.bodyBudget.inUse, 0);
    await app.close();
  }
});

/** Opens a TCP connection; resolves with everything the server sent once it closes the socket. */
function rawSocket(port: number, send?: string): { sock: Socket; closed: Promise<string> } {
  const sock = connect(port, '127.0.0.1');
  let got = '';
  sock.on('data', (d) => { got += d.toString(); });
  sock.on('error', () => undefined);
  if (send !== undefined) sock.write(send);
  return { sock, closed: new Promise((resolve) => sock.on('close', () => resolve(got))) };
}

test('connections: a cap on open sockets; headers and keep-alive timeouts close idle sockets', async () => {
  const { app } = setup({ maxConnections: 2, headersTimeoutMs: 300, requestTimeoutMs: 600, keepAliveTimeoutMs: 300 });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  assert.equal(app.server.maxConnections, 2);
  assert.equal(app.server.headersTimeout, 300);
  assert.equal(app.server.keepAliveTimeout, 300);
  // An idle socket (nothing sent) is answered 408 with the envelope and closed.
  const t0 = Date.now();
  const idle = rawSocket(port, 'POST /v1/exec HTTP/1.1\r\nHost: localhost\r\n');
  const second = rawSocket(port);
  await new Promise((r) => setTimeout(r, 50));
  const third = rawSocket(port); // over the cap: closed by the server without an answer
  assert.equal(await third.closed, '');
  const idleGot = await idle.closed;
  assert.match(idleGot, /^HTTP\/1\.1 408 /);
  const env = JSON.parse(idleGot.slice(idleGot.indexOf('\r\n\r\n') + 4));
  assert.equal(env.code, 'InvalidRequest');
  assert.match(env.error, /did not arrive in time/);
  assert.match(env.request_id, /^req_/);
  await second.closed; // the silent socket is closed too
  assert.ok(Date.now() - t0 < 60_000);
  // Keep-alive: after an answer, the idle socket is closed by the server.
  const ka = rawSocket(port, 'GET /v1/health HTTP/1.1\r\nHost: localhost\r\n\r\n');
  const kaGot = await ka.closed;
  assert.match(kaGot, /^HTTP\/1\.1 200 /);
  assert.match(kaGot, /Keep-Alive: timeout=0|keep-alive/i);
  // The request timeout covers receiving the request, not computing the answer: a slow exec still answers.
  const slow = rawSocket(port, 'POST /v1/exec HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 21\r\nConnection: close\r\n\r\n{"code":"sleep 1500"}');
  const slowGot = await slow.closed;
  assert.match(slowGot, /^HTTP\/1\.1 200 /);
  assert.match(slowGot, /slept/);
  await app.close();
});
