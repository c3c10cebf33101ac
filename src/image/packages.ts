// packages.ts — resolves a recipe's package names to their Depends/Pre-Depends
// closure with exact candidate versions (apt-cache), then downloads each .deb
// (apt-get download) into the cache, verified against the index's SHA256.
// Or-groups take the first real alternative (or one already chosen); virtual
// packages are skipped; EXCLUDED packages are never pulled in (see below).
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, stat, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { cacheDir } from '../lib/paths.js';

const run = promisify(execFile);

/**
 * Packages a sandbox never needs although Depends pull them in: package
 * managers and maintainer-script tooling (no package is ever configured in a
 * sandbox) and perl (nothing in a recipe runs it). Each is safe only because
 * nothing the runners execute loads a file from it.
 */
export const EXCLUDED: Record<string, string> = {
  dpkg: 'package manager; maintainer scripts never run in an image',
  debconf: 'configuration of maintainer scripts',
  'install-info': 'info directory maintenance',
  'perl-base': 'perl interpreter; no runner uses perl',
  perl: 'perl interpreter',
  'perl-modules-5.36': 'perl modules',
  'libperl5.36': 'perl library',
  tar: 'archiver binary; Python\'s tarfile is pure Python',
  'readline-common': '/etc/inputrc and docs only; libreadline works without them',
};

export interface ResolvedPackage { name: string; version: string; arch: string; sha256: string; filename: string; size: number }
export interface LockedPackage extends ResolvedPackage { deb: string }

const APT_DEPENDS_FLAGS = ['--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances'];

