// python-mmap.test.ts — shared writable file mappings (native/guest/shmap.c)
// through the engine: Python's mmap module writes through to the file on
// flush and on close (also after the file was closed), numpy.memmap 'r+'
// reaches np.fromfile, a write past EOF does not grow the file, the harness
// checks (host/shmap.py) pass in a fork, and in a session a mapping left open
// by one exec is in the file the host reads and the next exec reads.
// Needs /dev/kvm; otherwise prints one "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot, runtimeElf } from '../../src/lib/paths.js';
import { setLogLevel } from '../../src/lib/log.js';
import { probe } from '../../src/vmm/vmm.js';
import { createEngine, type ForkboxEngine } from '../../src/engine/index.js';
import type { ExecResult } from '../../src/engine/types.js';

const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: python mmap e2e tests: ${!p.available ? p.reason : 'guest runtime not built'}\n`);
} else {
  describe('python shared file mappings', { timeout: 900_000 }, () => {
    let dir: string;
    let engine: ForkboxEngine;
    before(async () => {
      if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
      dir = mkdtempSync(join(tmpdir(), 'forkbox-mmap-'));
      engine = await createEngine({ poolSize: 1, workers: 1, memLimitMb: 256, warmForks: 0, sessionDir: dir,
        onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      await engine.ready();
    }, { timeout: 900_000 });
    after(async () => {
      await engine?.close(1000);
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    const run = (code: string): Promise<ExecResult> => engine.exec({ code, language: 'python', timeoutSeconds: 60 });
    const ok = (r: ExecResult): void => {
      assert.equal(r.outcome, 'exited', `outcome ${r.outcome}: ${r.crash ?? ''} ${r.stderr}`);
      assert.equal(r.exitCode, 0, r.stderr);
    };

    test('mmap.mmap write + flush: the file has the bytes', async () => {
      const r = await run([
        'import mmap',
        "with open('/tmp/a.bin', 'wb') as f: f.write(bytes(8192))",
        "f = open('/tmp/a.bin', 'r+b'); m = mmap.mmap(f.fileno(), 8192)",
        "m[10:15] = b'hello'; m.flush()",
        "print(open('/tmp/a.bin', 'rb').read()[10:15])",
      ].join('\n'));
      ok(r);
      assert.equal(r.stdout, "b'hello'\n");
    });

    test('write, close the file, close the mapping, then read the file', async () => {
      const r = await run([
        'import mmap, os',
        "with open('/tmp/b.bin', 'wb') as f: f.write(b'.' * 5000)",
        "with open('/tmp/b.bin', 'r+b') as f: m = mmap.mmap(f.fileno(), 0)",
        "m[4990:5000] = b'0123456789'",
        'm.close()',
        "d = open('/tmp/b.bin', 'rb').read()",
        'print(len(d), d[4990:], os.path.getsize("/tmp/b.bin"))',
      ].join('\n'));
      ok(r);
      assert.equal(r.stdout, "5000 b'0123456789' 5000\n");
    });

    test("numpy.memmap mode 'r+': np.fromfile sees the writes", async () => {
      const r = await run([
        'import numpy as np',
        "np.zeros(4096, dtype=np.float64).tofile('/tmp/c.npy')",
        "mm = np.memmap('/tmp/c.npy', dtype=np.float64, mode='r+', shape=(4096,))",
        'mm[:] = np.arange(4096) * 0.5; mm.flush(); del mm',
        "a = np.fromfile('/tmp/c.npy', dtype=np.float64)",
        'print(a.shape[0], a.sum(), a[4095])',
      ].join('\n'));
      ok(r);
      assert.equal(r.stdout, '4096 4193280.0 2047.5\n');
    });

    test('a write past EOF through the mapping does not grow the file', async () => {
      const r = await run([
        'import mmap, os',
        "with open('/tmp/d.bin', 'wb') as f: f.write(b'x' * 100)",
        "f = open('/tmp/d.bin', 'r+b'); m = mmap.mmap(f.fileno(), 100)",
        "m[99:100] = b'Z'; m.flush()",
        'import ctypes',
        'buf = (ctypes.c_char * 1).from_buffer(m, 99)',
        "ctypes.memset(ctypes.addressof(buf) + 1, 0x41, 10)  # the rest of the page, past EOF",
        'del buf; m.close(); f.close()',
        "d = open('/tmp/d.bin', 'rb').read()",
        'print(len(d), d[-2:], os.path.getsize("/tmp/d.bin"))',
      ].join('\n'));
      ok(r);
      assert.equal(r.stdout, "100 b'xZ' 100\n");
    });

    test('the harness checks (host/shmap.py) pass in a fork', async () => {
      const r = await run(readFileSync(join(repoRoot, 'native/guest/host/shmap.py'), 'utf8'));
      ok(r);
      assert.equal(r.stdout, 'shmap ok\n');
    });

    test('in a session, a mapping left open is in the file the host and the next exec read', async () => {
      const s = await engine.createSession({ owner: 'a', language: 'python' });
      const r1 = await engine.execSession('a', s.id, { language: 'python', timeoutSeconds: 30, code: [
        'import mmap',
        "with open('/tmp/s.bin', 'wb') as f: f.write(b'-' * 64)",
        "f = open('/tmp/s.bin', 'r+b'); m = mmap.mmap(f.fileno(), 64)",
        "m[0:4] = b'kept'",
      ].join('\n') });
      assert.equal(r1.exitCode, 0, r1.stderr);
      const host = await engine.readFile('a', s.id, '/tmp/s.bin');
      assert.equal(host.subarray(0, 6).toString(), 'kept--');
      const r2 = await engine.execSession('a', s.id, { language: 'python', timeoutSeconds: 30, code: [
        "m[4:8] = b'more'",
        "print(open('/tmp/s.bin', 'rb').read(10))",
      ].join('\n') });
      assert.equal(r2.exitCode, 0, r2.stderr);
      assert.equal(r2.stdout, "b'keptmore--'\n");
      await engine.deleteSession('a', s.id);
    });
  });
}
