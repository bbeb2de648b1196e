/**
 * Set commands (Redis 7.0 semantics): SADD, SREM, the readers, SPOP and SRANDMEMBER, the algebra
 * (SINTER, SUNION, SDIFF, their STORE forms and SINTERCARD), SMOVE and SSCAN. A set whose last
 * member is removed is deleted (as Redis does). Members keep their insertion order (the same on
 * every replica), which is the order SMEMBERS and the algebra reply in; SPOP and SRANDMEMBER draw
 * from {@link ApplyContext.random} only, so every replica picks the same members.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { KeySpace, Rec } from "../keyspace.ts";
import type { ApplyContext, CommandSpec } from "../registry.ts";
import { E, err } from "../reply.ts";
import { globMatch } from "../glob.ts";
import { SummedSet, summedSet } from "../digest_hash.ts";
import { is, parseInt64 } from "./args.ts";
import { parseScan } from "./keys.ts";
import {
  MAX_RANDOM_REPLY,
  parseRandomCount,
  pickDistinct,
  pickOne,
  pickRepeated,
} from "./random.ts";

/** The set at `key`: its record, undefined when absent, null when of another type. */
function set(ks: KeySpace, key: ByteString): Rec<"set"> | undefined | null {
  return ks.typed(key, "set");
}

/**
 * The sets at `keys` (undefined for absent keys), or null when one of them holds another type
 * (Redis looks every key up before computing anything).
 */
function sets(ks: KeySpace, keys: ByteString[]): (Set<ByteString> | undefined)[] | null {
  const out: (Set<ByteString> | undefined)[] = [];
  for (const k of keys) {
    const r = set(ks, k);
    if (r === null) return null;
    out.push(r?.v);
  }
  return out;
}

/** The members of a set in order, as an array. */
function members(s: Set<ByteString>): ByteString[] {
  return [...s];
}

function sadd({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const key = argv[1];
  const r = set(ks, key);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined) {
    const s = new SummedSet();
    for (let i = 2; i < argv.length; i++) s.add(argv[i]);
    ks.put(key, "set", s);
    return s.size;
  }
  const before = r.v.size;
  for (let i = 2; i < argv.length; i++) r.v.add(argv[i]);
  const added = r.v.size - before;
  if (added > 0) ks.touch(key);
  return added;
}

