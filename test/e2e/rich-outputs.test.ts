// rich-outputs.test.ts — rich outputs (`results`) end to end on the real engine:
// display() of objects with _repr_*_ methods and raw MIME bundles (a PNG made
// with zlib + struct, HTML, SVG, JSON) in one-shot execs and sessions over HTTP,
// a session's last expression as the main result, the count and byte limits
// (truncation flagged, stdout intact), the TypeScript and Python SDKs, the CLI's
// --save-results, and MCP image content. With a python-data template (pandas,
// matplotlib) loaded, a line plot comes back as a PNG of figsize × dpi and a
// DataFrame as text + HTML; without it, one "skipped:" line says so.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, test } from 'node:test';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createEngine, type ForkboxEngine } from '../../src/engine/index.js';
import { repoRoot } from '../../src/lib/paths.js';
import { buildServer, type ForkboxServer } from '../../src/server/app.js';
import { parseKeyFile } from '../../src/server/auth.js';
import { loadServerConfig } from '../../src/server/config.js';
import { Result, Sandbox } from '../../sdk/js/src/index.js';

const run = promisify(execFile);
const KEY = 'sk_rich_e2e_0123456789abcdef01';
const H = { authorization: `Bearer ${KEY}` };
const CLI = join(repoRoot, 'dist/src/cli/main.js');

/** Python that defines png(w, h, noise=False): a valid RGB PNG (random pixels do not compress). */
const PNG_PY = `import os, struct, zlib
def png(w, h, noise=False):
    row = lambda: b'\\x00' + (os.urandom(3 * w) if noise else bytes([200, 30, 30]) * w)
    raw = b''.join(row() for _ in range(h))
    chunk = lambda t, d: struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d))
    return (b'\\x89PNG\\r\\n\\x1a\\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(raw, 1)) + chunk(b'IEND', b''))
class Pic:
    def __init__(self, w, h, noise=False): self.w, self.h, self.noise = w, h, noise
    def _repr_png_(self): return png(self.w, self.h, self.noise)
    def __repr__(self): return 'Pic(%d, %d)' % (self.w, self.h)
`;

/** Width and height from a PNG's IHDR, after checking the signature and the chunk's CRC. */
function pngSize(b64: string): { width: number; height: number } {
  const b = Buffer.from(b64, 'base64');
  assert.ok(b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])), 'PNG signature');
  assert.equal(b.readUInt32BE(8), 13, 'IHDR length');
  assert.equal(b.subarray(12, 16).toString('latin1'), 'IHDR');
  return { width: b.readUInt32BE(16), height: b.readUInt32BE(20) };
}

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

