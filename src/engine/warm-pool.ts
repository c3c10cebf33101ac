// warm-pool.ts — forks that have already answered one warm-up exec, so a
// request skips the first-touch page faults of a fresh fork (~7 ms here for
// print(1+1); a warmed fork answers in well under 1 ms). Each fork still
// serves exactly one user exec and is then destroyed. Each warm fork holds
// its worst-case share of the engine's memory budget (it goes to the exec
// that takes it); a fork that does not fit is not warmed, and an exec that
// needs room can evict an idle one (evictOne).
//
// Why this is as fresh as a cold fork: the runtime reseeds its CSPRNG and the
// runner reseeds random/numpy and sets the clock from every request, and the
// warm-up is fixed platform code with no output, never user code.
import { log } from '../lib/log.js';
import { FB_REQ_EXEC, FB_ST_DONE } from '../vmm/abi.js';
import type { Pool, Snapshot, Vm } from '../vmm/vmm.js';
import { VMM_OK } from './decode.js';
import type { Charge, MemoryBudget } from './budget.js';

export const WARMUP_CODE = "print(end='')";

export interface WarmPoolOptions {
  target: number;
  memLimit: number;
  outCap: number;
  errCap: number;
  /** Charged forkCost bytes per warm fork (none when absent). */
  budget?: MemoryBudget;
  forkCost?: number;
  /** The language's warm-up code (its module's warmupCode; default python's). */
  warmupCode?: string;
}

export interface WarmFork { vm: Vm; charge: Charge | null }

export class WarmPool {
  #ready: WarmFork[] = [];
  #starting = 0;
  #closed = false;
  #failures = 0;
  #stats = { warmed: 0, taken: 0, misses: 0, failures: 0, evicted: 0 };
  readonly #snap: Snapshot;
  readonly #pool: Pool | null;
  readonly #o: WarmPoolOptions;

  constructor(snap: Snapshot, pool: Pool | null, o: WarmPoolOptions) {
    this.#snap = snap;
    this.#pool = pool;
    this.#o = o;
    this.#refill();
  }

  get size(): number {
    return this.#ready.length;
  }

  stats(): { ready: number; target: number; warmed: number; taken: number; misses: number; failures: number; evicted: number } {
    return { ready: this.#ready.length, target: this.#o.target, ...this.#stats };
  }

  /** Closes the oldest idle warm fork and frees its budget share at once (an idle warm fork has
   *  written only its warm-up pages, a few MiB, and cannot run); false when none is idle. */
  evictOne(): boolean {
    const w = this.#ready.shift();
    if (!w) return false;
    w.vm.close();
    w.charge?.release();
    this.#stats.evicted++;
    return true;
  }

  /** A warmed fork for one exec (the caller closes it), or null when none is ready.
   *  Call replenish() once that exec is over: a warm-up queued now could land
   *  on the same worker, ahead of the exec it was meant to speed up. */
  take(): WarmFork | null {
    const w = this.#ready.pop() ?? null;
    if (w) this.#stats.taken++;
    else this.#stats.misses++;
    return w;
  }

  replenish(): void {
    this.#refill();
  }

  #refill(): void {
    // After repeated failures, stop warming: execs use fresh forks (logged once).
    if (this.#closed || this.#failures >= 3) return;
    while (this.#ready.length + this.#starting < this.#o.target) {
      // Warm forks never evict each other or take room that running execs need.
      const charge = this.#o.budget ? this.#o.budget.tryReserve(this.#o.forkCost ?? 0, false) : null;
      if (this.#o.budget && !charge) return;
      this.#starting++;
      this.#warmOne(charge).finally(() => { this.#starting--; });
    }
  }

  async #warmOne(charge: Charge | null): Promise<void> {
    let vm: Vm | null = null;
    try {
      const fr = this.#snap.forkRun({
        kind: FB_REQ_EXEC, payload: JSON.stringify({ code: this.#o.warmupCode ?? WARMUP_CODE, env: {}, stdin: '' }),
        outCap: this.#o.outCap, errCap: this.#o.errCap, memLimit: this.#o.memLimit, timeoutMs: 30_000,
      }, { pool: this.#pool, destroy: false });
      const r = await fr.done;
      vm = r.vm;
      const res = r.response;
      if (!vm || res.outcomeCode !== VMM_OK || res.status !== FB_ST_DONE || res.stdout.length || res.stderr.length)
        throw new Error(`warm-up exec failed: outcome ${res.outcome}, status ${res.status}, stderr ${res.stderr.toString('utf8').slice(0, 500)}`);
      if (this.#closed) {
        const c = charge;
        vm.close(() => c?.release());
        return;
      }
      this.#ready.push({ vm, charge });
      vm = null;
      charge = null;
      this.#stats.warmed++;
      this.#failures = 0;
    } catch (e) {
      const c = charge;
      if (vm) vm.close(() => c?.release());
      else c?.release();
      if (this.#closed) return;
      this.#failures++;
      this.#stats.failures++;
      log.warn('fork.warm_failed', { err: e as Error, failures: this.#failures, disabled: this.#failures >= 3 });
      if (this.#failures < 3) setTimeout(() => this.#refill(), 100 * this.#failures).unref();
    }
  }

  close(): void {
    this.#closed = true;
    for (const w of this.#ready.splice(0)) {
      w.vm.close();
      w.charge?.release();
    }
  }
}
