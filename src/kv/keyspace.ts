/**
 * The typed key space of the state machine: every key holds a string, hash, list, set or stream, with an
 * optional expiry time, and the bookkeeping that must be identical on every replica: a version
 * per key for WATCH, an index of expiry times for the background sweep, and an incremental digest;
 * and, besides the state, its keys in SCAN's order (`scan_index.ts`).
 *
 * Time is never read from a clock here. The store sets {@link KeySpace.now} to the operation's
 * ordered time before applying it, so every replica decides expiry at the same point of the order.
 * A write that meets an expired key deletes it (the same on every replica); a read only hides it.
 *
 * A snapshot copies no record: it is a {@link SnapshotView}, the lists of keys and of references to
 * their records at that moment, the records encoded when the snapshot's writer reads them. Until
 * then the key space keeps, for each record the view still needs, its encoding as it was before
 * the first write that changed it in place (copy on write, as Redis's forked child gets from the
 * kernel); a record replaced or deleted is left as it was, and the view still refers to it. A
 * view is dropped when nothing refers to it any more (its writer finished).
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { invariant } from "../core/assert.ts";
import { Deque } from "./list.ts";
import { decodeStream, encodeStream, encodeStreamHead, Stream, type StreamJson } from "./stream.ts";
import { num, str, strs } from "./decode.ts";
import { LazyArray } from "../codec/lazy_array.ts";
import { ScanIndex, type ScanPage, scanPage } from "./scan_index.ts";
import { SlotKeys } from "./slot_keys.ts";
import { byteOrder } from "./bytes.ts";
import { elementSums, hashOf, listHash, summedDeque, SummedMap, summedSet } from "./digest_hash.ts";

/** The value types and what each holds in memory. */
export interface Values {
  string: ByteString;
  hash: Map<ByteString, ByteString>;
  list: Deque;
  set: Set<ByteString>;
  stream: Stream;
}

/** A type name as `TYPE` reports it. */
export type TypeName = keyof Values;

/** Hears what writes do to keys (see {@link KeySpace.observer}). */
export interface KeyObserver {
  /** `key` was created (`new`), modified in place or replaced (`changed`), or deleted (`gone`). */
  changed(key: ByteString, how: "new" | "changed" | "gone"): void;
  /** `key` was removed because its expiry time passed. */
  expired(key: ByteString): void;
}

/** One key's record. */
export interface Rec<T extends TypeName = TypeName> {
  t: T;
  v: Values[T];
  /** Absolute expiry time in ms (0: none). */
  exp: number;
  /** {@link KeySpace.version} when the key was last modified. */
  ver: number;
  /**
   * The record's contribution to the digest as last counted (two 32-bit lanes, stored signed: a
   * small integer in V8, where an unsigned lane of 2^31 or more is a 16-byte boxed number);
   * meaningful only while the key is not dirty. Kept on the record rather than in a map beside
   * it: a map entry and an array per key cost more than the record's two fields.
   */
  ha: number;
  hb: number;
}

/** The serialized form of one key in a snapshot: `[key, type, exp, ver, data]`. */
export type KeyRecord = [
  ByteString,
  TypeName,
  number,
  number,
  ByteString | ByteString[] | StreamJson,
];

/** The serialized key space (see {@link KeySpace.snapshot}). */
export interface KeySpaceSnapshot {
  /** A live key space's snapshot holds them lazily ({@link SnapshotView}); JSON, as an array. */
  keys: KeyRecord[] | LazyArray<KeyRecord>;
  version: number;
  tombFloor: number;
  /** Present when some key removed by expiry was forgotten (see `modifiedSince`). */
  tombTimeFloor?: number;
  /** Deleted keys: `[key, version]`, or `[key, version, expiry]` for a key removed by expiry. */
  tombs: ([ByteString, number] | [ByteString, number, number])[];
}

/**
 * A deleted key, for WATCH: the version of its deletion, or for a key removed because its time
 * passed, the version of its last write and its expiry time (it was logically gone from then).
 */
type Tomb = { ver: number; exp: number };

/** Hashes and sets of at least this many elements are paged by HSCAN/SSCAN from an index. */
export const INDEXED_COLLECTION_ITEMS = 4_096;

/** How many hashes' and sets' HSCAN/SSCAN indexes are kept at most (the oldest goes first). */
export const MAX_ITEM_INDEXES = 16;

/** How many deleted keys keep their deletion version for WATCH (older ones raise a floor). */
const MAX_TOMBSTONES = 65_536;

// ---- hashing (digest) ----------------------------------------------------------------------

