// image-pack.test.ts — the image packer and reader: round trip of a tree with
// symlinks, empty dirs, big and empty files; deterministic bytes; 4 KiB data
// alignment; sorted contiguous children; rejected names; a corrupted image.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, writeFileSync, symlinkSync, readFileSync, rmSync, readlinkSync, statSync, readdirSync, chmodSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packImage, DATA_ALIGN } from '../../src/image/pack.js';
import { ImageReader, entryKind } from '../../src/image/reader.js';
import { walkTree, addFile, type DirNode } from '../../src/image/tree.js';

function makeTree(dir: string): void {
  mkdirSync(join(dir, 'usr/lib/x'), { recursive: true });
  mkdirSync(join(dir, 'empty'));
  mkdirSync(join(dir, 'usr/bin'));
  writeFileSync(join(dir, 'usr/bin/tool'), '#!/bin/sh\necho hi\n');
  chmodSync(join(dir, 'usr/bin/tool'), 0o755);
  writeFileSync(join(dir, 'usr/lib/x/empty.txt'), '');
  const big = Buffer.alloc(3 * 1024 * 1024 + 123);
  for (let i = 0; i < big.length; i++) big[i] = (i * 2654435761) >>> 24;
  writeFileSync(join(dir, 'usr/lib/x/big.bin'), big);
  for (const n of ['b', 'a', 'B', 'a.b', 'aa', '_z']) writeFileSync(join(dir, 'usr/lib', n), `file ${n}\n`);
  symlinkSync('usr/lib', join(dir, 'lib'));
  symlinkSync('/usr/bin/tool', join(dir, 'usr/bin/abs-link'));
  symlinkSync('x/big.bin', join(dir, 'usr/lib/rel-link'));
  symlinkSync('nowhere', join(dir, 'dangling'));
  execFileSync('mkfifo', [join(dir, 'fifo')]);
}

function listTree(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(dir, prefix)).sort()) {
    const rel = join(prefix, name);
    const p = join(dir, rel);
    const st = statSync(p, { throwIfNoEntry: false });
    const lst = readlinkSafe(p);
    if (lst !== undefined) out.push(`${rel} -> ${lst}`);
    else if (st?.isDirectory()) out.push(`${rel}/`, ...listTree(dir, rel));
    else out.push(`${rel} ${st!.mode & 0o111 ? 'x' : '-'} ${readFileSync(p).toString('hex').slice(0, 64)} ${st!.size}`);
  }
  return out;
}
function readlinkSafe(p: string): string | undefined {
  try { return readlinkSync(p); } catch { return undefined; }
}

