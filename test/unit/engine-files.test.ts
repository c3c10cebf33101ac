// engine-files.test.ts — the host codec of the runtime's file requests
// (src/engine/files.ts) without a VM: the constants and struct sizes against
// abi.h, the request layout, response and record decoding with hostile
// lengths, errno mapping, and the chunking of writeFile/readFile/list against
// a fake VM that keeps files in a Map.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../src/lib/paths.js';
import * as abi from '../../src/vmm/abi.js';
import * as files from '../../src/engine/files.js';
import type { Response, RunRequest } from '../../src/vmm/vmm.js';

const h = readFileSync(join(repoRoot, 'native', 'include', 'abi.h'), 'utf8');

test('file request constants and struct sizes match abi.h', () => {
  const names = Object.keys(abi).filter((k) => /^FB_(REQ_(FILE_|RT_|CHANGES|FS_)|FILE_(?!REQ_SIZE|RESP_SIZE|ENT_SIZE)|FT_|CHG_)/.test(k));
  assert.equal(names.length, 28, names.join(" "));
  for (const name of names) {
    const m = new RegExp(`#define\\s+${name}\\s+\\(?([0-9xXa-fA-F]+)u?`).exec(h);
    assert.ok(m, `${name} defined in abi.h`);
    assert.equal((abi as Record<string, unknown>)[name], Number(m[1]), name);
  }
  const size = (s: string): number => Number(new RegExp(`sizeof\\(struct ${s}\\) == (\\d+)`).exec(h)?.[1]);
  assert.equal(abi.FB_FILE_REQ_SIZE, size('fb_file_req'));
  assert.equal(abi.FB_FILE_RESP_SIZE, size('fb_file_resp'));
  assert.equal(abi.FB_FILE_ENT_SIZE, size('fb_file_ent'));
});

test('encodeFileRequest: header, path, path2, data', () => {
  const b = files.encodeFileRequest({ kind: abi.FB_REQ_FILE_RENAME, flags: abi.FB_FILE_PARENTS, path: '/a', path2: '/bé' });
  assert.equal(b.length, 56 + 2 + 4);
  assert.equal(b.readUInt32LE(0), abi.FB_FILE_PARENTS);
  assert.equal(b.readUInt32LE(24), 2);
  assert.equal(b.readUInt32LE(28), 4);
  assert.equal(b.subarray(56).toString(), '/a/bé');
  const w = files.encodeFileRequest({ kind: abi.FB_REQ_FILE_WRITE, mode: 0o100755, offset: 7, path: '/f', data: Buffer.from('xyz') });
  assert.equal(w.readUInt32LE(4), 0o755, 'only permission bits');
  assert.equal(w.readBigUInt64LE(8), 7n);
  assert.equal(w.readBigUInt64LE(16), 3n, 'length is the data length');
  assert.equal(w.subarray(58).toString(), 'xyz');
  const q = files.encodeFileRequest({ kind: abi.FB_REQ_FS_QUOTA, quota: 2 ** 40 });
  assert.equal(q.readBigUInt64LE(32), 2n ** 40n);
  const bad = (r: files.FileRequest, re: RegExp): void => assert.throws(() => files.encodeFileRequest(r), re);
  bad({ kind: abi.FB_REQ_EXEC, path: '/x' }, /not a file request kind/);
  bad({ kind: abi.FB_REQ_FILE_STAT, path: 'x' }, /absolute/);
  bad({ kind: abi.FB_REQ_FILE_STAT, path: '/x\0y' }, /NUL/);
  bad({ kind: abi.FB_REQ_FILE_STAT, path: '/' + 'a'.repeat(1023) }, /max 1023/);
  bad({ kind: abi.FB_REQ_FILE_READ, path: '/x', offset: -1 }, /non-negative/);
  assert.throws(() => files.encodeFileRequest({ kind: abi.FB_REQ_FILE_WRITE, path: '/x', data: Buffer.alloc(abi.FB_MB_REQ_SIZE) }),
    (e: { code?: string }) => e.code === 'PayloadTooLarge');
});

