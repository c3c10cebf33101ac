// rich-results.test.ts — rich outputs without a VM: the host's bounded decoding
// of the runner's bundles (count, types, unknown MIME types, a hostile
// "__proto__"), the API's JSON shape, guest/runner.py's display machinery on the
// host's python3 (formats honoured, limits, worst-case answer size against the
// mailbox's RESULT area), the SDKs' Result types, --save-results and MCP content.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { decodeResponse } from '../../src/engine/decode.js';
import { decodeResults, resultFromJson, resultToJson, RESULTS_MAX, type DisplayResult } from '../../src/languages/rich.js';
import { decodeJsonAnswer } from '../../src/languages/types.js';
import { guestFilesDir, repoRoot } from '../../src/lib/paths.js';
import { runContent } from '../../src/mcp/tools.js';
import { saveResults } from '../../src/cli/results.js';
import * as abi from '../../src/vmm/abi.js';
import type { Response } from '../../src/vmm/vmm.js';
import { fromWire, Result } from '../../sdk/js/src/index.js';

const PNG_1X1 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==';

test('decodeResults: formats by E2B name, unknown MIME types in extra, main flag', () => {
  const { results, truncated } = decodeResults([
    { data: { 'text/plain': 'Fig', 'image/png': PNG_1X1, 'text/html': '<b>x</b>', 'image/svg+xml': '<svg/>', 'application/json': { a: [1] },
      'text/markdown': '# m', 'text/latex': '$x$', 'application/javascript': 'f()', 'image/jpeg': 'AA==', 'application/pdf': 'JVBE',
      'application/vnd.custom': 'c' } },
    { data: { 'text/plain': '42' }, main: true },
  ], undefined);
  assert.equal(truncated, false);
  assert.deepEqual(results, [
    { isMainResult: false, text: 'Fig', png: PNG_1X1, html: '<b>x</b>', svg: '<svg/>', json: { a: [1] }, markdown: '# m', latex: '$x$',
      javascript: 'f()', jpeg: 'AA==', pdf: 'JVBE', extra: { 'application/vnd.custom': 'c' } },
    { isMainResult: true, text: '42' },
  ]);
  assert.deepEqual(resultToJson(results[1]!), { text: '42', is_main_result: true });
  assert.deepEqual(resultFromJson(resultToJson(results[0]!)), results[0], 'JSON round trip');
});

test('decodeResults: bounded and never trusting the guest', () => {
  const many = decodeResults(Array.from({ length: 40 }, (_, i) => ({ data: { 'text/plain': String(i) } })), false);
  assert.equal(many.results.length, RESULTS_MAX);
  assert.equal(many.truncated, true);
  assert.deepEqual(decodeResults('nope', undefined), { results: [], truncated: true });
  assert.deepEqual(decodeResults(undefined, true), { results: [], truncated: true }, 'the runner\'s own flag passes through');
  const odd = decodeResults([null, 7, { data: [1] }, { data: { 'text/plain': 5, 'text/html': '<i/>', 'application/json': null } }], undefined);
  assert.deepEqual(odd.results, [{ isMainResult: false, html: '<i/>' }]);
  assert.equal(odd.truncated, true, 'skipped items and formats are flagged');
  const extra = decodeResults([{ data: Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`x/${i}`, 'v'])) }], undefined);
  assert.equal(Object.keys(extra.results[0]!.extra!).length, 16);
  assert.equal(extra.truncated, true);
  // JSON.parse makes "__proto__" an own key; it must stay one (no prototype pollution, no lost data).
  const proto = decodeResults(JSON.parse('[{"data": {"__proto__": "p", "text/plain": "t"}, "main": "yes"}]'), undefined);
  const r = proto.results[0]!;
  assert.equal(Object.getPrototypeOf(r.extra), Object.prototype);
  assert.equal(Object.getOwnPropertyDescriptor(r.extra, '__proto__')?.value, 'p');
  assert.equal(r.isMainResult, false, 'main must be true, not truthy');
  assert.equal(({} as Record<string, unknown>).p, undefined);
});

