// sdk-sessions.test.ts — the session objects of both SDKs and the CLI's
// `session` and `sync` commands against the real HTTP app over a socket, with
// the in-memory FakeSessions engine behind it (no VM): create/run/fork/pause/
// kill/info/list/connect, files write/read/list/remove, directory upload and
// download through tar, and the destructive --delete in both directions.
// Also: the one-shot `new Sandbox(key).run()` still works beside sessions, and
// every file of sdk/js/lib is the compiled form of sdk/js/src.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { repoRoot } from '../../src/lib/paths.js';
import { buildServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig } from '../../src/server/config.js';
import { FakeSessions } from './fake-sessions.js';

const run = promisify(execFile);
const KEY = 'sk_sdk_sessions_0123456789abcdef';
const OTHER = 'sk_sdk_sessions_other_0123456789';
const engine = new FakeSessions();
const server = buildServer({ engine, config: { ...loadServerConfig([], {}), rateLimit: 0 }, keys: parseKeyFile(`k:${KEY}\no:${OTHER}`) });
let base = '';
const tmp = mkdtempSync(join(tmpdir(), 'fb-sdk-sessions-'));

before(async () => {
  await server.app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(server.app.server.address() as { port: number }).port}`;
});
after(async () => {
  await server.app.close();
  rmSync(tmp, { recursive: true, force: true });
});

const sdk = async () => import(join(repoRoot, 'sdk/js/lib/index.js'));

/** A local tree: path → text, or null for a directory. */
function makeTree(dir: string, files: Record<string, string | null>): void {
  mkdirSync(dir, { recursive: true });
  for (const [p, text] of Object.entries(files)) {
    if (text === null) mkdirSync(join(dir, p), { recursive: true });
    else {
      mkdirSync(join(dir, p, '..'), { recursive: true });
      writeFileSync(join(dir, p), text);
    }
  }
}
function readTree(dir: string, rel = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${name}` : name;
    if (statSync(join(dir, r)).isDirectory()) {
      out[r] = '<dir>';
      Object.assign(out, readTree(dir, r));
    } else out[r] = readFileSync(join(dir, r), 'utf8');
  }
  return out;
}

