// image-cli.test.ts — `forkbox image ls` and `forkbox image report` on a small
// packed image and a fake cache entry (no apt, no build), plus usage errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/cli/image.js';
import { packImage } from '../../src/image/pack.js';
import { addFile, type DirNode } from '../../src/image/tree.js';

async function capture(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const ow = process.stdout.write.bind(process.stdout);
  const ew = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => { out += s.toString(); return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => { err += s.toString(); return true; }) as typeof process.stderr.write;
  try {
    return { code: await run(args), out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
}

test('forkbox image ls / report / usage', async () => {
  const work = mkdtempSync(join(tmpdir(), 'fb-cli-'));
  const prevCache = process.env.FORKBOX_CACHE_DIR;
  process.env.FORKBOX_CACHE_DIR = join(work, 'cache');
  try {
    const root: DirNode = { kind: 'dir', children: [] };
    addFile(root, '/usr/bin/tool', Buffer.from('#!/bin/true\n'), true);
    addFile(root, '/usr/lib/x.so', Buffer.alloc(5000));
    root.children.push({ name: Buffer.from('lib'), node: { kind: 'symlink', target: Buffer.from('usr/lib') } });
    const img = join(work, 'i.fbimg');
    await packImage(root, img, 0);

    let r = await capture(['ls', img]);
    assert.equal(r.code, 0);
    assert.equal(r.out, 'l 0777          7 lib -> usr/lib\nd 0755          2 usr/\n');
    r = await capture(['ls', img, '/lib']);
    assert.equal(r.out, '- 0644       5000 x.so\n', 'a directory symlink is listed through');
    r = await capture(['ls', img, '/usr/bin/tool']);
    assert.equal(r.out, '- 0755         12 /usr/bin/tool\n');
    r = await capture(['ls', img, '/nope']);
    assert.equal(r.code, 1);
    assert.match(r.err, /not in the image/);

    // A key in the cache directory works like a path.
    const key = 'aaaaaaaaaaaaaaaaaaaaaaaa';
    const dir = join(work, 'cache', 'images', key);
    mkdirSync(dir, { recursive: true });
    await packImage(root, join(dir, 'image.fbimg'), 0);
    r = await capture(['ls', key, '/usr']);
    assert.equal(r.out, 'd 0755          1 bin/\nd 0755          1 lib/\n');
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ image: { size: statSync(join(dir, 'image.fbimg')).size } }));
    writeFileSync(join(dir, 'rewrite-report.json'), JSON.stringify({
      rewriterVersion: 1, filesScanned: 3, elfFiles: 1, filesWithSites: 1, totalSites: 2, totalRewritten: 1, totalRefused: 1, totalData: 0,
      files: [{ path: '/usr/lib/x.so', sites: 2, rewritten: ['0x10'], refused: [{ address: '0x20', syscall: 72, reason: 'red zone: test', accepted: 'because' }], data: [] }],
    }));
    r = await capture(['report', key]);
    assert.equal(r.code, 0);
    assert.match(r.out, /2 sites, 1 rewritten, 1 refused/);
    assert.match(r.out, /refused 0x20 \(syscall 72\): red zone: test\n {4}accepted: because/);
    r = await capture(['report', 'bbbbbbbbbbbbbbbbbbbbbbbb']);
    assert.equal(r.code, 1);
    r = await capture(['report', '../../etc']);
    assert.equal(r.code, 1, 'a key is hex, never a path');

    assert.equal((await capture([])).code, 2);
    assert.equal((await capture(['frobnicate'])).code, 2);
    assert.equal((await capture(['build', 'a', 'b'])).code, 2);
  } finally {
    if (prevCache === undefined) delete process.env.FORKBOX_CACHE_DIR;
    else process.env.FORKBOX_CACHE_DIR = prevCache;
    rmSync(work, { recursive: true, force: true });
  }
});
