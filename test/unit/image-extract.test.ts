// image-extract.test.ts — the installation fixups and pruning on a small
// staging tree laid out like extracted bookworm debs (no apt needed):
// usrmerge links, BLAS/LAPACK alternatives, python3 link, pruned docs/tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fixupTree } from '../../src/image/extract.js';
import { pruneTree } from '../../src/image/prune.js';

function put(root: string, rel: string, content = rel): void {
  mkdirSync(dirname(join(root, rel)), { recursive: true });
  writeFileSync(join(root, rel), content);
}

test('fixups make the usrmerge layout and the alternatives links; pruning drops docs and tests', async () => {
  const root = mkdtempSync(join(tmpdir(), 'fb-extract-'));
  try {
    put(root, 'lib/x86_64-linux-gnu/libc.so.6');
    put(root, 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
    mkdirSync(join(root, 'lib64'));
    symlinkSync('/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2', join(root, 'lib64/ld-linux-x86-64.so.2'));
    put(root, 'bin/true');
    put(root, 'usr/lib/x86_64-linux-gnu/libz.so.1');
    put(root, 'usr/lib/x86_64-linux-gnu/blas/libblas.so.3');
    put(root, 'usr/lib/x86_64-linux-gnu/lapack/liblapack.so.3');
    put(root, 'usr/bin/python3.11');
    put(root, 'usr/share/doc/libc6/copyright');
    put(root, 'usr/share/doc/libc6/changelog.Debian.gz');
    put(root, 'usr/share/doc/gcc-12-base/README');
    put(root, 'usr/share/man/man1/python3.11.1.gz');
    put(root, 'usr/lib/python3.11/os.py');
    put(root, 'usr/lib/python3.11/ctypes/test/test_x.py');
    put(root, 'usr/lib/python3/dist-packages/numpy/core/tests/test_a.py');
    put(root, 'usr/lib/python3/dist-packages/numpy/core/include/numpy/x.h');
    put(root, 'usr/lib/python3/dist-packages/numpy/core/multiarray.py');

    const done = await fixupTree(root);
    for (const top of ['bin', 'sbin', 'lib', 'lib64']) assert.equal(readlinkSync(join(root, top)), `usr/${top}`);
    assert.ok(done.includes('merged /lib into /usr/lib'));
    assert.equal(readFileSync(join(root, 'usr/lib/x86_64-linux-gnu/libc.so.6'), 'utf8'), 'lib/x86_64-linux-gnu/libc.so.6');
    assert.ok(existsSync(join(root, 'usr/lib/x86_64-linux-gnu/libz.so.1')), 'merge keeps what /usr had');
    assert.equal(readlinkSync(join(root, 'usr/lib64/ld-linux-x86-64.so.2')), '/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2');
    assert.equal(readlinkSync(join(root, 'usr/lib/x86_64-linux-gnu/libblas.so.3')), 'blas/libblas.so.3');
    assert.equal(readlinkSync(join(root, 'usr/lib/x86_64-linux-gnu/liblapack.so.3')), 'lapack/liblapack.so.3');
    assert.equal(readlinkSync(join(root, 'usr/bin/python3')), 'python3.11');
    assert.ok(lstatSync(join(root, 'tmp')).isDirectory());
    // Through the links, as the guest resolves them (absolute targets relative to the image root).
    assert.ok(existsSync(join(root, 'lib/x86_64-linux-gnu/ld-linux-x86-64.so.2')));
    assert.ok(existsSync(join(root, 'bin/true')));

    const stats = await pruneTree(root);
    assert.ok(stats.files >= 2 && stats.dirs >= 3);
    assert.ok(existsSync(join(root, 'usr/share/doc/libc6/copyright')));
    for (const gone of ['usr/share/doc/libc6/changelog.Debian.gz', 'usr/share/doc/gcc-12-base', 'usr/share/man',
      'usr/lib/python3.11/ctypes/test', 'usr/lib/python3/dist-packages/numpy/core/tests',
      'usr/lib/python3/dist-packages/numpy/core/include/numpy/x.h']) assert.ok(!existsSync(join(root, gone)), `${gone} pruned`);
    for (const kept of ['usr/lib/python3.11/os.py', 'usr/lib/python3/dist-packages/numpy/core/multiarray.py']) {
      assert.ok(existsSync(join(root, kept)), `${kept} kept`);
    }

    // A file present in both /lib and /usr/lib is a conflict, not a silent overwrite.
    const c = mkdtempSync(join(tmpdir(), 'fb-extract-'));
    try {
      put(c, 'lib/x/a', 'one');
      put(c, 'usr/lib/x/a', 'two');
      await assert.rejects(fixupTree(c), /usrmerge conflict/);
    } finally {
      rmSync(c, { recursive: true, force: true });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
