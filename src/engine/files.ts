// files.ts — host side of the file requests the guest runtime serves itself
// (FB_REQ_FILE_*, FB_REQ_CHANGES, FB_REQ_FS_QUOTA; docs/guest-abi.md): encodes
// requests, decodes responses and listing records, and runs them on a Vm,
// splitting reads and writes larger than the mailbox areas into chunks. The
// codec is pure; the helpers need only something with Vm's run().
import { constants as osConstants } from 'node:os';
import { invalidRequest, notFound, payloadTooLarge, sandboxCrashed, type ForkboxError } from '../lib/errors.js';
import {
  FB_CHG_CREATED, FB_CHG_DELETED, FB_CHG_MODIFIED, FB_FILE_APPEND, FB_FILE_ENT_SIZE, FB_FILE_EXCL, FB_FILE_MORE,
  FB_FILE_NOFOLLOW, FB_FILE_OVERFLOW, FB_FILE_PARENTS, FB_FILE_RECURSIVE, FB_FILE_REQ_SIZE, FB_FILE_RESET,
  FB_FILE_RESP_SIZE, FB_FILE_TRUNC, FB_FT_CHR, FB_FT_DIR, FB_FT_LNK, FB_FT_REG, FB_MB_OUT_SIZE, FB_MB_REQ_SIZE,
  FB_REQ_CHANGES, FB_REQ_FILE_LIST, FB_REQ_FILE_MKDIR, FB_REQ_FILE_READ, FB_REQ_FILE_REMOVE, FB_REQ_FILE_RENAME,
  FB_REQ_FILE_STAT, FB_REQ_FILE_WRITE, FB_REQ_FS_QUOTA, FB_REQ_RT_FIRST, FB_REQ_RT_LAST, FB_ST_DONE,
} from '../vmm/abi.js';
import type { Response, RunRequest } from '../vmm/vmm.js';

/** Paths the runtime accepts: absolute, no NUL, under 1024 bytes. */
export const PATH_MAX = 1023;
const VMM_OK = 0;

export interface FileRequest {
  kind: number;
  flags?: number;
  mode?: number;
  offset?: number;
  length?: number;
  path?: string;
  path2?: string;
  quota?: number;
  data?: Buffer;
}

export interface FileResponse {
  /** 0 or a positive errno */
  err: number;
  flags: number;
  size: number;
  length: number;
  cursor: number;
  mode: number;
  mtime: number;
  quota: number;
  used: number;
}

export type FileType = 'file' | 'dir' | 'symlink' | 'device' | 'other';
export type ChangeKind = 'created' | 'modified' | 'deleted';

export interface FileEntry {
  /** listing: the entry's name; change log: its absolute path */
  name: string;
  type: FileType;
  change?: ChangeKind;
  /** permission bits (mode & 0o7777) */
  mode: number;
  size: number;
  /** seconds since the epoch */
  mtime: number;
}

const u64 = (v: number | undefined, name: string): bigint => {
  const x = v ?? 0;
  if (!Number.isSafeInteger(x) || x < 0) throw invalidRequest(`${name} must be a non-negative integer`);
  return BigInt(x);
};

function pathBytes(p: string | undefined, name: string): Buffer {
  if (p === undefined) return Buffer.alloc(0);
  const b = Buffer.from(p, 'utf8');
  if (!p.startsWith('/')) throw invalidRequest(`${name} must be absolute: ${JSON.stringify(p)}`);
  if (p.includes('\0')) throw invalidRequest(`${name} contains NUL`);
  if (b.length > PATH_MAX) throw invalidRequest(`${name} is ${b.length} bytes (max ${PATH_MAX})`);
  return b;
}

