// extract.ts — unpacks .debs into a staging tree (dpkg-deb -x; maintainer
// scripts never run) and then does by hand the parts of installation that
// matter to a program: the usrmerge layout (/bin, /sbin, /lib, /lib64 as links
// into /usr, where PT_INTERP /lib64/ld-linux-x86-64.so.2 must resolve), the
// BLAS/LAPACK alternatives links, and /usr/bin/python3.
import { execFile } from 'node:child_process';
import { lstat, mkdir, readdir, readlink, rename, rm, rmdir, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export async function extractDebs(debs: string[], rootfs: string): Promise<void> {
  await mkdir(rootfs, { recursive: true });
  for (const deb of debs) {
    try {
      await run('dpkg-deb', ['-x', deb, rootfs], { maxBuffer: 16 << 20 });
    } catch (e) {
      throw new Error(`dpkg-deb -x ${deb} failed: ${(e as { stderr?: string }).stderr ?? String(e)}`);
    }
  }
}

const exists = (p: string): Promise<boolean> => lstat(p).then(() => true, () => false);

/** Moves everything under `src` into `dst` (merging directories), then removes `src`. */
async function mergeInto(src: string, dst: string): Promise<void> {
  await mkdir(dst, { recursive: true });
  for (const name of await readdir(src)) {
    const s = join(src, name);
    const d = join(dst, name);
    const ss = await lstat(s);
    const ds = await lstat(d).catch(() => undefined);
    if (!ds) await rename(s, d);
    else if (ss.isDirectory() && ds.isDirectory()) await mergeInto(s, d);
    else if (ss.isSymbolicLink() && ds.isSymbolicLink() && (await readlink(s)) === (await readlink(d))) await rm(s);
    else throw new Error(`usrmerge conflict: both /${s} and /${d} exist`);
  }
  await rmdir(src);
}

async function linkIfMissing(rootfs: string, path: string, target: string, need?: string): Promise<string | undefined> {
  const p = join(rootfs, path);
  if (await exists(p)) return undefined;
  if (need && !(await exists(join(rootfs, need)))) return undefined;
  await mkdir(dirname(p), { recursive: true });
  await symlink(target, p);
  return `${path} -> ${target}`;
}

/** Applies the installation steps that matter; returns what it did (recorded in the manifest). */
export async function fixupTree(rootfs: string): Promise<string[]> {
  const done: string[] = [];
  for (const top of ['bin', 'sbin', 'lib', 'lib64']) {
    const p = join(rootfs, top);
    const st = await lstat(p).catch(() => undefined);
    if (st?.isDirectory()) {
      await mergeInto(p, join(rootfs, 'usr', top));
      done.push(`merged /${top} into /usr/${top}`);
    }
    if (!st?.isSymbolicLink()) {
      await mkdir(join(rootfs, 'usr', top), { recursive: true });
      await symlink(`usr/${top}`, p);
      done.push(`/${top} -> usr/${top}`);
    }
  }
  const lib = 'usr/lib/x86_64-linux-gnu';
  const links: Array<[string, string, string]> = [
    [`${lib}/libblas.so.3`, 'blas/libblas.so.3', `${lib}/blas/libblas.so.3`],
    [`${lib}/liblapack.so.3`, 'lapack/liblapack.so.3', `${lib}/lapack/liblapack.so.3`],
    ['usr/bin/python3', 'python3.11', 'usr/bin/python3.11'],
  ];
  for (const [path, target, need] of links) {
    const r = await linkIfMissing(rootfs, path, target, need);
    if (r) done.push(r);
  }
  for (const d of ['tmp', 'dev', 'proc', 'sys', 'etc', 'root']) {
    if (!(await exists(join(rootfs, d)))) {
      await mkdir(join(rootfs, d));
      done.push(`mkdir /${d}`);
    }
  }
  return done;
}
