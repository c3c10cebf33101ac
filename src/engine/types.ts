// types.ts — the engine's public shape, shared by the HTTP server, the CLI and
// tests. The engine owns templates, the fork pool and execs; the server only
// validates, authenticates and maps results to JSON.

import { LANGUAGE_NAMES } from '../languages/index.js';
import type { DisplayResult } from '../languages/rich.js';

export type { DisplayResult } from '../languages/rich.js';

/** A language name or alias of a registered language module (src/languages). */
export type Language = string;
export const LANGUAGES: readonly Language[] = LANGUAGE_NAMES;

export interface ExecRequest {
  code: string;
  language: Language;
  /** Template by name (default: the language's own); its base must be the language's. */
  template?: string;
  /** Wall-clock limit for the exec, seconds. */
  timeoutSeconds: number;
  env?: Record<string, string>;
  stdin?: string;
  /** Output caps in bytes (defaults: engine config). */
  stdoutCap?: number;
  stderrCap?: number;
}

/** How an exec ended. A program failing is 'exited' with its code, not an error. */
export type ExecOutcome =
  | 'exited'      // the program ran to the end (exit code from the runner, sys.exit, os._exit)
  | 'timeout'     // the deadline passed; exitCode is 124 by convention, stderr says so
  | 'crashed'     // the sandbox crashed (CPU fault, rogue I/O, out of memory); exitCode 137
  | 'cancelled';  // the caller went away (AbortSignal)

export interface ExecResult {
  id: string;
  stdout: string;
  stderr: string;
  exitCode: number;
  outcome: ExecOutcome;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  forkTimeMs: number;
  execTimeMs: number;
  totalTimeMs: number;
  /** Crash detail when outcome is 'crashed'. */
  crash?: string;
  /** Rich outputs: what the program displayed (display(obj), plt.show(), figures left open,
   *  a session's last expression), each a MIME bundle in E2B's Result shape. Absent when none. */
  results?: DisplayResult[];
  /** Some rich outputs were dropped: over 16, over the byte limit, or malformed. */
  resultsTruncated?: boolean;
}

export interface PoolState { ready: number; target: number; created: number; taken: number; misses: number }

export interface EngineHealth {
  ready: boolean;
  /** By template name: its base language, readiness and content key. */
  templates: Record<string, { ready: boolean; base?: string; building?: boolean; error?: string; key?: string }>;
  pool: PoolState;
  liveForks: number;
  inFlight: number;
  /** Sessions held (live and paused). */
  sessions?: number;
}

export interface Engine {
  /** Resolves when the default template(s) are built and loaded and the pool is warm. */
  ready(): Promise<void>;
  exec(req: ExecRequest, signal?: AbortSignal): Promise<ExecResult>;
  health(): EngineHealth;
  /** Warm-fork pool counters of a template (null when it keeps none); optional for engines without a pool. */
  warmStats?(template: string): { ready: number; taken: number; misses: number; recycled: number; recycleFailed: number } | null;
  /** Finishes (or, past the grace period, cancels) in-flight execs and releases every VM. */
  close(graceMs?: number): Promise<void>;
}
