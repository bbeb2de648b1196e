/**
 * Event-loop lag: a timer due every {@link LOOP_LAG_INTERVAL_MS} measures how late it fires (a
 * turn that holds the loop, e.g. a long JSON parse, delays it). Each measurement goes into a
 * histogram; the last one is kept too. A lag of at least `stallMs` is also reported to `onStall`
 * (the host logs it: peers suspect a replica whose loop is held past their failure timeout). The
 * timer does not keep the process alive.
 *
 * @module
 */
import { BucketCounts, LATENCY_BOUNDS } from "./buckets.ts";

/** How often the lag is measured. */
export const LOOP_LAG_INTERVAL_MS = 100;

/** Options of a {@link LoopLagMonitor}. */
export interface LoopLagOptions {
  /** A lag of at least this many ms is reported to {@link onStall} (default: none is). */
  stallMs?: number;
  /** Called with each lag of at least {@link stallMs}, in ms. */
  onStall?: (lagMs: number) => void;
}

/** Measures the event loop's lag while started. */
export class LoopLagMonitor {
  /** Lag measurements, seconds. */
  readonly lagSeconds = new BucketCounts(LATENCY_BOUNDS);
  /** The last measured lag, seconds. */
  last = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #due = 0;
  readonly #stallMs: number;
  readonly #onStall: ((lagMs: number) => void) | undefined;

  constructor(options: LoopLagOptions = {}) {
    this.#stallMs = options.stallMs ?? Infinity;
    this.#onStall = options.onStall;
  }

  /** Starts measuring (idempotent). */
  start(): void {
    if (this.#timer === undefined) this.#arm();
  }

  /** Stops measuring. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    this.#due = performance.now() + LOOP_LAG_INTERVAL_MS;
    this.#timer = setTimeout(() => {
      const lagMs = Math.max(0, performance.now() - this.#due);
      this.last = lagMs / 1000;
      this.lagSeconds.observe(this.last);
      if (lagMs >= this.#stallMs) this.#onStall?.(lagMs);
      this.#arm();
    }, LOOP_LAG_INTERVAL_MS);
    Deno.unrefTimer(this.#timer);
  }
}
