// index.ts — the engine: loads (building if needed) the language templates,
// keeps a pool of pre-created VM shells warm, and runs each exec in a fresh
// copy-on-write fork that is destroyed afterwards, or, when it answered
// cleanly, recycled: reset in place to a fresh fork's state (recycle.ts). The HTTP server and the
// CLI use only createEngine() and the Engine interface of types.ts. Every
// live fork (running, warm or kept by a Sandbox) is charged its worst case,
// RAM slot + mailbox, to one memory budget (budget.ts).
import { availableParallelism } from 'node:os';
import { log } from '../lib/log.js';
import { ForkboxError, asForkboxError, kvmUnavailable, shuttingDown, templateNotReady } from '../lib/errors.js';
import { FB_REQ_EXEC } from '../vmm/abi.js';
import { Pool, Snapshot, probe, setWorkers, workersConfigured, type Response, type RunRequest, type Vm } from '../vmm/vmm.js';
import { WarmPool, type WarmFork } from './warm-pool.js';
import { recyclable, recycleDefault } from './recycle.js';
import { MemoryBudget, defaultBudgetMb, type Charge } from './budget.js';
import { FB_MAILBOX_SIZE } from '../vmm/abi.js';
import { DEFAULT_RAM_MB, buildTemplate, listTemplates, type TemplateInfo } from '../template/build.js';
import { crashForLog, decodeResponse, encodePayload, newExecId, validateExec, vmmCap, VMM_TIMEOUT } from './decode.js';
import { SESSION_LIMITS, SessionRegistry, type SessionLimits } from './sessions.js';
import { SessionStore } from './session-store.js';
import type { SessionHost } from './session.js';
import type { FileInfo, SessionCreate, SessionEngine, SessionExecRequest, SessionExecResult, SessionInfo } from './session-types.js';
import { cacheDir } from '../lib/paths.js';
import { join } from 'node:path';
import type { Engine, EngineHealth, ExecRequest, ExecResult, Language } from './types.js';
import { LANGUAGE_MODULES, languageModule, templateOf } from '../languages/index.js';
import type { TemplateName } from '../template/build.js';

/** The owner of sandboxes the engine's own caller holds (no API key can name it). */
const INTERNAL_OWNER = '\0engine';

/** What engine.sandbox() gives: one kept fork and its execs. */
export interface EngineSandbox {
  readonly id: string;
  readonly closed: boolean;
  exec(req: ExecRequest, signal?: AbortSignal): Promise<SessionExecResult>;
  close(): void;
}

export interface EngineOptions {
  /** VM shells kept pre-created (default 16). */
  poolSize?: number;
  /** Native vCPU threads (default 2 × cores). */
  workers?: number;
  /** Arena bytes a program may use, MiB (default 512). */
  memLimitMb?: number;
  /** Template VM RAM, MiB (default 1024). */
  ramSizeMb?: number;
  /** Default output caps, bytes (default 1 MiB each). */
  stdoutCap?: number;
  stderrCap?: number;
  /** Build the template when it is not in the cache (default true); else use the newest cached one. */
  buildIfMissing?: boolean;
  /** Forks kept warmed by one no-output exec, so a request skips the first-touch page faults (default 4; 0 = off). */
  warmForks?: number;
  /** Recycle one-shot forks that answered cleanly instead of destroying them (default FORKBOX_RECYCLE, on). */
  recycle?: boolean;
  /** Host memory all live forks together may use, MiB (default FORKBOX_MEM_BUDGET_MB, else 75% of RAM).
   *  Each live fork is charged RAM + mailbox (what a hostile program can write); an exec or sandbox
   *  that does not fit is refused with MemoryBudgetExceeded (503). */
  memBudgetMb?: number;
  /** Rebuild the template even when cached. */
  forceBuild?: boolean;
  /** Log guest-written text (crash detail from the guest runtime); off by default (FORKBOX_LOG_OUTPUT). */
  logOutput?: boolean;
  /** Session caps, lifetimes and quota (defaults: SESSION_LIMITS). */
  sessions?: Partial<SessionLimits>;
  /** Where paused sessions are kept (default: the cache's sessions/ directory); null keeps none. */
  sessionDir?: string | null;
  /** Progress lines of a template build. */
  onProgress?: (line: string) => void;
  /** Templates to load: 'all' (every language module's; the server and CLI) or a list (default ['python']). */
  templates?: 'all' | readonly string[];
}

export const DEFAULT_CAP = 1024 * 1024;

