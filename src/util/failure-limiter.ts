/**
 * Counts failures per key (a client address) in fixed windows and says when a key is over its
 * limit, so that a flood of bad credentials is answered without touching the registry or the
 * timeline. Memory is bounded: old windows are dropped, and past `maxKeys` the table starts over
 * (a flood from many addresses then costs at most one window of counting, never unbounded memory).
 */
export interface FailureLimiterOptions {
  /** Failures a key may have in one window before it is over the limit. */
  limit: number;
  /** Window length, ms. */
  windowMs?: number;
  maxKeys?: number;
  now?: () => number;
}

export class FailureLimiter {
  readonly #windowMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  #limit: number;
  #windowStart = 0;
  #counts = new Map<string, number>();

  constructor({ limit, windowMs = 60_000, maxKeys = 65_536, now = Date.now }: FailureLimiterOptions) {
    if (!Number.isInteger(limit) || limit < 1) throw new TypeError(`failure limiter: limit must be a positive integer, got ${limit}`);
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#maxKeys = maxKeys;
    this.#now = now;
  }

  set limit(limit: number) {
    this.#limit = limit;
  }

  #roll(): void {
    const now = this.#now();
    if (now - this.#windowStart >= this.#windowMs) {
      this.#windowStart = now;
      this.#counts.clear();
    }
  }

  /** Whether `key` is over its limit (times `factor`) in the current window. */
  over(key: string, factor = 1): boolean {
    this.#roll();
    return (this.#counts.get(key) ?? 0) >= this.#limit * factor;
  }

  /** Counts one failure of `key`. */
  fail(key: string): void {
    this.#roll();
    if (this.#counts.size >= this.#maxKeys && !this.#counts.has(key)) this.#counts.clear();
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  /** Seconds until the current window ends (what Retry-After says). */
  retryAfter(): number {
    return Math.max(1, Math.ceil((this.#windowStart + this.#windowMs - this.#now()) / 1000));
  }
}
