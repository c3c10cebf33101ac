// paths.ts — where forkbox keeps things outside the repository: downloads and
// built images/templates under the cache dir (FORKBOX_CACHE_DIR, else
// $XDG_CACHE_HOME/forkbox, else ~/.cache/forkbox), and the repo's own build
// outputs (native addon, guest runtime, test guests).
import { homedir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

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
