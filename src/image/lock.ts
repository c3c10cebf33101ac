// lock.ts — a recipe's lock file (<recipe>.lock.json): the resolved Debian
// closure with exact versions and SHA-256s. A build whose recipe still asks
// for the same packages (and exclusions) uses exactly the pinned versions;
// one whose packages changed re-resolves and rewrites the lock. A pinned
// version the archive no longer offers is named, not silently replaced.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { ForkboxError } from '../lib/errors.js';
import { debDir, debName, type ResolvedPackage } from './packages.js';
import type { Recipe } from './recipe-types.js';

const run = promisify(execFile);

export const LOCK_VERSION = 1;

export interface LockFile {
  lockVersion: number;
  recipe: string;
  /** The recipe's packages and exclusions the closure was resolved from. */
  roots: string[];
  exclude: string[];
  packages: ResolvedPackage[];
}

const same = (a: readonly string[], b: readonly string[]): boolean =>
  a.length === b.length && [...a].sort().every((x, i) => x === [...b].sort()[i]);

const badLock = (path: string, msg: string): ForkboxError =>
  new ForkboxError('ImageBuildFailed', 500, `lock file ${path}: ${msg} (delete it to resolve again)`);

/** Checks a parsed lock file's shape; throws naming what is wrong. */
export function validateLock(doc: unknown, path: string): LockFile {
  const o = doc as Partial<LockFile> | null;
  if (!o || typeof o !== 'object') throw badLock(path, 'not an object');
  if (o.lockVersion !== LOCK_VERSION) throw badLock(path, `lockVersion must be ${LOCK_VERSION}`);
  if (!Array.isArray(o.roots) || !o.roots.every((r) => typeof r === 'string')) throw badLock(path, 'roots must be a list of package names');
  if (!Array.isArray(o.exclude) || !o.exclude.every((r) => typeof r === 'string')) throw badLock(path, 'exclude must be a list of package names');
  if (!Array.isArray(o.packages) || o.packages.length === 0) throw badLock(path, 'packages must be a non-empty list');
  o.packages.forEach((p, i) => {
    if (!p || typeof p.name !== 'string' || typeof p.version !== 'string' || typeof p.arch !== 'string'
      || typeof p.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(p.sha256) || !/^[a-z0-9][a-z0-9+.-]+$/.test(p.name)
      || !/^[A-Za-z0-9.+~:-]+$/.test(p.version))
      throw badLock(path, `packages[${i}] needs name, version, arch and a sha256`);
  });
  return o as LockFile;
}

/** The pinned closure when the lock exists and matches the recipe's packages; undefined when it must be (re)resolved. */
export async function readLock(path: string, recipe: Recipe): Promise<ResolvedPackage[] | undefined> {
  if (!existsSync(path)) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw badLock(path, `not valid JSON: ${(e as Error).message}`);
  }
  const lock = validateLock(doc, path);
  if (!same(lock.roots, recipe.packages) || !same(lock.exclude, recipe.exclude ?? [])) return undefined;
  return lock.packages.map((p) => ({ name: p.name, version: p.version, arch: p.arch, sha256: p.sha256,
    filename: p.filename ?? '', size: p.size ?? 0 }));
}

export async function writeLock(path: string, recipe: Recipe, pkgs: ResolvedPackage[]): Promise<void> {
  const lock: LockFile = { lockVersion: LOCK_VERSION, recipe: recipe.name, roots: [...recipe.packages], exclude: [...(recipe.exclude ?? [])],
    packages: pkgs.map((p) => ({ name: p.name, version: p.version, arch: p.arch, sha256: p.sha256, filename: p.filename, size: p.size })) };
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify(lock, null, 1) + '\n');
  await rename(tmp, path);
}

/** The pinned packages not in the download cache that apt can no longer find ("name=version"). */
export async function unobtainable(pkgs: ResolvedPackage[]): Promise<string[]> {
  const out: string[] = [];
  for (const p of pkgs) {
    if (existsSync(join(debDir(), debName(p)))) continue;
    try {
      const { stdout } = await run('apt-cache', ['show', '--no-all-versions', `${p.name}=${p.version}`], { env: { ...process.env, LC_ALL: 'C' } });
      if (!stdout.trim()) out.push(`${p.name}=${p.version}`);
    } catch {
      out.push(`${p.name}=${p.version}`);
    }
  }
  return out;
}
