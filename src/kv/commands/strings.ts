/**
 * String commands (Redis 7 semantics): SET with its options, GET, the counters, ranges and the
 * multi-key MGET/MSET/MSETNX (each one operation in the order: atomic and isolated).
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import { MAX_VALUE_BYTES } from "../../limits.ts";
import type { KeySpace, Rec } from "../keyspace.ts";
import type { ApplyContext, CommandSpec } from "../registry.ts";
import { E, err, int, OK } from "../reply.ts";
import { INT64_MAX, INT64_MIN, is, parseInt64 } from "./args.ts";
import {
  addLongDouble,
  formatLongDouble,
  isInfinite,
  type LongDouble,
  parseLongDouble,
} from "../long_double.ts";

/**
 * The largest string APPEND and SETRANGE may build: the hard value limit (Redis uses its
 * proto-max-bulk-len, 512 MiB by default). A fixed number, not the replica's setting, so that
 * every replica decides alike; without it one small SETRANGE would make every replica allocate
 * half a gigabyte.
 */
const MAX_STRING_BYTES = MAX_VALUE_BYTES;

/** The string value of `key`: its record, undefined when absent, null when of another type. */
function str(ks: KeySpace, key: ByteString): Rec<"string"> | undefined | null {
  return ks.typed(key, "string");
}

/** Stores a string, keeping the expiry only if `keepTtl`. */
export function setString(ks: KeySpace, key: ByteString, value: ByteString, keepTtl = false): void {
  const old = keepTtl ? ks.get(key) : undefined;
  const exp = old?.exp ?? 0;
  ks.put(key, "string", value);
  if (exp !== 0) ks.setExpiry(key, exp);
}

/** Parses an expiry argument the way Redis's getExpireMillisecondsOrReply does. */
function expireAt(
  ks: KeySpace,
  name: string,
  arg: ByteString,
  unitMs: number,
  absolute: boolean,
): number | Reply {
  const n = parseInt64(arg);
  if (n === null) return E.NOT_INT;
  if (n <= 0n || (unitMs === 1000 && n > INT64_MAX / 1000n)) return E.EXPIRE_TIME(name);
  let ms = n * BigInt(unitMs);
  if (!absolute) {
    if (ms > INT64_MAX - BigInt(ks.now)) return E.EXPIRE_TIME(name);
    ms += BigInt(ks.now);
  }
  // Beyond the safe range the key never expires in practice; clamp to keep it a number.
  return ms > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(ms);
}

interface SetOptions {
  nx: boolean;
  xx: boolean;
  get: boolean;
  keepTtl: boolean;
  persist: boolean;
  expire?: { arg: ByteString; unitMs: number; absolute: boolean };
}

/** Redis's parseExtendedStringArgumentsOrReply for SET (`forGet` false) and GETEX (true). */
function parseSetOptions(
  argv: ByteString[],
  from: number,
  forGet: boolean,
): SetOptions | { err: string } {
  const o: SetOptions = { nx: false, xx: false, get: false, keepTtl: false, persist: false };
  let ex = false, px = false, exat = false, pxat = false;
  for (let j = from; j < argv.length; j++) {
    const a = argv[j];
    const hasNext = j + 1 < argv.length;
    if (!forGet && is(a, "nx") && !o.xx) o.nx = true;
    else if (!forGet && is(a, "xx") && !o.nx) o.xx = true;
    else if (!forGet && is(a, "get")) o.get = true;
    else if (!forGet && is(a, "keepttl") && !o.persist && !ex && !exat && !px && !pxat) {
      o.keepTtl = true;
    } else if (forGet && is(a, "persist") && !ex && !exat && !px && !pxat && !o.keepTtl) {
      o.persist = true;
    } else if (is(a, "ex") && !o.keepTtl && !o.persist && !exat && !px && !pxat && hasNext) {
      ex = true;
      o.expire = { arg: argv[++j], unitMs: 1000, absolute: false };
    } else if (is(a, "px") && !o.keepTtl && !o.persist && !ex && !exat && !pxat && hasNext) {
      px = true;
      o.expire = { arg: argv[++j], unitMs: 1, absolute: false };
    } else if (is(a, "exat") && !o.keepTtl && !o.persist && !ex && !px && !pxat && hasNext) {
      exat = true;
      o.expire = { arg: argv[++j], unitMs: 1000, absolute: true };
    } else if (is(a, "pxat") && !o.keepTtl && !o.persist && !ex && !exat && !px && hasNext) {
      pxat = true;
      o.expire = { arg: argv[++j], unitMs: 1, absolute: true };
    } else {
      return E.SYNTAX;
    }
  }
  return o;
}

