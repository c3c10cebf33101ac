import { type ExecResult, type RunOptions, type SandboxOptions } from './core.js';
import type { Http } from './http.js';
export interface ClientOptions extends SandboxOptions {
    /** API key (default FORKBOX_API_KEY). */
    apiKey?: string;
    /** Server URL (default FORKBOX_BASE_URL, else http://127.0.0.1:8080). */
    baseUrl?: string;
}
export interface CreateOptions extends ClientOptions {
    /** Language of every run (default "python"). */
    language?: string;
    /** Template by name, e.g. "python-data" (default: the language's own). */
    template?: string;
    /** Unique among this key's sessions. */
    name?: string;
    /** Lifetime in seconds (server default when unset). */
    timeout?: number;
    /** Seconds without a call after which the session is paused to disk (not deleted). */
    idleTimeout?: number;
    /** Environment of every run. */
    env?: Record<string, string>;
    /** Your labels, returned as given. */
    metadata?: Record<string, string>;
}
export interface SessionInfo {
    id: string;
    name?: string;
    language: string;
    /** The template it runs (the language's own unless created with one). */
    template?: string;
    /** ready, running, idle, paused, poisoned or closed. */
    state: string;
    createdAt: string;
    lastActiveAt: string;
    expiresAt: string;
    timeoutSeconds: number;
    idleTimeoutSeconds: number;
    metadata: Record<string, string>;
    execs: number;
    parentId?: string;
    memoryBytes: number;
    diskBytes: number;
}
export interface SideEffects {
    filesCreated: Array<{
        path: string;
        size: number;
    }>;
    filesModified: Array<{
        path: string;
        size: number;
    }>;
    filesDeleted: Array<{
        path: string;
    }>;
    filesTruncated: boolean;
    pagesDirtied: number;
    peakMemoryBytes: number;
}
export interface SessionExecResult extends ExecResult {
    /** repr of the last expression's value, if the code ended with one. */
    result?: string;
    resultTruncated: boolean;
    sideEffects: SideEffects;
}
export interface SessionRunOptions extends Omit<RunOptions, 'language' | 'template'> {
    /** Run in a throwaway fork of the session: the session itself is left untouched. */
    discard?: boolean;
}
export interface FileInfo {
    path: string;
    name: string;
    type: 'file' | 'dir' | 'symlink' | 'device' | 'other';
    size: number;
    mode: number;
    mtime: string;
}
export interface SyncResult {
    /** Files and directories written at the destination. */
    files: number;
    dirs: number;
    bytes: number;
    /** Paths removed at the destination (with `delete`). */
    deleted: string[];
    /** Paths not copied (symlinks, devices). */
    skipped: string[];
}
/** A live session on the server. */
export declare class Session {
    #private;
    readonly id: string;
    /** File calls: write, read, list, remove, upload, download. */
    readonly files: Files;
    private constructor();
    /** @internal */
    static create(http: Http, o: CreateOptions): Promise<Session>;
    /** @internal */
    static connect(http: Http, id: string): Promise<Session>;
    /** @internal */
    static list(http: Http): Promise<SessionInfo[]>;
    /**
     * Runs code in the session; its globals and files persist to the next run.
     * @param code    Code in the session's language.
     * @param options timeout (seconds, default 30), env, stdin, discard (run in a throwaway fork), signal.
     * @returns The result, with `result` (repr of a last expression) and `sideEffects`.
     * @throws {Conflict} another run is in progress; {Gone} the session expired or died; {NotFound}.
     * @example
     * ```ts
     * await s.run('import numpy as np; a = np.arange(3)');
     * (await s.run('a.sum()')).result; // '3'
     * ```
     */
    run(code: string, options?: SessionRunOptions): Promise<SessionExecResult>;
    /**
     * `n` new sessions forked from this one's live state (memory and files); they share unchanged pages.
     * @example
     * ```ts
     * const [a, b, c] = await s.fork(3);
     * ```
     */
    fork(n?: number): Promise<Session[]>;
    /**
     * Writes what the session changed to disk and frees its VM; the next call resumes it.
     * @example
     * ```ts
     * (await s.pause()).state; // 'paused'
     * ```
     */
    pause(): Promise<SessionInfo>;
    /**
     * Deletes the session and its files.
     * @example
     * ```ts
     * await s.kill();
     * ```
     */
    kill(): Promise<void>;
    /**
     * The session's state, times and sizes.
     * @example
     * ```ts
     * const { state, execs } = await s.info();
     * ```
     */
    info(): Promise<SessionInfo>;
}
/** A session's files. Paths are absolute inside the session (e.g. /workspace/data.csv). */
export declare class Files {
    #private;
    constructor(http: Http, base: string);
    /**
     * Writes a file (text as UTF-8), creating missing parent directories unless `parents: false`.
     * @returns The file's info.
     * @throws {PayloadTooLarge} past the upload limit or the session's quota; {InvalidRequest} bad path.
     * @example
     * ```ts
     * await s.files.write('/workspace/data.csv', 'a,b\n1,2\n');
     * ```
     */
    write(path: string, data: string | Uint8Array, options?: {
        mode?: number;
        parents?: boolean;
    }): Promise<FileInfo>;
    /**
     * Reads a file: bytes, or text with `{ format: 'text' }`.
     * @throws {NotFound} no such file; {InvalidRequest} a directory (use list).
     * @example
     * ```ts
     * const text = await s.files.read('/workspace/out.txt', { format: 'text' });
     * ```
     */
    read(path: string): Promise<Uint8Array>;
    read(path: string, options: {
        format: 'text';
    }): Promise<string>;
    read(path: string, options: {
        format: 'bytes';
    }): Promise<Uint8Array>;
    /**
     * The entries of a directory with sizes, modes and times.
     * @example
     * ```ts
     * for (const e of await s.files.list('/workspace')) console.log(e.name, e.type, e.size);
     * ```
     */
    list(path: string): Promise<FileInfo[]>;
    /**
     * Removes a file, or a directory (`recursive: true` when it is not empty).
     * @example
     * ```ts
     * await s.files.remove('/workspace/tmp', { recursive: true });
     * ```
     */
    remove(path: string, options?: {
        recursive?: boolean;
    }): Promise<void>;
    /**
     * Copies a local directory into the session as one tar (Node only). With `delete: true`, files under
     * `remoteDir` that are not in `localDir` are removed: the destination mirrors the source.
     * @example
     * ```ts
     * await s.files.upload('./project', '/workspace', { delete: true });
     * ```
     */
    upload(localDir: string, remoteDir: string, options?: {
        delete?: boolean;
    }): Promise<SyncResult>;
    /**
     * Copies a directory of the session to a local directory (Node only), creating it. With `delete: true`,
     * local files under `localDir` that are not in the session are removed.
     * @example
     * ```ts
     * await s.files.download('/workspace/out', './out');
     * ```
     */
    download(remoteDir: string, localDir: string, options?: {
        delete?: boolean;
    }): Promise<SyncResult>;
}
