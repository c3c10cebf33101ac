// seed-examples.test.ts — every code block of the zeroboot-vm-sandbox skill (the
// seed document beside the checkout, read at test time) run as written against a
// real `forkbox serve` child: curl calls, Python and TypeScript SDK examples, raw
// fetch, the health check, the API reference's request. Only the base URL and the
// key change, through the environment; `zeroboot` and `@zeroboot/sdk` are shims
// (made here, in a temp dir) over our SDKs. The README's "Coming from Zeroboot" blocks run too.
// Without /dev/kvm, or without the document (then the README part still runs): one "skipped:" line.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import ts from 'typescript';
import { repoRoot } from '../../src/lib/paths.js';

const run = promisify(execFile);
/** The shared folder of seed documents sits beside the checkout. */
const SEED = join(dirname(repoRoot), 'shared', 'seeds', '002_9ab3476405ef41cf.txt');
const KEY = 'zb_live_forkbox_seed_0123456789abcdef';
/** The host the document's curl and fetch examples name; only this URL prefix is rewritten. */
const REMOTE = 'https://api.zeroboot.dev';

export interface Block { lang: string; code: string; line: number; section: string }

/** Every fenced block of the document, with the heading it sits under. */
export function seedBlocks(doc: string): Block[] {
  const out: Block[] = [];
  for (const m of doc.matchAll(/^```(\w*)\n([\s\S]*?)^```\s*$/gm)) {
    const before = doc.slice(0, m.index);
    const headings = [...before.matchAll(/^(#{2,4}) (.+)$/gm)];
    const h = headings.at(-1);
    const parent = [...headings].reverse().find((x) => x[1]!.length < (h?.[1]!.length ?? 0));
    out.push({ lang: m[1]!, code: m[2]!, line: before.split('\n').length, section: h ? (parent && h[1] !== '##' ? `${parent[2]} / ${h[2]}` : h[2]!) : '(top)' });
  }
  return out;
}

/**
 * The seed's copy of the document has lost its indentation (every line starts in column 0), which
 * Python cannot run. This puts it back by the language's own rules and nothing else: a line ending
 * in ":" opens a block; except/elif/else/finally line up with their try/if; a `return` ends its
 * function unless a clause follows; lines inside triple-quoted strings stay as written.
 */
export function reindentPython(code: string): string {
  if (code.split('\n').some((l) => /^[ \t]+\S/.test(l))) return code; // already indented: as written
  const out: string[] = [];
  const stack: { kind: string; indent: number }[] = [];
  let level = 0;
  let inString = false;
  let afterReturn = false;
  for (const raw of code.split('\n')) {
    const c = raw.trim();
    if (inString) {
      out.push(raw);
      if ((c.match(/"""/g) ?? []).length % 2 === 1) inString = false;
      continue;
    }
    if (c === '') { out.push(''); continue; }
    const clause = /^(except|elif|else|finally)\b/.exec(c)?.[1];
    if (clause) {
      const opens = clause === 'elif' ? ['if'] : clause === 'else' ? ['if', 'for', 'while', 'try'] : ['try'];
      while (stack.length && !opens.includes(stack.at(-1)!.kind)) stack.pop();
      const top = stack.pop();
      level = top ? top.indent : 0;
    } else if (afterReturn) {
      let top = stack.pop();
      while (top && top.kind !== 'def') top = stack.pop();
      level = top ? top.indent : 0;
    }
    afterReturn = false;
    out.push(' '.repeat(level) + c);
    if ((c.match(/"""/g) ?? []).length % 2 === 1) { inString = true; continue; }
    if (/:\s*(#.*)?$/.test(c)) {
      const kw = /^(async\s+def|def|class|if|elif|else|for|while|try|except|finally|with)\b/.exec(c)?.[1] ?? 'block';
      const kind = kw.endsWith('def') ? 'def' : kw === 'elif' ? 'if' : ['except', 'finally'].includes(kw) ? 'try' : kw === 'else' ? 'if' : kw;
      stack.push({ kind, indent: level });
      level += 4;
    } else if (/^return\b/.test(c)) {
      afterReturn = true;
    }
  }
  return out.join('\n');
}

/** A TypeScript example as the JavaScript Node runs: types erased by the compiler, nothing else. */
function toJs(code: string): string {
  return ts.transpileModule(code, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText;
}

const nonEmpty = (s: string): string[] => s.split('\n').map((l) => l.trimEnd()).filter((l) => l !== '');

/** What each block is, decided from its text; a block nothing here recognises fails the test. */
type Kind =
  | { kind: 'install'; what: string }
  | { kind: 'not-run'; why: string }
  | { kind: 'curl' } | { kind: 'python' } | { kind: 'typescript' } | { kind: 'request' } | { kind: 'response' } | { kind: 'headers' };

export function classify(b: Block): Kind | undefined {
  const lines = b.code.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  if (b.lang === 'bash') {
    if (lines.every((l) => /^(pip install|npm install|pnpm add|export [A-Z_]+=|# or$)/.test(l))) return { kind: 'install', what: lines.filter((l) => !l.startsWith('#')).join('; ') };
    if (lines.some((l) => l.startsWith('curl '))) return { kind: 'curl' };
    if (lines.some((l) => /^(git clone|cargo build)/.test(l))) return { kind: 'not-run', why: "builds Zeroboot itself (a Rust/Firecracker checkout), not a call to a server" };
    if (lines.some((l) => /^sudo modprobe/.test(l))) return { kind: 'not-run', why: 'loads host kernel modules (needs root; host setup, not a sandbox call)' };
    return undefined;
  }
  if (b.lang === 'python') return { kind: 'python' };
  if (b.lang === 'typescript') return { kind: 'typescript' };
  if (b.lang === 'json') return b.code.includes('"code"') ? { kind: 'request' } : b.code.includes('"output"') ? { kind: 'response' } : undefined;
  if (b.lang === '' && lines.some((l) => l.includes('──►'))) return { kind: 'not-run', why: 'a diagram' };
  if (b.lang === '' && lines.length > 0 && lines.every((l) => /^[A-Za-z-]+: \S/.test(l))) return { kind: 'headers' };
  return undefined;
}

/** After the example's own code: calls of what it defines but does not call, with both outcomes. */
const DRIVERS: Record<string, string> = {
  'AI Agent Code Execution Loop (Python)': `
# -- test driver: the except branch (a wrong key is an Unauthorized error) --
os.environ["ZEROBOOT_API_KEY"] = "zb_live_wrong_0123456789abcdef"
print(execute_agent_code("print(1)"))
`,
  'TypeScript: Agent Tool Integration': `
// -- test driver: the tool as an agent calls it, then the catch branch (wrong key) --
const ok = await tool.execute({ code: "console.log(6 * 7)" });
console.log(ok.success, String(ok.output).trim(), \`\${ok.output}\`.length);
process.env.ZEROBOOT_API_KEY = "zb_live_wrong_0123456789abcdef";
const bad = await tool.execute({ code: "console.log(1)" });
console.log(bad.success, bad.error);
`,
  'REST API with fetch (TypeScript)': `
// -- test driver --
console.log(JSON.stringify(await execCode("print('hello')")));
try { await execCode(42 as unknown as string); } catch (e) { console.log(String(e).slice(0, 40)); }
`,
};

/** What the document says each example prints (its comments), as non-empty output lines. */
const EXPECT: Record<string, (lines: string[]) => void> = {
  'Quick Start / Python': (l) => assert.deepEqual(l, ['2', '4.5']),
  'Quick Start / TypeScript / Node.js': (l) => assert.deepEqual(l, ['2', '3']),
  'AI Agent Code Execution Loop (Python)': (l) => {
    assert.equal(l.length, 2, l.join('\n'));
    assert.match(l[0]!, /^\{'success': True, 'output': .*\{"agent": "result", "value": 42\}/);
    assert.match(l[1]!, /^\{'success': False, 'error': '.*(API key|Unauthorized).*'\}$/i);
  },
  'Concurrent Sandbox Execution (Python)': (l) => assert.deepEqual(l, Array.from({ length: 10 }, (_, i) => `[${i}] ${i ** 2}`)),
  'TypeScript: Agent Tool Integration': (l) => {
    assert.equal(l[0], 'true 42 3');
    assert.match(l[1]!, /^false Unauthorized: /);
    assert.equal(l.length, 2);
  },
  'REST API with fetch (TypeScript)': (l) => {
    assert.equal(l[0], JSON.stringify('hello\n'), 'data.output is the program output');
    assert.match(l[1]!, /^Error: Zeroboot error 400: /);
  },
};

/** The runnable blocks of the README's "Coming from Zeroboot" section. */
function readmeZeroboot(): { lang: string; code: string; line: number }[] {
  const doc = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const a = doc.indexOf('<!-- forkbox:zeroboot:start -->');
  const b = doc.indexOf('<!-- forkbox:zeroboot:end -->');
  assert.ok(a >= 0 && b > a, 'README.md has a forkbox:zeroboot section');
  const text = doc.slice(a, b);
  return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```\s*$/gm)].map((m) => ({ lang: m[1]!, code: m[2]!, line: doc.slice(0, a + m.index).split('\n').length }));
}

if (!existsSync('/dev/kvm')) {
  process.stdout.write('skipped: seed document examples: /dev/kvm is absent\n');
} else {
  const hasSeed = existsSync(SEED);
  if (!hasSeed) process.stdout.write(`skipped: seed document examples: the seed document is not beside the checkout (shared/seeds/${SEED.split('/').at(-1)})\n`);
  const blocks = hasSeed ? seedBlocks(readFileSync(SEED, 'utf8')) : [];
  const report: string[] = [];
  const note = (b: Block, status: string): void => { report.push(`seed example ${b.section} (\`\`\`${b.lang || 'text'}, line ${b.line}): ${status}`); };

  describe('every example of the zeroboot-vm-sandbox skill (and the README\'s Zeroboot section), against forkbox', { timeout: 40 * 60_000 }, () => {
    let dir: string;
    let server: ChildProcess;
    let base = '';
    let serverLog = '';
    let env: NodeJS.ProcessEnv;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'forkbox-seeds-'));
      writeFileSync(join(dir, 'keys'), `seeds:${KEY}\n`);
      server = spawn(process.execPath, [join(repoRoot, 'dist/src/cli/main.js'), 'serve', '--port', '0'], {
        env: { ...process.env, FORKBOX_API_KEYS_FILE: join(dir, 'keys'), FORKBOX_RATE_LIMIT: '0', FORKBOX_POOL_SIZE: '4', FORKBOX_LOG_LEVEL: 'info' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      server.stderr!.on('data', (d: Buffer) => { serverLog += d.toString(); });
      base = await new Promise<string>((resolve, reject) => {
        let out = '';
        server.stdout!.on('data', (d: Buffer) => {
          out += d.toString();
          const m = /forkbox listening on (http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        server.once('exit', (code) => reject(new Error(`forkbox serve exited ${code} before listening:\n${serverLog.slice(-4000)}`)));
      });
      // Every template (python and javascript) ready before the first example.
      for (;;) {
        assert.equal(server.exitCode, null, `forkbox serve exited while its templates loaded:\n${serverLog.slice(-4000)}`);
        const h = (await (await fetch(`${base}/v1/health`)).json()) as { status: string };
        if (h.status === 'ok') break;
        await new Promise((r) => setTimeout(r, 250));
      }
      // The shims: Zeroboot's package names over our SDKs. Python: `zeroboot.Sandbox(api_key)`;
      // TypeScript: `new Sandbox(apiKey).run(code, { language })`, whose language defaults to Node
      // as every TypeScript example of both Zeroboot documents runs JavaScript without naming it.
      mkdirSync(join(dir, 'py/zeroboot'), { recursive: true });
      writeFileSync(join(dir, 'py/zeroboot/__init__.py'), [
        '"""Test-only shim: Zeroboot\'s Python SDK name over the forkbox SDK."""',
        'import os',
        'from forkbox import Sandbox as _Sandbox',
        '',
        'class Sandbox(_Sandbox):',
        '    def __init__(self, api_key=None, base_url=None):',
        '        super().__init__(api_key=api_key, base_url=base_url or os.environ.get("ZEROBOOT_BASE_URL"))',
        '',
      ].join('\n'));
      mkdirSync(join(dir, 'node_modules/@zeroboot/sdk'), { recursive: true });
      symlinkSync(join(repoRoot, 'sdk/js'), join(dir, 'node_modules/forkbox-sdk'), 'dir');
      writeFileSync(join(dir, 'node_modules/@zeroboot/sdk/package.json'), JSON.stringify({ name: '@zeroboot/sdk', version: '0.0.0-shim', type: 'module', main: 'index.js' }));
      writeFileSync(join(dir, 'node_modules/@zeroboot/sdk/index.js'), [
        '// Test-only shim: Zeroboot\'s TypeScript SDK name over the forkbox SDK.',
        "import { Sandbox as Forkbox } from 'forkbox-sdk';",
        'export class Sandbox {',
        '  #sb;',
        '  constructor(apiKey, options = {}) { this.#sb = new Forkbox(apiKey, options.baseUrl ?? process.env.ZEROBOOT_BASE_URL); }',
        "  run(code, options = {}) { return this.#sb.run(code, { ...options, language: options.language ?? 'node' }); }",
        '}',
        '',
      ].join('\n'));
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'seed-examples', private: true, type: 'module' }));
      env = {
        ...process.env, ZEROBOOT_API_KEY: KEY, ZEROBOOT_BASE_URL: base,
        PYTHONPATH: [join(dir, 'py'), join(repoRoot, 'sdk/python')].join(':'), PYTHONDONTWRITEBYTECODE: '1',
      };
    }, { timeout: 30 * 60_000 });

    after(async () => {
      process.stdout.write(`${report.join('\n')}\n`);
      if (server && server.exitCode === null) {
        const exited = new Promise((r) => server.once('exit', r));
        server.kill('SIGTERM');
        await exited;
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('README "Coming from Zeroboot": its blocks run and show what they say', async () => {
      const rb = readmeZeroboot();
      assert.deepEqual(rb.map((x) => x.lang), ['bash', 'js']);
      const fenv = { ...env, FORKBOX_API_KEY: KEY, FORKBOX_BASE_URL: base };
      const sh = await run('bash', ['-euo', 'pipefail', '-c', rb[0]!.code.replaceAll('http://127.0.0.1:8080', base)], { env: fenv, cwd: dir, timeout: 5 * 60_000 });
      const body = JSON.parse(sh.stdout) as Record<string, unknown>;
      assert.deepEqual([body.stdout, body.stderr, body.exit_code, body.output, typeof body.duration_ms], ['out\n', 'err\n', 3, 'out\n', 'number']);
      writeFileSync(join(dir, 'readme-zeroboot.mjs'), rb[1]!.code);
      const js = await run(process.execPath, [join(dir, 'readme-zeroboot.mjs')], { env: fenv, cwd: dir, timeout: 5 * 60_000 });
      assert.deepEqual(nonEmpty(js.stdout), ['2', '0 ""']);
      report.push(`README "Coming from Zeroboot" (bash line ${rb[0]!.line}, js line ${rb[1]!.line}): pass`);
    });

    test('the document has the examples the issue lists', { skip: !hasSeed }, () => {
      const kinds = blocks.map((b) => classify(b)?.kind);
      assert.ok(kinds.filter((k) => k === 'curl').length >= 2, 'the exec and health curl calls');
      assert.ok(kinds.filter((k) => k === 'python').length >= 3, 'Python: quick start, agent loop, concurrent');
      assert.ok(kinds.filter((k) => k === 'typescript').length >= 3, 'TypeScript: quick start, agent tool, fetch');
      assert.ok(kinds.includes('install'));
    });

    let requestBody: string | undefined;
    for (const b of blocks) {
      const k = classify(b);
      const name = `seed example: ${b.section} (\`\`\`${b.lang || 'text'}, line ${b.line})`;
      test(name, async () => {
        let status = 'fail';
        let printed: string[] = [];
        try {
          assert.ok(k, `a block this test does not recognise:\n${b.code}`);
          if (k.kind === 'install') {
            // Checked, not run: the packages are the shims' names, the variable is the one the examples read.
            for (const pkg of b.code.matchAll(/(?:pip install|npm install|pnpm add) (\S+)/g)) {
              const p = pkg[1]!;
              assert.ok(p === 'zeroboot' ? existsSync(join(dir, 'py/zeroboot/__init__.py')) : existsSync(join(dir, 'node_modules', p, 'index.js')), `no shim for ${p}`);
            }
            for (const v of b.code.matchAll(/export ([A-Z_]+)=/g)) assert.equal(env[v[1]!], KEY, `${v[1]} is given to the examples`);
            status = `install command, checked and not run (${k.what})`;
            return;
          }
          if (k.kind === 'not-run') { status = `not run: ${k.why}`; return; }
          if (k.kind === 'curl') {
            const code = b.code.replaceAll(REMOTE, base);
            const r = await run('bash', ['-euo', 'pipefail', '-c', code], { env, cwd: dir, timeout: 5 * 60_000 });
            const body = JSON.parse(r.stdout) as Record<string, unknown>;
            printed = [r.stdout.trim()];
            if (code.includes('/v1/exec')) {
              assert.equal(body.exit_code, 0, r.stdout);
              assert.match(String(body.output), /^\[\s*(\d\.\d*(e-\d+)?\s*){3}\]\n$/, 'numpy printed three random numbers');
              assert.equal(typeof body.duration_ms, 'number');
            } else {
              assert.equal(body.status, 'ok', r.stdout);
            }
          } else if (k.kind === 'request') {
            requestBody = b.code;
            const r = await fetch(`${base}/v1/exec`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: b.code });
            assert.equal(r.status, 200);
            assert.equal(((await r.json()) as { output: string }).output, 'hello\n');
          } else if (k.kind === 'headers') {
            // The documented headers, with the key put in, are all a request needs.
            const headers = Object.fromEntries(b.code.trim().split('\n').map((l) => l.replace('<ZEROBOOT_API_KEY>', KEY).split(/: (.*)/).slice(0, 2) as [string, string]));
            const r = await fetch(`${base}/v1/exec`, { method: 'POST', headers, body: requestBody ?? '{"code":"print(1)"}' });
            assert.equal(r.status, 200, await r.text());
          } else if (k.kind === 'response') {
            // The documented response: its fields, of the same types, and the same output for the documented request.
            const doc = JSON.parse(b.code) as Record<string, unknown>;
            assert.ok(requestBody, 'the request block comes before the response');
            const r = await fetch(`${base}/v1/exec`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${KEY}` }, body: requestBody });
            const got = (await r.json()) as Record<string, unknown>;
            for (const [f, v] of Object.entries(doc)) assert.equal(typeof got[f], typeof v, `field ${f}`);
            assert.equal(got.output, doc.output);
          } else {
            const title = b.section.split(' / ').length > 1 && b.section.startsWith('Common Patterns') ? b.section.split(' / ')[1]! : b.section;
            const driver = DRIVERS[title] ?? '';
            const code = b.code.replaceAll(REMOTE, base);
            let r: { stdout: string; stderr: string };
            if (k.kind === 'python') {
              writeFileSync(join(dir, 'example.py'), reindentPython(code) + driver);
              r = await run('python3', [join(dir, 'example.py')], { env, cwd: dir, timeout: 5 * 60_000 });
            } else {
              writeFileSync(join(dir, 'example.mjs'), toJs(code + driver));
              r = await run(process.execPath, [join(dir, 'example.mjs')], { env, cwd: dir, timeout: 5 * 60_000 });
            }
            const expect = EXPECT[title];
            assert.ok(expect, `no expectation for "${title}"`);
            printed = nonEmpty(r.stdout);
            expect(printed);
          }
          status = 'pass';
        } catch (e) {
          const x = e as { stdout?: string; stderr?: string; message: string };
          assert.fail(`${name} failed: ${x.message}${x.stdout !== undefined ? `\nstdout: ${x.stdout}\nstderr: ${x.stderr}` : ''}`);
        } finally {
          note(b, status);
          for (const l of printed) report.push(`    printed: ${l.length > 160 ? `${l.slice(0, 160)}…` : l}`);
        }
      });
    }

    test('Zeroboot-shaped calls through the shims: a language per call, results read as output', { skip: !hasSeed }, async () => {
      writeFileSync(join(dir, 'shaped.mjs'), [
        'import { Sandbox } from "@zeroboot/sdk";',
        'const sb = new Sandbox(process.env.ZEROBOOT_API_KEY);',
        'console.log(JSON.stringify(String(await sb.run("console.log(1+1)", { language: "node" }))));',
        'console.log(JSON.stringify(`${await new Sandbox(process.env.ZEROBOOT_API_KEY).run("console.log(1+1)")}`));',
        'console.log(JSON.stringify(String(await sb.run("const n: number = 2; console.log(n)", { language: "typescript" }))));',
        'console.log(JSON.stringify(String(await sb.run("print(1 + 1)", { language: "python" }))));',
        'const f = await sb.run("console.error(\'oops\'); process.exit(3)");',
        'console.log(JSON.stringify([String(f), f.stderr, f.exitCode]));',
      ].join('\n'));
      const js = await run(process.execPath, [join(dir, 'shaped.mjs')], { env, cwd: dir, timeout: 5 * 60_000 });
      assert.deepEqual(nonEmpty(js.stdout).map((l) => JSON.parse(l)), ['2\n', '2\n', '2\n', '2\n', ['', 'oops\n', 3]]);
      const py = await run('python3', ['-c', [
        'import os, json',
        'from zeroboot import Sandbox',
        'r = Sandbox(os.environ["ZEROBOOT_API_KEY"]).run("print(1 + 1)")',
        'print(json.dumps([str(r), f"{r}", r.output, r.exit_code]))',
      ].join('\n')], { env, cwd: dir, timeout: 5 * 60_000 });
      assert.deepEqual(JSON.parse(py.stdout), ['2\n', '2\n', '2\n', 0]);
      report.push('seed example Zeroboot-shaped calls (run(code, { language }) through the shims): pass');
    });
  });
}