function srem({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = set(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r === undefined ? 0 : ks.removeItems(argv[1], r, argv.slice(2));
}

function smembers({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = set(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r === undefined ? [] : members(r.v);
}

function sismember({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = set(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r !== undefined && r.v.has(argv[2]) ? 1 : 0;
}

function smismember({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = set(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  const out: Reply[] = [];
  for (let i = 2; i < argv.length; i++) out.push(r !== undefined && r.v.has(argv[i]) ? 1 : 0);
  return out;
}

function scard({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = set(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r === undefined ? 0 : r.v.size;
}

function spop(ctx: ApplyContext, argv: ByteString[]): Reply {
  const { ks } = ctx;
  const key = argv[1];
  if (argv.length > 3) return E.SYNTAX;
  if (argv.length === 2) {
    const r = set(ks, key);
    if (r === null) return E.WRONGTYPE;
    if (r === undefined) return null;
    const picked = pickOne(ctx, r.v);
    r.v.delete(picked);
    ks.touch(key);
    ks.dropIfEmpty(key);
    return picked;
  }
  const n = parseInt64(argv[2]);
  if (n === null || n < 0n) return E.NOT_POSITIVE;
  const r = set(ks, key);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined || n === 0n) return [];
  if (n >= BigInt(r.v.size)) {
    const all = members(r.v);
    ks.delete(key);
    return all;
  }
  const picked = pickDistinct(ctx, r.v, Number(n));
  for (const m of picked) r.v.delete(m);
  ks.touch(key);
  return picked;
}

function srandmember(ctx: ApplyContext, argv: ByteString[]): Reply {
  const { ks } = ctx;
  const key = argv[1];
  if (argv.length > 3) return E.SYNTAX;
  if (argv.length === 2) {
    const r = set(ks, key);
    if (r === null) return E.WRONGTYPE;
    if (r === undefined) return null;
    return pickOne(ctx, r.v);
  }
  const count = parseRandomCount(argv[2]);
  if (typeof count !== "number") return count;
  const r = set(ks, key);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined || count === 0) return [];
  if (count < 0) {
    if (-count > MAX_RANDOM_REPLY) return err("ERR value is out of range");
    return pickRepeated(ctx, r.v, -count);
  }
  if (count >= r.v.size) return members(r.v);
  return pickDistinct(ctx, r.v, count);
}

// ---- set algebra --------------------------------------------------------------------------------

/** The intersection (in the order of the smallest set), stopping at `limit` members (0: all). */
function intersect(all: (Set<ByteString> | undefined)[], limit = 0): Set<ByteString> {
  const out = new SummedSet();
  if (all.some((s) => s === undefined || s.size === 0)) return out;
  const ordered = (all as Set<ByteString>[]).slice().sort((a, b) => a.size - b.size);
  const [first, ...rest] = ordered;
  for (const m of first) {
    if (rest.every((s) => s.has(m))) {
      out.add(m);
      if (limit > 0 && out.size >= limit) break;
    }
  }
  return out;
}

function union(all: (Set<ByteString> | undefined)[]): Set<ByteString> {
  const out = new SummedSet();
  for (const s of all) if (s !== undefined) { for (const m of s) out.add(m); }
  return out;
}

function difference(all: (Set<ByteString> | undefined)[]): Set<ByteString> {
  const out = new SummedSet();
  const [first, ...rest] = all;
  if (first === undefined) return out;
  for (const m of first) if (!rest.some((s) => s !== undefined && s.has(m))) out.add(m);
  return out;
}

type Algebra = (all: (Set<ByteString> | undefined)[]) => Set<ByteString>;

function algebraRead(op: Algebra) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => {
    const all = sets(ks, argv.slice(1));
    if (all === null) return E.WRONGTYPE;
    return members(op(all));
  };
}

/** The STORE forms: sources must be sets, the destination is overwritten whatever it holds. */
function algebraStore(op: Algebra) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => {
    const dst = argv[1];
    const all = sets(ks, argv.slice(2));
    if (all === null) return E.WRONGTYPE;
    const result = op(all);
    if (result.size === 0) {
      if (ks.get(dst) !== undefined) ks.delete(dst);
      return 0;
    }
    ks.put(dst, "set", result);
    return result.size;
  };
}

function sintercard({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const numkeys = parseInt64(argv[1]);
  if (numkeys === null || numkeys < 1n) return err("ERR numkeys should be greater than 0");
  if (numkeys > BigInt(argv.length - 2)) {
    return err("ERR Number of keys can't be greater than number of args");
  }
  const n = Number(numkeys);
  let limit = 0;
  for (let j = 2 + n; j < argv.length; j++) {
    if (is(argv[j], "limit") && j + 1 < argv.length) {
      const l = parseInt64(argv[++j]);
      if (l === null || l < 0n) return err("ERR LIMIT can't be negative");
      limit = l > BigInt(Number.MAX_SAFE_INTEGER) ? 0 : Number(l);
    } else {
      return E.SYNTAX;
    }
  }
  const all = sets(ks, argv.slice(2, 2 + n));
  if (all === null) return E.WRONGTYPE;
  return intersect(all, limit).size;
}

function smove({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const [, src, dst, member] = argv;
  const from = ks.get(src);
  const to = ks.get(dst);
  if (from === undefined) return 0;
  if (from.t !== "set" || (to !== undefined && to.t !== "set")) return E.WRONGTYPE;
  const fromSet = from.v as Set<ByteString>;
  if (src === dst) return fromSet.has(member) ? 1 : 0;
  if (!fromSet.delete(member)) return 0;
  ks.touch(src);
  ks.dropIfEmpty(src);
  if (to === undefined) ks.put(dst, "set", summedSet([member]));
  else {
    const toSet = to.v as Set<ByteString>;
    if (!toSet.has(member)) {
      toSet.add(member);
      ks.touch(dst);
    }
  }
  return 1;
}

function sscan({ ks }: ApplyContext, argv: ByteString[]): Reply {
  // Redis checks the cursor, then the key, then the options.
  const cursorOnly = parseScan(argv.slice(0, 3), 2, false);
  if ("err" in cursorOnly) return cursorOnly;
  const r = set(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined) return ["0", []];
  const args = parseScan(argv, 2, false);
  if ("err" in args) return args;
  const { next, page } = ks.scanItems(r, args.cursor, args.count);
  const out = args.match === undefined
    ? page
    : page.filter((m) => globMatch(args.match as ByteString, m));
  return [String(next), out];
}

const WF = ["write", "denyoom", "fast"] as const;
const W = ["write", "denyoom"] as const;
const RF = ["readonly", "fast"] as const;
const R = ["readonly"] as const;

/** The set commands. */
export const SET_COMMANDS: CommandSpec[] = [
  {
    name: "sadd",
    arity: -3,
    flags: WF,
    keys: [1, 1, 1],
    group: "set",
    summary: "Adds one or more members to a set. Creates the key if it doesn't exist.",
    syntax: "key member [member ...]",
    since: "1.0.0",
    apply: sadd,
  },
  {
    name: "srem",
    arity: -3,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "set",
    summary:
      "Removes one or more members from a set. Deletes the set if the last member was removed.",
    syntax: "key member [member ...]",
    since: "1.0.0",
    apply: srem,
  },
  {
    name: "smembers",
    arity: 2,
    flags: R,
    keys: [1, 1, 1],
    group: "set",
    summary: "Returns all members of a set.",
    syntax: "key",
    since: "1.0.0",
    apply: smembers,
  },
  {
    name: "sismember",
    arity: 3,
    flags: RF,
    keys: [1, 1, 1],
    group: "set",
    summary: "Determines whether a member belongs to a set.",
    syntax: "key member",
    since: "1.0.0",
    apply: sismember,
  },
  {
    name: "smismember",
    arity: -3,
    flags: RF,
    keys: [1, 1, 1],
    group: "set",
    summary: "Determines whether multiple members belong to a set.",
    syntax: "key member [member ...]",
    since: "6.2.0",
    apply: smismember,
  },
  {
    name: "scard",
    arity: 2,
    flags: RF,
    keys: [1, 1, 1],
    group: "set",
    summary: "Returns the number of members in a set.",
    syntax: "key",
    since: "1.0.0",
    apply: scard,
  },
  {
    name: "spop",
    arity: -2,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "set",
    summary:
      "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.",
    syntax: "key [count]",
    since: "1.0.0",
    apply: spop,
  },
  {
    name: "srandmember",
    arity: -2,
    flags: R,
    keys: [1, 1, 1],
    group: "set",
    summary: "Returns one or more random members from a set.",
    syntax: "key [count]",
    since: "1.0.0",
    apply: srandmember,
  },
  {
    name: "sinter",
    arity: -2,
    flags: R,
    keys: [1, -1, 1],
    group: "set",
    summary: "Returns the intersect of multiple sets.",
    syntax: "key [key ...]",
    since: "1.0.0",
    apply: algebraRead(intersect),
  },
  {
    name: "sunion",
    arity: -2,
    flags: R,
    keys: [1, -1, 1],
    group: "set",
    summary: "Returns the union of multiple sets.",
    syntax: "key [key ...]",
    since: "1.0.0",
    apply: algebraRead(union),
  },
  {
    name: "sdiff",
    arity: -2,
    flags: R,
    keys: [1, -1, 1],
    group: "set",
    summary: "Returns the difference of multiple sets.",
    syntax: "key [key ...]",
    since: "1.0.0",
    apply: algebraRead(difference),
  },
  {
    name: "sinterstore",
    arity: -3,
    flags: W,
    keys: [1, -1, 1],
    group: "set",
    summary: "Stores the intersect of multiple sets in a key.",
    syntax: "destination key [key ...]",
    since: "1.0.0",
    apply: algebraStore(intersect),
  },
  {
    name: "sunionstore",
    arity: -3,
    flags: W,
    keys: [1, -1, 1],
    group: "set",
    summary: "Stores the union of multiple sets in a key.",
    syntax: "destination key [key ...]",
    since: "1.0.0",
    apply: algebraStore(union),
  },
  {
    name: "sdiffstore",
    arity: -3,
    flags: W,
    keys: [1, -1, 1],
    group: "set",
    summary: "Stores the difference of multiple sets in a key.",
    syntax: "destination key [key ...]",
    since: "1.0.0",
    apply: algebraStore(difference),
  },
  {
    name: "sintercard",
    arity: -3,
    flags: R,
    // Redis: movable keys (numkeys), so no fixed key positions.
    keys: [0, 0, 0],
    group: "set",
    summary: "Returns the number of members of the intersect of multiple sets.",
    syntax: "numkeys key [key ...] [LIMIT limit]",
    since: "7.0.0",
    apply: sintercard,
  },
  {
    name: "smove",
    arity: 4,
    flags: ["write", "fast"],
    keys: [1, 2, 1],
    group: "set",
    summary: "Moves a member from one set to another.",
    syntax: "source destination member",
    since: "1.0.0",
    apply: smove,
  },
  {
    name: "sscan",
    arity: -3,
    flags: R,
    keys: [1, 1, 1],
    group: "set",
    summary: "Iterates over members of a set.",
    syntax: "key cursor [MATCH pattern] [COUNT count]",
    since: "2.8.0",
    apply: sscan,
  },
];
