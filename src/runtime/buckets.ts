/**
 * Prometheus-style histogram counts with fixed upper bounds, for the hot paths (one per answered
 * operation, one per fsync): recording is a short scan of a few bounds and one increment in a
 * preallocated array, with no allocation and no label strings. The metrics module reads them at
 * scrape time.
 *
 * @module
 */

/** Upper bounds (seconds) for request latency: 100 µs .. 10 s. */
export const LATENCY_BOUNDS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

/** Upper bounds (seconds) for slower background work (snapshots): 1 ms .. 60 s. */
export const SLOW_BOUNDS: readonly number[] = [
  0.001,
  0.005,
  0.01,
  0.05,
  0.1,
  0.5,
  1,
  5,
  10,
  30,
  60,
];

/** Observation counts per bucket (not cumulative), their sum and count. */
export class BucketCounts {
  /** Upper bounds, ascending; a last implicit bucket holds everything above (`+Inf`). */
  readonly bounds: readonly number[];
  /** `counts[i]` observations fell in bucket i (`bounds[i-1] < v <= bounds[i]`). */
  readonly counts: Float64Array;
  /** Sum of the observed values. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /** Counts for `bounds` (ascending upper bounds). */
  constructor(bounds: readonly number[] = LATENCY_BOUNDS) {
    this.bounds = bounds;
    this.counts = new Float64Array(bounds.length + 1);
  }

  /** Records one value. */
  observe(value: number): void {
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  /** Cumulative counts per upper bound, `+Inf` last (what the exposition format wants). */
  cumulative(): { le: number | "+Inf"; count: number }[] {
    const out: { le: number | "+Inf"; count: number }[] = [];
    let running = 0;
    for (let i = 0; i < this.counts.length; i++) {
      running += this.counts[i];
      out.push({ le: i < this.bounds.length ? this.bounds[i] : "+Inf", count: running });
    }
    return out;
  }
}
