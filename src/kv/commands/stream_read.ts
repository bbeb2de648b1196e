/**
 * XREAD and XREADGROUP (Redis 7.0 semantics, replies and error texts), served at once and, with
 * `BLOCK`, as waiters of the replicated waiter queue (`../waiters.ts`), like BLPOP.
 *
 * Served at once (no BLOCK, inside MULTI, through REQ, or when something is there), a read
 * returns every stream that has entries for it; XREADGROUP changes the group's pending entries
 * list (PEL) and last delivered ID, so it is a write. With `BLOCK` outside a transaction, the
 * client's replica sends `__BLOCK <waiter> XREAD ...`: when nothing is there, a waiter is
 * registered at that place in the order, its `$` IDs fixed to the streams' last IDs there
 * ({@link BlockSpec.resolve}). Then, as in Redis 7.0:
 *
 * - An XADD (or another stream written under the key) offers the new entries to the key's
 *   waiters in registration order: every XREAD waiter whose ID is below the stream's last ID gets
 *   the entries after its ID (a read consumes nothing); an XREADGROUP waiter gets the entries
 *   after its group's last delivered ID, which it moves into its consumer's PEL there, so the
 *   next waiter of the same group gets nothing of them. The reply holds that one stream only,
 *   at most COUNT entries (1000 without COUNT, Redis's XREAD_BLOCKED_DEFAULT_COUNT).
 * - An XREADGROUP waiter whose stream is deleted or overwritten ends with
 *   `-UNBLOCKED the stream key no longer exists`, one whose group was destroyed with
 *   `-NOGROUP the consumer group this client was blocked on no longer exists`.
 * - XACK, XCLAIM, XGROUP SETID and the like do not wake a waiter (Redis does not signal them).
 *
 * Timeouts (BLOCK 0 is forever) and closed connections are the waiter queue's ordered finish and
 * cancel; a timeout answers `*-1`. A hand-off is never taken back: what an XREADGROUP waiter was
 * handed stays in its consumer's PEL even when its client goes away (read it with ID 0).
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { KeySpace } from "../keyspace.ts";
import type { ApplyContext } from "../registry.ts";
import { E, err, NIL_ARRAY } from "../reply.ts";
import { cmpId, formatId, type Group, MAX_ID, type Stream } from "../stream.ts";
import type { BlockSpec, Handed } from "../waiters.ts";
import { is, parseInt64 } from "./args.ts";
import {
  consumerOf,
  countOf,
  cstr,
  deliver,
  entryReply,
  int64,
  isErr,
  rangeReply,
  stream,
  strictId,
} from "./stream_common.ts";

/** Entries handed to a blocked read without COUNT (Redis's XREAD_BLOCKED_DEFAULT_COUNT). */
export const BLOCKED_DEFAULT_COUNT = 1000;

/** Redis's error for a blocked XREADGROUP whose stream was deleted. */
export const UNBLOCKED_DELETED = "UNBLOCKED the stream key no longer exists";
/** Redis's error for a blocked XREADGROUP whose group was destroyed. */
export const NOGROUP_DESTROYED =
  "NOGROUP the consumer group this client was blocked on no longer exists";

/** The options of an XREAD/XREADGROUP line (nothing looked up in the key space). */
interface ReadArgs {
  /** COUNT (0: none). */
  count: number;
  /** BLOCK's timeout in ms (0: forever), undefined without BLOCK. */
  block: number | undefined;
  /** Index of the first key; `n` keys, then their `n` IDs. */
  streamsAt: number;
  n: number;
  groupName: ByteString | undefined;
  consumerName: ByteString | undefined;
  noAck: boolean;
}

