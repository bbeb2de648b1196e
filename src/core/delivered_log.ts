/**
 * The retained suffix of the delivered log: entries by global index, kept in memory so that a view
 * change can bring lagging members up to date. Older entries are dropped once more than `retain`
 * are held; a member that lags further gets a snapshot instead.
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
  readonly #retain: number;

  /** Keeps at least the last `retain` entries. */
  constructor(retain: number) {
    invariant(retain >= 1, "retain at least one entry");
    this.#retain = retain;
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
    if (this.#entries.length >= 2 * this.#retain) {
      const drop = this.#entries.length - this.#retain;
      this.#entries = this.#entries.slice(drop);
      this.#start += drop;
    }
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
    this.#start = index + 1;
  }
}
