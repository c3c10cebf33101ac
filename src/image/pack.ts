// pack.ts — writes a file tree as an image file (native/include/image.h).
// Entries are laid out breadth-first so each directory's children are one
// contiguous run, sorted bytewise; symlink targets are packed first in the
// data area, then each regular file starts on a 4 KiB boundary. Every entry's
// mtime is build_time. The same tree and build_time give the same bytes.
import { createHash } from 'node:crypto';
import { open, rename, rm } from 'node:fs/promises';
import { validateName, type DirNode, type TreeNode } from './tree.js';

export const IMG_MAGIC = 0x31474d4958424b46n; // "FKBXIMG1"
export const IMG_VERSION = 1;
export const HEADER_SIZE = 4096;
export const ENTRY_SIZE = 48;
export const DATA_ALIGN = 4096;
export const IMAGE_MAX = 1024 * 1024 * 1024; // FB_IMAGE_MAX
export const DIGEST_OFF = 72;
export const S_IFDIR = 0o040000;
export const S_IFREG = 0o100000;
export const S_IFLNK = 0o120000;

export interface PackResult { path: string; size: number; entryCount: number; files: number; dirs: number; symlinks: number; digest: string }

interface Slot { node: TreeNode; name: Buffer; parent: number; nameOff: number; mode: number; childCount: number; firstChild: number; dataOff: number; size: number }

const align = (n: number, a: number): number => Math.ceil(n / a) * a;

function layout(root: DirNode): { slots: Slot[]; names: Buffer } {
  const slots: Slot[] = [{ node: root, name: Buffer.alloc(0), parent: 0, nameOff: 0, mode: 0, childCount: 0, firstChild: 0, dataOff: 0, size: 0 }];
  const nameParts: Buffer[] = [];
  let namesSize = 0;
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i]!;
    slot.nameOff = namesSize;
    nameParts.push(slot.name);
    namesSize += slot.name.length;
    const node = slot.node;
    if (node.kind === 'dir') {
      slot.mode = S_IFDIR | 0o755;
      const kids = [...node.children].sort((a, b) => Buffer.compare(a.name, b.name));
      for (let k = 0; k < kids.length; k++) {
        validateName(kids[k]!.name);
        if (k > 0 && kids[k - 1]!.name.equals(kids[k]!.name)) throw new Error(`duplicate name ${kids[k]!.name.toString()}`);
      }
      slot.childCount = kids.length;
      slot.firstChild = kids.length > 0 ? slots.length : 0;
      for (const kid of kids) {
        slots.push({ node: kid.node, name: kid.name, parent: i, nameOff: 0, mode: 0, childCount: 0, firstChild: 0, dataOff: 0, size: 0 });
      }
    } else if (node.kind === 'file') {
      slot.mode = S_IFREG | (node.executable ? 0o755 : 0o644);
      slot.size = node.size;
    } else {
      slot.mode = S_IFLNK | 0o777;
      slot.size = node.target.length;
    }
  }
  if (slots.length > 0xffffffff) throw new Error('too many entries for an image');
  return { slots, names: Buffer.concat(nameParts, namesSize) };
}

/** Packs `root` into `outPath` (written to a temp name, then renamed). */
export async function packImage(root: DirNode, outPath: string, buildTime: number): Promise<PackResult> {
  const { slots, names } = layout(root);
  const entriesOff = HEADER_SIZE;
  const namesOff = entriesOff + slots.length * ENTRY_SIZE;
  const dataOff = align(namesOff + names.length, DATA_ALIGN);
  // Assign data offsets: symlink targets packed, then 4 KiB-aligned regular files.
  let cursor = dataOff;
  for (const s of slots) if (s.node.kind === 'symlink') { s.dataOff = cursor; cursor += s.size; }
  for (const s of slots) {
    if (s.node.kind !== 'file' || s.size === 0) continue;
    cursor = align(cursor, DATA_ALIGN);
    s.dataOff = cursor;
    cursor += s.size;
  }
  const imageSize = align(cursor, DATA_ALIGN);
  if (imageSize > IMAGE_MAX) throw new Error(`image would be ${imageSize} bytes, over the ${IMAGE_MAX}-byte limit`);

  const header = Buffer.alloc(HEADER_SIZE);
  header.writeBigUInt64LE(IMG_MAGIC, 0);
  header.writeUInt32LE(IMG_VERSION, 8);
  header.writeUInt32LE(HEADER_SIZE, 12);
  header.writeBigUInt64LE(BigInt(imageSize), 16);
  header.writeBigUInt64LE(BigInt(slots.length), 24);
  header.writeBigUInt64LE(BigInt(entriesOff), 32);
  header.writeBigUInt64LE(BigInt(namesOff), 40);
  header.writeBigUInt64LE(BigInt(names.length), 48);
  header.writeBigUInt64LE(BigInt(dataOff), 56);
  header.writeBigUInt64LE(BigInt(buildTime), 64);

  const entries = Buffer.alloc(slots.length * ENTRY_SIZE);
  slots.forEach((s, i) => {
    const o = i * ENTRY_SIZE;
    entries.writeUInt32LE(s.nameOff, o);
    entries.writeUInt32LE(s.name.length, o + 4);
    entries.writeUInt32LE(s.mode, o + 8);
    entries.writeUInt32LE(s.childCount, o + 12);
    entries.writeBigUInt64LE(BigInt(s.firstChild), o + 16);
    entries.writeBigUInt64LE(BigInt(s.dataOff), o + 24);
    entries.writeBigUInt64LE(BigInt(s.size), o + 32);
    entries.writeUInt32LE(s.parent, o + 40);
  });

  const tmp = `${outPath}.tmp-${process.pid}`;
  const fh = await open(tmp, 'w');
  const hash = createHash('sha256');
  let pos = 0;
  const put = async (buf: Buffer): Promise<void> => {
    hash.update(buf);
    let done = 0;
    while (done < buf.length) done += (await fh.write(buf, done, buf.length - done, pos + done)).bytesWritten;
    pos += buf.length;
  };
  const padTo = async (off: number): Promise<void> => { if (off > pos) await put(Buffer.alloc(off - pos)); };
  const counts = { files: 0, dirs: 0, symlinks: 0 };
  try {
    await put(header);
    await put(entries);
    await put(names);
    await padTo(dataOff);
    for (const s of slots) {
      if (s.node.kind === 'dir') counts.dirs++;
      if (s.node.kind !== 'symlink') continue;
      counts.symlinks++;
      await put(s.node.target);
    }
    const chunk = Buffer.alloc(1 << 20);
    for (const s of slots) {
      const node = s.node;
      if (node.kind !== 'file') continue;
      counts.files++;
      if (s.size === 0) continue;
      await padTo(s.dataOff);
      if ('bytes' in node.source) await put(node.source.bytes);
      else {
        const src = await open(Buffer.from(node.source.path, 'latin1'), 'r');
        try {
          let left = s.size;
          while (left > 0) {
            const { bytesRead } = await src.read(chunk, 0, Math.min(chunk.length, left), s.size - left);
            if (bytesRead === 0) throw new Error(`${node.source.path} shrank while packing`);
            await put(chunk.subarray(0, bytesRead));
            left -= bytesRead;
          }
        } finally {
          await src.close();
        }
      }
    }
    await padTo(imageSize);
    const digest = hash.digest();
    await fh.write(digest, 0, 32, DIGEST_OFF);
    await fh.sync();
    await fh.close();
    await rename(tmp, outPath);
    return { path: outPath, size: imageSize, entryCount: slots.length, ...counts, digest: digest.toString('hex') };
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
}