/** Parses the options of XREAD (`group` false) or XREADGROUP, with Redis's errors in its order. */
function parseRead(group: boolean, argv: readonly ByteString[]): ReadArgs | { err: string } {
  let count = 0;
  let block: number | undefined;
  let streamsAt = 0;
  let groupName: ByteString | undefined;
  let consumerName: ByteString | undefined;
  let noAck = false;
  for (let i = 1; i < argv.length; i++) {
    const more = argv.length - i - 1;
    const o = argv[i];
    if (is(o, "block") && more > 0) {
      const t = parseInt64(argv[++i]);
      if (t === null) return err("ERR timeout is not an integer or out of range");
      if (t < 0n) return err("ERR timeout is negative");
      // Beyond what a clock can reach: forever.
      block = t > BigInt(Number.MAX_SAFE_INTEGER) ? 0 : Number(t);
    } else if (is(o, "count") && more > 0) {
      const n = int64(argv[++i]);
      if (isErr(n)) return n;
      count = countOf(n);
    } else if (is(o, "streams") && more > 0) {
      streamsAt = i + 1;
      if ((argv.length - streamsAt) % 2 !== 0) {
        return err(
          "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be " +
            "specified.",
        );
      }
      break;
    } else if (is(o, "group") && more >= 2) {
      if (!group) {
        return err(
          "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead.",
        );
      }
      groupName = argv[i + 1];
      consumerName = argv[i + 2];
      i += 2;
    } else if (is(o, "noack")) {
      if (!group) {
        return err(
          "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead.",
        );
      }
      noAck = true;
    } else return E.SYNTAX;
  }
  if (streamsAt === 0) return E.SYNTAX;
  if (group && groupName === undefined) return err("ERR Missing GROUP option for XREADGROUP");
  const n = (argv.length - streamsAt) / 2;
  return { count, block, streamsAt, n, groupName, consumerName, noAck };
}

/**
 * Hands the entries `[from, ...)` of `s` (at most `count`, 0: all) to consumer `name` of `g`:
 * the group's last delivered ID and read counter move past them, and each goes into the PEL
 * (unless `noAck`). Returns the end of the range.
 */
function deliverNew(
  ks: KeySpace,
  s: Stream,
  g: Group,
  name: ByteString,
  from: number,
  count: number,
  noAck: boolean,
): number {
  const c = consumerOf(g, name, ks.now);
  const to = count === 0 ? s.length : Math.min(s.length, from + count);
  for (let i = from; i < to; i++) {
    const eid = s.idAt(i);
    if (g.entriesRead >= 0 && !s.deletedFrom(eid)) g.entriesRead++;
    else if (s.entriesAdded > 0) g.entriesRead = s.entriesUpTo(eid);
    g.lastId = eid;
    if (!noAck) deliver(g, name, c, eid, ks.now);
  }
  return to;
}

