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

  /**
   * Fills an empty container with `keys` (`n` of them, none twice), each bucket allocated at its
   * size: a third of the time of adding them one by one in a restore of millions of keys, whose
   * buckets' arrays grow and move meanwhile. Pauses (yields) after every `slice` keys of each of
   * its two passes; nothing else may use the container, or change `keys`, until it is done.
   */
  *build(keys: Iterable<ByteString>, n: number, slice: number): Generator<void> {
    invariant(this.#size === 0, "build of a container that holds keys");
    const all: ByteString[] = new Array(n);
    const bucketOf = new Uint32Array(n);
    const sizes = new Uint32Array(this.count);
    let i = 0;
    for (const key of keys) {
      invariant(i < n, "more keys than announced");
      const b = this.#bucketOf(key);
      all[i] = key;
      bucketOf[i++] = b;
      sizes[b]++;
      if (i % slice === 0) yield;
    }
    invariant(i === n, "fewer keys than announced");
    const buckets: (ByteString[] | undefined)[] = new Array(this.count);
    for (let b = 0; b < this.count; b++) if (sizes[b] > 0) buckets[b] = new Array(sizes[b]);
    sizes.fill(0);
    for (let j = 0; j < n; j++) {
      const b = bucketOf[j];
      buckets[b]![sizes[b]++] = all[j];
      if ((j + 1) % slice === 0) yield;
    }
    this.#buckets = buckets;
    this.#size = n;
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
