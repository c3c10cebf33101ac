// cache-trust.test.ts — cache trust without a VM: a cache dir (or subdir) that
// others can write or another user owns is refused with the fix named; a
// template whose state file names an image outside the cache's image dir, or
// whose memory, state or image bytes changed, is refused at load; cache files
// are written without following a planted symlink.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listTemplates } from '../../src/template/build.js';
import { safeWriteFile, stateImagePath, verifyTemplate } from '../../src/template/trust.js';
import { trustedCacheDir } from '../../src/lib/paths.js';

const sha = (b: Buffer | string): string => createHash('sha256').update(b).digest('hex');

/** A state file with the real header framing (magic, body size, image path at the end of the body). */
function fakeState(imagePath: string | null): Buffer {
  const path = Buffer.from(imagePath ?? '');
  const body = Buffer.concat([Buffer.alloc(64, 7), path]);
  const h = Buffer.alloc(256);
  h.writeBigUInt64LE(0x50414e5358424b46n, 0);
  h.writeUInt32LE(1, 8);
  h.writeUInt32LE(256, 12);
  h.writeBigUInt64LE(BigInt(body.length), 24);
  h.writeUInt32LE(path.length, 96);
  return Buffer.concat([h, body]);
}

/** <cache>/templates/<key>/{memory,state,manifest.json} and <cache>/images/k/image.fbimg, digests recorded. */
function fakeCache(imagePath?: (cache: string) => string): { cache: string; root: string; dir: string; image: string } {
  const cache = mkdtempSync(join(tmpdir(), 'forkbox-cache-trust-'));
  const root = join(cache, 'templates');
  const dir = join(root, 'k1');
  mkdirSync(dir, { recursive: true });
  mkdirSync(join(cache, 'images', 'k'), { recursive: true });
  const image = join(cache, 'images', 'k', 'image.fbimg');
  writeFileSync(image, Buffer.alloc(8192, 3));
  const named = imagePath ? imagePath(cache) : image;
  const state = fakeState(named);
  const memory = Buffer.alloc(1 << 20);
  memory[4096] = 1;
  writeFileSync(join(dir, 'memory'), memory);
  writeFileSync(join(dir, 'state'), state);
  const digests = { memory: sha(memory), state: sha(state), image: sha(readFileSync(named)) };
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ name: 'python', key: 'k1', created: '2026-01-01T00:00:00Z',
    sizes: { memory: memory.length, state: state.length }, digests }));
  return { cache, root, dir, image };
}

test('a cache dir that group or others can write is refused, naming the fix', async () => {
  const { cache, root } = fakeCache();
  try {
    assert.equal((await listTemplates(root)).length, 1);
    chmodSync(root, 0o777);
    await assert.rejects(listTemplates(root), /writable by group or others.*chmod go-w/);
    chmodSync(root, 0o755);
    chmodSync(cache, 0o775);
    assert.throws(() => trustedCacheDir(cache, ['templates']), /writable by group or others.*chmod go-w/);
    chmodSync(cache, 0o700);
    chmodSync(join(cache, 'images'), 0o757);
    assert.throws(() => trustedCacheDir(cache), /images is writable by group or others/);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test('a cache dir another user owns is refused; a symlinked subdir too; missing subdirs are made 0700', async (t) => {
  if (process.getuid?.() !== 0) {
    t.diagnostic('chown needs root: ownership case not exercised');
  }
  const { cache, root } = fakeCache();
  try {
    if (process.getuid?.() === 0) {
      chownSync(root, 65534, 65534);
      await assert.rejects(listTemplates(root), /owned by uid 65534.*FORKBOX_CACHE_DIR/);
      chownSync(root, 0, 0);
    }
    symlinkSync(tmpdir(), join(cache, 'debs'));
    assert.throws(() => trustedCacheDir(cache), /debs is not a directory/);
    rmSync(join(cache, 'debs'));
    trustedCacheDir(cache);
    assert.equal(lstatSync(join(cache, 'resolve')).mode & 0o777, 0o700);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test('a state file naming a file outside the cache image dir is refused, even with matching digests', async () => {
  const { cache, root, dir } = fakeCache((c) => {
    const secret = join(c, 'api-keys.json');
    writeFileSync(secret, '["sk-secret"]');
    return secret;
  });
  try {
    assert.equal(stateImagePath(readFileSync(join(dir, 'state'))), join(cache, 'api-keys.json'));
    assert.deepEqual(await listTemplates(root), []);
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    await assert.rejects(verifyTemplate(dir, m.digests, join(cache, 'images')), /names an image outside/);
    // A symlink inside the image dir pointing out is resolved first, and refused too.
    symlinkSync(join(cache, 'api-keys.json'), join(cache, 'images', 'k', 'link.fbimg'));
    const state = fakeState(join(cache, 'images', 'k', 'link.fbimg'));
    writeFileSync(join(dir, 'state'), state);
    await assert.rejects(verifyTemplate(dir, { ...m.digests, state: sha(state) }, join(cache, 'images')), /names an image outside/);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test('a flipped byte in the memory file, the state file or the image is detected at load', async () => {
  for (const victim of ['memory', 'state', 'image'] as const) {
    const { cache, root, dir, image } = fakeCache();
    try {
      const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
      assert.ok((await verifyTemplate(dir, m.digests, join(cache, 'images'))) >= 0);
      const path = victim === 'image' ? image : join(dir, victim);
      const b = readFileSync(path);
      const at = victim === 'state' ? 300 : 5000;
      b[at] = b[at]! ^ 0x40;
      writeFileSync(path, b);
      await assert.rejects(verifyTemplate(dir, m.digests, join(cache, 'images')), new RegExp(`${victim === 'image' ? 'image .*' : victim + ' file '}digest mismatch`));
      assert.deepEqual(await listTemplates(root), [], `${victim}: tampered template still listed`);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  }
});

test('a manifest without digests (an older cache) is not trusted', async () => {
  const { cache, root, dir } = fakeCache();
  try {
    const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
    delete m.digests;
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m));
    assert.deepEqual(await listTemplates(root), []);
    assert.equal((await listTemplates(root, { verify: false })).length, 1);
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
});

test('safeWriteFile replaces a symlink planted at the path and never writes through it', async () => {
  const d = mkdtempSync(join(tmpdir(), 'forkbox-cache-sym-'));
  try {
    const victim = join(d, 'victim');
    writeFileSync(victim, 'keep');
    symlinkSync(victim, join(d, 'manifest.json'));
    await safeWriteFile(join(d, 'manifest.json'), '{"ok":true}', 0o600);
    assert.equal(readFileSync(victim, 'utf8'), 'keep');
    const st = lstatSync(join(d, 'manifest.json'));
    assert.ok(st.isFile());
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(readFileSync(join(d, 'manifest.json'), 'utf8'), '{"ok":true}');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