if (!existsSync('/dev/kvm')) {
  process.stdout.write('skipped: rich output e2e tests: /dev/kvm is absent\n');
} else {
  describe('rich outputs on the real engine', { timeout: 40 * 60_000 }, () => {
    let engine: ForkboxEngine;
    let server: ForkboxServer;
    let url = '';
    let dir = '';
    const call = (method: 'GET' | 'POST' | 'DELETE', path: string, payload?: unknown) =>
      server.app.inject({ method, url: path, ...(payload !== undefined ? { payload: payload as object } : {}), headers: H });
    const exec = async (code: string, extra: Json = {}): Promise<Json> => {
      const r = await call('POST', '/v1/exec', { code, ...extra });
      assert.equal(r.statusCode, 200, r.body);
      return r.json();
    };

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), 'forkbox-rich-'));
      // python-data is another branch's template: loaded when this build knows it, skipped otherwise.
      engine = await createEngine({ poolSize: 2, warmForks: 1, templates: ['python', 'python-data'],
        onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
      server = buildServer({ engine, config: { ...loadServerConfig([], {}), rateLimit: 0 }, keys: parseKeyFile(`e2e:${KEY}`) });
      await server.app.listen({ host: '127.0.0.1', port: 0 });
      const addr = server.app.server.address();
      url = `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
    }, { timeout: 30 * 60_000 });

    after(async () => {
      await server?.app.close();
      await engine?.close(1000);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    test('one-shot: display() of PNG, HTML, SVG and JSON bundles, in order; none for print(1+1)', async () => {
      const plain = await exec('print(1+1)');
      assert.equal(plain.stdout, '2\n');
      assert.deepEqual(plain.results, []);
      assert.equal(plain.results_truncated, false);

      const r = await exec(PNG_PY + `
class Card:
    def _repr_html_(self): return '<b>card</b>'
    def _repr_json_(self): return {'kind': 'card', 'n': [1, 2]}
display(Pic(7, 5), Card())
display({'image/svg+xml': '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>', 'text/plain': 'svg'}, raw=True)
print('after')`);
      assert.equal(r.exit_code, 0, r.stderr);
      assert.equal(r.stdout, 'after\n', 'stdout is the program\'s alone');
      assert.equal(r.results.length, 3);
      const [pic, card, svg] = r.results as Json[];
      assert.deepEqual(pngSize(pic!.png), { width: 7, height: 5 });
      assert.equal(pic!.text, 'Pic(7, 5)');
      assert.equal(pic!.is_main_result, false);
      assert.equal(card!.html, '<b>card</b>');
      assert.deepEqual(card!.json, { kind: 'card', n: [1, 2] });
      assert.match(card!.text, /Card object/);
      assert.equal(svg!.svg, '<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
      assert.equal(svg!.text, 'svg');
      assert.equal(r.results_truncated, false);

      // A failing _repr_ is skipped with a warning on stderr; the other formats still come back.
      const bad = await exec('class B:\n    def _repr_html_(self): raise ValueError("nope")\n    def __repr__(self): return "B!"\ndisplay(B())');
      assert.deepEqual(bad.results, [{ text: 'B!', is_main_result: false }]);
      assert.match(bad.stderr, /forkbox: display: _repr_html_ failed: ValueError: nope/);
    });

    test('limits: at most 16 results and ~896 KiB; the drop is flagged, output intact', async () => {
      const many = await exec('for i in range(20): display(i)\nprint("ok")');
      assert.equal(many.results.length, 16);
      assert.deepEqual(many.results.map((x: Json) => x.text), Array.from({ length: 16 }, (_, i) => String(i)));
      assert.equal(many.results_truncated, true);
      assert.equal(many.stdout, 'ok\n');

      // 3 incompressible 400x250 PNGs are ~300 KiB each (~400 KiB of base64): two fit, the third does not.
      const big = await exec(PNG_PY + 'for _ in range(3): display(Pic(400, 250, True))\nprint("big")');
      assert.equal(big.exit_code, 0, big.stderr);
      assert.equal(big.results.length, 2);
      for (const x of big.results as Json[]) assert.deepEqual(pngSize(x.png), { width: 400, height: 250 });
      assert.equal(big.results_truncated, true);
      assert.equal(big.stdout, 'big\n');

      // One PNG larger than the whole result area: dropped, flagged, the exec is fine.
      const huge = await exec(PNG_PY + 'display(Pic(1000, 400, True))\nprint("huge")');
      assert.deepEqual(huge.results, []);
      assert.equal(huge.results_truncated, true);
      assert.equal(huge.stdout, 'huge\n');
    });

    test('session: display() then the last expression as the main result (text + html)', async () => {
      const created = await call('POST', '/v1/sessions', {});
      assert.equal(created.statusCode, 201, created.body);
      const id = created.json().id as string;
      try {
        const ex = async (code: string): Promise<Json> => {
          const r = await call('POST', `/v1/sessions/${id}/exec`, { code });
          assert.equal(r.statusCode, 200, r.body);
          return r.json();
        };
        await ex(PNG_PY + 'class Table:\n    def _repr_html_(self): return "<table><tr><td>1</td></tr></table>"\n    def __repr__(self): return "Table(1)"');
        const r = await ex('display(Pic(2, 2))\nTable()');
        assert.equal(r.result, 'Table(1)', 'result keeps the repr');
        assert.equal(r.results.length, 2);
        assert.equal(r.results[0].is_main_result, false);
        assert.deepEqual(pngSize(r.results[0].png), { width: 2, height: 2 });
        assert.deepEqual(r.results[1], { text: 'Table(1)', html: '<table><tr><td>1</td></tr></table>', is_main_result: true });
        const n = await ex('41 + 1');
        assert.deepEqual(n.results, [{ text: '42', is_main_result: true }]);
        const none = await ex('x = 1');
        assert.deepEqual(none.results, [], 'an assignment displays nothing');
      } finally {
        await call('DELETE', `/v1/sessions/${id}`);
      }
    });

    test('SDKs: TypeScript Result objects and Python Result dataclasses', async () => {
      const sb = new Sandbox(KEY, url);
      const r = await sb.run(PNG_PY + 'display(Pic(3, 4))');
      assert.equal(r.results.length, 1);
      const res = r.results[0]!;
      assert.ok(res instanceof Result);
      assert.deepEqual(res.formats(), ['text', 'png']);
      assert.equal(res.isMainResult, false);
      assert.deepEqual(pngSize(res.png!), { width: 3, height: 4 });
      assert.equal(r.resultsTruncated, false);
      const s = await Sandbox.create({ apiKey: KEY, baseUrl: url });
      try {
        const m = await s.run('class H:\n    def _repr_html_(self): return "<i>h</i>"\nH()');
        assert.equal(m.results[0]?.isMainResult, true);
        assert.equal(m.results[0]?.html, '<i>h</i>');
      } finally {
        await s.kill();
      }

      const py = `import base64, struct, sys
sys.path.insert(0, sys.argv[1])
from forkbox import Sandbox, Result
r = Sandbox(sys.argv[2], sys.argv[3]).run(sys.argv[4] + "display(Pic(5, 6))")
res = r.results[0]
assert isinstance(res, Result) and res.formats() == ["text", "png"] and not res.is_main_result, res
b = base64.b64decode(res.png)
print(struct.unpack(">II", b[16:24]), r.results_truncated)
s = Sandbox.create(api_key=sys.argv[2], base_url=sys.argv[3])
m = s.run("[1, 2]")
print(m.result, [(x.text, x.is_main_result) for x in m.results])
s.kill()
`;
      const out = await run('python3', ['-c', py, join(repoRoot, 'sdk/python'), KEY, url, PNG_PY]);
      assert.equal(out.stdout, "(5, 6) False\n[1, 2] [('[1, 2]', True)]\n");
    });

    test('CLI: exec --save-results and session exec --save-results write result-<n>.<ext>', async () => {
      const save = join(dir, 'cli');
      const code = PNG_PY + 'display(Pic(9, 3))\ndisplay({"text/html": "<p>x</p>", "application/json": [1]}, raw=True)\nprint("cli")';
      const r = await run(process.execPath, [CLI, 'exec', '--save-results', save, code], { env: { ...process.env, FORKBOX_LOG_LEVEL: 'warn' } });
      assert.equal(r.stdout, 'cli\n');
      assert.deepEqual(readdirSync(save).sort(), ['result-1.png', 'result-1.txt', 'result-2.html', 'result-2.json']);
      assert.deepEqual(pngSize(readFileSync(join(save, 'result-1.png')).toString('base64')), { width: 9, height: 3 });
      assert.equal(readFileSync(join(save, 'result-2.html'), 'utf8'), '<p>x</p>');
      assert.deepEqual(JSON.parse(readFileSync(join(save, 'result-2.json'), 'utf8')), [1]);
      for (const f of ['result-1.png', 'result-2.json']) assert.ok(r.stderr.includes(`forkbox: saved ${join(save, f)}\n`), r.stderr);

      const env = { ...process.env, FORKBOX_BASE_URL: url, FORKBOX_API_KEY: KEY };
      const id = (await run(process.execPath, [CLI, 'session', 'create'], { env })).stdout.trim();
      try {
        const save2 = join(dir, 'session');
        const s = await run(process.execPath, [CLI, 'session', 'exec', id, '--save-results', save2,
          'class S:\n    def _repr_svg_(self): return "<svg/>"\n    def __repr__(self): return "S()"\nS()'], { env });
        assert.equal(s.stdout, 'S()\n', 'the last expression prints like a REPL');
        assert.deepEqual(readdirSync(save2).sort(), ['result-1.svg', 'result-1.txt']);
        assert.equal(readFileSync(join(save2, 'result-1.svg'), 'utf8'), '<svg/>');
        const plain = await run(process.execPath, [CLI, 'session', 'exec', id, 'display(1)'], { env });
        assert.match(plain.stderr, /forkbox: 1 rich output \(text\); --save-results DIR writes them/);
      } finally {
        await run(process.execPath, [CLI, 'session', 'rm', id], { env });
      }
    });

    test('MCP: run_code returns a displayed PNG as image content', async () => {
      const client = new Client({ name: 'forkbox-rich-e2e', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL('/mcp', url), { requestInit: { headers: H } }));
      try {
        const r = await client.callTool({ name: 'run_code', arguments: { code: PNG_PY + 'display(Pic(6, 2))\nprint("mcp")' } }) as
          { content: Array<{ type: string; text?: string; data?: string; mimeType?: string }>; structuredContent?: Json };
        const img = r.content.find((c) => c.type === 'image');
        assert.ok(img, JSON.stringify(r.content).slice(0, 500));
        assert.equal(img.mimeType, 'image/png');
        assert.deepEqual(pngSize(img.data!), { width: 6, height: 2 });
        assert.match(r.content[0]!.text!, /^stdout:\nmcp\n/);
        assert.deepEqual(r.structuredContent?.results, [{ formats: ['png', 'text'], text: 'Pic(6, 2)', is_main_result: false }]);
      } finally {
        await client.close();
      }
    });

    describe('python-data: matplotlib and pandas', () => {
      const loaded = (): boolean => engine.health().templates['python-data'] !== undefined;

      test('a line plot, a figure as last expression, a DataFrame', async (t) => {
        if (!loaded()) {
          process.stdout.write('skipped: no python-data template\n');
          t.skip('no python-data template');
          return;
        }
        const plot = await exec('import matplotlib.pyplot as plt\nplt.figure(figsize=(4, 3), dpi=50)\nplt.plot([1, 3, 2])\nplt.show()\nprint(len(plt.get_fignums()))',
          { template: 'python-data' });
        assert.equal(plot.exit_code, 0, plot.stderr);
        assert.equal(plot.stdout, '0\n', 'show() closes what it showed');
        assert.equal(plot.results.length, 1);
        assert.deepEqual(pngSize(plot.results[0].png), { width: 200, height: 150 });
        assert.match(plot.results[0].text, /Figure size 200x150/);

        const open = await exec('import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(2, 2), dpi=40)\nax.bar([1, 2], [3, 4])', { template: 'python-data' });
        assert.deepEqual(open.results.map((x: Json) => pngSize(x.png)), [{ width: 80, height: 80 }], 'a figure left open is shown at the end');

        const created = await call('POST', '/v1/sessions', { template: 'python-data' });
        assert.equal(created.statusCode, 201, created.body);
        const id = created.json().id as string;
        try {
          const ex = async (code: string): Promise<Json> => {
            const r = await call('POST', `/v1/sessions/${id}/exec`, { code });
            assert.equal(r.statusCode, 200, r.body);
            return r.json();
          };
          const fig = await ex('import matplotlib.pyplot as plt\nfig, ax = plt.subplots(figsize=(3, 2), dpi=60)\nax.plot([0, 1], [1, 0])\nfig');
          assert.equal(fig.results.length, 1, 'the figure once: as the main result, not again as an open figure');
          assert.equal(fig.results[0].is_main_result, true);
          assert.deepEqual(pngSize(fig.results[0].png), { width: 180, height: 120 });
          const df = await ex("import pandas as pd\npd.DataFrame({'a': [1, 2, 3]})");
          assert.equal(df.results.length, 1);
          assert.equal(df.results[0].is_main_result, true);
          assert.match(df.results[0].text, /^ {3}a\n0  1\n1  2\n2  3$/);
          assert.match(df.results[0].html, /<table[\s\S]*<td>3<\/td>[\s\S]*<\/table>/);
        } finally {
          await call('DELETE', `/v1/sessions/${id}`);
        }
      });
    });
  });
}
