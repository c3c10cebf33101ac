// conformance-runner.test.ts — the runner script on the host's python3.11, with
// a small fake test package bundled the way the harness bundles CPython's: every
// outcome (pass, fail, error, skip, expected failure, failing subtest, a
// setUpClass error) parsed back, a module skipped or failing at import, the
// resources regrtest leaves off, a package suite's extra path, and a timeout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { parseRun } from '../../src/conformance/report.js';
import { DEFAULT_HOST_PYTHON, runHost } from '../../src/conformance/run.js';
import { runnerCode } from '../../src/conformance/runner-script.js';
import { Bundler, packBlob } from '../../src/conformance/suite.js';

const FILES: Record<string, string> = {
  'test/__init__.py': '',
  'test/support/__init__.py': 'use_resources = None\n',
  'test/data.txt': 'payload\n',
  'test/test_fake.py': `
import os, unittest
from test import support
class A(unittest.TestCase):
    def test_pass(self): self.assertEqual(open(os.path.join(os.path.dirname(__file__), 'data.txt')).read(), 'payload\\n')
    def test_fail(self): self.assertEqual(1, 2)
    def test_error(self): raise OSError(38, 'Function not implemented')
    @unittest.skip('needs\\tnetwork')
    def test_skip(self): pass
    @unittest.expectedFailure
    def test_xfail(self): self.fail('known')
    def test_subtest(self):
        for i in range(3):
            with self.subTest(i=i): self.assertNotEqual(i, 1)
    def test_resources(self): self.assertEqual(support.use_resources, [])
    def test_noise(self): print('noise without a newline', end='')
class B(unittest.TestCase):
    @classmethod
    def setUpClass(cls): raise RuntimeError('no threads')
    def test_never(self): pass
`,
  'test/test_skipmod.py': 'import unittest\nraise unittest.SkipTest("no curses")\n',
  'test/test_broken.py': 'import no_such_module_xyz\n',
  'test/test_slow.py': 'import time, unittest\nclass S(unittest.TestCase):\n    def test_sleep(self): time.sleep(600)\n',
  'json/tests/test_extra.py': 'import unittest\nclass E(unittest.TestCase):\n    def test_e(self): pass\n',
  'test/test_pkgsuite.py': 'import unittest\nfrom json.tests.test_extra import E\n',
  'test/test_uses.py': 'import unittest\nfrom test.test_lib import helper\nclass U(unittest.TestCase):\n    def test_u(self): self.assertEqual(helper(), 3)\n',
  'test/test_lib/__init__.py': 'from test import test_leaf\ndef helper(): return test_leaf.THREE\n',
  'test/test_leaf.py': 'THREE = 3\n',
};

if (!existsSync(DEFAULT_HOST_PYTHON)) {
  process.stdout.write(`skipped: conformance runner tests: ${DEFAULT_HOST_PYTHON} missing\n`);
} else {
  const root = mkdtempSync(join(tmpdir(), 'fbconf-unit-'));
  for (const [p, text] of Object.entries(FILES)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), text);
  }
  const blobs = async (): Promise<string[]> => [
    await packBlob(root, Object.keys(FILES).filter((f) => !f.startsWith('json/'))),
    await packBlob(root, ['json/tests/test_extra.py']),
  ];
  test.after(() => rmSync(root, { recursive: true, force: true }));

  test('runner on the host: every outcome of a module, with reasons', async () => {
    const r = await runHost(DEFAULT_HOST_PYTHON, runnerCode('test_fake', await blobs()), 300);
    assert.equal(r.status, 'ok', r.detail);
    const o = Object.fromEntries([...r.tests].map(([id, v]) => [id.replace(/^test\.test_fake\./, ''), v]));
    assert.deepEqual(o, {
      'A.test_pass': 'pass', 'A.test_fail': 'fail', 'A.test_error': 'error', 'A.test_skip': 'skip', 'A.test_xfail': 'xfail',
      'A.test_subtest': 'fail', 'A.test_resources': 'pass', 'A.test_noise': 'pass', 'setUpClass (test.test_fake.B)': 'error',
    });
    assert.equal(r.why?.get('test.test_fake.A.test_error'), 'OSError: [Errno 38] Function not implemented @test_fake.py:test_error');
    assert.equal(r.why?.get('test.test_fake.A.test_fail'), 'AssertionError: 1 != 2');
    assert.equal(r.why?.get('test.test_fake.A.test_skip'), 'needs network');
    assert.equal(r.why?.get('setUpClass (test.test_fake.B)'), 'RuntimeError: no threads @test_fake.py:setUpClass');
  });

  test('runner on the host: a module skipped or broken at import', async () => {
    const s = await runHost(DEFAULT_HOST_PYTHON, runnerCode('test_skipmod', await blobs()), 300);
    assert.deepEqual([s.status, s.detail], ['skipped', 'no curses']);
    const b = await runHost(DEFAULT_HOST_PYTHON, runnerCode('test_broken', await blobs()), 300);
    assert.equal(b.status, 'import-error');
    assert.match(b.detail ?? '', /ModuleNotFoundError: No module named 'no_such_module_xyz'/);
  });

  test('runner on the host: a suite inside a stdlib package gets its bundled directory', async () => {
    const without = await runHost(DEFAULT_HOST_PYTHON, runnerCode('test_pkgsuite', await blobs()), 300);
    assert.equal(without.status, 'import-error');
    const r = await runHost(DEFAULT_HOST_PYTHON, runnerCode('test_pkgsuite', await blobs(), [['json', 'json']]), 300);
    assert.equal(r.status, 'ok', r.detail);
    assert.equal(r.tests.get('json.tests.test_extra.E.test_e'), 'pass');
  });

  test('bundles carry the test modules a module imports, transitively', async () => {
    const b = new Bundler({ libDir: root, testDir: join(root, 'test'), version: 'x' });
    assert.deepEqual(await b.closure('test_uses'), ['test_uses', 'test_lib', 'test_leaf']);
    assert.deepEqual(await b.closure('test_fake'), ['test_fake']);
    const r = await runHost(DEFAULT_HOST_PYTHON, runnerCode('test_uses', await b.blobs('test_uses')), 300);
    assert.equal(r.status, 'ok', r.detail);
    assert.equal(r.tests.get('test.test_uses.U.test_u'), 'pass');
  });

  test('runner on the host: a module past the deadline is a timeout with what it reported', async () => {
    const r = await runHost(DEFAULT_HOST_PYTHON, runnerCode('test_slow', await blobs()), 1);
    assert.equal(r.status, 'timeout');
    assert.equal(r.tests.size, 0);
    assert.equal(parseRun('').status, 'died');
  });
}
