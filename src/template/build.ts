// build.ts — builds and caches templates: boot a guest (the runtime with a
// language image, or a test guest), run it to its READY doorbell, snapshot it
// into <dir>/{memory,state,manifest.json} via a 0700 temp dir + rename. The
// cache key covers every input, so a changed image, runtime or ABI rebuilds.
// A cached template is used only after verifyTemplate (trust.ts) passes; one
// that fails is rebuilt by buildTemplate and skipped by listTemplates.
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheDir, runtimeElf, testGuestDir, trustedCacheDir } from '../lib/paths.js';
import { ForkboxError } from '../lib/errors.js';
import { log } from '../lib/log.js';
import { imagesDirOf, safeWriteFile, sha256File, syncDir, verifyTemplate, type TemplateDigests } from './trust.js';
import { FB_ABI_VERSION, FB_ST_READY, bootArgs } from '../vmm/abi.js';
import { Vm, type Response } from '../vmm/vmm.js';
import { loadImageBuilder } from './image-source.js';
import { imageRecipeOf, type TemplateBase, type TemplateRecipe } from './recipe.js';
import { SHIPPED_TEMPLATES, shippedTemplate } from './shipped.js';
import { python as pythonModule } from '../languages/python.js';
import { javascript as javascriptModule } from '../languages/javascript.js';

/** Bumped when the template layout or boot procedure changes. */
export const TEMPLATE_FORMAT = 2;

export interface TemplateManifest {
  name: string;
  /** The recipe it was built from (a user's template is served from this after a restart). */
  recipe?: TemplateRecipe;
  /** The image build's report: ELF files whose syscalls were rewritten, refused sites outside the accepted list. */
  report?: BuildReport;
  /** A user template's package closure (name, version, arch, SHA-256): a rebuild from this manifest uses exactly these. */
  pinned?: PinnedPackage[];
  key: string;
  format: number;
  inputs: { imageKey?: string; runtimeSha256?: string; guestElf: string; guestSha256: string; abiVersion: number; ramSize: number;
    argv: string[]; env: string[] };
  created: string;
  sizes: { memory: number; state: number; image?: number };
  /** SHA-256 of the files, checked at every load (docs/security.md, cache trust). */
  digests: TemplateDigests;
  bootMs: number;
  snapshotMs: number;
}

export interface TemplateInfo {
  name: string;
  key: string;
  dir: string;
  memPath: string;
  statePath: string;
  manifest: TemplateManifest;
  /** True when this call built it; false when it came from the cache. */
  built: boolean;
}

export interface BuildOptions {
  onProgress?: (line: string) => void;
  force?: boolean;
  /** RAM of the template VM in MiB (default 1024 for python). */
  ramSizeMb?: number;
  /** Where templates live (default cacheDir()/templates). */
  root?: string;
  /** Boot deadline in ms (default 300 s). */
  bootTimeoutMs?: number;
  /** A recipe file's lock (recipe templates only): pinned versions used, or written after resolving. */
  lockPath?: string;
  /** Versions to build with when no lock applies (a user template rebuilt from its manifest: TemplateManifest.pinned). */
  pinned?: PinnedPackage[];
}

/** One package of a user template's closure, as its manifest records it. */
export interface PinnedPackage { name: string; version: string; arch: string; sha256: string }

/** What `forkbox template build` reports besides the template. */
export interface BuildReport {
  packages: number;
  imageBytes: number;
  /** ELF files with syscall sites: path → sites rewritten. */
  rewritten: Record<string, number>;
  /** "file address (syscall n): reason" of each refused site not on the base's accepted list. */
  refused: string[];
}

export interface ListOptions {
  /** Check each template's digests and image path, skipping those that fail (default true). */
  verify?: boolean;
}

/** The shipped templates' names (user recipes add their own). */
export const TEMPLATE_NAMES = SHIPPED_TEMPLATES.map((t) => t.name);
export type TemplateName = string;
// RAM of a template's VMs: the default 512 MiB memory limit (which counts the
// template's own ~64 MiB heap) plus stacks and slack. On shadow-paging hosts
// (PVM) the kernel keeps ~2.5 KiB per MiB of memory slots per live fork, so
// RAM is sized to the limit rather than generously (docs/architecture.md).
// Each is its language module's measured ramMb (src/languages).
export const DEFAULT_RAM_MB: Record<TemplateBase, number> = { python: pythonModule.ramMb, javascript: javascriptModule.ramMb };

