// warm-pool.ts — forks that have already answered one warm-up exec, so a
// request skips the first-touch page faults of a fresh fork (~7 ms here for
// print(1+1); a warmed fork answers in well under 1 ms). Each fork still
// serves exactly one user exec and is then destroyed.
//
// Why this is as fresh as a cold fork: the runtime reseeds its CSPRNG and the
// runner reseeds random/numpy and sets the clock from every request, and the
// warm-up is fixed platform code with no output, never user code.
import { log } from '../lib/log.js';
import { FB_REQ_EXEC, FB_ST_DONE } from '../vmm/abi.js';
import type { Pool, Snapshot, Vm } from '../vmm/vmm.js';
import { VMM_OK } from './decode.js';

export const WARMUP_CODE = "print(end='')";

export interface WarmPoolOptions {
  target: number;
  memLimit: number;
  outCap: number;
  errCap: number;
}

export class WarmPool {
  #ready: Vm[] = [];
  #starting = 0;
  #closed = false;
  #failures = 0;
  #stats = { warmed: 0, taken: 0, misses: 0, failures: 0 };
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

  stats(): { ready: number; target: number; warmed: number; taken: number; misses: number; failures: number } {
    return { ready: this.#ready.length, target: this.#o.target, ...this.#stats };
  }

  /** A warmed fork for one exec (the caller closes it), or null when none is ready.
   *  Call replenish() once that exec is over: a warm-up queued now could land
   *  on the same worker, ahead of the exec it was meant to speed up. */
  take(): Vm | null {
    const vm = this.#ready.pop() ?? null;
    if (vm) this.#stats.taken++;
    else this.#stats.misses++;
    return vm;
  }

  replenish(): void {
    this.#refill();
  }

  #refill(): void {
    // After repeated failures, stop warming: execs use fresh forks (logged once).
    if (this.#closed || this.#failures >= 3) return;
    while (this.#ready.length + this.#starting < this.#o.target) {
      this.#starting++;
      this.#warmOne().finally(() => { this.#starting--; });
    }
  }

  async #warmOne(): Promise<void> {
    let vm: Vm | null = null;
    try {
      const fr = this.#snap.forkRun({
        kind: FB_REQ_EXEC, payload: JSON.stringify({ code: WARMUP_CODE, env: {}, stdin: '' }),
        outCap: this.#o.outCap, errCap: this.#o.errCap, memLimit: this.#o.memLimit, timeoutMs: 30_000,
      }, { pool: this.#pool, destroy: false });
      const r = await fr.done;
      vm = r.vm;
      const res = r.response;
      if (!vm || res.outcomeCode !== VMM_OK || res.status !== FB_ST_DONE || res.stdout.length || res.stderr.length)
        throw new Error(`warm-up exec failed: outcome ${res.outcome}, status ${res.status}, stderr ${res.stderr.toString('utf8').slice(0, 500)}`);
      if (this.#closed) {
        vm.close();
        return;
      }
      this.#ready.push(vm);
      vm = null;
      this.#stats.warmed++;
      this.#failures = 0;
    } catch (e) {
      vm?.close();
      if (this.#closed) return;
      this.#failures++;
      this.#stats.failures++;
      log.warn('fork.warm_failed', { err: e as Error, failures: this.#failures, disabled: this.#failures >= 3 });
      if (this.#failures < 3) setTimeout(() => this.#refill(), 100 * this.#failures).unref();
    }
  }

  close(): void {
    this.#closed = true;
    for (const vm of this.#ready.splice(0)) vm.close();
  }
}