test('decodeJsonAnswer and decodeResponse carry results; none for a plain answer', () => {
  assert.deepEqual(decodeJsonAnswer(Buffer.from('{"exit_code": 0}')), { exitCode: 0 });
  assert.deepEqual(decodeJsonAnswer(Buffer.from('null')), {});
  assert.deepEqual(decodeJsonAnswer(Buffer.from('{"exit_code": 1, "results_truncated": true}')), { exitCode: 1, resultsTruncated: true });
  const body = Buffer.from(JSON.stringify({ exit_code: 0, result: '1', results: [{ data: { 'text/plain': '1' }, main: true }] }));
  assert.deepEqual(decodeJsonAnswer(body), { exitCode: 0, result: '1', results: [{ isMainResult: true, text: '1' }] });
  const resp = (o: Partial<Response>): Response => ({
    outcome: 'ok', outcomeCode: 0, status: abi.FB_ST_DONE, exitCode: 0, outFlags: 0, result: Buffer.alloc(0), stdout: Buffer.alloc(0),
    stderr: Buffer.alloc(0), faultVector: 0, faultError: 0, faultRip: 0, faultCr2: 0, ioPort: 0, detail: '', exits: 1, runNs: 0,
    syscalls: 0, arenaUsed: 0, arenaPeak: 0, ...o,
  } as Response);
  const t = { forkMs: 0, execMs: 0, totalMs: 0 };
  const o = { timeoutSeconds: 1, cancelled: false };
  const r = decodeResponse('e', resp({ result: Buffer.from('{"exit_code": 2, "results": [{"data": {"image/png": "AA=="}}], "results_truncated": true}') }), t, o);
  assert.equal(r.exitCode, 2);
  assert.deepEqual(r.results, [{ isMainResult: false, png: 'AA==' }]);
  assert.equal(r.resultsTruncated, true);
  const plain = decodeResponse('e', resp({ result: Buffer.from('{"exit_code": 0}') }), t, o);
  assert.equal('results' in plain, false);
  assert.equal('resultsTruncated' in plain, false);
  const exited = decodeResponse('e', resp({ status: abi.FB_ST_EXIT, exitCode: 4, result: Buffer.from('{"results": [{"data": {"text/plain": "x"}}]}') }), t, o);
  assert.equal(exited.results, undefined, 'an exit_group answer carries no runner JSON');
  assert.equal(abi.FB_MB_RESULT_SIZE, 0xff000, 'RESULT runs up to REQ');
});

const DRIVER = String.raw`
import importlib.util, json, os, sys
args = list(sys.argv)  # the runner resets sys.argv at each one-shot exec
dumps = json.dumps     # a program below breaks json.dumps on purpose
spec = importlib.util.spec_from_file_location('runner', args[1])
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)
class R(runner.Runner):
    def open_control(self):
        return -1
r = R([])
out = []
saved = os.dup(2)
for req in json.load(open(args[2])):
    err = os.open(args[3], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(err, 2); os.close(err)
    rc = r.handle(dumps(req).encode())
    os.dup2(saved, 2)
    rfd, wfd = os.pipe()
    r.fd = wfd
    import threading
    chunks = []
    t = threading.Thread(target=lambda: chunks.extend(iter(lambda: os.read(rfd, 1 << 20), b'')))
    t.start()
    r.answer(rc)
    os.close(wfd); t.join(); os.close(rfd)
    raw = b''.join(chunks)
    out.append({'size': len(raw), 'answer': json.loads(raw), 'stderr': open(args[3]).read()})
json.dump(out, open(args[4], 'w'))
`;

type Ran = { size: number; answer: { exit_code: number; result?: string; results?: Array<{ data: Record<string, unknown>; main?: boolean }>; results_truncated?: boolean }; stderr: string };

