/**
 * The hashes of the state's digest (`KeySpace.digest`): a 64-bit FNV-style hash of byte strings as
 * two 32-bit lanes ({@link hashOf}); the order-independent hash of a hash or set, the lane-wise
 * sum of its elements' hashes ({@link elementSums}); and the order-dependent hash of a list, the
 * sum of its elements' hashes each multiplied by a power of a constant, the power its index
 * ({@link listHash}).
 *
 * A large hash or set that changed is hashed again at each checkpoint: summing a million fields
 * took 0.14 s, a hundred times what the thousand writes between two checkpoints took. So the
 * hashes and sets the commands make are a {@link SummedMap} or {@link SummedSet}: once asked for
 * their sums with {@link SUMMED_FROM} elements or more, they keep them up to date as they change
 * (an element's hash added or taken away), and the next checkpoint reads them at once. The sums
 * are the same numbers either way, so the digest does not depend on which collections keep them.
 *
 * Lists are the same: a queue of a million elements (pushed at one end, popped at the other) was
 * hashed whole at each checkpoint, 65-170 ms every thousand writes. A list's hash is a sum over
 * its elements, h(e_i)·R^i modulo 2^32 per lane, so a {@link SummedDeque} keeps it as elements are
 * pushed and popped at either end, set, or trimmed from the ends (each a few multiplications, the
 * powers of R kept and R odd, so invertible), and computes it again only after an edit in the middle
 * (LINSERT, LREM, which read the list anyway).
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { Deque } from "./list.ts";
import { InsertionOrder } from "./insertion_order.ts";

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
export class Sums {
  a = 0;
  b = 0;

  /** The sums of `hashes`. */
  static of(hashes: Iterable<[number, number]>): Sums {
    const sums = new Sums();
    for (const h of hashes) sums.add(h, 1);
    return sums;
  }

  /** Adds the hash `[x, y]` (`sign` 1) or takes it away (-1). */
  add([x, y]: [number, number], sign: 1 | -1): void {
    this.a = (this.a + sign * x) >>> 0;
    this.b = (this.b + sign * y) >>> 0;
  }
}

/**
 * From this many elements on, a large hash or set asked for its i-th element builds an index of
 * its insertion order ({@link InsertionOrder}) and keeps it as it changes; smaller ones are walked.
 */
export const ORDERED_FROM = 1024;

/** The i-th of `keys` (a walk: for a collection smaller than {@link ORDERED_FROM}). */
export function walkTo(keys: Iterable<ByteString>, i: number): ByteString {
  let at = 0;
  for (const k of keys) if (at++ === i) return k;
  throw new RangeError(`index ${i} past the end`);
}

/** The order index to keep for a collection of `size` elements: from {@link ORDERED_FROM} on. */
function orderIfLarge(
  size: number,
  keys: Iterable<ByteString>,
): InsertionOrder<ByteString> | undefined {
  return size < ORDERED_FROM ? undefined : InsertionOrder.of(keys);
}

// What a summed collection keeps (its sums, its order index) are fields of its own, not a helper
// object: a helper per hash or set took 80 bytes more than a plain one (274 B against 194 for a
// hash of two fields), most hashes and sets being small.

/**
 * A hash's fields and values that keeps the sums of its pairs' hashes once it is large, and its
 * fields' insertion order once it is asked for its i-th field while large.
 */
export class SummedMap extends Map<ByteString, ByteString> {
  /** The sums of its pairs' hashes, once kept (see {@link sums}). */
  #sums: Sums | undefined;
  /** Its fields' order, once kept (see {@link nth}). */
  #order: InsertionOrder<ByteString> | undefined;

  /** An empty map (never built from entries: they would be set before the fields exist). */
  constructor() {
    super();
  }