interface Loaded { info: TemplateInfo; snapshot: Snapshot; warm: WarmPool | null; forkCost: number; pool: Pool | null }

/** Runs one exec in an already-warmed (or recycled) fork; the fork is destroyed afterwards,
 *  or, with `keep`, returned as `vm` once it answered (the caller recycles or closes it). */
function runWarm({ vm }: WarmFork, req: RunRequest, keep: boolean): { done: Promise<{ response: Response; forkNs: number; runNs: number; vm: Vm | null }>; kick: () => void } {
  const done = vm.run(req).then((response) => {
    if (!keep) vm.close();
    return { response, forkNs: 0, runNs: response.runNs, vm: keep ? vm : null };
  }, (e: unknown) => { vm.close(); throw e; });
  return { done, kick: () => vm.kick() };
}

export class ForkboxEngine implements Engine, SessionEngine {
  readonly opts: Required<Omit<EngineOptions, 'onProgress' | 'sessions' | 'sessionDir' | 'templates'>> & Pick<EngineOptions, 'onProgress'>;
  readonly sessionLimits: SessionLimits;
  #sessions: SessionRegistry;
  #templates = new Map<Language, { loaded?: Loaded; building: boolean; error?: ForkboxError }>();
  #pool: Pool | null = null;
  #ready: Promise<void>;
  #closing = false;
  #inFlight = new Map<string, { cancel: () => void; done: Promise<unknown> }>();
  #liveForks = 0;
  readonly budget: MemoryBudget;
  #explicitRam = false;

  constructor(opts: EngineOptions) {
    const memLimitMb = opts.memLimitMb ?? 512;
    const memBudgetMb = opts.memBudgetMb ?? defaultBudgetMb();
    if (!Number.isSafeInteger(memBudgetMb) || memBudgetMb < 1) throw new RangeError('memBudgetMb must be a positive integer');
    this.budget = new MemoryBudget(memBudgetMb * 1024 * 1024);
    this.budget.reclaim = () => [...this.#templates.values()].some((s) => s.loaded?.warm?.evictOne() ?? false);
    this.opts = {
      poolSize: opts.poolSize ?? 16,
      workers: opts.workers ?? 2 * availableParallelism(),
      memLimitMb,
      // RAM must hold the template's own heap and stacks besides the limit: a
      // larger limit gets a larger template (the RAM size is part of its key).
      ramSizeMb: opts.ramSizeMb ?? Math.max(DEFAULT_RAM_MB.python, 2 * Math.ceil((memLimitMb + 128) / 2)),
      stdoutCap: opts.stdoutCap ?? DEFAULT_CAP,
      stderrCap: opts.stderrCap ?? DEFAULT_CAP,
      buildIfMissing: opts.buildIfMissing ?? true,
      forceBuild: opts.forceBuild ?? false,
      warmForks: opts.warmForks ?? 4,
      recycle: opts.recycle ?? recycleDefault(),
      memBudgetMb,
      logOutput: opts.logOutput ?? false,
      onProgress: opts.onProgress,
    };
    if (this.opts.memLimitMb > this.opts.ramSizeMb) throw new RangeError('memLimitMb must not exceed ramSizeMb');
    this.sessionLimits = { ...SESSION_LIMITS, ...(opts.sessions ?? {}) };
    const dir = opts.sessionDir === undefined ? join(cacheDir(), 'sessions') : opts.sessionDir;
    this.#sessions = new SessionRegistry(this.#sessionHost(), this.sessionLimits, dir ? new SessionStore(dir) : null,
      (lang) => this.#template(lang).info.key);
    // One template per image recipe of the language modules (typescript runs in javascript's).
    const all = [...new Set(LANGUAGE_MODULES.map(templateOf))];
    const names = opts.templates === 'all' ? all : all.filter((n) => (opts.templates ?? ['python']).includes(n));
    for (const n of names) this.#templates.set(n, { building: true });
    this.#explicitRam = opts.ramSizeMb !== undefined;
    this.#ready = Promise.all(names.map((n) => this.#load(n))).then(() => this.#sessions.start());
    this.#ready.catch(() => {}); // reported through ready()/health()/exec()
  }

  async #load(lang: Language): Promise<void> {
    const slot = this.#templates.get(lang)!;
    try {
      const p = probe();
      if (!p.available) throw kvmUnavailable(`KVM is not available: ${p.reason}`);
      if (!workersConfigured()) setWorkers(this.opts.workers);
      let info: TemplateInfo | undefined;
      if (this.opts.buildIfMissing) {
        // A module's own RAM (node's idle arena is larger) unless the caller fixed one.
        const mod = languageModule(lang);
        const ramSizeMb = this.#explicitRam || !mod ? this.opts.ramSizeMb : Math.max(this.opts.ramSizeMb, mod.ramMb);
        info = await buildTemplate(lang as TemplateName, { force: this.opts.forceBuild, ramSizeMb,
          ...(this.opts.onProgress ? { onProgress: this.opts.onProgress } : {}) });
      } else {
        info = (await listTemplates()).find((t) => t.name === lang);
        if (!info) throw templateNotReady(`no ${lang} template in the cache (run: forkbox template build ${lang})`);
      }
      const snapshot = new Snapshot(info.memPath, info.statePath);
      // The shell pool serves python (bound to its RAM size); other templates fork fresh shells
      // (their warm forks hide that cost).
      if (lang === 'python' && !this.#pool) {
        this.#pool = new Pool(this.opts.poolSize, snapshot.ramSize);
        this.#pool.bind(snapshot);
      }
      const pool = lang === 'python' ? this.#pool : null;
      // What one fork can make the host hold: every page of its RAM slot and of its mailbox.
      const forkCost = snapshot.ramSize + FB_MAILBOX_SIZE;
      if (forkCost > this.budget.limit)
        log.warn('memory.budget_too_small', { budgetMb: this.opts.memBudgetMb, forkCostMb: forkCost / 1048576 });
      // Recycled forks join the warm forks, up to one per worker beyond the target.
      const warm = this.opts.warmForks > 0 || this.opts.recycle
        ? new WarmPool(snapshot, pool, { target: this.opts.warmForks, memLimit: this.opts.memLimitMb * 1024 * 1024,
          outCap: this.opts.stdoutCap, errCap: this.opts.stderrCap, budget: this.budget, forkCost,
          recycleMax: this.opts.recycle ? Math.max(4, this.opts.workers) : 0,
          ...(languageModule(lang) ? { warmupCode: languageModule(lang)!.warmupCode } : {}) })
        : null;
      slot.loaded = { info, snapshot, warm, forkCost, pool };
      log.info('template.loaded', { template: lang, key: info.key, built: info.built });
    } catch (e) {
      slot.error = e instanceof ForkboxError ? e
        : new ForkboxError('TemplateBuildFailed', 500, `loading the ${lang} template failed: ${(e as Error).message}`, { cause: e });
      log.error('template.failed', { template: lang, err: slot.error });
      throw slot.error;
    } finally {
      slot.building = false;
    }
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  #template(lang: Language): Loaded {
    const m = languageModule(lang);
    const slot = this.#templates.get(m ? templateOf(m) : lang);
    if (slot?.loaded) return slot.loaded;
    if (slot?.error) throw slot.error;
    throw templateNotReady(`the ${lang} template is still being prepared`);
  }

