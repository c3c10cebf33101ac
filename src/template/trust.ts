// trust.ts — what makes a cached template safe to load: SHA-256 digests of
// its memory, state and image files (recorded in the manifest, checked at every
// load), the state file's image path confined to the cache's image directory,
// and cache files created without following planted symlinks (temp file
// O_CREAT|O_EXCL|O_NOFOLLOW + fsync + rename + directory fsync).
import { createHash, randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, realpath, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join, sep } from 'node:path';
import { ForkboxError } from '../lib/errors.js';

/** Digests recorded in a template manifest (hex SHA-256). */
export interface TemplateDigests {
  memory: string;
  state: string;
  /** Absent for templates without an image (test guests). */
  image?: string;
}

export function untrustedTemplate(message: string): ForkboxError {
  return new ForkboxError('TemplateBuildFailed', 500, message);
}

/** SHA-256 of a file, read in 8 MiB chunks (holes of sparse files read as zeros). */
export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const buf = Buffer.allocUnsafe(8 << 20);
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      h.update(buf.subarray(0, bytesRead));
    }
  } finally {
    await fh.close();
  }
  return h.digest('hex');
}

/**
 * Writes `data` to `path` safely: a fresh temp file beside it, created with
 * O_EXCL|O_NOFOLLOW (a symlink planted at any name is never followed), synced,
 * renamed over `path` (rename replaces a symlink there, never writes through
 * it), then the directory is synced.
 */
export async function safeWriteFile(path: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`);
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  await syncDir(dirname(path));
}

/** fsync a directory so renames into it survive a crash. */
export async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await d.sync();
  } finally {
    await d.close();
  }
}

// State file header offsets (native/vmm/snapshot.h).
const SNAP_MAGIC = 0x50414e5358424b46n;
const HEADER_SIZE = 256;
const OFF_BODY_SIZE = 24;
const OFF_IMAGE_PATH_LEN = 96;

/**
 * The image path a state file records (the last image_path_len bytes of its
 * body), or null when it has none. Only the framing is checked here; the VMM
 * validates everything else at open.
 */
export function stateImagePath(state: Buffer): string | null {
  if (state.length < HEADER_SIZE || state.readBigUInt64LE(0) !== SNAP_MAGIC)
    throw untrustedTemplate('state file: not a forkbox state file');
  const body = state.readBigUInt64LE(OFF_BODY_SIZE);
  const n = state.readUInt32LE(OFF_IMAGE_PATH_LEN);
  if (BigInt(state.length) !== BigInt(HEADER_SIZE) + body || BigInt(n) > body)
    throw untrustedTemplate('state file: size does not match its header');
  return n ? state.subarray(state.length - n).toString('utf8') : null;
}

/** True when `path` resolves (symlinks followed) to a file inside `dir`. */
export async function resolvesInside(path: string, dir: string): Promise<boolean> {
  let real: string, root: string;
  try {
    [real, root] = await Promise.all([realpath(path), realpath(dir)]);
  } catch {
    return false;
  }
  return real.startsWith(root.endsWith(sep) ? root : root + sep);
}

/** The image directory of a templates root: <cache>/templates -> <cache>/images (the VMM's default too). */
export const imagesDirOf = (templatesRoot: string): string => join(dirname(templatesRoot), 'images');

/**
 * Checks a cached template before it is loaded: the state file's image path
 * must resolve inside `imagesDir`, and the memory, state and image files must
 * have the digests recorded at build. Throws a ForkboxError saying which check
 * failed; returns the milliseconds spent hashing.
 */
export async function verifyTemplate(dir: string, digests: TemplateDigests | undefined, imagesDir: string): Promise<number> {
  const t0 = performance.now();
  if (!digests?.memory || !digests.state) throw untrustedTemplate(`template ${dir}: its manifest records no digests (rebuild it)`);
  const statePath = join(dir, 'state');
  const state = await readFile(statePath, { flag: constants.O_RDONLY | constants.O_NOFOLLOW });
  const imagePath = stateImagePath(state);
  if (imagePath !== null && !(await resolvesInside(imagePath, imagesDir)))
    throw untrustedTemplate(`template ${dir}: its state file names an image outside ${imagesDir}; refused`);
  if ((imagePath === null) !== (digests.image === undefined))
    throw untrustedTemplate(`template ${dir}: the state file and the manifest disagree about the image`);
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
  if (sha(state) !== digests.state) throw untrustedTemplate(`template ${dir}: state file digest mismatch (modified or corrupt)`);
  const [mem, img] = await Promise.all([sha256File(join(dir, 'memory')), imagePath ? sha256File(imagePath) : undefined]);
  if (mem !== digests.memory) throw untrustedTemplate(`template ${dir}: memory file digest mismatch (modified or corrupt)`);
  if (img !== digests.image) throw untrustedTemplate(`template ${dir}: image ${imagePath} digest mismatch (modified or corrupt)`);
  return performance.now() - t0;
}
