// errors.ts — the one error catalog. Every platform error extends ForkboxError
// with a stable `code` (the SDKs map it to a class of the same name), an HTTP
// `status`, and an optional `cause`. A guest program failing is NOT an error:
// exec returns its stdout, stderr and exit code.

export type ErrorCode =
  | 'InvalidRequest'
  | 'PayloadTooLarge'
  | 'Unauthorized'
  | 'Forbidden'
  | 'RateLimited'
  | 'Overloaded'
  | 'NotFound'
  | 'Conflict'
  | 'Gone'
  | 'TemplateNotReady'
  | 'TemplateBuildFailed'
  | 'ImageBuildFailed'
  | 'KvmUnavailable'
  | 'SandboxCrashed'
  | 'Unsupported'
  | 'ShuttingDown'
  | 'MemoryBudgetExceeded'
  | 'Internal';

/** What every 4xx/5xx answer carries: `{"error": "<message>", "code": "<Code>", "request_id": "…"}`. */
export interface ErrorEnvelope { error: string; code: ErrorCode; request_id?: string }

export class ForkboxError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  /** Seconds a client should wait before retrying (429/503). */
  readonly retryAfter?: number;

  constructor(code: ErrorCode, status: number, message: string, opts: { cause?: unknown; retryAfter?: number } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = code;
    this.code = code;
    this.status = status;
    if (opts.retryAfter !== undefined) this.retryAfter = opts.retryAfter;
  }

  /** The one error envelope (Zeroboot's clients read `error` as the message string). */
  toJSON(requestId?: string): ErrorEnvelope {
    return { error: this.message, code: this.code, ...(requestId ? { request_id: requestId } : {}) };
  }
}

export const invalidRequest = (message: string): ForkboxError => new ForkboxError('InvalidRequest', 400, message);
export const payloadTooLarge = (message: string): ForkboxError => new ForkboxError('PayloadTooLarge', 413, message);
export const unauthorized = (message: string): ForkboxError => new ForkboxError('Unauthorized', 401, message);
export const rateLimited = (retryAfter: number): ForkboxError =>
  new ForkboxError('RateLimited', 429, `rate limit exceeded; retry after ${retryAfter} s`, { retryAfter });
export const overloaded = (retryAfter: number): ForkboxError =>
  new ForkboxError('Overloaded', 503, `server is at capacity; retry after ${retryAfter} s`, { retryAfter });
export const notFound = (message: string): ForkboxError => new ForkboxError('NotFound', 404, message);
/** A busy session (one exec at a time) or a name already taken. */
export const conflict = (message: string): ForkboxError => new ForkboxError('Conflict', 409, message);
/** A session that expired, was deleted, or whose VM died. */
export const gone = (message: string): ForkboxError => new ForkboxError('Gone', 410, message);
export const templateNotReady = (message: string): ForkboxError => new ForkboxError('TemplateNotReady', 503, message);
export const kvmUnavailable = (message: string, cause?: unknown): ForkboxError =>
  new ForkboxError('KvmUnavailable', 503, message, { cause });
export const sandboxCrashed = (message: string): ForkboxError => new ForkboxError('SandboxCrashed', 500, message);
export const unsupported = (message: string): ForkboxError => new ForkboxError('Unsupported', 501, message);
export const shuttingDown = (): ForkboxError => new ForkboxError('ShuttingDown', 503, 'server is shutting down', { retryAfter: 1 });
export const memoryBudgetExceeded = (message: string, retryAfter = 1): ForkboxError =>
  new ForkboxError('MemoryBudgetExceeded', 503, message, { retryAfter });
export const internal = (message: string, cause?: unknown): ForkboxError =>
  new ForkboxError('Internal', 500, message, { cause });

/** Wraps anything thrown into a ForkboxError (unknown errors become Internal). */
export function asForkboxError(e: unknown): ForkboxError {
  if (e instanceof ForkboxError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return internal(message, e);
}
