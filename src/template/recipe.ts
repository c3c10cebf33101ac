// recipe.ts — a template as a recipe: the one shape (TemplateRecipe) every
// template has, shipped (shipped.ts) or read from a user's JSON/YAML file
// (schema in docs/templates.md). parseRecipe validates a file and names the
// offending field; imageRecipeOf turns a template into the image builder's
// Recipe (its base language's runner, packages, preloads, files and env).
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { invalidRequest, type ForkboxError } from '../lib/errors.js';
import type { ExtraFile, Recipe } from '../image/recipe-types.js';
import { PYTHON_RECIPE } from '../languages/python.js';
import { NODE_RECIPE } from '../languages/javascript.js';

/** The runner (language module) a template is built on. */
export const TEMPLATE_BASES = ['python', 'javascript'] as const;
export type TemplateBase = (typeof TEMPLATE_BASES)[number];

/** A file a recipe adds to its image; `content` is base64 (a recipe's `path` files are read in). */
export interface TemplateFile { path: string; content: string; executable: boolean }

export interface TemplateRecipe {
  name: string;
  base: TemplateBase;
  /** Debian packages beyond the base's (their dependency closure comes too). */
  packages: string[];
  /** Packages left out of the closure although a dependency names them. */
  exclude: string[];
  /** Modules imported (python) or required (javascript) before the snapshot, beyond the base's. */
  preload: string[];
  /** Code run once at template boot, after the preloads, before the snapshot. */
  warmup?: string;
  files: TemplateFile[];
  env: Record<string, string>;
  /** Template RAM, MiB (default: the base language's). */
  ramMb?: number;
  /** Warm forks the server keeps for this template (default: 4 for python, 1 for others). */
  warmForks?: number;
  description?: string;
  /** Shipped with forkbox: refused syscall sites must be on the base's accepted list. */
  shipped: boolean;
}

const NAME = /^[a-z][a-z0-9-]{0,47}$/;
const PACKAGE = /^[a-z0-9][a-z0-9+.-]+$/;
const MODULE = /^[A-Za-z_@][A-Za-z0-9_./@-]*$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const FIELDS = ['name', 'base', 'description', 'packages', 'exclude', 'preload', 'warmup', 'files', 'env', 'ramMb', 'warmForks'];
/** RAM bounds of a template VM, MiB. */
export const RAM_MB_MIN = 256;
export const RAM_MB_MAX = 8192;
const MAX_FILE_BYTES = 16 << 20;

const bad = (where: string, field: string, msg: string): ForkboxError => invalidRequest(`recipe ${where}: ${field}: ${msg}`);

function strings(v: unknown, where: string, field: string, re: RegExp, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) throw bad(where, field, `must be a list of ${what}`);
  return v.map((x, i) => {
    if (typeof x !== 'string' || !re.test(x)) throw bad(where, `${field}[${i}]`, `${JSON.stringify(x)} is not a valid ${what}`);
    return x;
  });
}

function int(v: unknown, where: string, field: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw bad(where, field, `must be an integer from ${min} to ${max}`);
  return v;
}

/**
 * Validates a parsed recipe document. `where` names it in errors (a file
 * path); `dir` is where relative `files[].source` paths are read from.
 */
