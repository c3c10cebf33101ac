// tree.ts — the in-memory file tree the packer writes: directories, regular
// files (content on disk or in memory) and symlinks, with names as raw bytes.
// walkTree() reads a staging directory without following symlinks and skips
// special files (devices, fifos, sockets); validateName() is the one rule for
// what may be a name in an image.
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

export type TreeNode = DirNode | FileNode | SymlinkNode;
export interface DirNode { kind: 'dir'; children: TreeChild[] }
export interface FileNode {
  kind: 'file';
  /** Content: a path on disk (read at pack time) or bytes. */
  source: { path: string } | { bytes: Buffer };
  size: number;
  executable: boolean;
}
export interface SymlinkNode { kind: 'symlink'; target: Buffer }
export interface TreeChild { name: Buffer; node: TreeNode }

export const NAME_MAX = 255;

/** Throws unless `name` is a plain name: non-empty, not . or .., no NUL or '/', <= 255 bytes. */
export function validateName(name: Buffer): void {
  const shown = JSON.stringify(name.toString('latin1'));
  if (name.length === 0) throw new Error('empty file name');
  if (name.length > NAME_MAX) throw new Error(`file name longer than ${NAME_MAX} bytes: ${shown}`);
  if (name.includes(0)) throw new Error(`file name contains NUL: ${shown}`);
  if (name.includes(0x2f)) throw new Error(`file name contains '/': ${shown}`);
  if (name.equals(Buffer.from('.')) || name.equals(Buffer.from('..'))) throw new Error(`file name ${shown} is not a plain name`);
}

export interface WalkStats { skipped: string[] }

/** Reads the tree under `root` (not following symlinks). Special files are skipped and listed in stats. */
export async function walkTree(root: string, stats: WalkStats = { skipped: [] }): Promise<DirNode> {
  const st = await lstat(root);
  if (!st.isDirectory()) throw new Error(`${root} is not a directory`);
  return walkDir(root, stats);
}

async function walkDir(dir: string, stats: WalkStats): Promise<DirNode> {
  const names = await readdir(dir, { encoding: 'buffer' });
  const children: TreeChild[] = [];
  for (const name of names) {
    validateName(name);
    // Paths are joined as latin1 strings so every byte of a name survives the round trip.
    const p = join(dir, name.toString('latin1'));
    const pb = Buffer.from(p, 'latin1');
    const st = await lstat(pb);
    if (st.isDirectory()) children.push({ name, node: await walkDir(p, stats) });
    else if (st.isFile()) {
      children.push({ name, node: { kind: 'file', source: { path: p }, size: st.size, executable: (st.mode & 0o111) !== 0 } });
    } else if (st.isSymbolicLink()) {
      children.push({ name, node: { kind: 'symlink', target: await readlink(pb, { encoding: 'buffer' }) } });
    } else stats.skipped.push(p);
  }
  return { kind: 'dir', children };
}

/** Finds or creates the directory at `parts` under `root`; throws if a non-directory is in the way. */
export function ensureDir(root: DirNode, parts: string[]): DirNode {
  let cur = root;
  for (const part of parts) {
    const name = Buffer.from(part);
    validateName(name);
    let child = cur.children.find((c) => c.name.equals(name));
    if (!child) {
      child = { name, node: { kind: 'dir', children: [] } };
      cur.children.push(child);
    }
    if (child.node.kind !== 'dir') throw new Error(`${parts.join('/')}: ${part} is not a directory`);
    cur = child.node;
  }
  return cur;
}

/** Adds (or replaces) an in-memory file at an absolute image path. */
export function addFile(root: DirNode, absPath: string, bytes: Buffer, executable = false): void {
  const parts = absPath.split('/').filter((p) => p.length > 0);
  const leaf = parts.pop();
  if (leaf === undefined) throw new Error(`not a file path: ${absPath}`);
  const dir = ensureDir(root, parts);
  const name = Buffer.from(leaf);
  validateName(name);
  const node: FileNode = { kind: 'file', source: { bytes }, size: bytes.length, executable };
  const i = dir.children.findIndex((c) => c.name.equals(name));
  if (i >= 0) dir.children[i] = { name, node };
  else dir.children.push({ name, node });
}