/** XREAD (`group` false) or XREADGROUP served now: a nil array when nothing is there. */
function readNow(group: boolean, ks: KeySpace, argv: readonly ByteString[]): Reply {
  const p = parseRead(group, argv);
  if (isErr(p)) return p;
  const { streamsAt, n, groupName, consumerName, count } = p;
  const ids: (bigint | ">")[] = [];
  const groups: Group[] = [];
  for (let k = 0; k < n; k++) {
    const key = argv[streamsAt + k];
    const arg = argv[streamsAt + n + k];
    const r = stream(ks, key);
    if (r === null) return E.WRONGTYPE;
    if (groupName !== undefined) {
      const g = r?.v.groups.get(groupName);
      if (g === undefined) {
        return err(
          `NOGROUP No such key '${cstr(key)}' or consumer group '${
            cstr(groupName)
          }' in XREADGROUP with GROUP option`,
        );
      }
      groups.push(g);
    }
    if (arg === "$") {
      if (group) {
        return err(
          "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the " +
            "history of this consumer by specifying a proper ID, or use the > ID to get new " +
            "messages. The $ ID would just return an empty result set.",
        );
      }
      ids.push(r === undefined ? 0n : r.v.lastId);
    } else if (arg === ">") {
      if (!group) {
        return err(
          "ERR The > ID can be specified only when calling XREADGROUP using the GROUP " +
            "<group> <consumer> option.",
        );
      }
      ids.push(">");
    } else {
      const id = strictId(arg);
      if (isErr(id)) return id;
      // Redis encodes `>` as the largest ID, so that ID given explicitly means `>` too.
      ids.push(group && id === MAX_ID ? ">" : id);
    }
  }
  const out: Reply[] = [];
  for (let k = 0; k < n; k++) {
    const key = argv[streamsAt + k];
    const r = stream(ks, key);
    if (r === undefined || r === null) continue;
    const s = r.v;
    const id = ids[k];
    if (!group) {
      if (s.length === 0 || s.idAt(s.length - 1) <= (id as bigint)) continue;
      const from = s.lowerBound((id as bigint) + 1n);
      out.push([key, rangeReply(s, from, s.length, count, false)]);
      continue;
    }
    const g = groups[k];
    if (id === ">") {
      if (s.length === 0 || s.idAt(s.length - 1) <= g.lastId) continue;
      const from = s.lowerBound(g.lastId + 1n);
      const to = deliverNew(ks, s, g, consumerName!, from, count, p.noAck);
      out.push([key, rangeReply(s, from, to, 0, false)]);
    } else {
      const c = consumerOf(g, consumerName!, ks.now);
      const entries: Reply[] = [];
      for (const pid of [...c.pending].sort(cmpId)) {
        if (pid <= id) continue;
        if (count !== 0 && entries.length >= count) break;
        const i = s.indexOf(pid);
        if (i < 0) {
          entries.push([formatId(pid), NIL_ARRAY]);
          continue;
        }
        entries.push(entryReply(s, i));
        const pe = g.pel.get(pid)!;
        pe.time = ks.now;
        pe.count++;
      }
      out.push([key, entries]);
    }
    // The PEL or consumers changed; no blocked reader is woken by that (as in Redis).
    ks.touch(key, false);
  }
  return out.length === 0 ? NIL_ARRAY : out;
}

/** XREAD's and XREADGROUP's `apply`: served at once (BLOCK is the waiter queue's business). */
export function xreadGeneric(group: boolean) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => readNow(group, ks, argv);
}

/** The keys of an XREAD/XREADGROUP line: the first half of what follows STREAMS. */
export function streamKeys(argv: readonly ByteString[]): ByteString[] {
  for (let i = 1; i < argv.length; i++) {
    if (is(argv[i], "streams")) {
      const rest = argv.length - i - 1;
      return argv.slice(i + 1, i + 1 + Math.floor(rest / 2));
    }
    if (is(argv[i], "group")) i += 2;
    else if (is(argv[i], "count") || is(argv[i], "block")) i++;
  }
  return [];
}

/** True when the options of an XREAD/XREADGROUP line (before STREAMS) include `BLOCK <ms>`. */
export function hasBlock(argv: readonly ByteString[]): boolean {
  for (let i = 1; i < argv.length; i++) {
    const more = argv.length - i - 1;
    if (is(argv[i], "block")) return more > 0;
    if (is(argv[i], "count")) i++;
    else if (is(argv[i], "group")) i += 2;
    else if (!is(argv[i], "noack")) return false; // STREAMS, or a syntax error
  }
  return false;
}

/** Entries `[from, to)` of `s` flattened for a hand-off: `id, n, field, value, ...` each. */
function encodeEntries(s: Stream, from: number, to: number): ByteString[] {
  const out: ByteString[] = [];
  for (let i = from; i < to; i++) {
    const entry = s.entryAt(i);
    out.push(entry[0], String(entry.length - 1));
    for (let k = 1; k < entry.length; k++) out.push(entry[k]);
  }
  return out;
}

/** The entries of a hand-off as Redis replies them (see {@link encodeEntries}). */
function decodeEntries(items: readonly ByteString[]): Reply[] {
  const out: Reply[] = [];
  for (let i = 0; i + 1 < items.length;) {
    const n = Number(items[i + 1]);
    out.push([items[i], items.slice(i + 2, i + 2 + n)]);
    i += 2 + n;
  }
  return out;
}