test('pack → read → unpack round trip, deterministic and aligned', async () => {
  const work = mkdtempSync(join(tmpdir(), 'fb-pack-'));
  try {
    const src = join(work, 'src');
    mkdirSync(src);
    makeTree(src);
    const stats = { skipped: [] as string[] };
    const tree = await walkTree(src, stats);
    assert.deepEqual(stats.skipped, [join(src, 'fifo')]);
    const a = await packImage(tree, join(work, 'a.fbimg'), 1_700_000_000);
    const b = await packImage(await walkTree(src), join(work, 'b.fbimg'), 1_700_000_000);
    assert.ok(readFileSync(a.path).equals(readFileSync(b.path)), 'same tree gives the same bytes');
    assert.equal(a.size % DATA_ALIGN, 0);

    const img = new ImageReader(a.path);
    try {
      assert.ok(img.verifyDigest());
      assert.equal(img.header.buildTime, 1_700_000_000);
      assert.equal(img.header.dataOff % DATA_ALIGN, 0);
      // Children contiguous and bytewise sorted; regular file data aligned.
      const libNames = img.children(img.lookup('/usr/lib')!).map((e) => e.name.toString());
      assert.deepEqual(libNames, ['B', '_z', 'a', 'a.b', 'aa', 'b', 'rel-link', 'x']);
      let files = 0;
      for (const { entry } of img.walk()) {
        if (entryKind(entry) === 'file' && entry.size > 0) { files++; assert.equal(entry.dataOff % DATA_ALIGN, 0); }
      }
      assert.equal(files, 8);
      assert.equal(img.lookup('/usr/bin/tool')!.mode, 0o100755);
      assert.equal(img.lookup('/usr/lib/a')!.mode, 0o100644);
      assert.equal(img.lookup('/empty')!.mode, 0o040755);
      assert.equal(img.lookup('/empty')!.childCount, 0);
      // Symlinks: stored targets, followed in the middle of a path, optionally at the end.
      assert.equal(img.data(img.lookup('/lib')!).toString(), 'usr/lib');
      assert.equal(img.lookup('/lib/x/big.bin')!.size, 3 * 1024 * 1024 + 123);
      assert.equal(img.lookup('/usr/bin/abs-link', true)!.index, img.lookup('/usr/bin/tool')!.index);
      assert.equal(img.lookup('/lib/rel-link', true)!.size, 3 * 1024 * 1024 + 123);
      assert.equal(img.lookup('/dangling', true), undefined);
      assert.equal(img.lookup('/usr/nope'), undefined);
      assert.equal(img.pathOf(img.lookup('/usr/lib/x/empty.txt')!), '/usr/lib/x/empty.txt');
      const out = join(work, 'out');
      mkdirSync(out);
      img.unpack(out);
      rmSync(join(src, 'fifo'));
      assert.deepEqual(listTree(out), listTree(src));
    } finally {
      img.close();
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('in-memory files and rejected names', async () => {
  const work = mkdtempSync(join(tmpdir(), 'fb-pack-'));
  try {
    const root: DirNode = { kind: 'dir', children: [] };
    addFile(root, '/opt/forkbox/runner.py', Buffer.from('print(1)\n'));
    addFile(root, '/opt/forkbox/runner.py', Buffer.from('print(2)\n'));
    const r = await packImage(root, join(work, 'm.fbimg'), 0);
    const img = new ImageReader(r.path);
    assert.equal(img.data(img.lookup('/opt/forkbox/runner.py')!).toString(), 'print(2)\n');
    img.close();
    for (const bad of ['a/b', '..', '.', '', 'a\0b', 'x'.repeat(256)]) {
      const t: DirNode = { kind: 'dir', children: [{ name: Buffer.from(bad), node: { kind: 'dir', children: [] } }] };
      await assert.rejects(packImage(t, join(work, 'bad.fbimg'), 0), /name/, `name ${JSON.stringify(bad)} is rejected`);
    }
    const dup: DirNode = { kind: 'dir', children: [
      { name: Buffer.from('a'), node: { kind: 'dir', children: [] } },
      { name: Buffer.from('a'), node: { kind: 'dir', children: [] } }] };
    await assert.rejects(packImage(dup, join(work, 'dup.fbimg'), 0), /duplicate/);
    assert.throws(() => addFile(root, '/opt/../x', Buffer.alloc(0)), /plain name/);
    assert.deepEqual(readdirSync(work), ['m.fbimg'], 'a failed pack leaves no file behind');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('the reader rejects corrupted images', async () => {
  const work = mkdtempSync(join(tmpdir(), 'fb-pack-'));
  try {
    const root: DirNode = { kind: 'dir', children: [] };
    addFile(root, '/a/b', Buffer.from('hello'));
    const r = await packImage(root, join(work, 'ok.fbimg'), 0);
    const good = readFileSync(r.path);
    const variant = (name: string, mutate: (b: Buffer) => void): string => {
      const b = Buffer.from(good);
      mutate(b);
      const p = join(work, name);
      writeFileSync(p, b);
      return p;
    };
    assert.throws(() => new ImageReader(variant('magic', (b) => { b[0] = 0; })), /magic/);
    assert.throws(() => new ImageReader(variant('size', (b) => { b.writeBigUInt64LE(1n << 40n, 16); })), /image_size/);
    assert.throws(() => new ImageReader(variant('count', (b) => { b.writeBigUInt64LE(1n << 30n, 24); })), /entries outside/);
    // Entry 2 (/a/b): data offset far past the end.
    const p = variant('data', (b) => { b.writeBigUInt64LE(1n << 40n, 4096 + 2 * 48 + 24); });
    const img = new ImageReader(p);
    assert.throws(() => img.lookup('/a/b'), /data outside/);
    assert.equal(img.verifyDigest(), false);
    img.close();
    // Entry 1 (/a): a child pointing back at the root.
    const loop = new ImageReader(variant('loop', (b) => { b.writeBigUInt64LE(0n, 4096 + 48 + 16); }));
    assert.throws(() => [...loop.walk()], /children outside/);
    loop.close();
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});

test('the reader survives random corruption (fuzz)', async () => {
  const work = mkdtempSync(join(tmpdir(), 'fb-pack-'));
  try {
    const root: DirNode = { kind: 'dir', children: [] };
    for (const p of ['/a/b/c', '/a/d', '/e', '/f/g/h/i']) addFile(root, p, Buffer.from(`data of ${p}`));
    root.children.push({ name: Buffer.from('l'), node: { kind: 'symlink', target: Buffer.from('a/b') } });
    const good = readFileSync((await packImage(root, join(work, 'ok.fbimg'), 0)).path);
    // Flip bytes only in the metadata (header, entries, names): data bytes cannot break the reader.
    const metaEnd = Number(good.readBigUInt64LE(40)) + Number(good.readBigUInt64LE(48));
    let seed = 12345;
    const rand = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n; };
    let rejected = 0;
    for (let iter = 0; iter < 2000; iter++) {
      const b = Buffer.from(good);
      for (let k = 1 + rand(4); k > 0; k--) b[rand(metaEnd)] = rand(256);
      const p = join(work, 'fuzz.fbimg');
      writeFileSync(p, b);
      try {
        const img = new ImageReader(p);
        try {
          let n = 0;
          for (const { entry } of img.walk()) {
            if (++n > 1000) throw new Error('walk did not terminate');
            if (entryKind(entry) !== 'dir') img.data(entry);
          }
          for (const path of ['/a/b/c', '/l/c', '/f/g/h/i', '/e']) img.lookup(path, true);
        } finally {
          img.close();
        }
      } catch (e) {
        assert.ok(e instanceof Error);
        assert.doesNotMatch(e.message, /did not terminate/);
        rejected++;
      }
    }
    assert.ok(rejected > 0);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
