// admission.ts — who may run now. At most `maxConcurrency` executions run at
// once, and one key (API key, or client address with auth off) at most
// `maxRunningPerKey` of them. A request first reserves its executions (a batch
// reserves every item) against the key's cap of running + `maxQueuedPerKey`
// waiting (429 beyond it); each execution then waits for a slot for at most
// `queueTimeoutMs` (503 + Retry-After past it, or when `maxQueue` waiters
// already wait). A freed slot goes to the waiter whose key runs the fewest
// executions (FIFO among equals), so a flooding key cannot starve the others.
// close() rejects every waiter with ShuttingDown. Releases are idempotent.
import { ForkboxError, overloaded, shuttingDown } from '../lib/errors.js';

export type Release = () => void;

/** `reserved`: executions reserved and not running yet (waiting for a slot included). */
interface KeyState { running: number; reserved: number }
interface Waiter { key: string; held: boolean; resolve: (r: Release) => void; reject: (e: unknown) => void; cleanup: () => void }

/** A key's reservation of `n` executions; each acquire() uses one, cancel() returns the rest. */
export interface Ticket {
  acquire(signal?: AbortSignal): Promise<Release>;
  cancel(): void;
}

export class Admission {
  private running = 0;
  private readonly queue: Waiter[] = [];
  private readonly keys = new Map<string, KeyState>();
  private closed = false;
  readonly maxRunningPerKey: number;

  constructor(
    readonly maxConcurrency: number,
    readonly maxQueue: number,
    readonly queueTimeoutMs: number,
    maxRunningPerKey = 0,
    readonly maxQueuedPerKey = Infinity,
  ) {
    this.maxRunningPerKey = maxRunningPerKey > 0 ? maxRunningPerKey : Math.max(1, maxConcurrency - 1);
  }

  get inFlight(): number { return this.running; }
  get queued(): number { return this.queue.length; }
  /** Executions of one key: running, and reserved but not yet running. */
  keyState(key: string): { running: number; reserved: number } {
    const k = this.keys.get(key);
    return { running: k?.running ?? 0, reserved: k?.reserved ?? 0 };
  }

  /**
   * Reserves `n` executions for `key`, or throws 429 RateLimited when the key
   * would hold more than its running cap plus its queue cap.
   */
  reserve(key: string, n: number): Ticket {
    if (this.closed) throw shuttingDown();
    const k = this.state(key);
    const cap = this.maxRunningPerKey + this.maxQueuedPerKey;
    if (k.running + k.reserved + n > cap) {
      this.gc(key, k);
      throw new ForkboxError('RateLimited', 429,
        `this key already has ${k.running} executions running and ${k.reserved} waiting; ` +
        `at most ${this.maxRunningPerKey} run and ${this.maxQueuedPerKey} wait per key (a batch counts each item)`,
        { retryAfter: this.retryAfter() });
    }
    k.reserved += n;
    let left = n;
    return {
      acquire: (signal) => {
        if (left <= 0) return Promise.reject(new Error('ticket used up'));
        left--;
        return this.wait(key, signal, true);
      },
      cancel: () => {
        k.reserved -= left;
        left = 0;
        this.gc(key, k);
      },
    };
  }

  /** Waits for a slot for `key` (use reserve() first so the key's queue cap applies). */
  acquire(key: string, signal?: AbortSignal): Promise<Release> {
    return this.wait(key, signal, false);
  }

  /** `held`: the execution is counted in the key's `reserved` until it runs or gives up. */
  private wait(key: string, signal: AbortSignal | undefined, held: boolean): Promise<Release> {
    const k = this.state(key);
    const fail = (e: unknown): Promise<Release> => {
      if (held) k.reserved--;
      this.gc(key, k);
      return Promise.reject(e);
    };
    if (this.closed) return fail(shuttingDown());
    if (signal?.aborted) return fail(signal.reason ?? new Error('aborted'));
    if (this.running < this.maxConcurrency && k.running < this.maxRunningPerKey) {
      return Promise.resolve(this.grant(key, k, held));
    }
    if (this.queue.length >= this.maxQueue) return fail(overloaded(this.retryAfter()));
    return new Promise<Release>((resolve, reject) => {
      const giveUp = (e: unknown): void => {
        this.remove(w);
        fail(e).catch(reject);
      };
      const timer = setTimeout(() => giveUp(overloaded(this.retryAfter())), this.queueTimeoutMs);
      const onAbort = (): void => giveUp(signal?.reason ?? new Error('aborted'));
      const w: Waiter = {
        key, held, resolve, reject,
        cleanup: () => { clearTimeout(timer); signal?.removeEventListener('abort', onAbort); },
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.queue.push(w);
    });
  }

  /** Rejects every waiter; later acquire() calls fail with ShuttingDown. */
  close(): void {
    this.closed = true;
    for (const w of this.queue.splice(0)) {
      w.cleanup();
      const k = this.state(w.key);
      if (w.held) k.reserved--;
      this.gc(w.key, k);
      w.reject(shuttingDown());
    }
  }

  private state(key: string): KeyState {
    let k = this.keys.get(key);
    if (!k) {
      k = { running: 0, reserved: 0 };
      this.keys.set(key, k);
    }
    return k;
  }

  private gc(key: string, k: KeyState): void {
    if (k.running === 0 && k.reserved === 0 && !this.queue.some((w) => w.key === key)) this.keys.delete(key);
  }

  /** A hint for clients: seconds until a slot is likely, at least 1. */
  private retryAfter(): number {
    return Math.max(1, Math.min(30, Math.ceil((this.queue.length + 1) / Math.max(1, this.maxConcurrency))));
  }

  private remove(w: Waiter): void {
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
    w.cleanup();
  }

  private grant(key: string, k: KeyState, held: boolean): Release {
    this.running++;
    k.running++;
    if (held) k.reserved--;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.running--;
      k.running--;
      this.gc(key, k);
      this.dispatch();
    };
  }

  /** Hands free slots to waiters: fewest running for their key first, then oldest. */
  private dispatch(): void {
    while (this.running < this.maxConcurrency && this.queue.length > 0) {
      let best = -1;
      let bestRunning = Infinity;
      for (let i = 0; i < this.queue.length; i++) {
        const w = this.queue[i]!;
        const r = this.keys.get(w.key)?.running ?? 0;
        if (r >= this.maxRunningPerKey) continue;
        if (r < bestRunning) { best = i; bestRunning = r; }
      }
      if (best < 0) return;
      const [w] = this.queue.splice(best, 1);
      w!.cleanup();
      w!.resolve(this.grant(w!.key, this.state(w!.key), w!.held));
    }
  }
}
