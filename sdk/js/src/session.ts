// session.ts — a forkbox session: a sandbox that keeps globals, imports and
// files between runs (REPL semantics; a last expression comes back as `result`).
// `Sandbox.create()` returns one; `session.files` reads and writes its files,
// and upload()/download() mirror a whole directory as a tar (Node only), with
// the destructive `delete` option of an rsync-style sync. One exec at a time per
// session: a call while one runs throws Conflict; an expired session throws Gone.
import { fromWire, readable, toWire, InvalidRequest, type ExecResult, type RunOptions, type SandboxOptions, type WireResult } from './core.js';
import type { Http } from './http.js';
import { linkStaysInside, readTar, safeName, writeTar, type TarEntry } from './tar.js';

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
  filesCreated: Array<{ path: string; size: number }>;
  filesModified: Array<{ path: string; size: number }>;
  filesDeleted: Array<{ path: string }>;
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

interface WireSession {
  id: string; name: string | null; language: string; template?: string; state: string; created_at: string; last_active_at: string; expires_at: string;
  timeout_seconds: number; idle_timeout_seconds: number; metadata: Record<string, string>; execs: number; parent_id: string | null;
  memory_bytes: number; disk_bytes: number;
}

function infoFromWire(w: WireSession): SessionInfo {
  const out: SessionInfo = {
    id: w.id, language: w.language, state: w.state, createdAt: w.created_at, lastActiveAt: w.last_active_at, expiresAt: w.expires_at,
    timeoutSeconds: w.timeout_seconds, idleTimeoutSeconds: w.idle_timeout_seconds, metadata: w.metadata, execs: w.execs,
    memoryBytes: w.memory_bytes, diskBytes: w.disk_bytes,
  };
  if (w.template !== undefined) out.template = w.template;
  if (w.name !== null && w.name !== undefined) out.name = w.name;
  if (w.parent_id !== null && w.parent_id !== undefined) out.parentId = w.parent_id;
  return out;
}

const CALL_TIMEOUT = 120;
const enc = new TextEncoder();

/** A live session on the server. */
export class Session {
  readonly id: string;
  /** File calls: write, read, list, remove, upload, download. */
  readonly files: Files;
  readonly #http: Http;
  readonly #path: string;