/** What a record contributes to the digest (key, type, expiry and content). */
function recordHash(key: ByteString, r: Rec): [number, number] {
  let content: ByteString;
  switch (r.t) {
    case "string":
      content = r.v as ByteString;
      break;
    case "hash":
    case "set": {
      // Kept up to date by a large summed collection: not read again at each checkpoint.
      const [a, b] = elementSums(r.v as Map<ByteString, ByteString> | Set<ByteString>);
      content = `${a}:${b}`;
      break;
    }
    case "list": {
      // Kept up to date by a large summed list: not read again at each checkpoint.
      const [a, b] = listHash(r.v as Deque);
      content = `${a}:${b}:${(r.v as Deque).length}`;
      break;
    }
    case "stream": {
      // The entries and nodes kept summed by a large stream: not read again at each checkpoint.
      const s = r.v as Stream;
      const [a, b] = s.contentSums();
      content = `${a}:${b}:${s.length}:${s.nodes.length}:${JSON.stringify(encodeStreamHead(s))}`;
      break;
    }
  }
  return hashOf([key, r.t, String(r.exp), content]);
}

/**
 * The bytes hashing `r` into the digest reads, as {@link KeySpace.unhashedBytes} counts them: a
 * string's length. Collections count nothing: a large hash, set, list or stream keeps its sums or
 * hash as it changes (`digest_hash.ts`, `stream.ts`); a small one is cheap to hash at the checkpoint.
 */
function hashCost(r: Rec): number {
  return r.t === "string" ? (r.v as ByteString).length : 0;
}

// ---- expiry index: a binary min-heap of (exp, key), stale entries skipped --------------------

class ExpiryHeap {
  readonly #exp: number[] = [];
  readonly #key: ByteString[] = [];

  get size(): number {
    return this.#exp.length;
  }

  clear(): void {
    this.#exp.length = 0;
    this.#key.length = 0;
  }

