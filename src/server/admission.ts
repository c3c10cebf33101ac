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

interface KeyState { running: number; reserved: number }
interface Waiter { key: string; resolve: (r: Release) => void; reject: (e: unknown) => void; cleanup: () => void }

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
    const use = (): void => {
      if (left <= 0) throw new Error('ticket used up');
      left--;
      k.reserved--;
    };
    return {
      acquire: (signal) => {
        use();
        return this.acquire(key, signal);
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
    if (this.closed) return Promise.reject(shuttingDown());
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    const k = this.state(key);
    if (this.running < this.maxConcurrency && k.running < this.maxRunningPerKey) {
      return Promise.resolve(this.grant(key, k));
    }
    if (this.queue.length >= this.maxQueue) {
      this.gc(key, k);
      return Promise.reject(overloaded(this.retryAfter()));
    }
    return new Promise<Release>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.remove(w);
        reject(overloaded(this.retryAfter()));
      }, this.queueTimeoutMs);
      const onAbort = (): void => {
        this.remove(w);
        reject(signal?.reason ?? new Error('aborted'));
      };
      const w: Waiter = {
        key, resolve, reject,
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
    this.gc(w.key, this.state(w.key));
  }

  private grant(key: string, k: KeyState): Release {
    this.running++;
    k.running++;
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
      w!.resolve(this.grant(w!.key, this.state(w!.key)));
    }
  }
}
