// budget.ts — byte budgets shared by every request: result bytes held until
// they are sent (counted as the JSON they become), and request bodies held by
// unfinished exec requests. take() either reserves or returns false (the
// caller answers 503 + Retry-After); a hold is returned once, whatever path
// the request ends on. jsonSize() is the exact length JSON.stringify gives a
// string, computed without building it.

export class ByteBudget {
  private used = 0;
  private peakUsed = 0;
  constructor(readonly limit: number) {}

  get inUse(): number { return this.used; }
  get peak(): number { return this.peakUsed; }

  /** Reserves `n` bytes when they fit (a lone request larger than the whole budget still fits when nothing else is held). */
  take(n: number): boolean {
    if (this.used > 0 && this.used + n > this.limit) return false;
    this.used += n;
    if (this.used > this.peakUsed) this.peakUsed = this.used;
    return true;
  }

  give(n: number): void {
    this.used = Math.max(0, this.used - n);
  }
}

/** A request's holds on a budget, returned together by free() (idempotent). */
export class Hold {
  private bytes = 0;
  constructor(private readonly budget: ByteBudget) {}
  get held(): number { return this.bytes; }
  take(n: number): boolean {
    if (!this.budget.take(n)) return false;
    this.bytes += n;
    return true;
  }
  free(): void {
    this.budget.give(this.bytes);
    this.bytes = 0;
  }
}

/** Length of JSON.stringify(s): quotes, escapes (\n, \uXXXX for other control bytes, lone surrogates) and UTF-8 bytes. */
export function jsonSize(s: string): number {
  let n = 2;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20) n += c === 8 || c === 9 || c === 10 || c === 12 || c === 13 ? 2 : 6;
    else if (c === 0x22 || c === 0x5c) n += 2;
    else if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) { n += 4; i++; }
    else if (c >= 0xd800 && c <= 0xdfff) n += 6; // a lone surrogate is escaped
    else n += 3;
  }
  return n;
}
