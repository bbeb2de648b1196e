/**
 * The hashes of the state's digest (`KeySpace.digest`): a 64-bit FNV-style hash of byte strings as
 * two 32-bit lanes ({@link hashOf}), and the order-independent hash of a hash or set, the
 * lane-wise sum of its elements' hashes ({@link elementSums}).
 *
 * A large hash or set that changed is hashed again at each checkpoint: summing a million fields
 * took 0.14 s, a hundred times what the thousand writes between two checkpoints took. So the
 * hashes and sets the commands make are a {@link SummedMap} or {@link SummedSet}: once asked for
 * their sums with {@link SUMMED_FROM} elements or more, they keep them up to date as they change
 * (an element's hash added or taken away), and the next checkpoint reads them at once. The sums
 * are the same numbers either way, so the digest does not depend on which collections keep them.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";

function fnv(s: ByteString, a: number, b: number): [number, number] {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995) ^ (b >>> 15);
  }
  a = Math.imul(a ^ 0x100, 0x01000193);
  b = Math.imul(b ^ 0x100, 0x5bd1e995) ^ (b >>> 15);
  return [a, b];
}

/** A 64-bit hash of a sequence of byte strings, as two unsigned 32-bit lanes. */
export function hashOf(parts: Iterable<ByteString>, seed = 0): [number, number] {
  let h: [number, number] = [0x811c9dc5 ^ seed, 0x9747b28c ^ seed];
  for (const p of parts) h = fnv(p, h[0], h[1]);
  return [h[0] >>> 0, h[1] >>> 0];
}

/** A hash field's hash, {@link hashOf} of `[field, value]`. */
function pairHash(field: ByteString, value: ByteString): [number, number] {
  return hashOf([field, value]);
}

/** A set member's hash, {@link hashOf} of `[member]`. */
function memberHash(member: ByteString): [number, number] {
  return hashOf([member]);
}

/** The hashes of a hash's pairs. */
function* pairHashes(m: Map<ByteString, ByteString>): Generator<[number, number]> {
  for (const [field, value] of m) yield pairHash(field, value);
}

/** The hashes of a set's members. */
function* memberHashes(s: Set<ByteString>): Generator<[number, number]> {
  for (const member of s) yield memberHash(member);
}

/** From this many elements on, a summed collection asked for its sums keeps them up to date. */
export const SUMMED_FROM = 1024;

/** Lane sums kept for a collection: elements' hashes added and taken away, modulo 2^32. */
class Sums {
  a = 0;
  b = 0;

  /** The sums of `hashes`. */
  static of(hashes: Iterable<[number, number]>): Sums {
    const sums = new Sums();
    for (const h of hashes) sums.add(h, 1);
    return sums;
  }

  add([x, y]: [number, number], sign: 1 | -1): void {
    this.a = (this.a + sign * x) >>> 0;
    this.b = (this.b + sign * y) >>> 0;
  }
}

/**
 * The sums a summed collection keeps: none until they are first read at {@link SUMMED_FROM}
 * elements or more, then kept up to date by the collection's changes.
 */
class KeptSums {
  #sums: Sums | undefined;

  /** The sums to change with an element added or taken away; undefined while none are kept. */
  get kept(): Sums | undefined {
    return this.#sums;
  }

  /** The collection was emptied: the sums kept, if any, are 0. */
  cleared(): void {
    if (this.#sums !== undefined) this.#sums = new Sums();
  }

  /** The sums of a collection of `size` elements whose hashes are `hashes()`; kept if large. */
  read(size: number, hashes: () => Iterable<[number, number]>): [number, number] {
    const sums = this.#sums ?? Sums.of(hashes());
    if (size >= SUMMED_FROM) this.#sums = sums;
    return [sums.a, sums.b];
  }
}

/** A hash's fields and values that keeps the sums of its pairs' hashes once it is large. */
export class SummedMap extends Map<ByteString, ByteString> {
  readonly #sums = new KeptSums();

  /** An empty map (never built from entries: they would be set before the sums exist). */
  constructor() {
    super();
  }

  /** Sets `field` to `value`, keeping the sums. */
  override set(field: ByteString, value: ByteString): this {
    const sums = this.#sums.kept;
    if (sums !== undefined) {
      const old = super.get(field);
      if (old !== undefined) sums.add(pairHash(field, old), -1);
      sums.add(pairHash(field, value), 1);
    }
    return super.set(field, value);
  }

  /** Deletes `field`, keeping the sums. */
  override delete(field: ByteString): boolean {
    const sums = this.#sums.kept;
    if (sums !== undefined) {
      const old = super.get(field);
      if (old !== undefined) sums.add(pairHash(field, old), -1);
    }
    return super.delete(field);
  }

  /** Empties the map (its sums are then 0). */
  override clear(): void {
    super.clear();
    this.#sums.cleared();
  }

  /** The lane sums of its pairs' hashes: kept from now on if it has {@link SUMMED_FROM} or more. */
  sums(): [number, number] {
    return this.#sums.read(this.size, () => pairHashes(this));
  }
}

/** A set's members that keeps the sums of their hashes once it is large. */
export class SummedSet extends Set<ByteString> {
  readonly #sums = new KeptSums();

  /** An empty set (never built from members: they would be added before the sums exist). */
  constructor() {
    super();
  }

  /** Adds `member`, keeping the sums. */
  override add(member: ByteString): this {
    const sums = this.#sums.kept;
    if (sums !== undefined && !super.has(member)) sums.add(memberHash(member), 1);
    return super.add(member);
  }

  /** Deletes `member`, keeping the sums. */
  override delete(member: ByteString): boolean {
    const sums = this.#sums.kept;
    if (sums !== undefined && super.has(member)) sums.add(memberHash(member), -1);
    return super.delete(member);
  }

  /** Empties the set (its sums are then 0). */
  override clear(): void {
    super.clear();
    this.#sums.cleared();
  }

  /** The lane sums of its members' hashes: kept from now on if it has {@link SUMMED_FROM} or more. */
  sums(): [number, number] {
    return this.#sums.read(this.size, () => memberHashes(this));
  }
}

/**
 * The lane sums of a hash's pair hashes or a set's member hashes: a summed collection's own (kept
 * up to date once it is large), any other's computed from its elements.
 */
export function elementSums(v: Map<ByteString, ByteString> | Set<ByteString>): [number, number] {
  if (v instanceof SummedMap || v instanceof SummedSet) return v.sums();
  const sums = Sums.of(v instanceof Map ? pairHashes(v) : memberHashes(v));
  return [sums.a, sums.b];
}

/** A summed map holding `entries`, in order. */
export function summedMap(entries: Iterable<readonly [ByteString, ByteString]>): SummedMap {
  const m = new SummedMap();
  for (const [f, v] of entries) m.set(f, v);
  return m;
}

/** A summed set holding `members`, in order. */
export function summedSet(members: Iterable<ByteString>): SummedSet {
  const s = new SummedSet();
  for (const m of members) s.add(m);
  return s;
}
