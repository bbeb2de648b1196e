/**
 * Rate limit of repeated log events, per key (an event name and its source, e.g. a remote host):
 * a token bucket holding {@link LOG_BURST} tokens that refills one token per interval. So the
 * first events of a burst are written, then at most one per interval; a key quiet long enough
 * gets its whole burst back. Events held back are counted, and the count is reported once (by
 * the caller, as a summary line) before the key's next written event, or by {@link
 * RateLimiter.due} once an interval passed. A flood of hostile connections therefore costs a few
 * lines, not one per connection.
 *
 * @module
 */
import { LIMIT_LOG_INTERVAL_MS, LOG_BURST, LOG_MAX_SOURCES } from "../limits.ts";

/** Options of a {@link RateLimiter}. */
export interface RateLimitOptions {
  /** Events per key written before the limit applies (default {@link LOG_BURST}). */
  burst?: number;
  /** Milliseconds per further event (default {@link LIMIT_LOG_INTERVAL_MS}); 0: no limit. */
  intervalMs?: number;
  /** Keys remembered (default {@link LOG_MAX_SOURCES}); the least recently seen go first. */
  maxKeys?: number;
  /** The clock in ms (default `performance.now`); injectable for tests. */
  now?: () => number;
}

/** What {@link RateLimiter.take} decided. */
export type RateDecision =
  /** Write the event; `suppressed` were held back for this key since its last written one. */
  | { write: true; suppressed: number }
  | { write: false };

interface Bucket {
  tokens: number;
  /** When `tokens` was last brought up to date. */
  at: number;
  /** Held back since the last written event or summary. */
  suppressed: number;
  /** When the last event or summary of this key was written. */
  writtenAt: number;
}

/** Per-key token buckets. */
export class RateLimiter {
  readonly #burst: number;
  readonly #intervalMs: number;
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #buckets = new Map<string, Bucket>();

  /** Builds the limiter; see {@link RateLimitOptions} for the defaults. */
  constructor(options: RateLimitOptions = {}) {
    this.#burst = options.burst ?? LOG_BURST;
    this.#intervalMs = options.intervalMs ?? LIMIT_LOG_INTERVAL_MS;
    this.#maxKeys = options.maxKeys ?? LOG_MAX_SOURCES;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Whether an event of `key` happening now may be written. */
  take(key: string): RateDecision {
    if (this.#intervalMs <= 0) return { write: true, suppressed: 0 };
    const now = this.#now();
    let b = this.#buckets.get(key);
    if (b === undefined) {
      b = { tokens: this.#burst, at: now, suppressed: 0, writtenAt: now };
    } else {
      b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) / this.#intervalMs);
      b.at = now;
    }
    // Most recently seen last, so the first key is the one to forget.
    this.#buckets.delete(key);
    this.#buckets.set(key, b);
    if (this.#buckets.size > this.#maxKeys) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (b.tokens < 1) {
      b.suppressed += 1;
      return { write: false };
    }
    b.tokens -= 1;
    const suppressed = b.suppressed;
    b.suppressed = 0;
    b.writtenAt = now;
    return { write: true, suppressed };
  }

  /**
   * Keys with events held back and nothing written for them for an interval, with their counts;
   * the counts are reset (the caller writes one summary line per key).
   */
  due(): { key: string; suppressed: number }[] {
    const now = this.#now();
    const out: { key: string; suppressed: number }[] = [];
    for (const [key, b] of this.#buckets) {
      if (b.suppressed === 0 || now - b.writtenAt < this.#intervalMs) continue;
      out.push({ key, suppressed: b.suppressed });
      b.suppressed = 0;
      b.writtenAt = now;
    }
    return out;
  }
}