  push(exp: number, key: ByteString): void {
    const e = this.#exp;
    const k = this.#key;
    let i = e.length;
    e.push(exp);
    k.push(key);
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.#less(i, p)) break;
      this.#swap(i, p);
      i = p;
    }
  }

  /** Entries with `exp <= t` (stale ones included), visiting only that part of the heap. */
  *atOrBefore(t: number): IterableIterator<[number, ByteString]> {
    const stack = this.#exp.length > 0 ? [0] : [];
    while (stack.length > 0) {
      const i = stack.pop()!;
      if (this.#exp[i] > t) continue;
      yield [this.#exp[i], this.#key[i]];
      for (const c of [2 * i + 1, 2 * i + 2]) if (c < this.#exp.length) stack.push(c);
    }
  }

  peek(): [number, ByteString] | undefined {
    return this.#exp.length === 0 ? undefined : [this.#exp[0], this.#key[0]];
  }

  pop(): void {
    const e = this.#exp;
    const k = this.#key;
    const last = e.length - 1;
    this.#swap(0, last);
    e.pop();
    k.pop();
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < e.length && this.#less(l, m)) m = l;
      if (r < e.length && this.#less(r, m)) m = r;
      if (m === i) break;
      this.#swap(i, m);
      i = m;
    }
  }

  #less(i: number, j: number): boolean {
    const a = this.#exp[i];
    const b = this.#exp[j];
    return a < b || (a === b && this.#key[i] < this.#key[j]);
  }

  #swap(i: number, j: number): void {
    [this.#exp[i], this.#exp[j]] = [this.#exp[j], this.#exp[i]];
    [this.#key[i], this.#key[j]] = [this.#key[j], this.#key[i]];
  }
}

// ---- snapshots: copy on write ----------------------------------------------------------------

/** A record as a snapshot holds it. */
function encodeRecord(key: ByteString, r: Rec): KeyRecord {
  return [key, r.t, r.exp, r.ver, encodeValue(r)];
}

/**
 * The records of a key space as they were at one version, read lazily: its keys and records then
 * (references, not copies), and, for records changed in place since, their encoding as
 * they were (kept by the key space before each such write; see {@link keep}). Reads may repeat and
 * come in any order.
 */
class SnapshotView {
  /** The key space's version when the view was taken: a record with `ver` ≤ it is unchanged. */
  readonly version: number;
  readonly #keys: ByteString[];
  readonly #recs: Rec[];
  /** Records changed in place since the view was taken, encoded as they were. */
  readonly #before = new Map<ByteString, KeyRecord>();

  constructor(version: number, data: Map<ByteString, Rec>) {
    this.version = version;
    // The one copy made when the view is taken: the lists of keys and of record references
    // (16 ms per million keys, against 110-500 ms for encoding every record).
    this.#keys = Array.from(data.keys());
    this.#recs = Array.from(data.values());
  }

  /** Number of keys in the view. */
  get length(): number {
    return this.#keys.length;
  }

  /** Keeps `key`'s record `r`, which a write may be about to change in place, if still needed. */
  keep(key: ByteString, r: Rec): void {
    if (!this.covers(key, r)) this.#before.set(key, encodeRecord(key, r));
  }

  /** True when a change to `key`'s record `r` cannot alter the view (it was kept or is newer). */
  covers(key: ByteString, r: Rec): boolean {
    return r.ver > this.version || this.#before.has(key);
  }

  /** The record of key `i` as it was. */
  row(i: number): KeyRecord {
    const key = this.#keys[i];
    if (this.#before.size !== 0) {
      const kept = this.#before.get(key);
      if (kept !== undefined) return kept;
    }
    const r = this.#recs[i];
    if (r.ver > this.version) {
      invariant(false, `snapshot view at version ${this.version}: ${JSON.stringify(key)} changed`);
    }
    return encodeRecord(key, r);
  }
}

/** The key space. */
export class KeySpace {
  /** Ordered time (ms) of the operation being applied; set by the store before each one. */
  now = 0;
  /** True while a write in the order is applied: lookups may then delete expired keys. */
  writing = false;
  /** Write operations applied so far: the version stamped on what they modify (for WATCH). */
  version = 0;
  /**
   * Told of every key a write creates, changes or deletes, and of every key removed because its
   * time passed (keyspace notifications); not part of the state.
   */
  observer: KeyObserver | undefined;
  /** Keys blocked clients wait on (set by the store, see `waiters.ts`). */
  waitedOn: { has(key: ByteString): boolean } = new Set<ByteString>();
  /** Keys of {@link waitedOn} written since the store last served them. */
  readonly ready = new Set<ByteString>();

  #data = new Map<ByteString, Rec>();
  /** The keys of {@link #data} in SCAN's order (not part of the state). */
  #scan = new ScanIndex();
  /**
   * SCAN indexes of the elements of large hashes and sets, built by an HSCAN or SSCAN page and
   * dropped by the next change to the collection ({@link touch}); not part of the state.
   */
  #itemIndexes = new Map<object, ScanIndex>();
  /** Records of {@link #data} with an expiry time, counted as they change (INFO reads it). */
  #expiring = 0;
  /** The keys of {@link #data} by hash slot, once {@link indexSlots} was called (not state). */
  #slotKeys: SlotKeys | undefined;
  #expiry = new ExpiryHeap();
  /** Deleted keys with the version of their deletion (bounded; see {@link #tombFloor}). */
  #tombs = new Map<ByteString, Tomb>();
  /** Every deletion not in `#tombs` happened at or before this version... */
  #tombFloor = 0;
  /** ...and every expiry not in `#tombs` at or before this time. */
  #tombTimeFloor = 0;
  /** Digest lanes over clean records, and the records whose contribution is not counted. */
  #a = 0;
  #b = 0;
  #dirty = new Set<ByteString>();
  /** About the bytes of the strings in `#dirty` (see `hashCost`; an estimate, never less). */
  #unhashed = 0;
  /**
   * Views of snapshots that may still be read (see {@link SnapshotView}). Held weakly: a view
   * lives as long as its snapshot (until its writer is done) and is forgotten once collected.
   */
  #views: WeakRef<SnapshotView>[] = [];

  /** Number of keys held, expired ones not yet removed included. */
  get size(): number {
    return this.#data.size;
  }

  /** Number of keys whose time has not passed at {@link now} (DBSIZE). */
  liveSize(): number {
    const expired = new Set<ByteString>();
    for (const [exp, key] of this.#expiry.atOrBefore(this.now)) {
      if (this.#data.get(key)?.exp === exp) expired.add(key);
    }
    return this.#data.size - expired.size;
  }

  /** Number of keys with an expiry time (INFO's `expires`), those whose time passed included. */
  get expiring(): number {
    return this.#expiring;
  }

  /** The live record of `key` (an expired key is absent; a write deletes it). */
  get(key: ByteString): Rec | undefined {
    const r = this.#data.get(key);
    // A write may change a record it looked up in place (or move its value to another key, as
    // RENAME does): a snapshot still to be read keeps it. A record that is only replaced or
    // deleted stays as it was, and the snapshot still refers to it.
    if (r !== undefined && this.writing && this.#views.length !== 0) this.#keep(key, r);
    if (r === undefined || r.exp === 0 || r.exp > this.now) return r;
    if (this.writing) this.#remove(key, r);
    return undefined;
  }

  /**
   * The live record of `key` if it has type `t`; `undefined` if absent; `null` if it holds
   * another type (answer WRONGTYPE).
   */
  typed<T extends TypeName>(key: ByteString, t: T): Rec<T> | undefined | null {
    const r = this.get(key);
    if (r === undefined) return undefined;
    return r.t === t ? (r as Rec<T>) : null;
  }

  /** Creates or replaces `key` with a new value (no expiry) and returns its record. */
  put<T extends TypeName>(key: ByteString, t: T, v: Values[T]): Rec<T> {
    this.#assertWriting();
    const old = this.#data.get(key);
    const r: Rec<T> = { t, v, exp: 0, ver: this.version, ha: 0, hb: 0 };
    if (old !== undefined) {
      this.#forget(key, old);
      if (old.exp !== 0) this.#expiring--;
      if (this.#itemIndexes.size !== 0) this.#itemIndexes.delete(old.v as object);
    } else {
      this.#scan.add(key);
      this.#slotKeys?.add(key);
    }
    this.#data.set(key, r);
    this.#dirty.add(key);
    this.#unhashed += hashCost(r);
    this.observer?.changed(key, old === undefined ? "new" : "changed");
    if (this.waitedOn.has(key)) this.ready.add(key);
    return r;
  }

  /**
   * Marks `key` (whose record was changed in place) modified. `wake` false: its blocked clients
   * are not offered it (stream changes that Redis does not signal: XACK, XGROUP SETID, ...).
   */
  touch(key: ByteString, wake = true): void {
    this.#assertWriting();
    const r = this.#data.get(key);
    invariant(r !== undefined, "touch of an absent key");
    // Its elements changed: an index of them for HSCAN/SSCAN no longer holds.
    if (this.#itemIndexes.size !== 0) this.#itemIndexes.delete(r.v as object);
    for (const ref of this.#views) {
      invariant(
        ref.deref()?.covers(key, r) ?? true,
        "a record changed in place that was not looked up with get during the write",
      );
    }
    r.ver = this.version;
    this.#forget(key, r);
    this.#dirty.add(key);
    this.#unhashed += hashCost(r);
    this.observer?.changed(key, "changed");
    if (wake && this.waitedOn.has(key)) this.ready.add(key);
  }

  /** Deletes `key`; true if it existed (expired or not). */
  delete(key: ByteString): boolean {
    this.#assertWriting();
    const r = this.#data.get(key);
    if (r === undefined) return false;
    this.#remove(key, r);
    return true;
  }

  /** Removes `key`'s record, leaving a tomb (an expired key's says when it was gone). */
  #remove(key: ByteString, r: Rec): void {
    this.#assertWriting();
    this.#forget(key, r);
    this.#data.delete(key);
    this.#scan.delete(key);
    this.#slotKeys?.delete(key);
    if (r.exp !== 0) this.#expiring--;
    if (this.#itemIndexes.size !== 0) this.#itemIndexes.delete(r.v as object);
    this.#tombs.delete(key);
    const expired = r.exp !== 0 && r.exp <= this.now;
    this.#tombs.set(key, expired ? { ver: r.ver, exp: r.exp } : { ver: this.version, exp: 0 });
    if (expired) this.observer?.expired(key);
    else this.observer?.changed(key, "gone");
    // Its blocked clients learn it is gone (an XREADGROUP waiter ends, as in Redis).
    if (this.waitedOn.has(key)) this.ready.add(key);
    if (this.#tombs.size > MAX_TOMBSTONES) {
      const [oldest, tomb] = this.#tombs.entries().next().value!;
      this.#tombs.delete(oldest);
      this.#tombFloor = Math.max(this.#tombFloor, tomb.ver);
      this.#tombTimeFloor = Math.max(this.#tombTimeFloor, tomb.exp);
    }
  }

  /** Sets (ms since the epoch) or clears (0) the expiry of an existing key. */
  setExpiry(key: ByteString, exp: number): void {
    const r = this.#data.get(key);
    invariant(r !== undefined, "expiry of an absent key");
    if (r.exp === exp) return;
    if (r.exp === 0) this.#expiring++;
    else if (exp === 0) this.#expiring--;
    r.exp = exp;
    if (exp !== 0) this.#expiry.push(exp, key);
    this.touch(key);
  }

  /**
   * Removes `items` from the hash or set `r` of `key` (HDEL, SREM): marks the key modified if any
   * was there, deletes it if it became empty, and returns how many were removed.
   */
  removeItems(key: ByteString, r: Rec<"hash" | "set">, items: Iterable<ByteString>): number {
    let n = 0;
    for (const item of items) if (r.v.delete(item)) n++;
    if (n > 0) {
      this.touch(key);
      this.dropIfEmpty(key);
    }
    return n;
  }

  /** Deletes `key` if its record is empty (a hash, list or set with no elements left). */
  dropIfEmpty(key: ByteString): void {
    const r = this.#data.get(key);
    if (r === undefined || r.t === "string" || r.t === "stream") return; // streams stay, as in Redis
    const v = r.v as { size?: number; length?: number };
    if ((v.size ?? v.length) === 0) this.delete(key);
  }

  /**
   * Removes every key (FLUSHALL). As in Redis, WATCH sees only the keys that existed as modified:
   * each gets a tomb, up to the tomb limit; beyond it, every watch before now counts as modified.
   */
  clear(): void {
    this.#assertWriting();
    if (this.#data.size + this.#tombs.size <= MAX_TOMBSTONES) {
      for (const [key, r] of [...this.#data]) this.#remove(key, r);
    } else {
      for (const t of this.#tombs.values()) {
        this.#tombTimeFloor = Math.max(this.#tombTimeFloor, t.exp);
      }
      this.#tombs.clear();
      this.#tombFloor = this.version;
      for (const key of this.#data.keys()) if (this.waitedOn.has(key)) this.ready.add(key);
    }
    this.#dropData();
    this.#expiry.clear();
    this.#dirty.clear();
    this.#unhashed = 0;
    this.#a = 0;
    this.#b = 0;
  }

  /**
   * True when `key` was modified (or deleted) after version `since`, watched at time `at`
   * (WATCH). A key whose time passed after `at` counts as modified (Redis's rule); one that had
   * already expired at `at` and was not written since counts as unchanged (it was absent then
   * and is now).
   */
  modifiedSince(key: ByteString, since: number, at = Infinity): boolean {
    const r = this.#data.get(key);
    if (r !== undefined) {
      if (r.ver > since) return true;
      return r.exp !== 0 && r.exp > at && r.exp <= this.now;
    }
    const tomb = this.#tombs.get(key);
    if (tomb === undefined) return this.#tombFloor > since || this.#tombTimeFloor > at;
    return tomb.ver > since || (tomb.exp !== 0 && tomb.exp > at);
  }

  /** Every live key, in the (replica-independent) order of the map. */
  *keys(): IterableIterator<ByteString> {
    for (const [k, r] of this.#data) if (r.exp === 0 || r.exp > this.now) yield k;
  }

  /**
   * Keeps the keys of each hash slot from now on (a sharded group's key space, whose slot moves
   * and CLUSTER COUNTKEYSINSLOT read a slot's keys), `slotOf` giving a key's slot. Called before
   * any key is added.
   */
  indexSlots(slotOf: (key: ByteString) => number): void {
    invariant(this.#data.size === 0, "slots indexed after keys were added");
    this.#slotKeys = new SlotKeys(slotOf);
  }

  /**
   * The live keys of hash slot `slot` in byte order (the same on every replica, whatever the
   * order keys were added in), read from the slot's keys only; undefined unless
   * {@link indexSlots} was called.
   */
  keysInSlot(slot: number): ByteString[] | undefined {
    const index = this.#slotKeys;
    if (index === undefined) return undefined;
    invariant(index.size === this.#data.size, "the slot index holds other keys than the map");
    const keys: ByteString[] = [];
    for (const key of index.keys(slot)) {
      const r = this.#data.get(key);
      if (r !== undefined && (r.exp === 0 || r.exp > this.now)) keys.push(key);
    }
    return keys.sort(byteOrder);
  }

  /**
   * A page of HSCAN or SSCAN over the fields or members of `r`, a hash's or set's record, as
   * {@link scanPage} gives it over all of them. For a collection of at least
   * {@link INDEXED_COLLECTION_ITEMS} elements, the first page builds an index of them, kept until
   * the collection changes, so that the later pages of a scan read a bucket or two each instead
   * of every element (at most {@link MAX_ITEM_INDEXES} such indexes are kept).
   */
  scanItems(r: Rec<"hash" | "set">, cursor: number, count: number): ScanPage<ByteString> {
    const items = r.v;
    const small = items.size < INDEXED_COLLECTION_ITEMS;
    if (small) return scanPage(items.keys(), (k) => k, cursor, count);
    let index = this.#itemIndexes.get(items);
    if (index === undefined) {
      index = new ScanIndex();
      for (const _ of index.build(items.keys(), items.size, Infinity)) { /* at once */ }
      if (this.#itemIndexes.size >= MAX_ITEM_INDEXES) {
        // The one built first goes (a map keeps insertion order).
        this.#itemIndexes.delete(this.#itemIndexes.keys().next().value!);
      }
      this.#itemIndexes.set(items, index);
    }
    invariant(index.size === items.size, "an HSCAN/SSCAN index that missed a change");
    return index.page(cursor, count, () => true);
  }

  /**
   * A live key chosen by `r` (in [0, 1)): the first at or after `r`'s point of SCAN's order, going
   * round once; undefined when there is none (RANDOMKEY). The choice depends on the keys and `r`
   * only, so every replica makes the same one. A key after a long gap in the order is likelier, as
   * in Redis, whose choice follows its hash table's buckets.
   */
  randomKey(r: number): ByteString | undefined {
    const start = Math.min(Math.floor(r * 0x1_0000_0000), 0xffffffff);
    // From the point to the end, then from the beginning up to the point (read already).
    for (const [from, to] of [[start, 0x1_0000_0000], [0, start]]) {
      for (let cursor = from; cursor < to;) {
        const { next, page } = this.scanPage(cursor, 16);
        if (page.length > 0) return page[0];
        if (next === 0) break;
        cursor = next;
      }
    }
    return undefined;
  }

  /**
   * A page of SCAN over the live keys: those at or after `cursor` in SCAN's order (see
   * `scan_index.ts`), about `count` of them, and the next page's cursor (0: done).
   */
  scanPage(cursor: number, count: number): ScanPage<ByteString> {
    invariant(this.#scan.size === this.#data.size, "the SCAN index holds other keys than the map");
    return this.#scan.page(cursor, count, (key) => {
      const r = this.#data.get(key);
      return r !== undefined && (r.exp === 0 || r.exp > this.now);
    });
  }

  /** Every live record. */
  *entries(): IterableIterator<[ByteString, Rec]> {
    for (const e of this.#data) if (e[1].exp === 0 || e[1].exp > this.now) yield e;
  }

  /** The earliest expiry time of a key still held, or null. */
  nextExpiry(): number | null {
    for (;;) {
      const top = this.#expiry.peek();
      if (top === undefined) return null;
      const r = this.#data.get(top[1]);
      if (r !== undefined && r.exp === top[0]) return top[0];
      this.#expiry.pop(); // stale: the key is gone or its expiry changed
    }
  }

  /** Deletes up to `max` keys expired at {@link now}, earliest first; returns them. */
  sweep(max: number): ByteString[] {
    const gone: ByteString[] = [];
    while (gone.length < max) {
      const next = this.nextExpiry();
      if (next === null || next > this.now) break;
      const [, key] = this.#expiry.peek()!;
      this.#expiry.pop();
      this.#remove(key, this.#data.get(key)!);
      gone.push(key);
    }
    return gone;
  }

  /** Hash of the whole key space: equal on replicas that applied the same operations. */
  digest(): string {
    this.#hashDirty();
    return this.#a.toString(16).padStart(8, "0") + this.#b.toString(16).padStart(8, "0");
  }

  /**
   * About the bytes of the strings changed since they were last hashed into the digest, which the
   * next {@link digest} (or {@link hashChangedOver}) reads: an estimate, never less (a string
   * written twice counts twice; collections count nothing, see `hashCost`).
   */
  get unhashedBytes(): number {
    return this.#unhashed;
  }

  /**
   * Hashes the changed records into the digest now if they take more than `bytes`
   * ({@link unhashedBytes}), so that the next {@link digest} does not read them all at once: a
   * checkpoint after a thousand writes of 1 MB values to distinct keys hashed a gigabyte in one
   * go, holding the event loop past the failure timeout. Only between operations (never inside a
   * write): the digest is the same whenever records are hashed, as their contributions add up.
   */
  hashChangedOver(bytes: number): void {
    invariant(!this.writing, "the digest's records hashed during a write");
    if (this.#unhashed > bytes) this.#hashDirty();
  }

  /** Adds the changed records' contributions to the digest. */
  #hashDirty(): void {
    for (const key of this.#dirty) {
      const r = this.#data.get(key);
      if (r !== undefined) this.#count(key, r);
    }
    this.#dirty.clear();
    this.#unhashed = 0;
  }

  /**
   * The whole key space as it is now, JSON-compatible. Its records are read lazily (a
   * {@link SnapshotView}): taking it copies only the lists of keys and record references, and
   * writes after it do not change it.
   */
  snapshot(): KeySpaceSnapshot {
    const view = new SnapshotView(this.version, this.#data);
    if (view.length > 0) this.#views.push(new WeakRef(view));
    return {
      keys: new LazyArray(view.length, (i) => view.row(i)),
      version: this.version,
      tombFloor: this.#tombFloor,
      ...(this.#tombTimeFloor > 0 ? { tombTimeFloor: this.#tombTimeFloor } : {}),
      tombs: [...this.#tombs].map(([k, t]) =>
        t.exp === 0
          ? [k, t.ver] as [ByteString, number]
          : [k, t.ver, t.exp] as [ByteString, number, number]
      ),
    };
  }

  /**
   * The live record of `key` as a migration payload (`CLUSTER MIGRATEKEYS`): the JSON text of
   * `[type, expiry, data]` (data as in a snapshot); undefined when the key is absent.
   */
  exportRecord(key: ByteString): ByteString | undefined {
    const r = this.get(key);
    return r === undefined ? undefined : JSON.stringify([r.t, r.exp, encodeValue(r)]);
  }

  /**
   * Sets `key` (replacing it) from an {@link exportRecord} payload; false when its expiry has
   * passed at {@link now} (then nothing is set).
   */
  importRecord(key: ByteString, payload: DecodedRecord): boolean {
    if (payload.exp !== 0 && payload.exp <= this.now) return false;
    this.delete(key);
    this.put(key, payload.t, payload.v);
    if (payload.exp !== 0) this.setExpiry(key, payload.exp);
    return true;
  }

  /** Replaces everything with a {@link snapshot}. Throws TypeError on a malformed one. */
  restore(s: KeySpaceSnapshot): void {
    for (const _ of this.restoring(s, Infinity)) { /* a slice: nothing to do between them */ }
  }

  /**
   * {@link restore} in slices: pauses after every `slice` keys, so that a caller can let the event
   * loop run while a large state is restored (a million keys take about a second), yielding how
   * many keys are restored so far (all of them while SCAN's index is built, at the end). The key
   * space must not be used until the generator is done; it throws where {@link restore} does.
   */
  *restoring(s: KeySpaceSnapshot, slice: number): Generator<number> {
    if (
      !s || !(Array.isArray(s.keys) || s.keys instanceof LazyArray) || !Array.isArray(s.tombs)
    ) {
      throw new TypeError("malformed key space snapshot");
    }
    this.#dropData();
    this.#expiry.clear();
    this.#tombs.clear();
    this.ready.clear();
    this.#dirty.clear();
    this.#unhashed = 0;
    this.#a = 0;
    this.#b = 0;
    this.version = num(s.version);
    this.#tombFloor = num(s.tombFloor);
    this.#tombTimeFloor = s.tombTimeFloor === undefined ? 0 : num(s.tombTimeFloor);
    for (const [k, ver, exp] of s.tombs) {
      this.#tombs.set(str(k), { ver: num(ver), exp: exp === undefined ? 0 : num(exp) });
    }
    // Each record is hashed into the digest as it is restored: left dirty, the whole state would
    // be hashed at the next checkpoint, in one event-loop turn of a replica that serves (about
    // 0.6 s per million keys).
    let done = 0;
    for (const rec of s.keys) {
      if (!Array.isArray(rec) || rec.length !== 5) throw new TypeError("malformed key record");
      const [k, t, exp, ver, data] = rec;
      const key = str(k);
      const r = { t, v: decodeValue(t, data), exp: num(exp), ver: num(ver), ha: 0, hb: 0 } as Rec;
      // Every write stamps the key space's version on what it changes: a later one is not a state
      // (and would pass for a record changed after a snapshot view was taken).
      if (r.ver > this.version) throw new TypeError("a key's version is after the key space's");
      // One lookup, not has() then set(): a million keys' lookups take about 0.1 s.
      const size = this.#data.size;
      this.#data.set(key, r);
      if (this.#data.size === size) throw new TypeError("a key twice in a key space snapshot");
      this.#slotKeys?.add(key);
      this.#count(key, r);
      if (r.exp !== 0) {
        this.#expiry.push(r.exp, key);
        this.#expiring++;
      }
      if (++done % slice === 0) yield done;
    }
    // SCAN's index is built once every key is in, each bucket at its size.
    for (const _ of this.#scan.build(this.#data.keys(), this.#data.size, slice)) yield done;
  }

  /**
   * Replaces everything with what `other` holds, taking its structures (no copy); `other` must
   * not be used afterwards. What {@link restore} does, for a key space restored before (e.g. by
   * a dry run that checked a snapshot).
   */
  adopt(other: KeySpace): void {
    invariant(
      (this.#slotKeys === undefined) === (other.#slotKeys === undefined),
      "adopting a key space whose keys are indexed by slot differently",
    );
    this.#dropData();
    // The indexes are swapped: `other` is left this one's, emptied by #dropData.
    [this.#scan, other.#scan] = [other.#scan, this.#scan];
    [this.#slotKeys, other.#slotKeys] = [other.#slotKeys, this.#slotKeys];
    [this.#itemIndexes, other.#itemIndexes] = [other.#itemIndexes, this.#itemIndexes];
    this.#data = other.#data;
    this.#expiring = other.#expiring;
    this.#expiry = other.#expiry;
    this.#tombs = other.#tombs;
    this.#tombFloor = other.#tombFloor;
    this.#tombTimeFloor = other.#tombTimeFloor;
    this.#dirty = other.#dirty;
    this.#unhashed = other.#unhashed;
    this.#a = other.#a;
    this.#b = other.#b;
    this.version = other.version;
    this.ready.clear();
    other.#data = new Map();
    other.#expiring = 0;
    other.#expiry = new ExpiryHeap();
    other.#tombs = new Map();
    other.#dirty = new Set();
    other.#unhashed = 0;
  }

  /** Loads a plain string map (the snapshot format of releases before typed values). */
  restoreStrings(map: [ByteString, ByteString][]): void {
    this.restore({
      keys: map.map(([k, v]) => [k, "string", 0, 0, v]),
      version: 0,
      tombFloor: 0,
      tombs: [],
    });
  }

  /** Has every view still read keep `key`'s record `r` (a write may change it in place). */
  #keep(key: ByteString, r: Rec): void {
    let live = 0;
    for (const ref of this.#views) {
      const view = ref.deref();
      if (view === undefined) continue;
      view.keep(key, r);
      this.#views[live++] = ref;
    }
    this.#views.length = live;
  }

  /**
   * Drops every record at once (FLUSHALL, restore): snapshot views no longer need keeping, as
   * nothing can change the records they hold any more.
   */
  #dropData(): void {
    this.#views = [];
    this.#data = new Map();
    this.#scan.clear();
    this.#expiring = 0;
    this.#slotKeys?.clear();
    this.#itemIndexes.clear();
  }

  /** Adds `key`'s record `r` (not counted yet) to the digest, noting its contribution on it. */
  #count(key: ByteString, r: Rec): void {
    const [a, b] = recordHash(key, r);
    r.ha = a | 0;
    r.hb = b | 0;
    this.#a = (this.#a + a) >>> 0;
    this.#b = (this.#b + b) >>> 0;
  }

  /**
   * Takes the counted contribution of `key`, whose record is `r`, out of the digest (before the
   * record changes or goes). `r` is passed, not looked up again: in a map of millions of keys each
   * lookup is a cache miss.
   */
  #forget(key: ByteString, r: Rec): void {
    if (this.#dirty.delete(key)) return; // not counted
    this.#a = (this.#a - r.ha) >>> 0;
    this.#b = (this.#b - r.hb) >>> 0;
  }

  #assertWriting(): void {
    invariant(this.writing, "the key space was modified outside a write");
  }
}

/** A record's value as a snapshot holds it. */
function encodeValue(r: Rec): ByteString | ByteString[] | StreamJson {
  switch (r.t) {
    case "string":
      return r.v as ByteString;
    case "hash": {
      // A loop over forEach: spreading the pairs and flattening them took 180-200 ms for a million
      // fields in a snapshot's copy on write, which a write waits for; this takes 15-20 ms.
      const m = r.v as Map<ByteString, ByteString>;
      const flat = new Array<ByteString>(2 * m.size);
      let i = 0;
      m.forEach((value, field) => {
        flat[i++] = field;
        flat[i++] = value;
      });
      return flat;
    }
    case "list":
      return (r.v as Deque).toArray();
    case "set":
      return [...(r.v as Set<ByteString>)];
    case "stream":
      return encodeStream(r.v as Stream);
  }
}

/** A migration payload, decoded (see {@link decodeRecord}). */
export interface DecodedRecord {
  t: TypeName;
  v: Values[TypeName];
  exp: number;
}

/**
 * Decodes a {@link KeySpace.exportRecord} payload, checking every field (type, a non-negative
 * integer expiry, the value's shape). Throws TypeError when malformed.
 */
export function decodeRecord(payload: ByteString): DecodedRecord {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload);
  } catch {
    throw new TypeError("payload is not JSON");
  }
  if (!Array.isArray(parsed) || parsed.length !== 3) throw new TypeError("malformed payload");
  const [t, exp, data] = parsed;
  const v = decodeValue(t, data);
  if (num(exp) < 0) throw new TypeError("malformed expiry");
  if ((t === "list" || t === "set" || t === "hash") && sizeOf(v) === 0) {
    throw new TypeError("empty collection");
  }
  return { t, v, exp };
}

/** Elements of a decoded collection. */
function sizeOf(v: Values[TypeName]): number {
  if (v instanceof Map || v instanceof Set) return v.size;
  return (v as Deque).length;
}

function decodeValue(t: unknown, data: unknown): Values[TypeName] {
  switch (t) {
    case "string":
      return str(data);
    case "hash": {
      const flat = strs(data);
      if (flat.length % 2 !== 0) throw new TypeError("malformed hash");
      const m = new SummedMap();
      for (let i = 0; i < flat.length; i += 2) m.set(flat[i], flat[i + 1]);
      return m;
    }
    case "list":
      return summedDeque(strs(data));
    case "set":
      return summedSet(strs(data));
    case "stream":
      return decodeStream(data);
    default:
      throw new TypeError(`unknown value type ${String(t)}`);
  }
}
