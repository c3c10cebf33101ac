// javascript-exec.test.ts — acceptance of the JavaScript template (Debian's
// node 18) and TypeScript through the engine: the seed snippets, ES2022 syntax,
// fs on /tmp, built-in modules, per-fork randomness, exit codes, uncaught
// errors, process.exit, timers, timeout and output caps, TS type stripping and a
// TS syntax error. Builds (or reuses) the templates in `before`.
// Needs /dev/kvm and the guest runtime; otherwise prints one "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { runtimeElf } from '../../src/lib/paths.js';
import { probe } from '../../src/vmm/vmm.js';
import { createEngine, type ForkboxEngine } from '../../src/engine/index.js';
import type { ExecResult } from '../../src/engine/types.js';
import { setLogLevel } from '../../src/lib/log.js';

const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: javascript e2e tests: ${!p.available ? p.reason : 'guest runtime not built (npm install)'}\n`);
} else {
  describe('javascript template', { timeout: 1_800_000 }, () => {
    let engine: ForkboxEngine;
    before(async () => {
      if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
      engine = await createEngine({ poolSize: 2, workers: 2, warmForks: 2, templates: 'all',
        onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
    }, { timeout: 1_800_000 });
    after(async () => {
      await engine?.close(1000);
    });
    const run = (code: string, language = 'javascript', timeoutSeconds = 20, extra: Record<string, unknown> = {}): Promise<ExecResult> =>
      engine.exec({ code, language, timeoutSeconds, ...extra });
    const ok = (r: ExecResult): void => {
      assert.equal(r.outcome, 'exited', `outcome ${r.outcome}: ${r.crash ?? ''} ${r.stderr}`);
      assert.equal(r.exitCode, 0, `exit ${r.exitCode}; stderr: ${r.stderr}`);
    };

    test('console.log(1 + 1), under every alias', async () => {
      for (const lang of ['javascript', 'js', 'node']) {
        const r = await run('console.log(1 + 1)', lang);
        ok(r);
        assert.equal(r.stdout, '2\n');
        assert.equal(r.stderr, '');
      }
    });

    test('the seed array-reduce mean', async () => {
      const r = await run('const nums = [1, 2, 3, 4, 5];\nconst mean = nums.reduce((a, b) => a + b, 0) / nums.length;\nconsole.log(mean);');
      ok(r);
      assert.equal(r.stdout, '3\n');
    });

    test('an async function with await prints in order; timers run before the answer', async () => {
      const code = [
        'const sleep = (ms) => new Promise((r) => setTimeout(r, ms));',
        'async function main() { console.log("a"); await sleep(20); console.log("b"); await Promise.resolve(); console.log("c"); }',
        'main().then(() => setTimeout(() => console.log("d"), 10));',
        'console.log("sync");',
      ].join('\n');
      const r = await run(code);
      ok(r);
      assert.equal(r.stdout, 'a\nsync\nb\nc\nd\n');
    });

    test('top-level await', async () => {
      const r = await run('const v = await new Promise((r) => setTimeout(() => r(42), 5));\nconsole.log(v);');
      ok(r);
      assert.equal(r.stdout, '42\n');
    });

    test('ES2022: classes, private fields, optional chaining, BigInt', async () => {
      const code = [
        'class Counter { #n = 0; static zero = 0; inc() { return ++this.#n; } get n() { return this.#n; } }',
        'const c = new Counter(); c.inc(); c.inc();',
        'const o = { a: { b: null } };',
        'console.log(c.n, o.a?.b?.c ?? "none", 2n ** 64n, [1, 2, 3].at(-1), Object.hasOwn(o, "a"));',
      ].join('\n');
      const r = await run(code);
      ok(r);
      assert.equal(r.stdout, '2 none 18446744073709551616n 3 true\n');
    });

    test("require('fs') writes and reads /tmp; built-in modules work", async () => {
      const code = [
        "const fs = require('fs'); const path = require('path'); const zlib = require('zlib');",
        "const { createHash } = require('crypto'); const util = require('util'); const { EventEmitter } = require('events');",
        "const { Readable } = require('stream');",
        "fs.writeFileSync(path.join('/tmp', 'x.txt'), 'hello');",
        "console.log(fs.readFileSync('/tmp/x.txt', 'utf8'), fs.readdirSync('/tmp').includes('x.txt'));",
        "console.log(zlib.gunzipSync(zlib.gzipSync(Buffer.from('zz'))).toString(), createHash('sha256').update('a').digest('hex').slice(0, 8));",
        "const e = new EventEmitter(); e.on('x', (v) => console.log(util.format('%s!', v))); e.emit('x', 'ev');",
        "let s = ''; Readable.from(['p', 'q']).on('data', (d) => { s += d; }).on('end', () => console.log(s));",
        "fs.promises.readFile('/tmp/x.txt', 'utf8').then((t) => console.log('async', t));",
      ].join('\n');
      const r = await run(code);
      ok(r);
      assert.equal(r.stdout, 'hello true\nzz ca978112\nev!\npq\nasync hello\n');
    });

    test('process.version starts with v18; Date.now() is the host clock', async () => {
      const before = Date.now();
      const r = await run('console.log(process.version, Date.now())');
      ok(r);
      const [v, t] = r.stdout.trim().split(' ');
      assert.match(v!, /^v18\./);
      assert.ok(Math.abs(Number(t) - before) < 60_000, `guest ${t} host ${before}`);
    });

    test('Math.random, crypto.randomUUID and getRandomValues differ across 20 forks', async () => {
      const code = "const c = require('crypto'); console.log(Math.random(), c.randomUUID(), c.webcrypto.getRandomValues(new Uint32Array(2)).join(','), c.randomBytes(8).toString('hex'))";
      const outs: ExecResult[] = [];
      for (let i = 0; i < 20; i += 4) outs.push(...await Promise.all(Array.from({ length: 4 }, () => run(code))));
      for (const r of outs) ok(r);
      for (let col = 0; col < 4; col++) {
        const vals = outs.map((r) => r.stdout.trim().split(' ')[col]);
        assert.equal(new Set(vals).size, 20, `column ${col}: ${vals.join(' ')}`);
      }
      const m = Number(outs[0]!.stdout.split(' ')[0]);
      assert.ok(m >= 0 && m < 1);
    });

    test('an uncaught exception: exit 1 with the stack on stderr', async () => {
      const r = await run('function boom() { throw new Error("kaput"); }\nconsole.log("before");\nboom();');
      assert.equal(r.outcome, 'exited');
      assert.equal(r.exitCode, 1);
      assert.equal(r.stdout, 'before\n');
      assert.match(r.stderr, /Error: kaput\n\s+at boom \(\[eval\]:1:/);
      assert.doesNotMatch(r.stderr, /runner\.js/);
    });

    test('an unhandled rejection: exit 1; later timers do not run', async () => {
      const r = await run('setTimeout(() => console.log("late"), 50);\nPromise.reject(new TypeError("nope"));');
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, /TypeError: nope/);
      assert.equal(r.stdout, '');
    });

    test('process.exit(3) gives 3 and stops the program; process.exitCode is honoured', async () => {
      const a = await run('console.log("x"); process.exit(3); console.log("never");');
      assert.equal(a.outcome, 'exited');
      assert.equal(a.exitCode, 3);
      assert.equal(a.stdout, 'x\n');
      const b = await run('setTimeout(() => process.exit(5), 5); setTimeout(() => console.log("never"), 100);');
      assert.equal(b.exitCode, 5);
      assert.equal(b.stdout, '');
      const c = await run('process.exitCode = 7; console.log("y")');
      assert.equal(c.exitCode, 7);
    });

    test('console.error goes to stderr; a syntax error is exit 1', async () => {
      const r = await run('console.error("to stderr"); console.log("to stdout")');
      ok(r);
      assert.equal(r.stderr, 'to stderr\n');
      assert.equal(r.stdout, 'to stdout\n');
      const s = await run('let = ;');
      assert.equal(s.exitCode, 1);
      assert.match(s.stderr, /SyntaxError/);
    });

    test('a busy loop ends at the timeout', async () => {
      const t0 = performance.now();
      const r = await run('while (true) {}', 'javascript', 1);
      const el = performance.now() - t0;
      assert.equal(r.outcome, 'timeout');
      assert.equal(r.exitCode, 124);
      assert.ok(el >= 900, `took ${el} ms`);
    });

    test('a setInterval that never stops ends at the timeout', async () => {
      const r = await run('setInterval(() => {}, 10)', 'javascript', 1);
      assert.equal(r.outcome, 'timeout');
    });

    test('stdout past the cap is truncated with the flag', async () => {
      const r = await run("const s = 'y'.repeat(1 << 20); for (let i = 0; i < 5; i++) process.stdout.write(s); console.error('done')",
        'javascript', 30, { stdoutCap: 1 << 20 });
      ok(r);
      assert.equal(r.stdoutTruncated, true);
      assert.equal(r.stdout.length, 1 << 20);
      assert.equal(r.stderr, 'done\n');
    });

    test('TypeScript with types runs (types stripped, no type check)', async () => {
      const code = [
        'interface P { x: number; y?: string }',
        'type N = number;',
        'const add = (a: N, b: N): N => a + b;',
        'const p: P = { x: add(1, 2) };',
        'enum Color { Red, Green }',
        'const wrong: string = 5 as unknown as string; // a type error is not checked',
        'console.log(p.x, Color.Green, typeof wrong);',
      ].join('\n');
      for (const lang of ['typescript', 'ts']) {
        const r = await run(code, lang);
        ok(r);
        assert.equal(r.stdout, '3 1 number\n');
      }
    });

    test('a TypeScript syntax error is exit 1 with the message on stderr', async () => {
      const r = await run('const x: number = ;\nconsole.log(x)', 'typescript');
      assert.equal(r.outcome, 'exited');
      assert.equal(r.exitCode, 1);
      assert.match(r.stderr, /main\.ts\(1,\d+\): error TS\d+/);
      assert.equal(r.stdout, '');
    });

    test('warm forks: the warm-up answers with no output, and its dry runs leave no trace', async () => {
      // the runner dry-runs programs before the snapshot and in each fork's warm-up; a user's
      // program must still be free to declare their names, and see no gc() and no output
      for (let i = 0; i < 4; i++) {
        const r = await run('const v = 1, nums = 2, r = 3; console.log(v + nums + r, typeof gc, require("vm").runInNewContext("typeof gc"))');
        ok(r);
        assert.equal(r.stdout, '6 undefined undefined\n');
        assert.equal(r.stderr, '');
      }
      const w = engine.warmStats('javascript') as { warmed: number; taken: number; failures: number };
      assert.ok(w.warmed > 0 && w.taken > 0, `warm pool ${JSON.stringify(w)}`);
      assert.equal(w.failures, 0);
    });

    test('process.memoryUsage() and os.totalmem() report the sandbox (the /proc/self/stat libuv reads)', async () => {
      const r = await run('const m = process.memoryUsage(); console.log(m.rss > 100 * 2 ** 20 && m.rss <= require("os").totalmem(), m.heapUsed > 0, require("os").totalmem() / 2 ** 20)');
      ok(r);
      assert.equal(r.stdout, 'true true 512\n'); // the engine's default memory limit
    });

    test('health lists both templates', () => {
      const h = engine.health();
      assert.equal(h.templates.python?.ready, true);
      assert.equal(h.templates.javascript?.ready, true);
    });
  });
}
