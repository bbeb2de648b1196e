/**
 * Event-loop lag: a timer due every {@link LOOP_LAG_INTERVAL_MS} measures how late it fires (a
 * turn that holds the loop, e.g. a long JSON parse, delays it). Each measurement goes into a
 * histogram; the last one is kept too. The timer does not keep the process alive.
 *
 * @module
 */
import { BucketCounts, LATENCY_BOUNDS } from "./buckets.ts";

/** How often the lag is measured. */
export const LOOP_LAG_INTERVAL_MS = 100;

/** Measures the event loop's lag while started. */
export class LoopLagMonitor {
  /** Lag measurements, seconds. */
  readonly lagSeconds = new BucketCounts(LATENCY_BOUNDS);
  /** The last measured lag, seconds. */
  last = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #due = 0;

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
      this.last = Math.max(0, performance.now() - this.#due) / 1000;
      this.lagSeconds.observe(this.last);
      this.#arm();
    }, LOOP_LAG_INTERVAL_MS);
    Deno.unrefTimer(this.#timer);
  }
}
