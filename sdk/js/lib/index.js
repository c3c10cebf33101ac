// forkbox-sdk — a zero-dependency client for the forkbox HTTP API (Node 18+,
// Deno, Bun, browsers: anything with fetch). `new Sandbox()` reads
// FORKBOX_API_KEY and FORKBOX_BASE_URL; `run()` executes code in a fresh
// hardware-isolated fork and returns a result that reads as its output
// (`String(result)`, `${result}`, console.log). `Sandbox.create()` gives a
// Session that keeps state and files between runs (session.ts). Platform
// errors throw a class named after the API's error code (all extend ForkboxError).
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
/**
 * A client for one forkbox server.
 *
 * @example
 * ```ts
 * import { Sandbox } from 'forkbox-sdk';
 * const sb = new Sandbox();                 // FORKBOX_API_KEY, FORKBOX_BASE_URL (default http://127.0.0.1:8080)
 * const r = await sb.run('print(1 + 1)');
 * console.log(r.stdout.trim(), r.exitCode); // 2 0
 * console.log(`${r}`);                      // 2   (a result reads as its output)
 * ```
 */
export class Sandbox {
    baseUrl;
    #http;
    /**
     * @param apiKey  API key sent as `Authorization: Bearer …` (default: FORKBOX_API_KEY; none when the server has auth off).
     * @param baseUrl Server URL (default: FORKBOX_BASE_URL, else `http://127.0.0.1:8080`).
     * @param options fetch override and request margin.
     */
    constructor(apiKey, baseUrl, options = {}) {
        this.#http = new Http(apiKey, baseUrl, options);
        this.baseUrl = this.#http.baseUrl;
    }
    /**
     * Creates a session: a sandbox that keeps its globals, imports and files between runs.
     *
     * @param options language (default "python"), name (unique per key; a taken name is Conflict), timeout
     *                (lifetime, seconds), idleTimeout (seconds without a call before it is paused to disk),
     *                env, metadata, apiKey, baseUrl, fetch.
     * @returns The new Session.
     * @throws {Conflict} name taken; {InvalidRequest}; {Unsupported} language; {RateLimited} too many sessions.
     * @example
     * ```ts
     * const s = await Sandbox.create({ language: 'python', timeout: 600 });
     * await s.run('x = 41');
     * console.log((await s.run('x + 1')).result); // '42'
     * await s.kill();
     * ```
     */
    static async create(options = {}) {
        const http = new Http(options.apiKey, options.baseUrl, options);
        return Session.create(http, options);
    }
    /**
     * A Session object for an existing session id (of this API key).
     * @throws {NotFound} unknown id or another key's; {Gone} expired or deleted.
     * @example
     * ```ts
     * const s = await Sandbox.connect('sess_…');
     * ```
     */
    static async connect(id, options = {}) {
        return Session.connect(new Http(options.apiKey, options.baseUrl, options), id);
    }
    /**
     * The sessions of this API key.
     * @example
     * ```ts
     * for (const s of await Sandbox.list()) console.log(s.id, s.state);
     * ```
     */
    static async list(options = {}) {
        return Session.list(new Http(options.apiKey, options.baseUrl, options));
    }
    /**
     * Runs `code` in a fresh fork.
     *
     * @param code    Source code to run.
     * @param options language (default "python"), timeout in seconds (default 30), env, stdin, signal.
     * @returns The result; a failing program is a result with its exit code, not an exception.
     * @throws {InvalidRequest} bad arguments; {Unauthorized}; {RateLimited}/{Overloaded} (see `retryAfter`);
     *         {ConnectionError} server unreachable; any other ForkboxError subclass for platform failures.
     * @example
     * ```ts
     * const r = await new Sandbox().run('import sys; print("hi"); sys.exit(3)', { timeout: 5 });
     * // r.stdout === 'hi\n', r.exitCode === 3
     * ```
     */
    async run(code, options = {}) {
        const { signal, ...rest } = options;
        const body = toWire(code, rest);
        const wire = (await this.#http.json('POST', '/v1/exec', body, body.timeout_seconds + this.#http.margin, signal));
        return fromWire(wire);
    }
    /**
     * Runs several programs in parallel forks; results come back in the same order.
     *
     * @param items   Code strings, or `{ code, language?, timeout?, env?, stdin? }` objects.
     * @param options `signal` to cancel the whole batch.
     * @returns One result per item, in order.
     * @throws ForkboxError subclasses as for run(); a platform error fails the whole batch.
     * @example
     * ```ts
     * const [a, b] = await new Sandbox().runBatch(['print(1)', { code: 'print(2)', timeout: 5 }]);
     * ```
     */
    async runBatch(items, options = {}) {
        const allowed = new Set(['code', 'language', 'template', 'timeout', 'env', 'stdin']);
        const executions = items.map((it, i) => {
            if (typeof it === 'string')
                return toWire(it, {});
            const extra = Object.keys(it ?? {}).filter((k) => !allowed.has(k));
            if (!it || typeof it !== 'object' || extra.length > 0) {
                throw new InvalidRequest('InvalidRequest', 0, `items[${i}] must be a string or { code, language?, timeout?, env?, stdin? }${extra.length ? ` (unknown: ${extra.join(', ')})` : ''}`);
            }
            return toWire(it.code, it);
        });
        const longest = executions.reduce((m, e) => Math.max(m, e.timeout_seconds), 0);
        const wire = (await this.#http.json('POST', '/v1/exec/batch', { executions }, longest * Math.max(1, executions.length) + this.#http.margin, options.signal));
        return wire.results.map(fromWire);
    }
    /**
     * Server health: template readiness and pool state. Returns the body for 200 (ready) and 503 (starting/shutting down).
     * @throws {ConnectionError} when the server is unreachable.
     * @example
     * ```ts
     * const h = await new Sandbox().health(); // h.status === 'ok'
     * ```
     */
    async health() {
        return (await this.#http.json('GET', '/v1/health', undefined, 10, undefined, true));
    }
}
export { Session } from './session.js';
import { Http } from './http.js';
import { Session } from './session.js';