/** struct fb_file_req + path + path2 + data, as the REQ area holds it. */
export function encodeFileRequest(r: FileRequest): Buffer {
  if (!Number.isInteger(r.kind) || r.kind < FB_REQ_RT_FIRST || r.kind > FB_REQ_RT_LAST) throw invalidRequest(`not a file request kind: ${r.kind}`);
  const p1 = pathBytes(r.path, 'path'), p2 = pathBytes(r.path2, 'path2');
  const data = r.data ?? Buffer.alloc(0);
  const h = Buffer.alloc(FB_FILE_REQ_SIZE);
  h.writeUInt32LE((r.flags ?? 0) >>> 0, 0);
  h.writeUInt32LE((r.mode ?? 0) & 0o7777, 4);
  h.writeBigUInt64LE(u64(r.offset, 'offset'), 8);
  h.writeBigUInt64LE(r.kind === FB_REQ_FILE_WRITE ? BigInt(data.length) : u64(r.length, 'length'), 16);
  h.writeUInt32LE(p1.length, 24);
  h.writeUInt32LE(p2.length, 28);
  h.writeBigUInt64LE(u64(r.quota, 'quota'), 32);
  const all = Buffer.concat([h, p1, p2, data]);
  if (all.length > FB_MB_REQ_SIZE) throw payloadTooLarge(`file request is ${all.length} bytes (max ${FB_MB_REQ_SIZE})`);
  return all;
}

/** The RESULT area of a runtime-served request. */
export function decodeFileResponse(result: Buffer): FileResponse {
  if (result.length !== FB_FILE_RESP_SIZE) throw sandboxCrashed(`file response is ${result.length} bytes, expected ${FB_FILE_RESP_SIZE}`);
  const n = (off: number): number => Number(result.readBigUInt64LE(off));
  return {
    err: result.readInt32LE(0), flags: result.readUInt32LE(4), size: n(8), length: n(16), cursor: n(24),
    mode: result.readUInt32LE(32), mtime: Number(result.readBigInt64LE(40)), quota: n(48), used: n(56),
  };
}

const TYPES: Record<number, FileType> = { [FB_FT_REG]: 'file', [FB_FT_DIR]: 'dir', [FB_FT_LNK]: 'symlink', [FB_FT_CHR]: 'device' };
const CHANGES: Record<number, ChangeKind> = { [FB_CHG_CREATED]: 'created', [FB_CHG_MODIFIED]: 'modified', [FB_CHG_DELETED]: 'deleted' };

/** `count` struct fb_file_ent records from the OUT area; every length is checked. */
export function decodeEntries(out: Buffer, count: number): FileEntry[] {
  const res: FileEntry[] = [];
  let o = 0;
  for (let i = 0; i < count; i++) {
    if (o + FB_FILE_ENT_SIZE > out.length) throw sandboxCrashed(`file listing: record ${i} past the end of the output`);
    const reclen = out.readUInt32LE(o), nl = out.readUInt16LE(o + 4);
    if (reclen < FB_FILE_ENT_SIZE + nl || reclen % 8 !== 0 || o + reclen > out.length)
      throw sandboxCrashed(`file listing: record ${i} has a bad length`);
    const change = CHANGES[out[o + 7]!];
    res.push({
      name: out.toString('utf8', o + FB_FILE_ENT_SIZE, o + FB_FILE_ENT_SIZE + nl),
      type: TYPES[out[o + 6]!] ?? 'other',
      ...(change ? { change } : {}),
      mode: out.readUInt32LE(o + 8) & 0o7777,
      size: Number(out.readBigUInt64LE(o + 16)),
      mtime: Number(out.readBigInt64LE(o + 24)),
    });
    o += reclen;
  }
  return res;
}

const errnoName = (err: number): string =>
  Object.entries(osConstants.errno).find(([, v]) => v === err)?.[0] ?? `errno ${err}`;

/** A guest errno as a catalog error (the errno name leads the message). */
export function fileError(err: number, what: string): ForkboxError {
  const name = errnoName(err);
  const msg = `${name}: ${what}`;
  if (name === 'ENOENT') return notFound(msg);
  if (name === 'ENOSPC' || name === 'EFBIG') return payloadTooLarge(`${msg} (the sandbox's file quota is used up)`);
  return invalidRequest(msg);
}

