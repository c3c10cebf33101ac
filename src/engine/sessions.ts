// sessions.ts — the engine's session registry (SessionEngine): ids, owners (a
// session is visible only to the key that made it), unique names, caps,
// lifetimes and idle timeouts. A session idle past its idle timeout is paused
// to disk, never deleted; one past its lifetime is deleted (its id answers 410
// Gone for an hour, then 404). Every call on a session waits for a pause the
// reaper started, then takes the session's one-call lock.
import { randomBytes } from 'node:crypto';
import { conflict, gone, invalidRequest, notFound, overloaded } from '../lib/errors.js';
import { log } from '../lib/log.js';
import { LANGUAGES, type Language } from './types.js';
import { languageModule } from '../languages/index.js';
import { Session, type SessionHost, type SessionMeta } from './session.js';
import type { PauseStore } from './session-store.js';
import type {
  FileInfo, SessionCreate, SessionEngine, SessionExecRequest, SessionExecResult, SessionInfo,
} from './session-types.js';

export interface SessionLimits {
  /** Sessions (live and paused) across all keys. */
  maxSessions: number;
  /** Sessions one key may hold. */
  maxPerOwner: number;
  defaultTimeoutSeconds: number;
  maxTimeoutSeconds: number;
  defaultIdleSeconds: number;
  maxIdleSeconds: number;
  maxForkCount: number;
  /** Overlay bytes of one session's files. */
  quotaBytes: number;
  /** Largest file one read returns. */
  maxReadBytes: number;
}

export const SESSION_LIMITS: SessionLimits = {
  maxSessions: 1000,
  maxPerOwner: 100,
  defaultTimeoutSeconds: 3600,
  maxTimeoutSeconds: 7 * 24 * 3600,
  defaultIdleSeconds: 300,
  maxIdleSeconds: 24 * 3600,
  maxForkCount: 16,
  quotaBytes: 256 * 1024 * 1024,
  maxReadBytes: 64 * 1024 * 1024,
};

const TOMBSTONE_MS = 3600_000;
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const META_MAX = 64;
const newId = (): string => 'ses_' + randomBytes(12).toString('base64url');

function checkStrings(o: unknown, what: string, max: number): Record<string, string> {
  if (o === undefined) return {};
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw invalidRequest(`${what} must be an object of strings`);
  const e = Object.entries(o as Record<string, unknown>);
  if (e.length > max) throw invalidRequest(`${what} has ${e.length} entries (max ${max})`);
  for (const [k, v] of e) {
    if (typeof v !== 'string') throw invalidRequest(`${what}.${k} must be a string`);
    if (!k || k.length > 256 || v.length > 4096 || k.includes('\0') || v.includes('\0') || (what === 'env' && k.includes('=')))
      throw invalidRequest(`${what} entry "${k.slice(0, 40)}" is invalid`);
  }
  return { ...(o as Record<string, string>) };
}

function seconds(v: unknown, dflt: number, max: number, what: string): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 1 || v > max) throw invalidRequest(`${what} must be a number in [1, ${max}]`);
  return v;
}

