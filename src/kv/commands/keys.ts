/**
 * Generic key commands (DEL, EXISTS, TYPE, RENAME, KEYS, SCAN, RANDOMKEY, DBSIZE, FLUSHALL) and
 * expiry (EXPIRE and friends, TTL, PERSIST), plus lamportkv's own aliases PUT/DELETE/HAS.
 *
 * SCAN walks keys in the order of a 32-bit hash of the key: the cursor is one more than the last
 * hash returned. The order depends only on the keys, so any replica can serve any page, and every
 * key present for the whole scan is returned at least once (keys with equal hashes always come in
 * the same page). RANDOMKEY answers the first key at or after a random point of that order.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { ApplyContext, CommandSpec } from "../registry.ts";
import { E, err, OK, status } from "../reply.ts";
import { globMatch } from "../glob.ts";
import { INT64_MAX, INT64_MIN, is, parseInt64 } from "./args.ts";
import { setString } from "./strings.ts";

function del({ ks }: ApplyContext, argv: ByteString[]): Reply {
  let n = 0;
  for (let i = 1; i < argv.length; i++) {
    if (ks.get(argv[i]) !== undefined && ks.delete(argv[i])) n++;
  }
  return n;
}

function exists({ ks }: ApplyContext, argv: ByteString[]): Reply {
  let n = 0;
  for (let i = 1; i < argv.length; i++) if (ks.get(argv[i]) !== undefined) n++;
  return n;
}

function type({ ks }: ApplyContext, argv: ByteString[]): Reply {
  return status(ks.get(argv[1])?.t ?? "none");
}

function renameGeneric(nx: boolean) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => {
    const [, from, to] = argv;
    const r = ks.get(from);
    if (r === undefined) return E.NO_KEY;
    if (from === to) return nx ? 0 : OK;
    if (nx && ks.get(to) !== undefined) return 0;
    const exp = r.exp;
    ks.delete(from);
    ks.put(to, r.t, r.v);
    if (exp !== 0) ks.setExpiry(to, exp);
    return nx ? 1 : OK;
  };
}

function keys({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const pattern = argv[1];
  const all = pattern === "*";
  const out: Reply[] = [];
  for (const k of ks.keys()) if (all || globMatch(pattern, k)) out.push(k);
  return out;
}

function dbsize({ ks }: ApplyContext): Reply {
  return ks.liveSize();
}

function randomkey({ ks, random }: ApplyContext): Reply {
  return ks.randomKey(random()) ?? null;
}

function flushall({ ks }: ApplyContext, argv: ByteString[]): Reply {
  if (argv.length > 2 || (argv.length === 2 && !is(argv[1], "sync") && !is(argv[1], "async"))) {
    return E.SYNTAX;
  }
  ks.clear();
  return OK;
}

// ---- SCAN ------------------------------------------------------------------------------------

/** Parsed `cursor [MATCH pattern] [COUNT count] [TYPE type]`. */
export interface ScanArgs {
  cursor: number;
  match?: ByteString;
  count: number;
  type?: ByteString;
}

/** Parses a SCAN-family argument list from `argv[at]` (the cursor) on; an error reply if bad. */
export function parseScan(
  argv: ByteString[],
  at: number,
  allowType: boolean,
): ScanArgs | { err: string } {
  const c = argv[at];
  if (!/^[0-9]{1,20}$/.test(c) || BigInt(c) > 2n ** 64n - 1n) return err("ERR invalid cursor");
  const out: ScanArgs = {
    cursor: Number(BigInt(c) > 2n ** 32n ? 2n ** 32n : BigInt(c)),
    count: 10,
  };
  for (let i = at + 1; i < argv.length; i += 2) {
    const opt = argv[i];
    if (i + 1 >= argv.length) return E.SYNTAX;
    const val = argv[i + 1];
    if (is(opt, "count")) {
      const n = parseInt64(val);
      if (n === null) return E.NOT_INT;
      if (n < 1n) return E.SYNTAX;
      out.count = n > 100_000n ? 100_000 : Number(n);
    } else if (is(opt, "match")) out.match = val;
    else if (allowType && is(opt, "type")) out.type = val;
    else return E.SYNTAX;
  }
  return out;
}

