// vmm-binding.test.ts — the addon's own argument checks (it must never trust
// JS): wrong handle types, closed handles, oversized payloads and boot args,
// bad entropy, bad boot configs; errors carry `code` and `op`. Needs /dev/kvm;
// without it, one "skipped:" line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { testGuestDir } from '../../src/lib/paths.js';
import { loadAddon } from '../../src/vmm/binding.js';
import { FB_BOOT_ARGS_MAX, FB_MB_REQ_SIZE } from '../../src/vmm/abi.js';
import { Snapshot, Vm, probe } from '../../src/vmm/vmm.js';
import { buildTestTemplate } from '../../src/template/build.js';

const p = probe();
if (!p.available || !existsSync(join(testGuestDir, 'echo.elf'))) {
  process.stdout.write(`skipped: vmm binding tests: ${p.available ? 'test guests not built' : p.reason}\n`);
} else {
  const a = loadAddon();
  const req = { kind: 2, payload: Buffer.from('x'), outCap: 0, errCap: 0, memLimit: 0, timeoutNs: 1e9 };
  const isType = (e: unknown): boolean => e instanceof TypeError;

  test('handles are type-checked', async () => {
    const root = mkdtempSync(join(tmpdir(), 'forkbox-binding-'));
    try {
      const t = await buildTestTemplate('echo', root);
      const snap = a.openSnapshot(t.memPath, t.statePath);
      // a snapshot is not a vm, a plain object is not a handle
      assert.throws(() => a.run(snap as never, req, () => {}), isType);
      assert.throws(() => a.kick({} as never), isType);
      assert.throws(() => a.fork({} as never, null, () => {}), isType);
      assert.throws(() => a.fork(snap, snap as never, () => {}), isType);
      assert.throws(() => a.close(42 as never), isType);
      a.close(snap);
      a.close(snap); // idempotent
      assert.throws(() => a.fork(snap, null, () => {}), (e: Error & { code?: string }) => e.code === 'EBADF');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('requests and boot configs are bounds-checked', async () => {
    const vm = Vm.boot({ ramSize: 64 << 20, guestElf: join(testGuestDir, 'echo.elf') });
    try {
      const native = a.bootVm({ ramSize: 64 << 20, guestElf: join(testGuestDir, 'echo.elf'), args: Buffer.alloc(0) });
      assert.throws(() => a.run(native, { ...req, payload: Buffer.alloc(FB_MB_REQ_SIZE + 1) }, () => {}), isType);
      assert.throws(() => a.run(native, { ...req, outCap: 2 ** 40 }, () => {}), isType);
      assert.throws(() => a.run(native, { ...req, entropy: Buffer.alloc(3) }, () => {}), isType);
      assert.throws(() => a.run(native, { ...req, kind: -1 }, () => {}), isType);
      assert.throws(() => a.run(native, { ...req, payload: 'str' as never }, () => {}), isType);
      a.close(native);
      assert.throws(() => a.run(native, req, () => {}), (e: Error & { code?: string }) => e.code === 'EBADF');
      assert.throws(() => a.bootVm({ ramSize: 64 << 20, guestElf: join(testGuestDir, 'echo.elf'), args: Buffer.alloc(FB_BOOT_ARGS_MAX + 1) }), isType);
      assert.throws(() => a.bootVm({ ramSize: 64 << 20, guestElf: 'bad\0path', args: Buffer.alloc(0) }), isType);
      assert.throws(() => a.bootVm({ ramSize: 64 << 20, guestElf: '/nonexistent/guest.elf', args: Buffer.alloc(0) }),
        (e: Error & { code?: string; op?: string }) => e.code === 'ENOENT' && typeof e.op === 'string');
      assert.throws(() => a.bootVm({ ramSize: 3, guestElf: join(testGuestDir, 'echo.elf'), args: Buffer.alloc(0) }),
        (e: Error & { code?: string }) => e.code === 'EINVAL');
    } finally {
      vm.close();
    }
  });

  test('a snapshot that is not one is refused with a clear error', () => {
    const root = mkdtempSync(join(tmpdir(), 'forkbox-binding-'));
    try {
      assert.throws(() => new Snapshot(join(root, 'nope'), join(root, 'nope2')), (e: Error & { code?: string }) => e.code === 'ENOENT');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
}
