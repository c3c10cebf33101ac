// image-rules.test.ts — the pure parts of the image build: parsing
// `apt-cache depends` output (or-groups, virtual packages and providers), the
// pruning rules, and the cache key's sensitivity to its inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDepends } from '../../src/image/packages.js';
import { pruneDir, pruneFile } from '../../src/image/prune.js';
import { imageKey } from '../../src/image/build.js';
import { getRecipe } from '../../src/image/recipes.js';

test('parseDepends: or-groups, virtual packages, providers', () => {
  const text = [
    'python3-numpy',
    '  Depends: python3',
    '  Depends: <python3.11:any>',
    '    python3.11',
    ' |Depends: libblas3',
    '  Depends: <libblas.so.3>',
    '    libatlas3-base',
    '    libblas3',
    '  Depends: libc6',
    'libc6',
    '  Depends: libgcc-s1',
    '  PreDepends: libcrypt1',
    '',
  ].join('\n');
  const deps = parseDepends(text);
  const numpy = deps.get('python3-numpy')!;
  assert.equal(numpy.length, 4);
  assert.deepEqual(numpy[0], [{ name: 'python3', virtual: false, providers: [] }]);
  assert.deepEqual(numpy[1], [{ name: 'python3.11', virtual: true, providers: ['python3.11'] }]);
  assert.deepEqual(numpy[2]!.map((a) => a.name), ['libblas3', 'libblas.so.3']);
  assert.deepEqual(numpy[2]![1]!.providers, ['libatlas3-base', 'libblas3']);
  assert.deepEqual(deps.get('libc6')!.map((g) => g[0]!.name), ['libgcc-s1', 'libcrypt1']);
});

test('prune rules keep what programs load and drop docs, tests, headers', () => {
  for (const d of ['usr/share/man', 'usr/share/locale', 'usr/include', 'usr/lib/python3.11/idlelib', 'usr/lib/python3.11/tkinter',
    'usr/lib/python3.11/lib2to3/tests', 'usr/lib/python3.11/ctypes/test', 'usr/lib/python3/dist-packages/numpy/core/tests',
    'usr/lib/python3/dist-packages/numpy/tests']) assert.ok(pruneDir(d), d);
  for (const d of ['usr/lib/python3.11', 'usr/lib/python3.11/unittest', 'usr/lib/python3.11/json', 'usr/share/doc',
    'usr/lib/python3/dist-packages/numpy/testing', 'usr/lib/python3.11/lib2to3']) assert.ok(!pruneDir(d), d);
  for (const f of ['usr/share/doc/libc6/changelog.Debian.gz', 'usr/lib/x86_64-linux-gnu/libfoo.a',
    'usr/lib/python3/dist-packages/numpy/core/include/numpy/ndarraytypes.h']) assert.ok(pruneFile(f), f);
  for (const f of ['usr/share/doc/libc6/copyright', 'usr/lib/x86_64-linux-gnu/libc.so.6', 'usr/lib/python3.11/os.py',
    'usr/lib/python3.11/unittest/case.py']) assert.ok(!pruneFile(f), f);
});

test('the image key changes with every input', () => {
  const r = getRecipe('python');
  const pkgs = [{ name: 'libc6', version: '2.36-9', arch: 'amd64', sha256: 'aa', filename: 'x', size: 1 }];
  const base = imageKey(r, pkgs, { 'runner.py': 'h1' }, 100);
  assert.equal(imageKey(r, pkgs, { 'runner.py': 'h1' }, 100), base);
  assert.notEqual(imageKey(r, [{ ...pkgs[0]!, version: '2.36-10' }], { 'runner.py': 'h1' }, 100), base);
  assert.notEqual(imageKey(r, pkgs, { 'runner.py': 'h2' }, 100), base);
  assert.notEqual(imageKey(r, pkgs, { 'runner.py': 'h1' }, 101), base);
  assert.notEqual(imageKey({ ...r, argv: [...r.argv, '-X'] }, pkgs, { 'runner.py': 'h1' }, 100), base);
});
