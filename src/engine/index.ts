// index.ts — the engine: loads (building if needed) the language templates,
// keeps a pool of pre-created VM shells warm, and runs each exec in a fresh
// copy-on-write fork that is destroyed afterwards, or, when it answered
// cleanly, recycled: reset in place to a fresh fork's state (recycle.ts). The HTTP server and the
// CLI use only createEngine() and the Engine interface of types.ts. Every
// live fork (running, warm or kept by a Sandbox) is charged its worst case,
// RAM slot + mailbox, to one memory budget (budget.ts).
import { availableParallelism } from 'node:os';
import { log } from '../lib/log.js';
import { ForkboxError, asForkboxError, invalidRequest, kvmUnavailable, notFound, shuttingDown, templateNotReady } from '../lib/errors.js';
import { FB_REQ_EXEC } from '../vmm/abi.js';
import { isCall, serveProcesses, type GroupHost, type GroupVm } from './processes.js';
import { Pool, Shm, Snapshot, probe, setWorkers, workersConfigured, type Response, type RunRequest, type Vm } from '../vmm/vmm.js';
import { WarmPool, type WarmFork } from './warm-pool.js';
import { recyclable, recycleDefault } from './recycle.js';
import { MemoryBudget, defaultBudgetMb, type Charge } from './budget.js';
import { FB_MAILBOX_SIZE } from '../vmm/abi.js';
import { DEFAULT_RAM_MB, buildTemplate, listTemplates, type PinnedPackage, type TemplateInfo } from '../template/build.js';
import { crashForLog, decodeResponse, encodePayload, newExecId, validateExec, vmmCap, VMM_TIMEOUT } from './decode.js';
import { SESSION_LIMITS, SessionRegistry, type SessionLimits } from './sessions.js';
import { SessionStore } from './session-store.js';
import type { SessionHost } from './session.js';
import type { FileInfo, SessionCreate, SessionEngine, SessionExecRequest, SessionExecResult, SessionInfo } from './session-types.js';
import { cacheDir, trustedCacheDir } from '../lib/paths.js';
import { join } from 'node:path';
import type { Engine, EngineHealth, ExecRequest, ExecResult, Language } from './types.js';
import { languageModule, templateOf } from '../languages/index.js';
import { SHIPPED_TEMPLATES } from '../template/shipped.js';
import type { TemplateRecipe } from '../template/recipe.js';

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
  /** Processes one exec or session exec may run at once, the first included (default 64; 1 = no fork: EAGAIN).
   *  Each is a VM charged to the memory budget like a fork (docs/processes.md). */
  maxProcesses?: number;
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
  /** Templates to load by name: 'all' (every shipped template and every user template built in the cache;
   *  the server) or a list of names (default ['python']). */
  templates?: 'all' | readonly string[];
  /** Warm forks per template name, overriding the recipe's warmForks (default: warmForks for python, 1 for others). */
  templateWarmForks?: Record<string, number>;
}

export const DEFAULT_CAP = 1024 * 1024;
/** Processes one exec (or session exec) may run at once, the first included: a fork past it gets EAGAIN. */
export const MAX_PROCESSES = 64;

interface Loaded { info: TemplateInfo; snapshot: Snapshot; warm: WarmPool | null; forkCost: number; pool: Pool | null;
  /** Arena bytes an exec may use: the engine's limit plus what the template's RAM adds beyond its base's default. */
  memLimit: number }
