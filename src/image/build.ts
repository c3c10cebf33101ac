// build.ts — orchestrates an image build: resolve packages → download →
// extract + fixups → prune → byte-compile → rewrite syscalls → add guest files
// → pack. The result lives in cacheDir()/images/<key>/ (image.fbimg,
// manifest.json, rewrite-report.json); the key hashes every input, so a
// complete directory is reused as-is. Work happens in a temp dir renamed at the end.
import { createHash } from 'node:crypto';
import { lstat, mkdir, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ForkboxError } from '../lib/errors.js';
import { log } from '../lib/log.js';
import { cacheDir, guestFilesDir } from '../lib/paths.js';
import { compilePython } from './compile.js';
import { extractDebs, fixupTree } from './extract.js';
import { EXCLUDED, downloadAll, resolveClosureCached, type ResolvedPackage } from './packages.js';
import { readLock, unobtainable, writeLock } from './lock.js';
import { packImage } from './pack.js';
import { pruneTree } from './prune.js';
import { ImageReader } from './reader.js';
import { getRecipe, type Recipe } from './recipes.js';
import { REWRITER_VERSION, rewriteTree, type RewriteReport } from './rewrite.js';
import { addFile, walkTree } from './tree.js';

/** Bump when anything about how images are built changes (it is part of the cache key). */
export const BUILDER_VERSION = 2;
/** mtime of every entry, so the same inputs give the same bytes (overridable like other reproducible builds). */
export const IMAGE_EPOCH = 1_767_225_600; // 2026-01-01T00:00:00Z

export interface ImageManifest {
  key: string;
  recipe: string;
  builderVersion: number;
  rewriterVersion: number;
  buildTime: number;
  packages: Array<{ name: string; version: string; arch: string; sha256: string }>;
  excluded: Record<string, string>;
  fixups: string[];
  pruned: { dirs: number; files: number; bytes: number };
  guestFiles: Record<string, string>;
  image: { file: string; size: number; sha256: string; entries: number; files: number; dirs: number; symlinks: number };
  rewrite: { filesWithSites: number; sites: number; rewritten: number; refused: number; data: number; perFile: Record<string, { sites: number; rewritten: number; refused: number; data: number }>;
    /** Refused sites outside the accepted list ("file address (syscall n): reason"): only a user's template builds with them. */
    unaccepted?: string[] };
  argv: string[];
  env: Record<string, string>;
  preload: string[];
  timingsMs: Record<string, number>;
}

export interface BuiltImage { imagePath: string; key: string; dir: string; manifest: ImageManifest; argv: string[]; env: Record<string, string>; cached: boolean }
export interface BuildOptions {
  onProgress?: (msg: string) => void;
  keepRootfs?: boolean;
  /** Only return an already built image; never download or build (throws NotFound otherwise). */
  cachedOnly?: boolean;
  /** Pin the resolved closure in this lock file: used as-is when it matches the recipe's packages, else (re)written. */
  lockPath?: string;
  /** A closure pinned elsewhere (a user template's manifest, when it is rebuilt without its recipe file): used as-is
   *  when no lock applies, so a rebuild gets the versions the template was first built with. */
  pinned?: ResolvedPackage[];
}

export const imagesDir = (): string => join(cacheDir(), 'images');

const fail = (message: string, cause?: unknown): ForkboxError => new ForkboxError('ImageBuildFailed', 500, message, { cause });

async function guestFiles(): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (rel: string): Promise<void> => {
    const entries = await readdir(join(guestFilesDir, rel)).catch(() => [] as string[]);
    for (const name of entries.sort()) {
      if (name.startsWith('.') || name === '__pycache__') continue; // editor and interpreter droppings
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(join(guestFilesDir, r));
      if (st.isDirectory()) await walk(r);
      else if (st.isFile()) out[r] = createHash('sha256').update(await readFile(join(guestFilesDir, r))).digest('hex');
    }
  };
  await walk('');
  return out;
}

/** The cache key: every input that changes the image's bytes. */
export function imageKey(recipe: Recipe, pkgs: ResolvedPackage[], guest: Record<string, string>, buildTime: number): string {
  const input = JSON.stringify({
    builder: BUILDER_VERSION, rewriter: REWRITER_VERSION, buildTime,
    recipe: { ...recipe, acceptedRefusals: recipe.acceptedRefusals.map((a) => [a.file, a.syscall]) },
    packages: pkgs.map((p) => `${p.name}=${p.version}:${p.arch}:${p.sha256}`), guest,
  });
  return createHash('sha256').update(input).digest('hex').slice(0, 24);
}

