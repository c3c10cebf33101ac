// core.ts — what the client's modules share: the result types and classes,
// the error classes named after the API's error codes, and the wire helpers
// (request body, response decoding, signals, environment). index.ts re-exports
// it; http.ts and session.ts import it, so no module imports index.ts back.

/**
 * Result of one execution. A program failing is a result with a non-zero exitCode, not an exception.
 * It reads as its output: `String(result)`, `${result}` and `console.log(result)` give `output` (stdout);
 * the structured fields are there beside it (and in JSON.stringify).
 */
export interface ExecResult {
  /** Execution id (`exec_…`). */
  id: string;
  stdout: string;
  stderr: string;
  exitCode: number;
  /** `exited` (ran to the end), `timeout`, `crashed` (sandbox fault, memory limit) or `cancelled`. */
  outcome: 'exited' | 'timeout' | 'crashed' | 'cancelled';
  forkTimeMs: number;
  execTimeMs: number;
  totalTimeMs: number;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** Crash detail when outcome is `crashed`. */
  crash?: string;
  /** Zeroboot's name for the program's output: stdout alone (the same string; stderr stays separate). */
  output: string;
  /** Zeroboot's name for totalTimeMs. */
  durationMs: number;
  /**
   * Rich outputs, in the order the program displayed them: `display(obj)`, a matplotlib figure
   * (`plt.show()`, or left open at the end), and in a session the last expression's value
   * (`isMainResult`). The shape of E2B's code-interpreter `Result`. Empty when there are none.
   */
  results: Result[];
  /** True when rich outputs were dropped (more than 16 in one exec, or about 900 KiB in all). */
  resultsTruncated: boolean;
  /** The output (stdout). */
  toString(): string;
}

/** A result's formats, by E2B's names (the API's JSON uses the same keys, plus `is_main_result`). */
export const RESULT_FORMATS = ['text', 'html', 'markdown', 'svg', 'png', 'jpeg', 'pdf', 'latex', 'json', 'javascript'] as const;
export type ResultFormat = typeof RESULT_FORMATS[number];

/**
 * One displayed object (a MIME bundle), as E2B's code-interpreter `Result`: `text` (text/plain), `html`,
 * `markdown`, `svg`, `png` / `jpeg` / `pdf` (base64), `latex`, `json` (a value), `javascript`.
 *
 * @example
 * const s = await Sandbox.create();
 * const r = await s.run('import matplotlib.pyplot as plt\nplt.plot([1, 2, 3])\nplt.show()');
 * const png = Buffer.from(r.results[0].png!, 'base64');
 */
export class Result {
  declare text?: string;
  declare html?: string;
  declare markdown?: string;
  declare svg?: string;
  declare png?: string;
  declare jpeg?: string;
  declare pdf?: string;
  declare latex?: string;
  declare json?: unknown;
  declare javascript?: string;
  /** The value of a session run's last expression (not a display() call). */
  isMainResult: boolean;
  /** Formats of other MIME types, by MIME type. */
  declare extra?: Record<string, unknown>;

  constructor(w: Record<string, unknown>) {
    for (const f of RESULT_FORMATS) {
      const v = w[f];
      if (f === 'json' ? v !== undefined && v !== null : typeof v === 'string') (this as Record<string, unknown>)[f] = v;
    }
    this.isMainResult = w.is_main_result === true;
    if (w.extra !== null && typeof w.extra === 'object' && !Array.isArray(w.extra)) this.extra = { ...(w.extra as Record<string, unknown>) };
  }

  /** The formats this result has (`['text', 'png']`), then the MIME types in `extra`. */
  formats(): string[] {
    return [...RESULT_FORMATS.filter((f) => this[f] !== undefined), ...Object.keys(this.extra ?? {})];
  }
}

export interface RunOptions {
  /** Language of `code` (default `"python"`). */
  language?: string;
  /** Template by name, e.g. `"python-data"` (default: the language's own). */
  template?: string;
  /** Wall-clock limit in seconds (default 30). */
  timeout?: number;
  /** Environment variables for the program. */
  env?: Record<string, string>;
  /** Text the program reads on standard input. */
  stdin?: string;
  /** Cancels the request (and the execution on the server). */
  signal?: AbortSignal;
}