/** What the helpers need of a Vm. */
export interface FileVm { run(req: RunRequest): Promise<Response> }
export interface FileOpts { timeoutMs?: number }

/** Runs one request; a crash or protocol slip throws, a guest errno is in resp.err. */
export async function runFileRequest(vm: FileVm, req: FileRequest, opts: FileOpts & { outCap?: number } = {}):
  Promise<{ resp: FileResponse; out: Buffer }> {
  const r = await vm.run({ kind: req.kind, payload: encodeFileRequest(req), timeoutMs: opts.timeoutMs ?? 10_000,
    ...(opts.outCap ? { outCap: opts.outCap } : {}) });
  if (r.outcomeCode !== VMM_OK || r.status !== FB_ST_DONE)
    throw sandboxCrashed(`file request ${req.kind} failed: ${r.outcome} (status ${r.status}) ${r.detail}`.trim());
  return { resp: decodeFileResponse(r.result), out: r.stdout };
}

async function must(vm: FileVm, req: FileRequest, what: string, opts: FileOpts & { outCap?: number } = {}) {
  const x = await runFileRequest(vm, req, opts);
  if (x.resp.err) throw fileError(x.resp.err, what);
  return x;
}

export interface WriteOptions extends FileOpts {
  mode?: number;
  /** create missing parent directories (default true) */
  parents?: boolean;
  append?: boolean;
  exclusive?: boolean;
  /** bytes per request (default: as many as the REQ area holds) */
  chunkBytes?: number;
}

/** Writes (replaces, or appends to) a file of any size in REQ-area chunks; returns its size. */
export async function writeFile(vm: FileVm, path: string, data: Buffer, o: WriteOptions = {}): Promise<number> {
  const room = FB_MB_REQ_SIZE - FB_FILE_REQ_SIZE - Buffer.byteLength(path);
  const chunk = Math.min(o.chunkBytes ?? room, room);
  if (!(chunk >= 1)) throw invalidRequest('chunkBytes must be at least 1');
  const base = ((o.parents ?? true) ? FB_FILE_PARENTS : 0) | (o.exclusive ? FB_FILE_EXCL : 0);
  let size = 0, off = 0;
  do {
    const part = data.subarray(off, off + chunk);
    const first = off === 0;
    const flags = base & (first ? ~0 : ~FB_FILE_EXCL) | (o.append ? FB_FILE_APPEND : first ? FB_FILE_TRUNC : 0);
    const { resp } = await must(vm, { kind: FB_REQ_FILE_WRITE, flags, mode: o.mode ?? 0, offset: off, path, data: part },
      `write ${path}`, o);
    size = resp.size;
    off += part.length;
  } while (off < data.length);
  return size;
}

/** Reads a whole file in OUT-area chunks (limit: maxBytes, default 1 GiB). */
export async function readFile(vm: FileVm, path: string, o: FileOpts & { maxBytes?: number; chunkBytes?: number } = {}): Promise<Buffer> {
  const chunk = Math.min(o.chunkBytes ?? FB_MB_OUT_SIZE, FB_MB_OUT_SIZE);
  const max = o.maxBytes ?? 1 << 30;
  const parts: Buffer[] = [];
  let off = 0, size = 0;
  do {
    const { resp, out } = await must(vm, { kind: FB_REQ_FILE_READ, offset: off, length: chunk, path }, `read ${path}`,
      { ...o, outCap: chunk });
    size = resp.size;
    if (size > max) throw payloadTooLarge(`${path} is ${size} bytes (max ${max})`);
    if (out.length === 0) break; // the file shrank under us
    parts.push(Buffer.from(out));
    off += out.length;
  } while (off < size);
  return Buffer.concat(parts);
}

export interface FileStat { type: FileType; mode: number; size: number; mtime: number }
const typeOf = (mode: number): FileType =>
  ({ 0o100000: 'file', 0o040000: 'dir', 0o120000: 'symlink', 0o020000: 'device' } as Record<number, FileType>)[mode & 0o170000] ?? 'other';

