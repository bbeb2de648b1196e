/**
 * Keys grouped in a fixed number of buckets by a function of the key, each bucket an unordered
 * array: SCAN's index (`scan_index.ts`) is made of it. A reader of one bucket visits its keys only,
 * not the whole key space.
 *
 * A key costs a pointer in its bucket. Adding is a push; deleting searches the key's bucket, so
 * the function must spread keys evenly (a hash) and buckets stay small: about 2,400 keys each at
 * ten million keys in 4,096 buckets. (Hash slots, which hash tags can fill unevenly, use sets:
 * `slot_keys.ts`.) Bucket order depends on the history of adds and deletes: a reader that must
 * give the same answer on every replica sorts what it reads. Not part of the state: the key space
 * rebuilds its indexes whenever it is rebuilt.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { invariant } from "../core/assert.ts";

/** Keys by bucket number. */
export class KeyBuckets {
  /** Number of buckets. */
  readonly count: number;
  readonly #bucketOf: (key: ByteString) => number;
  /** Allocated on the first add. */
  #buckets: (ByteString[] | undefined)[] | undefined;
  #size = 0;

  /** `count` empty buckets; `bucketOf(key)` must be an integer in `[0, count)`. */
  constructor(count: number, bucketOf: (key: ByteString) => number) {
    invariant(Number.isSafeInteger(count) && count > 0, `invalid bucket count ${count}`);
    this.count = count;
    this.#bucketOf = bucketOf;
  }

  /** Number of keys held. */
  get size(): number {
    return this.#size;
  }

  /** Adds `key`, which it must not hold. */
  add(key: ByteString): void {
    this.#buckets ??= new Array(this.count);
    const b = this.#bucketOf(key);
    const bucket = this.#buckets[b];
    if (bucket === undefined) this.#buckets[b] = [key];
    else bucket.push(key);
    this.#size++;
  }

  /** Removes `key`; false if it was not held. */
  delete(key: ByteString): boolean {
    const bucket = this.#buckets?.[this.#bucketOf(key)];
    if (bucket === undefined) return false;
    const i = bucket.indexOf(key);
    if (i < 0) return false;
    // Unordered: the last key takes its place.
    const last = bucket.pop()!;
    if (i < bucket.length) bucket[i] = last;
    this.#size--;
    return true;
  }

  /** Removes every key. */
  clear(): void {
    this.#buckets = undefined;
    this.#size = 0;
  }

  /** The keys of bucket `b`, in no particular order; not to be changed. */
  bucket(b: number): readonly ByteString[] {
    return this.#buckets?.[b] ?? [];
  }
}