/** One execution of a batch: a code string, or code with its own options. */
export type BatchItem = string | ({ code: string } & Omit<RunOptions, 'signal'>);

export interface Health {
  status: 'ok' | 'starting' | 'shutting_down';
  [field: string]: unknown;
}

export interface SandboxOptions {
  /** fetch implementation (default: the global one). */
  fetch?: typeof fetch;
  /** Extra seconds the client waits beyond the execution timeout (default 30). */
  requestMarginSeconds?: number;
}

/** Base of every error this client throws. `code` is the API's error code. */
export class ForkboxError extends Error {
  /** The API error code, e.g. `RateLimited` (`ConnectionError`/`UnexpectedResponse` for client-side failures). */
  readonly code: string;
  /** HTTP status (0 when no response arrived). */
  readonly status: number;
  /** The server's request id, to find the request in its log. */
  readonly requestId: string | undefined;
  /** Seconds to wait before retrying, from Retry-After (429, 503). */
  readonly retryAfter: number | undefined;
  constructor(code: string, status: number, message: string, requestId?: string, retryAfter?: number, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = code;
    this.code = code;
    this.status = status;
    this.requestId = requestId;
    this.retryAfter = retryAfter;
  }
}
/** 400/415: the request body is invalid (message says which field). */
export class InvalidRequest extends ForkboxError {}
/** 413: the request body is larger than the server accepts. */
export class PayloadTooLarge extends ForkboxError {}
/** 401: missing or wrong API key. */
export class Unauthorized extends ForkboxError {}
/** 403: the server runs without auth and refuses this Host name (DNS-rebinding guard). */
export class Forbidden extends ForkboxError {}
/** 429: this key's rate limit is exhausted; see retryAfter. */
export class RateLimited extends ForkboxError {}
/** 503: the server's queue is full; see retryAfter. */
export class Overloaded extends ForkboxError {}
/** 404: no such route or resource (or a session of another key). */
export class NotFound extends ForkboxError {}
/** 409: the session is busy (one exec at a time) or the name is taken. */
export class Conflict extends ForkboxError {}
/** 410: the session expired, was deleted, or its VM died. */
export class Gone extends ForkboxError {}
/** 503: the language template is not built/loaded yet. */
export class TemplateNotReady extends ForkboxError {}
/** The server could not build the template. */
export class TemplateBuildFailed extends ForkboxError {}
/** The server could not build the read-only image. */
export class ImageBuildFailed extends ForkboxError {}
/** 503: the server has no usable /dev/kvm. */
export class KvmUnavailable extends ForkboxError {}
/** 500: the sandbox crashed in a way the server reports as an error. */
export class SandboxCrashed extends ForkboxError {}
/** 501: the feature is not supported. */
export class Unsupported extends ForkboxError {}
/** 503: the server is shutting down. */
export class ShuttingDown extends ForkboxError {}
/** 503: the server's memory budget for live sandboxes is used up; retry later. */
export class MemoryBudgetExceeded extends ForkboxError {}
/** 500: an unexpected server error; quote requestId when reporting it. */
export class Internal extends ForkboxError {}
/** The server could not be reached (DNS, refused, reset, client timeout). */
export class ConnectionError extends ForkboxError {}
/** The server answered with something that is not the API's JSON. */
export class UnexpectedResponse extends ForkboxError {}

type ErrorClass = new (code: string, status: number, message: string, requestId?: string, retryAfter?: number, cause?: unknown) => ForkboxError;

/** API error code → class. */
export const ERROR_CLASSES: Readonly<Record<string, ErrorClass>> = {
  InvalidRequest, PayloadTooLarge, Unauthorized, Forbidden, RateLimited, Overloaded, NotFound, Conflict, Gone, TemplateNotReady,
  TemplateBuildFailed, ImageBuildFailed, KvmUnavailable, SandboxCrashed, Unsupported, ShuttingDown, MemoryBudgetExceeded, Internal,
  ConnectionError, UnexpectedResponse,
};

