/**
 * Hash commands (Redis 7.0 semantics): HSET/HMSET, HSETNX, the readers, the counters HINCRBY and
 * HINCRBYFLOAT, HSCAN and HRANDFIELD. A hash whose last field is deleted is deleted (as Redis
 * does). Fields keep their insertion order (the same on every replica), which is the order
 * HGETALL, HKEYS and HVALS reply in; HRANDFIELD draws from {@link ApplyContext.random} only, so
 * every replica picks the same fields.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { KeySpace, Rec } from "../keyspace.ts";
import type { ApplyContext, CommandSpec } from "../registry.ts";
import { E, err, int, OK } from "../reply.ts";
import { globMatch } from "../glob.ts";
import { SummedMap, summedMap } from "../digest_hash.ts";
import { INT64_MAX, INT64_MIN, is, parseInt64 } from "./args.ts";
import {
  addLongDouble,
  formatLongDouble,
  isInfinite,
  type LongDouble,
  parseLongDouble,
} from "../long_double.ts";
import { parseScan } from "./keys.ts";
import {
  MAX_RANDOM_REPLY,
  parseRandomCount,
  pickDistinct,
  pickOne,
  pickRepeated,
} from "./random.ts";

/** The hash at `key`: its record, undefined when absent, null when of another type. */
function hash(ks: KeySpace, key: ByteString): Rec<"hash"> | undefined | null {
  return ks.typed(key, "hash");
}

/** The hash at `key`, created empty when absent; null when the key holds another type. */
function hashForWrite(ks: KeySpace, key: ByteString): Rec<"hash"> | null {
  const r = hash(ks, key);
  if (r !== undefined) return r;
  return ks.put(key, "hash", new SummedMap());
}

// ---- commands ---------------------------------------------------------------------------------

function hsetGeneric(name: string, replyOk: boolean) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => {
    if (argv.length % 2 === 1) return E.ARITY(name);
    const key = argv[1];
    const r = hashForWrite(ks, key);
    if (r === null) return E.WRONGTYPE;
    let created = 0;
    for (let i = 2; i < argv.length; i += 2) {
      if (!r.v.has(argv[i])) created++;
      r.v.set(argv[i], argv[i + 1]);
    }
    ks.touch(key);
    return replyOk ? OK : created;
  };
}