function set({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const [, key, value] = argv;
  const o = parseSetOptions(argv, 3, false);
  if ("err" in o) return o;
  let when = 0;
  if (o.expire) {
    const at = expireAt(ks, "set", o.expire.arg, o.expire.unitMs, o.expire.absolute);
    if (typeof at !== "number") return at;
    when = at;
  }
  let old: ByteString | null = null;
  const cur = ks.get(key);
  if (o.get && cur !== undefined) {
    if (cur.t !== "string") return E.WRONGTYPE;
    old = cur.v as ByteString;
  }
  const found = cur !== undefined;
  if ((o.nx && found) || (o.xx && !found)) return o.get ? old : null;
  setString(ks, key, value, o.keepTtl);
  if (o.expire) ks.setExpiry(key, when);
  return o.get ? old : OK;
}

function get({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = str(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r === undefined ? null : r.v;
}

function getex(ctx: ApplyContext, argv: ByteString[]): Reply {
  const { ks } = ctx;
  const o = parseSetOptions(argv, 2, true);
  if ("err" in o) return o;
  const r = str(ks, argv[1]);
  if (r === undefined) return null;
  if (r === null) return E.WRONGTYPE;
  let when = 0;
  if (o.expire) {
    const at = expireAt(ks, "getex", o.expire.arg, o.expire.unitMs, o.expire.absolute);
    if (typeof at !== "number") return at;
    when = at;
  }
  const value = r.v;
  if (o.expire && o.expire.absolute && when <= ks.now) ks.delete(argv[1]);
  else if (o.expire) ks.setExpiry(argv[1], when);
  else if (o.persist && r.exp !== 0) ks.setExpiry(argv[1], 0);
  return value;
}

function setnx({ ks }: ApplyContext, argv: ByteString[]): Reply {
  if (ks.get(argv[1]) !== undefined) return 0;
  setString(ks, argv[1], argv[2]);
  return 1;
}

function setexGeneric(name: string, unitMs: number) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => {
    const at = expireAt(ks, name, argv[2], unitMs, false);
    if (typeof at !== "number") return at;
    setString(ks, argv[1], argv[3]);
    ks.setExpiry(argv[1], at);
    return OK;
  };
}

function getset({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = str(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  const old = r === undefined ? null : r.v;
  setString(ks, argv[1], argv[2]);
  return old;
}

function getdel({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = str(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined) return null;
  ks.delete(argv[1]);
  return r.v;
}

function append({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = str(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined) {
    setString(ks, argv[1], argv[2]);
    return argv[2].length;
  }
  if (r.v.length + argv[2].length > MAX_STRING_BYTES) return E.STRING_TOO_LONG;
  r.v = r.v + argv[2];
  ks.touch(argv[1]);
  return r.v.length;
}

function strlen({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = str(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r === undefined ? 0 : r.v.length;
}

function getrange({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const s = parseInt64(argv[2]);
  const e = parseInt64(argv[3]);
  if (s === null || e === null) return E.NOT_INT;
  const r = str(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  const v = r === undefined ? "" : r.v;
  let start = Number(s);
  let end = Number(e);
  const len = v.length;
  if (start < 0 && end < 0 && start > end) return "";
  if (start < 0) start = len + start;
  if (end < 0) end = len + end;
  if (start < 0) start = 0;
  if (end < 0) end = 0;
  if (end >= len) end = len - 1;
  if (start > end || len === 0) return "";
  return v.slice(start, end + 1);
}

function setrange({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const [, key, offArg, value] = argv;
  const off = parseInt64(offArg);
  if (off === null) return E.NOT_INT;
  if (off < 0n) return err("ERR offset is out of range");
  const r = str(ks, key);
  if (r === null) return E.WRONGTYPE;
  const cur = r === undefined ? "" : r.v;
  if (value.length === 0) return cur.length;
  if (off + BigInt(value.length) > BigInt(MAX_STRING_BYTES)) return E.STRING_TOO_LONG;
  const o = Number(off);
  const padded = cur.length < o ? cur + "\0".repeat(o - cur.length) : cur;
  const next = padded.slice(0, o) + value + padded.slice(o + value.length);
  if (r === undefined) setString(ks, key, next);
  else {
    r.v = next;
    ks.touch(key);
  }
  return next.length;
}

function incrGeneric({ ks }: ApplyContext, key: ByteString, by: bigint): Reply {
  const r = str(ks, key);
  if (r === null) return E.WRONGTYPE;
  let cur = 0n;
  if (r !== undefined) {
    const n = parseInt64(r.v);
    if (n === null) return E.NOT_INT;
    cur = n;
  }
  const next = cur + by;
  if (next < INT64_MIN || next > INT64_MAX) return E.OVERFLOW;
  const text = next.toString();
  if (r === undefined) setString(ks, key, text);
  else {
    r.v = text;
    ks.touch(key);
  }
  return int(next);
}

function incrby(sign: 1n | -1n, withArg: boolean) {
  return (ctx: ApplyContext, argv: ByteString[]): Reply => {
    let by = 1n;
    if (withArg) {
      const n = parseInt64(argv[2]);
      if (n === null) return E.NOT_INT;
      if (sign === -1n && n === INT64_MIN) return err("ERR decrement would overflow");
      by = n;
    }
    return incrGeneric(ctx, argv[1], sign * by);
  };
}

function incrbyfloat({ ks }: ApplyContext, argv: ByteString[]): Reply {
  // Redis's order: the key's type, then its value, then the increment.
  const r = str(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  let cur: LongDouble = { neg: false, m: 0n, e: 0 };
  if (r !== undefined) {
    const n = parseLongDouble(r.v);
    if (n === null) return E.NOT_FLOAT;
    cur = n;
  }
  const by = parseLongDouble(argv[2]);
  if (by === null) return E.NOT_FLOAT;
  const next = addLongDouble(cur, by);
  if (isInfinite(next)) return E.NAN_OR_INF;
  const text = formatLongDouble(next);
  setString(ks, argv[1], text, true);
  return text;
}

function mget({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const out: Reply[] = [];
  for (let i = 1; i < argv.length; i++) {
    const r = ks.get(argv[i]);
    out.push(r !== undefined && r.t === "string" ? (r.v as ByteString) : null);
  }
  return out;
}

function mset({ ks }: ApplyContext, argv: ByteString[]): Reply {
  if (argv.length % 2 === 0) return E.ARITY(argv[0].toLowerCase());
  for (let i = 1; i < argv.length; i += 2) setString(ks, argv[i], argv[i + 1]);
  return OK;
}

function msetnx({ ks }: ApplyContext, argv: ByteString[]): Reply {
  if (argv.length % 2 === 0) return E.ARITY(argv[0].toLowerCase());
  for (let i = 1; i < argv.length; i += 2) if (ks.get(argv[i]) !== undefined) return 0;
  for (let i = 1; i < argv.length; i += 2) setString(ks, argv[i], argv[i + 1]);
  return 1;
}

const W = ["write", "denyoom"] as const;
const WF = ["write", "denyoom", "fast"] as const;
const RF = ["readonly", "fast"] as const;

/** The string commands. */
export const STRING_COMMANDS: CommandSpec[] = [
  {
    name: "set",
    arity: -3,
    flags: W,
    keys: [1, 1, 1],
    group: "string",
    summary:
      "Sets the string value of a key, ignoring its type; optionally only if absent or present, with an expiry, returning the old value.",
    syntax:
      "key value [NX | XX] [GET] [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | KEEPTTL]",
    since: "1.0.0",
    apply: set,
  },
  {
    name: "get",
    arity: 2,
    flags: RF,
    keys: [1, 1, 1],
    group: "string",
    summary: "Returns the string value of a key.",
    syntax: "key",
    since: "1.0.0",
    apply: get,
  },
  {
    name: "getex",
    arity: -2,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "string",
    summary: "Returns the string value of a key after setting its expiration time.",
    syntax:
      "key [EX seconds | PX milliseconds | EXAT unix-time-seconds | PXAT unix-time-milliseconds | PERSIST]",
    since: "6.2.0",
    apply: getex,
  },
  {
    name: "setnx",
    arity: 3,
    flags: WF,
    keys: [1, 1, 1],
    group: "string",
    summary: "Sets the string value of a key only when the key doesn't exist.",
    syntax: "key value",
    since: "1.0.0",
    apply: setnx,
  },
  {
    name: "setex",
    arity: 4,
    flags: W,
    keys: [1, 1, 1],
    group: "string",
    summary: "Sets the string value and expiration time (seconds) of a key.",
    syntax: "key seconds value",
    since: "2.0.0",
    apply: setexGeneric("setex", 1000),
  },
  {
    name: "psetex",
    arity: 4,
    flags: W,
    keys: [1, 1, 1],
    group: "string",
    summary: "Sets the string value and expiration time (milliseconds) of a key.",
    syntax: "key milliseconds value",
    since: "2.6.0",
    apply: setexGeneric("psetex", 1),
  },
  {
    name: "getset",
    arity: 3,
    flags: WF,
    keys: [1, 1, 1],
    group: "string",
    summary: "Returns the previous string value of a key after setting it to a new value.",
    syntax: "key value",
    since: "1.0.0",
    apply: getset,
  },
  {
    name: "getdel",
    arity: 2,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "string",
    summary: "Returns the string value of a key after deleting the key.",
    syntax: "key",
    since: "6.2.0",
    apply: getdel,
  },
  {
    name: "append",
    arity: 3,
    flags: WF,
    keys: [1, 1, 1],
    group: "string",
    summary: "Appends a string to the value of a key. Creates the key if it doesn't exist.",
    syntax: "key value",
    since: "2.0.0",
    apply: append,
  },
  {
    name: "strlen",
    arity: 2,
    flags: RF,
    keys: [1, 1, 1],
    group: "string",
    summary: "Returns the length of a string value.",
    syntax: "key",
    since: "2.2.0",
    apply: strlen,
  },
  {
    name: "getrange",
    arity: 4,
    flags: ["readonly"],
    keys: [1, 1, 1],
    group: "string",
    summary: "Returns a substring of the string stored at a key.",
    syntax: "key start end",
    since: "2.4.0",
    apply: getrange,
  },
  {
    name: "setrange",
    arity: 4,
    flags: W,
    keys: [1, 1, 1],
    group: "string",
    summary:
      "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.",
    syntax: "key offset value",
    since: "2.2.0",
    apply: setrange,
  },
  {
    name: "incr",
    arity: 2,
    flags: WF,
    keys: [1, 1, 1],
    group: "string",
    summary:
      "Increments the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    syntax: "key",
    since: "1.0.0",
    apply: incrby(1n, false),
  },
  {
    name: "decr",
    arity: 2,
    flags: WF,
    keys: [1, 1, 1],
    group: "string",
    summary:
      "Decrements the integer value of a key by one. Uses 0 as initial value if the key doesn't exist.",
    syntax: "key",
    since: "1.0.0",
    apply: incrby(-1n, false),
  },
  {
    name: "incrby",
    arity: 3,
    flags: WF,
    keys: [1, 1, 1],
    group: "string",
    summary:
      "Increments the integer value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    syntax: "key increment",
    since: "1.0.0",
    apply: incrby(1n, true),
  },
  {
    name: "decrby",
    arity: 3,
    flags: WF,
    keys: [1, 1, 1],
    group: "string",
    summary:
      "Decrements a number from the integer value of a key. Uses 0 as initial value if the key doesn't exist.",
    syntax: "key decrement",
    since: "1.0.0",
    apply: incrby(-1n, true),
  },
  {
    name: "incrbyfloat",
    arity: 3,
    flags: WF,
    keys: [1, 1, 1],
    group: "string",
    summary:
      "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.",
    syntax: "key increment",
    since: "2.6.0",
    apply: incrbyfloat,
  },
  {
    name: "mget",
    arity: -2,
    flags: RF,
    keys: [1, -1, 1],
    group: "string",
    summary: "Atomically returns the string values of one or more keys.",
    syntax: "key [key ...]",
    since: "1.0.0",
    apply: mget,
  },
  {
    name: "mset",
    arity: -3,
    flags: W,
    keys: [1, -1, 2],
    group: "string",
    summary: "Atomically creates or modifies the string values of one or more keys.",
    syntax: "key value [key value ...]",
    since: "1.0.1",
    apply: mset,
  },
  {
    name: "msetnx",
    arity: -3,
    flags: W,
    keys: [1, -1, 2],
    group: "string",
    summary:
      "Atomically modifies the string values of one or more keys only when all keys don't exist.",
    syntax: "key value [key value ...]",
    since: "1.0.1",
    apply: msetnx,
  },
];
