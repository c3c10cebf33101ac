// server-sessions.test.ts — /v1/sessions and the file and archive routes
// in-process (fastify.inject) over the in-memory FakeSessions engine: status
// codes (201/200/204/400/404/409/410/413/429/501), the envelope, snake_case
// JSON, owner isolation (key A cannot see or touch key B's sessions), discard,
// fork, pause, raw file bytes, directory listings, tar in and out (with the
// destructive delete=true) and hostile paths and archives.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Engine } from '../../src/engine/types.js';
import { readTar, writeTar, type TarEntry } from '../../src/lib/tar.js';
import { buildServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig, type ServerConfig } from '../../src/server/config.js';
import { FakeSessions } from './fake-sessions.js';

const KEY_A = 'sk_session_a_0123456789abcdef';
const KEY_B = 'sk_session_b_0123456789abcdef';
const A = { authorization: `Bearer ${KEY_A}` };
const B = { authorization: `Bearer ${KEY_B}` };

function setup(over: Partial<ServerConfig> = {}, keys = `a:${KEY_A}\nb:${KEY_B}`) {
  const engine = new FakeSessions();
  const config = { ...loadServerConfig([], {}), ...over };
  const server = buildServer({ engine, config, keys: parseKeyFile(keys) });
  return { engine, app: server.app, server };
}
type App = ReturnType<typeof setup>['app'];
const post = (app: App, url: string, payload?: unknown, headers: Record<string, string> = A) =>
  app.inject({ method: 'POST', url, ...(payload !== undefined ? { payload: payload as object } : {}), headers });
const create = async (app: App, body: unknown = { language: 'python' }, headers: Record<string, string> = A): Promise<string> => {
  const r = await post(app, '/v1/sessions', body, headers);
  assert.equal(r.statusCode, 201, r.body);
  return r.json().id as string;
};
const tarOf = (files: Record<string, string | null>): Buffer => Buffer.from(writeTar(Object.entries(files).map(([name, text]): TarEntry =>
  text === null ? { name, type: 'dir', mode: 0o755, mtime: 0, data: new Uint8Array(0) } : { name, type: 'file', mode: 0o644, mtime: 0, data: Buffer.from(text) })));

test('POST /v1/sessions: 201 with the snake_case session; defaults from the config; 400/501/409', async () => {
  const { app, engine } = setup({ sessionTimeoutSeconds: 600, sessionIdleTimeoutSeconds: 60 });
  const r = await post(app, '/v1/sessions', { language: 'python', name: 'job-1', metadata: { task: 't1' }, env: { X: '1' } });
  assert.equal(r.statusCode, 201);
  const s = r.json();
  assert.deepEqual(Object.keys(s).sort(), ['created_at', 'disk_bytes', 'execs', 'expires_at', 'id', 'idle_timeout_seconds', 'language', 'last_active_at',
    'memory_bytes', 'metadata', 'name', 'parent_id', 'state', 'template', 'timeout_seconds'].sort());
  assert.equal(s.name, 'job-1');
  assert.equal(s.state, 'ready');
  assert.equal(s.timeout_seconds, 600);
  assert.equal(s.idle_timeout_seconds, 60);
  assert.deepEqual(s.metadata, { task: 't1' });
  assert.equal(s.parent_id, null);
  assert.deepEqual(engine.calls, ['create a']);
  // No body at all: python with defaults.
  assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions', headers: A })).statusCode, 201);
  const dup = await post(app, '/v1/sessions', { name: 'job-1' });
  assert.equal(dup.statusCode, 409);
  assert.equal(dup.json().code, 'Conflict');
  for (const [body, re] of [
    [{ timeout_seconds: 86401 }, /timeout_seconds must be <= 86400/],
    [{ idle_timeout_seconds: 0 }, /idle_timeout_seconds must be >= 1/],
    [{ name: '../x' }, /name must match/],
    [{ metadata: { k: 1 } }, /metadata\.k must be a string/],
    [{ bogus: 1 }, /unknown field "bogus"/],
  ] as const) {
    const bad = await post(app, '/v1/sessions', body);
    assert.equal(bad.statusCode, 400, JSON.stringify(body));
    assert.match(bad.json().error, re);
  }
  const node = await post(app, '/v1/sessions', { language: 'ruby' });
  assert.equal(node.statusCode, 501);
  assert.equal(node.json().code, 'Unsupported');
  assert.equal((await app.inject({ method: 'POST', url: '/v1/sessions' })).statusCode, 401);
});

