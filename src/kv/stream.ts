/**
 * The stream value type (Redis 7.0 semantics): entries in ID order, the stream's last ID and
 * counters, and its consumer groups with their pending entries lists (PELs) and consumers.
 *
 * An ID `<ms>-<seq>` is held as one bigint, `ms * 2^64 + seq`, so IDs compare and sort as numbers.
 * Nothing here reads a clock: times (delivery, consumer seen time) are the operation's ordered
 * time, passed in by the commands, so every replica holds the same stream.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";
import { num, str } from "./decode.ts";
import { parseInt64 } from "./commands/args.ts";
import { hashOf, SUMMED_FROM, Sums } from "./digest_hash.ts";
import { Deque } from "./list.ts";

/** 2^64: the seq part's range. */
const SEQ_RANGE = 1n << 64n;
/** The largest ID, `18446744073709551615-18446744073709551615`. */
export const MAX_ID: bigint = SEQ_RANGE * SEQ_RANGE - 1n;
/** The smallest ID, `0-0`. */
export const MIN_ID = 0n;

/** The ID `ms-seq`. */
export function makeId(ms: bigint | number, seq: bigint | number): bigint {
  return BigInt(ms) * SEQ_RANGE + BigInt(seq);
}

/** The ms part of an ID. */
export function idMs(id: bigint): bigint {
  return id / SEQ_RANGE;
}

/** The largest sequence number, 2^64 - 1. */
export const MAX_SEQ: bigint = SEQ_RANGE - 1n;

/** The seq part of an ID. */
export function idSeq(id: bigint): bigint {
  return id % SEQ_RANGE;
}

/** An ID as Redis writes it, `ms-seq`. */
export function formatId(id: bigint): ByteString {
  return `${id / SEQ_RANGE}-${id % SEQ_RANGE}`;
}

const STRTOULL_RE = /^[ \t\n\v\f\r]*([+-]?)([0-9]+)$/;

/**
 * An unsigned 64-bit decimal as Redis's `string2ull` reads it (a plain integer, else `strtoull`:
 * leading spaces, a sign, leading zeros; a negative number wraps around), or null.
 */
function parseU64(s: string): bigint | null {
  const ll = parseInt64(s);
  if (ll !== null) return ll < 0n ? null : ll;
  const m = STRTOULL_RE.exec(s);
  if (m === null) return null;
  const n = BigInt(m[2]);
  if (n >= SEQ_RANGE) return null;
  return m[1] === "-" ? (SEQ_RANGE - n) % SEQ_RANGE : n;
}

/**
 * A stream ID argument as Redis's `streamGenericParseIDOrReply` reads it: `ms-seq`, or `ms`
 * alone (seq `missingSeq`); null when malformed. With `seqStar`, `ms-*` is accepted and reported
 * as `{ ms, auto: true }`. `-` and `+` (the smallest and largest IDs) only when not `strict`.
 */
export function parseId(
  arg: ByteString,
  missingSeq: bigint,
  strict = true,
  seqStar = false,
): { id: bigint } | { ms: bigint; auto: true } | null {
  if (arg.length > 127) return null;
  const nul = arg.indexOf("\0");
  const s = nul < 0 ? arg : arg.slice(0, nul);
  if (s === "-" || s === "+") return strict ? null : { id: s === "-" ? MIN_ID : MAX_ID };
  const dash = s.indexOf("-");
  if (dash < 0) {
    const ms = parseU64(s);
    return ms === null ? null : { id: ms * SEQ_RANGE + missingSeq };
  }
  const ms = parseU64(s.slice(0, dash));
  if (ms === null) return null;
  const tail = s.slice(dash + 1);
  if (seqStar && tail === "*") return { ms, auto: true };
  const seq = parseU64(tail);
  return seq === null ? null : { id: ms * SEQ_RANGE + seq };
}

/** One pending entry of a group: delivered to `consumer`, not yet acknowledged. */
export interface PendingEntry {
  consumer: ByteString;
  /** Ordered time (ms) of its last delivery. */
  time: number;
  count: number;
}

/** A consumer of a group. */
export interface Consumer {
  /** Ordered time (ms) the consumer was last seen (read or claimed). */
  seen: number;
  /** The IDs pending for it (a subset of its group's PEL). */
  pending: Set<bigint>;
}

/** A consumer group. */
export interface Group {
  lastId: bigint;
  /** Entries read (Redis's `entries_read`); -1 when unknown. */
  entriesRead: number;
  /** Pending entries by ID; iterate with {@link pendingIds} for ID order. */
  pel: Map<bigint, PendingEntry>;
  consumers: Map<ByteString, Consumer>;
}

/** The IDs of a group's PEL in ascending order. */
export function pendingIds(g: Group): bigint[] {
  return [...g.pel.keys()].sort(cmpId);
}

