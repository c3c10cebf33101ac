// server-sdk.test.ts — both SDKs against the real HTTP app over a socket, with
// an Engine double behind it (no VM; the e2e sdk tests use the real engine):
// result mapping, batch order, error envelope → class of the same name,
// Retry-After, connection errors. Also checks that sdk/js/lib is the compiled
// form of sdk/js/src and that both SDKs have a class for every catalog code.
import assert from 'node:assert/strict';
import { execFile, execFileSync, spawnSync } from 'node:child_process';
import { format, inspect, promisify } from 'node:util';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { Engine, EngineHealth, ExecRequest, ExecResult } from '../../src/engine/types.js';
import { repoRoot } from '../../src/lib/paths.js';
import { buildServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig } from '../../src/server/config.js';

const KEY = 'sk_sdk_test_0123456789abcdef';
const PY_KEY = 'sk_sdk_python_0123456789abcdef'; // its own rate-limit bucket

class EchoEngine implements Engine {
  async ready(): Promise<void> {}
  health(): EngineHealth {
    return { ready: true, templates: { python: { ready: true } }, pool: { ready: 1, target: 1, created: 1, taken: 0, misses: 0 }, liveForks: 0, inFlight: 0 };
  }
  async close(): Promise<void> {}
  async exec(req: ExecRequest): Promise<ExecResult> {
    const m = /^exit (\d+)$/.exec(req.code);
    return {
      id: 'exec_test', stdout: m ? '' : `${req.code}|${req.timeoutSeconds}|${req.env?.X ?? ''}|${req.stdin ?? ''}`, stderr: m ? 'err\n' : '',
      exitCode: m ? Number(m[1]) : 0, outcome: 'exited', stdoutTruncated: false, stderrTruncated: false, forkTimeMs: 0.1, execTimeMs: 0.2, totalTimeMs: 0.3,
    };
  }
}

let base = '';
const server = buildServer({ engine: new EchoEngine(), config: { ...loadServerConfig([], {}), rateLimit: 0.001, rateBurst: 12 }, keys: parseKeyFile(`sdk:${KEY}\npy:${PY_KEY}`) });