function scan({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const args = parseScan(argv, 1, true);
  if ("err" in args) return args;
  const { next, page } = ks.scanPage(args.cursor, args.count);
  const out: Reply[] = [];
  for (const k of page) {
    if (args.match !== undefined && !globMatch(args.match, k)) continue;
    if (args.type !== undefined && ks.get(k)?.t !== args.type.toLowerCase()) continue;
    out.push(k);
  }
  return [String(next), out];
}

// ---- expiry ----------------------------------------------------------------------------------

function expireGeneric(name: string, unitMs: number, absolute: boolean) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => {
    let nx = false, xx = false, gt = false, lt = false;
    for (let i = 3; i < argv.length; i++) {
      const a = argv[i];
      if (is(a, "nx")) nx = true;
      else if (is(a, "xx")) xx = true;
      else if (is(a, "gt")) gt = true;
      else if (is(a, "lt")) lt = true;
      else return err(`ERR Unsupported option ${a}`);
    }
    if (nx && (xx || gt || lt)) {
      return err("ERR NX and XX, GT or LT options at the same time are not compatible");
    }
    if (gt && lt) return err("ERR GT and LT options at the same time are not compatible");
    const n = parseInt64(argv[2]);
    if (n === null) return E.NOT_INT;
    let when = n;
    if (unitMs === 1000) {
      if (when > INT64_MAX / 1000n || when < INT64_MIN / 1000n) return E.EXPIRE_TIME(name);
      when *= 1000n;
    }
    const base = absolute ? 0n : BigInt(ks.now);
    if (when > INT64_MAX - base) return E.EXPIRE_TIME(name);
    when += base;
    const key = argv[1];
    const r = ks.get(key);
    if (r === undefined) return 0;
    const current = r.exp === 0 ? -1n : BigInt(r.exp);
    if (nx && current !== -1n) return 0;
    if (xx && current === -1n) return 0;
    if (gt && (when <= current || current === -1n)) return 0;
    if (lt && current !== -1n && when >= current) return 0;
    if (when <= BigInt(ks.now)) {
      ks.delete(key);
      return 1;
    }
    ks.setExpiry(
      key,
      when > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(when),
    );
    return 1;
  };
}

function ttlGeneric(ms: boolean, abs: boolean) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => {
    const r = ks.get(argv[1]);
    if (r === undefined) return -2;
    if (r.exp === 0) return -1;
    let t = abs ? r.exp : r.exp - ks.now;
    if (t < 0) t = 0;
    return ms ? t : Math.floor((t + 500) / 1000);
  };
}

