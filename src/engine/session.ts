// session.ts — a session: one sandbox kept between execs, with its lifecycle
// in its state (ready → running ⇄ idle → paused → … → closed; poisoned when its
// VM died). One call at a time: a call while running is Conflict (409). The VM
// never runs between calls. Live fork and pause both go through a child
// snapshot of the VM (SessionVm.derive): only the pages the session changed against
// its template, shared copy-on-write by the session and its forks, and written
// to disk by a pause. Memory: the session's share of the engine budget is its
// worst case (RAM + mailbox) while a call runs, and what it holds while idle.
import { conflict, gone, invalidRequest } from '../lib/errors.js';
import { log } from '../lib/log.js';
import type { LanguageModule } from '../languages/index.js';
import { FB_REQ_EXEC, FB_ST_DONE } from '../vmm/abi.js';
import type { Pool, Response, RunRequest } from '../vmm/vmm.js';
import type { Charge, MemoryBudget } from './budget.js';
import { VMM_OK, decodeResponse, newExecId, validateExec, vmmCap } from './decode.js';
import * as files from './files.js';
import { isCall, noProcesses, serveProcesses, type GroupHost, type GroupVm } from './processes.js';
import type { FileInfo, SandboxState, SessionExecRequest, SessionExecResult, SessionInfo, SideEffects } from './session-types.js';
import type { Language } from './types.js';

/** Where a session's files live; every session's first exec starts there. */
export const WORKSPACE = '/workspace';
const PAGE = 4096;
const FILE_TIMEOUT_MS = 30_000;

/** The VM a session holds: the real one is src/vmm's SessionVm; tests use src/engine/fake-vmm.ts. */
export interface SessionVm {
  run(req: RunRequest): Promise<Response>;
  kick(): void;
  close(gone?: () => void): void;
  privateBytes(): number;
  derive(root: SessionSnapshot): Promise<SessionSnapshot>;
  /** What derive() + write() would write, straight from the VM (a pause). */
  saveChild(memPath: string, statePath: string): Promise<void>;
}

/** What a pause writes from: the cached child snapshot, or the VM itself. */
export type PauseSource = { child: SessionSnapshot } | { vm: SessionVm };
/** A snapshot a session forks from: a template, or a child made by derive. */
export interface SessionSnapshot {
  fork(pool?: Pool | null): Promise<SessionVm>;
  close(): void;
  readonly pages: number;
  write(memPath: string, statePath: string): Promise<void>;
}

/** What a session needs from the engine. */
export interface SessionHost {
  /** The template a session runs in: `template` by name, else the language's own. */
  template(lang: Language, template?: string): { snapshot: SessionSnapshot; forkCost: number; key: string; module: LanguageModule;
    /** Arena bytes an exec may use in this template (default: defaults.memLimit). */
    memLimit?: number };
  pool(lang: Language, template?: string): Pool | null;
  readonly budget: MemoryBudget;
  readonly defaults: { stdoutCap: number; stderrCap: number; memLimit: number };
  /** Overlay bytes a session's files may use. */
  readonly quotaBytes: number;
  /** What an exec that starts processes needs (src/engine/processes.ts); absent: calls get ENOSYS. */
  processes?(lang: Language, template?: string): GroupHost;
}

export interface SessionMeta {
  id: string;
  owner: string;
  name?: string;
  language: Language;
  /** Template by name when not the language's own (python-data, a user's). */
  template?: string;
  env: Record<string, string>;
  metadata: Record<string, string>;
  createdAt: number;
  expiresAt: number;
  timeoutSeconds: number;
  idleTimeoutSeconds: number;
  parentId?: string;
  execs: number;
}

/** A paused session's files (see session-store.ts). */
export interface PausedFiles { dir: string; memPath: string; statePath: string; bytes: number }

export class Session {
  readonly meta: SessionMeta;
  #host: SessionHost;
  #state: SandboxState;
  #vm: SessionVm | null = null;
  #charge: Charge | null = null;
  /** The next exec reseeds the program's RNGs (a new fork must not repeat its siblings' streams). */
  #reseed = true;
  /** The next exec enters this directory first (only a new session's first exec). */
  #cwd: string | undefined = WORKSPACE;
  #private = 0;
  /** Bytes of the child snapshot this session was last re-based onto (it holds them for its forks too). */
  #childBytes = 0;
  /** The child snapshot the VM was last re-based onto, while no call has changed the VM since (reused by fork/pause/discard). */
  #base: SessionSnapshot | null = null;
  #poisonedBy = '';
  lastActiveAt = Date.now();
  paused: PausedFiles | null = null;

