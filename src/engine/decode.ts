// decode.ts — the engine's pure parts: validating an ExecRequest, encoding the
// runner's JSON request, and turning a VMM response into an ExecResult
// (outcome, exit code, UTF-8 output, truncation flags, crash detail).
// No VM here, so test/unit/engine-*.test.ts cover it without /dev/kvm.
import { randomBytes } from 'node:crypto';
import { invalidRequest, payloadTooLarge } from '../lib/errors.js';
import { FB_ERR_TRUNCATED, FB_MB_ERR_SIZE, FB_MB_OUT_SIZE, FB_MB_REQ_SIZE, FB_OUT_TRUNCATED, FB_ST_DONE,
  FB_ST_ERROR, FB_ST_EXIT } from '../vmm/abi.js';
import type { Response } from '../vmm/vmm.js';
import { decodeJsonAnswer } from '../languages/types.js';
import { LANGUAGES, type ExecOutcome, type ExecRequest, type ExecResult } from './types.js';

/** enum vmm_outcome, in the order of native/include/vmm.h. */
export const VMM_OK = 0;
export const VMM_TIMEOUT = 8;
export const VMM_KILLED = 9;

/** The one limit on timeoutSeconds: the server's FORKBOX_MAX_TIMEOUT_SECONDS may only lower it. */
export const MAX_TIMEOUT_SECONDS = 3600;
/** Timeouts are whole milliseconds, rounded up: anything in (0, 0.001] s runs with a 1 ms deadline.
 *  The VMM refuses a deadline of 0, so no request can switch its deadline off. */
export const MIN_TIMEOUT_MS = 1;
export const TIMEOUT_EXIT_CODE = 124;
export const CRASH_EXIT_CODE = 137;

export const newExecId = (): string => 'exec_' + randomBytes(12).toString('base64url');

export interface Caps { stdoutCap: number; stderrCap: number }

/** Checks a request from any caller (server, CLI); throws InvalidRequest / PayloadTooLarge. */
export function validateExec(req: ExecRequest, defaults: Caps): Caps & { timeoutMs: number } {
  if (req === null || typeof req !== 'object') throw invalidRequest('request must be an object');
  if (!LANGUAGES.includes(req.language)) throw invalidRequest(`unsupported language "${String(req.language)}" (supported: ${LANGUAGES.join(', ')})`);
  if (typeof req.code !== 'string') throw invalidRequest('code must be a string');
  if (typeof req.timeoutSeconds !== 'number' || !Number.isFinite(req.timeoutSeconds) || req.timeoutSeconds <= 0 || req.timeoutSeconds > MAX_TIMEOUT_SECONDS)
    throw invalidRequest(`timeoutSeconds must be a number in (0, ${MAX_TIMEOUT_SECONDS}]`);
  if (req.env !== undefined) {
    if (req.env === null || typeof req.env !== 'object' || Array.isArray(req.env)) throw invalidRequest('env must be an object of strings');
    for (const [k, v] of Object.entries(req.env)) {
      if (typeof v !== 'string') throw invalidRequest(`env.${k} must be a string`);
      if (!k || k.includes('=') || k.includes('\0') || v.includes('\0')) throw invalidRequest(`env name/value "${k}" is invalid`);
    }
  }
  if (req.stdin !== undefined && typeof req.stdin !== 'string') throw invalidRequest('stdin must be a string');
  const cap = (v: number | undefined, dflt: number, max: number, name: string): number => {
    if (v === undefined) return dflt;
    if (!Number.isSafeInteger(v) || v < 0 || v > max) throw invalidRequest(`${name} must be an integer in [0, ${max}]`);
    return v;
  };
  return {
    stdoutCap: cap(req.stdoutCap, defaults.stdoutCap, FB_MB_OUT_SIZE, 'stdoutCap'),
    stderrCap: cap(req.stderrCap, defaults.stderrCap, FB_MB_ERR_SIZE, 'stderrCap'),
    timeoutMs: timeoutMs(req.timeoutSeconds),
  };
}

/** A validated timeoutSeconds as the run's deadline: whole ms, rounded up, at least MIN_TIMEOUT_MS. */
export function timeoutMs(seconds: number): number {
  const ms = Math.max(MIN_TIMEOUT_MS, Math.ceil(seconds * 1000));
  if (!Number.isFinite(ms) || ms <= 0) throw invalidRequest(`timeoutSeconds must be a number in (0, ${MAX_TIMEOUT_SECONDS}]`);
  return ms;
}