export function validateRecipe(doc: unknown, where: string, dir?: string): TemplateRecipe {
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw invalidRequest(`recipe ${where}: must be a mapping of fields`);
  const o = doc as Record<string, unknown>;
  for (const k of Object.keys(o)) if (!FIELDS.includes(k)) throw bad(where, k, `unknown field (known: ${FIELDS.join(', ')})`);
  if (typeof o.name !== 'string' || !NAME.test(o.name))
    throw bad(where, 'name', 'required: lowercase letters, digits and dashes, starting with a letter (at most 48)');
  if (typeof o.base !== 'string' || !(TEMPLATE_BASES as readonly string[]).includes(o.base))
    throw bad(where, 'base', `required: one of ${TEMPLATE_BASES.join(', ')}`);
  if (o.description !== undefined && typeof o.description !== 'string') throw bad(where, 'description', 'must be a string');
  if (o.warmup !== undefined && typeof o.warmup !== 'string') throw bad(where, 'warmup', 'must be a string of code');
  const env: Record<string, string> = {};
  if (o.env !== undefined && o.env !== null) {
    if (typeof o.env !== 'object' || Array.isArray(o.env)) throw bad(where, 'env', 'must be a mapping of NAME: value');
    for (const [k, v] of Object.entries(o.env as Record<string, unknown>)) {
      if (!ENV_NAME.test(k)) throw bad(where, `env.${k}`, 'is not a valid variable name');
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw bad(where, `env.${k}`, 'must be a string');
      env[k] = String(v);
    }
  }
  const files: TemplateFile[] = [];
  if (o.files !== undefined && o.files !== null) {
    if (!Array.isArray(o.files)) throw bad(where, 'files', 'must be a list of {path, content | source}');
    o.files.forEach((f: unknown, i) => {
      const at = `files[${i}]`;
      if (typeof f !== 'object' || f === null || Array.isArray(f)) throw bad(where, at, 'must be a mapping {path, content | source}');
      const e = f as Record<string, unknown>;
      for (const k of Object.keys(e)) if (!['path', 'content', 'source', 'executable'].includes(k)) throw bad(where, `${at}.${k}`, 'unknown field');
      if (typeof e.path !== 'string' || !e.path.startsWith('/') || e.path.split('/').some((c) => c === '..' || c === '.')
        || e.path.length > 1024 || e.path === '/')
        throw bad(where, `${at}.path`, 'required: an absolute image path without . or .. components');
      if ((e.content === undefined) === (e.source === undefined)) throw bad(where, at, 'needs exactly one of content (inline text) or source (a file)');
      if (e.executable !== undefined && typeof e.executable !== 'boolean') throw bad(where, `${at}.executable`, 'must be true or false');
      let data: Buffer;
      if (e.content !== undefined) {
        if (typeof e.content !== 'string') throw bad(where, `${at}.content`, 'must be a string');
        data = Buffer.from(e.content, 'utf8');
      } else {
        if (typeof e.source !== 'string' || !e.source) throw bad(where, `${at}.source`, 'must be a file path (relative to the recipe)');
        const p = isAbsolute(e.source) ? e.source : resolve(dir ?? process.cwd(), e.source);
        try {
          data = readFileSync(p);
        } catch (err) {
          throw bad(where, `${at}.source`, `cannot read ${e.source}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
      }
      if (data.length > MAX_FILE_BYTES) throw bad(where, at, `is larger than ${MAX_FILE_BYTES >> 20} MiB`);
      files.push({ path: e.path, content: data.toString('base64'), executable: e.executable === true });
    });
  }
  return {
    name: o.name, base: o.base as TemplateBase,
    packages: strings(o.packages, where, 'packages', PACKAGE, 'Debian package name'),
    exclude: strings(o.exclude, where, 'exclude', PACKAGE, 'Debian package name'),
    preload: strings(o.preload, where, 'preload', MODULE, 'module name'),
    ...(o.warmup !== undefined ? { warmup: o.warmup as string } : {}),
    files, env,
    ...(o.ramMb !== undefined ? { ramMb: int(o.ramMb, where, 'ramMb', RAM_MB_MIN, RAM_MB_MAX)! } : {}),
    ...(o.warmForks !== undefined ? { warmForks: int(o.warmForks, where, 'warmForks', 0, 64)! } : {}),
    ...(typeof o.description === 'string' ? { description: o.description } : {}),
    shipped: false,
  };
}

/** Parses recipe text: YAML (a superset of JSON) unless `format` says json. */
export function parseRecipe(text: string, where: string, opts: { format?: 'json' | 'yaml'; dir?: string } = {}): TemplateRecipe {
  let doc: unknown;
  const json = opts.format === 'json' || (opts.format === undefined && where.endsWith('.json'));
  try {
    doc = json ? JSON.parse(text) : parseYaml(text, { maxAliasCount: 100 });
  } catch (e) {
    throw invalidRequest(`recipe ${where}: not valid ${json ? 'JSON' : 'YAML'}: ${(e as Error).message.split('\n')[0]}`);
  }
  return validateRecipe(doc, where, opts.dir);
}

/** Reads and validates a recipe file (.json, .yaml or .yml). */
export function readRecipeFile(path: string): TemplateRecipe {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw invalidRequest(`recipe ${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return parseRecipe(text, path, { dir: dirname(resolve(path)) });
}

/** The lock file a recipe file's resolved package versions are pinned in. */
export const lockPathOf = (recipePath: string): string => `${recipePath}.lock.json`;

/** Where a python warm-up snippet goes in the image (imported as the last preload). */
const PY_WARMUP = { path: '/usr/lib/python3/dist-packages/_forkbox_warmup.py', module: '_forkbox_warmup' };
const JS_WARMUP = { path: '/opt/forkbox/warmup.js', module: '/opt/forkbox/warmup.js' };

/** The image builder's recipe for a template: its base's runner and files plus the template's additions. */
export function imageRecipeOf(t: TemplateRecipe): Recipe {
  const base = t.base === 'python' ? PYTHON_RECIPE : NODE_RECIPE;
  if (t.shipped && t.name === base.name) return base; // the language's own template: its recipe as it is
  const w = t.base === 'python' ? PY_WARMUP : JS_WARMUP;
  const preload = [...base.preload, ...t.preload.filter((m) => !base.preload.includes(m)), ...(t.warmup !== undefined ? [w.module] : [])];
  const files: ExtraFile[] = [...base.extraFiles, ...t.files.map((f) => ({ path: f.path, content: f.content, executable: f.executable })),
    ...(t.warmup !== undefined ? [{ path: w.path, content: Buffer.from(t.warmup, 'utf8').toString('base64') }] : [])];
  const i = base.argv.indexOf('--preload');
  const argv = i >= 0 ? [...base.argv.slice(0, i + 1), preload.join(','), ...base.argv.slice(i + 2)] : [...base.argv];
  return {
    name: t.name,
    packages: [...base.packages, ...t.packages.filter((p) => !base.packages.includes(p))],
    ...(t.exclude.length ? { exclude: [...t.exclude] } : {}),
    extraFiles: files,
    argv,
    env: { ...base.env, ...t.env },
    preload,
    acceptedRefusals: base.acceptedRefusals,
    // A user's packages may hold sites the rewriter refuses: the build reports them; reaching one crashes that sandbox.
    ...(t.shipped ? {} : { reportRefusals: true }),
    mustExist: base.mustExist,
  };
}
