/**
 * Counts of the operations a replica answered and their recent latency: the one place where a
 * request's latency is measured (from its submission to the core until its outcome), read by
 * `GET /status` (and the dashboard's charts) and by the metrics.
 *
 * Recent latency is kept as the last {@link RECENT_SAMPLES} samples with their times; quantiles
 * are computed over those within the last {@link WINDOW_MS} when asked (a status read), so the
 * per-operation cost is two array writes.
 *
 * @module
 */

/** Samples kept for the recent quantiles. */
export const RECENT_SAMPLES = 8192;
/** The window the recent quantiles cover, in milliseconds. */
export const WINDOW_MS = 10_000;

/**
 * Observes one answered operation (e.g. a metrics histogram); `code` is the error outcome's code
 * (`NOQUORUM`, ...) when not `ok`.
 */
export type OpObserver = (command: string, ok: boolean, seconds: number, code?: string) => void;

/** Operation counts and recent latency of one replica. */
export class OpStats {
  /** Operations answered since start. */
  total = 0;
  /** Operations answered with an error outcome. */
  errors = 0;
  readonly #latencyMs = new Float64Array(RECENT_SAMPLES);
  readonly #at = new Float64Array(RECENT_SAMPLES);
  #next = 0;
  readonly #observers: OpObserver[] = [];
  readonly #now: () => number;

  /** `now` is a monotonic clock in ms (default `performance.now`). */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
  }

  /** The clock the caller starts its measurement with. */
  now(): number {
    return this.#now();
  }

  /** Adds an observer called for every recorded operation. */
  observe(observer: OpObserver): void {
    this.#observers.push(observer);
  }

  /**
   * Records one answered operation that was submitted at `startedAt` (from {@link now}); `code`
   * is its error outcome's code when not `ok`.
   */
  record(command: string, ok: boolean, startedAt: number, code?: string): void {
    const end = this.#now();
    const ms = Math.max(0, end - startedAt);
    this.total++;
    if (!ok) this.errors++;
    const i = this.#next;
    this.#latencyMs[i] = ms;
    this.#at[i] = end;
    this.#next = (i + 1) % RECENT_SAMPLES;
    for (const observer of this.#observers) observer(command, ok, ms / 1000, code);
  }

  /** p50 and p99 in ms over the samples of the last {@link WINDOW_MS} (null without any). */
  recent(): { p50Ms: number | null; p99Ms: number | null; windowSeconds: number } {
    const since = this.#now() - WINDOW_MS;
    const kept = Math.min(this.total, RECENT_SAMPLES);
    const values: number[] = [];
    for (let i = 0; i < kept; i++) {
      if (this.#at[i] >= since) values.push(this.#latencyMs[i]);
    }
    const windowSeconds = WINDOW_MS / 1000;
    if (values.length === 0) return { p50Ms: null, p99Ms: null, windowSeconds };
    values.sort((a, b) => a - b);
    const at = (q: number) => values[Math.min(values.length - 1, Math.ceil(q * values.length) - 1)];
    const round = (ms: number) => Math.round(ms * 1000) / 1000;
    return { p50Ms: round(at(0.5)), p99Ms: round(at(0.99)), windowSeconds };
  }
}
