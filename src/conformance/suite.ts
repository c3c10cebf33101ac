// suite.ts — CPython's regression tests as Debian ships them: the
// libpython3.11-testsuite package (test/test_*) plus test/support from
// libpython3.11-stdlib, fetched through the image builder's package resolver and
// unpacked once under the cache dir; lists the modules and bundles the files
// one module needs (with the test modules it imports; zlib, base64) for the runner.
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { deflateSync } from 'node:zlib';
import { cacheDir } from '../lib/paths.js';
import { extractDebs } from '../image/extract.js';
import { downloadAll, resolveClosureCached } from '../image/packages.js';

export const SUITE_PACKAGES = ['libpython3.11-testsuite', 'libpython3.11-stdlib'];
/** Large data only one module reads: bundled for that module alone. */
const MODULE_DATA: Record<string, string[]> = { test_decimal: ['decimaltestdata'] };
/** Suites that live inside a stdlib package: [package, directory under the lib root]. */
export const PACKAGE_SUITES: Record<string, Array<[string, string]>> = {
  test_ctypes: [['ctypes', 'ctypes']],
  test_unittest: [['unittest', 'unittest']],
  test_lib2to3: [['lib2to3', 'lib2to3']],
  test_distutils: [['distutils', 'distutils']],
};
const PACKAGE_SUITE_DIRS: Record<string, string> = { ctypes: 'ctypes/test', unittest: 'unittest/test', lib2to3: 'lib2to3/tests', distutils: 'distutils/tests' };

export interface Suite {
  /** .../usr/lib/python3.11 of the unpacked packages. */
  libDir: string;
  testDir: string;
  version: string;
}

/** Downloads (or reuses) the suite's packages and unpacks them under the cache dir. */
export async function ensureSuite(onProgress: (l: string) => void = () => {}): Promise<Suite> {
  const pkgs = (await resolveClosureCached(SUITE_PACKAGES, true)).filter((p) => SUITE_PACKAGES.includes(p.name));
  if (pkgs.length !== SUITE_PACKAGES.length) throw new Error(`cannot resolve ${SUITE_PACKAGES.join(', ')}`);
  const version = pkgs.find((p) => p.name === SUITE_PACKAGES[0])!.version;
  const dir = join(cacheDir(), 'conformance', version.replace(/[^A-Za-z0-9.+~-]/g, '_'));
  const libDir = join(dir, 'usr', 'lib', 'python3.11');
  if (!existsSync(join(dir, '.complete'))) {
    onProgress(`unpacking ${pkgs.map((p) => `${p.name}=${p.version}`).join(' ')}`);
    const locked = await downloadAll(pkgs, onProgress);
    const tmp = `${dir}.tmp-${process.pid}`;
    await rm(tmp, { recursive: true, force: true });
    await extractDebs(locked.map((p) => p.deb), tmp);
    await writeFile(join(tmp, '.complete'), version + '\n');
    await rm(dir, { recursive: true, force: true });
    await mkdir(join(dir, '..'), { recursive: true });
    await rename(tmp, dir);
  }
  return { libDir, testDir: join(libDir, 'test'), version };
}

/** test_* modules (files and packages) of the suite, sorted. */
export async function listModules(testDir: string): Promise<string[]> {
  const out: string[] = [];
  for (const name of await readdir(testDir)) {
    if (!name.startsWith('test_')) continue;
    if (name.endsWith('.py')) out.push(name.slice(0, -3));
    else if (existsSync(join(testDir, name, '__init__.py'))) out.push(name);
  }
  return out.sort();
}

async function walk(root: string, rel: string, out: string[], skip: (rel: string) => boolean): Promise<void> {
  const abs = join(root, rel);
  const st = await stat(abs);
  if (st.isDirectory()) {
    for (const n of (await readdir(abs)).sort()) {
      const r = rel ? `${rel}/${n}` : n;
      if (n === '__pycache__' || skip(r)) continue;
      await walk(root, r, out, skip);
    }
  } else if (st.isFile()) out.push(rel);
}

/** Packs files (paths relative to `root`) as the runner's blob: 8-byte header length, JSON [[path, size]], data. */
export async function packBlob(root: string, files: string[]): Promise<string> {
  const datas = await Promise.all(files.map((f) => readFile(join(root, f))));
  const header = Buffer.from(JSON.stringify(files.map((f, i) => [f, datas[i]!.length])));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  return deflateSync(Buffer.concat([len, header, ...datas]), { level: 6 }).toString('base64');
}

/** Bundles: the shared part of test/ (support, data files; not other modules) is packed once. */
export class Bundler {
  #common: Promise<string> | null = null;
  constructor(readonly suite: Suite) {}

  common(): Promise<string> {
    const skipData = new Set(Object.values(MODULE_DATA).flat());
    this.#common ??= (async () => {
      const files: string[] = [];
      await walk(this.suite.libDir, 'test', files, (r) => /^test\/test_[^/]+$/.test(r) || skipData.has(r.slice(5)));
      return packBlob(this.suite.libDir, files);
    })();
    return this.#common;
  }

  async #moduleFiles(module: string): Promise<string[]> {
    const files: string[] = [];
    const file = `test/${module}.py`;
    if (existsSync(join(this.suite.libDir, file))) files.push(file);
    else if (existsSync(join(this.suite.libDir, 'test', module))) await walk(this.suite.libDir, `test/${module}`, files, () => false);
    return files;
  }

  /** The module and every test_* module it imports (test.test_x, from test import test_x), transitively. */
  async closure(module: string): Promise<string[]> {
    const seen = new Set<string>([module]);
    const queue = [module];
    while (queue.length) {
      const m = queue.shift()!;
      for (const f of await this.#moduleFiles(m)) {
        if (!f.endsWith('.py')) continue;
        const text = await readFile(join(this.suite.libDir, f), 'utf8');
        const names = [...text.matchAll(/\btest\.(test_\w+)/g)].map((x) => x[1]!);
        for (const x of text.matchAll(/^\s*from test import ([\w, ()]+)/gm)) names.push(...x[1]!.split(/[\s,()]+/).filter((n) => n.startsWith('test_')));
        for (const n of names) {
          if (seen.has(n) || !(await this.#moduleFiles(n)).length) continue;
          seen.add(n);
          queue.push(n);
        }
      }
    }
    return [...seen];
  }

  /** Blobs for one module: the common part, then the files and data of the module and the test modules it imports. */
  async blobs(module: string): Promise<string[]> {
    const files: string[] = [];
    for (const m of await this.closure(module)) files.push(...await this.#moduleFiles(m));
    for (const d of MODULE_DATA[module] ?? []) await walk(this.suite.libDir, `test/${d}`, files, () => false);
    for (const [pkg] of PACKAGE_SUITES[module] ?? []) {
      const sub = PACKAGE_SUITE_DIRS[pkg];
      if (sub && existsSync(join(this.suite.libDir, sub))) await walk(this.suite.libDir, sub, files, () => false);
      // Their own tests import other test_* modules too (unittest's test_discovery: test.test_importlib).
      for (const f of [...files]) {
        if (!f.startsWith(`${sub}/`) || !f.endsWith('.py')) continue;
        for (const x of (await readFile(join(this.suite.libDir, f), 'utf8')).matchAll(/\btest\.(test_\w+)/g)) {
          for (const m of await this.closure(x[1]!)) for (const g of await this.#moduleFiles(m)) if (!files.includes(g)) files.push(g);
        }
      }
    }
    return [await this.common(), await packBlob(this.suite.libDir, files)];
  }
}
