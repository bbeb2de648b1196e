/**
 * An array whose elements are made when they are read: a replica's snapshot holds its keys as
 * one, so that taking a snapshot copies no record and a writer serializes each record as it goes
 * (`src/kv/keyspace.ts`). The JSON splitter (`json_split.ts`) reads it like an array;
 * `JSON.stringify` writes it as the array it stands for.
 *
 * @module
 */

/** A fixed-length sequence of elements made on demand by `at(i)`; reads may repeat. */
export class LazyArray<T> {
  /** Number of elements. */
  readonly length: number;
  readonly #at: (i: number) => T;

  /** A sequence of `length` elements, element `i` being `at(i)` whenever it is read. */
  constructor(length: number, at: (i: number) => T) {
    if (!Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`invalid lazy array length ${length}`);
    }
    this.length = length;
    this.#at = at;
  }

  /** Element `i` (0 ≤ i < length). */
  at(i: number): T {
    if (!Number.isSafeInteger(i) || i < 0 || i >= this.length) {
      throw new RangeError(`index ${i} outside a lazy array of ${this.length}`);
    }
    return this.#at(i);
  }

  /** Every element, in order. */
  *[Symbol.iterator](): IterableIterator<T> {
    for (let i = 0; i < this.length; i++) yield this.#at(i);
  }

  /** The elements as a real array (what `JSON.stringify` writes). */
  toJSON(): T[] {
    return Array.from({ length: this.length }, (_, i) => this.#at(i));
  }
}
