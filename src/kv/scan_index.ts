/**
 * The order SCAN walks a key space in, and an index that reads one page of it without visiting
 * every key.
 *
 * SCAN's cursor is a position in the order of a 32-bit hash of each key ({@link scanHash}): a page
 * holds the keys whose hash is at least the cursor, smallest first, and the next cursor is one past
 * the last hash returned. The order depends on the keys only, so a cursor means the same on every
 * replica (a client may continue a scan on another one), and Redis's guarantee holds: a key present
 * from the start to the end of a full iteration is returned at least once, however the key space
 * changes between pages.
 *
 * {@link ScanIndex} keeps the keys in buckets by the top bits of their hash, so that a page reads
 * the buckets from the cursor's on until it has enough keys: about `count` keys plus a bucket's
 * worth, where a walk over the whole key space took 0.3 s per page at three million keys and held
 * the replica's event loop meanwhile. It costs a pointer per key. Not part of the state: the key
 * space rebuilds it whenever it is rebuilt.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { KeyBuckets } from "./key_buckets.ts";
import { byteOrder } from "./bytes.ts";

/** The 32-bit FNV-1a hash SCAN orders keys (and HSCAN fields, SSCAN members) by. */
export function scanHash(s: ByteString): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** A page of a scan: its items and the cursor of the next page (0: the scan is done). */
export interface ScanPage<T> {
  next: number;
  page: T[];
}

/** Items picked for a page with their hashes, smallest hash (then smallest key) first. */
type Picked<T> = { h: number; item: T; key: ByteString }[];

function byHashThenKey<T>(a: Picked<T>[number], b: Picked<T>[number]): number {
  return a.h - b.h || byteOrder(a.key, b.key);
}

/**
 * The page of `picked` (every candidate at or after the cursor, sorted): the first `count`, plus
 * those tied with the last one's hash (a cursor cannot fall between them). `more`: some item after
 * the picked ones exists.
 */
function cut<T>(picked: Picked<T>, count: number, more: boolean): ScanPage<T> {
  if (picked.length <= count && !more) return { next: 0, page: picked.map((p) => p.item) };
  if (picked.length === 0) return { next: 0, page: [] };
  const last = picked[Math.min(count, picked.length) - 1].h;
  let keep = Math.min(count, picked.length);
  while (keep < picked.length && picked[keep].h === last) keep++;
  return { next: last + 1, page: picked.slice(0, keep).map((p) => p.item) };
}

/**
 * One page of a hash-ordered scan over `items`, visiting all of them (a hash's fields, a set's
 * members): the (up to `count`, plus ties) items whose hash is at least `cursor`, and the next
 * cursor. `key` gives the string each item is ordered by.
 */
export function scanPage<T>(
  items: Iterable<T>,
  key: (item: T) => ByteString,
  cursor: number,
  count: number,
): ScanPage<T> {
  let picked: Picked<T> = [];
  let limit = Infinity; // the largest hash still wanted once `count` items are picked
  let dropped = false; // an item at or after the cursor was left for a later page
  for (const item of items) {
    const k = key(item);
    const h = scanHash(k);
    if (h < cursor) continue;
    if (h > limit) {
      dropped = true;
      continue;
    }
    picked.push({ h, item, key: k });
    if (picked.length > 4 * count + 64) {
      picked.sort(byHashThenKey);
      limit = picked[count - 1].h;
      let keep = count;
      while (keep < picked.length && picked[keep].h === limit) keep++;
      if (keep < picked.length) dropped = true;
      picked = picked.slice(0, keep);
    }
  }
  picked.sort(byHashThenKey);
  return cut(picked, count, dropped);
}

/**
 * Bits of the hash that choose a key's bucket: 4,096 buckets, about 2,400 keys each at ten million
 * keys. Fewer, larger buckets make an add cheaper (the buckets' ends stay in the CPU's cache: 0.12
 * µs a key at three million keys against 0.32 µs with 65,536 buckets, measured in a loop), and a
 * delete (a search of its bucket) and a page (a bucket hashed and sorted) dearer; at ten million
 * keys both stay around a microsecond and a millisecond.
 */
const BUCKET_BITS = 12;
const BUCKET_SHIFT = 32 - BUCKET_BITS;
const BUCKETS = 1 << BUCKET_BITS;

/** The keys of a key space by SCAN order, for pages read without visiting every key. */
export class ScanIndex {
  readonly #hash: (key: ByteString) => number;
  readonly #keys: KeyBuckets;

  /** An empty index; `hash` is SCAN's order (replaced only by tests, to make hashes collide). */
  constructor(hash: (key: ByteString) => number = scanHash) {
    this.#hash = hash;
    this.#keys = new KeyBuckets(BUCKETS, (key) => hash(key) >>> BUCKET_SHIFT);
  }

  /** Number of keys held. */
  get size(): number {
    return this.#keys.size;
  }

  /** Adds `key`, which it must not hold. */
  add(key: ByteString): void {
    this.#keys.add(key);
  }

  /** Fills an empty index with `keys` (`n` of them), pausing every `slice` keys (`KeyBuckets`). */
  *build(keys: Iterable<ByteString>, n: number, slice: number): Generator<void> {
    yield* this.#keys.build(keys, n, slice);
  }

  /** Removes `key`; false if it was not held. */
  delete(key: ByteString): boolean {
    return this.#keys.delete(key);
  }

  /** Removes every key. */
  clear(): void {
    this.#keys.clear();
  }

  /**
   * The page of keys at `cursor`, as {@link scanPage} gives it over every key held, of those for
   * which `live` holds (a key whose time passed is skipped, but still orders the page: a page may
   * hold fewer than `count` keys, as Redis's may). Reads only the buckets it returns keys from,
   * and those before the next non-empty one.
   */
  page(cursor: number, count: number, live: (key: ByteString) => boolean): ScanPage<ByteString> {
    if (this.#keys.size === 0 || cursor > 0xffffffff) return { next: 0, page: [] };
    const picked: Picked<ByteString> = [];
    let b = cursor >>> BUCKET_SHIFT;
    for (; b < BUCKETS && picked.length < count; b++) {
      for (const key of this.#keys.bucket(b)) {
        const h = this.#hash(key);
        if (h >= cursor) picked.push({ h, item: key, key });
      }
    }
    picked.sort(byHashThenKey);
    let more = false;
    for (; b < BUCKETS && !more; b++) more = this.#keys.bucket(b).length > 0;
    const { next, page } = cut(picked, count, more);
    return { next, page: page.filter(live) };
  }
}
