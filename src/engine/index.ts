// index.ts — the engine: loads (building if needed) the language templates,
// keeps a pool of pre-created VM shells warm, and runs each exec in a fresh
// copy-on-write fork that is destroyed afterwards. The HTTP server and the
// CLI use only createEngine() and the Engine interface of types.ts. Every
// live fork (running, warm or kept by a Sandbox) is charged its worst case,
// RAM slot + mailbox, to one memory budget (budget.ts).
import { availableParallelism } from 'node:os';
import { log } from '../lib/log.js';
import { ForkboxError, asForkboxError, kvmUnavailable, shuttingDown, templateNotReady } from '../lib/errors.js';
import { FB_REQ_EXEC } from '../vmm/abi.js';
import { Pool, Snapshot, probe, setWorkers, workersConfigured, type Response, type RunRequest, type Vm } from '../vmm/vmm.js';
import { WarmPool, type WarmFork } from './warm-pool.js';
import { MemoryBudget, defaultBudgetMb, type Charge } from './budget.js';
import { FB_MAILBOX_SIZE } from '../vmm/abi.js';
import { DEFAULT_RAM_MB, buildTemplate, listTemplates, type TemplateInfo } from '../template/build.js';
import { decodeResponse, encodePayload, newExecId, validateExec, vmmCap, VMM_TIMEOUT } from './decode.js';
import { Sandbox } from './sandbox.js';
import { SESSION_LIMITS, SessionRegistry, type SessionLimits } from './sessions.js';
import { SessionStore } from './session-store.js';
import type { SessionHost } from './session.js';
import type { FileInfo, SessionCreate, SessionEngine, SessionExecRequest, SessionExecResult, SessionInfo } from './session-types.js';
import { languageModule } from '../languages/index.js';
import { cacheDir } from '../lib/paths.js';
import { join } from 'node:path';
import type { Engine, EngineHealth, ExecRequest, ExecResult, Language } from './types.js';

export { Sandbox } from './sandbox.js';

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
  /** Host memory all live forks together may use, MiB (default FORKBOX_MEM_BUDGET_MB, else 75% of RAM).
   *  Each live fork is charged RAM + mailbox (what a hostile program can write); an exec or sandbox
   *  that does not fit is refused with MemoryBudgetExceeded (503). */
  memBudgetMb?: number;
  /** Rebuild the template even when cached. */
  forceBuild?: boolean;
  /** Session caps, lifetimes and quota (defaults: SESSION_LIMITS). */
  sessions?: Partial<SessionLimits>;
  /** Where paused sessions are kept (default: the cache's sessions/ directory); null keeps none. */
  sessionDir?: string | null;
  /** Progress lines of a template build. */
  onProgress?: (line: string) => void;
}

export const DEFAULT_CAP = 1024 * 1024;

interface Loaded { info: TemplateInfo; snapshot: Snapshot; warm: WarmPool | null; forkCost: number }

/** Runs one exec in an already-warmed fork and destroys the fork afterwards. */
function runWarm({ vm }: WarmFork, req: RunRequest): { done: Promise<{ response: Response; forkNs: number; runNs: number }>; kick: () => void } {
  const done = vm.run(req).then((response) => ({ response, forkNs: 0, runNs: response.runNs })).finally(() => vm.close());
  return { done, kick: () => vm.kick() };
}

