/**
 * The retained suffix of the delivered log: entries by global index, kept in memory so that a view
 * change can bring lagging members up to date. Older entries are dropped once twice `retain` are
 * held, or entries of twice `retainBytes` bytes (as `bytesOf` counts them), down to what the two
 * bounds allow; a member that lags further gets a snapshot instead. The bytes bound is what keeps
 * large values from filling the heap: 20,000 entries of 1 MB values would be 20 GB.
 *
 * @module
 */
import { invariant } from "./assert.ts";
import type { Entry } from "./types.ts";

/** The delivered log's retained suffix. */
export class DeliveredLog {
  #entries: Entry[] = [];
  /** Index of `#entries[0]`. */
  #start = 1;
  /** The bytes of `#entries`, by {@link #bytesOf}. */
  #bytes = 0;
  readonly #retain: number;
  readonly #retainBytes: number;
  readonly #bytesOf: (entry: Entry) => number;

  /**
   * Keeps at least the last `retain` entries, unless they carry more than `retainBytes` bytes (as
   * `bytesOf` counts an entry's): then at least the last entries of `retainBytes` bytes, and
   * always the last entry.
   */
  constructor(
    retain: number,
    retainBytes: number = Infinity,
    bytesOf: (entry: Entry) => number = () => 0,
  ) {
    invariant(retain >= 1, "retain at least one entry");
    invariant(retainBytes >= 0, "retain a byte count");
    this.#retain = retain;
    this.#retainBytes = retainBytes;
    this.#bytesOf = bytesOf;
  }

  /** The bytes of the entries held. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Index of the last delivered entry (0 when none). */
  get end(): number {
    return this.#start + this.#entries.length - 1;
  }

  /** Index of the first entry still held. */
  get start(): number {
    return this.#start;
  }

  /** Appends the entry delivered at `end + 1`. */
  append(entry: Entry): void {
    this.#entries.push(entry);
    this.#bytes += this.#bytesOf(entry);
    if (this.#entries.length < 2 * this.#retain && this.#bytes < 2 * this.#retainBytes) return;
    // Twice the bounds, then down to them (the last entry kept): a copy of the array per
    // `retain` appends at most.
    const n = this.#entries.length;
    let drop = 0;
    while (drop < n - 1 && (n - drop > this.#retain || this.#bytes > this.#retainBytes)) {
      this.#bytes -= this.#bytesOf(this.#entries[drop]);
      drop++;
    }
    this.#entries = this.#entries.slice(drop);
    this.#start += drop;
  }

  /** The entry at `index`, if held. */
  get(index: number): Entry | undefined {
    return this.#entries[index - this.#start];
  }

  /** Entries `from..to` inclusive, or undefined if any of them is no longer held. */
  slice(from: number, to: number): Entry[] | undefined {
    if (from > to) return [];
    if (from < this.#start || to > this.end) return undefined;
    return this.#entries.slice(from - this.#start, to - this.#start + 1);
  }

  /** Forgets everything: the next entry appended gets index `index + 1` (after a snapshot). */
  resetTo(index: number): void {
    this.#entries = [];
    this.#bytes = 0;
    this.#start = index + 1;
  }
}