test('owner isolation: key B cannot see, run, fork, pause, read or delete key A\'s session', async () => {
  const { app } = setup();
  const id = await create(app);
  const ls = (h: Record<string, string>) => app.inject({ method: 'GET', url: '/v1/sessions', headers: h });
  assert.deepEqual((await ls(A)).json().sessions.map((s: { id: string }) => s.id), [id]);
  assert.deepEqual((await ls(B)).json().sessions, []);
  const attempts = [
    app.inject({ method: 'GET', url: `/v1/sessions/${id}`, headers: B }),
    post(app, `/v1/sessions/${id}/exec`, { code: 'print hi' }, B),
    post(app, `/v1/sessions/${id}/fork`, { count: 1 }, B),
    post(app, `/v1/sessions/${id}/pause`, undefined, B),
    app.inject({ method: 'GET', url: `/v1/sessions/${id}/files?path=/workspace`, headers: B }),
    app.inject({ method: 'PUT', url: `/v1/sessions/${id}/files?path=/workspace/x`, payload: 'x', headers: B }),
    app.inject({ method: 'PUT', url: `/v1/sessions/${id}/archive?path=/workspace`, payload: tarOf({ a: 'x' }), headers: B }),
    app.inject({ method: 'DELETE', url: `/v1/sessions/${id}`, headers: B }),
  ];
  for (const r of await Promise.all(attempts)) {
    assert.equal(r.statusCode, 404, r.body);
    assert.equal(r.json().code, 'NotFound');
  }
  assert.equal((await app.inject({ method: 'GET', url: `/v1/sessions/${id}`, headers: A })).json().state, 'ready');
});

test('auth off: every caller is the one owner "local"', async () => {
  const { app, engine } = setup({}, '');
  const id = await create(app, {}, {});
  assert.deepEqual(engine.calls, ['create local']);
  assert.equal((await app.inject({ method: 'GET', url: `/v1/sessions/${id}` })).statusCode, 200);
});

