// budget.ts — the host's memory budget across all live forks. A fork can
// write every page of its RAM slot and its mailbox whatever its program's
// limit says, so each live fork is charged that worst case (RAM + mailbox)
// while it can run; work that would go over the budget is refused with
// MemoryBudgetExceeded (503) instead of letting the kernel's OOM killer choose.
// A fork kept between execs (a Sandbox) is charged its measured private pages
// while idle and grows back to the worst case before each exec.
import { totalmem } from 'node:os';
import { memoryBudgetExceeded } from '../lib/errors.js';

const MiB = 1024 * 1024;

/** The default budget: FORKBOX_MEM_BUDGET_MB, else 75% of the host's RAM. */
export function defaultBudgetMb(env: NodeJS.ProcessEnv = process.env): number {
  const v = env.FORKBOX_MEM_BUDGET_MB;
  if (v !== undefined && v !== '') {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`FORKBOX_MEM_BUDGET_MB must be a positive integer, got "${v}"`);
    return n;
  }
  return Math.floor((totalmem() * 0.75) / MiB);
}

/** One fork's share of the budget; release() is idempotent. */
export class Charge {
  #budget: MemoryBudget | null;
  #bytes: number;
  constructor(budget: MemoryBudget, bytes: number) {
    this.#budget = budget;
    this.#bytes = bytes;
  }
  get bytes(): number {
    return this.#bytes;
  }
  get released(): boolean {
    return this.#budget === null;
  }
  /** Lowers the share to `bytes` (no-op when it is already at or below). */
  shrink(bytes: number): void {
    if (!this.#budget || bytes >= this.#bytes) return;
    this.#budget.adjust(bytes - this.#bytes);
    this.#bytes = Math.max(0, bytes);
  }
  /** Raises the share to `bytes`; throws MemoryBudgetExceeded (503) when that does not fit. */
  grow(bytes: number, what: string): void {
    const b = this.#budget;
    if (!b) throw new RangeError('charge already released');
    if (bytes <= this.#bytes) return;
    b.grow(bytes - this.#bytes, what);
    this.#bytes = bytes;
  }
  release(): void {
    const b = this.#budget;
    if (!b) return;
    this.#budget = null;
    b.release(this.#bytes);
  }
  /** @internal: drops the charge without giving its bytes back (they moved to another charge). */
  forget(): void {
    this.#budget = null;
  }
}

export class MemoryBudget {
  readonly limit: number;
  #used = 0;
  #charges = 0;
  #refused = 0;
  /** Called when a reservation does not fit: frees idle charges (warm forks); returns true if it freed any. */
  reclaim: (() => boolean) | null = null;

  constructor(limitBytes: number) {
    if (!Number.isSafeInteger(limitBytes) || limitBytes < 1) throw new RangeError('memory budget must be a positive number of bytes');
    this.limit = limitBytes;
  }

  get used(): number {
    return this.#used;
  }

  stats(): { limitBytes: number; usedBytes: number; charges: number; refused: number } {
    return { limitBytes: this.limit, usedBytes: this.#used, charges: this.#charges, refused: this.#refused };
  }

  /** A charge of `bytes`, or null when it does not fit even after reclaiming idle charges. */
  tryReserve(bytes: number, reclaim = true): Charge | null {
    if (!Number.isSafeInteger(bytes) || bytes < 0) throw new RangeError('charge must be a non-negative integer');
    while (this.#used + bytes > this.limit) {
      if (!reclaim || !this.reclaim || !this.reclaim()) return null;
    }
    this.#used += bytes;
    this.#charges++;
    return new Charge(this, bytes);
  }

  /** Like tryReserve, but throws MemoryBudgetExceeded (503) for work that does not fit. */
  reserve(bytes: number, what: string): Charge {
    const c = this.tryReserve(bytes);
    if (c) return c;
    this.#refused++;
    throw memoryBudgetExceeded(`memory budget exhausted: ${what} needs ${Math.ceil(bytes / MiB)} MiB, ` +
      `${Math.floor((this.limit - this.#used) / MiB)} of ${Math.floor(this.limit / MiB)} MiB are free; retry when running execs finish`);
  }

  /** @internal (Charge.grow): adds `bytes` to the used total or throws MemoryBudgetExceeded. */
  grow(bytes: number, what: string): void {
    const c = this.reserve(bytes, what);   // same fit test and refusal as a new charge
    this.#charges--;                       // ...but it joins an existing charge
    c.forget();
  }

  /** @internal (Charge.shrink) */
  adjust(delta: number): void {
    this.#used += delta;
  }

  /** @internal (Charge.release) */
  release(bytes: number): void {
    this.#used -= bytes;
    this.#charges--;
  }
}
