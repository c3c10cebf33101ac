// conformance-report.test.ts — the harness's pure parts: runner lines parsed
// into outcomes (noise ignored, a missing summary reported as how the run
// ended), host/fork comparison and its gap, known-failures drift (unexplained
// and stale), totals and the printed table; the known-failures file's shape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../src/lib/paths.js';
import { checkKnown, compare, complete, formatTable, groupTotals, parseRun, totals, type ModuleRun } from '../../src/conformance/report.js';
import { MARK, runnerCode } from '../../src/conformance/runner-script.js';
import { knownFailuresPath } from '../../src/cli/conformance.js';

const T = (o: string, id: string, why = ''): string => `${MARK}\tT\t${o}\t${id}\t${why}`;
const END = (j: object): string => `${MARK}\tEND\t${JSON.stringify(j)}`;
const run = (tests: Record<string, string>, status: ModuleRun['status'] = 'ok'): ModuleRun =>
  ({ status, tests: new Map(Object.entries(tests)) as ModuleRun['tests'] });

test('parseRun: outcomes, reasons, noise and the summary', () => {
  const out = ['noise from a test', T('pass', 'a.A.t1'), `partial line ${T('fail', 'a.A.t2', 'AssertionError: 1 != 2')}`,
    T('skip', 'a.A.t3', 'needs network'), T('xfail', 'a.A.t4'), T('error', 'a.A.t5', 'OSError: [Errno 38]'),
    T('bogus', 'a.A.t6'), END({ module: 'test_a', run: 5, seconds: 1.5 }), ''].join('\n');
  const r = parseRun(out);
  assert.equal(r.status, 'ok');
  assert.equal(r.seconds, 1.5);
  assert.deepEqual([...r.tests], [['a.A.t1', 'pass'], ['a.A.t2', 'fail'], ['a.A.t3', 'skip'], ['a.A.t4', 'xfail'], ['a.A.t5', 'error']]);
  assert.equal(r.why?.get('a.A.t2'), 'AssertionError: 1 != 2');
  assert.equal(r.why?.has('a.A.t1'), false);
});

test('parseRun: a later error for the same id wins over a pass, not the other way round', () => {
  const r = parseRun([T('pass', 'x'), T('error', 'x', 'boom'), T('pass', 'x'), END({})].join('\n'));
  assert.equal(r.tests.get('x'), 'error');
  assert.equal(r.why?.get('x'), 'boom');
});

test('parseRun: no summary line is reported as how the run ended', () => {
  const r = parseRun(T('pass', 'a') + '\n', { status: 'timeout', detail: 'no summary after 5 s' });
  assert.equal(r.status, 'timeout');
  assert.equal(r.detail, 'no summary after 5 s');
  assert.equal(r.tests.size, 1);
  assert.equal(parseRun('').status, 'died');
  assert.equal(parseRun(END({ skipped: 'no curses' })).status, 'skipped');
  const ie = parseRun(END({ importError: 'ImportError: no _testcapi' }));
  assert.deepEqual([ie.status, ie.detail], ['import-error', 'ImportError: no _testcapi']);
});

test('compare: the gap is host passes the fork does not pass', () => {
  const host = run({ a: 'pass', b: 'pass', c: 'xfail', d: 'fail', e: 'skip', g: 'pass' });
  const fork = run({ a: 'pass', b: 'error', c: 'xfail', d: 'pass', e: 'pass' });
  fork.why = new Map([['b', 'OSError: no fork']]);
  const r = compare('test_x', host, fork);
  assert.equal(r.hostPass, 4);
  assert.equal(r.forkPassOfHost, 2);
  assert.equal(r.forkPass, 4);
  assert.equal(r.ratio, 0.5);
  assert.deepEqual(r.gap, [{ id: 'b', fork: 'error', why: 'OSError: no fork' }, { id: 'g', fork: 'missing' }]);
  assert.equal(complete(r), false);
  assert.equal(compare('test_y', run({}), run({})).ratio, 1);
  const m = compare('test_z', run({ a: 'pass' }), run({ 'setUpModule (test.test_z)': 'error', b: 'skip', c: 'pass' }));
  assert.deepEqual(m.forkOnly, [{ id: 'setUpModule (test.test_z)', fork: 'error' }, { id: 'b', fork: 'skip' }]);
  assert.deepEqual(m.gap, [{ id: 'a', fork: 'missing' }]);
});

