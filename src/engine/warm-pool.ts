// warm-pool.ts — forks that have already answered one warm-up exec, so a
// request skips the first-touch page faults of a fresh fork (~7 ms here for
// print(1+1); a warmed fork answers in well under 1 ms). Each fork serves one
// user exec and is then destroyed or recycled (below). Each warm fork holds
// its worst-case share of the engine's memory budget (it goes to the exec
// that takes it); a fork that does not fit is not warmed, and an exec that
// needs room can evict an idle one (evictOne).
//
// Why this is as fresh as a cold fork: the runtime reseeds its CSPRNG and the
// runner reseeds random/numpy and sets the clock from every request, and the
// warm-up is fixed platform code with no output, never user code.
//
// Recycled forks (recycle()): a one-shot fork whose exec answered cleanly is
// reset in place by the VMM (every page it wrote gets the template's bytes
// back, mailbox zeroed, vCPU state restored: docs/security.md, "Recycled
// forks") and joins the ready list, up to `recycleMax` beyond the target. It
// keeps its budget share like a warm fork. A failed recycle destroys the fork.
import { log } from '../lib/log.js';
import { FB_REQ_EXEC, FB_ST_DONE } from '../vmm/abi.js';
import type { Pool, Snapshot, Vm } from '../vmm/vmm.js';
import { VMM_OK } from './decode.js';
import type { Charge, MemoryBudget } from './budget.js';

export const WARMUP_CODE = "print(end='')";
/** Longest an exec waits for a recycle under way before it forks fresh (a fresh fork's first exec costs ~10 ms). */
export const RECYCLE_WAIT_MS = 4;

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
  /** Recycled forks kept beyond `target` (default 0: none beyond it). */
  recycleMax?: number;
}

export interface WarmFork { vm: Vm; charge: Charge | null; recycled?: boolean }

/** Totals over the recycles of a pool (pages: private RAM pages reset per recycle). */
export interface RecycleTotals { recycled: number; recycleFailed: number; recycleDropped: number; ramPages: number; mailboxPages: number; resetNs: number }

export class WarmPool {
  #ready: WarmFork[] = [];
  #starting = 0;
  #recycling = 0;
  #waiters: Array<(w: WarmFork | null) => void> = [];
  #closed = false;
  #failures = 0;
  #stats = { warmed: 0, taken: 0, misses: 0, failures: 0, evicted: 0 };
  #rec: RecycleTotals = { recycled: 0, recycleFailed: 0, recycleDropped: 0, ramPages: 0, mailboxPages: 0, resetNs: 0 };
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

  stats(): { ready: number; target: number; warmed: number; taken: number; misses: number; failures: number; evicted: number } & RecycleTotals {
    return { ready: this.#ready.length, target: this.#o.target, ...this.#stats, ...this.#rec };
  }

  /**
   * Resets a one-shot fork that answered cleanly (recyclable()) on its worker and keeps it
   * for the next exec; `charge` (its budget share) goes with it. When the pool is closed or
   * full, or the reset fails, the fork is destroyed and the charge released. Never throws.
   */
  recycle(vm: Vm, charge: Charge | null): void {
    const room = this.#o.target + (this.#o.recycleMax ?? 0);
    if (this.#closed || this.#ready.length + this.#recycling >= room) {
      vm.close();
      charge?.release();
      this.#rec.recycleDropped++;
      return;
    }
    this.#recycling++;
    vm.recycle().then((st) => {
      this.#recycling--;
      if (this.#closed || this.#ready.length >= room) {
        vm.close();
        charge?.release();
        this.#rec.recycleDropped++;
        this.#release();
        return;
      }
      this.#rec.recycled++;
      this.#rec.ramPages += st.ramPages;
      this.#rec.mailboxPages += st.mailboxPages;
      this.#rec.resetNs += st.ns;
      this.#hand({ vm, charge, recycled: true });
    }, (e: unknown) => {
      this.#recycling--;
      this.#rec.recycleFailed++;
      vm.close();
      charge?.release();
      this.#release();
      log.warn('fork.recycle_failed', { err: e as Error });
    });
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

  /** Like take(), but when none is ready and a recycle is under way that no other exec waits
   *  for, waits for that fork (its reset, ≈ 0.3 ms, is well under a fresh fork's first-touch
   *  cost) — at most RECYCLE_WAIT_MS: the reset may be queued behind a long run on its worker. */
  acquire(): Promise<WarmFork | null> {
    if (this.#ready.length || this.#closed || this.#waiters.length >= this.#recycling) return Promise.resolve(this.take());
    return new Promise((resolve) => {
      const waiter = (w: WarmFork | null): void => { clearTimeout(timer); resolve(w); };
      const timer = setTimeout(() => {
        const i = this.#waiters.indexOf(waiter);
        if (i >= 0) this.#waiters.splice(i, 1);
        this.#stats.misses++;
        resolve(null);
      }, RECYCLE_WAIT_MS);
      this.#waiters.push(waiter);
    });
  }

  /** A recycled fork goes to the first waiting exec, else to the ready list. */
  #hand(w: WarmFork): void {
    const waiter = this.#waiters.shift();
    if (waiter) { this.#stats.taken++; waiter(w); } else this.#ready.push(w);
  }

  /** A recycle that ended without a fork: the exec waiting longest forks fresh. */
  #release(): void {
    const waiter = this.#waiters.shift();
    if (waiter) { this.#stats.misses++; waiter(null); }
  }

  replenish(): void {
    this.#refill();
  }

  #refill(): void {
    // After repeated failures, stop warming: execs use fresh forks (logged once).
    if (this.#closed || this.#failures >= 3) return;
    while (this.#ready.length + this.#starting + this.#recycling < this.#o.target) {
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
    for (const w of this.#waiters.splice(0)) w(null);
    for (const w of this.#ready.splice(0)) {
      w.vm.close();
      w.charge?.release();
    }
  }
}