  /**
   * A sandbox kept for several execs until close(): a session that only this
   * engine's caller holds (not listed to any API key). Files and the program's
   * namespace carry over between its execs.
   */
  async sandbox(lang: Language = 'python'): Promise<EngineSandbox> {
    if (this.#closing) throw shuttingDown();
    const info = await this.#sessions.createSession({ owner: INTERNAL_OWNER, language: lang });
    let closed = false;
    return {
      id: info.id,
      get closed() { return closed; },
      exec: (req, signal) => this.#sessions.execSession(INTERNAL_OWNER, info.id, req, signal),
      close: () => {
        if (closed) return;
        closed = true;
        void this.#sessions.deleteSession(INTERNAL_OWNER, info.id).catch(() => {});
      },
    };
  }

  #sessionHost(): SessionHost {
    const engine = this;
    return {
      template: (lang: Language) => {
        if (engine.#closing) throw shuttingDown();
        const t = engine.#template(lang);
        const module = languageModule(lang);
        if (!module) throw templateNotReady(`no language module for ${lang}`);
        return { snapshot: t.snapshot, forkCost: t.forkCost, key: t.info.key, module };
      },
      pool: (lang: Language) => engine.#template(lang).pool,
      budget: this.budget,
      defaults: this.#execDefaults(),
      quotaBytes: this.sessionLimits.quotaBytes,
    };
  }

  // ---- sessions (sessions.ts) ------------------------------------------------
  createSession(req: SessionCreate): Promise<SessionInfo> {
    if (this.#closing) return Promise.reject(shuttingDown());
    return this.#sessions.createSession(req);
  }
  listSessions(owner: string): SessionInfo[] { return this.#sessions.listSessions(owner); }
  getSession(owner: string, id: string): SessionInfo { return this.#sessions.getSession(owner, id); }
  deleteSession(owner: string, id: string): Promise<void> { return this.#sessions.deleteSession(owner, id); }
  execSession(owner: string, id: string, req: SessionExecRequest, signal?: AbortSignal): Promise<SessionExecResult> {
    if (this.#closing) return Promise.reject(shuttingDown());
    return this.#sessions.execSession(owner, id, req, signal);
  }
  forkSession(owner: string, id: string, count: number): Promise<SessionInfo[]> { return this.#sessions.forkSession(owner, id, count); }
  pauseSession(owner: string, id: string): Promise<SessionInfo> { return this.#sessions.pauseSession(owner, id); }
  writeFile(owner: string, id: string, path: string, data: Buffer, opts?: { mode?: number; parents?: boolean }): Promise<FileInfo> {
    return this.#sessions.writeFile(owner, id, path, data, opts);
  }
  readFile(owner: string, id: string, path: string): Promise<Buffer> { return this.#sessions.readFile(owner, id, path); }
  statFile(owner: string, id: string, path: string): Promise<FileInfo> { return this.#sessions.statFile(owner, id, path); }
  listFiles(owner: string, id: string, path: string): Promise<FileInfo[]> { return this.#sessions.listFiles(owner, id, path); }
  removeFile(owner: string, id: string, path: string, opts?: { recursive?: boolean }): Promise<void> {
    return this.#sessions.removeFile(owner, id, path, opts);
  }
  mkdir(owner: string, id: string, path: string): Promise<FileInfo> { return this.#sessions.mkdir(owner, id, path); }

  #execDefaults(): { stdoutCap: number; stderrCap: number; memLimit: number } {
    return { stdoutCap: this.opts.stdoutCap, stderrCap: this.opts.stderrCap, memLimit: this.opts.memLimitMb * 1024 * 1024 };
  }

  async exec(req: ExecRequest, signal?: AbortSignal): Promise<ExecResult> {
    if (this.#closing) throw shuttingDown();
    const v = validateExec(req, this.opts);
    const mod = languageModule(req.language);
    if (mod?.prepare) {
      // Host-side preparation (TypeScript → JavaScript): its failure is the program's (stderr, exit 1).
      const p = mod.prepare(req.code);
      if ('error' in p) return preparedFailure(newExecId(), p.error, v.stderrCap);
      req = { ...req, code: p.code };
    }
    const payload = encodePayload(req);
    const t = this.#template(req.language);
    const id = newExecId();
    const t0 = performance.now();
    const runReq = {
      kind: FB_REQ_EXEC, payload, outCap: vmmCap(v.stdoutCap), errCap: vmmCap(v.stderrCap),
      memLimit: this.opts.memLimitMb * 1024 * 1024, timeoutMs: v.timeoutMs,
    };
    const warm = t.warm ? await t.warm.acquire() : null;
    const recycle = this.opts.recycle && !!t.warm;
    let charge: Charge | null = warm?.charge ?? null;
    let fr: ReturnType<typeof runWarm>;
    try {
      if (!warm) charge = this.budget.reserve(t.forkCost, 'an exec');
      fr = warm ? runWarm(warm, runReq, recycle) : t.snapshot.forkRun(runReq, { pool: t.pool, destroy: !recycle });
    } catch (e) {
      charge?.release();
      if (warm) warm.vm.close();
      log.warn('exec.refused', { id, err: asForkboxError(e) });
      throw asForkboxError(e);
    }
    let cancelled = false;
    const onAbort = (): void => { cancelled = true; fr.kick(); };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    this.#liveForks++;
    this.#inFlight.set(id, { cancel: onAbort, done: fr.done.catch(() => {}) });
    try {
      const out = await fr.done;
      const totalMs = performance.now() - t0;
      const forkMs = out.forkNs / 1e6;
      const execMs = out.runNs / 1e6;
      log.debug('fork.created', { id, template: req.language, forkMs, warm: !!warm, recycled: !!warm?.recycled });
      let res: ExecResult | undefined;
      try {
        res = decodeResponse(id, out.response, { forkMs, execMs, totalMs }, { timeoutSeconds: req.timeoutSeconds, cancelled,
          stdoutCap: v.stdoutCap, stderrCap: v.stderrCap });
      } finally {
        // A clean answer: the fork is reset and kept with its budget share; anything else ends it.
        if (out.vm && t.warm && !this.#closing && res && recyclable(out.response, res.exitCode, cancelled)) {
          t.warm.recycle(out.vm, charge);
          charge = null;
        } else {
          out.vm?.close();
        }
      }
      const fields = { id, exitCode: res.exitCode, forkMs: res.forkTimeMs, execMs: res.execTimeMs, totalMs: res.totalTimeMs,
        stdoutBytes: out.response.stdout.length, stderrBytes: out.response.stderr.length, exits: out.response.exits, warm: !!warm, recycled: !!warm?.recycled };
      if (res.outcome === 'timeout' || out.response.outcomeCode === VMM_TIMEOUT) log.info('exec.timeout', fields);
      else if (res.outcome === 'crashed') log.warn('exec.crashed', { ...fields, crash: crashForLog(res.crash ?? '', this.opts.logOutput) });
      else if (res.outcome === 'cancelled') log.info('exec.cancelled', fields);
      else log.info('exec.done', fields);
      return res;
    } catch (e) {
      const err = asForkboxError(e);
      log.error('exec.failed', { id, err });
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
      this.#inFlight.delete(id);
      this.#liveForks--;
      // A fork that has answered can no longer run, so it can write no more: its
      // worst-case share ends here (its teardown follows on the reaper thread).
      charge?.release();
      if (!this.#closing) t.warm?.replenish();
    }
  }

  health(): EngineHealth {
    const templates: EngineHealth['templates'] = {};
    for (const [lang, s] of this.#templates) {
      templates[lang] = { ready: !!s.loaded, ...(s.building ? { building: true } : {}),
        ...(s.error ? { error: s.error.message } : {}), ...(s.loaded ? { key: s.loaded.info.key } : {}) };
    }
    const pool = this.#pool?.stats() ?? { ready: 0, target: this.opts.poolSize, created: 0, taken: 0, misses: 0 };
    const ready = !this.#closing && [...this.#templates.values()].every((s) => !!s.loaded);
    return { ready, templates, pool, liveForks: this.#liveForks + this.#sessions.liveVms(), inFlight: this.#inFlight.size, sessions: this.#sessions.size };
  }

  /** The memory budget: limit, bytes charged to live forks, live charges, refusals. */
  memoryStats(): ReturnType<MemoryBudget['stats']> {
    return this.budget.stats();
  }

  /** Warm-fork pool counters of a language (null when warming is off). */
  warmStats(lang: Language = 'python'): ReturnType<WarmPool['stats']> | null {
    const m = languageModule(lang);
    return this.#templates.get(m ? templateOf(m) : lang)?.loaded?.warm?.stats() ?? null;
  }

  /** The loaded template of a language (for benchmarks and the CLI). */
  templateInfo(lang: Language = 'python'): TemplateInfo | undefined {
    const m = languageModule(lang);
    return this.#templates.get(m ? templateOf(m) : lang)?.loaded?.info;
  }

  async close(graceMs = 10_000): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    const pending = [...this.#inFlight.values()];
    if (pending.length) {
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<void>((r) => { timer = setTimeout(r, graceMs); });
      await Promise.race([Promise.all(pending.map((p) => p.done)), graceOver]);
      clearTimeout(timer);
      for (const p of this.#inFlight.values()) p.cancel();
      await Promise.all([...this.#inFlight.values()].map((p) => p.done));
    }
    await this.#ready.catch(() => {});
    await this.#sessions.close();
    for (const s of this.#templates.values()) {
      s.loaded?.warm?.close();
      s.loaded?.snapshot.close();
      delete s.loaded;
    }
    this.#pool?.close();
    this.#pool = null;
    log.info('engine.closed', {});
  }
}

/** The result of an exec whose code failed host-side preparation (a TypeScript syntax error). */
function preparedFailure(id: string, message: string, stderrCap: number): ExecResult {
  const buf = Buffer.from(message, 'utf8');
  const cut = buf.length > stderrCap;
  return {
    id, outcome: 'exited', exitCode: 1, stdout: '', stderr: (cut ? buf.subarray(0, stderrCap) : buf).toString('utf8'),
    stdoutTruncated: false, stderrTruncated: cut, forkTimeMs: 0, execTimeMs: 0, totalTimeMs: 0,
  } as ExecResult;
}

/** Creates the engine and starts loading its templates; await engine.ready() before exec. */
export async function createEngine(opts: EngineOptions = {}): Promise<ForkboxEngine> {
  return new ForkboxEngine(opts);
}

export type { Engine, ExecRequest, ExecResult } from './types.js';