export interface WireResult {
  id: string; stdout: string; stderr: string; exit_code: number; outcome?: ExecResult['outcome'];
  fork_time_ms: number; exec_time_ms: number; total_time_ms: number;
  stdout_truncated?: boolean; stderr_truncated?: boolean; crash?: string;
  output?: string; duration_ms?: number;
  results?: Array<Record<string, unknown>>; results_truncated?: boolean;
}

/** Node's util.inspect hook, by its registered name (no import, so browsers and Deno load this file too). */
const INSPECT = Symbol.for('nodejs.util.inspect.custom');
type Inspect = (value: unknown, options: object) => string;

/**
 * Makes a result read as its output: toString() gives `output`, and Node's inspect (console.log) shows the
 * output itself at top level and the quoted string when the result sits inside another value. Both are
 * non-enumerable, so JSON.stringify, spreads and deepEqual see only the data fields.
 */
export function readable<T extends Omit<ExecResult, 'toString'>>(r: T): T & ExecResult {
  Object.defineProperty(r, 'toString', { value: function toString(this: ExecResult): string { return this.output; }, enumerable: false, writable: true, configurable: true });
  Object.defineProperty(r, INSPECT, {
    value: function inspect(this: ExecResult, depth: number, options: { depth?: number | null }, inspect?: Inspect): string {
      const nested = options.depth !== undefined && options.depth !== null && depth !== options.depth;
      return nested && inspect ? inspect(this.output, options) : this.output;
    },
    enumerable: false, writable: true, configurable: true,
  });
  return r as T & ExecResult;
}

export function fromWire(r: WireResult): ExecResult {
  const out: Omit<ExecResult, 'toString'> = {
    id: r.id,
    stdout: r.stdout,
    stderr: r.stderr,
    exitCode: r.exit_code,
    outcome: r.outcome ?? 'exited',
    forkTimeMs: r.fork_time_ms,
    execTimeMs: r.exec_time_ms,
    totalTimeMs: r.total_time_ms,
    stdoutTruncated: r.stdout_truncated ?? false,
    stderrTruncated: r.stderr_truncated ?? false,
    output: r.output ?? r.stdout,
    durationMs: r.duration_ms ?? r.total_time_ms,
    results: Array.isArray(r.results) ? r.results.filter((x) => x !== null && typeof x === 'object').map((x) => new Result(x)) : [],
    resultsTruncated: r.results_truncated ?? false,
  };
  if (r.crash !== undefined) out.crash = r.crash;
  return readable(out);
}

export function toWire(code: string, o: Omit<RunOptions, 'signal'>): Record<string, unknown> {
  if (typeof code !== 'string') throw new InvalidRequest('InvalidRequest', 0, 'code must be a string');
  const body: Record<string, unknown> = { code, language: o.language ?? 'python', timeout_seconds: o.timeout ?? 30 };
  if (o.template !== undefined) body.template = o.template;
  if (o.env !== undefined) body.env = o.env;
  if (o.stdin !== undefined) body.stdin = o.stdin;
  return body;
}

/** AbortSignal.any for runtimes that lack it (Node 18). */
export function anySignal(a: AbortSignal, b: AbortSignal): AbortSignal {
  const any = (AbortSignal as { any?: (s: AbortSignal[]) => AbortSignal }).any;
  if (any) return any([a, b]);
  const ac = new AbortController();
  for (const s of [a, b]) {
    if (s.aborted) ac.abort(s.reason);
    else s.addEventListener('abort', () => ac.abort(s.reason), { once: true });
  }
  return ac.signal;
}

export function envVar(name: string): string | undefined {
  const p = (globalThis as { process?: { env?: Record<string, string | undefined> } }).process;
  const v = p?.env?.[name];
  return v === undefined || v === '' ? undefined : v;
}
