/**
 * List commands (Redis 7.0 semantics, replies and error texts): pushes and pops at both ends,
 * ranges and indexes, LREM/LTRIM/LSET/LINSERT, LMOVE/RPOPLPUSH, LPOS and the non-blocking LMPOP.
 * A list that becomes empty is deleted, as Redis does. The blocking pops are in `blocking.ts`.
 *
 * Arguments are checked in the order Redis checks them, so a command with several problems
 * answers with the same error as Redis (e.g. LRANGE parses its indexes before looking at the key,
 * LINDEX looks at the key first).
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { KeySpace, Rec } from "../keyspace.ts";
import type { ApplyContext, CommandSpec } from "../registry.ts";
import { SummedDeque } from "../digest_hash.ts";
import { E, err, NIL_ARRAY, OK } from "../reply.ts";
import { INT64_MIN, is, parseInt64, parseSafeInt } from "./args.ts";

/** The list at `key`: its record, undefined when absent, null when of another type. */
function list(ks: KeySpace, key: ByteString): Rec<"list"> | undefined | null {
  return ks.typed(key, "list");
}

/** LEFT or RIGHT (any case) as true for the head, false for the tail; null otherwise. */
export function end(arg: ByteString): boolean | null {
  if (is(arg, "left")) return true;
  if (is(arg, "right")) return false;
  return null;
}

/** Redis's getRangeLongFromObjectOrReply(1..LONG_MAX): the same error text for both failures. */
function positive(arg: ByteString, message: string, min: number): number | Reply {
  const n = parseSafeInt(arg);
  return n === null || n < min ? err(message) : n;
}

/** Pushes `values` onto `key` at one end, creating the list unless `onlyExisting`. */
function pushGeneric(head: boolean, onlyExisting: boolean) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => {
    const key = argv[1];
    let r = list(ks, key);
    if (r === null) return E.WRONGTYPE;
    if (r === undefined) {
      if (onlyExisting) return 0;
      r = ks.put(key, "list", new SummedDeque());
    }
    const d = r.v;
    for (let i = 2; i < argv.length; i++) {
      if (head) d.pushFront(argv[i]);
      else d.pushBack(argv[i]);
    }
    ks.touch(key);
    return d.length;
  };
}

/** Pops up to `count` elements from one end of `r` (deleting the key if emptied). */
export function popN(ks: KeySpace, key: ByteString, r: Rec<"list">, head: boolean, count: number) {
  const d = r.v;
  const n = Math.min(count, d.length);
  const out: ByteString[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = (head ? d.popFront() : d.popBack())!;
  ks.touch(key);
  ks.dropIfEmpty(key);
  return out;
}

function popGeneric(head: boolean, name: string) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => {
    if (argv.length > 3) return E.ARITY(name);
    const hasCount = argv.length === 3;
    let count = 1;
    if (hasCount) {
      const c = positive(argv[2], "ERR value is out of range, must be positive", 0);
      if (typeof c !== "number") return c;
      count = c;
    }
    const key = argv[1];
    const r = list(ks, key);
    if (r === undefined) return hasCount ? NIL_ARRAY : null;
    if (r === null) return E.WRONGTYPE;
    if (hasCount && count === 0) return [];
    const out = popN(ks, key, r, head, count);
    return hasCount ? out : out[0];
  };
}

