// server-limits.test.ts — the pure pieces of the service: key-file parsing and
// constant-time key checks, the per-key token bucket, the admission queue
// (limit, FIFO hand-off, full queue, timeout, abort, close) and config parsing.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Admission } from '../../src/server/admission.js';
import { Authenticator, parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig } from '../../src/server/config.js';
import { ForkboxError } from '../../src/lib/errors.js';
import { RateLimiter } from '../../src/server/rate-limit.js';

test('key file: comments, blank lines, id:key and bare keys', () => {
  const keys = parseKeyFile('# team keys\n\nalice:sk_alice_0123456789abcdef\n  sk_bare_0123456789abcdef  \n');
  assert.equal(keys.length, 2);
  assert.equal(keys[0]!.id, 'alice');
  assert.match(keys[1]!.id, /^key-[0-9a-f]{8}$/);
  assert.equal(keys[0]!.hash.length, 32);
});

test('key file: rejects short keys, bad ids and duplicates with the line number', () => {
  assert.throws(() => parseKeyFile('short'), /:1: key is shorter than 16/);
  assert.throws(() => parseKeyFile('# c\nbad id:sk_0123456789abcdefgh'), /:2: key id/);
  assert.throws(() => parseKeyFile('a:sk_0123456789abcdefgh\na:sk_0123456789abcdefgx'), /duplicate key id a/);
});

test('authenticator: bearer parsing and key match', () => {
  const auth = new Authenticator(parseKeyFile('alice:sk_alice_0123456789abcdef\nbob:sk_bob_0123456789abcdefgh'));
  assert.equal(auth.enabled, true);
  assert.deepEqual(auth.check('Bearer sk_bob_0123456789abcdefgh'), { keyId: 'bob' });
  assert.deepEqual(auth.check('bearer   sk_alice_0123456789abcdef'), { keyId: 'alice' });
  for (const h of [undefined, '', 'Basic abc', 'Bearer', 'Bearer sk_alice_0123456789abcdeX', 'Bearer a b']) {
    const r = auth.check(h);
    assert.ok(r instanceof ForkboxError, String(h));
    assert.equal(r.code, 'Unauthorized');
    assert.equal(r.status, 401);
  }
  assert.equal(new Authenticator([]).enabled, false);
  auth.replace(parseKeyFile('carol:sk_carol_0123456789abcdef'));
  assert.deepEqual(auth.check('Bearer sk_carol_0123456789abcdef'), { keyId: 'carol' });
  assert.ok(auth.check('Bearer sk_bob_0123456789abcdefgh') instanceof ForkboxError, 'revoked on reload');
  assert.throws(() => auth.replace([]), /turn auth off/);
});

test('rate limiter: burst, refill, per-key buckets, retry-after', () => {
  let now = 0;
  const rl = new RateLimiter(2, 3, () => now);
  assert.ok(rl.take('a').ok && rl.take('a').ok && rl.take('a').ok);
  const denied = rl.take('a');
  assert.equal(denied.ok, false);
  assert.equal(denied.retryAfterSeconds, 1);
  assert.ok(rl.take('b').ok, 'another key has its own bucket');
  now += 500; // 1 token back
  assert.ok(rl.take('a').ok);
  assert.equal(rl.take('a').ok, false);
  now += 10_000;
  assert.ok(rl.take('a', 50).ok, 'a batch larger than the burst costs the burst, not forever');
  assert.equal(new RateLimiter(0, 1).take('x', 1000).ok, true, 'rate 0 = off');
});

test('admission: limit, FIFO hand-off, full queue → Overloaded with retry-after', async () => {
  const adm = new Admission(2, 1, 10_000, 2);
  const r1 = await adm.acquire('k');
  const r2 = await adm.acquire('k');
  assert.equal(adm.inFlight, 2);
  const order: string[] = [];
  const p3 = adm.acquire('k').then((r) => { order.push('third'); return r; });
  assert.equal(adm.queued, 1);
  await assert.rejects(adm.acquire('k'), (e: ForkboxError) => e.code === 'Overloaded' && e.status === 503 && (e.retryAfter ?? 0) >= 1);
  r1();
  r1(); // idempotent
  const r3 = await p3;
  assert.deepEqual(order, ['third']);
  assert.equal(adm.inFlight, 2);
  r2();
  r3();
  assert.equal(adm.inFlight, 0);
});

test('admission: queue timeout, abort while queued, close rejects waiters', async () => {
  const adm = new Admission(1, 5, 50);
  const r1 = await adm.acquire('k');
  await assert.rejects(adm.acquire('k'), (e: ForkboxError) => e.code === 'Overloaded');
  const ac = new AbortController();
  const p = adm.acquire('k', ac.signal);
  ac.abort(new Error('gone'));
  await assert.rejects(p, /gone/);
  assert.equal(adm.queued, 0);
  const p2 = adm.acquire('k');
  adm.close();
  await assert.rejects(p2, (e: ForkboxError) => e.code === 'ShuttingDown');
  await assert.rejects(adm.acquire('k'), (e: ForkboxError) => e.code === 'ShuttingDown');
  r1();
  assert.equal(adm.inFlight, 0);
});

test('config: defaults, env, flags win, clear errors', () => {
  const d = loadServerConfig([], {});
  assert.equal(d.host, '127.0.0.1');
  assert.equal(d.port, 8080);
  assert.equal(d.apiKeysFile, undefined);
  assert.equal(d.metricsAuth, true);
  assert.equal(d.logCode, false);
  assert.equal(d.memLimitMb, undefined);
  const e = loadServerConfig(['--port', '9001', '--log-code'], { FORKBOX_PORT: '9000', FORKBOX_HOST: '0.0.0.0', FORKBOX_METRICS_AUTH: '0', FORKBOX_MEM_LIMIT_MB: '256' });
  assert.equal(e.port, 9001);
  assert.equal(e.host, '0.0.0.0');
  assert.equal(e.metricsAuth, false);
  assert.equal(e.logCode, true);
  assert.equal(e.memLimitMb, 256);
  assert.throws(() => loadServerConfig([], { FORKBOX_PORT: 'eighty' }), /FORKBOX_PORT must be an integer/);
  assert.throws(() => loadServerConfig(['--port', '70000']), /--port must be between 0 and 65535/);
  assert.throws(() => loadServerConfig([], { FORKBOX_LOG_CODE: 'maybe' }), /FORKBOX_LOG_CODE must be a boolean/);
  assert.throws(() => loadServerConfig(['--nope']), /nope/);
});

test('serve: engine options follow the configuration (memory limit, pool, caps)', async () => {
  const { engineOptions } = await import('../../src/cli/serve.js');
  const none = engineOptions(loadServerConfig([], {}));
  assert.equal(none.memLimitMb, undefined);
  assert.equal(none.poolSize, undefined);
  assert.equal(none.buildIfMissing, true);
  const o = engineOptions(loadServerConfig(['--mem-limit-mb', '128', '--pool-size', '2', '--workers', '3'], { FORKBOX_STDOUT_CAP_BYTES: '1000', FORKBOX_STDERR_CAP_BYTES: '2000' }));
  assert.equal(o.memLimitMb, 128);
  assert.equal(o.poolSize, 2);
  assert.equal(o.workers, 3);
  assert.equal(o.stdoutCap, 1000);
  assert.equal(o.stderrCap, 2000);
});
