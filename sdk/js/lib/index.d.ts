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
export declare class Sandbox {
    #private;
    readonly baseUrl: string;
    /**
     * @param apiKey  API key sent as `Authorization: Bearer …` (default: FORKBOX_API_KEY; none when the server has auth off).
     * @param baseUrl Server URL (default: FORKBOX_BASE_URL, else `http://127.0.0.1:8080`).
     * @param options fetch override and request margin.
     */
    constructor(apiKey?: string, baseUrl?: string, options?: SandboxOptions);
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
    static create(options?: CreateOptions): Promise<Session>;
    /**
     * A Session object for an existing session id (of this API key).
     * @throws {NotFound} unknown id or another key's; {Gone} expired or deleted.
     * @example
     * ```ts
     * const s = await Sandbox.connect('sess_…');
     * ```
     */
    static connect(id: string, options?: ClientOptions): Promise<Session>;
    /**
     * The sessions of this API key.
     * @example
     * ```ts
     * for (const s of await Sandbox.list()) console.log(s.id, s.state);
     * ```
     */
    static list(options?: ClientOptions): Promise<SessionInfo[]>;
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
    run(code: string, options?: RunOptions): Promise<ExecResult>;
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
    runBatch(items: readonly BatchItem[], options?: {
        signal?: AbortSignal;
    }): Promise<ExecResult[]>;
    /**
     * Server health: template readiness and pool state. Returns the body for 200 (ready) and 503 (starting/shutting down).
     * @throws {ConnectionError} when the server is unreachable.
     * @example
     * ```ts
     * const h = await new Sandbox().health(); // h.status === 'ok'
     * ```
     */
    health(): Promise<Health>;
}
export * from './core.js';
export { Session, type CreateOptions, type ClientOptions, type SessionInfo, type SessionExecResult, type SideEffects, type FileInfo, type SessionRunOptions, type SyncResult } from './session.js';
import { type BatchItem, type ExecResult, type Health, type RunOptions, type SandboxOptions } from './core.js';
import { Session, type ClientOptions, type CreateOptions, type SessionInfo } from './session.js';