function llen({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = list(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r === undefined ? 0 : r.v.length;
}

function lrange({ ks }: ApplyContext, argv: ByteString[]): Reply {
  let start = parseSafeInt(argv[2]);
  let stop = parseSafeInt(argv[3]);
  if (start === null || stop === null) return E.NOT_INT;
  const r = list(ks, argv[1]);
  if (r === undefined) return [];
  if (r === null) return E.WRONGTYPE;
  const len = r.v.length;
  if (start < 0) start += len;
  if (stop < 0) stop += len;
  if (start < 0) start = 0;
  if (start > stop || start >= len) return [];
  if (stop >= len) stop = len - 1;
  return r.v.slice(start, stop + 1);
}

function lindex({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = list(ks, argv[1]);
  if (r === undefined) return null;
  if (r === null) return E.WRONGTYPE;
  let i = parseSafeInt(argv[2]);
  if (i === null) return E.NOT_INT;
  if (i < 0) i += r.v.length;
  return r.v.at(i) ?? null;
}

function lset({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const key = argv[1];
  const r = list(ks, key);
  if (r === undefined) return E.NO_KEY;
  if (r === null) return E.WRONGTYPE;
  let i = parseSafeInt(argv[2]);
  if (i === null) return E.NOT_INT;
  if (i < 0) i += r.v.length;
  if (!r.v.set(i, argv[3])) return E.INDEX;
  ks.touch(key);
  return OK;
}

function lrem({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const count = parseSafeInt(argv[2]);
  if (count === null) return E.NOT_INT;
  const key = argv[1];
  const r = list(ks, key);
  if (r === undefined) return 0;
  if (r === null) return E.WRONGTYPE;
  const removed = r.v.removeValue(argv[3], Math.abs(count), count < 0);
  if (removed > 0) {
    ks.touch(key);
    ks.dropIfEmpty(key);
  }
  return removed;
}

function ltrim({ ks }: ApplyContext, argv: ByteString[]): Reply {
  let start = parseSafeInt(argv[2]);
  let stop = parseSafeInt(argv[3]);
  if (start === null || stop === null) return E.NOT_INT;
  const key = argv[1];
  const r = list(ks, key);
  if (r === undefined) return OK;
  if (r === null) return E.WRONGTYPE;
  const len = r.v.length;
  if (start < 0) start += len;
  if (stop < 0) stop += len;
  if (start < 0) start = 0;
  if (start > stop || start >= len) r.v.keep(0, 0);
  else r.v.keep(start, Math.min(stop, len - 1) + 1);
  // Redis signals the key modified even when nothing was trimmed.
  ks.touch(key);
  ks.dropIfEmpty(key);
  return OK;
}

function linsert({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const [, key, where, pivot, value] = argv;
  let after: boolean;
  if (is(where, "after")) after = true;
  else if (is(where, "before")) after = false;
  else return E.SYNTAX;
  const r = list(ks, key);
  if (r === undefined) return 0;
  if (r === null) return E.WRONGTYPE;
  const i = r.v.indexOf(pivot);
  if (i < 0) return -1;
  r.v.insert(after ? i + 1 : i, value);
  ks.touch(key);
  return r.v.length;
}

/** Moves one element from an end of `src` to an end of `dst` (Redis's lmoveGenericCommand). */
function move(ks: KeySpace, src: ByteString, dst: ByteString, fromHead: boolean, toHead: boolean) {
  const s = list(ks, src);
  if (s === undefined) return null;
  if (s === null) return E.WRONGTYPE;
  if (s.v.length === 0) return null;
  const d = list(ks, dst);
  if (d === null) return E.WRONGTYPE;
  const value = (fromHead ? s.v.popFront() : s.v.popBack())!;
  const target = d ?? ks.put(dst, "list", new SummedDeque());
  if (toHead) target.v.pushFront(value);
  else target.v.pushBack(value);
  ks.touch(dst);
  if (src !== dst) {
    ks.touch(src);
    ks.dropIfEmpty(src);
  }
  return value;
}

function lmove({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const from = end(argv[3]);
  if (from === null) return E.SYNTAX;
  const to = end(argv[4]);
  if (to === null) return E.SYNTAX;
  return move(ks, argv[1], argv[2], from, to);
}

function rpoplpush({ ks }: ApplyContext, argv: ByteString[]): Reply {
  return move(ks, argv[1], argv[2], false, true);
}

function lpos({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const element = argv[2];
  let rank = 1n;
  let count = -1;
  let maxlen = 0;
  for (let j = 3; j < argv.length; j++) {
    const opt = argv[j];
    const more = j + 1 < argv.length;
    if (is(opt, "rank") && more) {
      const n = parseInt64(argv[++j]);
      if (n === null) return E.NOT_INT;
      if (n === 0n) {
        return err(
          "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... " +
            "or use negative to start from the end of the list",
        );
      }
      rank = n;
    } else if (is(opt, "count") && more) {
      const c = positive(argv[++j], "ERR COUNT can't be negative", 0);
      if (typeof c !== "number") return c;
      count = c;
    } else if (is(opt, "maxlen") && more) {
      const m = positive(argv[++j], "ERR MAXLEN can't be negative", 0);
      if (typeof m !== "number") return m;
      maxlen = m;
    } else {
      return E.SYNTAX;
    }
  }
  // Redis 7.0 negates a negative rank in 64 bits: RANK -2^63 stays negative, so every match
  // counts from the first one and COUNT never stops the scan (its overflowed test stays false).
  const fromTail = rank < 0n;
  const wrapped = rank === INT64_MIN;
  const want = wrapped ? 1 : Number(fromTail ? -rank : rank);
  const r = list(ks, argv[1]);
  if (r === undefined) return count !== -1 ? [] : null;
  if (r === null) return E.WRONGTYPE;
  const d = r.v;
  const len = d.length;
  const out: number[] = [];
  let matches = 0;
  const scan = maxlen === 0 ? len : Math.min(maxlen, len);
  for (let k = 0; k < scan; k++) {
    const index = fromTail ? len - 1 - k : k;
    if (d.at(index) !== element) continue;
    matches++;
    if (matches < want) continue;
    if (count === -1) return index;
    out.push(index);
    if (count !== 0 && !wrapped && matches - want + 1 >= count) break;
  }
  return count === -1 ? null : out;
}

/**
 * The arguments of LMPOP (`numkeysIdx` 1) and BLMPOP (2) from `numkeys` on, checked in Redis's
 * order: the keys, the end, and the count (default 1); or the error reply.
 */
export function parseMpop(
  argv: readonly ByteString[],
  numkeysIdx: number,
): { keys: ByteString[]; head: boolean; count: number } | { err: string } {
  const numkeys = positive(argv[numkeysIdx], "ERR numkeys should be greater than 0", 1);
  if (typeof numkeys !== "number") return numkeys as { err: string };
  const whereIdx = numkeysIdx + 1 + numkeys;
  if (whereIdx >= argv.length) return E.SYNTAX;
  const head = end(argv[whereIdx]);
  if (head === null) return E.SYNTAX;
  let count = -1;
  for (let j = whereIdx + 1; j < argv.length; j++) {
    if (count === -1 && is(argv[j], "count") && j + 1 < argv.length) {
      const c = positive(argv[++j], "ERR count should be greater than 0", 1);
      if (typeof c !== "number") return c as { err: string };
      count = c;
    } else {
      return E.SYNTAX;
    }
  }
  return { keys: argv.slice(numkeysIdx + 1, whereIdx), head, count: count === -1 ? 1 : count };
}

function lmpop({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const p = parseMpop(argv, 1);
  if ("err" in p) return p;
  for (const key of p.keys) {
    const r = list(ks, key);
    if (r === undefined) continue;
    if (r === null) return E.WRONGTYPE;
    if (r.v.length === 0) continue;
    return [key, popN(ks, key, r, p.head, p.count)];
  }
  return NIL_ARRAY;
}

/** The list commands. */
export const LIST_COMMANDS: CommandSpec[] = [
  {
    name: "lpush",
    arity: -3,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Prepend one or multiple elements to a list",
    syntax: "key element [element ...]",
    since: "1.0.0",
    apply: pushGeneric(true, false),
  },
  {
    name: "rpush",
    arity: -3,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Append one or multiple elements to a list",
    syntax: "key element [element ...]",
    since: "1.0.0",
    apply: pushGeneric(false, false),
  },
  {
    name: "lpushx",
    arity: -3,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Prepend an element to a list, only if the list exists",
    syntax: "key element [element ...]",
    since: "2.2.0",
    apply: pushGeneric(true, true),
  },
  {
    name: "rpushx",
    arity: -3,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Append an element to a list, only if the list exists",
    syntax: "key element [element ...]",
    since: "2.2.0",
    apply: pushGeneric(false, true),
  },
  {
    name: "lpop",
    arity: -2,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Remove and get the first elements in a list",
    syntax: "key [count]",
    since: "1.0.0",
    apply: popGeneric(true, "lpop"),
  },
  {
    name: "rpop",
    arity: -2,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Remove and get the last elements in a list",
    syntax: "key [count]",
    since: "1.0.0",
    apply: popGeneric(false, "rpop"),
  },
  {
    name: "llen",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Get the length of a list",
    syntax: "key",
    since: "1.0.0",
    apply: llen,
  },
  {
    name: "lrange",
    arity: 4,
    flags: ["readonly"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Get a range of elements from a list",
    syntax: "key start stop",
    since: "1.0.0",
    apply: lrange,
  },
  {
    name: "lindex",
    arity: 3,
    flags: ["readonly"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Get an element from a list by its index",
    syntax: "key index",
    since: "1.0.0",
    apply: lindex,
  },
  {
    name: "lset",
    arity: 4,
    flags: ["write", "denyoom"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Set the value of an element in a list by its index",
    syntax: "key index element",
    since: "1.0.0",
    apply: lset,
  },
  {
    name: "lrem",
    arity: 4,
    flags: ["write"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Remove elements from a list",
    syntax: "key count element",
    since: "1.0.0",
    apply: lrem,
  },
  {
    name: "ltrim",
    arity: 4,
    flags: ["write"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Trim a list to the specified range",
    syntax: "key start stop",
    since: "1.0.0",
    apply: ltrim,
  },
  {
    name: "linsert",
    arity: 5,
    flags: ["write", "denyoom"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Insert an element before or after another element in a list",
    syntax: "key <BEFORE | AFTER> pivot element",
    since: "2.2.0",
    apply: linsert,
  },
  {
    name: "lmove",
    arity: 5,
    flags: ["write", "denyoom"],
    keys: [1, 2, 1],
    group: "list",
    summary: "Pop an element from a list, push it to another list and return it",
    syntax: "source destination <LEFT | RIGHT> <LEFT | RIGHT>",
    since: "6.2.0",
    apply: lmove,
  },
  {
    name: "rpoplpush",
    arity: 3,
    flags: ["write", "denyoom"],
    keys: [1, 2, 1],
    group: "list",
    summary: "Remove the last element in a list, prepend it to another list and return it",
    syntax: "source destination",
    since: "1.2.0",
    apply: rpoplpush,
  },
  {
    name: "lpos",
    arity: -3,
    flags: ["readonly"],
    keys: [1, 1, 1],
    group: "list",
    summary: "Return the index of matching elements on a list",
    syntax: "key element [RANK rank] [COUNT num-matches] [MAXLEN len]",
    since: "6.0.6",
    apply: lpos,
  },
  {
    // Redis flags it movablekeys with keys 0 0 0 (the keys follow numkeys); the registry has no
    // movablekeys flag, so only the key positions say it.
    name: "lmpop",
    arity: -4,
    flags: ["write"],
    keys: [0, 0, 0],
    group: "list",
    summary: "Pop elements from a list",
    syntax: "numkeys key [key ...] <LEFT | RIGHT> [COUNT count]",
    since: "7.0.0",
    apply: lmpop,
  },
];
