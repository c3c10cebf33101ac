// reader.ts — reads an image file (native/include/image.h) without trusting
// it: the header and every entry are bounds-checked against the file size
// before use. Lookup is a binary search per path component, like the guest's
// vfs. Used by the tests, `forkbox image ls` and the builder's self-check.
import { createHash } from 'node:crypto';
import { closeSync, fstatSync, mkdirSync, openSync, readSync, symlinkSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { validateName } from './tree.js';
import { DIGEST_OFF, ENTRY_SIZE, HEADER_SIZE, IMG_MAGIC, IMG_VERSION, S_IFDIR, S_IFLNK, S_IFREG } from './pack.js';

export interface ImageHeader {
  imageSize: number; entryCount: number; entriesOff: number; namesOff: number; namesSize: number;
  dataOff: number; buildTime: number; digest: string;
}
export interface ImageEntry {
  index: number; name: Buffer; mode: number; childCount: number; firstChild: number;
  dataOff: number; size: number; parent: number;
}
export type EntryKind = 'dir' | 'file' | 'symlink';

const S_IFMT = 0o170000;

function isPlainName(name: Buffer): boolean {
  try {
    validateName(name);
    return true;
  } catch {
    return false;
  }
}
const MAX_SYMLINKS = 40;

export function entryKind(e: ImageEntry): EntryKind {
  const t = e.mode & S_IFMT;
  if (t === S_IFDIR) return 'dir';
  if (t === S_IFREG) return 'file';
  if (t === S_IFLNK) return 'symlink';
  throw new Error(`entry ${e.index}: bad mode ${e.mode.toString(8)}`);
}

export class ImageReader {
  readonly header: ImageHeader;
  private fd: number;

  constructor(readonly path: string) {
    this.fd = openSync(path, 'r');
    try {
      this.header = this.parseHeader(fstatSync(this.fd).size);
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  private read(off: number, len: number): Buffer {
    if (off < 0 || len < 0 || off + len > this.header.imageSize) throw new Error(`read [${off}, +${len}) outside the image`);
    const buf = Buffer.alloc(len);
    let done = 0;
    while (done < len) {
      const n = readSync(this.fd, buf, done, len - done, off + done);
      if (n === 0) throw new Error('image file is truncated');
      done += n;
    }
    return buf;
  }

  private parseHeader(fileSize: number): ImageHeader {
    if (fileSize < HEADER_SIZE) throw new Error('not an image: shorter than its header');
    const h = Buffer.alloc(HEADER_SIZE);
    readSync(this.fd, h, 0, HEADER_SIZE, 0);
    if (h.readBigUInt64LE(0) !== IMG_MAGIC) throw new Error('not an image: bad magic');
    if (h.readUInt32LE(8) !== IMG_VERSION) throw new Error(`unsupported image version ${h.readUInt32LE(8)}`);
    if (h.readUInt32LE(12) !== HEADER_SIZE) throw new Error('bad header size');
    const num = (off: number): number => {
      const v = h.readBigUInt64LE(off);
      if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`header field at ${off} out of range`);
      return Number(v);
    };
    const hdr: ImageHeader = {
      imageSize: num(16), entryCount: num(24), entriesOff: num(32), namesOff: num(40), namesSize: num(48),
      dataOff: num(56), buildTime: num(64), digest: h.subarray(DIGEST_OFF, DIGEST_OFF + 32).toString('hex'),
    };
    if (hdr.imageSize !== fileSize) throw new Error(`image_size ${hdr.imageSize} != file size ${fileSize}`);
    if (hdr.entryCount < 1) throw new Error('image has no root entry');
    if (hdr.entriesOff < HEADER_SIZE || hdr.entriesOff + hdr.entryCount * ENTRY_SIZE > fileSize) throw new Error('entries outside the image');
    if (hdr.namesOff + hdr.namesSize > fileSize) throw new Error('names outside the image');
    if (hdr.dataOff > fileSize) throw new Error('data outside the image');
    return hdr;
  }

  entry(index: number): ImageEntry {
    const h = this.header;
    if (!Number.isInteger(index) || index < 0 || index >= h.entryCount) throw new Error(`entry index ${index} out of range`);
    const b = this.read(h.entriesOff + index * ENTRY_SIZE, ENTRY_SIZE);
    const nameOff = b.readUInt32LE(0);
    const nameLen = b.readUInt32LE(4);
    if (nameOff + nameLen > h.namesSize) throw new Error(`entry ${index}: name outside the names blob`);
    const e: ImageEntry = {
      index, name: nameLen ? this.read(h.namesOff + nameOff, nameLen) : Buffer.alloc(0), mode: b.readUInt32LE(8),
      childCount: b.readUInt32LE(12), firstChild: Number(b.readBigUInt64LE(16)), dataOff: Number(b.readBigUInt64LE(24)),
      size: Number(b.readBigUInt64LE(32)), parent: b.readUInt32LE(40),
    };
    if (index === 0 ? e.name.length !== 0 : !isPlainName(e.name)) throw new Error(`entry ${index}: bad name`);
    const kind = entryKind(e);
    // Children come after their parent (breadth-first), so walks always terminate.
    if (kind === 'dir' && e.childCount > 0 && (e.firstChild <= index || e.firstChild + e.childCount > h.entryCount)) {
      throw new Error(`entry ${index}: children outside the entry table`);
    }
    if (kind !== 'dir' && e.size > 0 && (e.dataOff < h.dataOff || e.dataOff + e.size > h.imageSize)) {
      throw new Error(`entry ${index}: data outside the image`);
    }
    if (e.parent >= h.entryCount) throw new Error(`entry ${index}: parent out of range`);
    return e;
  }

  root(): ImageEntry { return this.entry(0); }

  children(dir: ImageEntry): ImageEntry[] {
    if (entryKind(dir) !== 'dir') throw new Error(`${dir.name.toString()} is not a directory`);
    const out: ImageEntry[] = [];
    for (let i = 0; i < dir.childCount; i++) {
      const c = this.entry(dir.firstChild + i);
      if (c.parent !== dir.index) throw new Error(`entry ${c.index}: parent is ${c.parent}, listed under ${dir.index}`);
      out.push(c);
    }
    return out;
  }

  /** Binary search for `name` among `dir`'s children. */
  child(dir: ImageEntry, name: Buffer): ImageEntry | undefined {
    if (entryKind(dir) !== 'dir') return undefined;
    let lo = 0;
    let hi = dir.childCount;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const e = this.entry(dir.firstChild + mid);
      const c = Buffer.compare(e.name, name);
      if (c === 0) return e;
      if (c < 0) lo = mid + 1;
      else hi = mid;
    }
    return undefined;
  }

  /** Reads a regular file's contents or a symlink's target. */
  data(e: ImageEntry): Buffer {
    if (entryKind(e) === 'dir') throw new Error('a directory has no data');
    return e.size === 0 ? Buffer.alloc(0) : this.read(e.dataOff, e.size);
  }

  /** Absolute path of an entry, rebuilt through the parent links. */
  pathOf(e: ImageEntry): string {
    const parts: string[] = [];
    let cur = e;
    for (let depth = 0; cur.index !== 0; depth++) {
      if (depth > 4096) throw new Error('parent chain loops');
      parts.push(cur.name.toString());
      cur = this.entry(cur.parent);
    }
    return '/' + parts.reverse().join('/');
  }

  /**
   * Looks up an absolute path. Symlinks in the middle of the path are always
   * followed; the last component only when `follow` is set (stat vs lstat).
   */
  lookup(path: string, follow = false): ImageEntry | undefined {
    const pending = path.split('/').filter((p) => p.length > 0 && p !== '.');
    const stack: ImageEntry[] = [this.root()];
    let links = 0;
    while (pending.length > 0) {
      const part = pending.shift()!;
      const cur = stack[stack.length - 1]!;
      if (part === '..') { if (stack.length > 1) stack.pop(); continue; }
      const next = this.child(cur, Buffer.from(part));
      if (!next) return undefined;
      if (entryKind(next) === 'symlink' && (pending.length > 0 || follow)) {
        if (++links > MAX_SYMLINKS) throw new Error(`too many symlinks resolving ${path}`);
        const target = this.data(next).toString();
        if (target.startsWith('/')) stack.splice(1);
        pending.unshift(...target.split('/').filter((p) => p.length > 0 && p !== '.'));
        continue;
      }
      stack.push(next);
    }
    return stack[stack.length - 1];
  }

  /** Recomputes the digest (sha256 with the digest field zeroed) and compares. */
  verifyDigest(): boolean {
    const hash = createHash('sha256');
    const chunk = 1 << 20;
    for (let off = 0; off < this.header.imageSize; off += chunk) {
      const b = this.read(off, Math.min(chunk, this.header.imageSize - off));
      if (off === 0) b.fill(0, DIGEST_OFF, DIGEST_OFF + 32);
      hash.update(b);
    }
    return hash.digest('hex') === this.header.digest;
  }

  /** Visits every entry depth-first with its absolute path. */
  *walk(dir: ImageEntry = this.root(), prefix = ''): Generator<{ path: string; entry: ImageEntry }> {
    for (const c of this.children(dir)) {
      const path = `${prefix}/${c.name.toString()}`;
      yield { path, entry: c };
      if (entryKind(c) === 'dir') yield* this.walk(c, path);
    }
  }

  /** Writes the tree out under `dest` (which must exist). */
  unpack(dest: string): void {
    for (const { path, entry } of this.walk()) {
      const out = join(dest, path);
      const kind = entryKind(entry);
      if (kind === 'dir') mkdirSync(out);
      else if (kind === 'symlink') symlinkSync(this.data(entry), out);
      else {
        writeFileSync(out, this.data(entry));
        chmodSync(out, entry.mode & 0o777);
      }
    }
  }
}