/** The handed entries of `key`, or the error a waiter ends with. */
function handed(key: ByteString, items: ByteString[], error?: string): Handed {
  const h: Handed = { key, items, head: false };
  if (error !== undefined) h.err = error;
  return h;
}

/** XREAD's waiting line: each `$` becomes its stream's last ID now (`0-0` when absent). */
function resolveDollars(ks: KeySpace, argv: readonly ByteString[]): ByteString[] {
  const out = [...argv];
  const p = parseRead(false, argv);
  if (isErr(p)) return out;
  for (let k = 0; k < p.n; k++) {
    if (out[p.streamsAt + p.n + k] !== "$") continue;
    const r = stream(ks, argv[p.streamsAt + k]);
    if (r !== null) out[p.streamsAt + p.n + k] = formatId(r?.v.lastId ?? 0n);
  }
  return out;
}

/** A blocked XREAD on `key`: the entries after its ID, when the stream's last ID is past it. */
function takeRead(ks: KeySpace, argv: readonly ByteString[], key: ByteString): Handed | undefined {
  const p = parseRead(false, argv);
  if (isErr(p)) return undefined;
  const k = argv.indexOf(key, p.streamsAt) - p.streamsAt;
  const gt = strictId(argv[p.streamsAt + p.n + k]);
  const s = stream(ks, key)?.v;
  if (s === undefined || isErr(gt) || s.lastId <= gt) return undefined;
  const from = s.lowerBound(gt + 1n);
  const to = Math.min(s.length, from + (p.count || BLOCKED_DEFAULT_COUNT));
  return handed(key, encodeEntries(s, from, to));
}

/**
 * A blocked XREADGROUP on `key`: the entries after its group's last delivered ID, moved into its
 * consumer's PEL here; an error when the stream or the group is gone.
 */
function takeGroup(ks: KeySpace, argv: readonly ByteString[], key: ByteString): Handed | undefined {
  const p = parseRead(true, argv);
  if (isErr(p)) return undefined;
  const r = stream(ks, key);
  if (r === undefined || r === null) return handed(key, [], UNBLOCKED_DELETED);
  const s = r.v;
  const g = s.groups.get(p.groupName!);
  if (g === undefined) return handed(key, [], NOGROUP_DESTROYED);
  if (s.lastId <= g.lastId) return undefined;
  const from = s.lowerBound(g.lastId + 1n);
  const count = p.count || BLOCKED_DEFAULT_COUNT;
  const to = deliverNew(ks, s, g, p.consumerName!, from, count, p.noAck);
  ks.touch(key, false);
  return handed(key, encodeEntries(s, from, to));
}

/** The waiter behaviour of XREAD (`group` false) or XREADGROUP with BLOCK. */
function readBlockSpec(group: boolean): BlockSpec {
  return {
    blocks: hasBlock,
    parse(argv) {
      const p = parseRead(group, argv);
      if (isErr(p)) return p;
      return { keys: argv.slice(p.streamsAt, p.streamsAt + p.n), timeoutMs: p.block ?? 0 };
    },
    resolve: group ? undefined : resolveDollars,
    serve(ks, argv) {
      const r = readNow(group, ks, argv);
      return r !== null && typeof r === "object" && "nil" in r ? undefined : r;
    },
    take: group ? takeGroup : takeRead,
    finish: (_ks, _argv, h) => h.err !== undefined ? err(h.err) : [[h.key, decodeEntries(h.items)]],
    // Nothing to give back: a read took nothing, and XREADGROUP's entries stay in its PEL.
    undo: () => {},
  };
}

/** XREAD BLOCK as a waiter. */
export const XREAD_BLOCK: BlockSpec = readBlockSpec(false);
/** XREADGROUP BLOCK as a waiter. */
export const XREADGROUP_BLOCK: BlockSpec = readBlockSpec(true);
