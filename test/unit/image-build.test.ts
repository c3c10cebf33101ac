// image-build.test.ts — the real python image. Building it needs apt and
// takes a while, so it runs when FORKBOX_TEST_IMAGE=1 or when the image is
// already in the cache (the template build makes it); otherwise it prints
// `skipped: …`. Checks the image's integrity, layout, byte-compiled sources,
// pruning, and re-disassembles the rewritten libc and ld.so from the image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, type BuiltImage } from '../../src/image/build.js';
import { ImageReader, entryKind } from '../../src/image/reader.js';
import { guestFilesDir } from '../../src/lib/paths.js';
import { getRecipe } from '../../src/image/recipes.js';
import type { RewriteReport } from '../../src/image/rewrite.js';

async function image(): Promise<BuiltImage | string> {
  const want = process.env.FORKBOX_TEST_IMAGE === '1';
  try {
    return await buildImage('python', { cachedOnly: !want, onProgress: () => {} });
  } catch (e) {
    if (!want) return `skipped: python image not built (set FORKBOX_TEST_IMAGE=1 to build it): ${(e as Error).message.split('\n')[0]}`;
    throw e;
  }
}

/** Syscall instruction addresses in a file, straight from objdump. */
function syscallSites(file: string): string[] {
  const dis = execFileSync('objdump', ['-d', '-w', '--no-show-raw-insn', file], { encoding: 'utf8', maxBuffer: 512 << 20 });
  return [...dis.matchAll(/^\s*([0-9a-f]+):\tsyscall\s*$/gm)].map((m) => '0x' + m[1]!);
}

test('the python image: layout, compiled sources, pruning, rewritten syscalls', { timeout: 900_000 }, async (t) => {
  const got = await image();
  if (typeof got === 'string') { t.skip(got); return; }
  const m = got.manifest;
  const img = new ImageReader(got.imagePath);
  const work = mkdtempSync(join(tmpdir(), 'fb-image-'));
  try {
    assert.ok(img.verifyDigest(), 'digest matches');
    assert.equal(img.header.digest, m.image.sha256);
    for (const p of getRecipe('python').mustExist) assert.ok(img.lookup(p, true), `${p} resolves`);
    // ld.so via the PT_INTERP path of python3.11, through the usrmerge links.
    const py = img.lookup('/usr/bin/python3.11', true)!;
    writeFileSync(join(work, 'python3.11'), img.data(py));
    const interp = /Requesting program interpreter: (\S+)\]/.exec(execFileSync('readelf', ['-lW', join(work, 'python3.11')], { encoding: 'utf8' }))?.[1];
    assert.equal(interp, '/lib64/ld-linux-x86-64.so.2');
    assert.equal(entryKind(img.lookup(interp, true)!), 'file');
    assert.equal(entryKind(img.lookup('/lib')!), 'symlink');
    // Byte-compiled, unchecked-hash .pyc files that name in-image paths.
    const pyc = img.data(img.lookup('/usr/lib/python3/dist-packages/numpy/__pycache__/__init__.cpython-311.pyc')!);
    assert.equal(pyc.readUInt32LE(4), 0b01, 'hash-based pyc without source check');
    assert.ok(pyc.includes(Buffer.from('/usr/lib/python3/dist-packages/numpy/__init__.py')));
    let pycs = 0;
    for (const { path, entry } of img.walk()) {
      if (!path.endsWith('.pyc')) continue;
      pycs++;
      assert.equal(img.data(entry).readUInt32LE(4), 0b01, `${path}: unchecked-hash pyc (image mtimes never match sources)`);
    }
    assert.ok(pycs > 700, `${pycs} .pyc files`);
    // The runner is the repository's.
    assert.ok(img.data(img.lookup('/opt/forkbox/runner.py')!).equals(readFileSync(join(guestFilesDir, 'runner.py'))));
    // Pruned.
    for (const p of ['/usr/share/man', '/usr/include', '/usr/lib/python3.11/idlelib', '/usr/lib/python3.11/ensurepip',
      '/usr/lib/python3/dist-packages/numpy/core/tests', '/usr/share/locale']) assert.equal(img.lookup(p), undefined, `${p} pruned`);
    assert.ok(!m.packages.some((p) => p.name === 'dpkg' || p.name === 'perl-base'));
    for (const name of ['libc6', 'python3.11-minimal', 'python3-numpy', 'libblas3', 'liblapack3']) {
      assert.ok(m.packages.some((p) => p.name === name), `${name} in the closure`);
    }
    // The rewrite, checked independently of the rewriter: disassemble the files from the image.
    const report = JSON.parse(readFileSync(join(got.dir, 'rewrite-report.json'), 'utf8')) as RewriteReport;
    for (const lib of ['/usr/lib/x86_64-linux-gnu/libc.so.6', '/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2']) {
      const f = report.files.find((x) => x.path === lib);
      assert.ok(f, `${lib} in the report`);
      assert.ok(f.rewritten.length > 40, `${lib}: most sites rewritten`);
      const file = join(work, lib.split('/').pop()!);
      writeFileSync(file, img.data(img.lookup(lib)!));
      assert.deepEqual(syscallSites(file).sort(), f.refused.map((r) => r.address).sort(), `${lib}: only refused sites remain`);
    }
    assert.equal(m.rewrite.refused, report.totalRefused);
  } finally {
    img.close();
    rmSync(work, { recursive: true, force: true });
  }
});