test('POST /v1/sessions/{id}/exec: state persists, result and side effects, discard, 400/404/409/410/501', async () => {
  const { app, engine } = setup();
  const id = await create(app, { env: { GREETING: 'hello' } });
  const ex = (body: unknown, h = A) => post(app, `/v1/sessions/${id}/exec`, body, h);
  const r1 = await ex({ code: 'set x 41; write /workspace/a.txt abc; expr 42' });
  assert.equal(r1.statusCode, 200);
  const b1 = r1.json();
  assert.deepEqual(Object.keys(b1).sort(), ['duration_ms', 'exec_time_ms', 'exit_code', 'fork_time_ms', 'id', 'outcome', 'output', 'result', 'result_truncated',
    'results', 'results_truncated', 'side_effects', 'stderr', 'stderr_truncated', 'stdout', 'stdout_truncated', 'total_time_ms'].sort());
  assert.equal(b1.output, b1.stdout);
  assert.equal(b1.duration_ms, b1.total_time_ms);
  assert.equal(b1.result, '42');
  assert.equal(b1.result_truncated, false);
  assert.deepEqual(b1.side_effects, { files_created: [{ path: '/workspace/a.txt', size: 3 }], files_modified: [], files_deleted: [], files_truncated: false, pages_dirtied: 1, peak_memory_bytes: 1048576 });
  assert.equal((await ex({ code: 'get x; get GREETING' })).json().stdout, '41\nhello\n');
  assert.equal((await ex({ code: 'print no-result' })).json().result, null);
  // discard: runs on a throwaway copy, the session keeps its state.
  const d = await ex({ code: 'set x 99; rm /workspace/a.txt; get x', discard: true });
  assert.equal(d.json().stdout, '99\n');
  assert.deepEqual(d.json().side_effects.files_deleted, [{ path: '/workspace/a.txt' }]);
  assert.equal((await ex({ code: 'get x' })).json().stdout, '41\n');
  assert.equal(engine.tree(id)['/workspace/a.txt'], 'abc');
  assert.equal(engine.calls.filter((c) => c.endsWith('discard')).length, 1);
  // Honest 501 for shell commands, 400 for a missing code or another language.
  const cmd = await ex({ command: 'cd /workspace && make' });
  assert.equal(cmd.statusCode, 501);
  assert.match(cmd.json().error, /shell commands need processes; run code in the session's language/);
  assert.equal((await ex({})).statusCode, 400);
  assert.equal((await ex({ code: 'x', language: 'node' })).statusCode, 400);
  assert.equal((await ex({ code: 'x', timeout_seconds: 301 })).statusCode, 400);
  assert.equal((await post(app, '/v1/sessions/sess_nope/exec', { code: 'x' })).statusCode, 404);
  assert.equal((await post(app, '/v1/sessions/bad%20id/exec', { code: 'x' })).statusCode, 400);
  // One exec at a time: a second call while one runs is 409.
  const slow = ex({ code: 'sleep 150' });
  await new Promise((r) => setTimeout(r, 30));
  const busy = await ex({ code: 'print x' });
  assert.equal(busy.statusCode, 409);
  assert.equal(busy.json().code, 'Conflict');
  assert.equal((await slow).statusCode, 200);
  // Expired → 410; a session whose VM died → 410 for execs, still deletable.
  const dead = await create(app);
  const crashed = await post(app, `/v1/sessions/${dead}/exec`, { code: 'die' });
  assert.equal(crashed.json().outcome, 'crashed');
  assert.equal((await post(app, `/v1/sessions/${dead}/exec`, { code: 'print x' })).statusCode, 410);
  assert.equal((await app.inject({ method: 'DELETE', url: `/v1/sessions/${dead}`, headers: A })).statusCode, 204);
  engine.expire(id);
  const exp = await ex({ code: 'print x' });
  assert.equal(exp.statusCode, 410);
  assert.equal(exp.json().code, 'Gone');
});

test('a session exec is an exec: the key\'s rate limit applies', async () => {
  const { app } = setup({ rateLimit: 0.001, rateBurst: 3 });
  const id = await create(app); // 1 token
  assert.equal((await post(app, `/v1/sessions/${id}/exec`, { code: 'print 1' })).statusCode, 200);
  assert.equal((await post(app, '/v1/exec', { code: 'x' })).statusCode, 200);
  const r = await post(app, `/v1/sessions/${id}/exec`, { code: 'print 1' });
  assert.equal(r.statusCode, 429);
  assert.ok(Number(r.headers['retry-after']) >= 1);
  assert.equal((await post(app, `/v1/sessions/${id}/exec`, { code: 'print 1' }, B)).statusCode, 404); // B's own bucket, A's session
});

test('fork, pause, delete, the per-key session cap', async () => {
  const { app } = setup({ maxSessionsPerKey: 4, maxForkCount: 8 });
  const id = await create(app);
  await post(app, `/v1/sessions/${id}/exec`, { code: 'set v parent' });
  const f = await post(app, `/v1/sessions/${id}/fork`, { count: 3 });
  assert.equal(f.statusCode, 201);
  const kids = f.json().sessions as Array<{ id: string; parent_id: string }>;
  assert.equal(kids.length, 3);
  assert.ok(kids.every((k) => k.parent_id === id));
  await Promise.all(kids.map((k, i) => post(app, `/v1/sessions/${k.id}/exec`, { code: `set v child${i}` })));
  const seen = await Promise.all([id, ...kids.map((k) => k.id)].map(async (s) => (await post(app, `/v1/sessions/${s}/exec`, { code: 'get v' })).json().stdout));
  assert.deepEqual(seen, ['parent\n', 'child0\n', 'child1\n', 'child2\n']);
  assert.equal((await post(app, `/v1/sessions/${id}/fork`, { count: 9 })).statusCode, 400);
  const capped = await post(app, `/v1/sessions/${id}/fork`, { count: 1 });
  assert.equal(capped.statusCode, 429);
  assert.match(capped.json().error, /holds 4 sessions and may hold 4/);
  assert.equal((await post(app, '/v1/sessions', {})).statusCode, 429);
  const p = await post(app, `/v1/sessions/${id}/pause`);
  assert.equal(p.statusCode, 200);
  assert.equal(p.json().state, 'paused');
  assert.equal(p.json().memory_bytes, 0);
  assert.equal((await post(app, `/v1/sessions/${id}/exec`, { code: 'get v' })).json().stdout, 'parent\n'); // resumed
  const del = await app.inject({ method: 'DELETE', url: `/v1/sessions/${kids[0]!.id}`, headers: A });
  assert.equal(del.statusCode, 204);
  assert.equal(del.body, '');
  assert.equal((await app.inject({ method: 'GET', url: `/v1/sessions/${kids[0]!.id}`, headers: A })).statusCode, 410);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions', headers: A })).json().sessions.length, 3);
  assert.equal((await post(app, '/v1/sessions', {})).statusCode, 201); // room again
});

test('files: raw bytes in and out, listings, delete, path checks, 404/413', async () => {
  const { app, engine, server } = setup({ transferLimitBytes: 4096 });
  engine.quotaBytes = 3000;
  const id = await create(app);
  const url = (p: string, q = '') => `/v1/sessions/${id}/files?path=${encodeURIComponent(p)}${q}`;
  const bin = Buffer.from([0, 1, 2, 255, 10, 13]);
  const put = await app.inject({ method: 'PUT', url: url('/workspace/data/b.bin', '&parents=true&mode=0600'), payload: bin, headers: { ...A, 'content-type': 'application/octet-stream' } });
  assert.equal(put.statusCode, 200, put.body);
  assert.deepEqual({ ...(put.json() as object), mtime: 0 }, { path: '/workspace/data/b.bin', name: 'b.bin', type: 'file', size: 6, mode: 0o600, mtime: 0 });
  // Any Content-Type (curl's form default, JSON) is taken as raw bytes.
  const json = await app.inject({ method: 'PUT', url: url('/workspace/c.json'), payload: '{"a":1}', headers: { ...A, 'content-type': 'application/json' } });
  assert.equal(json.statusCode, 200);
  const got = await app.inject({ method: 'GET', url: url('/workspace/data/b.bin'), headers: A });
  assert.equal(got.statusCode, 200);
  assert.equal(got.headers['content-type'], 'application/octet-stream');
  assert.deepEqual(got.rawPayload, bin);
  assert.equal((await app.inject({ method: 'GET', url: url('/workspace/c.json'), headers: A })).body, '{"a":1}');
  const list = await app.inject({ method: 'GET', url: url('/workspace'), headers: A });
  assert.deepEqual(list.json().entries.map((e: { name: string; type: string; size: number }) => [e.name, e.type, e.size]), [['c.json', 'file', 7], ['data', 'dir', 0]]);
  // Without parents=true a missing directory is the engine's 404.
  assert.equal((await app.inject({ method: 'PUT', url: url('/nope/x'), payload: 'x', headers: A })).statusCode, 404);
  assert.equal((await app.inject({ method: 'GET', url: url('/workspace/none'), headers: A })).statusCode, 404);
  for (const bad of ['workspace/x', '/workspace/../etc/passwd', '/workspace//x', '/workspace/./x', '/workspace/', '/a\0b']) {
    const r = await app.inject({ method: 'GET', url: url(bad), headers: A });
    assert.equal(r.statusCode, 400, bad);
    assert.equal(r.json().code, 'InvalidRequest');
  }
  assert.equal((await app.inject({ method: 'GET', url: `/v1/sessions/${id}/files`, headers: A })).statusCode, 400);
  assert.equal((await app.inject({ method: 'GET', url: url('/x', '&mode=999'), headers: A })).statusCode, 400);
  // Past the transfer limit: 413 from the server; past the session's quota: the engine's 413.
  const big = await app.inject({ method: 'PUT', url: url('/workspace/big'), payload: Buffer.alloc(5000), headers: A });
  assert.equal(big.statusCode, 413);
  assert.equal(big.json().code, 'PayloadTooLarge');
  const quota = await app.inject({ method: 'PUT', url: url('/workspace/q'), payload: Buffer.alloc(3000), headers: A });
  assert.equal(quota.statusCode, 413);
  assert.match(quota.json().error, /quota/);
  // DELETE: a non-empty directory needs recursive=true.
  assert.equal((await app.inject({ method: 'DELETE', url: url('/workspace/data'), headers: A })).statusCode, 409);
  assert.equal((await app.inject({ method: 'DELETE', url: url('/workspace/data', '&recursive=true'), headers: A })).statusCode, 204);
  assert.equal((await app.inject({ method: 'DELETE', url: url('/'), headers: A })).statusCode, 400);
  assert.deepEqual(engine.tree(id, '/workspace'), { '/workspace/c.json': '{"a":1}' });
  // The body budget was returned after every upload.
  assert.equal(server.ctx.bodyBudget.inUse, 0);
  assert.equal(server.ctx.resultBudget.inUse, 0);
});

test('archive: tar into a directory, tar out of it, delete=true mirrors, hostile archives are 400', async () => {
  const { app, engine, server } = setup();
  const id = await create(app);
  const put = (q: string, body: Buffer) => app.inject({ method: 'PUT', url: `/v1/sessions/${id}/archive?path=/workspace${q}`, payload: body, headers: { ...A, 'content-type': 'application/x-tar' } });
  await app.inject({ method: 'PUT', url: `/v1/sessions/${id}/files?path=/workspace/old.txt`, payload: 'old', headers: A });
  const r1 = await put('', tarOf({ 'src': null, 'src/main.py': 'print(1)', 'data/in.csv': 'a,b\n1,2\n' }));
  assert.equal(r1.statusCode, 200, r1.body);
  assert.deepEqual(r1.json(), { path: '/workspace', files: 2, dirs: 1, bytes: 16, deleted: [], skipped: [] });
  assert.deepEqual(engine.tree(id, '/workspace'), {
    '/workspace/old.txt': 'old', '/workspace/src': '<dir>', '/workspace/src/main.py': 'print(1)', '/workspace/data': '<dir>', '/workspace/data/in.csv': 'a,b\n1,2\n',
  });
  const out = await app.inject({ method: 'GET', url: `/v1/sessions/${id}/archive?path=/workspace`, headers: A });
  assert.equal(out.statusCode, 200);
  assert.equal(out.headers['content-type'], 'application/x-tar');
  const back = Object.fromEntries(readTar(out.rawPayload).map((e) => [e.name, e.type === 'dir' ? '<dir>' : Buffer.from(e.data).toString()]));
  assert.deepEqual(back, { 'old.txt': 'old', 'src': '<dir>', 'src/main.py': 'print(1)', 'data': '<dir>', 'data/in.csv': 'a,b\n1,2\n' });
  assert.equal(server.ctx.resultBudget.inUse, 0);
  // delete=true: what the archive lacks goes (old.txt, data/), a file replaced by a directory is handled.
  const r2 = await put('&delete=true', tarOf({ 'src/main.py': 'print(2)', 'old.txt/inner': 'now a dir' }));
  assert.equal(r2.statusCode, 200, r2.body);
  assert.deepEqual(r2.json().deleted.sort(), ['/workspace/data', '/workspace/old.txt']);
  assert.deepEqual(engine.tree(id, '/workspace'), { '/workspace/src': '<dir>', '/workspace/src/main.py': 'print(2)', '/workspace/old.txt': '<dir>', '/workspace/old.txt/inner': 'now a dir' });
  // A new directory is created for the archive.
  assert.equal((await app.inject({ method: 'PUT', url: `/v1/sessions/${id}/archive?path=/tmp/new/deep`, payload: tarOf({ f: 'x' }), headers: A })).statusCode, 200);
  assert.equal(engine.tree(id)['/tmp/new/deep/f'], 'x');
  // Hostile archives change nothing.
  const before = JSON.stringify(engine.tree(id));
  const evil = (name: string, type = '0', link = ''): Buffer => {
    const t = Buffer.from(writeTar([{ name: 'x', type: 'file', mode: 0o644, mtime: 0, data: new Uint8Array(0) }]));
    t.fill(0, 0, 100).write(name, 0);
    t.fill(0, 157, 257).write(link, 157);
    t[156] = type.charCodeAt(0);
    t.fill(0x20, 148, 156);
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += t[i]!;
    t.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
    return t;
  };
  for (const [what, body, re] of [
    ['absolute', evil('/etc/passwd'), /absolute/],
    ['dotdot', evil('../../escape'), /"\.\."/],
    ['hardlink', evil('h', '1', 'src/main.py'), /hard link/],
    ['device', evil('d', '3'), /device/],
    ['fifo', evil('p', '6'), /fifo/],
    ['symlink out', evil('s', '2', '../../../etc'), /outside/],
    ['truncated', tarOf({ f: 'x'.repeat(1000) }).subarray(0, 700), /truncated/],
    ['garbage', Buffer.alloc(512, 65), /checksum/],
  ] as const) {
    const r = await put('&delete=true', body);
    assert.equal(r.statusCode, 400, what);
    assert.match(r.json().error, /^the archive is refused: /);
    assert.match(r.json().error, re, what);
  }
  assert.equal(JSON.stringify(engine.tree(id)), before);
  // A symlink that stays inside is accepted and reported as skipped (no engine call creates links yet).
  const ok = await put('', evil('src/link', '2', 'main.py'));
  assert.deepEqual(ok.json().skipped, ['/workspace/src/link']);
  // Not a directory → 400.
  assert.equal((await app.inject({ method: 'GET', url: `/v1/sessions/${id}/archive?path=/workspace/src/main.py`, headers: A })).statusCode, 400);
});

test('an engine without sessions answers 501 Unsupported', async () => {
  const engine = new FakeSessions() as unknown as Record<string, unknown>;
  const plain = { ready: engine.ready, exec: engine.exec, health: engine.health, close: engine.close } as unknown as Engine;
  const { app } = buildServer({ engine: plain, config: loadServerConfig([], {}) });
  const r = await app.inject({ method: 'POST', url: '/v1/sessions', payload: {} });
  assert.equal(r.statusCode, 501);
  assert.match(r.json().error, /does not keep sessions/);
  assert.equal((await app.inject({ method: 'GET', url: '/v1/sessions/x/files?path=/a' })).statusCode, 501);
});

test('every session and file route is registered and in docs/openapi.yaml', async () => {
  const { readFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { repoRoot } = await import('../../src/lib/paths.js');
  const { app } = setup();
  await app.ready();
  const openapi = readFileSync(join(repoRoot, 'docs/openapi.yaml'), 'utf8');
  const routes = [
    ['POST', '/v1/sessions'], ['GET', '/v1/sessions'], ['GET', '/v1/sessions/{id}'], ['DELETE', '/v1/sessions/{id}'],
    ['POST', '/v1/sessions/{id}/exec'], ['POST', '/v1/sessions/{id}/fork'], ['POST', '/v1/sessions/{id}/pause'],
    ['PUT', '/v1/sessions/{id}/files'], ['GET', '/v1/sessions/{id}/files'], ['DELETE', '/v1/sessions/{id}/files'],
    ['PUT', '/v1/sessions/{id}/archive'], ['GET', '/v1/sessions/{id}/archive'],
  ] as const;
  for (const [method, path] of routes) {
    assert.ok(app.hasRoute({ method, url: path.replace('{id}', ':id') }), `app lacks ${method} ${path}`);
    const block = openapi.split(/^  (?=\/v1)/m).find((b) => b.startsWith(`${path}:\n`));
    assert.ok(block, `${path} missing from openapi`);
    assert.match(block, new RegExp(`^    ${method.toLowerCase()}:$`, 'm'), `${method} ${path} missing from openapi`);
  }
  await app.close();
});