async function complete(dir: string): Promise<ImageManifest | undefined> {
  try {
    const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as ImageManifest;
    const st = await lstat(join(dir, 'image.fbimg'));
    await lstat(join(dir, 'rewrite-report.json'));
    return st.size === manifest.image.size ? manifest : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Throws unless every refused site is covered by one of the recipe's accepted
 * refusals; a recipe with reportRefusals (a user's) builds anyway and the
 * sites are returned for the build report.
 */
function checkRefusals(recipe: Recipe, report: RewriteReport): string[] {
  const bad: string[] = [];
  for (const f of report.files) {
    for (const r of f.refused) {
      const ok = recipe.acceptedRefusals.find((a) => a.file === basename(f.path) && a.syscall === r.syscall);
      if (ok) (r as { accepted?: string }).accepted = ok.why;
      else bad.push(`${f.path} ${r.address} (syscall ${r.syscall ?? '?'}): ${r.reason}`);
    }
  }
  if (bad.length > 0 && !recipe.reportRefusals) throw fail(`syscall sites that cannot be rewritten safely:\n  ${bad.join('\n  ')}`);
  return bad;
}

const inflight = new Map<string, Promise<BuiltImage>>();

/** Builds (or reuses) the image for a recipe. Called by the template builder and `forkbox image build`. */
export async function buildImage(recipeOrName: string | Recipe, opts: BuildOptions = {}): Promise<BuiltImage> {
  const recipe = typeof recipeOrName === 'string' ? getRecipe(recipeOrName) : recipeOrName;
  const recipeName = recipe.name;
  const progress = (msg: string): void => {
    if (opts.onProgress) opts.onProgress(msg);
    else log.info('image.progress', { recipe: recipeName, msg });
  };
  const buildTime = process.env.SOURCE_DATE_EPOCH ? Number(process.env.SOURCE_DATE_EPOCH) : IMAGE_EPOCH;
  if (!Number.isInteger(buildTime) || buildTime < 0) throw fail('SOURCE_DATE_EPOCH is not a non-negative integer');
  progress(`resolving packages for ${recipeName}`);
  let pkgs: ResolvedPackage[];
  const lock = opts.lockPath ? await readLock(opts.lockPath, recipe) : undefined;
  if (lock) {
    pkgs = lock;
    progress(`using the ${pkgs.length} package versions pinned in ${opts.lockPath}`);
  } else if (opts.pinned?.length) {
    pkgs = opts.pinned;
    progress(`using the ${pkgs.length} package versions the template was built with`);
  } else {
    try {
      pkgs = await resolveClosureCached(recipe.packages, !opts.cachedOnly, recipe.exclude ?? []);
    } catch (e) {
      if (opts.cachedOnly) throw new ForkboxError('NotFound', 404, `cannot resolve packages without building: ${(e as Error).message}`, { cause: e });
      throw fail(`resolve step: ${(e as Error).message}`, e);
    }
    if (opts.lockPath && !opts.cachedOnly) {
      await writeLock(opts.lockPath, recipe, pkgs);
      progress(`pinned ${pkgs.length} package versions in ${opts.lockPath}`);
    }
  }
  const guest = await guestFiles();
  const key = imageKey(recipe, pkgs, guest, buildTime);
  const dir = join(imagesDir(), key);
  const done = await complete(dir);
  if (done) {
    progress(`image ${key} is cached`);
    return { imagePath: join(dir, 'image.fbimg'), key, dir, manifest: done, argv: done.argv, env: done.env, cached: true };
  }
  if (opts.cachedOnly) throw new ForkboxError('NotFound', 404, `image ${key} for recipe ${recipeName} is not built`);
  const pending = inflight.get(key);
  if (pending) return pending;
  const pinnedBy = lock ? `pinned in ${opts.lockPath}` : pkgs === opts.pinned ? 'pinned by the template being rebuilt' : '';
  const p = doBuild(recipe, pkgs, guest, key, buildTime, progress, opts, pinnedBy).finally(() => inflight.delete(key));
  inflight.set(key, p);
  return p;
}

async function doBuild(recipe: Recipe, pkgs: ResolvedPackage[], guest: Record<string, string>, key: string, buildTime: number,
  progress: (msg: string) => void, opts: BuildOptions, pinnedBy = ''): Promise<BuiltImage> {
  const dir = join(imagesDir(), key);
  const tmp = join(imagesDir(), `${key}.tmp-${process.pid}`);
  const rootfs = join(tmp, 'rootfs');
  const timings: Record<string, number> = {};
  let t = Date.now();
  const lap = (name: string): void => { timings[name] = Date.now() - t; t = Date.now(); };
  await rm(tmp, { recursive: true, force: true });
  await mkdir(rootfs, { recursive: true });
  try {
    progress(`${pkgs.length} packages: ${pkgs.map((p) => `${p.name}=${p.version}`).join(' ')}`);
    const fetched = await downloadAll(pkgs, progress).catch(async (e: Error) => {
      const gone = pinnedBy ? await unobtainable(pkgs) : [];
      if (gone.length) throw fail(`download step: ${pinnedBy} but no longer obtainable: ${gone.join(', ')} `
        + (opts.lockPath ? '(delete the lock file to resolve current versions)' : '(rebuild it from its recipe file: forkbox template build FILE)'), e);
      throw fail(`download step: ${e.message}`, e);
    });
    lap('download');
    progress('extracting');
    await extractDebs(fetched.map((p) => p.deb), rootfs);
    const fixups = await fixupTree(rootfs);
    lap('extract');
    const pruned = await pruneTree(rootfs);
    lap('prune');
    if (await lstat(join(rootfs, 'usr/bin/python3.11')).catch(() => undefined)) { // images without python (node) skip it
      progress('byte-compiling python sources');
      await compilePython(rootfs).catch((e: Error) => { throw fail(e.message, e); });
    }
    lap('compile');
    progress('rewriting syscall instructions');
    const report = await rewriteTree(rootfs, (f) => progress(`  ${f.path}: ${f.sites} sites, ${f.rewritten.length} rewritten, ${f.refused.length} refused, ${f.data.length} in data`));
    lap('rewrite');
    const refusedSites = checkRefusals(recipe, report);
    if (refusedSites.length) progress(`${refusedSites.length} syscall site(s) refused (a sandbox that reaches one crashes):\n  ${refusedSites.join('\n  ')}`);
    await writeFile(join(tmp, 'rewrite-report.json'), JSON.stringify(report, null, 1) + '\n');

    progress('packing');
    const tree = await walkTree(rootfs);
    for (const f of recipe.extraFiles) {
      const data = f.content !== undefined ? Buffer.from(f.content, 'base64') : await readFile(join(guestFilesDir, f.source ?? ''));
      addFile(tree, f.path, data, f.executable ?? false);
    }
    const packed = await packImage(tree, join(tmp, 'image.fbimg'), buildTime);
    lap('pack');
    const img = new ImageReader(packed.path);
    try {
      for (const p of recipe.mustExist) if (!img.lookup(p, true)) throw fail(`the image lacks ${p}`);
    } finally {
      img.close();
    }
    const manifest: ImageManifest = {
      key, recipe: recipe.name, builderVersion: BUILDER_VERSION, rewriterVersion: REWRITER_VERSION, buildTime,
      packages: fetched.map((p) => ({ name: p.name, version: p.version, arch: p.arch, sha256: p.sha256 })),
      excluded: EXCLUDED, fixups, pruned, guestFiles: guest,
      image: { file: 'image.fbimg', size: packed.size, sha256: packed.digest, entries: packed.entryCount, files: packed.files, dirs: packed.dirs, symlinks: packed.symlinks },
      rewrite: {
        filesWithSites: report.filesWithSites, sites: report.totalSites, rewritten: report.totalRewritten, refused: report.totalRefused, data: report.totalData,
        perFile: Object.fromEntries(report.files.map((f) => [f.path, { sites: f.sites, rewritten: f.rewritten.length, refused: f.refused.length, data: f.data.length }])),
        ...(refusedSites.length ? { unaccepted: refusedSites } : {}),
      },
      argv: recipe.argv, env: recipe.env, preload: recipe.preload, timingsMs: timings,
    };
    await writeFile(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 1) + '\n');
    if (opts.keepRootfs || process.env.FORKBOX_KEEP_ROOTFS === '1') progress(`staging tree kept in ${join(dir, 'rootfs')}`);
    else await rm(rootfs, { recursive: true, force: true });
    const other = await complete(dir);
    if (other) {
      // Another process finished the same key first: its bytes are ours (same inputs), keep its copy.
      await rm(tmp, { recursive: true, force: true });
      return { imagePath: join(dir, 'image.fbimg'), key, dir, manifest: other, argv: other.argv, env: other.env, cached: true };
    }
    await rm(dir, { recursive: true, force: true }); // an incomplete earlier attempt
    await rename(tmp, dir);
    progress(`image ${key}: ${(packed.size / 1048576).toFixed(1)} MiB, ${packed.entryCount} entries`);
    return { imagePath: join(dir, 'image.fbimg'), key, dir, manifest, argv: manifest.argv, env: manifest.env, cached: false };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    if (e instanceof ForkboxError) throw e;
    throw fail(`building image ${key}: ${(e as Error).message}`, e);
  }
}

/** Reads a built image's manifest by key (for `forkbox image report`). */
export async function readBuilt(key: string): Promise<{ dir: string; manifest: ImageManifest; report: RewriteReport } | undefined> {
  if (!/^[0-9a-f]{8,64}$/.test(key)) return undefined;
  const dir = join(imagesDir(), key);
  const manifest = await complete(dir);
  if (!manifest) return undefined;
  return { dir, manifest, report: JSON.parse(await readFile(join(dir, 'rewrite-report.json'), 'utf8')) as RewriteReport };
}