export const templatesRoot = (): string => join(cacheDir(), 'templates');

function buildFailed(message: string, cause?: unknown): ForkboxError {
  return new ForkboxError('TemplateBuildFailed', 500, message, cause === undefined ? {} : { cause });
}

/** Text of a failed boot: the guest's outcome and what it wrote. */
export function describeBoot(r: Response): string {
  const parts = [`outcome ${r.outcome}`];
  if (r.outcomeCode === 0) parts.push(`status ${r.status}`, `exit code ${r.exitCode}`);
  if (r.detail) parts.push(r.detail);
  const text = (b: Buffer, label: string): void => {
    if (b.length) parts.push(`${label}:\n${b.subarray(Math.max(0, b.length - 8192)).toString('utf8')}`);
  };
  text(r.result, 'result');
  text(r.stdout, 'stdout');
  text(r.stderr, 'stderr');
  return parts.join('; ');
}

async function readManifest(dir: string): Promise<TemplateManifest | null> {
  try {
    const m = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as TemplateManifest;
    if (!existsSync(join(dir, 'memory')) || !existsSync(join(dir, 'state'))) return null;
    return m;
  } catch {
    return null;
  }
}

interface BootSpec {
  name: string;
  recipe?: TemplateRecipe;
  report?: BuildReport;
  pinned?: PinnedPackage[];
  key: string;
  guestElf: string;
  imagePath?: string;
  argv: string[];
  env: string[];
  ramSize: number;
  inputs: TemplateManifest['inputs'];
}

