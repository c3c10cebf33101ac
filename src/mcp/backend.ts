// backend.ts — what the MCP tools need from forkbox, as one small interface
// with two implementations: an embedded engine (engine-backend.ts: the CLI's
// `--embedded`, and the HTTP server's /mcp route through its admission) and an
// HTTP client of a running server (http-backend.ts). Every method throws a
// ForkboxError from the one catalog; the tool layer turns it into a tool error.
import type { ExecOutcome, Language } from '../engine/types.js';
import type { FileInfo, SessionInfo, SideEffects } from '../engine/session-types.js';
import type { DisplayResult } from '../languages/rich.js';

export interface RunCodeRequest {
  code: string;
  language: Language;
  timeoutSeconds: number;
  /** A named template (the language's default when absent). */
  template?: string;
}

export interface SessionCreateRequest {
  language: Language;
  /** A named template (the language's default when absent). */
  template?: string;
  name?: string;
  timeoutSeconds?: number;
  idleTimeoutSeconds?: number;
  env?: Record<string, string>;
  metadata?: Record<string, string>;
}

export interface SessionExecCall {
  code: string;
  timeoutSeconds: number;
  discard?: boolean;
}

/** One displayed object of a rich output (E2B's Result shape: `text`, `png` as base64, …). */
export type RichResult = DisplayResult;

/** An exec's outcome as the tools show it (one-shot or in a session). */
export interface RunOutput {
  stdout: string;
  stderr: string;
  exitCode: number;
  outcome: ExecOutcome;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  crash?: string;
  /** repr of a session exec's last expression. */
  result?: string;
  /** Rich outputs (display(), figures, a session's last expression). */
  results?: RichResult[];
  resultsTruncated?: boolean;
  sideEffects?: SideEffects;
}

export interface McpBackend {
  runCode(req: RunCodeRequest, signal: AbortSignal): Promise<RunOutput>;
  createSession(req: SessionCreateRequest, signal: AbortSignal): Promise<SessionInfo>;
  execSession(id: string, req: SessionExecCall, signal: AbortSignal): Promise<RunOutput>;
  writeFile(id: string, path: string, data: Buffer): Promise<void>;
  readFile(id: string, path: string): Promise<Buffer>;
  listFiles(id: string, path: string): Promise<FileInfo[]>;
  forkSession(id: string, count: number): Promise<SessionInfo[]>;
  pauseSession(id: string): Promise<SessionInfo>;
  deleteSession(id: string): Promise<void>;
}

/** What each backend method is, for a guard: an exec takes an execution slot, a call does not. */
export type CallKind = 'exec' | 'call';

/**
 * Wraps every method of a backend in `guard` (rate limits, admission): `guard`
 * runs `fn` or throws. Used by the HTTP server so an MCP call is admitted like
 * the REST call it stands for.
 */
export function guardBackend(inner: McpBackend,
  guard: <T>(kind: CallKind, signal: AbortSignal | undefined, fn: (signal?: AbortSignal) => Promise<T>) => Promise<T>): McpBackend {
  return {
    runCode: (req, signal) => guard('exec', signal, (s) => inner.runCode(req, s ?? signal)),
    createSession: (req, signal) => guard('call', signal, (s) => inner.createSession(req, s ?? signal)),
    execSession: (id, req, signal) => guard('exec', signal, (s) => inner.execSession(id, req, s ?? signal)),
    writeFile: (id, path, data) => guard('call', undefined, () => inner.writeFile(id, path, data)),
    readFile: (id, path) => guard('call', undefined, () => inner.readFile(id, path)),
    listFiles: (id, path) => guard('call', undefined, () => inner.listFiles(id, path)),
    forkSession: (id, count) => guard('call', undefined, () => inner.forkSession(id, count)),
    pauseSession: (id) => guard('call', undefined, () => inner.pauseSession(id)),
    deleteSession: (id) => guard('call', undefined, () => inner.deleteSession(id)),
  };
}