  /** Sets `field` to `value`, keeping the sums and the order. */
  override set(field: ByteString, value: ByteString): this {
    const sums = this.#sums;
    if (sums !== undefined) {
      const old = super.get(field);
      if (old !== undefined) sums.add(pairHash(field, old), -1);
      sums.add(pairHash(field, value), 1);
    }
    this.#order?.add(field); // a field already there keeps its place, as in the map
    return super.set(field, value);
  }

  /** Deletes `field`, keeping the sums and the order. */
  override delete(field: ByteString): boolean {
    const sums = this.#sums;
    if (sums !== undefined) {
      const old = super.get(field);
      if (old !== undefined) sums.add(pairHash(field, old), -1);
    }
    this.#order?.delete(field);
    return super.delete(field);
  }

  /** Empties the map; nothing is kept until asked for again. */
  override clear(): void {
    super.clear();
    this.#sums = undefined;
    this.#order = undefined;
  }

  /** The field at index `i` (0 ≤ i < size) of the order the map iterates in. */
  nth(i: number): ByteString {
    this.#order ??= orderIfLarge(this.size, this.keys());
    return this.#order?.nth(i) ?? walkTo(this.keys(), i);
  }

  /** The lane sums of its pairs' hashes: kept from now on if it has {@link SUMMED_FROM} or more. */
  sums(): [number, number] {
    const sums = this.#sums ?? Sums.of(pairHashes(this));
    if (this.size >= SUMMED_FROM) this.#sums = sums;
    return [sums.a, sums.b];
  }
}

/**
 * A set's members that keeps the sums of their hashes once it is large, and their insertion order
 * once it is asked for its i-th member while large.
 */
export class SummedSet extends Set<ByteString> {
  /** The sums of its members' hashes, once kept (see {@link sums}). */
  #sums: Sums | undefined;
  /** Its members' order, once kept (see {@link nth}). */
  #order: InsertionOrder<ByteString> | undefined;

  /** An empty set (never built from members: they would be added before the fields exist). */
  constructor() {
    super();
  }