const resp = (f: Partial<files.FileResponse>): Buffer => {
  const b = Buffer.alloc(abi.FB_FILE_RESP_SIZE);
  b.writeInt32LE(f.err ?? 0, 0); b.writeUInt32LE(f.flags ?? 0, 4);
  b.writeBigUInt64LE(BigInt(f.size ?? 0), 8); b.writeBigUInt64LE(BigInt(f.length ?? 0), 16);
  b.writeBigUInt64LE(BigInt(f.cursor ?? 0), 24); b.writeUInt32LE(f.mode ?? 0, 32);
  b.writeBigInt64LE(BigInt(f.mtime ?? 0), 40); b.writeBigUInt64LE(BigInt(f.quota ?? 0), 48);
  b.writeBigUInt64LE(BigInt(f.used ?? 0), 56);
  return b;
};
const ent = (name: string, type: number, change: number, size: number): Buffer => {
  const nb = Buffer.from(name);
  const b = Buffer.alloc((32 + nb.length + 7) & ~7);
  b.writeUInt32LE(b.length, 0); b.writeUInt16LE(nb.length, 4); b[6] = type; b[7] = change;
  b.writeUInt32LE(0o100644, 8); b.writeBigUInt64LE(BigInt(size), 16); b.writeBigInt64LE(1700000000n, 24);
  nb.copy(b, 32);
  return b;
};

test('decodeFileResponse and decodeEntries check every length', () => {
  const r = files.decodeFileResponse(resp({ err: 2, size: 5, cursor: 2 ** 33, mtime: -1, used: 10 }));
  assert.deepEqual(r, { err: 2, flags: 0, size: 5, length: 0, cursor: 2 ** 33, mode: 0, mtime: -1, quota: 0, used: 10 });
  assert.throws(() => files.decodeFileResponse(Buffer.alloc(10)), (e: { code?: string }) => e.code === 'SandboxCrashed');
  const out = Buffer.concat([ent('a.txt', abi.FB_FT_REG, 0, 3), ent('/d/b', abi.FB_FT_DIR, abi.FB_CHG_DELETED, 0)]);
  assert.deepEqual(files.decodeEntries(out, 2), [
    { name: 'a.txt', type: 'file', mode: 0o644, size: 3, mtime: 1700000000 },
    { name: '/d/b', type: 'dir', change: 'deleted', mode: 0o644, size: 0, mtime: 1700000000 },
  ]);
  const crash = (e: { code?: string }): boolean => e.code === 'SandboxCrashed';
  assert.throws(() => files.decodeEntries(out, 3), crash);
  const badLen = Buffer.from(out); badLen.writeUInt32LE(12, 0);
  assert.throws(() => files.decodeEntries(badLen, 1), crash);
  const longName = Buffer.from(out); longName.writeUInt16LE(500, 4);
  assert.throws(() => files.decodeEntries(longName, 1), crash);
});

test('guest errnos map to catalog errors', () => {
  assert.equal(files.fileError(2, 'read /x').code, 'NotFound');
  assert.match(files.fileError(2, 'read /x').message, /^ENOENT: read \/x/);
  assert.equal(files.fileError(28, 'write /x').code, 'PayloadTooLarge');
  assert.equal(files.fileError(21, 'read /d').code, 'InvalidRequest');
});

