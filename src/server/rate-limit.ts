// rate-limit.ts — one token bucket per API key (or per client address when
// auth is off). A bucket holds up to `burst` tokens and refills at `rate` per
// second; an exec takes one token (a batch, one per execution, capped at the
// burst so a large batch is not refused forever). Idle full buckets are swept.

export interface TakeResult { ok: boolean; retryAfterSeconds: number }

interface Bucket { tokens: number; at: number }

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private lastSweep: number;

  constructor(
    private readonly rate: number,
    private readonly burst: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.lastSweep = now();
  }

  get enabled(): boolean { return this.rate > 0; }

  take(key: string, n = 1): TakeResult {
    if (!this.enabled) return { ok: true, retryAfterSeconds: 0 };
    const cost = Math.min(Math.max(1, n), this.burst);
    const t = this.now();
    this.sweep(t);
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: this.burst, at: t };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate);
    b.at = t;
    if (b.tokens >= cost) {
      b.tokens -= cost;
      return { ok: true, retryAfterSeconds: 0 };
    }
    return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((cost - b.tokens) / this.rate)) };
  }

  size(): number { return this.buckets.size; }

  private sweep(t: number): void {
    if (t - this.lastSweep < 60_000) return;
    this.lastSweep = t;
    const full = (this.burst / this.rate) * 1000;
    for (const [k, b] of this.buckets) if (t - b.at > full) this.buckets.delete(k);
  }
}