function persist({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = ks.get(argv[1]);
  if (r === undefined || r.exp === 0) return 0;
  ks.setExpiry(argv[1], 0);
  return 1;
}

/**
 * The background sweep, sent through the order by the replica host when a key's time has
 * passed: `__EXPIRE max` deletes up to `max` keys whose expiry is at or before the operation's
 * ordered time, earliest first. Returns how many it deleted.
 */
function expireSweep({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const max = parseInt64(argv[1]);
  if (max === null || max < 1n) return E.SYNTAX;
  return ks.sweep(Number(max > 100_000n ? 100_000n : max)).length;
}

function put({ ks }: ApplyContext, argv: ByteString[]): Reply {
  setString(ks, argv[1], argv[2]);
  return OK;
}

/** The generic key and expiry commands. */
export const KEY_COMMANDS: CommandSpec[] = [
  {
    name: "del",
    arity: -2,
    flags: ["write"],
    keys: [1, -1, 1],
    group: "generic",
    summary: "Deletes one or more keys.",
    syntax: "key [key ...]",
    since: "1.0.0",
    apply: del,
  },
  {
    name: "unlink",
    arity: -2,
    flags: ["write", "fast"],
    keys: [1, -1, 1],
    group: "generic",
    summary: "Asynchronously deletes one or more keys.",
    syntax: "key [key ...]",
    since: "4.0.0",
    apply: del,
  },
  {
    name: "exists",
    arity: -2,
    flags: ["readonly", "fast"],
    keys: [1, -1, 1],
    group: "generic",
    summary: "Determines whether one or more keys exist.",
    syntax: "key [key ...]",
    since: "1.0.0",
    apply: exists,
  },
  {
    name: "type",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    group: "generic",
    summary: "Determines the type of value stored at a key.",
    syntax: "key",
    since: "1.0.0",
    apply: type,
  },
  {
    name: "rename",
    arity: 3,
    flags: ["write"],
    keys: [1, 2, 1],
    group: "generic",
    summary: "Renames a key and overwrites the destination.",
    syntax: "key newkey",
    since: "1.0.0",
    apply: renameGeneric(false),
  },
  {
    name: "renamenx",
    arity: 3,
    flags: ["write", "fast"],
    keys: [1, 2, 1],
    group: "generic",
    summary: "Renames a key only when the target key name doesn't exist.",
    syntax: "key newkey",
    since: "1.0.0",
    apply: renameGeneric(true),
  },
  {
    name: "keys",
    arity: 2,
    flags: ["readonly"],
    keys: [0, 0, 0],
    group: "generic",
    summary: "Returns all key names that match a pattern.",
    syntax: "pattern",
    since: "1.0.0",
    apply: keys,
  },
  {
    name: "scan",
    arity: -2,
    flags: ["readonly"],
    keys: [0, 0, 0],
    group: "generic",
    summary: "Iterates over the key names in the database.",
    syntax: "cursor [MATCH pattern] [COUNT count] [TYPE type]",
    since: "2.8.0",
    apply: scan,
  },
  {
    name: "dbsize",
    arity: 1,
    flags: ["readonly", "fast"],
    keys: [0, 0, 0],
    group: "server",
    summary: "Returns the number of keys in the database.",
    syntax: "",
    since: "1.0.0",
    apply: dbsize,
  },
  {
    name: "randomkey",
    arity: 1,
    flags: ["readonly"],
    keys: [0, 0, 0],
    group: "generic",
    summary: "Returns a random key name from the database.",
    syntax: "",
    since: "1.0.0",
    apply: randomkey,
  },
  {
    name: "flushall",
    arity: -1,
    flags: ["write"],
    keys: [0, 0, 0],
    group: "server",
    summary: "Removes all keys from all databases.",
    syntax: "[ASYNC | SYNC]",
    since: "1.0.0",
    apply: flushall,
  },
  {
    name: "flushdb",
    arity: -1,
    flags: ["write"],
    keys: [0, 0, 0],
    group: "server",
    summary: "Remove all keys from the current database.",
    syntax: "[ASYNC | SYNC]",
    since: "1.0.0",
    apply: flushall,
  },
  {
    name: "expire",
    arity: -3,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "generic",
    summary: "Sets the expiration time of a key in seconds.",
    syntax: "key seconds [NX | XX | GT | LT]",
    since: "1.0.0",
    apply: expireGeneric("expire", 1000, false),
  },
  {
    name: "pexpire",
    arity: -3,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "generic",
    summary: "Sets the expiration time of a key in milliseconds.",
    syntax: "key milliseconds [NX | XX | GT | LT]",
    since: "2.6.0",
    apply: expireGeneric("pexpire", 1, false),
  },
  {
    name: "expireat",
    arity: -3,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "generic",
    summary: "Sets the expiration time of a key to a Unix timestamp.",
    syntax: "key unix-time-seconds [NX | XX | GT | LT]",
    since: "1.2.0",
    apply: expireGeneric("expireat", 1000, true),
  },
  {
    name: "pexpireat",
    arity: -3,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "generic",
    summary: "Sets the expiration time of a key to a Unix milliseconds timestamp.",
    syntax: "key unix-time-milliseconds [NX | XX | GT | LT]",
    since: "2.6.0",
    apply: expireGeneric("pexpireat", 1, true),
  },
  {
    name: "ttl",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    group: "generic",
    summary: "Returns the expiration time in seconds of a key.",
    syntax: "key",
    since: "1.0.0",
    apply: ttlGeneric(false, false),
  },
  {
    name: "pttl",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    group: "generic",
    summary: "Returns the expiration time in milliseconds of a key.",
    syntax: "key",
    since: "2.6.0",
    apply: ttlGeneric(true, false),
  },
  {
    name: "expiretime",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    group: "generic",
    summary: "Returns the expiration time of a key as a Unix timestamp.",
    syntax: "key",
    since: "7.0.0",
    apply: ttlGeneric(false, true),
  },
  {
    name: "pexpiretime",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    group: "generic",
    summary: "Returns the expiration time of a key as a Unix milliseconds timestamp.",
    syntax: "key",
    since: "7.0.0",
    apply: ttlGeneric(true, true),
  },
  {
    name: "persist",
    arity: 2,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "generic",
    summary: "Removes the expiration time of a key.",
    syntax: "key",
    since: "2.2.0",
    apply: persist,
  },
  {
    name: "put",
    arity: 3,
    flags: ["write", "denyoom"],
    keys: [1, 1, 1],
    group: "lamportkv",
    summary: "lamportkv alias of SET key value.",
    syntax: "key value",
    since: "lamportkv 1",
    apply: put,
  },
  {
    name: "delete",
    arity: 2,
    flags: ["write"],
    keys: [1, 1, 1],
    group: "lamportkv",
    summary: "lamportkv alias of DEL key.",
    syntax: "key",
    since: "lamportkv 1",
    apply: del,
  },
  {
    name: "has",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    group: "lamportkv",
    summary: "lamportkv alias of EXISTS key.",
    syntax: "key",
    since: "lamportkv 1",
    apply: exists,
  },
  {
    name: "__expire",
    arity: 2,
    flags: ["write"],
    keys: [0, 0, 0],
    group: "lamportkv",
    summary: "Internal: deletes expired keys at the operation's ordered time.",
    syntax: "max",
    since: "lamportkv 2",
    apply: expireSweep,
    internal: true,
  },
];