  private constructor(http: Http, id: string) {
    this.#http = http;
    this.id = id;
    this.#path = `/v1/sessions/${encodeURIComponent(id)}`;
    this.files = new Files(http, this.#path);
  }

  /** @internal */
  static async create(http: Http, o: CreateOptions): Promise<Session> {
    const body: Record<string, unknown> = { language: o.language ?? 'python' };
    if (o.template !== undefined) body.template = o.template;
    if (o.name !== undefined) body.name = o.name;
    if (o.timeout !== undefined) body.timeout_seconds = o.timeout;
    if (o.idleTimeout !== undefined) body.idle_timeout_seconds = o.idleTimeout;
    if (o.env !== undefined) body.env = o.env;
    if (o.metadata !== undefined) body.metadata = o.metadata;
    const w = (await http.json('POST', '/v1/sessions', body, CALL_TIMEOUT)) as WireSession;
    return new Session(http, w.id);
  }

  /** @internal */
  static async connect(http: Http, id: string): Promise<Session> {
    const s = new Session(http, id);
    await s.info(); // NotFound / Gone now rather than at the first run
    return s;
  }

  /** @internal */
  static async list(http: Http): Promise<SessionInfo[]> {
    const w = (await http.json('GET', '/v1/sessions', undefined, CALL_TIMEOUT)) as { sessions: WireSession[] };
    return w.sessions.map(infoFromWire);
  }

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
  async run(code: string, options: SessionRunOptions = {}): Promise<SessionExecResult> {
    const { signal, discard, ...rest } = options;
    const body = toWire(code, rest);
    delete body.language; // the session's own
    delete body.template;
    if (discard) body.discard = true;
    const w = (await this.#http.json('POST', `${this.#path}/exec`, body, (body.timeout_seconds as number) + this.#http.margin, signal)) as
      WireResult & { result: string | null; result_truncated: boolean; side_effects: Record<string, unknown> };
    const fx = w.side_effects as {
      files_created: SideEffects['filesCreated']; files_modified: SideEffects['filesModified']; files_deleted: SideEffects['filesDeleted'];
      files_truncated: boolean; pages_dirtied: number; peak_memory_bytes: number;
    };
    const out: SessionExecResult = readable({
      ...fromWire(w),
      resultTruncated: w.result_truncated ?? false,
      sideEffects: {
        filesCreated: fx.files_created, filesModified: fx.files_modified, filesDeleted: fx.files_deleted,
        filesTruncated: fx.files_truncated, pagesDirtied: fx.pages_dirtied, peakMemoryBytes: fx.peak_memory_bytes,
      },
    });
    if (w.result !== null && w.result !== undefined) out.result = w.result;
    return out;
  }

  /**
   * `n` new sessions forked from this one's live state (memory and files); they share unchanged pages.
   * @example
   * ```ts
   * const [a, b, c] = await s.fork(3);
   * ```
   */
  async fork(n = 1): Promise<Session[]> {
    const w = (await this.#http.json('POST', `${this.#path}/fork`, { count: n }, CALL_TIMEOUT)) as { sessions: WireSession[] };
    return w.sessions.map((x) => new Session(this.#http, x.id));
  }

  /**
   * Writes what the session changed to disk and frees its VM; the next call resumes it.
   * @example
   * ```ts
   * (await s.pause()).state; // 'paused'
   * ```
   */
  async pause(): Promise<SessionInfo> {
    return infoFromWire((await this.#http.json('POST', `${this.#path}/pause`, undefined, CALL_TIMEOUT)) as WireSession);
  }

  /**
   * Deletes the session and its files.
   * @example
   * ```ts
   * await s.kill();
   * ```
   */
  async kill(): Promise<void> {
    await this.#http.json('DELETE', this.#path, undefined, CALL_TIMEOUT);
  }

  /**
   * The session's state, times and sizes.
   * @example
   * ```ts
   * const { state, execs } = await s.info();
   * ```
   */
  async info(): Promise<SessionInfo> {
    return infoFromWire((await this.#http.json('GET', this.#path, undefined, CALL_TIMEOUT)) as WireSession);
  }
}

/** The subset of node:fs/promises upload/download use (the SDK carries no Node types). */
interface Dirent { name: string; isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }
interface Stat { mode: number; mtimeMs: number; isDirectory(): boolean; isFile(): boolean; isSymbolicLink(): boolean }
interface Fs {
  readdir(p: string, o: { withFileTypes: true }): Promise<Dirent[]>;
  readFile(p: string): Promise<Uint8Array>;
  writeFile(p: string, d: Uint8Array, o?: { mode?: number }): Promise<void>;
  mkdir(p: string, o?: { recursive?: boolean }): Promise<unknown>;
  lstat(p: string): Promise<Stat>;
  rm(p: string, o?: { recursive?: boolean; force?: boolean }): Promise<void>;
  chmod(p: string, m: number): Promise<void>;
  utimes(p: string, a: number, m: number): Promise<void>;
}

async function nodeFs(): Promise<Fs> {
  const spec = 'node:fs/promises';
  try {
    return (await import(spec)) as Fs;
  } catch {
    throw new InvalidRequest('InvalidRequest', 0, 'files.upload and files.download need Node (node:fs)');
  }
}

const localJoin = (dir: string, rel: string): string => (rel === '' ? dir : `${dir.replace(/\/+$/, '')}/${rel}`);

async function lstatOrUndefined(fs: Fs, p: string): Promise<Stat | undefined> {
  try {
    return await fs.lstat(p);
  } catch (e) {
    if ((e as { code?: string }).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** Every entry under `dir`, relative, directories before their contents; symlinks and others in `skipped`. */
async function walkLocal(fs: Fs, dir: string): Promise<{ entries: TarEntry[]; skipped: string[] }> {
  const entries: TarEntry[] = [];
  const skipped: string[] = [];
  const visit = async (rel: string): Promise<void> => {
    const list = await fs.readdir(localJoin(dir, rel), { withFileTypes: true });
    list.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const d of list) {
      const r = rel === '' ? d.name : `${rel}/${d.name}`;
      const p = localJoin(dir, r);
      if (d.isDirectory()) {
        const st = await fs.lstat(p);
        entries.push({ name: r, type: 'dir', mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000), data: new Uint8Array(0) });
        await visit(r);
      } else if (d.isFile()) {
        const st = await fs.lstat(p);
        entries.push({ name: r, type: 'file', mode: st.mode & 0o7777, mtime: Math.floor(st.mtimeMs / 1000), data: await fs.readFile(p) });
      } else skipped.push(p);
    }
  };
  await visit('');
  return { entries, skipped };
}

/** A session's files. Paths are absolute inside the session (e.g. /workspace/data.csv). */
export class Files {
  readonly #http: Http;
  readonly #base: string;
  constructor(http: Http, base: string) {
    this.#http = http;
    this.#base = base;
  }

  #url(kind: 'files' | 'archive', path: string, q: Record<string, string> = {}): string {
    const qs = new URLSearchParams({ path, ...q }).toString();
    return `${this.#base}/${kind}?${qs}`;
  }

  /**
   * Writes a file (text as UTF-8), creating missing parent directories unless `parents: false`.
   * @returns The file's info.
   * @throws {PayloadTooLarge} past the upload limit or the session's quota; {InvalidRequest} bad path.
   * @example
   * ```ts
   * await s.files.write('/workspace/data.csv', 'a,b\n1,2\n');
   * ```
   */
  async write(path: string, data: string | Uint8Array, options: { mode?: number; parents?: boolean } = {}): Promise<FileInfo> {
    const q: Record<string, string> = {};
    if (options.parents !== false) q.parents = 'true';
    if (options.mode !== undefined) q.mode = options.mode.toString(8);
    const raw = typeof data === 'string' ? enc.encode(data) : data;
    const res = await this.#http.call('PUT', this.#url('files', path, q), { raw, timeoutSeconds: CALL_TIMEOUT });
    return JSON.parse(new TextDecoder().decode(res.body)) as FileInfo;
  }

  /**
   * Reads a file: bytes, or text with `{ format: 'text' }`.
   * @throws {NotFound} no such file; {InvalidRequest} a directory (use list).
   * @example
   * ```ts
   * const text = await s.files.read('/workspace/out.txt', { format: 'text' });
   * ```
   */
  async read(path: string): Promise<Uint8Array>;
  async read(path: string, options: { format: 'text' }): Promise<string>;
  async read(path: string, options: { format: 'bytes' }): Promise<Uint8Array>;
  async read(path: string, options: { format?: 'text' | 'bytes' } = {}): Promise<Uint8Array | string> {
    const res = await this.#http.call('GET', this.#url('files', path), { timeoutSeconds: CALL_TIMEOUT });
    if (res.contentType.startsWith('application/json')) throw new InvalidRequest('InvalidRequest', 400, `${path} is a directory: use files.list`);
    return options.format === 'text' ? new TextDecoder().decode(res.body) : res.body;
  }

  /**
   * The entries of a directory with sizes, modes and times.
   * @example
   * ```ts
   * for (const e of await s.files.list('/workspace')) console.log(e.name, e.type, e.size);
   * ```
   */
  async list(path: string): Promise<FileInfo[]> {
    const res = await this.#http.call('GET', this.#url('files', path), { timeoutSeconds: CALL_TIMEOUT });
    if (!res.contentType.startsWith('application/json')) throw new InvalidRequest('InvalidRequest', 400, `${path} is a file: use files.read`);
    return (JSON.parse(new TextDecoder().decode(res.body)) as { entries: FileInfo[] }).entries;
  }

  /**
   * Removes a file, or a directory (`recursive: true` when it is not empty).
   * @example
   * ```ts
   * await s.files.remove('/workspace/tmp', { recursive: true });
   * ```
   */
  async remove(path: string, options: { recursive?: boolean } = {}): Promise<void> {
    await this.#http.call('DELETE', this.#url('files', path, options.recursive ? { recursive: 'true' } : {}), { timeoutSeconds: CALL_TIMEOUT });
  }

  /**
   * Copies a local directory into the session as one tar (Node only). With `delete: true`, files under
   * `remoteDir` that are not in `localDir` are removed: the destination mirrors the source.
   * @example
   * ```ts
   * await s.files.upload('./project', '/workspace', { delete: true });
   * ```
   */
  async upload(localDir: string, remoteDir: string, options: { delete?: boolean } = {}): Promise<SyncResult> {
    const fs = await nodeFs();
    const { entries, skipped } = await walkLocal(fs, localDir);
    const res = await this.#http.call('PUT', this.#url('archive', remoteDir, options.delete ? { delete: 'true' } : {}),
      { raw: writeTar(entries), contentType: 'application/x-tar', timeoutSeconds: CALL_TIMEOUT * 5 });
    const r = JSON.parse(new TextDecoder().decode(res.body)) as SyncResult;
    return { files: r.files, dirs: r.dirs, bytes: r.bytes, deleted: r.deleted, skipped: [...skipped, ...r.skipped] };
  }

  /**
   * Copies a directory of the session to a local directory (Node only), creating it. With `delete: true`,
   * local files under `localDir` that are not in the session are removed.
   * @example
   * ```ts
   * await s.files.download('/workspace/out', './out');
   * ```
   */
  async download(remoteDir: string, localDir: string, options: { delete?: boolean } = {}): Promise<SyncResult> {
    const fs = await nodeFs();
    const res = await this.#http.call('GET', this.#url('archive', remoteDir), { timeoutSeconds: CALL_TIMEOUT * 5 });
    const entries = readTar(res.body);
    const out: SyncResult = { files: 0, dirs: 0, bytes: 0, deleted: [], skipped: [] };
    await fs.mkdir(localDir, { recursive: true });
    const want = new Map<string, boolean>(); // relative path → must be a directory
    for (const e of entries) {
      const parts = e.name.split('/');
      for (let i = 1; i < parts.length; i++) want.set(parts.slice(0, i).join('/'), true);
      want.set(e.name, e.type === 'dir');
    }
    if (options.delete) {
      const local = await walkLocal(fs, localDir);
      const gone: string[] = [];
      const all = [...local.entries.map((e) => ({ rel: e.name, dir: e.type === 'dir' })),
        ...local.skipped.map((p) => ({ rel: p.slice(localJoin(localDir, '').length + 1), dir: false }))];
      for (const { rel, dir } of all) {
        if (gone.some((g) => rel.startsWith(g + '/'))) continue;
        if (want.get(rel) === dir) continue;
        await fs.rm(localJoin(localDir, rel), { recursive: true, force: true });
        gone.push(rel);
        out.deleted.push(localJoin(localDir, rel));
      }
    }
    /** Makes every component of `rel` a real directory (a symlink or file in the way is replaced: never written through). */
    const ensureDir = async (rel: string): Promise<void> => {
      let cur = '';
      for (const part of rel.split('/').filter(Boolean)) {
        cur = cur === '' ? part : `${cur}/${part}`;
        const p = localJoin(localDir, cur);
        const st = await lstatOrUndefined(fs, p);
        if (st && st.isDirectory() && !st.isSymbolicLink()) continue;
        if (st) await fs.rm(p, { recursive: true, force: true });
        await fs.mkdir(p);
      }
    };
    for (const e of entries) {
      const name = safeName(e.name);
      if (e.type === 'dir') {
        await ensureDir(name);
        out.dirs++;
      } else if (e.type === 'file') {
        const slash = name.lastIndexOf('/');
        if (slash > 0) await ensureDir(name.slice(0, slash));
        const p = localJoin(localDir, name);
        const st = await lstatOrUndefined(fs, p);
        if (st && (!st.isFile() || st.isSymbolicLink())) await fs.rm(p, { recursive: true, force: true });
        await fs.writeFile(p, e.data, { mode: e.mode || 0o644 });
        await fs.chmod(p, e.mode || 0o644);
        if (e.mtime > 0) await fs.utimes(p, e.mtime, e.mtime);
        out.files++;
        out.bytes += e.data.length;
      } else if (e.linkname !== undefined && linkStaysInside(name, e.linkname)) {
        out.skipped.push(localJoin(localDir, name));
      }
    }
    return out;
  }
}
