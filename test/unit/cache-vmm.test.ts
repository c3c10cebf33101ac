// cache-vmm.test.ts — cache trust down to the VMM: a state file re-framed to
// name a host file outside the cache's image dir (with size, mtime and every
// checksum forged to match) is refused by vmm_snapshot_open, and rebuilt by the
// template builder; a symlink planted at a save's temp file name is not
// followed. Needs /dev/kvm; otherwise prints one "skipped:" line and passes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGuestDir } from '../../src/lib/paths.js';
import { bootArgs } from '../../src/vmm/abi.js';
import { Snapshot, Vm, probe } from '../../src/vmm/vmm.js';
import { buildTestTemplate } from '../../src/template/build.js';

const FNV0 = 0xcbf29ce484222325n, FNVP = 0x100000001b3n, M64 = (1n << 64n) - 1n;
function fnv(b: Buffer): bigint {
  let h = FNV0;
  for (const x of b) h = ((h ^ BigInt(x)) * FNVP) & M64;
  return h;
}

/** A valid state file naming `path` as its image, with that file's size and mtime. */
function reframe(state: Buffer, path: string): Buffer {
  const oldLen = state.readUInt32LE(96);
  const body = Buffer.concat([state.subarray(256, state.length - oldLen), Buffer.from(path)]);
  const h = Buffer.from(state.subarray(0, 256));
  const st = statSync(path, { bigint: true });
  h.writeBigUInt64LE(BigInt(body.length), 24);
  h.writeBigUInt64LE(fnv(body), 32);
  h.writeBigUInt64LE(st.size, 64);
  h.writeBigUInt64LE(st.mtimeNs, 72);
  h.writeUInt32LE(Buffer.byteLength(path), 96);
  h.writeBigUInt64LE(fnv(h.subarray(0, 248)), 248);
  return Buffer.concat([h, body]);
}

const p = probe();
if (!p.available || !existsSync(join(testGuestDir, 'echo.elf'))) {
  process.stdout.write(`skipped: cache vmm tests: ${!p.available ? p.reason : 'test guests not built (make -C native guests)'}\n`);
} else {
  test('a state file pointing at a host file outside the image dir is refused by the VMM and rebuilt', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'forkbox-cache-vmm-'));
    try {
      const root = join(cache, 'templates');
      mkdirSync(join(cache, 'images', 'k'), { recursive: true });
      const image = join(cache, 'images', 'k', 'image.fbimg');
      writeFileSync(image, Buffer.alloc(64 << 10, 5));
      const t = await buildTestTemplate('echo', root, { imagePath: image });
      assert.ok(t.built);
      assert.match(t.manifest.digests.image ?? '', /^[0-9a-f]{64}$/);
      new Snapshot(t.memPath, t.statePath).close(); // the genuine one opens
      const secret = join(cache, 'api-keys.json');
      writeFileSync(secret, JSON.stringify(['sk-' + 'x'.repeat(4000)]));
      const forged = reframe(readFileSync(t.statePath), secret);
      writeFileSync(t.statePath, forged);
      assert.throws(() => new Snapshot(t.memPath, t.statePath), /outside the image directory/);
      // The attacker rewrites the manifest's digests too: the builder still refuses it and rebuilds.
      const m = JSON.parse(readFileSync(join(t.dir, 'manifest.json'), 'utf8'));
      m.digests.state = createHash('sha256').update(forged).digest('hex');
      m.digests.image = createHash('sha256').update(readFileSync(secret)).digest('hex');
      writeFileSync(join(t.dir, 'manifest.json'), JSON.stringify(m));
      const again = await buildTestTemplate('echo', root, { imagePath: image });
      assert.ok(again.built, 'tampered template reused');
      new Snapshot(again.memPath, again.statePath).close();
      assert.equal(lstatSync(again.memPath).mode & 0o777, 0o600);
      assert.equal(lstatSync(again.statePath).mode & 0o777, 0o600);
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });

  test('saving a snapshot does not follow a symlink planted at its temp file names', async () => {
    const d = mkdtempSync(join(tmpdir(), 'forkbox-cache-save-'));
    let vm: Vm | null = null;
    try {
      const victim = join(d, 'victim');
      writeFileSync(victim, 'keep');
      const mem = join(d, 'memory'), state = join(d, 'state');
      symlinkSync(victim, `${mem}.tmp.${process.pid}`);
      symlinkSync(victim, `${state}.tmp.${process.pid}`);
      vm = Vm.boot({ ramSize: 64 << 20, guestElf: join(testGuestDir, 'echo.elf'), args: bootArgs(['echo'], []) });
      await vm.start(5000);
      await vm.saveSnapshot(mem, state);
      assert.equal(readFileSync(victim, 'utf8'), 'keep');
      assert.ok(lstatSync(mem).isFile() && lstatSync(state).isFile());
      new Snapshot(mem, state).close();
    } finally {
      vm?.close();
      rmSync(d, { recursive: true, force: true });
    }
  });
}