before(async () => {
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(server.app.server.address() as { port: number }).port}`;
});
after(async () => { await server.app.close(); });

function catalogCodes(): string[] {
  const src = readFileSync(join(repoRoot, 'src/lib/errors.ts'), 'utf8');
  const union = /export type ErrorCode =([\s\S]*?);/.exec(src)![1]!;
  return [...union.matchAll(/'([A-Za-z]+)'/g)].map((m) => m[1]!);
}

test('sdk/js/lib is the compiled form of sdk/js/src', () => {
  const out = mkdtempSync(join(tmpdir(), 'forkbox-sdk-'));
  try {
    execFileSync(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'sdk/js'), '--outDir', out]);
    for (const f of ['index.js', 'index.d.ts']) {
      assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(repoRoot, 'sdk/js/lib', f), 'utf8'), `sdk/js/lib/${f} is stale: run npx tsc -p sdk/js`);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('both SDKs have an error class for every code in the catalog', async () => {
  const sdk = await import(join(repoRoot, 'sdk/js/lib/index.js'));
  const py = spawnSync('python3', ['-c', 'import json, forkbox; print(json.dumps(sorted(forkbox.ERROR_CLASSES)))'], { env: { ...process.env, PYTHONPATH: join(repoRoot, 'sdk/python'), PYTHONDONTWRITEBYTECODE: '1' }, encoding: 'utf8' });
  assert.equal(py.status, 0, py.stderr);
  const pyCodes = JSON.parse(py.stdout) as string[];
  for (const code of catalogCodes()) {
    assert.ok(sdk.ERROR_CLASSES[code], `JS SDK lacks ${code}`);
    assert.equal(new sdk.ERROR_CLASSES[code](code, 500, 'm').name, code);
    assert.ok(pyCodes.includes(code), `Python SDK lacks ${code}`);
  }
});

test('JS SDK: run, runBatch, health, typed errors', async () => {
  const { Sandbox, Unauthorized, InvalidRequest, RateLimited, ConnectionError, ForkboxError } = await import(join(repoRoot, 'sdk/js/lib/index.js'));
  const sb = new Sandbox(KEY, base);
  const r = await sb.run('hello', { timeout: 7, env: { X: 'ex' }, stdin: 'in' });
  assert.equal(r.stdout, 'hello|7|ex|in');
  assert.equal(r.exitCode, 0);
  assert.equal(r.outcome, 'exited');
  assert.equal(r.forkTimeMs, 0.1);
  assert.equal(r.stdoutTruncated, false);
  const f = await sb.run('exit 4');
  assert.equal(f.exitCode, 4);
  // A result reads as its output (Zeroboot's examples print it); the fields stay, JSON shows only data.
  assert.equal(String(r), 'hello|7|ex|in');
  assert.equal(`[${r}]`, '[hello|7|ex|in]');
  assert.equal(format(r), 'hello|7|ex|in', 'console.log(result) prints the output');
  assert.equal(inspect({ output: r }), "{ output: 'hello|7|ex|in' }", 'nested, it shows as the quoted string');
  assert.equal(r.output, 'hello|7|ex|in');
  assert.equal(r.durationMs, 0.3);
  assert.equal(String(f), '', 'output is stdout alone: stderr is not merged');
  assert.equal(f.stderr, 'err\n');
  const json = JSON.parse(JSON.stringify(r));
  assert.deepEqual(Object.keys(json).sort(), ['durationMs', 'execTimeMs', 'exitCode', 'forkTimeMs', 'id', 'outcome', 'output', 'results', 'resultsTruncated', 'stderr',
    'stderrTruncated', 'stdout', 'stdoutTruncated', 'totalTimeMs']);
  assert.deepEqual({ ...r }, json, 'toString and the inspect hook are not enumerable');
  const batch = await sb.runBatch(['a', { code: 'b', timeout: 2 }, 'exit 9']);
  assert.deepEqual(batch.map((x: { stdout: string; exitCode: number }) => [x.stdout, x.exitCode]), [['a|30||', 0], ['b|2||', 0], ['', 9]]);
  assert.equal((await sb.health()).status, 'ok');
  await assert.rejects(new Sandbox('sk_wrong_0123456789abcdef', base).run('x'), (e: InstanceType<typeof ForkboxError>) => e instanceof Unauthorized && e instanceof ForkboxError && e.status === 401 && e.code === 'Unauthorized' && /^req_/.test(e.requestId));
  await assert.rejects(sb.run('x', { language: 'cobol' }), (e: Error) => e instanceof InvalidRequest && /one of: python/.test(e.message));
  // Burst 12: 5 used above (+ batch of 3 = 8 tokens); exhaust the rest.
  let limited: unknown;
  for (let i = 0; i < 10 && !limited; i++) await sb.run('x').catch((e: unknown) => { limited = e; });
  assert.ok(limited instanceof RateLimited, String(limited));
  assert.ok((limited as { retryAfter: number }).retryAfter >= 1);
  await assert.rejects(new Sandbox(KEY, 'http://127.0.0.1:1').run('x'), (e: Error) => e instanceof ConnectionError);
});

test('Python SDK: run, run_batch, health, typed errors', async () => {
  const script = `
import json, sys, forkbox
from forkbox import Sandbox
base, key = sys.argv[1], sys.argv[2]
sb = Sandbox(api_key=key, base_url=base)
out = {}
r = sb.run("hello", timeout=7, env={"X": "ex"}, stdin="in")
out["run"] = [r.stdout, r.exit_code, r.outcome, r.fork_time_ms, r.stdout_truncated]
f = sb.run("exit 4")
out["reads"] = [str(r), f"[{r}]", r.output, r.duration_ms, str(f), f.stderr]
out["batch"] = [[x.stdout, x.exit_code] for x in sb.run_batch(["a", {"code": "b", "timeout": 2}])]
out["health"] = sb.health()["status"]
try:
    Sandbox(api_key="sk_wrong_0123456789abcdef", base_url=base).run("x")
except forkbox.Unauthorized as e:
    out["unauth"] = [e.code, e.status, isinstance(e, forkbox.ForkboxError), bool(e.request_id)]
try:
    sb.run("x", language="cobol")
except forkbox.InvalidRequest as e:
    out["invalid"] = e.message
try:
    Sandbox(api_key=key, base_url="http://127.0.0.1:1").run("x")
except forkbox.ConnectionError as e:
    out["conn"] = e.code
out["repr_hides_key"] = key not in repr(sb)
print(json.dumps(out))
`;
  // Asynchronous: the server answering the SDK runs on this event loop.
  const p = await promisify(execFile)('python3', ['-c', script, base, PY_KEY], { env: { ...process.env, PYTHONPATH: join(repoRoot, 'sdk/python'), PYTHONDONTWRITEBYTECODE: '1' }, timeout: 60_000 });
  const out = JSON.parse(p.stdout);
  assert.deepEqual(out.run, ['hello|7|ex|in', 0, 'exited', 0.1, false]);
  assert.deepEqual(out.reads, ['hello|7|ex|in', '[hello|7|ex|in]', 'hello|7|ex|in', 0.3, '', 'err\n']);
  assert.deepEqual(out.batch, [['a|30||', 0], ['b|2||', 0]]);
  assert.equal(out.health, 'ok');
  assert.deepEqual(out.unauth, ['Unauthorized', 401, true, true]);
  assert.match(out.invalid, /one of: python/);
  assert.equal(out.conn, 'ConnectionError');
  assert.equal(out.repr_hides_key, true);
});

test('both SDKs read the flat envelope and the older nested one into the class named by code', async () => {
  const { createServer } = await import('node:http');
  // /flat answers like this server; /nested like servers before the flat envelope.
  const old = createServer((req, res) => {
    const flat = req.url?.startsWith('/flat');
    const body = flat
      ? { error: 'Host is not accepted (flat)', code: 'Forbidden', request_id: 'req_flat_1' }
      : { error: { code: 'Overloaded', message: 'server is at capacity (nested)', requestId: 'req_nested_1' } };
    res.writeHead(flat ? 403 : 503, { 'content-type': 'application/json', 'retry-after': '3' }).end(JSON.stringify(body));
  });
  await new Promise<void>((r) => old.listen(0, '127.0.0.1', r));
  const at = `http://127.0.0.1:${(old.address() as { port: number }).port}`;
  try {
    const { Sandbox, Forbidden, Overloaded } = await import(join(repoRoot, 'sdk/js/lib/index.js'));
    await assert.rejects(new Sandbox(undefined, `${at}/flat`).run('x'),
      (e: Error & { code: string; requestId: string; status: number }) => e instanceof Forbidden && e.message === 'Host is not accepted (flat)' && e.requestId === 'req_flat_1' && e.status === 403);
    await assert.rejects(new Sandbox(undefined, `${at}/nested`).run('x'),
      (e: Error & { code: string; requestId: string; retryAfter: number }) => e instanceof Overloaded && e.message === 'server is at capacity (nested)' && e.requestId === 'req_nested_1' && e.retryAfter === 3);
    const script = `
import json, sys, forkbox
out = []
for path in ("/flat", "/nested"):
    try:
        forkbox.Sandbox(base_url=sys.argv[1] + path).run("x")
    except forkbox.ForkboxError as e:
        out.append([type(e).__name__, e.message, e.request_id, e.status, e.retry_after])
print(json.dumps(out))
`;
    const p = await promisify(execFile)('python3', ['-c', script, at], { env: { ...process.env, PYTHONPATH: join(repoRoot, 'sdk/python'), PYTHONDONTWRITEBYTECODE: '1', FORKBOX_API_KEY: '' }, timeout: 60_000 });
    assert.deepEqual(JSON.parse(p.stdout), [
      ['Forbidden', 'Host is not accepted (flat)', 'req_flat_1', 403, 3],
      ['Overloaded', 'server is at capacity (nested)', 'req_nested_1', 503, 3],
    ]);
  } finally {
    old.close();
  }
});