  private constructor(host: SessionHost, meta: SessionMeta, state: SandboxState) {
    this.#host = host;
    this.meta = meta;
    this.#state = state;
  }

  get state(): SandboxState { return this.#state; }
  get id(): string { return this.meta.id; }

  /** A new session: a fresh fork of the language's template, with its workspace and quota. */
  static async create(host: SessionHost, meta: SessionMeta): Promise<Session> {
    const t = host.template(meta.language, meta.template);
    const s = new Session(host, meta, 'running');
    s.#charge = host.budget.reserve(t.forkCost, 'a session');
    try {
      s.#vm = await t.snapshot.fork(host.pool(meta.language, meta.template));
      await files.mkdir(s.#vm, WORKSPACE, { parents: true, timeoutMs: FILE_TIMEOUT_MS });
      if (host.quotaBytes > 0) await files.setQuota(s.#vm, host.quotaBytes, { timeoutMs: FILE_TIMEOUT_MS });
    } catch (e) {
      s.#drop();
      throw e;
    }
    s.#settle('ready');
    return s;
  }

  /** A session known only from its files on disk (after a restart). */
  static paused(host: SessionHost, meta: SessionMeta, files: PausedFiles, cwdDone: boolean): Session {
    const s = new Session(host, meta, 'paused');
    s.paused = files;
    s.#reseed = false;
    if (cwdDone) s.#cwd = undefined;
    return s;
  }

  /** Whether the workspace has been entered (persisted with a pause). */
  get cwdDone(): boolean { return this.#cwd === undefined; }

  info(): SessionInfo {
    const m = this.meta;
    return {
      id: m.id, ...(m.name !== undefined ? { name: m.name } : {}), language: m.language,
      ...(m.template !== undefined ? { template: m.template } : {}), state: this.#state,
      createdAt: new Date(m.createdAt).toISOString(), lastActiveAt: new Date(this.lastActiveAt).toISOString(),
      expiresAt: new Date(m.expiresAt).toISOString(), timeoutSeconds: m.timeoutSeconds,
      idleTimeoutSeconds: m.idleTimeoutSeconds, metadata: { ...m.metadata }, execs: m.execs,
      ...(m.parentId !== undefined ? { parentId: m.parentId } : {}),
      memoryBytes: this.#vm ? this.#private + this.#childBytes : 0,
      diskBytes: this.paused?.bytes ?? 0,
    };
  }

  /** Takes the one-call lock; resumes a paused session first (via `resume`). */
  async #begin(resume: (s: Session) => Promise<void>): Promise<SessionVm> {
    switch (this.#state) {
      case 'running': throw conflict(`session ${this.id} is running another call; one at a time`);
      case 'closed': throw gone(`session ${this.id} has ended; create a new one`);
      case 'poisoned': throw gone(`session ${this.id} ended: ${this.#poisonedBy}; create a new one`);
      default: break;
    }
    const wasPaused = this.#state === 'paused';
    this.#state = 'running';
    this.lastActiveAt = Date.now();
    try {
      if (wasPaused) await resume(this);
      // A call may write anything: the worst case until it is over.
      this.#charge!.grow(this.#host.template(this.meta.language, this.meta.template).forkCost, 'a session call');
    } catch (e) {
      this.#state = wasPaused && !this.#vm ? 'paused' : 'idle';
      throw e;
    }
    return this.#vm!;
  }

  /** Ends a call: measures what the VM holds (unless the call just did), and charges that. */
  #settle(next: SandboxState, measured = false): void {
    this.lastActiveAt = Date.now();
    if (this.#vm && this.#charge) {
      try {
        if (!measured) this.#private = this.#vm.privateBytes();
        this.#charge.shrink(Math.min(this.#host.template(this.meta.language, this.meta.template).forkCost, this.#private + this.#childBytes));
      } catch (e) {
        log.warn('memory.measure_failed', { session: this.id, err: e as Error });   // keeps the worst case
      }
    }
    this.#state = next;
  }

  #poison(why: string): void {
    if (this.#state !== 'running') return;   // deleted while it ran: closed stays closed
    this.#poisonedBy = why;
    this.#drop();
    this.#state = 'poisoned';
    log.info('session.poisoned', { session: this.id, why });
  }

  /** The VM is about to change: a cached child no longer matches it. */
  #touch(): void {
    this.#base?.close();   // forks of it hold their own references
    this.#base = null;
  }

  /** Releases the VM and its budget share. */
  #drop(): void {
    this.#touch();
    const charge = this.#charge;
    this.#charge = null;
    if (this.#vm) this.#vm.close(() => charge?.release());
    else charge?.release();
    this.#vm = null;
    this.#private = 0;
    this.#childBytes = 0;
  }

  async exec(req: SessionExecRequest, resume: (s: Session) => Promise<void>, signal?: AbortSignal): Promise<SessionExecResult> {
    const v = validateExec(req, this.#host.defaults);
    const t = this.#host.template(this.meta.language, this.meta.template);
    const prepared = t.module.prepare ? t.module.prepare(req.code) : { code: req.code };
    const vm = await this.#begin(resume);
    let target = vm;
    let throwaway: { vm: SessionVm; charge: Charge } | null = null;
    let measured = false;
    try {
      if (req.discard) throwaway = await this.#throwaway(vm);
      if (throwaway) target = throwaway.vm;
      const id = newExecId();
      const t0 = performance.now();
      if ('error' in prepared) {
        // A program that does not compile on the host fails like one that does not compile in the guest.
        const res = { id, stdout: '', stderr: prepared.error, exitCode: 1, outcome: 'exited' as const, stdoutTruncated: false,
          stderrTruncated: false, forkTimeMs: 0, execTimeMs: 0, totalTimeMs: 0 };
        return { ...res, sideEffects: emptyEffects() };
      }
      const payload = t.module.encodeRequest({ code: prepared.code, env: { ...this.meta.env, ...(req.env ?? {}) },
        ...(req.stdin !== undefined ? { stdin: req.stdin } : {}), session: true, reseed: this.#reseed || !!throwaway,
        ...(this.#cwd && !throwaway ? { cwd: this.#cwd } : {}) });
      let cancelled = false;
      let cancelGroup: (() => void) | null = null;
      const onAbort = (): void => { cancelled = true; target.kick(); cancelGroup?.(); };
      signal?.addEventListener('abort', onAbort, { once: true });
      if (signal?.aborted) onAbort();
      const before = throwaway ? 0 : this.#private;
      if (!throwaway) this.#touch();
      let r;
      try {
        const deadline = Date.now() + v.timeoutMs;
        r = await target.run({ kind: FB_REQ_EXEC, payload, outCap: vmmCap(v.stdoutCap), errCap: vmmCap(v.stderrCap),
          memLimit: this.#host.template(this.meta.language, this.meta.template).memLimit ?? this.#host.defaults.memLimit, timeoutMs: v.timeoutMs });
        if (isCall(r)) {
          // The program called the host (a fork, say): serve its processes until the exec ends.
          const gh = this.#host.processes?.(this.meta.language, this.meta.template) ?? noProcesses(this.#host.defaults.memLimit);
          r = (await serveProcesses(target as unknown as GroupVm, r, gh, { deadline, outCap: v.stdoutCap, errCap: v.stderrCap },
            (c) => { cancelGroup = c; if (cancelled) c(); })).response;
          this.#base?.close();   // the VM was re-based by its forks: a cached child is stale
          this.#base = null;
        }
      } finally {
        signal?.removeEventListener('abort', onAbort);
      }
      const res = decodeResponse(id, r, { forkMs: 0, execMs: r.runNs / 1e6, totalMs: performance.now() - t0 },
        // a delete while it ran kicked it: that is a cancellation, not a crash
        { timeoutSeconds: req.timeoutSeconds, cancelled: cancelled || (this.#state as SandboxState) === 'closed',
          stdoutCap: v.stdoutCap, stderrCap: v.stderrCap });
      const answer = t.module.decodeAnswer(r.result);
      const alive = r.outcomeCode === VMM_OK && r.status === FB_ST_DONE && res.outcome === 'exited';
      let effects = emptyEffects();
      measured = alive && !throwaway;
      if (alive) {
        if (!throwaway) { this.#reseed = false; this.#cwd = undefined; this.meta.execs++; }
        effects = await this.#effects(target, r.arenaPeak, before, !!throwaway);
      } else if (!throwaway) {
        this.#poison(res.outcome === 'timeout' ? `its exec timed out after ${req.timeoutSeconds} s`
          : res.outcome === 'cancelled' ? 'its exec was cancelled'
            : r.status !== FB_ST_DONE && r.outcomeCode === VMM_OK ? 'its program exited' : 'its exec crashed');
      }
      return { ...res, ...(answer.result !== undefined ? { result: answer.result } : {}),
        ...(answer.resultTruncated ? { resultTruncated: true } : {}), sideEffects: effects };
    } finally {
      if (throwaway) throwaway.vm.close(() => throwaway!.charge.release());
      if (this.#state === 'running') this.#settle('idle', measured);
    }
  }

  /** What the exec changed: the runtime's change log, pages newly written, peak guest memory. */
  async #effects(vm: SessionVm, arenaPeak: number, before: number, throwaway: boolean): Promise<SideEffects> {
    const log0 = await files.changes(vm, { timeoutMs: FILE_TIMEOUT_MS });
    let pages = 0;
    try {
      const now = vm.privateBytes();
      if (!throwaway) this.#private = now;
      pages = Math.max(0, Math.round((now - before) / PAGE));
    } catch { /* reported as 0: measuring is best effort */ }
    return {
      filesCreated: log0.created, filesModified: log0.modified, filesDeleted: log0.deleted.map((d) => ({ path: d.path })),
      filesTruncated: log0.truncated, pagesDirtied: pages, peakMemoryBytes: arenaPeak,
    };
  }

  /** A child snapshot of the live VM, re-basing it (the session then shares those pages with the child's forks). */
  async #derive(vm: SessionVm): Promise<SessionSnapshot> {
    if (!this.#base) {
      const t = this.#host.template(this.meta.language, this.meta.template);
      this.#base = await vm.derive(t.snapshot);
      this.#childBytes = this.#base.pages * PAGE;
      // the re-based VM gave up its own copies of those pages
      try { this.#private = vm.privateBytes(); } catch { /* measured again at the end of the call */ }
    }
    return this.#base;
  }

  async #throwaway(vm: SessionVm): Promise<{ vm: SessionVm; charge: Charge }> {
    const t = this.#host.template(this.meta.language, this.meta.template);
    const charge = this.#host.budget.reserve(t.forkCost, 'a discarded exec');
    try {
      const child = await this.#derive(vm);
      return { vm: await child.fork(this.#host.pool(this.meta.language, this.meta.template)), charge };
    } catch (e) {
      charge.release();
      throw e;
    }
  }

  /** `count` new sessions from the live state; `make` registers each (the registry names their ids). */
  async fork(count: number, resume: (s: Session) => Promise<void>, make: (i: number) => SessionMeta): Promise<Session[]> {
    const vm = await this.#begin(resume);
    const t = this.#host.template(this.meta.language, this.meta.template);
    const out: Session[] = [];
    try {
      const child = await this.#derive(vm);
      for (let i = 0; i < count; i++) {
        const charge = this.#host.budget.reserve(t.forkCost, 'a forked session');
        let kid: SessionVm;
        try {
          kid = await child.fork(this.#host.pool(this.meta.language, this.meta.template));
        } catch (e) {
          charge.release();
          throw e;
        }
        const s = new Session(this.#host, make(i), 'running');
        s.#vm = kid;
        s.#charge = charge;
        s.#cwd = this.#cwd;        // inherits the working directory as it stands
        s.#reseed = true;          // but not the RNG streams
        s.#settle('idle');
        out.push(s);
      }
      return out;
    } catch (e) {
      for (const s of out) s.close();
      throw e;
    } finally {
      if (this.#state === 'running') this.#settle('idle');
    }
  }

  /** Writes the session to disk through `write` (a child snapshot) and frees its VM. */
  async pause(resume: (s: Session) => Promise<void>, write: (s: Session, from: PauseSource) => Promise<PausedFiles>): Promise<void> {
    if (this.#state === 'paused') return;
    const vm = await this.#begin(resume);
    try {
      // A child cached since the last change is written as it is; otherwise the pages go
      // from the VM straight to disk (no in-memory copy: the VM is released next).
      this.paused = await write(this, this.#base ? { child: this.#base } : { vm });
    } catch (e) {
      this.#settle('idle');
      throw e;
    }
    this.#drop();
    this.#state = 'paused';
    this.lastActiveAt = Date.now();
  }

  /** Resumes from `child` (opened from disk by the store): a fork of it becomes the session's VM. */
  async resumeFrom(child: SessionSnapshot): Promise<void> {
    const t = this.#host.template(this.meta.language, this.meta.template);
    const charge = this.#host.budget.reserve(t.forkCost, 'a resumed session');
    try {
      this.#vm = await child.fork(this.#host.pool(this.meta.language, this.meta.template));
    } catch (e) {
      charge.release();
      throw e;
    }
    this.#charge = charge;
    this.#childBytes = child.pages * PAGE;
    this.paused = null;
  }

  // ---- files (the runtime serves them; no user code runs) -------------------

  async #file<T>(resume: (s: Session) => Promise<void>, fn: (vm: SessionVm) => Promise<T>, changes = true): Promise<T> {
    const vm = await this.#begin(resume);
    if (changes) this.#touch();
    try {
      return await fn(vm);
    } finally {
      this.#settle('idle');
    }
  }

  writeFile(resume: (s: Session) => Promise<void>, path: string, data: Buffer, o: { mode?: number; parents?: boolean }): Promise<FileInfo> {
    return this.#file(resume, async (vm) => {
      await files.writeFile(vm, path, data, { ...(o.mode !== undefined ? { mode: o.mode } : {}),
        parents: o.parents ?? true, timeoutMs: FILE_TIMEOUT_MS });
      return fileInfo(path, await files.stat(vm, path, { timeoutMs: FILE_TIMEOUT_MS }));
    });
  }

  readFile(resume: (s: Session) => Promise<void>, path: string, maxBytes: number): Promise<Buffer> {
    return this.#file(resume, (vm) => files.readFile(vm, path, { maxBytes, timeoutMs: FILE_TIMEOUT_MS }), false);
  }

  statFile(resume: (s: Session) => Promise<void>, path: string): Promise<FileInfo> {
    return this.#file(resume, async (vm) => fileInfo(path, await files.stat(vm, path, { noFollow: true, timeoutMs: FILE_TIMEOUT_MS })), false);
  }

  listFiles(resume: (s: Session) => Promise<void>, path: string): Promise<FileInfo[]> {
    return this.#file(resume, async (vm) => (await files.list(vm, path, { timeoutMs: FILE_TIMEOUT_MS }))
      .map((e) => fileInfo(join(path, e.name), e)), false);
  }

  removeFile(resume: (s: Session) => Promise<void>, path: string, o: { recursive?: boolean }): Promise<void> {
    if (normal(path) === '/') throw invalidRequest('refusing to remove /');
    return this.#file(resume, (vm) => files.remove(vm, path, { ...(o.recursive ? { recursive: true } : {}), timeoutMs: FILE_TIMEOUT_MS }));
  }

  mkdir(resume: (s: Session) => Promise<void>, path: string): Promise<FileInfo> {
    return this.#file(resume, async (vm) => {
      await files.mkdir(vm, path, { parents: true, timeoutMs: FILE_TIMEOUT_MS });
      return fileInfo(path, await files.stat(vm, path, { timeoutMs: FILE_TIMEOUT_MS }));
    });
  }

  /** Ends the session: its VM is released (a paused session's files are the store's to remove). */
  close(): void {
    if (this.#state === 'closed') return;
    this.#vm?.kick();   // a call in flight ends now (its answer says so)
    this.#drop();
    this.#state = 'closed';
  }
}

function emptyEffects(): SideEffects {
  return { filesCreated: [], filesModified: [], filesDeleted: [], filesTruncated: false, pagesDirtied: 0, peakMemoryBytes: 0 };
}

const normal = (p: string): string => {
  const parts: string[] = [];
  for (const seg of p.split('/')) {
    if (!seg || seg === '.') continue;
    if (seg === '..') parts.pop();
    else parts.push(seg);
  }
  return '/' + parts.join('/');
};
const join = (dir: string, name: string): string => (dir.endsWith('/') ? dir + name : `${dir}/${name}`);

function fileInfo(path: string, s: { type: FileInfo['type']; mode: number; size: number; mtime: number }): FileInfo {
  const p = normal(path);
  return { path: p, name: p === '/' ? '/' : p.slice(p.lastIndexOf('/') + 1), type: s.type, size: s.size,
    mode: s.mode & 0o7777, mtime: new Date(s.mtime * 1000).toISOString() };
}