test('complete: a fork that timed out or crashed is not at 100% even with no host passes', () => {
  assert.equal(complete(compare('m', run({}), run({}, 'timeout'))), false);
  assert.equal(complete(compare('m', run({}, 'skipped'), run({}, 'skipped'))), true);
  assert.equal(complete(compare('m', run({ a: 'pass' }), run({ a: 'pass' }))), true);
});

test('checkKnown: unexplained modules and stale entries', () => {
  const rows = [
    compare('test_ok', run({ a: 'pass' }), run({ a: 'pass' })),
    compare('test_gap', run({ a: 'pass' }), run({ a: 'fail' })),
    compare('test_known', run({ a: 'pass' }), run({}, 'timeout')),
    compare('test_fixed', run({ a: 'pass' }), run({ a: 'pass' })),
  ];
  const known = { test_known: 'timeout: hangs', test_fixed: 'no threads', test_not_run: 'no network' };
  assert.deepEqual(checkKnown(rows, known), { unexplained: ['test_gap'], stale: ['test_fixed'] });
  const t = totals(rows);
  assert.deepEqual([t.modules, t.hostPass, t.forkPassOfHost, t.complete, t.timeouts], [4, 4, 2, 2, 1]);
  const table = formatTable(rows, known);
  assert.match(table, /^test_gap +1 +0 +0\.0% +ok +UNEXPLAINED$/m);
  assert.match(table, /^test_known .*timeout \(host ok\) +known: timeout: hangs$/m);
  assert.match(table, /^TOTAL +4 +2 +50\.0% +2\/4 modules at 100%, 1 timed out, 0 crashed or died$/m);
  assert.match(table, /^  without processes\/network: 2\/4 host-passing tests pass in forks \(50\.0%\), 2\/4 modules at 100%$/m);
  const g = groupTotals(rows, { ...known, test_gap: 'no processes (subprocess)' });
  assert.deepEqual([g.local.modules, g.local.hostPass, g.local.forkPassOfHost], [3, 3, 2]);
  assert.deepEqual([g.procOrNet.modules, g.procOrNet.hostPass, g.procOrNet.forkPassOfHost], [1, 1, 0]);
  assert.equal(g.all.modules, 4);
});

test('runnerCode: binds the module and refuses names that are not test modules', () => {
  const code = runnerCode('test_json', ['QUJD'], [['ctypes', 'ctypes']]);
  assert.match(code, /^_MODULE = "test_json"\n_BLOBS = \["QUJD"\]\n_EXTRAS = \[\["ctypes","ctypes"\]\]\n/);
  assert.throws(() => runnerCode('os; import x', []), RangeError);
  assert.throws(() => runnerCode('json', []), RangeError);
});

test('known-failures file: every entry has a non-empty reason', () => {
  const j = JSON.parse(readFileSync(knownFailuresPath, 'utf8')) as { modules: Record<string, unknown> };
  assert.equal(typeof j.modules, 'object');
  for (const [m, why] of Object.entries(j.modules)) {
    assert.match(m, /^test_[A-Za-z0-9_]+$/);
    assert.equal(typeof why, 'string', m);
    assert.ok((why as string).trim().length > 0, m);
  }
});

test('forkbox conformance python --from: re-reports a saved run and flags drift', () => {
  const dir = mkdtempSync(join(tmpdir(), 'fbconf-from-'));
  try {
    const rows = [compare('test_gap', run({ a: 'pass' }), run({ a: 'error' })), compare('test_fixed', run({ a: 'pass' }), run({ a: 'pass' }))];
    writeFileSync(join(dir, 'run.json'), JSON.stringify({ rows }));
    writeFileSync(join(dir, 'known.json'), JSON.stringify({ modules: { test_fixed: 'no threads' } }));
    const r = spawnSync(process.execPath, [join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'conformance', 'python',
      '--from', join(dir, 'run.json'), '--known', join(dir, 'known.json')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^test_gap +1 +0 +0\.0% +ok +UNEXPLAINED$/m);
    assert.match(r.stdout, /^below 100% without a known-failures entry: test_gap$/m);
    assert.match(r.stdout, /^known-failures entries that now pass \(stale\): test_fixed$/m);
    const bad = spawnSync(process.execPath, [join(repoRoot, 'dist', 'src', 'cli', 'main.js'), 'conformance', 'ruby'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