test('sdk/js/lib holds the compiled form of every file of sdk/js/src', async () => {
  const out = mkdtempSync(join(tmpdir(), 'fb-sdk-lib-'));
  try {
    await run(process.execPath, [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', join(repoRoot, 'sdk/js'), '--outDir', out]);
    const built = readdirSync(out).sort();
    assert.deepEqual(built, readdirSync(join(repoRoot, 'sdk/js/lib')).sort());
    for (const f of built) assert.equal(readFileSync(join(out, f), 'utf8'), readFileSync(join(repoRoot, 'sdk/js/lib', f), 'utf8'), `sdk/js/lib/${f} is stale`);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test('JS SDK: Sandbox.create → run/files/fork/pause/info/kill; connect, list, errors', async () => {
  const { Sandbox, Conflict, Gone, NotFound, Unsupported, InvalidRequest } = await sdk();
  const opts = { apiKey: KEY, baseUrl: base };
  const s = await Sandbox.create({ ...opts, language: 'python', name: 'js-1', timeout: 600, idleTimeout: 30, env: { G: 'hi' }, metadata: { t: '1' } });
  assert.match(s.id, /^sess_/);
  const info = await s.info();
  assert.equal(info.name, 'js-1');
  assert.equal(info.timeoutSeconds, 600);
  assert.equal(info.idleTimeoutSeconds, 30);
  assert.deepEqual(info.metadata, { t: '1' });
  assert.equal(info.parentId, undefined);
  await assert.rejects(Sandbox.create({ ...opts, name: 'js-1' }), Conflict);
  await assert.rejects(Sandbox.create({ ...opts, language: 'ruby' }), Unsupported);
  const r = await s.run('set x 41; write /workspace/a.txt abc; get G; expr 42', { timeout: 5 });
  assert.equal(r.stdout, 'hi\n');
  assert.equal(r.result, '42');
  assert.equal(r.exitCode, 0);
  assert.deepEqual(r.sideEffects, { filesCreated: [{ path: '/workspace/a.txt', size: 3 }], filesModified: [], filesDeleted: [], filesTruncated: false, pagesDirtied: 1, peakMemoryBytes: 1048576 });
  assert.equal((await s.run('set x 0; get x', { discard: true })).stdout, '0\n');
  assert.equal((await s.run('get x')).stdout, '41\n');
  assert.equal((await s.run('print')).result, undefined);
  // files
  const fi = await s.files.write('/workspace/dir/b.bin', new Uint8Array([0, 1, 255]), { mode: 0o600 });
  assert.equal(fi.size, 3);
  assert.equal(fi.mode, 0o600);
  assert.deepEqual([...await s.files.read('/workspace/dir/b.bin')], [0, 1, 255]);
  await s.files.write('/workspace/t.txt', 'täxt');
  assert.equal(await s.files.read('/workspace/t.txt', { format: 'text' }), 'täxt');
  assert.deepEqual((await s.files.list('/workspace')).map((e: { name: string }) => e.name), ['a.txt', 'dir', 't.txt']);
  await assert.rejects(s.files.read('/workspace/dir'), InvalidRequest);
  await assert.rejects(s.files.read('/workspace/none'), NotFound);
  await assert.rejects(s.files.write('/nope/x', 'x', { parents: false }), NotFound);
  await s.files.remove('/workspace/dir', { recursive: true });
  assert.equal(engine.tree(s.id)['/workspace/dir'], undefined);
  // fork, pause, list, connect, kill
  const kids = await s.fork(2);
  assert.equal(kids.length, 2);
  await kids[0].run('set x child');
  assert.equal((await kids[0].run('get x')).stdout, 'child\n');
  assert.equal((await kids[1].run('get x')).stdout, '41\n');
  assert.equal((await kids[1].info()).parentId, s.id);
  assert.equal((await s.pause()).state, 'paused');
  assert.equal((await s.run('get x')).stdout, '41\n');
  const again = await Sandbox.connect(s.id, opts);
  assert.equal((await again.run('get x')).stdout, '41\n');
  const ids = (await Sandbox.list(opts)).map((x: { id: string }) => x.id);
  assert.deepEqual(ids.sort(), [s.id, kids[0].id, kids[1].id].sort());
  assert.deepEqual(await Sandbox.list({ apiKey: OTHER, baseUrl: base }), []);
  await assert.rejects(Sandbox.connect(s.id, { apiKey: OTHER, baseUrl: base }), NotFound);
  for (const k of kids) await k.kill();
  await assert.rejects(kids[0].run('get x'), Gone);
  // Busy: one run at a time.
  const slow = s.run('sleep 150');
  await new Promise((res) => setTimeout(res, 30));
  await assert.rejects(s.run('get x'), Conflict);
  await slow;
  // The one-shot client is unchanged.
  const one = await new Sandbox(KEY, base).run('print(1)');
  assert.equal(one.stdout, 'print(1)');
  await s.kill();
});

test('JS SDK: files.upload / files.download mirror directories, delete in both directions', async () => {
  const { Sandbox } = await sdk();
  const s = await Sandbox.create({ apiKey: KEY, baseUrl: base });
  const local = join(tmp, 'js-up');
  makeTree(local, { 'src/main.py': 'print(1)', 'data/in.csv': 'a,b\n', 'empty': null });
  symlinkSync('/etc/passwd', join(local, 'evil-link'));
  const up = await s.files.upload(local, '/workspace');
  assert.equal(up.files, 2);
  assert.deepEqual(up.skipped, [join(local, 'evil-link')]);
  assert.deepEqual(engine.tree(s.id, '/workspace'), {
    '/workspace/data': '<dir>', '/workspace/data/in.csv': 'a,b\n', '/workspace/empty': '<dir>', '/workspace/src': '<dir>', '/workspace/src/main.py': 'print(1)',
  });
  // Remote-only files stay without delete, go with it.
  await s.files.write('/workspace/remote-only.txt', 'r');
  rmSync(join(local, 'data'), { recursive: true });
  await s.files.upload(local, '/workspace');
  assert.equal(engine.tree(s.id)['/workspace/remote-only.txt'], 'r');
  assert.equal(engine.tree(s.id)['/workspace/data/in.csv'], 'a,b\n');
  const mirrored = await s.files.upload(local, '/workspace', { delete: true });
  assert.deepEqual(mirrored.deleted.sort(), ['/workspace/data', '/workspace/remote-only.txt']);
  assert.deepEqual(Object.keys(engine.tree(s.id, '/workspace')).sort(), ['/workspace/empty', '/workspace/src', '/workspace/src/main.py']);
  // Download into a fresh directory, then with delete over local extras (a local symlink is replaced, not written through).
  await s.run('write /workspace/out.txt result');
  const down = join(tmp, 'js-down');
  const d1 = await s.files.download('/workspace', down);
  assert.equal(d1.files, 2);
  assert.deepEqual(readTree(down), { 'empty': '<dir>', 'out.txt': 'result', 'src': '<dir>', 'src/main.py': 'print(1)' });
  makeTree(down, { 'local-only.txt': 'l', 'src/extra.py': 'x' });
  const outside = join(tmp, 'outside');
  mkdirSync(outside);
  const linkOut = (): void => {
    rmSync(join(down, 'empty'), { recursive: true });
    symlinkSync(outside, join(down, 'empty'));
  };
  linkOut();
  await s.files.download('/workspace', down);
  assert.equal(readTree(down)['local-only.txt'], 'l');
  assert.ok(statSync(join(down, 'empty')).isDirectory() && readdirSync(outside).length === 0); // replaced, not followed
  linkOut();
  const d3 = await s.files.download('/workspace', down, { delete: true });
  assert.deepEqual(d3.deleted.sort(), [join(down, 'empty'), join(down, 'local-only.txt'), join(down, 'src/extra.py')].sort());
  assert.deepEqual(readTree(down), { 'empty': '<dir>', 'out.txt': 'result', 'src': '<dir>', 'src/main.py': 'print(1)' });
  assert.deepEqual(readdirSync(outside), []);
  await s.kill();
});

const py = (script: string) => run('python3', ['-c', script], {
  env: { ...process.env, PYTHONPATH: join(repoRoot, 'sdk/python'), PYTHONDONTWRITEBYTECODE: '1', FORKBOX_API_KEY: KEY, FORKBOX_BASE_URL: base, T: tmp },
});

test('Python SDK: Sandbox.create, run, files, upload/download with delete, fork, pause, kill, errors', async () => {
  const { stdout } = await py(`
import os, forkbox
from forkbox import Sandbox, Conflict, Gone, NotFound
s = Sandbox.create(language="python", name="py-1", timeout=600, metadata={"t": "1"})
try:
    Sandbox.create(name="py-1"); raise SystemExit("no Conflict")
except Conflict:
    pass
r = s.run("set x 41; write /workspace/a.txt abc; expr 42")
assert r.result == "42" and r.exit_code == 0, r
assert r.side_effects.files_created == [{"path": "/workspace/a.txt", "size": 3}], r.side_effects
assert s.run("set x 0", discard=True).exit_code == 0
assert s.run("get x").stdout == "41\\n"
fi = s.files.write("/workspace/d/b.bin", b"\\x00\\xff", mode=0o600)
assert (fi.size, fi.mode) == (2, 0o600), fi
assert s.files.read("/workspace/d/b.bin") == b"\\x00\\xff"
s.files.write("/workspace/t.txt", "täxt")
assert s.files.read("/workspace/t.txt", format="text") == "täxt"
assert [e.name for e in s.files.list("/workspace")] == ["a.txt", "d", "t.txt"]
s.files.remove("/workspace/d", recursive=True)
try:
    s.files.read("/workspace/d/b.bin"); raise SystemExit("no NotFound")
except NotFound:
    pass
T = os.environ["T"]
up = os.path.join(T, "py-up"); os.makedirs(os.path.join(up, "src"))
open(os.path.join(up, "src", "m.py"), "w").write("print(2)")
res = s.files.upload(up, "/workspace", delete=True)
assert sorted(res.deleted) == ["/workspace/a.txt", "/workspace/t.txt"], res
down = os.path.join(T, "py-down"); os.makedirs(down)
open(os.path.join(down, "stale"), "w").write("s")
res = s.files.download("/workspace", down, delete=True)
assert res.deleted == [os.path.join(down, "stale")], res
assert open(os.path.join(down, "src", "m.py")).read() == "print(2)"
kids = s.fork(2)
kids[0].run("set x kid")
assert kids[0].run("get x").stdout == "kid\\n" and kids[1].run("get x").stdout == "41\\n"
assert kids[1].info().parent_id == s.id
assert s.pause().state == "paused"
assert Sandbox.connect(s.id).run("get x").stdout == "41\\n"
assert sorted(x.id for x in Sandbox.list()) == sorted([s.id, kids[0].id, kids[1].id])
for k in kids: k.kill()
try:
    kids[0].run("get x"); raise SystemExit("no Gone")
except Gone:
    pass
assert Sandbox().run("print(1)").stdout == "print(1)"
s.kill()
print("ok")
`);
  assert.equal(stdout.trim(), 'ok');
});

const cli = async (args: string[], input?: string): Promise<{ code: number; stdout: string; stderr: string }> => {
  const p = execFile(process.execPath, [join(repoRoot, 'dist/src/cli/main.js'), ...args], { env: { ...process.env, FORKBOX_API_KEY: KEY, FORKBOX_BASE_URL: base } });
  if (input !== undefined) p.stdin!.end(input);
  let stdout = '';
  let stderr = '';
  p.stdout!.on('data', (d) => { stdout += d; });
  p.stderr!.on('data', (d) => { stderr += d; });
  const code = await new Promise<number>((res) => p.on('close', (c) => res(c ?? -1)));
  return { code, stdout, stderr };
};

test('CLI: forkbox session create|exec|ls|fork|pause|rm', async () => {
  const c = await cli(['session', 'create', '--name', 'cli-1', '--timeout', '900']);
  assert.equal(c.code, 0, c.stderr);
  const id = c.stdout.trim();
  assert.match(id, /^sess_\d+$/);
  const e = await cli(['session', 'exec', id, 'set x 5; get x; expr 6']);
  assert.equal(e.code, 0, e.stderr);
  assert.equal(e.stdout, '5\n6\n');
  assert.equal((await cli(['session', 'exec', id, '-'], 'get x')).stdout, '5\n');
  const crashed = await cli(['session', 'exec', id, 'die', '--discard']);
  assert.equal(crashed.code, 139);
  assert.match(crashed.stderr, /sandbox crashed/);
  const f = await cli(['session', 'fork', id, '--count', '2']);
  const kids = f.stdout.trim().split('\n');
  assert.equal(kids.length, 2);
  const ls = await cli(['session', 'ls']);
  assert.match(ls.stdout, new RegExp(`^${id}\\tcli-1\\tidle\\t2\\t-\\t`, 'm'));
  assert.match(ls.stdout, new RegExp(`^${kids[0]}\\t-\\tidle\\t0\\t${id}\\t`, 'm'));
  assert.equal((await cli(['session', 'pause', id])).stdout, `${id}\tpaused\n`);
  const rm = await cli(['session', 'rm', ...kids, 'sess_nope']);
  assert.equal(rm.code, 1);
  assert.match(rm.stderr, /sess_nope: no session/);
  const gone = await cli(['session', 'exec', kids[0]!, 'get x']);
  assert.equal(gone.code, 1);
  assert.match(gone.stderr, /^forkbox session exec: Gone: /);
  assert.equal((await cli(['session', 'create', '--timeout', 'x'])).code, 2);
  assert.equal((await cli(['session', 'bogus'])).code, 2);
  assert.equal((await cli(['session', 'rm', id])).code, 0);
});

test('CLI: forkbox sync both ways, --delete destructive in both directions', async () => {
  const id = (await cli(['session', 'create'])).stdout.trim();
  const local = join(tmp, 'cli-up');
  makeTree(local, { 'a.txt': 'A', 'sub/b.txt': 'B' });
  let r = await cli(['sync', local, `${id}:/workspace/proj`]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /2 files \(2 bytes\), 1 directories/);
  assert.deepEqual(engine.tree(id, '/workspace/proj'), { '/workspace/proj/a.txt': 'A', '/workspace/proj/sub': '<dir>', '/workspace/proj/sub/b.txt': 'B' });
  // local → session --delete removes what the local side lacks.
  await cli(['session', 'exec', id, 'write /workspace/proj/remote.txt R']);
  rmSync(join(local, 'sub'), { recursive: true });
  r = await cli(['sync', local, `${id}:/workspace/proj`]);
  assert.equal(engine.tree(id)['/workspace/proj/remote.txt'], 'R');
  r = await cli(['sync', local, `${id}:/workspace/proj`, '--delete']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /deleted \/workspace\/proj\/remote\.txt/);
  assert.deepEqual(engine.tree(id, '/workspace/proj'), { '/workspace/proj/a.txt': 'A' });
  // session → local: without --delete local extras stay; with it they go.
  const down = join(tmp, 'cli-down');
  makeTree(down, { 'mine.txt': 'M' });
  await cli(['session', 'exec', id, 'write /workspace/proj/result.txt 42']);
  r = await cli(['sync', `${id}:/workspace/proj`, down]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readTree(down), { 'a.txt': 'A', 'mine.txt': 'M', 'result.txt': '42' });
  r = await cli(['sync', `${id}:/workspace/proj`, down, '--delete']);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(readTree(down), { 'a.txt': 'A', 'result.txt': '42' });
  assert.ok(!existsSync(join(down, 'mine.txt')));
  // Usage errors: two local paths, two remote paths, an unknown session.
  assert.equal((await cli(['sync', local, down])).code, 2);
  assert.equal((await cli(['sync', `${id}:/a`, `${id}:/b`])).code, 2);
  const bad = await cli(['sync', local, 'sess_nope:/workspace']);
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /NotFound/);
  await cli(['session', 'rm', id]);
});
