// forkbox-sdk — a zero-dependency client for the forkbox HTTP API (Node 18+,
// Deno, Bun, browsers: anything with fetch). `new Sandbox()` reads
// FORKBOX_API_KEY and FORKBOX_BASE_URL; `run()` executes code in a fresh
// hardware-isolated fork and returns a result that reads as its output
// (`String(result)`, `${result}`, console.log). `Sandbox.create()` gives a
// Session that keeps state and files between runs (session.ts). Platform
// errors throw a class named after the API's error code (all extend ForkboxError).
// The shared types, errors and wire helpers live in core.ts (re-exported here).

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
  readonly baseUrl: string;
  readonly #http: Http;

  /**
   * @param apiKey  API key sent as `Authorization: Bearer …` (default: FORKBOX_API_KEY; none when the server has auth off).
   * @param baseUrl Server URL (default: FORKBOX_BASE_URL, else `http://127.0.0.1:8080`).
   * @param options fetch override and request margin.
   */
  constructor(apiKey?: string, baseUrl?: string, options: SandboxOptions = {}) {
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
  static async create(options: CreateOptions = {}): Promise<Session> {
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
  static async connect(id: string, options: ClientOptions = {}): Promise<Session> {
    return Session.connect(new Http(options.apiKey, options.baseUrl, options), id);
  }

  /**
   * The sessions of this API key.
   * @example
   * ```ts
   * for (const s of await Sandbox.list()) console.log(s.id, s.state);
   * ```
   */
  static async list(options: ClientOptions = {}): Promise<SessionInfo[]> {
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
  async run(code: string, options: RunOptions = {}): Promise<ExecResult> {
    const { signal, ...rest } = options;
    const body = toWire(code, rest);
    const wire = (await this.#http.json('POST', '/v1/exec', body, (body.timeout_seconds as number) + this.#http.margin, signal)) as WireResult;
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
  async runBatch(items: readonly BatchItem[], options: { signal?: AbortSignal } = {}): Promise<ExecResult[]> {
    const allowed = new Set(['code', 'language', 'template', 'timeout', 'env', 'stdin']);
    const executions = items.map((it, i) => {
      if (typeof it === 'string') return toWire(it, {});
      const extra = Object.keys(it ?? {}).filter((k) => !allowed.has(k));
      if (!it || typeof it !== 'object' || extra.length > 0) {
        throw new InvalidRequest('InvalidRequest', 0, `items[${i}] must be a string or { code, language?, timeout?, env?, stdin? }${extra.length ? ` (unknown: ${extra.join(', ')})` : ''}`);
      }
      return toWire(it.code, it);
    });
    const longest = executions.reduce((m, e) => Math.max(m, e.timeout_seconds as number), 0);
    const wire = (await this.#http.json('POST', '/v1/exec/batch', { executions }, longest * Math.max(1, executions.length) + this.#http.margin, options.signal)) as { results: WireResult[] };
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
  async health(): Promise<Health> {
    return (await this.#http.json('GET', '/v1/health', undefined, 10, undefined, true)) as Health;
  }
}

export * from './core.js';
export { Session, type CreateOptions, type ClientOptions, type SessionInfo, type SessionExecResult, type SideEffects, type FileInfo, type SessionRunOptions, type SyncResult } from './session.js';
import { Http } from './http.js';
import { fromWire, toWire, InvalidRequest, type BatchItem, type ExecResult, type Health, type RunOptions, type SandboxOptions, type WireResult } from './core.js';
import { Session, type ClientOptions, type CreateOptions, type SessionInfo } from './session.js';
