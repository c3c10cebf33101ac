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
export declare const RESULT_FORMATS: readonly ["text", "html", "markdown", "svg", "png", "jpeg", "pdf", "latex", "json", "javascript"];
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
export declare class Result {
    text?: string;
    html?: string;
    markdown?: string;
    svg?: string;
    png?: string;
    jpeg?: string;
    pdf?: string;
    latex?: string;
    json?: unknown;
    javascript?: string;
    /** The value of a session run's last expression (not a display() call). */
    isMainResult: boolean;
    /** Formats of other MIME types, by MIME type. */
    extra?: Record<string, unknown>;
    constructor(w: Record<string, unknown>);
    /** The formats this result has (`['text', 'png']`), then the MIME types in `extra`. */
    formats(): string[];
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
export type BatchItem = string | ({
    code: string;
} & Omit<RunOptions, 'signal'>);
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
export declare class ForkboxError extends Error {
    /** The API error code, e.g. `RateLimited` (`ConnectionError`/`UnexpectedResponse` for client-side failures). */
    readonly code: string;
    /** HTTP status (0 when no response arrived). */
    readonly status: number;
    /** The server's request id, to find the request in its log. */
    readonly requestId: string | undefined;
    /** Seconds to wait before retrying, from Retry-After (429, 503). */
    readonly retryAfter: number | undefined;
    constructor(code: string, status: number, message: string, requestId?: string, retryAfter?: number, cause?: unknown);
}
/** 400/415: the request body is invalid (message says which field). */
export declare class InvalidRequest extends ForkboxError {
}
/** 413: the request body is larger than the server accepts. */
export declare class PayloadTooLarge extends ForkboxError {
}
/** 401: missing or wrong API key. */
export declare class Unauthorized extends ForkboxError {
}
/** 403: the server runs without auth and refuses this Host name (DNS-rebinding guard). */
export declare class Forbidden extends ForkboxError {
}
/** 429: this key's rate limit is exhausted; see retryAfter. */
export declare class RateLimited extends ForkboxError {
}
/** 503: the server's queue is full; see retryAfter. */
export declare class Overloaded extends ForkboxError {
}
/** 404: no such route or resource (or a session of another key). */
export declare class NotFound extends ForkboxError {
}
/** 409: the session is busy (one exec at a time) or the name is taken. */
export declare class Conflict extends ForkboxError {
}
/** 410: the session expired, was deleted, or its VM died. */
export declare class Gone extends ForkboxError {
}
/** 503: the language template is not built/loaded yet. */
export declare class TemplateNotReady extends ForkboxError {
}
/** The server could not build the template. */
export declare class TemplateBuildFailed extends ForkboxError {
}
/** The server could not build the read-only image. */
export declare class ImageBuildFailed extends ForkboxError {
}
/** 503: the server has no usable /dev/kvm. */
export declare class KvmUnavailable extends ForkboxError {
}
/** 500: the sandbox crashed in a way the server reports as an error. */
export declare class SandboxCrashed extends ForkboxError {
}
/** 501: the feature is not supported. */
export declare class Unsupported extends ForkboxError {
}
/** 503: the server is shutting down. */
export declare class ShuttingDown extends ForkboxError {
}
/** 503: the server's memory budget for live sandboxes is used up; retry later. */
export declare class MemoryBudgetExceeded extends ForkboxError {
}
/** 500: an unexpected server error; quote requestId when reporting it. */
export declare class Internal extends ForkboxError {
}
/** The server could not be reached (DNS, refused, reset, client timeout). */
export declare class ConnectionError extends ForkboxError {
}
/** The server answered with something that is not the API's JSON. */
export declare class UnexpectedResponse extends ForkboxError {
}
type ErrorClass = new (code: string, status: number, message: string, requestId?: string, retryAfter?: number, cause?: unknown) => ForkboxError;
/** API error code → class. */
export declare const ERROR_CLASSES: Readonly<Record<string, ErrorClass>>;
export interface WireResult {
    id: string;
    stdout: string;
    stderr: string;
    exit_code: number;
    outcome?: ExecResult['outcome'];
    fork_time_ms: number;
    exec_time_ms: number;
    total_time_ms: number;
    stdout_truncated?: boolean;
    stderr_truncated?: boolean;
    crash?: string;
    output?: string;
    duration_ms?: number;
    results?: Array<Record<string, unknown>>;
    results_truncated?: boolean;
}
/**
 * Makes a result read as its output: toString() gives `output`, and Node's inspect (console.log) shows the
 * output itself at top level and the quoted string when the result sits inside another value. Both are
 * non-enumerable, so JSON.stringify, spreads and deepEqual see only the data fields.
 */
export declare function readable<T extends Omit<ExecResult, 'toString'>>(r: T): T & ExecResult;
export declare function fromWire(r: WireResult): ExecResult;
export declare function toWire(code: string, o: Omit<RunOptions, 'signal'>): Record<string, unknown>;
/** AbortSignal.any for runtimes that lack it (Node 18). */
export declare function anySignal(a: AbortSignal, b: AbortSignal): AbortSignal;
export declare function envVar(name: string): string | undefined;
export {};