/** A fake VM holding files in a Map, speaking the wire format. */
function fakeVm(outSize = abi.FB_MB_OUT_SIZE): { vm: files.FileVm; store: Map<string, Buffer>; reqs: RunRequest[] } {
  const store = new Map<string, Buffer>();
  const reqs: RunRequest[] = [];
  const vm: files.FileVm = {
    run: async (req: RunRequest): Promise<Response> => {
      reqs.push(req);
      const p = req.payload as Buffer;
      const flags = p.readUInt32LE(0), off = Number(p.readBigUInt64LE(8)), len = Number(p.readBigUInt64LE(16));
      const pl = p.readUInt32LE(24), path = p.toString('utf8', 56, 56 + pl), data = p.subarray(56 + pl);
      let r: Partial<files.FileResponse> = {}, stdout: Buffer = Buffer.alloc(0);
      const cur = store.get(path);
      if (req.kind === abi.FB_REQ_FILE_WRITE) {
        let f = flags & abi.FB_FILE_TRUNC ? Buffer.alloc(0) : cur ?? Buffer.alloc(0);
        const at = flags & abi.FB_FILE_APPEND ? f.length : off;
        if (at + data.length > f.length) f = Buffer.concat([f, Buffer.alloc(at + data.length - f.length)]);
        data.copy(f, at);
        store.set(path, f);
        r = { size: f.length };
      } else if (req.kind === abi.FB_REQ_FILE_READ) {
        if (!cur) r = { err: 2 };
        else {
          const cap = Math.min(req.outCap || outSize, outSize);
          stdout = cur.subarray(off, off + Math.min(len || cap, cap));
          r = { size: cur.length, length: stdout.length };
        }
      } else if (req.kind === abi.FB_REQ_FILE_LIST) {
        const names = [...store.keys()].sort();
        const start = off, page = names.slice(start, start + 2);
        stdout = Buffer.concat(page.map((n) => ent(n.slice(1), abi.FB_FT_REG, 0, store.get(n)!.length)));
        r = { length: page.length, cursor: start + page.length, flags: start + page.length < names.length ? abi.FB_FILE_MORE : 0 };
      }
      return { outcome: 'ok', outcomeCode: 0, status: abi.FB_ST_DONE, exitCode: 0, outFlags: 0, result: resp(r), stdout,
        stderr: Buffer.alloc(0), faultVector: 0, faultError: 0, faultRip: 0, faultCr2: 0, exitReason: 0, ioPort: 0,
        mmioAddr: 0, detail: '', exits: 1, runNs: 1, arenaUsed: 0, arenaPeak: 0 };
    },
  };
  return { vm, store, reqs };
}

test('writeFile and readFile split big files into mailbox-sized chunks', async () => {
  const { vm, store, reqs } = fakeVm();
  const big = Buffer.alloc(20 << 20, 7);
  big.writeUInt32LE(0xdeadbeef, (20 << 20) - 4);
  assert.equal(await files.writeFile(vm, '/big', big), big.length);
  const writes = reqs.filter((r) => r.kind === abi.FB_REQ_FILE_WRITE).map((r) => (r.payload as Buffer));
  assert.equal(writes.length, 3);
  assert.ok(writes.every((w) => w.length <= abi.FB_MB_REQ_SIZE));
  assert.deepEqual(writes.map((w) => w.readUInt32LE(0)), [abi.FB_FILE_PARENTS | abi.FB_FILE_TRUNC, abi.FB_FILE_PARENTS, abi.FB_FILE_PARENTS]);
  assert.ok(store.get('/big')!.equals(big));
  reqs.length = 0;
  assert.ok((await files.readFile(vm, '/big')).equals(big));
  assert.equal(reqs.length, 2);
  assert.ok((await files.readFile(vm, '/big', { chunkBytes: 1 << 20 })).equals(big));
  await assert.rejects(files.readFile(vm, '/big', { maxBytes: 1000 }), (e: { code?: string }) => e.code === 'PayloadTooLarge');
  await assert.rejects(files.readFile(vm, '/none'), (e: { code?: string }) => e.code === 'NotFound');
  // an empty file is one request; append keeps what is there
  assert.equal(await files.writeFile(vm, '/e', Buffer.alloc(0)), 0);
  await files.writeFile(vm, '/e', Buffer.from('ab'), { append: true });
  await files.writeFile(vm, '/e', Buffer.from('cd'), { append: true });
  assert.equal((await files.readFile(vm, '/e')).toString(), 'abcd');
});

test('list pages on with the cursor until MORE is clear', async () => {
  const { vm, store } = fakeVm();
  for (const n of ['a', 'b', 'c', 'd', 'e']) store.set('/' + n, Buffer.from(n));
  const ls = await files.list(vm, '/');
  assert.deepEqual(ls.map((e) => e.name), ['a', 'b', 'c', 'd', 'e']);
});