/** Compares two IDs (for `Array.prototype.sort`). */
export function cmpId(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Entries per node (Redis's `stream-node-max-entries`, deleted entries included). */
export const NODE_MAX_ENTRIES = 100;

/**
 * One node of Redis's stream layout (a radix-tree node holding a listpack of entries), kept
 * because approximate trimming removes whole nodes only: `live` entries (consecutive in the
 * stream), `total` entries ever put in it (deleted ones included) and the last ID put in it.
 */
export interface StreamNode {
  live: number;
  total: number;
  lastId: bigint;
}

/** An entry's hash in a stream's {@link Stream.contentSums} (`entry` as {@link Stream.entryAt}). */
function entryHash(entry: ByteString[]): [number, number] {
  return hashOf(entry, 1);
}

/** A node's hash in a stream's {@link Stream.contentSums}. */
function nodeHash(n: StreamNode): [number, number] {
  return hashOf([String(n.live), String(n.total), formatId(n.lastId)], 2);
}

/**
 * A stream. Its entries and nodes reach the digest as the lane sums of their hashes (IDs and the
 * nodes' last IDs are ascending, so the sums lose no order); a stream of {@link SUMMED_FROM}
 * entries or more, once asked for them, keeps them as entries are added, deleted and trimmed (see
 * `digest_hash.ts`: a stream of a million entries took 0.45-0.7 s to hash at every checkpoint).
 */
export class Stream {
  /** Entry IDs, ascending. */
  readonly #ids = new Deque<bigint>();
  /**
   * The entries as a snapshot holds them, parallel to {@link #ids}: `[id, field, value, ...]`
   * with the ID as text. Never changed in place, so that a snapshot takes them as they are (a
   * stream of 300,000 entries took 160-175 ms to encode when each ID was formatted then), and
   * removed from the head in O(1) each (trimming spliced arrays: 2.4 ms an XADD with an exact
   * MAXLEN of a million).
   */
  readonly #entries = new Deque<ByteString[]>();
  /** The largest ID ever added (or set by XSETID / XGROUP CREATE MKSTREAM). */
  lastId = 0n;
  /** The largest ID ever deleted (XDEL, trimming). */
  maxDeletedId = 0n;
  /** Entries ever added. */
  entriesAdded = 0;
  /** Consumer groups by name, in creation order. */
  readonly groups = new Map<ByteString, Group>();
  /** The node layout, head first (see {@link StreamNode}); live counts sum to the length. */
  readonly nodes: StreamNode[] = [];
  /** The sums of the entries' and nodes' hashes, once kept (see {@link contentSums}). */
  #sums: Sums | undefined;

  /**
   * The lane sums of the hashes of the entries and nodes: kept from now on if the stream has
   * {@link SUMMED_FROM} entries or more. Entries and nodes change only through {@link append},
   * {@link delete} and {@link trimHead} once they are kept.
   */
  contentSums(): [number, number] {
    let sums = this.#sums;
    if (sums === undefined) {
      sums = new Sums();
      for (const entry of this.#entries) sums.add(entryHash(entry), 1);
      for (const n of this.nodes) sums.add(nodeHash(n), 1);
      if (this.length >= SUMMED_FROM) this.#sums = sums;
    }
    return [sums.a, sums.b];
  }

  /** Number of entries. */
  get length(): number {
    return this.#ids.length;
  }

  /** The first entry's ID, or 0n when empty. */
  get firstId(): bigint {
    return this.length > 0 ? this.#ids.at(0)! : 0n;
  }

  /** The ID of entry `i` (0 ≤ i < length). */
  idAt(i: number): bigint {
    const id = this.#ids.at(i);
    if (id === undefined) throw new RangeError(`no stream entry ${i}`);
    return id;
  }

  /**
   * Entry `i` (0 ≤ i < length) as `[id, field, value, ...]`, the ID as text: the stream's own
   * array, which the caller must not change.
   */
  entryAt(i: number): ByteString[] {
    const entry = this.#entries.at(i);
    if (entry === undefined) throw new RangeError(`no stream entry ${i}`);
    return entry;
  }

  /** The entries as {@link entryAt} gives them, head first (a new array of the same entries). */
  entries(): ByteString[][] {
    return this.#entries.toArray();
  }

  /** The index of the first entry with ID >= `id`. */
  lowerBound(id: bigint): number {
    let lo = 0;
    let hi = this.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#ids.at(mid)! < id) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** The index of the entry `id`, or -1. */
  indexOf(id: bigint): number {
    const i = this.lowerBound(id);
    return i < this.length && this.#ids.at(i) === id ? i : -1;
  }

  /** Appends an entry; `id` must be greater than {@link lastId}. */
  append(id: bigint, fields: ByteString[]): void {
    const entry = [formatId(id)].concat(fields);
    this.#ids.pushBack(id);
    this.#entries.pushBack(entry);
    this.lastId = id;
    this.entriesAdded++;
    let tail = this.nodes[this.nodes.length - 1];
    if (tail === undefined || tail.total >= NODE_MAX_ENTRIES) {
      tail = { live: 0, total: 0, lastId: id };
      this.nodes.push(tail);
    } else {
      this.#sums?.add(nodeHash(tail), -1);
    }
    tail.live++;
    tail.total++;
    tail.lastId = id;
    if (this.#sums !== undefined) {
      this.#sums.add(nodeHash(tail), 1);
      this.#sums.add(entryHash(entry), 1);
    }
  }

  /**
   * Appends an entry as a snapshot holds it, changing nothing else (not the nodes, counters or
   * last ID: the snapshot gives them). For {@link decodeStream}, before any sums are kept.
   */
  restoreEntry(id: bigint, fields: ByteString[]): void {
    if (this.#sums !== undefined) throw new Error("restoreEntry on a stream that keeps its sums");
    this.#ids.pushBack(id);
    this.#entries.pushBack([formatId(id)].concat(fields));
  }

  /** Deletes the entry `id` (a node left without live entries goes); true when it was there. */
  delete(id: bigint): boolean {
    const i = this.indexOf(id);
    if (i < 0) return false;
    const sums = this.#sums;
    sums?.add(entryHash(this.#entries.at(i)!), -1);
    this.#ids.removeAt(i);
    this.#entries.removeAt(i);
    if (id > this.maxDeletedId) this.maxDeletedId = id;
    let before = 0;
    for (let k = 0; k < this.nodes.length; k++) {
      const node = this.nodes[k];
      if (i < before + node.live) {
        sums?.add(nodeHash(node), -1);
        if (--node.live === 0) this.nodes.splice(k, 1);
        else sums?.add(nodeHash(node), 1);
        break;
      }
      before += node.live;
    }
    return true;
  }

  /**
   * Deletes the first `n` entries (trimming: not recorded as deleted, as in Redis). Nodes whose
   * entries all go are removed; a partly trimmed node keeps its place.
   */
  trimHead(n: number): void {
    if (n <= 0) return;
    const sums = this.#sums;
    if (sums !== undefined) {
      for (let i = 0; i < n; i++) sums.add(entryHash(this.#entries.at(i)!), -1);
    }
    for (let i = 0; i < n; i++) {
      this.#ids.popFront();
      this.#entries.popFront();
    }
    let rest = n;
    while (rest > 0) {
      const head = this.nodes[0];
      sums?.add(nodeHash(head), -1);
      if (head.live <= rest) {
        rest -= head.live;
        this.nodes.shift();
      } else {
        head.live -= rest;
        rest = 0;
        sums?.add(nodeHash(head), 1);
      }
    }
  }

  /** Indexes of the entries in [start, end], ascending. */
  range(start: bigint, end: bigint): [number, number] {
    if (start > end) return [0, 0];
    const from = this.lowerBound(start);
    const to = end === MAX_ID ? this.length : this.lowerBound(end + 1n);
    return [from, Math.max(from, to)];
  }

  /**
   * Redis's `streamEstimateDistanceFromFirstEverEntry`: the number of entries added up to `id`,
   * or -1 when it cannot be known (entries were deleted in the way).
   */
  entriesUpTo(id: bigint): number {
    if (this.entriesAdded === 0) return 0;
    if (this.length === 0 && id <= this.lastId) return this.entriesAdded;
    if (id === this.lastId) return this.entriesAdded;
    if (id > this.lastId) return -1;
    if (this.maxDeletedId === 0n || this.maxDeletedId < this.firstId) {
      if (id < this.firstId) return this.entriesAdded - this.length;
      if (id === this.firstId) return this.entriesAdded - this.length + 1;
    }
    return -1;
  }

  /** A group's lag (Redis 7.0's `XINFO GROUPS` lag), or null when unknown. */
  lag(g: Group): number | null {
    if (this.entriesAdded === 0) return 0;
    if (g.entriesRead >= 0 && !this.deletedFrom(g.lastId)) {
      return this.entriesAdded - g.entriesRead;
    }
    const read = this.entriesUpTo(g.lastId);
    return read < 0 ? null : this.entriesAdded - read;
  }

  /** Redis's `streamRangeHasTombstones(s, id, NULL)`: an entry at or after `id` was deleted. */
  deletedFrom(id: bigint): boolean {
    if (this.length === 0 || this.maxDeletedId === 0n) return false;
    return this.maxDeletedId >= this.firstId && this.maxDeletedId >= id;
  }
}

/** A new, empty group. */
export function newGroup(lastId: bigint, entriesRead: number): Group {
  return { lastId, entriesRead, pel: new Map(), consumers: new Map() };
}

// ---- snapshot form -------------------------------------------------------------------------

/** A group in a snapshot: `[name, lastId, entriesRead, pel, consumers]`. */
type GroupJson = [
  ByteString,
  ByteString,
  number,
  [ByteString, ByteString, number, number][],
  [ByteString, number][],
];

/** A stream in a snapshot (JSON-compatible; IDs as `ms-seq` text). */
export interface StreamJson {
  last: ByteString;
  maxDel: ByteString;
  added: number;
  /** `[id, f1, v1, f2, v2, ...]` per entry. */
  entries: ByteString[][];
  groups: GroupJson[];
  /** The node layout: `[live, total, lastId]` per node. */
  nodes: [number, number, ByteString][];
}

/** The snapshot form of `s` (equal streams encode equally). */
export function encodeStream(s: Stream): StreamJson {
  return {
    ...encodeStreamHead(s),
    entries: s.entries(),
    nodes: s.nodes.map((n) => [n.live, n.total, formatId(n.lastId)]),
  };
}

/**
 * The snapshot form of `s` but its entries and nodes: with {@link Stream.contentSums}, what the
 * digest hashes of a stream.
 */
export function encodeStreamHead(s: Stream): Omit<StreamJson, "entries" | "nodes"> {
  const groups: GroupJson[] = [];
  for (const [name, g] of s.groups) {
    const pel: [ByteString, ByteString, number, number][] = pendingIds(g).map((id) => {
      const p = g.pel.get(id)!;
      return [formatId(id), p.consumer, p.time, p.count];
    });
    const consumers: [ByteString, number][] = [...g.consumers].map(([n, c]) => [n, c.seen]);
    groups.push([name, formatId(g.lastId), g.entriesRead, pel, consumers]);
  }
  return {
    last: formatId(s.lastId),
    maxDel: formatId(s.maxDeletedId),
    added: s.entriesAdded,
    groups,
  };
}

function idOf(v: unknown): bigint {
  const p = typeof v === "string" ? parseId(v, 0n) : null;
  if (p === null || !("id" in p)) throw new TypeError("malformed stream ID");
  return p.id;
}

/** A stream from its {@link encodeStream} form; throws TypeError when malformed. */
export function decodeStream(data: unknown): Stream {
  const j = data as StreamJson;
  if (!j || typeof j !== "object" || !Array.isArray(j.entries) || !Array.isArray(j.groups)) {
    throw new TypeError("malformed stream");
  }
  const s = new Stream();
  for (const e of j.entries) {
    if (!Array.isArray(e) || e.length % 2 !== 1) throw new TypeError("malformed stream entry");
    const id = idOf(e[0]);
    if (s.length > 0 && id <= s.idAt(s.length - 1)) {
      throw new TypeError("stream entries out of order");
    }
    s.restoreEntry(id, e.slice(1).map(str));
  }
  if (!Array.isArray(j.nodes)) throw new TypeError("malformed stream nodes");
  let live = 0;
  for (const n of j.nodes) {
    if (!Array.isArray(n) || n.length !== 3) throw new TypeError("malformed stream node");
    const node = { live: num(n[0]), total: num(n[1]), lastId: idOf(n[2]) };
    if (node.live < 1 || node.total < node.live) throw new TypeError("malformed stream node");
    s.nodes.push(node);
    live += node.live;
  }
  if (live !== s.length) throw new TypeError("stream nodes do not cover the entries");
  s.lastId = idOf(j.last);
  s.maxDeletedId = idOf(j.maxDel);
  s.entriesAdded = num(j.added);
  for (const g of j.groups) {
    if (!Array.isArray(g) || g.length !== 5 || !Array.isArray(g[3]) || !Array.isArray(g[4])) {
      throw new TypeError("malformed stream group");
    }
    const group = newGroup(idOf(g[1]), num(g[2]));
    for (const c of g[4]) {
      if (!Array.isArray(c)) throw new TypeError("malformed stream consumer");
      group.consumers.set(str(c[0]), { seen: num(c[1]), pending: new Set() });
    }
    for (const p of g[3]) {
      if (!Array.isArray(p)) throw new TypeError("malformed pending entry");
      const id = idOf(p[0]);
      const consumer = group.consumers.get(str(p[1]));
      if (consumer === undefined) throw new TypeError("pending entry of an unknown consumer");
      if (group.pel.has(id)) throw new TypeError("pending entry listed twice");
      group.pel.set(id, { consumer: p[1], time: num(p[2]), count: num(p[3]) });
      consumer.pending.add(id);
    }
    s.groups.set(str(g[0]), group);
  }
  return s;
}
