// admission.ts — the global concurrency limit: at most `maxConcurrency`
// executions run at once; up to `maxQueue` more wait in FIFO order for at most
// `queueTimeoutMs`. A full queue or a wait past the timeout is 503 Overloaded
// with a Retry-After; an aborted waiter leaves the queue; close() rejects every
// waiter with ShuttingDown. acquire() resolves to a release function (idempotent).
import { overloaded, shuttingDown } from '../lib/errors.js';

export type Release = () => void;

interface Waiter { resolve: (r: Release) => void; reject: (e: unknown) => void; cleanup: () => void }

export class Admission {
  private running = 0;
  private readonly queue: Waiter[] = [];
  private closed = false;

  constructor(
    readonly maxConcurrency: number,
    readonly maxQueue: number,
    readonly queueTimeoutMs: number,
  ) {}

  get inFlight(): number { return this.running; }
  get queued(): number { return this.queue.length; }

  acquire(signal?: AbortSignal): Promise<Release> {
    if (this.closed) return Promise.reject(shuttingDown());
    if (signal?.aborted) return Promise.reject(signal.reason ?? new Error('aborted'));
    if (this.running < this.maxConcurrency) {
      this.running++;
      return Promise.resolve(this.releaser());
    }
    if (this.queue.length >= this.maxQueue) return Promise.reject(overloaded(this.retryAfter()));
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
        resolve, reject,
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

  /** A hint for clients: seconds until a slot is likely, at least 1. */
  private retryAfter(): number {
    return Math.max(1, Math.min(30, Math.ceil((this.queue.length + 1) / Math.max(1, this.maxConcurrency))));
  }

  private remove(w: Waiter): void {
    const i = this.queue.indexOf(w);
    if (i >= 0) this.queue.splice(i, 1);
    w.cleanup();
  }

  private releaser(): Release {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      const next = this.queue.shift();
      if (next) {
        next.cleanup();
        next.resolve(this.releaser()); // the slot passes straight to the next waiter
      } else {
        this.running--;
      }
    };
  }
}
