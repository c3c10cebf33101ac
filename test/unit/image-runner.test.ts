// image-runner.test.ts — guest/runner.py on the host's python3: a driver
// imports it, swaps the control device for pipes, and runs requests through
// the runner's own read/handle/answer code, capturing fds 1 and 2 per exec.
// Checks exit codes (SystemExit mapping, tracebacks without runner frames),
// env/stdin per exec, fresh globals, write-through output, bad requests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { guestFilesDir } from '../../src/lib/paths.js';

const DRIVER = String.raw`
import importlib.util, json, os, sys, threading
_w, _r = os.write, os.read  # the programs under test break os.write/os.read on purpose
spec = importlib.util.spec_from_file_location('runner', sys.argv[1])
runner = importlib.util.module_from_spec(spec)
spec.loader.exec_module(runner)
reqs = json.load(open(sys.argv[2]))
outdir = sys.argv[3]

class PipeRunner(runner.Runner):
    def open_control(self):
        return -1

r = PipeRunner(['numpy', 'json', 'no_such_module_xyz'])
saved = os.dup(1), os.dup(2)
results = []
for i, payload in enumerate(reqs):
    data = payload.encode()
    rfd, wfd = os.pipe()
    def feed(w=wfd, d=data):
        view = memoryview(d)
        while view:
            view = view[_w(w, view[:65536]):]
        os.close(w)
    t = threading.Thread(target=feed)
    t.start()
    r.fd = rfd
    got = r.read_request()
    t.join()
    os.close(rfd)
    assert got == data, 'read_request returned the whole payload'
    o = os.open('%s/%d.out' % (outdir, i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    e = os.open('%s/%d.err' % (outdir, i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(o, 1); os.dup2(e, 2)
    rc = r.handle(got)
    os.dup2(saved[0], 1); os.dup2(saved[1], 2)
    os.close(o); os.close(e)
    rfd, wfd = os.pipe()
    r.fd = wfd
    r.answer(rc)
    os.close(wfd)
    results.append(json.loads(_r(rfd, 1 << 16)))
    os.close(rfd)
json.dump({'results': results, 'failed_preloads': sorted(r.failed_preloads)}, open('%s/results.json' % outdir, 'w'))
`;

interface Exec { code?: string; env?: Record<string, string> | null; stdin?: string | null; raw?: string; session?: boolean; reseed?: boolean }

