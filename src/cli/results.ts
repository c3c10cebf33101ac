// results.ts — rich outputs on the command line (`forkbox exec` and `forkbox
// session exec`): `--save-results DIR` writes each format of each result as
// DIR/result-<n>.<ext> (png, jpg, svg, pdf, html, md, tex, json, js, txt;
// base64 formats decoded) and prints the paths on stderr, since stdout is the
// program's. Without it, one stderr line says what came back.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FORMAT_EXTENSIONS } from '../languages/rich.js';

/** The fields the engine's DisplayResult and the SDK's Result share. */
export type ResultLike = { [K in (typeof FORMAT_EXTENSIONS)[number][0]]?: unknown } & { isMainResult?: boolean };

const BASE64 = new Set(['png', 'jpeg', 'pdf']);

/** The formats of a result, by field name. */
export const formatsOf = (r: ResultLike): string[] => FORMAT_EXTENSIONS.filter(([f]) => r[f] !== undefined).map(([f]) => f);

/** Writes every format of every result into `dir` (created if missing); returns the paths written. */
export function saveResults(dir: string, results: readonly ResultLike[]): string[] {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true });
  const paths: string[] = [];
  results.forEach((r, i) => {
    for (const [field, ext] of FORMAT_EXTENSIONS) {
      const v = r[field];
      if (v === undefined) continue;
      const data = BASE64.has(field) && typeof v === 'string' ? Buffer.from(v, 'base64')
        : field === 'json' ? JSON.stringify(v, null, 2) + '\n' : String(v);
      const path = join(root, `result-${i + 1}.${ext}`);
      writeFileSync(path, data);
      paths.push(path);
    }
  });
  return paths;
}

/** After an exec: save (and list) the results, or say on stderr that there are some. */
export function reportResults(results: readonly ResultLike[], truncated: boolean, saveDir: string | undefined): void {
  if (saveDir !== undefined) {
    for (const p of saveResults(saveDir, results)) process.stderr.write(`forkbox: saved ${p}\n`);
  } else {
    const shown = results.filter((r) => !r.isMainResult);
    if (shown.length) {
      const list = shown.map((r) => formatsOf(r).join('+')).join(', ');
      process.stderr.write(`forkbox: ${shown.length} rich output${shown.length > 1 ? 's' : ''} (${list}); --save-results DIR writes them\n`);
    }
  }
  if (truncated) process.stderr.write('forkbox: rich outputs were truncated (at most 16 per exec, about 900 KiB in all)\n');
}