export async function stat(vm: FileVm, path: string, o: FileOpts & { noFollow?: boolean } = {}): Promise<FileStat> {
  const { resp } = await must(vm, { kind: FB_REQ_FILE_STAT, flags: o.noFollow ? FB_FILE_NOFOLLOW : 0, path }, `stat ${path}`, o);
  return { type: typeOf(resp.mode), mode: resp.mode & 0o7777, size: resp.size, mtime: resp.mtime };
}

/** A whole directory, paged with the runtime's cursor (pageEntries per request, 0 = as many as fit). */
export async function list(vm: FileVm, path: string, o: FileOpts & { pageEntries?: number; outCap?: number } = {}): Promise<FileEntry[]> {
  const all: FileEntry[] = [];
  let cursor = 0;
  for (;;) {
    const { resp, out } = await must(vm, { kind: FB_REQ_FILE_LIST, offset: cursor, length: o.pageEntries ?? 0, path },
      `list ${path}`, o);
    all.push(...decodeEntries(out, resp.length));
    if (!(resp.flags & FB_FILE_MORE)) return all;
    if (resp.length === 0) throw sandboxCrashed(`list ${path}: an entry does not fit the output area`);
    cursor = resp.cursor;
  }
}

export async function mkdir(vm: FileVm, path: string, o: FileOpts & { parents?: boolean; mode?: number } = {}): Promise<void> {
  await must(vm, { kind: FB_REQ_FILE_MKDIR, flags: o.parents ? FB_FILE_PARENTS : 0, mode: o.mode ?? 0, path }, `mkdir ${path}`, o);
}

export async function remove(vm: FileVm, path: string, o: FileOpts & { recursive?: boolean } = {}): Promise<void> {
  await must(vm, { kind: FB_REQ_FILE_REMOVE, flags: o.recursive ? FB_FILE_RECURSIVE : 0, path }, `remove ${path}`, o);
}

export async function rename(vm: FileVm, from: string, to: string,
  o: FileOpts & { parents?: boolean; noReplace?: boolean } = {}): Promise<void> {
  const flags = (o.parents ? FB_FILE_PARENTS : 0) | (o.noReplace ? FB_FILE_EXCL : 0);
  await must(vm, { kind: FB_REQ_FILE_RENAME, flags, path: from, path2: to }, `rename ${from} -> ${to}`, o);
}

export interface ChangeLog {
  created: { path: string; size: number }[];
  modified: { path: string; size: number }[];
  deleted: { path: string; size: number }[];
  /** the guest's log overflowed: some changes are missing */
  truncated: boolean;
}

/** Files created, modified and deleted since the last exec began (reset: clear the log after). */
export async function changes(vm: FileVm, o: FileOpts & { reset?: boolean } = {}): Promise<ChangeLog> {
  const log: ChangeLog = { created: [], modified: [], deleted: [], truncated: false };
  let cursor = 0;
  for (;;) {
    const { resp, out } = await must(vm, { kind: FB_REQ_CHANGES, offset: cursor }, 'changes', o);
    for (const e of decodeEntries(out, resp.length)) if (e.change) log[e.change].push({ path: e.name, size: e.size });
    if (resp.flags & FB_FILE_OVERFLOW) log.truncated = true;
    if (!(resp.flags & FB_FILE_MORE)) break;
    if (resp.length === 0) throw sandboxCrashed('changes: an entry does not fit the output area');
    cursor = resp.cursor;
  }
  if (o.reset) await must(vm, { kind: FB_REQ_CHANGES, flags: FB_FILE_RESET, length: 1 }, 'changes', o);
  return log;
}

/** Sets the overlay quota (bytes, 0 = none); it stays in the guest (and its forks) until changed. */
export async function setQuota(vm: FileVm, bytes: number, o: FileOpts = {}): Promise<{ quota: number; used: number }> {
  const { resp } = await must(vm, { kind: FB_REQ_FS_QUOTA, quota: bytes }, 'quota', o);
  return { quota: resp.quota, used: resp.used };
}