export class SessionRegistry implements SessionEngine {
  #host: SessionHost;
  #limits: SessionLimits;
  #store: PauseStore | null;
  #keyOf: (lang: Language, template?: string) => string;
  #byId = new Map<string, Session>();
  #tombs = new Map<string, { owner: string; until: number; why: string }>();
  /** A pause the reaper started; calls wait for it. */
  #pending = new Map<string, Promise<unknown>>();
  #timer: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(host: SessionHost, limits: SessionLimits, store: PauseStore | null, keyOf: (lang: Language, template?: string) => string) {
    this.#host = host;
    this.#limits = limits;
    this.#store = store;
    this.#keyOf = keyOf;
  }

  /** Finds paused sessions on disk and starts the reaper. */
  async start(): Promise<void> {
    if (this.#store) {
      for (const { record, files } of await this.#store.list()) {
        if (!LANGUAGES.includes(record.meta.language)) continue;
        this.#byId.set(record.meta.id, Session.paused(this.#host, record.meta, files, record.cwdDone));
      }
      if (this.#byId.size) log.info('sessions.loaded', { paused: this.#byId.size });
    }
    this.#timer = setInterval(() => this.#reap(), 1000);
    this.#timer.unref();
  }

  get size(): number { return this.#byId.size; }
  /** Sessions that hold a VM now (not paused, poisoned or closed). */
  liveVms(): number {
    let n = 0;
    for (const s of this.#byId.values()) if (s.state === 'ready' || s.state === 'running' || s.state === 'idle') n++;
    return n;
  }

  #get(owner: string, id: string): Session {
    const s = typeof id === 'string' ? this.#byId.get(id) : undefined;
    if (s && s.meta.owner === owner) return s;
    const t = this.#tombs.get(id);
    if (t && t.owner === owner) throw gone(`session ${id} ${t.why}; create a new one`);
    throw notFound(`no session ${String(id).slice(0, 80)}`);
  }

  /** The session after any pause in progress. */
  async #ready(owner: string, id: string): Promise<Session> {
    const s = this.#get(owner, id);
    const p = this.#pending.get(id);
    if (p) await p.catch(() => {});
    return s;
  }

  #resume = async (s: Session): Promise<void> => {
    if (!this.#store || !s.paused) throw gone(`session ${s.id} has no saved state; create a new one`);
    const t = this.#host.template(s.meta.language, s.meta.template);
    const child = await this.#store.open(s.paused, t.snapshot, t.key);
    try {
      await s.resumeFrom(child);
    } finally {
      child.close();
    }
    const dir = s.id;
    // The live VM now holds the state (its mapping keeps the file); a later pause writes it anew.
    await this.#store.remove(dir).catch((e: unknown) => log.warn('session.cleanup_failed', { session: dir, err: e as Error }));
    log.info('session.resumed', { session: s.id });
  };

  #meta(owner: string, req: Omit<SessionCreate, 'owner'>, extra: Partial<SessionMeta> = {}): SessionMeta {
    const L = this.#limits;
    const now = Date.now();
    const timeoutSeconds = seconds(req.timeoutSeconds, L.defaultTimeoutSeconds, L.maxTimeoutSeconds, 'timeout_seconds');
    return {
      id: newId(), owner, language: languageModule(req.language)?.name ?? req.language, // canonical: "node" is stored as "javascript"
      ...(req.template !== undefined ? { template: req.template } : {}),
      ...(req.name !== undefined ? { name: req.name } : {}),
      env: checkStrings(req.env, 'env', 256), metadata: checkStrings(req.metadata, 'metadata', META_MAX),
      createdAt: now, expiresAt: now + timeoutSeconds * 1000, timeoutSeconds,
      idleTimeoutSeconds: seconds(req.idleTimeoutSeconds, L.defaultIdleSeconds, L.maxIdleSeconds, 'idle_timeout_seconds'),
      execs: 0, ...extra,
    };
  }

  #admit(owner: string, n: number): void {
    if (this.#closed) throw overloaded(1);
    if (this.#byId.size + n > this.#limits.maxSessions)
      throw overloaded(5);
    let mine = 0;
    for (const s of this.#byId.values()) if (s.meta.owner === owner) mine++;
    if (mine + n > this.#limits.maxPerOwner)
      throw conflict(`this key holds ${mine} sessions (max ${this.#limits.maxPerOwner}); delete some first`);
  }

  async createSession(req: SessionCreate): Promise<SessionInfo> {
    if (req === null || typeof req !== 'object') throw invalidRequest('request must be an object');
    if (!LANGUAGES.includes(req.language)) throw invalidRequest(`unsupported language "${String(req.language)}" (supported: ${LANGUAGES.join(', ')})`);
    if (req.template !== undefined && typeof req.template !== 'string') throw invalidRequest('template must be a template name');
    if (req.template !== undefined) this.#host.template(req.language, req.template); // unknown or of another base: refused now
    if (req.name !== undefined && (typeof req.name !== 'string' || !NAME.test(req.name)))
      throw invalidRequest('name must be 1-128 characters of letters, digits, ".", "_" or "-", starting with a letter or digit');
    this.#admit(req.owner, 1);
    if (req.name !== undefined)
      for (const s of this.#byId.values())
        if (s.meta.owner === req.owner && s.meta.name === req.name) throw conflict(`a session named "${req.name}" exists (${s.id})`);
    const meta = this.#meta(req.owner, req);
    const s = await Session.create(this.#host, meta);
    if (this.#closed) { s.close(); throw gone('the engine is shutting down'); }
    this.#byId.set(meta.id, s);
    log.info('session.created', { session: meta.id, owner: req.owner, language: meta.language, ...(meta.template ? { template: meta.template } : {}) });
    return s.info();
  }

  listSessions(owner: string): SessionInfo[] {
    return [...this.#byId.values()].filter((s) => s.meta.owner === owner).map((s) => s.info());
  }

  getSession(owner: string, id: string): SessionInfo {
    return this.#get(owner, id).info();
  }

  async deleteSession(owner: string, id: string): Promise<void> {
    const s = this.#get(owner, id);
    await this.#end(s, 'was deleted');
  }

  async #end(s: Session, why: string): Promise<void> {
    this.#byId.delete(s.id);
    this.#tombs.set(s.id, { owner: s.meta.owner, until: Date.now() + TOMBSTONE_MS, why });
    s.close();
    if (this.#store) await this.#store.remove(s.id).catch((e: unknown) => log.warn('session.cleanup_failed', { session: s.id, err: e as Error }));
    log.info('session.ended', { session: s.id, why });
  }

  async execSession(owner: string, id: string, req: SessionExecRequest, signal?: AbortSignal): Promise<SessionExecResult> {
    const s = await this.#ready(owner, id);
    if (languageModule(req.language)?.name !== languageModule(s.meta.language)?.name)
      throw invalidRequest(`session ${id} runs ${s.meta.language}, not ${String(req.language)}`);
    return s.exec(req, this.#resume, signal);
  }

  async forkSession(owner: string, id: string, count: number): Promise<SessionInfo[]> {
    if (!Number.isSafeInteger(count) || count < 1 || count > this.#limits.maxForkCount)
      throw invalidRequest(`count must be an integer in [1, ${this.#limits.maxForkCount}]`);
    const s = await this.#ready(owner, id);
    this.#admit(owner, count);
    const now = Date.now();
    const kids = await s.fork(count, this.#resume, () => ({
      ...this.#meta(owner, { language: s.meta.language, ...(s.meta.template !== undefined ? { template: s.meta.template } : {}), env: s.meta.env, metadata: s.meta.metadata,
        timeoutSeconds: Math.max(1, Math.min(this.#limits.maxTimeoutSeconds, Math.round((s.meta.expiresAt - now) / 1000))),
        idleTimeoutSeconds: s.meta.idleTimeoutSeconds }),
      parentId: s.id,
    }));
    for (const k of kids) this.#byId.set(k.id, k);
    log.info('session.forked', { session: id, children: kids.map((k) => k.id) });
    return kids.map((k) => k.info());
  }

  async pauseSession(owner: string, id: string): Promise<SessionInfo> {
    const s = await this.#ready(owner, id);
    await this.#pause(s);
    return s.info();
  }

  async #pause(s: Session): Promise<void> {
    const store = this.#store;
    if (!store) throw gone('this engine keeps no paused sessions (no store)');
    const key = this.#keyOf(s.meta.language, s.meta.template);
    const t0 = performance.now();
    await s.pause(this.#resume, (sess, from) => store.write(sess, from, key));
    log.info('session.paused', { session: s.id, ms: Math.round(performance.now() - t0), diskBytes: s.paused?.bytes ?? 0 });
  }

  #files<T>(owner: string, id: string, fn: (s: Session) => Promise<T>): Promise<T> {
    return this.#ready(owner, id).then(fn);
  }

  writeFile(owner: string, id: string, path: string, data: Buffer, opts: { mode?: number; parents?: boolean } = {}): Promise<FileInfo> {
    return this.#files(owner, id, (s) => s.writeFile(this.#resume, path, data, opts));
  }
  readFile(owner: string, id: string, path: string): Promise<Buffer> {
    return this.#files(owner, id, (s) => s.readFile(this.#resume, path, this.#limits.maxReadBytes));
  }
  statFile(owner: string, id: string, path: string): Promise<FileInfo> {
    return this.#files(owner, id, (s) => s.statFile(this.#resume, path));
  }
  listFiles(owner: string, id: string, path: string): Promise<FileInfo[]> {
    return this.#files(owner, id, (s) => s.listFiles(this.#resume, path));
  }
  removeFile(owner: string, id: string, path: string, opts: { recursive?: boolean } = {}): Promise<void> {
    return this.#files(owner, id, (s) => s.removeFile(this.#resume, path, opts));
  }
  mkdir(owner: string, id: string, path: string): Promise<FileInfo> {
    return this.#files(owner, id, (s) => s.mkdir(this.#resume, path));
  }

  /** Lifetimes end sessions; idle timeouts pause them. */
  #reap(): void {
    const now = Date.now();
    for (const [id, t] of this.#tombs) if (t.until <= now) this.#tombs.delete(id);
    for (const s of [...this.#byId.values()]) {
      if (this.#pending.has(s.id)) continue;
      if (now >= s.meta.expiresAt && s.state !== 'running') {
        void this.#end(s, 'expired (its lifetime is over)');
      } else if ((s.state === 'idle' || s.state === 'ready') && this.#store &&
                 now - s.lastActiveAt >= s.meta.idleTimeoutSeconds * 1000) {
        const p = this.#pause(s).catch((e: unknown) => log.warn('session.autopause_failed', { session: s.id, err: e as Error }))
          .finally(() => this.#pending.delete(s.id));
        this.#pending.set(s.id, p);
      } else if (s.state === 'poisoned' && now - s.lastActiveAt >= 60_000) {
        void this.#end(s, 'ended (its VM died)');
      }
    }
  }

  /** Closes every live session (paused ones stay on disk for the next start). */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    await Promise.all([...this.#pending.values()].map((p) => p.catch(() => {})));
    for (const s of this.#byId.values()) if (s.state !== 'paused') s.close();
    this.#byId.clear();
  }
}