  /** Adds `member`, keeping the sums and the order. */
  override add(member: ByteString): this {
    if (this.#sums !== undefined && !super.has(member)) this.#sums.add(memberHash(member), 1);
    this.#order?.add(member);
    return super.add(member);
  }

  /** Deletes `member`, keeping the sums and the order. */
  override delete(member: ByteString): boolean {
    if (this.#sums !== undefined && super.has(member)) this.#sums.add(memberHash(member), -1);
    this.#order?.delete(member);
    return super.delete(member);
  }

  /** Empties the set; nothing is kept until asked for again. */
  override clear(): void {
    super.clear();
    this.#sums = undefined;
    this.#order = undefined;
  }

  /** The member at index `i` (0 ≤ i < size) of the order the set iterates in. */
  nth(i: number): ByteString {
    this.#order ??= orderIfLarge(this.size, this.keys());
    return this.#order?.nth(i) ?? walkTo(this.keys(), i);
  }

  /** The lane sums of its members' hashes: kept from now on if it has {@link SUMMED_FROM} or more. */
  sums(): [number, number] {
    const sums = this.#sums ?? Sums.of(memberHashes(this));
    if (this.size >= SUMMED_FROM) this.#sums = sums;
    return [sums.a, sums.b];
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

// ---- lists ------------------------------------------------------------------------------------

/** The multipliers of a list hash's two lanes: odd, so invertible modulo 2^32. */
const LIST_R = [0x85ebca6b, 0x27d4eb2f] as const;

/** The inverse of odd `r` modulo 2^32 (Newton's iteration: each step doubles the bits right). */
function inverse(r: number): number {
  let x = r; // right in the low 3 bits: r·r ≡ 1 (mod 8) for every odd r
  for (let i = 0; i < 4; i++) x = Math.imul(x, 2 - Math.imul(r, x));
  if (Math.imul(r, x) !== 1) throw new Error(`no inverse of ${r} modulo 2^32`);
  return x;
}

const LIST_INV = [inverse(LIST_R[0]), inverse(LIST_R[1])] as const;

/** `r` to the power `n` modulo 2^32 (signed 32-bit result). */
function power(r: number, n: number): number {
  let out = 1;
  for (let base = r; n > 0; n = Math.floor(n / 2)) {
    if (n % 2 === 1) out = Math.imul(out, base);
    base = Math.imul(base, base);
  }
  return out;
}

/**
 * A list's hash in the making: per lane, the sum of h(e_i)·R^i (i from the head) and R^length,
 * modulo 2^32, changed as elements come and go at the ends.
 */
class ListSums {
  a = 0;
  b = 0;
  /** R^length, per lane. */
  pa = 1;
  pb = 1;

  /** The sums of `elements`, head first. */
  static of(elements: Iterable<ByteString>): ListSums {
    const sums = new ListSums();
    for (const e of elements) sums.pushBack(memberHash(e));
    return sums;
  }

  pushBack([x, y]: [number, number]): void {
    this.a = (this.a + Math.imul(x, this.pa)) | 0;
    this.b = (this.b + Math.imul(y, this.pb)) | 0;
    this.pa = Math.imul(this.pa, LIST_R[0]);
    this.pb = Math.imul(this.pb, LIST_R[1]);
  }

  pushFront([x, y]: [number, number]): void {
    this.a = (Math.imul(this.a, LIST_R[0]) + x) | 0;
    this.b = (Math.imul(this.b, LIST_R[1]) + y) | 0;
    this.pa = Math.imul(this.pa, LIST_R[0]);
    this.pb = Math.imul(this.pb, LIST_R[1]);
  }

  popBack([x, y]: [number, number]): void {
    this.pa = Math.imul(this.pa, LIST_INV[0]);
    this.pb = Math.imul(this.pb, LIST_INV[1]);
    this.a = (this.a - Math.imul(x, this.pa)) | 0;
    this.b = (this.b - Math.imul(y, this.pb)) | 0;
  }

  popFront([x, y]: [number, number]): void {
    this.a = Math.imul((this.a - x) | 0, LIST_INV[0]);
    this.b = Math.imul((this.b - y) | 0, LIST_INV[1]);
    this.pa = Math.imul(this.pa, LIST_INV[0]);
    this.pb = Math.imul(this.pb, LIST_INV[1]);
  }

  /** The element at `i` changed from hash `old` to `now`. */
  replace(i: number, [x0, y0]: [number, number], [x1, y1]: [number, number]): void {
    this.a = (this.a + Math.imul((x1 - x0) | 0, power(LIST_R[0], i))) | 0;
    this.b = (this.b + Math.imul((y1 - y0) | 0, power(LIST_R[1], i))) | 0;
  }

  /**
   * The `front` elements at the head and the `back` elements at the tail of `d` (whose hashes
   * these are) are about to be removed.
   */
  trim(d: Deque, front: number, back: number): void {
    const n = d.length;
    // The tail's terms, from index n - back on.
    let ra = power(LIST_R[0], n - back);
    let rb = power(LIST_R[1], n - back);
    for (let k = n - back; k < n; k++) {
      const [x, y] = memberHash(d.at(k)!);
      this.a = (this.a - Math.imul(x, ra)) | 0;
      this.b = (this.b - Math.imul(y, rb)) | 0;
      ra = Math.imul(ra, LIST_R[0]);
      rb = Math.imul(rb, LIST_R[1]);
    }
    // The head's terms; then every index falls by `front`: divide by R^front.
    ra = 1;
    rb = 1;
    for (let k = 0; k < front; k++) {
      const [x, y] = memberHash(d.at(k)!);
      this.a = (this.a - Math.imul(x, ra)) | 0;
      this.b = (this.b - Math.imul(y, rb)) | 0;
      ra = Math.imul(ra, LIST_R[0]);
      rb = Math.imul(rb, LIST_R[1]);
    }
    this.a = Math.imul(this.a, power(LIST_INV[0], front));
    this.b = Math.imul(this.b, power(LIST_INV[1], front));
    this.pa = power(LIST_R[0], n - front - back);
    this.pb = power(LIST_R[1], n - front - back);
  }
}

/**
 * A list that keeps its hash ({@link listHash}) once it is large: from {@link SUMMED_FROM}
 * elements on, once asked for it, changed with every push, pop, set and trim at the ends; an edit
 * in the middle (insert, remove) drops it, to be computed again when next asked.
 */
export class SummedDeque extends Deque {
  #sums: ListSums | undefined;

  /** Appends at the tail, keeping the hash. */
  override pushBack(v: ByteString): void {
    this.#sums?.pushBack(memberHash(v));
    super.pushBack(v);
  }

  /** Prepends at the head, keeping the hash. */
  override pushFront(v: ByteString): void {
    this.#sums?.pushFront(memberHash(v));
    super.pushFront(v);
  }

  /** Removes and returns the tail, keeping the hash. */
  override popBack(): ByteString | undefined {
    const v = super.popBack();
    if (v !== undefined) this.#sums?.popBack(memberHash(v));
    return v;
  }

  /** Removes and returns the head, keeping the hash. */
  override popFront(): ByteString | undefined {
    const v = super.popFront();
    if (v !== undefined) this.#sums?.popFront(memberHash(v));
    return v;
  }

  /** Replaces the element at `i`, keeping the hash. */
  override set(i: number, v: ByteString): boolean {
    const old = this.at(i);
    if (!super.set(i, v)) return false;
    this.#sums?.replace(i, memberHash(old!), memberHash(v));
    return true;
  }

  /** Inserts at `i`: at an end it is a push; in the middle the hash is dropped. */
  override insert(i: number, v: ByteString): void {
    if (i !== 0 && i !== this.length) this.#sums = undefined;
    super.insert(i, v); // at an end, calls this.pushFront or this.pushBack
  }

  /** Removes the element at `i`: at an end it is a pop; in the middle the hash is dropped. */
  override removeAt(i: number): ByteString {
    if (i !== 0 && i !== this.length - 1) this.#sums = undefined;
    return super.removeAt(i); // at an end, calls this.popFront or this.popBack
  }

  /** Keeps elements `start` to `end` (clamped), keeping the hash. */
  override keep(start: number, end: number): void {
    const n = this.length;
    const s = Math.max(0, Math.min(start, n));
    const e = Math.max(s, Math.min(end, n));
    this.#sums?.trim(this, s, n - e);
    super.keep(start, end);
  }

  /** Removes elements equal to `v` (see {@link Deque.removeValue}); drops the hash if any went. */
  override removeValue(v: ByteString, limit: number, fromTail: boolean): number {
    const removed = super.removeValue(v, limit, fromTail);
    if (removed > 0) this.#sums = undefined;
    return removed;
  }

  /** The list's hash lanes: kept from now on if it has {@link SUMMED_FROM} elements or more. */
  hash(): [number, number] {
    const sums = this.#sums ?? ListSums.of(this);
    if (this.length >= SUMMED_FROM) this.#sums = sums;
    return [sums.a >>> 0, sums.b >>> 0];
  }
}

/**
 * The order-dependent hash of a list, per lane the sum of h(e_i)·R^i modulo 2^32 with h the
 * member hash and i the index from the head: a summed list's own (kept once it is large), any
 * other's computed from its elements.
 */
export function listHash(d: Deque): [number, number] {
  if (d instanceof SummedDeque) return d.hash();
  const sums = ListSums.of(d);
  return [sums.a >>> 0, sums.b >>> 0];
}

/** A summed list holding `elements`, head first. */
export function summedDeque(elements: Iterable<ByteString>): SummedDeque {
  const d = new SummedDeque();
  for (const e of elements) d.pushBack(e);
  return d;
}
