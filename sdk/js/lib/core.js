// core.ts — what the client's modules share: the result types and classes,
// the error classes named after the API's error codes, and the wire helpers
// (request body, response decoding, signals, environment). index.ts re-exports
// it; http.ts and session.ts import it, so no module imports index.ts back.
/** A result's formats, by E2B's names (the API's JSON uses the same keys, plus `is_main_result`). */
export const RESULT_FORMATS = ['text', 'html', 'markdown', 'svg', 'png', 'jpeg', 'pdf', 'latex', 'json', 'javascript'];
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
    /** The value of a session run's last expression (not a display() call). */
    isMainResult;
    constructor(w) {
        for (const f of RESULT_FORMATS) {
            const v = w[f];
            if (f === 'json' ? v !== undefined && v !== null : typeof v === 'string')
                this[f] = v;
        }
        this.isMainResult = w.is_main_result === true;
        if (w.extra !== null && typeof w.extra === 'object' && !Array.isArray(w.extra))
            this.extra = { ...w.extra };
    }
    /** The formats this result has (`['text', 'png']`), then the MIME types in `extra`. */
    formats() {
        return [...RESULT_FORMATS.filter((f) => this[f] !== undefined), ...Object.keys(this.extra ?? {})];
    }
}
/** Base of every error this client throws. `code` is the API's error code. */
export class ForkboxError extends Error {
    /** The API error code, e.g. `RateLimited` (`ConnectionError`/`UnexpectedResponse` for client-side failures). */
    code;
    /** HTTP status (0 when no response arrived). */
    status;
    /** The server's request id, to find the request in its log. */
    requestId;
    /** Seconds to wait before retrying, from Retry-After (429, 503). */
    retryAfter;
    constructor(code, status, message, requestId, retryAfter, cause) {
        super(message, cause === undefined ? undefined : { cause });
        this.name = code;
        this.code = code;
        this.status = status;
        this.requestId = requestId;
        this.retryAfter = retryAfter;
    }
}
/** 400/415: the request body is invalid (message says which field). */
export class InvalidRequest extends ForkboxError {
}
/** 413: the request body is larger than the server accepts. */
export class PayloadTooLarge extends ForkboxError {
}
/** 401: missing or wrong API key. */
export class Unauthorized extends ForkboxError {
}
/** 403: the server runs without auth and refuses this Host name (DNS-rebinding guard). */
export class Forbidden extends ForkboxError {
}
/** 429: this key's rate limit is exhausted; see retryAfter. */
export class RateLimited extends ForkboxError {
}
/** 503: the server's queue is full; see retryAfter. */
export class Overloaded extends ForkboxError {
}
/** 404: no such route or resource (or a session of another key). */
export class NotFound extends ForkboxError {
}
/** 409: the session is busy (one exec at a time) or the name is taken. */
export class Conflict extends ForkboxError {
}
/** 410: the session expired, was deleted, or its VM died. */
export class Gone extends ForkboxError {
}
/** 503: the language template is not built/loaded yet. */
export class TemplateNotReady extends ForkboxError {
}
/** The server could not build the template. */
export class TemplateBuildFailed extends ForkboxError {
}
/** The server could not build the read-only image. */
export class ImageBuildFailed extends ForkboxError {
}
/** 503: the server has no usable /dev/kvm. */
export class KvmUnavailable extends ForkboxError {
}
/** 500: the sandbox crashed in a way the server reports as an error. */
export class SandboxCrashed extends ForkboxError {
}
/** 501: the feature is not supported. */
export class Unsupported extends ForkboxError {
}
/** 503: the server is shutting down. */
export class ShuttingDown extends ForkboxError {
}
/** 503: the server's memory budget for live sandboxes is used up; retry later. */
export class MemoryBudgetExceeded extends ForkboxError {
}
/** 500: an unexpected server error; quote requestId when reporting it. */
export class Internal extends ForkboxError {
}
/** The server could not be reached (DNS, refused, reset, client timeout). */
export class ConnectionError extends ForkboxError {
}
/** The server answered with something that is not the API's JSON. */
export class UnexpectedResponse extends ForkboxError {
}
/** API error code → class. */
export const ERROR_CLASSES = {
    InvalidRequest, PayloadTooLarge, Unauthorized, Forbidden, RateLimited, Overloaded, NotFound, Conflict, Gone, TemplateNotReady,
    TemplateBuildFailed, ImageBuildFailed, KvmUnavailable, SandboxCrashed, Unsupported, ShuttingDown, MemoryBudgetExceeded, Internal,
    ConnectionError, UnexpectedResponse,
};
/** Node's util.inspect hook, by its registered name (no import, so browsers and Deno load this file too). */
const INSPECT = Symbol.for('nodejs.util.inspect.custom');
/**
 * Makes a result read as its output: toString() gives `output`, and Node's inspect (console.log) shows the
 * output itself at top level and the quoted string when the result sits inside another value. Both are
 * non-enumerable, so JSON.stringify, spreads and deepEqual see only the data fields.
 */
export function readable(r) {
    Object.defineProperty(r, 'toString', { value: function toString() { return this.output; }, enumerable: false, writable: true, configurable: true });
    Object.defineProperty(r, INSPECT, {
        value: function inspect(depth, options, inspect) {
            const nested = options.depth !== undefined && options.depth !== null && depth !== options.depth;
            return nested && inspect ? inspect(this.output, options) : this.output;
        },
        enumerable: false, writable: true, configurable: true,
    });
    return r;
}
export function fromWire(r) {
    const out = {
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
    if (r.crash !== undefined)
        out.crash = r.crash;
    return readable(out);
}
export function toWire(code, o) {
    if (typeof code !== 'string')
        throw new InvalidRequest('InvalidRequest', 0, 'code must be a string');
    const body = { code, language: o.language ?? 'python', timeout_seconds: o.timeout ?? 30 };
    if (o.template !== undefined)
        body.template = o.template;
    if (o.env !== undefined)
        body.env = o.env;
    if (o.stdin !== undefined)
        body.stdin = o.stdin;
    return body;
}
/** AbortSignal.any for runtimes that lack it (Node 18). */
export function anySignal(a, b) {
    const any = AbortSignal.any;
    if (any)
        return any([a, b]);
    const ac = new AbortController();
    for (const s of [a, b]) {
        if (s.aborted)
            ac.abort(s.reason);
        else
            s.addEventListener('abort', () => ac.abort(s.reason), { once: true });
    }
    return ac.signal;
}
export function envVar(name) {
    const p = globalThis.process;
    const v = p?.env?.[name];
    return v === undefined || v === '' ? undefined : v;
}