function hsetnx({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const [, key, field, value] = argv;
  const r = hash(ks, key);
  if (r === null) return E.WRONGTYPE;
  if (r !== undefined && r.v.has(field)) return 0;
  if (r === undefined) ks.put(key, "hash", summedMap([[field, value]]));
  else {
    r.v.set(field, value);
    ks.touch(key);
  }
  return 1;
}

function hget({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = hash(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r?.v.get(argv[2]) ?? null;
}

function hmget({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = hash(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  const out: Reply[] = [];
  for (let i = 2; i < argv.length; i++) out.push(r?.v.get(argv[i]) ?? null);
  return out;
}

function hdel({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = hash(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r === undefined ? 0 : ks.removeItems(argv[1], r, argv.slice(2));
}

function hgetall({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = hash(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined) return [];
  const out: Reply[] = [];
  for (const [f, v] of r.v) out.push(f, v);
  return out;
}

function hkeys({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = hash(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r === undefined ? [] : [...r.v.keys()];
}

function hvals({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = hash(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r === undefined ? [] : [...r.v.values()];
}

function hexists({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = hash(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r !== undefined && r.v.has(argv[2]) ? 1 : 0;
}

function hlen({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = hash(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r === undefined ? 0 : r.v.size;
}

function hstrlen({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = hash(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r?.v.get(argv[2])?.length ?? 0;
}

function hincrby({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const [, key, field, byArg] = argv;
  const by = parseInt64(byArg);
  if (by === null) return E.NOT_INT;
  const r = hash(ks, key);
  if (r === null) return E.WRONGTYPE;
  let cur = 0n;
  const old = r?.v.get(field);
  if (old !== undefined) {
    const n = parseInt64(old);
    if (n === null) return E.HASH_NOT_INT;
    cur = n;
  }
  const next = cur + by;
  if (next < INT64_MIN || next > INT64_MAX) return E.OVERFLOW;
  if (r === undefined) ks.put(key, "hash", summedMap([[field, next.toString()]]));
  else {
    r.v.set(field, next.toString());
    ks.touch(key);
  }
  return int(next);
}

function hincrbyfloat({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const [, key, field, byArg] = argv;
  const by = parseLongDouble(byArg);
  if (by === null) return E.NOT_FLOAT;
  if (isInfinite(by)) return err("ERR value is NaN or Infinity");
  const r = hash(ks, key);
  if (r === null) return E.WRONGTYPE;
  let cur: LongDouble = { neg: false, m: 0n, e: 0 };
  const old = r?.v.get(field);
  if (old !== undefined) {
    const n = parseLongDouble(old);
    if (n === null) return E.HASH_NOT_FLOAT;
    cur = n;
  }
  const next = addLongDouble(cur, by);
  if (isInfinite(next)) return E.NAN_OR_INF;
  const text = formatLongDouble(next);
  if (r === undefined) ks.put(key, "hash", summedMap([[field, text]]));
  else {
    r.v.set(field, text);
    ks.touch(key);
  }
  return text;
}

function hscan({ ks }: ApplyContext, argv: ByteString[]): Reply {
  // Redis checks the cursor, then the key, then the options.
  const cursorOnly = parseScan(argv.slice(0, 3), 2, false);
  if ("err" in cursorOnly) return cursorOnly;
  const r = hash(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined) return ["0", []];
  const args = parseScan(argv, 2, false);
  if ("err" in args) return args;
  const { next, page } = ks.scanItems(r, args.cursor, args.count);
  const out: Reply[] = [];
  for (const f of page) {
    if (args.match !== undefined && !globMatch(args.match, f)) continue;
    out.push(f, r.v.get(f)!);
  }
  return [String(next), out];
}

function hrandfield(ctx: ApplyContext, argv: ByteString[]): Reply {
  const { ks } = ctx;
  if (argv.length === 2) {
    const r = hash(ks, argv[1]);
    if (r === null) return E.WRONGTYPE;
    if (r === undefined) return null;
    return pickOne(ctx, r.v);
  }
  const count = parseRandomCount(argv[2]);
  if (typeof count !== "number") return count;
  if (argv.length > 4 || (argv.length === 4 && !is(argv[3], "withvalues"))) return E.SYNTAX;
  const withValues = argv.length === 4;
  // Redis refuses a count whose double (fields and values) would overflow.
  const wide = parseInt64(argv[2]) as bigint;
  if (withValues && (wide < -(INT64_MAX / 2n) || wide > INT64_MAX / 2n)) {
    return err("ERR value is out of range");
  }
  const r = hash(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined || count === 0) return [];
  const out: Reply[] = [];
  const push = (f: ByteString, v: ByteString) => {
    out.push(f);
    if (withValues) out.push(v);
  };
  if (count < 0) {
    if (-count > MAX_RANDOM_REPLY) return err("ERR value is out of range");
    for (const f of pickRepeated(ctx, r.v, -count)) push(f, r.v.get(f)!);
    return out;
  }
  if (count >= r.v.size) {
    for (const [f, v] of r.v) push(f, v);
    return out;
  }
  for (const f of pickDistinct(ctx, r.v, count)) push(f, r.v.get(f)!);
  return out;
}

const WF = ["write", "denyoom", "fast"] as const;
const RF = ["readonly", "fast"] as const;
const R = ["readonly"] as const;

/** The hash commands. */
export const HASH_COMMANDS: CommandSpec[] = [
  {
    name: "hset",
    arity: -4,
    flags: WF,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Creates or modifies the value of a field in a hash.",
    syntax: "key field value [field value ...]",
    since: "2.0.0",
    apply: hsetGeneric("hset", false),
  },
  {
    name: "hmset",
    arity: -4,
    flags: WF,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Sets the values of multiple fields.",
    syntax: "key field value [field value ...]",
    since: "2.0.0",
    apply: hsetGeneric("hmset", true),
  },
  {
    name: "hsetnx",
    arity: 4,
    flags: WF,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Sets the value of a field in a hash only when the field doesn't exist.",
    syntax: "key field value",
    since: "2.0.0",
    apply: hsetnx,
  },
  {
    name: "hget",
    arity: 3,
    flags: RF,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Returns the value of a field in a hash.",
    syntax: "key field",
    since: "2.0.0",
    apply: hget,
  },
  {
    name: "hmget",
    arity: -3,
    flags: RF,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Returns the values of all fields in a hash.",
    syntax: "key field [field ...]",
    since: "2.0.0",
    apply: hmget,
  },
  {
    name: "hdel",
    arity: -3,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "hash",
    summary: "Deletes one or more fields and their values from a hash. Deletes the hash if empty.",
    syntax: "key field [field ...]",
    since: "2.0.0",
    apply: hdel,
  },
  {
    name: "hgetall",
    arity: 2,
    flags: R,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Returns all fields and values in a hash.",
    syntax: "key",
    since: "2.0.0",
    apply: hgetall,
  },
  {
    name: "hexists",
    arity: 3,
    flags: RF,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Determines whether a field exists in a hash.",
    syntax: "key field",
    since: "2.0.0",
    apply: hexists,
  },
  {
    name: "hlen",
    arity: 2,
    flags: RF,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Returns the number of fields in a hash.",
    syntax: "key",
    since: "2.0.0",
    apply: hlen,
  },
  {
    name: "hstrlen",
    arity: 3,
    flags: RF,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Returns the length of the value of a field.",
    syntax: "key field",
    since: "3.2.0",
    apply: hstrlen,
  },
  {
    name: "hincrby",
    arity: 4,
    flags: WF,
    keys: [1, 1, 1],
    group: "hash",
    summary:
      "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.",
    syntax: "key field increment",
    since: "2.0.0",
    apply: hincrby,
  },
  {
    name: "hincrbyfloat",
    arity: 4,
    flags: WF,
    keys: [1, 1, 1],
    group: "hash",
    summary:
      "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.",
    syntax: "key field increment",
    since: "2.6.0",
    apply: hincrbyfloat,
  },
  {
    name: "hkeys",
    arity: 2,
    flags: R,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Returns all fields in a hash.",
    syntax: "key",
    since: "2.0.0",
    apply: hkeys,
  },
  {
    name: "hvals",
    arity: 2,
    flags: R,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Returns all values in a hash.",
    syntax: "key",
    since: "2.0.0",
    apply: hvals,
  },
  {
    name: "hscan",
    arity: -3,
    flags: R,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Iterates over fields and values of a hash.",
    syntax: "key cursor [MATCH pattern] [COUNT count]",
    since: "2.8.0",
    apply: hscan,
  },
  {
    name: "hrandfield",
    arity: -2,
    flags: R,
    keys: [1, 1, 1],
    group: "hash",
    summary: "Returns one or more random fields from a hash.",
    syntax: "key [count [WITHVALUES]]",
    since: "6.2.0",
    apply: hrandfield,
  },
];