function python(): string | undefined {
  const r = spawnSync('python3', ['-c', 'import sys; print(sys.version_info[:2] >= (3, 8))'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() === 'True' ? 'python3' : undefined;
}

type Ran = { exitCode: number; out: string; err: string; result?: string; resultTruncated?: boolean };
function runAll(execs: Exec[]): Array<Ran> & { failedPreloads?: string[] } {
  const work = mkdtempSync(join(tmpdir(), 'fb-runner-'));
  try {
    writeFileSync(join(work, 'driver.py'), DRIVER);
    const payloads = execs.map((e) => e.raw ?? JSON.stringify({ code: e.code, env: e.env ?? null, stdin: e.stdin ?? null,
      ...(e.session !== undefined ? { session: e.session } : {}), ...(e.reseed !== undefined ? { reseed: e.reseed } : {}) }));
    writeFileSync(join(work, 'reqs.json'), JSON.stringify(payloads));
    execFileSync('python3', ['-I', '-B', join(work, 'driver.py'), join(guestFilesDir, 'runner.py'), join(work, 'reqs.json'), work], { stdio: 'inherit', cwd: work });
    const res = JSON.parse(readFileSync(join(work, 'results.json'), 'utf8')) as
      { results: Array<{ exit_code: number; result?: string; result_truncated?: boolean }>; failed_preloads: string[] };
    const out = res.results.map((r, i) => ({
      exitCode: r.exit_code, out: readFileSync(join(work, `${i}.out`), 'utf8'), err: readFileSync(join(work, `${i}.err`), 'utf8'),
      ...(r.result !== undefined ? { result: r.result } : {}), ...(r.result_truncated ? { resultTruncated: true } : {}),
    })) as Array<Ran> & { failedPreloads?: string[] };
    out.failedPreloads = res.failed_preloads;
    return out;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

test('runner.py: exit codes, tracebacks, env, stdin, fresh globals, output', (t) => {
  if (!python()) { t.skip('skipped: no python3 >= 3.8 on this host'); return; }
  const big = Array.from({ length: 60000 }, (_, i) => `v${i} = ${i}  # ${'x'.repeat(40)}`).join('\n') + '\nprint(v59999)\n';
  const r = runAll([
    { code: 'print("hi")' },
    { code: 'import sys\nsys.exit(3)' },
    { code: 'raise SystemExit' },
    { code: 'import sys; sys.exit(263)' },
    { code: 'import sys; sys.exit(-1)' },
    { code: 'import sys; sys.exit("boom")' },
    { code: 'def f():\n    raise ValueError("bad value")\nf()' },
    { code: 'x = (' },
    { code: 'import os; print(os.environ["FOO"])', env: { FOO: 'bar' } },
    { code: 'import os; print(os.environ.get("FOO"))' },
    { code: 'import sys; print(sys.stdin.read().upper())', stdin: 'abc' },
    { code: 'leak = 1' },
    { code: 'print("leak" in globals(), __name__)' },
    { code: 'import sys, os; sys.stdout.write("a"); os.write(1, b"b"); print("c", file=sys.stderr)' },
    { code: 'import sys; sys.stdout.close()' },
    { code: 'print("after close")' },
    { raw: '{"nope": 1}' },
    { raw: 'not json' },
    { code: big },
    { code: 'import random; random.seed(1)' },
    { code: 'import random; print(random.random() == __import__("random").Random(1).random())' },
    { code: 'import sys; sys.exit(True)' },
    { raw: '  {"code": "print(1)"}  ' },
    { raw: '{"code": "print(1)"} x' },
    { code: 'import os, builtins, io\nos.write = os.read = os.urandom = None\nbuiltins.compile = builtins.exec = None\nio.StringIO = None\nos.environ = {}' },
    { code: 'import os; print("still fine", os.environ["HOME"] == os.environ.get("HOME"))', stdin: 'x' },
    { code: 'import numpy as np; np.random.seed(1)' },
    { code: 'import numpy as np; print(np.random.rand() == np.random.RandomState(1).rand(), np.random.rand() < 1)' },
  ]);
  assert.equal(r.length, 28);
  assert.deepEqual(r[0], { exitCode: 0, out: 'hi\n', err: '' });
  assert.equal(r[1]!.exitCode, 3);
  assert.equal(r[2]!.exitCode, 0);
  assert.equal(r[3]!.exitCode, 7, 'exit status is masked to 8 bits like a process');
  assert.equal(r[4]!.exitCode, 255);
  assert.deepEqual([r[5]!.exitCode, r[5]!.err], [1, 'boom\n']);
  assert.equal(r[6]!.exitCode, 1);
  assert.match(r[6]!.err, /^Traceback \(most recent call last\):\n {2}File "<string>", line 3, in <module>\n/);
  assert.match(r[6]!.err, /ValueError: bad value\n$/);
  assert.doesNotMatch(r[6]!.err, /runner\.py/);
  assert.equal(r[7]!.exitCode, 1);
  assert.match(r[7]!.err, /SyntaxError/);
  assert.doesNotMatch(r[7]!.err, /Traceback|runner\.py/);
  assert.equal(r[8]!.out, 'bar\n');
  assert.equal(r[9]!.out, 'None\n', 'env does not leak into the next exec');
  assert.equal(r[10]!.out, 'ABC\n');
  assert.equal(r[12]!.out, 'False __main__\n', 'fresh globals per exec');
  assert.deepEqual([r[13]!.out, r[13]!.err], ['ab', 'c\n'], 'stdout writes through, in order with raw fd writes');
  assert.equal(r[15]!.out, 'after close\n');
  assert.equal(r[16]!.exitCode, 1);
  assert.match(r[16]!.err, /bad request/);
  assert.equal(r[17]!.exitCode, 1);
  assert.equal(r[18]!.exitCode, 0);
  assert.equal(r[18]!.out, '59999\n', 'a multi-megabyte program runs');
  assert.equal(r[20]!.out, 'False\n', 'random is reseeded per exec');
  assert.equal(r[21]!.exitCode, 1);
  assert.deepEqual([r[22]!.exitCode, r[22]!.out], [0, '1\n'], 'whitespace around the JSON is fine');
  assert.equal(r[23]!.exitCode, 1);
  assert.match(r[23]!.err, /bad request/);
  assert.equal(r[24]!.exitCode, 0);
  assert.deepEqual([r[25]!.exitCode, r[25]!.out], [0, 'still fine True\n'], 'a program that breaks os/builtins does not break the next exec');
  if (!r.failedPreloads?.includes('numpy')) assert.equal(r[27]!.out, 'False True\n', "numpy's global RNG is reseeded per exec");
  assert.deepEqual(r.failedPreloads?.includes('no_such_module_xyz'), true);
});

test('runner.py: session execs share one namespace and return the last expression', (t) => {
  if (!python()) { t.skip('skipped: no python3 >= 3.8 on this host'); return; }
  const r = runAll([
    { code: 'x = 41', session: true },
    { code: 'x + 1', session: true },
    { code: 'import os\nos.chdir("/")\ny = [1, 2]\ny', session: true },
    { code: 'print(os.getcwd())\nos.getcwd()', session: true },
    { code: 'print("x" in globals())' },
    { code: 'def f():\n    return None\nf()', session: true },
    { code: 'x = (', session: true },
    { code: '1/0', session: true },
    { code: 'import random; random.seed(3); a = random.random()', session: true },
    { code: 'R = random.Random(3); R.random()\nb = random.random(); b == R.random()', session: true, reseed: false },
    { code: '"y" * 20000', session: true },
    { code: 'len(_)', session: true },
    { code: 'class Bad:\n    def __repr__(self): raise RuntimeError("no repr")\nBad()', session: true },
    { code: 'x', session: true },
  ]);
  assert.deepEqual(r[0], { exitCode: 0, out: '', err: '' }, 'an assignment has no result');
  assert.equal(r[1]!.result, '42');
  assert.equal(r[2]!.result, '[1, 2]');
  assert.deepEqual([r[3]!.out, r[3]!.result], ['/\n', "'/'"], 'cwd carries over in a session');
  assert.equal(r[4]!.out, 'False\n', 'a one-shot exec does not see the session namespace');
  assert.equal(r[5]!.result, undefined, 'None is not a result');
  assert.equal(r[6]!.exitCode, 1);
  assert.match(r[6]!.err, /SyntaxError/);
  assert.equal(r[7]!.exitCode, 1);
  assert.match(r[7]!.err, /ZeroDivisionError/);
  assert.equal(r[9]!.result, 'True', 'without a reseed the RNG stream the program seeded goes on');
  assert.equal(r[10]!.result!.length, 16 * 1024);
  assert.equal(r[10]!.resultTruncated, true);
  assert.equal(r[11]!.result, '20000', '_ is the previous result');
  assert.equal(r[12]!.exitCode, 1);
  assert.match(r[12]!.err, /RuntimeError: no repr/);
  assert.equal(r[13]!.result, '41', 'state survives failing execs');
});
