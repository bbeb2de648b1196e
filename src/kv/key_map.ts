/**
 * The key space's map of keys to records, split into {@link KEY_MAP_SHARDS} maps by the top bits
 * of each key's {@link keyHash}.
 *
 * Why: a JavaScript `Map` grows by rehashing its whole table in one step. With one map, the
 * insert that crossed 2^23 (8.4 million) keys held a replica's event loop for seconds, past its
 * peers' failure timeout, and the cluster lost its view while loading ten million keys. Split,
 * each map rehashes a few thousand entries at a time.
 *
 * The split also orders the maps by hash range: every key of map `i` has a hash in
 * `[i << SHIFT, (i + 1) << SHIFT)`. A SCAN page (hash-ordered, see `commands/keys.ts`) then reads
 * the maps from its cursor's on and stops at the first map past a full page, instead of reading
 * every key.
 *
 * Iteration order: map by map in hash-range order, each in insertion order. It depends only on
 * the operations applied (and a restored snapshot keeps it), so it is the same on every replica.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";

/** Bits of a key's hash that choose its map. */
export const KEY_MAP_SHARD_BITS = 12;
/** Number of maps a key space is split into. */
export const KEY_MAP_SHARDS = 1 << KEY_MAP_SHARD_BITS;
const SHIFT = 32 - KEY_MAP_SHARD_BITS;

/** A key's 32-bit hash (FNV-1a over its bytes): its map, and its place in a SCAN. */
export function keyHash(key: ByteString): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** The map of a key with hash `h`. */
export function shardOf(h: number): number {
  return h >>> SHIFT;
}

/** A `Map` of byte-string keys in {@link KEY_MAP_SHARDS} parts (see the module documentation). */
export class KeyMap<V> implements Iterable<[ByteString, V]> {
  /** The maps, created when a key first lands in them. */
  readonly #shards: (Map<ByteString, V> | undefined)[] = new Array(KEY_MAP_SHARDS);
  #size = 0;

  /** Number of keys. */
  get size(): number {
    return this.#size;
  }

  /** The value of `key`, or undefined. */
  get(key: ByteString): V | undefined {
    return this.#shards[shardOf(keyHash(key))]?.get(key);
  }

  /** True when `key` is present. */
  has(key: ByteString): boolean {
    return this.#shards[shardOf(keyHash(key))]?.has(key) ?? false;
  }

  /** Sets `key` to `value` (a new key goes last in its map's order). */
  set(key: ByteString, value: V): this {
    const i = shardOf(keyHash(key));
    let shard = this.#shards[i];
    if (shard === undefined) shard = this.#shards[i] = new Map();
    const before = shard.size;
    shard.set(key, value);
    this.#size += shard.size - before;
    return this;
  }

  /** Removes `key`; true when it was present. */
  delete(key: ByteString): boolean {
    const shard = this.#shards[shardOf(keyHash(key))];
    if (shard === undefined || !shard.delete(key)) return false;
    this.#size--;
    return true;
  }

  /** Every key and value, map by map. */
  *entries(): IterableIterator<[ByteString, V]> {
    for (const shard of this.#shards) if (shard !== undefined) yield* shard;
  }

  /** Every key, map by map. */
  *keys(): IterableIterator<ByteString> {
    for (const shard of this.#shards) if (shard !== undefined) yield* shard.keys();
  }

  /** Every value, map by map. */
  *values(): IterableIterator<V> {
    for (const shard of this.#shards) if (shard !== undefined) yield* shard.values();
  }

  [Symbol.iterator](): IterableIterator<[ByteString, V]> {
    return this.entries();
  }

  /**
   * The maps that hold keys with a hash of at least `from`, in hash-range order, as their
   * entries (the first may also hold keys below `from`; every key of a later map has a larger
   * hash than every key of an earlier one).
   */
  *shardsFrom(from: number): IterableIterator<Iterable<[ByteString, V]>> {
    if (from > 0xffff_ffff) return; // past every hash
    for (let i = shardOf(Math.max(0, from)); i < KEY_MAP_SHARDS; i++) {
      const shard = this.#shards[i];
      if (shard !== undefined && shard.size > 0) yield shard;
    }
  }
}
