/**
 * A latency histogram in the style of HdrHistogram: log-linear buckets over microseconds with 128
 * sub-buckets per power of two, so every recorded value is known to within 1/256 of itself
 * (exactly below 256 µs). Recording is a few integer operations and no allocation; memory is
 * fixed (about 14 KB) whatever the count.
 *
 * @module
 */

/** log2 of the sub-buckets per power of two. */
const SUB_BITS = 7;
const SUB_COUNT = 1 << SUB_BITS; // 128
/** Values below this many µs have a bucket each. */
const EXACT_BELOW = 2 * SUB_COUNT; // 256
/** Largest value kept, µs (about 71 minutes); larger values count as this. */
const MAX_VALUE_US = 0xffff_ffff;
/** Buckets: 256 exact, then 128 per power of two from 2^8 up to 2^31. */
const BUCKETS = EXACT_BELOW + (31 - SUB_BITS) * SUB_COUNT;

/** Bucket index of a value in whole µs (0..MAX_VALUE_US). */
function bucketOf(us: number): number {
  if (us < EXACT_BELOW) return us;
  const exp = 31 - Math.clz32(us); // floor(log2(us)), 8..31
  const shift = exp - SUB_BITS; // 1..24
  return EXACT_BELOW + (shift - 1) * SUB_COUNT + ((us >>> shift) - SUB_COUNT);
}

/** Lowest and highest µs value of bucket `index`. */
function bucketRange(index: number): [number, number] {
  if (index < EXACT_BELOW) return [index, index];
  const shift = Math.floor((index - EXACT_BELOW) / SUB_COUNT) + 1;
  const sub = (index - EXACT_BELOW) % SUB_COUNT + SUB_COUNT;
  const low = sub * 2 ** shift;
  return [low, low + 2 ** shift - 1];
}

/** Counts latencies and answers percentiles, min, max and mean. */
export class LatencyHistogram {
  readonly #counts = new Float64Array(BUCKETS);
  #count = 0;
  #sumUs = 0;
  #minUs = Infinity;
  #maxUs = 0;

  /** Records one latency in milliseconds (negative counts as 0). */
  recordMs(ms: number): void {
    this.recordUs(ms * 1000);
  }

  /** Records one latency in microseconds (rounded to whole µs; negative counts as 0). */
  recordUs(us: number): void {
    const v = us <= 0 ? 0 : us >= MAX_VALUE_US ? MAX_VALUE_US : Math.round(us);
    this.#counts[bucketOf(v)]++;
    this.#count++;
    this.#sumUs += v;
    if (v < this.#minUs) this.#minUs = v;
    if (v > this.#maxUs) this.#maxUs = v;
  }

  /** Values recorded. */
  get count(): number {
    return this.#count;
  }

  /** Smallest value in ms (exact to the µs), or 0 when empty. */
  get minMs(): number {
    return this.#count === 0 ? 0 : this.#minUs / 1000;
  }

  /** Largest value in ms (exact to the µs), or 0 when empty. */
  get maxMs(): number {
    return this.#maxUs / 1000;
  }

  /** Mean in ms, or 0 when empty. */
  get meanMs(): number {
    return this.#count === 0 ? 0 : this.#sumUs / this.#count / 1000;
  }

  /**
   * The `p`-th percentile (0 < p <= 100) in ms by the nearest-rank definition: the value at rank
   * `ceil(p/100 * count)` of the sorted values, as the middle of its bucket (clamped to the
   * exact min and max). 0 when empty.
   */
  percentileMs(p: number): number {
    if (!(p > 0 && p <= 100)) throw new RangeError(`percentile must be in (0, 100], got ${p}`);
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil((p / 100) * this.#count));
    let seen = 0;
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i];
      if (seen >= rank) {
        const [low, high] = bucketRange(i);
        const mid = (low + high) / 2;
        return Math.min(this.#maxUs, Math.max(this.#minUs, mid)) / 1000;
      }
    }
    return this.#maxUs / 1000;
  }

  /** Adds every value of `other` to this histogram. */
  merge(other: LatencyHistogram): void {
    for (let i = 0; i < BUCKETS; i++) this.#counts[i] += other.#counts[i];
    this.#count += other.#count;
    this.#sumUs += other.#sumUs;
    if (other.#count > 0) {
      this.#minUs = Math.min(this.#minUs, other.#minUs);
      this.#maxUs = Math.max(this.#maxUs, other.#maxUs);
    }
  }
}

/**
 * The nearest-rank `p`-th percentile of `sorted` (ascending), the reference the histogram
 * approximates. 0 for an empty array.
 */
export function percentileOfSorted(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[Math.min(sorted.length, rank) - 1];
}