async function apt(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, { maxBuffer: 64 << 20, env: { ...process.env, LC_ALL: 'C' } });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.slice(0, 3).join(' ')}… failed: ${(err.stderr || err.message).trim().slice(0, 500)}`);
  }
}

interface Alternative { name: string; virtual: boolean; providers: string[] }

/** Parses `apt-cache depends` output into package -> list of or-groups. */
export function parseDepends(text: string): Map<string, Alternative[][]> {
  const out = new Map<string, Alternative[][]>();
  let groups: Alternative[][] | undefined;
  let openGroup = false;
  let last: Alternative | undefined;
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    if (!line.startsWith(' ')) {
      groups = [];
      out.set(line.trim(), groups);
      openGroup = false;
      continue;
    }
    const m = /^ (\||\s)(PreDepends|Depends): (.+)$/.exec(line);
    if (m && groups) {
      const raw = m[3]!.trim();
      const virtual = raw.startsWith('<');
      const alt: Alternative = { name: raw.replace(/^<|>$/g, '').replace(/:any$/, ''), virtual, providers: [] };
      if (openGroup) groups[groups.length - 1]!.push(alt);
      else groups.push([alt]);
      openGroup = m[1] === '|';
      last = alt;
    } else if (/^ {4}\S/.test(line) && last?.virtual) {
      last.providers.push(line.trim().replace(/:any$/, ''));
    } else if (/^ {2}\S/.test(line)) {
      last = undefined; // another relation kind (filtered out by flags anyway)
    }
  }
  return out;
}

/**
 * Candidate versions from `apt-cache policy` (undefined when the package has none).
 * A candidate known only from the local dpkg status (a package installed on the
 * build host from elsewhere, e.g. a newer nodejs) cannot be downloaded: then the
 * highest-priority version an index offers is taken (apt lists versions newest
 * first, so ties go to the newest).
 */
async function candidates(names: string[]): Promise<Map<string, string | undefined>> {
  const out = new Map<string, string | undefined>();
  let cur: string | undefined;
  let cand: string | undefined;
  let table: Array<{ version: string; prio: number; sources: string[] }> = [];
  const flush = (): void => {
    if (!cur) return;
    const c = table.find((v) => v.version === cand);
    if (cand && (!c || c.sources.some((s) => !s.includes('/var/lib/dpkg/status')))) { out.set(cur, cand); return; }
    const fetchable = table.filter((v) => v.sources.some((s) => !s.includes('/var/lib/dpkg/status')));
    fetchable.sort((a, b) => b.prio - a.prio);
    out.set(cur, cand ? fetchable[0]?.version : undefined);
  };
  for (const line of (await apt('apt-cache', ['policy', ...names])).split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) { flush(); cur = head[1]!; cand = undefined; table = []; continue; }
    const c = /^\s+Candidate: (\S+)/.exec(line);
    if (c && cur) { cand = c[1] === '(none)' ? undefined : c[1]; continue; }
    const v = /^ (?:\*\*\*| {3}) (\S+) (-?\d+)$/.exec(line);
    if (v) { table.push({ version: v[1]!, prio: Number(v[2]), sources: [] }); continue; }
    const src = /^ {8}-?\d+ (.+)$/.exec(line);
    if (src && table.length > 0) table[table.length - 1]!.sources.push(src[1]!);
  }
  flush();
  return out;
}

let updated = false;
async function ensureLists(names: string[], allowUpdate: boolean): Promise<void> {
  const cand = await candidates(names);
  const missing = names.filter((n) => !cand.get(n));
  if (missing.length === 0) return;
  if (updated || !allowUpdate) throw new Error(`no installable candidate for: ${missing.join(', ')}`);
  updated = true;
  await apt('apt-get', ['update', '-qq']);
  return ensureLists(names, false);
}

/** The closure of `roots`, sorted by name, each with its candidate version and index metadata. */
export async function resolveClosure(roots: string[], allowUpdate = true, exclude: readonly string[] = []): Promise<ResolvedPackage[]> {
  await ensureLists(roots, allowUpdate);
  const dropped = new Set(exclude);
  const chosen = new Set<string>(roots);
  let frontier = [...roots];
  while (frontier.length > 0) {
    // the dependencies of the version that will be downloaded (not of a locally installed other one)
    const fv = await candidates(frontier);
    const specs = frontier.map((n) => (fv.get(n) ? `${n}=${fv.get(n)}` : n));
    const deps = parseDepends(await apt('apt-cache', ['depends', ...APT_DEPENDS_FLAGS, ...specs]));
    const next: string[] = [];
    for (const name of frontier) {
      for (const group of deps.get(name) ?? []) {
        const real = group.filter((a) => !a.virtual).map((a) => a.name);
        const provided = group.flatMap((a) => (a.virtual ? a.providers : []));
        if ([...real, ...provided].some((n) => chosen.has(n))) continue;
        const pick = real[0] ?? provided[0];
        if (!pick || pick in EXCLUDED || dropped.has(pick)) continue;
        chosen.add(pick);
        next.push(pick);
      }
    }
    frontier = next;
  }
  const names = [...chosen].sort();
  const cand = await candidates(names);
  const specs = names.map((n) => {
    const v = cand.get(n);
    if (!v) throw new Error(`no candidate version for ${n}`);
    return `${n}=${v}`;
  });
  return parseShow(await apt('apt-cache', ['show', '--no-all-versions', ...specs]), names, cand);
}

function parseShow(text: string, names: string[], cand: Map<string, string | undefined>): ResolvedPackage[] {
  const byName = new Map<string, ResolvedPackage>();
  for (const block of text.split(/\n\n+/)) {
    const field = (k: string): string | undefined => new RegExp(`^${k}: (.*)$`, 'm').exec(block)?.[1]?.trim();
    const name = field('Package');
    const version = field('Version');
    if (!name || !version || version !== cand.get(name) || byName.has(name)) continue;
    byName.set(name, {
      name, version, arch: field('Architecture') ?? 'amd64', sha256: field('SHA256') ?? '',
      filename: field('Filename') ?? '', size: Number(field('Size') ?? 0),
    });
  }
  return names.map((n) => {
    const p = byName.get(n);
    if (!p || !p.sha256) throw new Error(`apt-cache show gave no record with a SHA256 for ${n}=${cand.get(n)}`);
    return p;
  });
}

const APT_LISTS = '/var/lib/apt/lists';

/** Identifies the state of apt's package lists (names, sizes, mtimes of the Packages indexes). */
async function listsFingerprint(roots: string[], exclude: readonly string[] = []): Promise<string> {
  const names = (await readdir(APT_LISTS).catch(() => [] as string[])).filter((n) => n.endsWith('_Packages') || n.endsWith('Release')).sort();
  const parts: string[] = [];
  for (const n of names) {
    const st = await stat(join(APT_LISTS, n)).catch(() => undefined);
    if (st) parts.push(`${n}:${st.size}:${st.mtimeMs}`);
  }
  return createHash('sha256').update(JSON.stringify({ roots, excluded: Object.keys(EXCLUDED), ...(exclude.length ? { exclude } : {}), parts })).digest('hex').slice(0, 32);
}

/**
 * resolveClosure, remembered per apt-lists state: resolving costs seconds of
 * apt-cache, and a cached image build should not. Any `apt-get update` changes
 * the fingerprint and so re-resolves.
 */
export async function resolveClosureCached(roots: string[], allowUpdate = true, exclude: readonly string[] = []): Promise<ResolvedPackage[]> {
  const dir = join(cacheDir(), 'resolve');
  const before = await listsFingerprint(roots, exclude);
  try {
    const hit = JSON.parse(await readFile(join(dir, `${before}.json`), 'utf8')) as ResolvedPackage[];
    if (Array.isArray(hit) && hit.length > 0 && hit.every((p) => p.name && p.version && p.sha256)) return hit;
  } catch { /* not cached */ }
  const pkgs = await resolveClosure(roots, allowUpdate, exclude);
  const after = await listsFingerprint(roots, exclude);
  await mkdir(dir, { recursive: true });
  const tmp = join(dir, `.${after}.${process.pid}`);
  await writeFile(tmp, JSON.stringify(pkgs));
  await rename(tmp, join(dir, `${after}.json`));
  return pkgs;
}

export const debDir = (): string => join(cacheDir(), 'debs');
export const debName = (p: ResolvedPackage): string => `${p.name}_${p.version.replace(/:/g, '%3a')}_${p.arch}.deb`;

async function sha256File(path: string): Promise<string> {
  return createHash('sha256').update(await readFile(path)).digest('hex');
}

/** Downloads every package not already cached; verifies each file's SHA256. */
export async function downloadAll(pkgs: ResolvedPackage[], onProgress?: (msg: string) => void): Promise<LockedPackage[]> {
  const dir = debDir();
  await mkdir(dir, { recursive: true });
  const out: LockedPackage[] = [];
  const missing: ResolvedPackage[] = [];
  for (const p of pkgs) {
    const deb = join(dir, debName(p));
    const ok = await stat(deb).then(() => true, () => false);
    if (ok && (await sha256File(deb)) === p.sha256) out.push({ ...p, deb });
    else missing.push(p);
  }
  if (missing.length > 0) {
    onProgress?.(`downloading ${missing.length} package(s)`);
    // apt-get download writes into the current directory; use a private one, then move.
    const tmp = join(dir, `.dl-${process.pid}`);
    await rm(tmp, { recursive: true, force: true });
    await mkdir(tmp);
    try {
      await new Promise<void>((resolve, reject) => {
        execFile('apt-get', ['download', '-qq', ...missing.map((p) => `${p.name}=${p.version}`)], { cwd: tmp, maxBuffer: 16 << 20 },
          (err, _o, stderr) => (err ? reject(new Error(`apt-get download failed: ${stderr.trim().slice(0, 500)}`)) : resolve()));
      });
      const got = new Set(await readdir(tmp));
      for (const p of missing) {
        const name = debName(p);
        if (!got.has(name)) throw new Error(`apt-get download did not produce ${name}`);
        const hash = await sha256File(join(tmp, name));
        if (hash !== p.sha256) throw new Error(`${name}: sha256 ${hash} does not match the index (${p.sha256})`);
        await rename(join(tmp, name), join(dir, name));
        out.push({ ...p, deb: join(dir, name) });
      }
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  return out.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}