async function bootAndSave(spec: BootSpec, root: string, opts: BuildOptions): Promise<TemplateInfo> {
  const dir = join(root, spec.key);
  const progress = opts.onProgress ?? (() => {});
  if (!opts.force) {
    const m = await readManifest(dir);
    if (m && m.key === spec.key) {
      try {
        const ms = await verifyTemplate(dir, m.digests, imagesDirOf(root));
        log.info('template.verified', { template: spec.name, key: spec.key, ms: Math.round(ms) });
        return info(spec.name, dir, m, false);
      } catch (e) {
        log.warn('template.untrusted', { template: spec.name, key: spec.key, reason: (e as Error).message, action: 'rebuild' });
      }
    }
  }
  await mkdir(root, { recursive: true, mode: 0o700 });
  const tmp = join(root, `.tmp-${spec.key.slice(0, 16)}-${process.pid}-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { mode: 0o700 }); // fails if anything (a planted symlink too) has the name
  let vm: Vm | null = null;
  try {
    progress(`template ${spec.name}: booting ${spec.guestElf}`);
    const t0 = performance.now();
    vm = Vm.boot({ ramSize: spec.ramSize, guestElf: spec.guestElf, args: bootArgs(spec.argv, spec.env),
      ...(spec.imagePath ? { imagePath: spec.imagePath } : {}) });
    const r = await vm.start(opts.bootTimeoutMs ?? 300_000);
    const bootMs = performance.now() - t0;
    if (r.outcomeCode !== 0 || r.status !== FB_ST_READY)
      throw buildFailed(`template ${spec.name}: boot step: guest did not reach READY: ${describeBoot(r)}`);
    const said = r.stderr.toString('utf8');
    const i = said.indexOf('forkbox runner: preload failed');
    if (i >= 0) throw buildFailed(`template ${spec.name}: preload step failed:\n${said.slice(i, i + 16384)}`);
    progress(`template ${spec.name}: ready after ${bootMs.toFixed(0)} ms; saving snapshot`);
    const t1 = performance.now();
    await vm.saveSnapshot(join(tmp, 'memory'), join(tmp, 'state'));
    const snapshotMs = performance.now() - t1;
    vm.close();
    vm = null;
    const digests: TemplateDigests = {
      memory: await sha256File(join(tmp, 'memory')), state: await sha256File(join(tmp, 'state')),
      ...(spec.imagePath ? { image: await sha256File(spec.imagePath) } : {}),
    };
    const manifest: TemplateManifest = {
      name: spec.name, ...(spec.recipe ? { recipe: spec.recipe } : {}), ...(spec.report ? { report: spec.report } : {}),
      ...(spec.pinned ? { pinned: spec.pinned } : {}), key: spec.key, format: TEMPLATE_FORMAT, inputs: spec.inputs,
      created: new Date().toISOString(),
      sizes: {
        memory: (await stat(join(tmp, 'memory'))).size,
        state: (await stat(join(tmp, 'state'))).size,
        ...(spec.imagePath ? { image: (await stat(spec.imagePath)).size } : {}),
      },
      digests, bootMs: Math.round(bootMs), snapshotMs: Math.round(snapshotMs),
    };
    await safeWriteFile(join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    if (existsSync(dir)) await rm(dir, { recursive: true, force: true });
    try {
      await rename(tmp, dir);
      await syncDir(root);
    } catch (e) {
      // Another process finished the same key first: use theirs.
      const m = await readManifest(dir);
      if (!m) throw e;
      await rm(tmp, { recursive: true, force: true });
      return info(spec.name, dir, m, false);
    }
    progress(`template ${spec.name}: saved ${dir} (${(manifest.sizes.memory / 2 ** 20).toFixed(0)} MiB memory)`);
    await pruneTemplates(root, spec.name, spec.key).catch(() => {});
    return info(spec.name, dir, manifest, true);
  } catch (e) {
    if (e instanceof ForkboxError) throw e;
    throw buildFailed(`template ${spec.name}: ${(e as Error).message}`, e);
  } finally {
    vm?.close();
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
  }
}

function info(name: string, dir: string, manifest: TemplateManifest, built: boolean): TemplateInfo {
  return { name, key: manifest.key, dir, memPath: join(dir, 'memory'), statePath: join(dir, 'state'), manifest, built };
}

function templateKey(parts: Record<string, unknown>): string {
  return createHash('sha256').update(JSON.stringify({ ...parts, format: TEMPLATE_FORMAT, abi: FB_ABI_VERSION })).digest('hex');
}

/** Builds (or reuses from the cache) a template: a shipped one by name, or a recipe (recipe.ts). */
export async function buildTemplate(nameOrRecipe: string | TemplateRecipe, opts: BuildOptions = {}): Promise<TemplateInfo> {
  const recipe = typeof nameOrRecipe === 'string' ? shippedTemplate(nameOrRecipe) : nameOrRecipe;
  if (!recipe) throw buildFailed(`unknown template "${String(nameOrRecipe)}" (shipped: ${TEMPLATE_NAMES.join(', ')}; or give a recipe file)`);
  const name = recipe.name;
  if (!existsSync(runtimeElf)) throw buildFailed(`guest runtime not built (${runtimeElf} missing): run npm install`);
  const root = opts.root ?? join(trustedCacheDir(), 'templates');
  if (opts.root) trustedCacheDir(opts.root, []);
  const buildImage = await loadImageBuilder();
  const image = await buildImage(imageRecipeOf(recipe), { onProgress: opts.onProgress ?? (() => {}),
    ...(opts.lockPath ? { lockPath: opts.lockPath } : {}),
    ...(opts.pinned?.length ? { pinned: opts.pinned.map((p) => ({ ...p, filename: '', size: 0 })) } : {}) });
  const runtimeSha256 = await sha256File(runtimeElf);
  const ramSize = (opts.ramSizeMb ?? recipe.ramMb ?? DEFAULT_RAM_MB[recipe.base]) * 1024 * 1024;
  const env = Array.isArray(image.env) ? image.env : Object.entries(image.env).map(([k, v]) => `${k}=${v}`);
  // The snapshot pins the image file it was taken with (size and mtime are
  // checked at open): a rebuilt image file needs a new template even when its
  // content key is unchanged.
  const ist = await stat(image.imagePath);
  const imageFile = { size: ist.size, mtimeNs: (ist.mtimeMs * 1e6).toFixed(0) };
  const key = templateKey({ imageKey: image.key, imageFile, runtimeSha256, ramSize, argv: image.argv, env });
  const m = image.manifest;
  const report: BuildReport | undefined = m ? {
    packages: m.packages.length, imageBytes: m.image.size,
    rewritten: Object.fromEntries(Object.entries(m.rewrite.perFile).filter(([, f]) => f.rewritten > 0).map(([p, f]) => [p, f.rewritten])),
    refused: m.rewrite.unaccepted ?? [],
  } : undefined;
  return bootAndSave({
    name, ...(recipe.shipped ? {} : { recipe }), ...(report ? { report } : {}),
    ...(recipe.shipped || !m ? {} : { pinned: m.packages.map(({ name: n, version, arch, sha256 }) => ({ name: n, version, arch, sha256 })) }),
    key, guestElf: runtimeElf, imagePath: image.imagePath, argv: image.argv, env, ramSize,
    inputs: { imageKey: image.key, runtimeSha256, guestElf: runtimeElf, guestSha256: runtimeSha256, abiVersion: FB_ABI_VERSION,
      ramSize, argv: image.argv, env },
  }, root, opts);
}

/** Test guests in native/out/guests (built by `make -C native guests`). */
export const TEST_GUESTS = ['echo', 'counter', 'spin', 'crash', 'rogue', 'big'] as const;
export type TestGuest = (typeof TEST_GUESTS)[number];

/** Builds a template from a test guest ELF into `root` (a temp dir in tests). */
export async function buildTestTemplate(guest: TestGuest | string, root: string,
  opts: Omit<BuildOptions, 'root'> & { imagePath?: string } = {}): Promise<TemplateInfo> {
  const guestElf = join(testGuestDir, `${guest}.elf`);
  if (!existsSync(guestElf)) throw buildFailed(`test guest ${guestElf} missing: run make -C native guests`);
  const guestSha256 = await sha256File(guestElf);
  const ramSize = (opts.ramSizeMb ?? 64) * 1024 * 1024;
  trustedCacheDir(root, []);
  // An image (tests of the cache's image checks) must already sit in the
  // root's image directory; its path joins the key like the python template's.
  const imagePath = opts.imagePath;
  const imageFile = imagePath ? await stat(imagePath).then((s) => ({ size: s.size, mtimeNs: (s.mtimeMs * 1e6).toFixed(0) })) : undefined;
  const key = templateKey({ guestSha256, ramSize, ...(imagePath ? { imagePath, imageFile } : {}) });
  return bootAndSave({
    name: guest, key, guestElf, argv: [guest], env: [], ramSize, ...(imagePath ? { imagePath } : {}),
    inputs: { guestElf, guestSha256, abiVersion: FB_ABI_VERSION, ramSize, argv: [guest], env: [] },
  }, root, opts);
}

/**
 * Removes older templates of `name` from `root`, keeping `keepKey` and the
 * newest other one (a running server may still be forking from it; its open
 * files stay valid after the unlink anyway).
 */
export async function pruneTemplates(root: string, name: string, keepKey: string): Promise<string[]> {
  const old = (await listTemplates(root, { verify: false })).filter((t) => t.name === name && t.key !== keepKey);
  const removed: string[] = [];
  for (const t of old.slice(1)) {
    await rm(t.dir, { recursive: true, force: true });
    removed.push(t.key);
  }
  return removed;
}

/**
 * Lists the templates in the cache (newest first). With `verify` (the
 * default: a server loading from this list) the cache dir must be trusted and
 * each template must pass verifyTemplate; one that fails is left out and
 * logged as template.untrusted.
 */
export async function listTemplates(root?: string, opts: ListOptions = {}): Promise<TemplateInfo[]> {
  const { readdir } = await import('node:fs/promises');
  const verify = opts.verify ?? true;
  const dirRoot = root ?? (verify ? join(trustedCacheDir(), 'templates') : templatesRoot());
  if (root && verify) trustedCacheDir(root, []);
  let names: string[];
  try {
    names = await readdir(dirRoot);
  } catch {
    return [];
  }
  const out: TemplateInfo[] = [];
  for (const n of names) {
    if (n.startsWith('.')) continue;
    const dir = join(dirRoot, n);
    const m = await readManifest(dir);
    if (!m) continue;
    if (verify) {
      try {
        await verifyTemplate(dir, m.digests, imagesDirOf(dirRoot));
      } catch (e) {
        log.warn('template.untrusted', { template: m.name, key: m.key, reason: (e as Error).message, action: 'skip' });
        continue;
      }
    }
    out.push(info(m.name, dir, m, false));
  }
  return out.sort((a, b) => b.manifest.created.localeCompare(a.manifest.created));
}