interface Slot { recipe: TemplateRecipe; loaded?: Loaded; building: boolean; error?: ForkboxError; pinned?: PinnedPackage[] }

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
  readonly opts: Required<Omit<EngineOptions, 'onProgress' | 'sessions' | 'sessionDir' | 'templates' | 'templateWarmForks'>>
    & Pick<EngineOptions, 'onProgress' | 'templateWarmForks'>;
  readonly sessionLimits: SessionLimits;
  #sessions: SessionRegistry;
  /** By template name (python, python-data, a user's recipe name). */
  #templates = new Map<string, Slot>();
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
      maxProcesses: opts.maxProcesses ?? MAX_PROCESSES,
      logOutput: opts.logOutput ?? false,
      onProgress: opts.onProgress,
      ...(opts.templateWarmForks ? { templateWarmForks: opts.templateWarmForks } : {}),
    };
    if (this.opts.memLimitMb > this.opts.ramSizeMb) throw new RangeError('memLimitMb must not exceed ramSizeMb');
    if (!Number.isSafeInteger(this.opts.maxProcesses) || this.opts.maxProcesses < 1) throw new RangeError('maxProcesses must be a positive integer');
    this.sessionLimits = { ...SESSION_LIMITS, ...(opts.sessions ?? {}) };
    const dir = opts.sessionDir === undefined ? join(cacheDir(), 'sessions') : opts.sessionDir;
    this.#sessions = new SessionRegistry(this.#sessionHost(), this.sessionLimits, dir ? new SessionStore(dir) : null,
      (lang, template) => this.#template(lang, template).info.key);
    const wanted = opts.templates === 'all' ? undefined : opts.templates ?? ['python'];
    for (const t of SHIPPED_TEMPLATES) if (!wanted || wanted.includes(t.name)) this.#templates.set(t.name, { recipe: t, building: true });
    this.#explicitRam = opts.ramSizeMb !== undefined;
    this.#ready = this.#addUserTemplates(wanted)
      .then(() => Promise.all([...this.#templates.keys()].map((n) => this.#load(n))))
      .then(() => this.#sessions.start());
    this.#ready.catch(() => {}); // reported through ready()/health()/exec()
  }

  /** User templates (built from recipe files by `forkbox template build`) found in the cache, by name. */
  async #addUserTemplates(wanted: readonly string[] | undefined): Promise<void> {
    const missing = wanted?.filter((n) => !this.#templates.has(n));
    if (wanted && !missing?.length) return;
    // The recipes come from the cache's manifests: only from a trusted cache (each is verified again when loaded).
    const root = (() => { try { return join(trustedCacheDir(), 'templates'); } catch { return undefined; } })();
    for (const t of root ? await listTemplates(root, { verify: false }).catch(() => [] as TemplateInfo[]) : []) {
      const r = t.manifest.recipe;
      if (!r || r.shipped || this.#templates.has(r.name) || r.name !== t.name || (missing && !missing.includes(r.name))) continue;
      // Rebuilt (a changed runtime, say) with the package versions it was first built with.
      this.#templates.set(r.name, { recipe: r, building: true, ...(t.manifest.pinned ? { pinned: t.manifest.pinned } : {}) });
    }
    for (const n of missing ?? []) {
      if (!this.#templates.has(n))
        this.#templates.set(n, { recipe: { name: n, base: 'python', packages: [], exclude: [], preload: [], files: [], env: {}, shipped: false },
          building: false, error: templateNotReady(`no template "${n}" in the cache (build it: forkbox template build RECIPE-FILE)`) });
    }
  }

  async #load(name: string): Promise<void> {
    const slot = this.#templates.get(name)!;
    if (slot.error) return;
    const lang = name;
    const recipe = slot.recipe;
    try {
      const p = probe();
      if (!p.available) throw kvmUnavailable(`KVM is not available: ${p.reason}`);
      if (!workersConfigured()) setWorkers(this.opts.workers);
      let info: TemplateInfo | undefined;
      if (this.opts.buildIfMissing) {
        // The recipe's (or its base module's) own RAM (node's idle arena is larger) unless the caller fixed one.
        const mod = languageModule(recipe.base)!;
        const ramSizeMb = this.#explicitRam ? this.opts.ramSizeMb : Math.max(this.opts.ramSizeMb, recipe.ramMb ?? mod.ramMb);
        info = await buildTemplate(recipe, { force: this.opts.forceBuild && recipe.shipped, ramSizeMb,
          ...(slot.pinned ? { pinned: slot.pinned } : {}),
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
      // A template whose preloads idle in a larger heap (python-data) gets a larger RAM; what it adds beyond its
      // base's default RAM is added to the memory limit, so programs keep the room they have in the base.
      const extraMb = Math.max(0, snapshot.ramSize / 1048576 - Math.max(this.opts.ramSizeMb, languageModule(recipe.base)!.ramMb));
      const memLimit = (this.opts.memLimitMb + extraMb) * 1024 * 1024;
      const warmForks = this.opts.templateWarmForks?.[name] ?? recipe.warmForks
        ?? (name === 'python' ? this.opts.warmForks : Math.min(1, this.opts.warmForks));
      // Recycled forks join the warm forks, up to one per worker beyond the target.
      const warm = warmForks > 0 || this.opts.recycle
        ? new WarmPool(snapshot, pool, { target: warmForks, memLimit,
          outCap: this.opts.stdoutCap, errCap: this.opts.stderrCap, budget: this.budget, forkCost,
          recycleMax: this.opts.recycle ? Math.max(4, this.opts.workers) : 0,
          warmupCode: languageModule(recipe.base)!.warmupCode })
        : null;
      slot.loaded = { info, snapshot, warm, forkCost, pool, memLimit };
      log.info('template.loaded', { template: name, base: recipe.base, key: info.key, built: info.built, warmForks });
    } catch (e) {
      slot.error = e instanceof ForkboxError ? e
        : new ForkboxError('TemplateBuildFailed', 500, `loading the ${name} template failed: ${(e as Error).message}`, { cause: e });
      log.error('template.failed', { template: name, err: slot.error });
      throw slot.error;
    } finally {
      slot.building = false;
    }
  }

  ready(): Promise<void> {
    return this.#ready;
  }

  /**
   * The template an exec of `lang` runs in: `template` by name (its base must
   * be the language's), else the language's own. Unknown → 404 listing them.
   */
  #slot(lang: Language, template?: string): Slot & { name: string } {
    const m = languageModule(lang);
    const name = template ?? (m ? templateOf(m) : lang);
    const slot = this.#templates.get(name);
    if (!slot) throw notFound(`unknown template "${name}" (this server has: ${[...this.#templates.keys()].join(', ')})`);
    if (m && template !== undefined && slot.recipe.base !== templateOf(m))
      throw invalidRequest(`template "${name}" runs ${slot.recipe.base}, not ${lang}`);
    return Object.assign(slot, { name });
  }

  #template(lang: Language, template?: string): Loaded {
    const slot = this.#slot(lang, template);
    if (slot.loaded) return slot.loaded;
    if (slot.error) throw slot.error;
    throw templateNotReady(`the ${slot.name} template is still being prepared`);
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

  /** What a process group of an exec in template `t` needs: its root to derive against, budget shares, shared memory. */
  #groupHost(t: Loaded): GroupHost {
    return {
      root: t.snapshot as unknown as GroupHost['root'],
      pool: t.pool,
      charge: () => this.budget.reserve(t.forkCost, 'a process'),
      createShm: (size) => Shm.create(size),
      maxProcesses: this.opts.maxProcesses,
      memLimit: t.memLimit,
      note: (event, fields) => log.info(event, fields),
    };
  }

  #sessionHost(): SessionHost {
    const engine = this;
    return {
      template: (lang: Language, template?: string) => {
        if (engine.#closing) throw shuttingDown();
        const t = engine.#template(lang, template);
        const module = languageModule(lang);
        if (!module) throw templateNotReady(`no language module for ${lang}`);
        return { snapshot: t.snapshot, forkCost: t.forkCost, key: t.info.key, module, memLimit: t.memLimit };
      },
      pool: (lang: Language, template?: string) => engine.#template(lang, template).pool,
      processes: (lang: Language, template?: string) => engine.#groupHost(engine.#template(lang, template)),
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
    const t = this.#template(req.language, req.template);
    const payload = encodePayload(req);
    const id = newExecId();
    const t0 = performance.now();
    const runReq = {
      kind: FB_REQ_EXEC, payload, outCap: vmmCap(v.stdoutCap), errCap: vmmCap(v.stderrCap),
      memLimit: t.memLimit, timeoutMs: v.timeoutMs,
    };
    const deadlineAt = Date.now() + v.timeoutMs;
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
    let cancelGroup: (() => void) | null = null;
    const onAbort = (): void => { cancelled = true; fr.kick(); cancelGroup?.(); };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    this.#liveForks++;
    this.#inFlight.set(id, { cancel: onAbort, done: fr.done.catch(() => {}) });
    try {
      const out = await fr.done;
      let processes = 0;
      if (isCall(out.response)) {
        // The program called the host (a fork, say): the exec is a process group now.
        if (!out.vm) throw new ForkboxError('Internal', 500, 'a fork that called the host was torn down');
        const g = await serveProcesses(out.vm as unknown as GroupVm, out.response, this.#groupHost(t),
          { deadline: deadlineAt, outCap: v.stdoutCap, errCap: v.stderrCap }, (c) => { cancelGroup = c; if (cancelled) c(); });
        out.response = g.response;
        processes = g.processes;
      }
      const totalMs = performance.now() - t0;
      const forkMs = out.forkNs / 1e6;
      const execMs = out.runNs / 1e6;
      log.debug('fork.created', { id, template: t.info.name, forkMs, warm: !!warm, recycled: !!warm?.recycled });
      let res: ExecResult | undefined;
      try {
        res = decodeResponse(id, out.response, { forkMs, execMs, totalMs }, { timeoutSeconds: req.timeoutSeconds, cancelled,
          stdoutCap: v.stdoutCap, stderrCap: v.stderrCap });
      } finally {
        // A clean answer: the fork is reset and kept with its budget share; anything else ends it.
        if (out.vm && t.warm && !this.#closing && res && !processes && recyclable(out.response, res.exitCode, cancelled)) {
          t.warm.recycle(out.vm, charge);
          charge = null;
        } else {
          out.vm?.close();
        }
      }
      const fields = { id, exitCode: res.exitCode, forkMs: res.forkTimeMs, execMs: res.execTimeMs, totalMs: res.totalTimeMs,
        stdoutBytes: out.response.stdout.length, stderrBytes: out.response.stderr.length, exits: out.response.exits, warm: !!warm, recycled: !!warm?.recycled,
        ...(processes ? { processes } : {}) };
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
    for (const [name, s] of this.#templates) {
      templates[name] = { ready: !!s.loaded, base: s.recipe.base, ...(s.building ? { building: true } : {}),
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

  /** Warm-fork pool counters of a template, by name or by language (null when warming is off). */
  warmStats(nameOrLang: string = 'python'): ReturnType<WarmPool['stats']> | null {
    return this.#byName(nameOrLang)?.loaded?.warm?.stats() ?? null;
  }

  /** The loaded template, by name or by language (for benchmarks and the CLI). */
  templateInfo(nameOrLang: string = 'python'): TemplateInfo | undefined {
    return this.#byName(nameOrLang)?.loaded?.info;
  }

  /** Names of the templates this engine serves. */
  templateNames(): string[] {
    return [...this.#templates.keys()];
  }

  #byName(nameOrLang: string): Slot | undefined {
    const m = languageModule(nameOrLang);
    return this.#templates.get(nameOrLang) ?? (m ? this.#templates.get(templateOf(m)) : undefined);
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
