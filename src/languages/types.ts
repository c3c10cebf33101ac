// types.ts — what a language is to forkbox: one module per language owns its
// image recipe, the RAM its template boots with, the runner protocol (how an
// exec request is encoded for the runner inside the guest, how its answer is
// read) and the warm-up exec. The engine, the template builder and the server
// know languages only through this shape (see src/languages/index.ts).
import type { Recipe } from '../image/recipe-types.js';
import { decodeResults, type DisplayResult } from './rich.js';

/** What the runner is asked to do in one exec. */
export interface RunnerRequest {
  code: string;
  env?: Record<string, string>;
  stdin?: string;
  /** Run in the session's one namespace (REPL semantics); else fresh globals. */
  session?: boolean;
  /** Reseed the program's RNGs from the request's entropy (always for one-shot execs). */
  reseed?: boolean;
  /** Directory to enter first (a session's first exec). */
  cwd?: string;
}

/** What the runner answered in the result area. */
export interface RunnerAnswer {
  exitCode?: number;
  /** repr (or inspect) of a session exec's last expression. */
  result?: string;
  resultTruncated?: boolean;
  /** Rich outputs (display(), figures, a session's last expression), decoded and bounded. */
  results?: DisplayResult[];
  /** Some rich outputs were dropped (over the count or byte limit, or malformed). */
  resultsTruncated?: boolean;
}

export interface LanguageModule {
  /** Canonical name, as `language` in the API and as the template's name. */
  readonly name: string;
  /** Other names clients send (Zeroboot's clients send "node"). */
  readonly aliases: readonly string[];
  readonly recipe: Recipe;
  /** Template RAM, MiB (raised by the engine when the memory limit needs more). */
  readonly ramMb: number;
  /** Fixed platform code a warm fork runs once before serving a user (no output). */
  readonly warmupCode: string;
  /** Host-side preparation of user code (e.g. TypeScript → JavaScript); a compile error is the program's failure. */
  prepare?(code: string): { code: string } | { error: string };
  encodeRequest(req: RunnerRequest): Buffer;
  decodeAnswer(result: Buffer): RunnerAnswer;
}

/** The answer both runners write: `{"exit_code": n[, "result": "...", "result_truncated": true]
 *  [, "results": [{"data": {mime: value}, "main": true}, ...], "results_truncated": true]}`. */
export function decodeJsonAnswer(result: Buffer): RunnerAnswer {
  if (!result.length) return {};
  let j: { exit_code?: unknown; result?: unknown; result_truncated?: unknown; results?: unknown; results_truncated?: unknown };
  try {
    j = JSON.parse(result.toString('utf8')) as typeof j;
  } catch {
    return {};
  }
  if (j === null || typeof j !== 'object') return {};
  const rich = j.results !== undefined || j.results_truncated !== undefined ? decodeResults(j.results, j.results_truncated) : undefined;
  return {
    ...(typeof j.exit_code === 'number' && Number.isInteger(j.exit_code) ? { exitCode: j.exit_code } : {}),
    ...(typeof j.result === 'string' ? { result: j.result } : {}),
    ...(j.result_truncated === true ? { resultTruncated: true } : {}),
    ...(rich && rich.results.length ? { results: rich.results } : {}),
    ...(rich?.truncated ? { resultsTruncated: true } : {}),
  };
}