export class ForkboxEngine implements Engine, SessionEngine {
  readonly opts: Required<Omit<EngineOptions, 'onProgress' | 'sessions' | 'sessionDir'>> & Pick<EngineOptions, 'onProgress'>;
  readonly sessionLimits: SessionLimits;
  #sessions: SessionRegistry;
  #templates = new Map<Language, { loaded?: Loaded; building: boolean; error?: ForkboxError }>();
  #pool: Pool | null = null;
  #ready: Promise<void>;
  #closing = false;
  #inFlight = new Map<string, { cancel: () => void; done: Promise<unknown> }>();
  #liveForks = 0;
  #sandboxes = new Set<Sandbox>();
  readonly budget: MemoryBudget;

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
      memBudgetMb,
      onProgress: opts.onProgress,
    };
    if (this.opts.memLimitMb > this.opts.ramSizeMb) throw new RangeError('memLimitMb must not exceed ramSizeMb');
    this.sessionLimits = { ...SESSION_LIMITS, ...(opts.sessions ?? {}) };
    const dir = opts.sessionDir === undefined ? join(cacheDir(), 'sessions') : opts.sessionDir;
    this.#sessions = new SessionRegistry(this.#sessionHost(), this.sessionLimits, dir ? new SessionStore(dir) : null,
      (lang) => this.#template(lang).info.key);
    this.#templates.set('python', { building: true });
    this.#ready = this.#load('python').then(() => this.#sessions.start());
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
        info = await buildTemplate(lang, { force: this.opts.forceBuild, ramSizeMb: this.opts.ramSizeMb,
          ...(this.opts.onProgress ? { onProgress: this.opts.onProgress } : {}) });
      } else {
        info = (await listTemplates()).find((t) => t.name === lang);
        if (!info) throw templateNotReady(`no ${lang} template in the cache (run: forkbox template build ${lang})`);
      }
      const snapshot = new Snapshot(info.memPath, info.statePath);
      if (!this.#pool) {
        this.#pool = new Pool(this.opts.poolSize, snapshot.ramSize);
        this.#pool.bind(snapshot);
      }
      // What one fork can make the host hold: every page of its RAM slot and of its mailbox.
      const forkCost = snapshot.ramSize + FB_MAILBOX_SIZE;
      if (forkCost > this.budget.limit)
        log.warn('memory.budget_too_small', { budgetMb: this.opts.memBudgetMb, forkCostMb: forkCost / 1048576 });
      const warm = this.opts.warmForks > 0
        ? new WarmPool(snapshot, this.#pool, { target: this.opts.warmForks, memLimit: this.opts.memLimitMb * 1024 * 1024,
          outCap: this.opts.stdoutCap, errCap: this.opts.stderrCap, budget: this.budget, forkCost })
        : null;
      slot.loaded = { info, snapshot, warm, forkCost };
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
    const slot = this.#templates.get(lang);
    if (slot?.loaded) return slot.loaded;
    if (slot?.error) throw slot.error;
    throw templateNotReady(`the ${lang} template is still being prepared`);
  }

  /** A sandbox: one fork that can run several execs, until close(). */
  async sandbox(lang: Language = 'python'): Promise<Sandbox> {
    if (this.#closing) throw shuttingDown();
    const t = this.#template(lang);
    // A kept fork can run code at any time: it holds its worst case until closed.
    const charge = this.budget.reserve(t.forkCost, 'a sandbox');
    let vm: Vm;
    try {
      vm = await t.snapshot.fork(this.#pool);
    } catch (e) {
      charge.release();
      throw e;
    }
    this.#liveForks++;
    log.debug('fork.created', { template: lang, sandbox: true });
    const mem = {
      beforeRun: (): void => charge.grow(t.forkCost, 'a sandbox exec'),
      // Idle, the fork cannot write: charge what it holds (measured), never more than its worst case.
      idle: (v: Vm): void => {
        try {
          charge.shrink(Math.min(t.forkCost, v.privateBytes()));
        } catch (e) {
          log.warn('memory.measure_failed', { err: e as Error });   // keeps the worst case
        }
      },
    };
    const sb: Sandbox = new Sandbox(vm, this.#execDefaults(), () => { this.#liveForks--; this.#sandboxes.delete(sb); },
      () => charge.release(), mem);
    this.#sandboxes.add(sb);
    return sb;
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
      pool: () => engine.#pool,
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
    const payload = encodePayload(req);
    const t = this.#template(req.language);
    const id = newExecId();
    const t0 = performance.now();
    const runReq = {
      kind: FB_REQ_EXEC, payload, outCap: vmmCap(v.stdoutCap), errCap: vmmCap(v.stderrCap),
      memLimit: this.opts.memLimitMb * 1024 * 1024, timeoutMs: v.timeoutMs,
    };
    const warm = t.warm?.take() ?? null;
    let charge: Charge | null = warm?.charge ?? null;
    let fr: ReturnType<typeof runWarm>;
    try {
      if (!warm) charge = this.budget.reserve(t.forkCost, 'an exec');
      fr = warm ? runWarm(warm, runReq) : t.snapshot.forkRun(runReq, { pool: this.#pool, destroy: true });
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
      log.debug('fork.created', { id, template: req.language, forkMs, warm: !!warm });
      const res = decodeResponse(id, out.response, { forkMs, execMs, totalMs }, { timeoutSeconds: req.timeoutSeconds, cancelled,
        stdoutCap: v.stdoutCap, stderrCap: v.stderrCap });
      const fields = { id, exitCode: res.exitCode, forkMs: res.forkTimeMs, execMs: res.execTimeMs, totalMs: res.totalTimeMs,
        stdoutBytes: out.response.stdout.length, stderrBytes: out.response.stderr.length, exits: out.response.exits, warm: !!warm };
      if (res.outcome === 'timeout' || out.response.outcomeCode === VMM_TIMEOUT) log.info('exec.timeout', fields);
      else if (res.outcome === 'crashed') log.warn('exec.crashed', { ...fields, crash: res.crash });
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
    return { ready, templates, pool, liveForks: this.#liveForks, inFlight: this.#inFlight.size, sessions: this.#sessions.size };
  }

  /** The memory budget: limit, bytes charged to live forks, live charges, refusals. */
  memoryStats(): ReturnType<MemoryBudget['stats']> {
    return this.budget.stats();
  }

  /** Warm-fork pool counters of a language (null when warming is off). */
  warmStats(lang: Language = 'python'): ReturnType<WarmPool['stats']> | null {
    return this.#templates.get(lang)?.loaded?.warm?.stats() ?? null;
  }

  /** The loaded template of a language (for benchmarks and the CLI). */
  templateInfo(lang: Language = 'python'): TemplateInfo | undefined {
    return this.#templates.get(lang)?.loaded?.info;
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
    for (const sb of [...this.#sandboxes]) sb.close();
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

/** Creates the engine and starts loading its templates; await engine.ready() before exec. */
export async function createEngine(opts: EngineOptions = {}): Promise<ForkboxEngine> {
  return new ForkboxEngine(opts);
}

export type { Engine, ExecRequest, ExecResult } from './types.js';