function runner(reqs: Array<{ code: string; session?: boolean }>): Ran[] {
  const work = mkdtempSync(join(tmpdir(), 'fb-rich-'));
  try {
    writeFileSync(join(work, 'driver.py'), DRIVER);
    writeFileSync(join(work, 'reqs.json'), JSON.stringify(reqs.map((r) => ({ code: r.code, env: null, stdin: null, ...(r.session ? { session: true } : {}) }))));
    execFileSync('python3', ['-I', '-B', join(work, 'driver.py'), join(guestFilesDir, 'runner.py'), join(work, 'reqs.json'), join(work, 'err'), join(work, 'out.json')],
      { stdio: ['ignore', 'ignore', 'inherit'], cwd: work });
    return JSON.parse(readFileSync(join(work, 'out.json'), 'utf8')) as Ran[];
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const hasPython = spawnSync('python3', ['-c', 'import sys; assert sys.version_info >= (3, 8)']).status === 0;

test('runner.py display(): formats honoured, order kept, failures warned, plain answers unchanged', (t) => {
  if (!hasPython) { t.skip('skipped: no python3 >= 3.8 on this host'); return; }
  const [plain, shown, odd, sess, assign, patched] = runner([
    { code: 'print(1+1)' },
    { code: `class Both:
    def _repr_mimebundle_(self, include=None, exclude=None):
        return ({'text/html': '<b>mb</b>', 'application/x-thing': 'xt'}, {'meta': 1})
    def _repr_html_(self): return 'not used: the bundle has html'
    def _repr_png_(self): return b'\\x89PNG'
    def _repr_json_(self): return ({'k': 1}, {})
    def __repr__(self): return 'Both()'
display(Both(), 3)
display({'image/svg+xml': '<svg/>', 'image/png': b'\\x00\\x01', 'text/plain': 7}, raw=True)` },
    { code: `class Any:
    def __getattr__(self, name): return lambda *a, **k: '<anything>'
    def __repr__(self): return 'Any()'
class K:
    def _repr_html_(self): return '<k/>'
class Bad:
    def _repr_html_(self): raise RuntimeError('broken')
    def _repr_json_(self): return {1, 2}
    def __repr__(self): raise ValueError('no repr')
display(Any(), K, Bad())` },
    { code: 'class T:\n    def _repr_html_(self): return "<table/>"\n    def __repr__(self): return "T"\ndisplay(1)\nT()', session: true },
    { code: 'y = 2', session: true },
    { code: 'import json\njson.dumps = None\ndisplay(5)\n6', session: true },
  ]);
  assert.equal(plain!.size, '{"exit_code": 0}'.length, 'an exec without rich outputs answers exactly as before');
  assert.equal(plain!.answer.results, undefined);
  assert.deepEqual(shown!.answer.results, [
    { data: { 'text/html': '<b>mb</b>', 'application/x-thing': 'xt', 'image/png': 'iVBORw==', 'application/json': { k: 1 }, 'text/plain': 'Both()' } },
    { data: { 'text/plain': '3' } },
    { data: { 'image/svg+xml': '<svg/>', 'image/png': 'AAE=' } },
  ]);
  const [any, cls, bad] = odd!.answer.results!;
  assert.deepEqual(any, { data: { 'text/plain': 'Any()' } }, 'an object answering every attribute is asked for nothing (IPython\'s canary)');
  assert.deepEqual(Object.keys(cls!.data), ['text/plain'], 'a class is not asked for its instances\' formats');
  assert.deepEqual(bad, { data: { 'text/plain': '<Bad object>' } });
  assert.match(odd!.stderr, /_repr_html_ failed: RuntimeError: broken/);
  assert.match(odd!.stderr, /application\/json failed: TypeError/);
  assert.match(odd!.stderr, /repr failed: ValueError: no repr/);
  assert.equal(sess!.answer.result, 'T');
  assert.deepEqual(sess!.answer.results, [{ data: { 'text/plain': '1' } }, { data: { 'text/html': '<table/>', 'text/plain': 'T' }, main: true }]);
  assert.equal(assign!.size, '{"exit_code": 0}'.length);
  assert.deepEqual(patched!.answer, { exit_code: 0, result: '6', results: [{ data: { 'text/plain': '5' } }, { data: { 'text/plain': '6' }, main: true }] },
    'a program that breaks json.dumps does not break the answer');
});

test('runner.py limits: 16 results, 896 KiB, and the worst case fits the RESULT area', (t) => {
  if (!hasPython) { t.skip('skipped: no python3 >= 3.8 on this host'); return; }
  const [count, bytes, worst, big] = runner([
    { code: 'for i in range(30): display(i)' },
    { code: 'for i in range(5): display({"text/html": str(i) * 350000}, raw=True)' },
    // Non-ASCII text escapes to 6 bytes a character: many bundles at the limit plus a 16 Ki repr of them.
    { code: 'for i in range(15): display({"text/html": "\\u00e9" * 10000, "text/plain": "\\u00e9" * 20000}, raw=True)\n"\\u00e9" * 100000', session: true },
    { code: 'display("x" * 100000)' },
  ]);
  assert.equal(count!.answer.results!.length, 16);
  assert.equal(count!.answer.results_truncated, true);
  assert.equal(bytes!.answer.results!.length, 2, 'three 350 KB bundles do not fit 896 KiB');
  assert.equal(bytes!.answer.results_truncated, true);
  assert.ok(worst!.size <= abi.FB_MB_RESULT_SIZE, `worst answer ${worst!.size} bytes fits ${abi.FB_MB_RESULT_SIZE}`);
  assert.equal(worst!.answer.results_truncated, true);
  assert.equal(worst!.answer.result!.length, 16 * 1024);
  assert.equal((big!.answer.results![0]!.data['text/plain'] as string).length, 16 * 1024, 'a long text/plain is cut');
  assert.equal(big!.answer.results_truncated, true, '... and the cut flagged');
});

test('SDKs: the TypeScript Result and the Python Result read the API\'s results', () => {
  const w = { id: 'e', stdout: '', stderr: '', exit_code: 0, fork_time_ms: 0, exec_time_ms: 0, total_time_ms: 0,
    results: [{ text: 't', png: PNG_1X1, is_main_result: true, extra: { 'x/y': 1 }, bogus: 2 }, 'junk', { json: { a: 1 }, html: 5 }], results_truncated: true };
  const r = fromWire(w as never);
  assert.equal(r.results.length, 2);
  assert.ok(r.results[0] instanceof Result);
  assert.deepEqual({ ...r.results[0] }, { text: 't', png: PNG_1X1, isMainResult: true, extra: { 'x/y': 1 } });
  assert.deepEqual(r.results[0]!.formats(), ['text', 'png', 'x/y']);
  assert.deepEqual({ ...r.results[1] }, { json: { a: 1 }, isMainResult: false });
  assert.equal(r.resultsTruncated, true);
  assert.deepEqual(fromWire({ ...w, results: undefined, results_truncated: undefined } as never).results, []);
  if (!hasPython) return;
  const py = spawnSync('python3', ['-c', `import json, sys
sys.path.insert(0, sys.argv[1])
from forkbox import ExecResult, Result
r = ExecResult.from_wire(json.loads(sys.argv[2]))
print(json.dumps([[x.text, x.png is not None, x.is_main_result, x.extra, x.json, x.formats()] for x in r.results] + [r.results_truncated]))`,
  join(repoRoot, 'sdk/python'), JSON.stringify(w)], { encoding: 'utf8' });
  assert.equal(py.status, 0, py.stderr);
  assert.deepEqual(JSON.parse(py.stdout), [['t', true, true, { 'x/y': 1 }, null, ['text', 'png', 'x/y']], [null, false, false, null, { a: 1 }, ['json']], true]);
});

test('saveResults writes result-<n>.<ext>, base64 decoded', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fb-save-'));
  try {
    const results: DisplayResult[] = [{ text: 'fig', png: PNG_1X1, isMainResult: false }, { json: { a: 1 }, svg: '<svg/>', isMainResult: true }];
    const paths = saveResults(join(dir, 'out'), results);
    assert.deepEqual(paths.map((p) => p.slice(dir.length + 5)), ['result-1.png', 'result-1.txt', 'result-2.svg', 'result-2.json']);
    assert.deepEqual(readdirSync(join(dir, 'out')).sort(), ['result-1.png', 'result-1.txt', 'result-2.json', 'result-2.svg']);
    assert.ok(readFileSync(join(dir, 'out', 'result-1.png')).equals(Buffer.from(PNG_1X1, 'base64')));
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'out', 'result-2.json'), 'utf8')), { a: 1 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('MCP: PNG and JPEG results as image content, others as text, truncation said', () => {
  const base = { stdout: 'hi\n', stderr: '', exitCode: 0, outcome: 'exited' as const, stdoutTruncated: false, stderrTruncated: false };
  const r = runContent({ ...base, result: '42', resultsTruncated: true, results: [
    { text: '<Figure>', png: PNG_1X1, isMainResult: false }, { jpeg: 'AA==', isMainResult: false },
    { html: '<b/>', isMainResult: false }, { text: 'shown', isMainResult: false }, { text: '42', isMainResult: true },
  ] }, 30, true);
  assert.deepEqual(r.content.map((c) => c.type === 'image' ? `${c.mimeType}` : c.text), [
    'stdout:\nhi\n\nresult: 42\n\nexit_code: 0\n', 'image/png', 'image/jpeg', 'display 3: [html]', 'display 4: shown',
    '[rich outputs truncated: at most 16 per exec, about 900 KiB in all]',
  ]);
  assert.equal((r.content[1] as { data: string }).data, PNG_1X1);
  assert.equal((r.structuredContent as { results_truncated: boolean }).results_truncated, true);
});