/** The runner's request (guest/runner.py reads it from the control device). */
export function encodePayload(req: ExecRequest): Buffer {
  const body = Buffer.from(JSON.stringify({ code: req.code, env: req.env ?? {}, stdin: req.stdin ?? '' }), 'utf8');
  if (body.length > FB_MB_REQ_SIZE) throw payloadTooLarge(`request is ${body.length} bytes; the limit is ${FB_MB_REQ_SIZE}`);
  return body;
}

/** UTF-8 with invalid sequences replaced by U+FFFD. */
export const utf8 = (b: Buffer): string => new TextDecoder('utf-8', { fatal: false }).decode(b);

/** The VMM's own detail line (it already names vector, RIP and CR2 of a fault);
 *  the raw fault fields only when the VMM gave no detail. */
export function crashDetail(r: Response): string {
  if (r.detail) return r.detail;
  if (r.outcome.includes('fault') || r.outcomeCode === 1) {
    return `${r.outcome}: vector ${r.faultVector} error 0x${r.faultError.toString(16)} rip 0x${r.faultRip.toString(16)}` +
      (r.faultVector === 14 ? ` cr2 0x${r.faultCr2.toString(16)}` : '');
  }
  return r.outcome;
}

export interface Timing { forkMs: number; execMs: number; totalMs: number }

/** Maps a VMM response to an ExecResult. `cancelled` = the caller aborted. */
/** The VMM reads a cap of 0 as "the whole area": ask it for at least 1 byte and
 *  enforce the caller's cap (0 included) here, in decodeResponse. */
export const vmmCap = (cap: number): number => Math.max(1, cap);

export function decodeResponse(id: string, r: Response, t: Timing,
  o: { timeoutSeconds: number; cancelled: boolean; stdoutCap?: number; stderrCap?: number }): ExecResult {
  let outcome: ExecOutcome;
  let exitCode: number;
  const outCap = o.stdoutCap ?? Infinity;
  const errCap = o.stderrCap ?? Infinity;
  const out = r.stdout.length > outCap ? r.stdout.subarray(0, outCap) : r.stdout;
  const err = r.stderr.length > errCap ? r.stderr.subarray(0, errCap) : r.stderr;
  let stderr = utf8(err);
  let crash: string | undefined;
  const rich: Pick<ExecResult, 'results' | 'resultsTruncated'> = {};
  if (r.outcomeCode === VMM_OK && (r.status === FB_ST_DONE || r.status === FB_ST_EXIT)) {
    outcome = 'exited';
    if (r.status === FB_ST_DONE) {
      // Both runners answer JSON: the exit code and the rich outputs (display(), figures).
      const answer = decodeJsonAnswer(r.result);
      exitCode = answer.exitCode ?? r.exitCode;
      if (answer.results) rich.results = answer.results;
      if (answer.resultsTruncated) rich.resultsTruncated = true;
    } else {
      exitCode = r.exitCode;
    }
  } else if (r.outcomeCode === VMM_TIMEOUT) {
    outcome = 'timeout';
    exitCode = TIMEOUT_EXIT_CODE;
    stderr += `${stderr && !stderr.endsWith('\n') ? '\n' : ''}forkbox: execution timed out after ${o.timeoutSeconds} s\n`;
  } else if (r.outcomeCode === VMM_KILLED && o.cancelled) {
    outcome = 'cancelled';
    exitCode = CRASH_EXIT_CODE;
  } else {
    outcome = 'crashed';
    exitCode = CRASH_EXIT_CODE;
    crash = r.outcomeCode === VMM_OK
      ? `guest runtime reported status ${r.status}${r.status === FB_ST_ERROR ? ' (error)' : ''}: ${utf8(r.result).slice(0, 2000)}`
      : crashDetail(r);
  }
  return {
    id,
    stdout: utf8(out),
    stderr,
    exitCode,
    outcome,
    stdoutTruncated: (r.outFlags & FB_OUT_TRUNCATED) !== 0 || out.length < r.stdout.length,
    stderrTruncated: (r.outFlags & FB_ERR_TRUNCATED) !== 0 || err.length < r.stderr.length,
    forkTimeMs: round3(t.forkMs),
    execTimeMs: round3(t.execMs),
    totalTimeMs: round3(t.totalMs),
    ...(crash !== undefined ? { crash } : {}),
    ...rich,
  };
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/** Crash detail a log may carry without FORKBOX_LOG_OUTPUT: the host-written part, not text the guest wrote. */
export function crashForLog(crash: string, logOutput: boolean): string {
  if (logOutput) return crash;
  const m = /^guest runtime reported status \d+( \(error\))?/.exec(crash);
  return m ? m[0] + ' (guest text withheld; FORKBOX_LOG_OUTPUT=1 logs it)' : crash.slice(0, 200);
}
