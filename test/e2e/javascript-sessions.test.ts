// javascript-sessions.test.ts — JavaScript and TypeScript sessions on real forks, through
// the engine and over HTTP (the app in-process, inject): REPL semantics (declarations,
// functions and classes persist, the last expression is `result`, a re-declaration and a
// top-level await), files and cwd kept, an error leaves the session usable, forks diverge,
// and pause/resume keeps the namespace. Needs /dev/kvm; otherwise one "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runtimeElf } from '../../src/lib/paths.js';
import { setLogLevel } from '../../src/lib/log.js';
import { probe } from '../../src/vmm/vmm.js';
import { createEngine, type ForkboxEngine } from '../../src/engine/index.js';
import type { SessionExecResult } from '../../src/engine/session-types.js';
import { buildServer, type ForkboxServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig } from '../../src/server/config.js';

const KEY = 'sk_js_sessions_e2e_0123456789abcdef';
const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: javascript session e2e tests: ${!p.available ? p.reason : 'guest runtime not built'}\n`);
} else {
  describe('javascript sessions', { timeout: 1_800_000 }, () => {
    let dir: string;
    let engine: ForkboxEngine;
    let server: ForkboxServer;
    before(async () => {
      if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
      dir = mkdtempSync(join(tmpdir(), 'forkbox-js-sessions-'));
      engine = await createEngine({ poolSize: 2, workers: 2, warmForks: 0, sessionDir: dir, templates: ['javascript'],
        onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
      server = buildServer({ engine, config: { ...loadServerConfig([], {}), rateLimit: 0 }, keys: parseKeyFile(`e2e:${KEY}`) });
    }, { timeout: 1_800_000 });
    after(async () => {
      await server?.app.close();
      await engine?.close(1000);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    const run = (id: string, code: string, language = 'javascript'): Promise<SessionExecResult> =>
      engine.execSession('a', id, { code, language, timeoutSeconds: 30 });
    const ok = async (id: string, code: string, language = 'javascript'): Promise<SessionExecResult> => {
      const r = await run(id, code, language);
      assert.equal(r.outcome, 'exited', `${r.outcome} ${r.crash ?? ''} ${r.stderr}`);
      assert.equal(r.exitCode, 0, `exit ${r.exitCode}: ${r.stderr}`);
      return r;
    };

    test('REPL semantics: declarations persist, the last expression is the result', async () => {
      const s = await engine.createSession({ owner: 'a', language: 'javascript' });
      assert.equal((await ok(s.id, 'let x = 41; const o = { a: [1, 2] }; function inc(n) { return n + 1 } class P { static k = "P" }')).result, undefined);
      assert.equal((await ok(s.id, 'inc(x)')).result, '42');
      assert.equal((await ok(s.id, 'x = inc(x); x')).result, '42');
      const shown = await ok(s.id, 'o');
      assert.equal(shown.result, '{ a: [ 1, 2 ] }');
      // The result is also the exec's main rich result (text only), as in a Python session.
      assert.deepEqual(shown.results?.map((r) => ({ text: r.text, main: r.isMainResult })), [{ text: '{ a: [ 1, 2 ] }', main: true }]);
      assert.equal((await ok(s.id, 'P.k + typeof inc')).result, "'Pfunction'");
      assert.equal((await ok(s.id, 'var g = 7; globalThis.h = 8; undefined')).result, undefined);
      assert.equal((await ok(s.id, 'g + h')).result, '15');
      const out = await ok(s.id, 'console.log("x is", x); x * 2');
      assert.equal(out.stdout, 'x is 42\n');
      assert.equal(out.result, '84');
      // re-running a cell that declares a name works, as in a notebook
      await ok(s.id, 'const data = [1, 2, 3]');
      assert.equal((await ok(s.id, 'const data = [4, 5]; data.length')).result, '2');
      assert.equal((await ok(s.id, 'let x = "again"; x')).result, "'again'");
      await engine.deleteSession('a', s.id);
    });

    test('top-level await in a session: its declarations persist too', async () => {
      const s = await engine.createSession({ owner: 'a', language: 'javascript' });
      const r = await ok(s.id, 'const v = await new Promise((res) => setTimeout(() => res(5), 5));\nlet w = v * 2;\nw + 1');
      assert.equal(r.result, '11');
      assert.equal((await ok(s.id, 'v + w')).result, '15');
      assert.equal((await ok(s.id, 'await Promise.resolve(v)')).result, '5');
      await engine.deleteSession('a', s.id);
    });

    test('errors and exits in a session: as node prints them, and the session goes on', async () => {
      const s = await engine.createSession({ owner: 'a', language: 'javascript' });
      await ok(s.id, 'let n = 1');
      const syn = await run(s.id, 'n = ;');
      assert.equal(syn.exitCode, 1);
      assert.equal(syn.stderr, "[eval]:1\nn = ;\n    ^\n\nSyntaxError: Unexpected token ';'\n");
      const rt = await run(s.id, 'function f() { return JSON.parse("{") }\nf()');
      assert.equal(rt.exitCode, 1);
      assert.match(rt.stderr, /^SyntaxError: .*JSON[\s\S]*at f \(/);
      assert.doesNotMatch(rt.stderr, /runner\.js|Session\.post|node:inspector/);
      const thrown = await run(s.id, 'throw 5');
      assert.deepEqual([thrown.exitCode, thrown.stderr], [1, 'Uncaught 5\n']);
      const exit = await run(s.id, 'console.log("bye"); process.exit(4); console.log("never")');
      assert.deepEqual([exit.exitCode, exit.stdout], [4, 'bye\n']);
      assert.equal((await ok(s.id, 'Promise.resolve(n)')).result, 'Promise { 1 }');
      assert.equal((await ok(s.id, '[1n << 70n, -0, Symbol("s")]')).result, '[ 1180591620717411303424n, -0, Symbol(s) ]');
      assert.equal((await ok(s.id, 'n + 1')).result, '2');
      await engine.deleteSession('a', s.id);
    });

    test('files and cwd persist; an error leaves the session usable; Math.random differs across forks', async () => {
      const s = await engine.createSession({ owner: 'a', language: 'javascript' });
      await ok(s.id, 'const fs = require("fs"); fs.writeFileSync("notes.txt", "hello"); process.chdir("/tmp")');
      assert.equal((await ok(s.id, 'process.cwd() + " " + fs.readFileSync("/workspace/notes.txt", "utf8")')).result, "'/tmp hello'");
      assert.equal((await engine.readFile('a', s.id, '/workspace/notes.txt')).toString(), 'hello');
      const bad = await run(s.id, 'let kept = 1; throw new Error("boom")');
      assert.equal(bad.exitCode, 1);
      assert.match(bad.stderr, /Error: boom/);
      assert.equal((await ok(s.id, 'typeof fs.readFileSync')).result, "'function'");
      const kids = await engine.forkSession('a', s.id, 2);
      const rs = [];
      for (const k of kids) rs.push((await ok(k.id, 'Math.random()')).result);
      assert.notEqual(rs[0], rs[1]);
      for (const k of kids) await engine.deleteSession('a', k.id);
      await engine.deleteSession('a', s.id);
    });

    test('typescript sessions: types stripped, state kept; a syntax error is exit 1', async () => {
      const s = await engine.createSession({ owner: 'a', language: 'typescript' });
      await ok(s.id, 'interface Pt { x: number }\nconst pts: Pt[] = [{ x: 1 }, { x: 2 }];', 'typescript');
      assert.equal((await ok(s.id, 'pts.map((p: Pt) => p.x * 10)', 'typescript')).result, '[ 10, 20 ]');
      const bad = await run(s.id, 'const y: number = ;', 'typescript');
      assert.equal(bad.exitCode, 1);
      assert.match(bad.stderr, /error TS\d+/);
      assert.equal((await ok(s.id, 'pts.length', 'typescript')).result, '2');
      await engine.deleteSession('a', s.id);
    });

    test('over HTTP: create, exec with result, upload and read, pause and resume, delete', async () => {
      const call = (method: 'GET' | 'POST' | 'PUT' | 'DELETE', url: string, payload?: unknown) =>
        server.app.inject({ method, url, ...(payload !== undefined ? { payload: payload as object } : {}), headers: { authorization: `Bearer ${KEY}` } });
      const c = await call('POST', '/v1/sessions', { language: 'node' });
      assert.equal(c.statusCode, 201, c.body);
      assert.equal(c.json().language, 'javascript');
      const id = c.json().id as string;
      const exec = async (code: string) => {
        const r = await call('POST', `/v1/sessions/${id}/exec`, { code });
        assert.equal(r.statusCode, 200, r.body);
        return r.json() as { stdout: string; stderr: string; exit_code: number; result?: string };
      };
      const up = await call('PUT', `/v1/sessions/${id}/files?path=/workspace/in.json&parents=true`, '{"n": [1, 2, 3]}');
      assert.equal(up.statusCode, 200, up.body);
      const r1 = await exec('const d = JSON.parse(require("fs").readFileSync("in.json", "utf8")); console.log(d.n.length); d.n.reduce((a, b) => a + b)');
      assert.equal(r1.exit_code, 0, r1.stderr);
      assert.equal(r1.stdout, '3\n');
      assert.equal(r1.result, '6');
      assert.equal((await call('POST', `/v1/sessions/${id}/pause`)).json().state, 'paused');
      assert.equal((await exec('d.n.at(-1)')).result, '3');
      assert.equal((await call('DELETE', `/v1/sessions/${id}`)).statusCode, 204);
    });
  });
}
