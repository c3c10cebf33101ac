// guest-files.test.ts — file requests served by the guest runtime itself on
// forks of the python template: upload a CSV, an exec reads it and writes a
// result, download and list, remove and check the exec sees it gone, the exact
// change log, a 20 MiB round trip in chunks, paths that try to climb out, the
// overlay quota, and garbage requests. Needs /dev/kvm; else one "skipped:" line.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { runtimeElf } from '../../src/lib/paths.js';
import { setLogLevel } from '../../src/lib/log.js';
import { FB_REQ_EXEC, FB_REQ_FILE_READ, FB_REQ_FILE_STAT, FB_REQ_FILE_WRITE, FB_ST_DONE } from '../../src/vmm/abi.js';
import { Snapshot, probe, type Vm } from '../../src/vmm/vmm.js';
import { buildTemplate } from '../../src/template/build.js';
import { encodePayload } from '../../src/engine/decode.js';
import * as files from '../../src/engine/files.js';

const p = probe();
if (!p.available || !existsSync(runtimeElf)) {
  process.stdout.write(`skipped: guest file request tests: ${!p.available ? p.reason : 'guest runtime not built (npm install)'}\n`);
} else {
  describe('guest file requests', { timeout: 1_800_000 }, () => {
    let snap: Snapshot;
    before(async () => {
      if (!process.env.FORKBOX_LOG_LEVEL) setLogLevel('warn');
      const info = await buildTemplate('python', { onProgress: (l) => process.stderr.write(`# ${l}\n`) });
      snap = new Snapshot(info.memPath, info.statePath);
    }, { timeout: 1_800_000 });
    after(() => snap?.close());

    const exec = async (vm: Vm, code: string): Promise<{ stdout: string; stderr: string; exitCode: number }> => {
      const r = await vm.run({ kind: FB_REQ_EXEC, payload: encodePayload({ code, language: 'python', timeoutSeconds: 30 }),
        timeoutMs: 30_000, memLimit: 256 << 20 });
      assert.equal(r.outcome, 'ok', r.detail);
      assert.equal(r.status, FB_ST_DONE, r.stderr.toString());
      const exitCode = (JSON.parse(r.result.toString()) as { exit_code: number }).exit_code;
      return { stdout: r.stdout.toString(), stderr: r.stderr.toString(), exitCode };
    };
    const ok = async (vm: Vm, code: string): Promise<string> => {
      const r = await exec(vm, code);
      assert.equal(r.exitCode, 0, r.stderr);
      return r.stdout;
    };

    test('upload a CSV, exec reads it and writes a result, download, list, remove, change log', async () => {
      const vm = await snap.fork();
      try {
        const csv = 'x,y\n1,2\n3,4\n5,6\n';
        assert.equal(await files.writeFile(vm, '/work/data.csv', Buffer.from(csv)), csv.length);
        await files.writeFile(vm, '/work/old.txt', Buffer.from('old file\n'));
        await files.writeFile(vm, '/work/mod.txt', Buffer.from('a\n'));
        // the exec's change log starts when the exec does: the uploads above are not in it
        const out = await ok(vm, [
          'import numpy as np, os',
          "a = np.loadtxt('/work/data.csv', delimiter=',', skiprows=1)",
          "open('/work/result.txt', 'w').write(repr(float(a.sum())))",
          "open('/work/mod.txt', 'a').write('bb\\n')",
          "os.remove('/work/old.txt')",
          "print('done', a.shape)",
        ].join('\n'));
        assert.equal(out, 'done (3, 2)\n');
        assert.deepEqual(await files.changes(vm), {
          created: [{ path: '/work/result.txt', size: 4 }],
          modified: [{ path: '/work/mod.txt', size: 5 }],
          deleted: [{ path: '/work/old.txt', size: 9 }],
          truncated: false,
        });
        assert.equal((await files.readFile(vm, '/work/result.txt')).toString(), '21.0');
        const ls = await files.list(vm, '/work');
        assert.deepEqual(ls.map((e) => [e.name, e.type, e.size, e.mode]).sort(),
          [['data.csv', 'file', csv.length, 0o644], ['mod.txt', 'file', 5, 0o644], ['result.txt', 'file', 4, 0o644]]);
        assert.ok(ls.every((e) => Math.abs(e.mtime - Date.now() / 1000) < 3600), 'mtimes are the guest clock');
        assert.equal((await files.stat(vm, '/work')).type, 'dir');

        await files.remove(vm, '/work/data.csv');
        await assert.rejects(files.stat(vm, '/work/data.csv'), (e: { code?: string }) => e.code === 'NotFound');
        assert.equal(await ok(vm, "import os\nprint(os.path.exists('/work/data.csv'), sorted(os.listdir('/work')))"),
          "False ['mod.txt', 'result.txt']\n");
        // a new exec started a new log; file requests after it are in it too
        await files.writeFile(vm, '/work/later.bin', Buffer.alloc(3));
        assert.deepEqual(await files.changes(vm, { reset: true }),
          { created: [{ path: '/work/later.bin', size: 3 }], modified: [], deleted: [], truncated: false });
        assert.deepEqual(await files.changes(vm), { created: [], modified: [], deleted: [], truncated: false });

        // directories: mkdir -p, rename, recursive remove
        await files.mkdir(vm, '/work/a/b/c', { parents: true });
        await files.writeFile(vm, '/work/a/b/c/f.txt', Buffer.from('f'));
        await files.rename(vm, '/work/a', '/work/z');
        assert.equal(await ok(vm, "print(open('/work/z/b/c/f.txt').read())"), 'f\n');
        await assert.rejects(files.remove(vm, '/work/z'), (e: { message?: string }) => /ENOTEMPTY/.test(e.message ?? ''));
        await files.remove(vm, '/work/z', { recursive: true });
        assert.equal(await ok(vm, "import os\nprint(os.path.exists('/work/z'))"), 'False\n');
      } finally {
        vm.close();
      }
    });

    test('a 20 MiB file round trip in chunks; 1 MiB request timings', async () => {
      const vm = await snap.fork();
      try {
        const big = randomBytes(20 << 20);
        const sizes: number[] = [];
        const counting: files.FileVm = { run: (r) => { sizes.push(r.kind); return vm.run(r); } };
        assert.equal(await files.writeFile(counting, '/data/big.bin', big), big.length);
        assert.equal(sizes.filter((k) => k === FB_REQ_FILE_WRITE).length, 3, 'three 8 MiB-area chunks');
        const back = await files.readFile(counting, '/data/big.bin');
        assert.equal(sizes.filter((k) => k === FB_REQ_FILE_READ).length, 2, 'two 16 MiB-area chunks');
        assert.ok(back.equals(big), 'the bytes came back');
        const sha = createHash('sha256').update(big).digest('hex');
        assert.equal(await ok(vm, "import hashlib\nprint(hashlib.sha256(open('/data/big.bin','rb').read()).hexdigest())"), sha + '\n');
        // smaller explicit chunks give the same bytes
        const small = await files.readFile(vm, '/data/big.bin', { chunkBytes: 3 << 20 });
        assert.ok(small.equals(big));

        // measured, printed, never asserted
        const mib = randomBytes(1 << 20);
        const w: number[] = [], rd: number[] = [];
        for (let i = 0; i < 30; i++) {
          let t = process.hrtime.bigint();
          await files.writeFile(vm, '/data/one.bin', mib);
          w.push(Number(process.hrtime.bigint() - t) / 1e6);
          t = process.hrtime.bigint();
          await files.readFile(vm, '/data/one.bin');
          rd.push(Number(process.hrtime.bigint() - t) / 1e6);
        }
        const med = (a: number[]): string => [...a].sort((x, y) => x - y)[a.length >> 1]!.toFixed(2);
        const st: number[] = [];
        for (let i = 0; i < 30; i++) {
          const t = process.hrtime.bigint();
          await files.stat(vm, '/data/one.bin');
          st.push(Number(process.hrtime.bigint() - t) / 1e6);
        }
        process.stdout.write(`# file requests: 1 MiB write p50 ${med(w)} ms, 1 MiB read p50 ${med(rd)} ms, stat p50 ${med(st)} ms\n`);
      } finally {
        vm.close();
      }
    });

    test('paths stay inside the guest tree; bad requests get an errno and the guest goes on', async () => {
      const vm = await snap.fork();
      try {
        const passwd = await ok(vm, "print(open('/etc/passwd').read(), end='')");
        assert.equal((await files.readFile(vm, '/../../etc/passwd')).toString(), passwd);
        assert.equal((await files.readFile(vm, '/tmp/../../../../etc/passwd')).toString(), passwd);
        await files.writeFile(vm, '/../../../escape.txt', Buffer.from('here'));
        assert.equal(await ok(vm, "print(open('/escape.txt').read())"), 'here\n');
        assert.deepEqual((await files.list(vm, '/../..')).map((e) => e.name).sort(),
          (await files.list(vm, '/')).map((e) => e.name).sort());
        // the synthetic trees are not writable by a request
        await assert.rejects(files.writeFile(vm, '/dev/forkbox', Buffer.from('x')), (e: { message?: string }) => /EACCES/.test(e.message ?? ''));
        await assert.rejects(files.writeFile(vm, '/proc/x', Buffer.from('x')), (e: { message?: string }) => /EACCES/.test(e.message ?? ''));
        // the host refuses relative paths; the guest does too when the host is bypassed
        assert.throws(() => files.encodeFileRequest({ kind: FB_REQ_FILE_STAT, path: 'etc/passwd' }), /absolute/);
        const raw = files.encodeFileRequest({ kind: FB_REQ_FILE_STAT, path: '/etc/passwd' });
        raw[56] = 'e'.charCodeAt(0);
        const r1 = await vm.run({ kind: FB_REQ_FILE_STAT, payload: raw, timeoutMs: 5000 });
        assert.equal(files.decodeFileResponse(r1.result).err, 22 /* EINVAL */);
        // garbage of every runtime kind, truncated requests, lengths past the end
        for (let i = 0; i < 200; i++) {
          const kind = 16 + (i % 16);
          const g = randomBytes(i % 3 === 0 ? 10 : 56 + (i * 37) % 300);
          if (i % 2 && g.length >= 56) g.writeUInt32LE(i * 13, 24);
          const r = await vm.run({ kind, payload: g, timeoutMs: 5000 });
          assert.equal(r.outcome, 'ok', r.detail);
          assert.equal(r.status, FB_ST_DONE);
          assert.ok(files.decodeFileResponse(r.result).err > 0, `kind ${kind} garbage #${i} got an errno`);
        }
        assert.equal(await ok(vm, 'print(6 * 7)'), '42\n');
      } finally {
        vm.close();
      }
    });

    test('overlay quota: file requests get ENOSPC, programs get OSError ENOSPC', async () => {
      const vm = await snap.fork();
      try {
        const { used } = await files.setQuota(vm, 0);
        assert.deepEqual(await files.setQuota(vm, used + (1 << 20)), { quota: used + (1 << 20), used });
        await files.writeFile(vm, '/q/half.bin', Buffer.alloc(512 << 10));
        await assert.rejects(files.writeFile(vm, '/q/big.bin', Buffer.alloc(1 << 20)),
          (e: { code?: string; message?: string }) => e.code === 'PayloadTooLarge' && /ENOSPC/.test(e.message ?? ''));
        const r = await exec(vm, [
          'import errno',
          'try:',
          "    open('/q/prog.bin', 'wb').write(b'x' * (1 << 20))",
          "    print('wrote')",
          'except OSError as e:',
          "    print('ENOSPC' if e.errno == errno.ENOSPC else e)",
        ].join('\n'));
        assert.equal(r.stdout, 'ENOSPC\n', r.stderr);
        await files.setQuota(vm, 0);
        await files.writeFile(vm, '/q/big.bin', Buffer.alloc(1 << 20));
        assert.equal((await files.stat(vm, '/q/big.bin')).size, 1 << 20);
      } finally {
        vm.close();
      }
    });
  });
}
