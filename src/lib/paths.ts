// paths.ts — where forkbox keeps things outside the repository: downloads and
// built images/templates under the cache dir (FORKBOX_CACHE_DIR, else
// $XDG_CACHE_HOME/forkbox, else ~/.cache/forkbox), and the repo's own build
// outputs (native addon, guest runtime, test guests). trustedCacheDir()
// refuses a cache that another user owns or that others can write.
import { lstatSync, mkdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ForkboxError } from './errors.js';

/** Repository root (this file is dist/src/lib/paths.js or src/lib/paths.ts). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', ...(import.meta.url.includes('/dist/') ? ['..'] : []));

export function cacheDir(): string {
  if (process.env.FORKBOX_CACHE_DIR) return resolve(process.env.FORKBOX_CACHE_DIR);
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'forkbox');
}

export const nativeOut = join(repoRoot, 'native', 'out');
export const runtimeElf = join(nativeOut, 'runtime.elf');
export const testGuestDir = join(nativeOut, 'guests');
export const addonPath = join(repoRoot, 'build', 'Release', 'forkbox_vmm.node');
export const guestFilesDir = join(repoRoot, 'guest');

/** The cache's subdirectories the server and the builders use. */
export const CACHE_SUBDIRS = ['templates', 'images', 'debs', 'resolve', 'sessions'] as const;

function untrusted(message: string): ForkboxError {
  return new ForkboxError('TemplateBuildFailed', 500, message);
}

function checkOwned(dir: string, mode: number, uid: number, what: string): void {
  if (uid !== (process.getuid?.() ?? uid))
    throw untrusted(`${what} ${dir} is owned by uid ${uid}, not by this server's user (uid ${process.getuid?.()}): ` +
      'set FORKBOX_CACHE_DIR to a directory you own, or chown it to this user');
  if (mode & 0o022)
    throw untrusted(`${what} ${dir} is writable by group or others (mode ${(mode & 0o7777).toString(8)}): ` +
      `run chmod go-w ${dir} (forkbox creates it 0700)`);
}

/**
 * Returns the cache dir (or `sub` under it) after checking it can be trusted:
 * the dir and each subdirectory the server uses must be owned by this user and
 * not writable by group or others, and no ancestor may let another user swap
 * it (an ancestor writable by others must be root's and sticky, like /tmp).
 * Missing directories are created 0700. Throws a ForkboxError naming the fix.
 */
export function trustedCacheDir(root = cacheDir(), subs: readonly string[] = CACHE_SUBDIRS): string {
  mkdirSync(root, { recursive: true, mode: 0o700 });
  const uid = process.getuid?.();
  if (uid === undefined) return root; // not POSIX: nothing to check
  const st = statSync(root);
  if (!st.isDirectory()) throw untrusted(`cache dir ${root} is not a directory`);
  checkOwned(root, st.mode, st.uid, 'cache dir');
  for (let d = dirname(resolve(root)); ; d = dirname(d)) {
    const a = statSync(d);
    const sticky = (a.mode & 0o1000) !== 0;
    if ((a.uid !== uid && a.uid !== 0) || ((a.mode & 0o022) && !(sticky && a.uid === 0)))
      throw untrusted(`cache dir ${root}: its parent ${d} can be changed by another user (owner uid ${a.uid}, mode ` +
        `${(a.mode & 0o7777).toString(8)}): set FORKBOX_CACHE_DIR to a directory under one only you can write`);
    if (d === dirname(d)) break;
  }
  for (const sub of subs) {
    const p = join(root, sub);
    mkdirSync(p, { recursive: true, mode: 0o700 });
    const s = lstatSync(p);
    if (!s.isDirectory()) throw untrusted(`cache dir ${p} is not a directory (a symlink is not accepted): remove it`);
    checkOwned(p, s.mode, s.uid, 'cache dir');
  }
  return root;
}
