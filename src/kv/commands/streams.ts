/**
 * Stream commands (Redis 7.0 semantics, replies and error texts): XADD, XRANGE, XREVRANGE, XLEN,
 * XDEL, XTRIM, XREAD, consumer groups (XGROUP, XREADGROUP, XACK, XPENDING, XCLAIM, XAUTOCLAIM)
 * and XINFO STREAM|GROUPS|CONSUMERS.
 *
 * Every time these commands use is the operation's ordered time ({@link KeySpace.now}): the ID
 * `XADD key *` generates (the same on every replica, strictly increasing), delivery times in a
 * group's pending entries list, idle times and consumers' seen times. XREADGROUP changes the PEL,
 * so it is a write and takes its place in the order. XREAD and XREADGROUP, and their blocking
 * form (waiters of the replicated waiter queue), are in `stream_read.ts`.
 *
 * As in Redis 7.0, only XADD (and a deleted, overwritten or new key, or XGROUP DESTROY) wakes
 * blocked readers of a stream: the other changes touch the key without waking them.
 *
 * Approximate trimming (`MAXLEN ~`, `MINID ~`) removes whole nodes of Redis's layout, which the
 * stream models ({@link NODE_MAX_ENTRIES} entries per node, deleted ones included; Redis also
 * closes a node at 4 KiB, which is not modelled).
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import { byteOrder } from "../bytes.ts";
import type { ApplyContext, CommandSpec } from "../registry.ts";
import { E, err, NIL_ARRAY, OK, status } from "../reply.ts";
import {
  cmpId,
  type Consumer,
  formatId,
  type Group,
  idMs,
  idSeq,
  makeId,
  MAX_ID,
  MAX_SEQ,
  newGroup,
  NODE_MAX_ENTRIES,
  parseId,
  pendingIds,
  Stream,
} from "../stream.ts";
import { is, parseInt64 } from "./args.ts";
import {
  consumerOf,
  countOf,
  cstr,
  entryReply,
  int64,
  INVALID_ID,
  isErr,
  rangeReply,
  stream,
  strictId,
} from "./stream_common.ts";
import { streamKeys, XREAD_BLOCK, xreadGeneric, XREADGROUP_BLOCK } from "./stream_read.ts";

/** The default LIMIT of approximate trimming (Redis: 100 * stream-node-max-entries). */
const APPROX_TRIM_LIMIT = 100 * NODE_MAX_ENTRIES;

/** An interval bound (`-`, `+`, an ID, or `(ID` exclusive), or the error reply. */
function intervalId(arg: ByteString, start: boolean): bigint | { err: string } {
  const missing = start ? 0n : MAX_SEQ;
  if (arg.length > 1 && arg[0] === "(") {
    const id = strictId(arg.slice(1), missing);
    if (isErr(id)) return id;
    if (start) return id === MAX_ID ? err("ERR invalid start ID for the interval") : id + 1n;
    return id === 0n ? err("ERR invalid end ID for the interval") : id - 1n;
  }
  return plainId(arg, missing);
}

// ---- trimming -------------------------------------------------------------------------------

interface TrimArgs {
  strategy: "none" | "maxlen" | "minid";
  approx: boolean;
  maxlen: number;
  minid: bigint;
  /** Most entries removed (0: no limit). */
  limit: number;
}

/**
 * Redis's streamParseAddOrTrimArgsOrReply: the trim options from `argv[2]`, and for XADD
 * NOMKSTREAM and the ID. Returns the index where parsing stopped (XADD: the ID's) or an error.
 */
function parseAddOrTrim(
  argv: ByteString[],
  xadd: boolean,
): { err: string } | {
  trim: TrimArgs;
  next: number;
  noMkStream: boolean;
  id?: bigint;
  autoSeqMs?: bigint;
} {
  const trim: TrimArgs = { strategy: "none", approx: false, maxlen: 0, minid: 0n, limit: -1 };
  let noMkStream = false;
  let limitGiven = false;
  let id: bigint | undefined;
  let autoSeqMs: bigint | undefined;
  let i = 2;
  for (; i < argv.length; i++) {
    const more = argv.length - 1 - i;
    const opt = argv[i];
    if (xadd && opt === "*") break;
    if ((is(opt, "maxlen") || is(opt, "minid")) && more > 0) {
      if (trim.strategy !== "none") {
        return err(
          "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
        );
      }
      trim.approx = false;
      const next = argv[i + 1];
      if (more >= 2 && next === "~") {
        trim.approx = true;
        i++;
      } else if (more >= 2 && next === "=") i++;
      if (is(opt, "maxlen")) {
        const n = int64(argv[i + 1]);
        if (isErr(n)) return n;
        if (n < 0n) return err("ERR The MAXLEN argument must be >= 0.");
        trim.maxlen = n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
        trim.strategy = "maxlen";
      } else {
        const m = strictId(argv[i + 1]);
        if (isErr(m)) return m;
        trim.minid = m;
        trim.strategy = "minid";
      }
      i++;
    } else if (is(opt, "limit") && more > 0) {
      const n = int64(argv[i + 1]);
      if (isErr(n)) return n;
      if (n < 0n) return err("ERR The LIMIT argument must be >= 0.");
      trim.limit = n > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(n);
      limitGiven = true;
      i++;
    } else if (xadd && is(opt, "nomkstream")) {
      noMkStream = true;
    } else if (xadd) {
      const p = parseId(opt, 0n, true, true);
      if (p === null) return INVALID_ID;
      if ("id" in p) id = p.id;
      else autoSeqMs = p.ms;
      break;
    } else {
      return E.SYNTAX;
    }
  }
  if (trim.limit > 0 && trim.strategy === "none") {
    return err("ERR syntax error, LIMIT cannot be used without specifying a trimming strategy");
  }
  if (!xadd && trim.strategy === "none") {
    return err("ERR syntax error, XTRIM must be called with a trimming strategy");
  }
  if (limitGiven) {
    if (!trim.approx) {
      return err("ERR syntax error, LIMIT cannot be used without the special ~ option");
    }
  } else trim.limit = trim.approx ? APPROX_TRIM_LIMIT : 0;
  return { trim, next: i, noMkStream, id, autoSeqMs };
}

/**
 * Trims `s` as `t` says (Redis's streamTrim); returns how many entries were removed. Whole nodes
 * go while the rest still satisfies the threshold (MAXLEN) or the node's last ID is below it
 * (MINID), within the LIMIT; approximate trimming stops at the first node it cannot remove whole,
 * exact trimming removes the remaining entries below the threshold from it.
 */
function trimStream(s: Stream, t: TrimArgs): number {
  if (t.strategy === "none") return 0;
  let n = 0;
  for (const node of s.nodes) {
    const left = s.length - n;
    if (t.strategy === "maxlen" && left <= t.maxlen) break;
    if (t.limit > 0 && n + node.live > t.limit) break;
    const whole = t.strategy === "maxlen" ? left - node.live >= t.maxlen : node.lastId < t.minid;
    if (whole) {
      n += node.live;
      continue;
    }
    if (t.approx) break;
    n = t.strategy === "maxlen" ? s.length - t.maxlen : s.lowerBound(t.minid);
    break;
  }
  s.trimHead(n);
  return n;
}

// ---- XADD, XRANGE, XLEN, XDEL, XTRIM --------------------------------------------------------

function xadd({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const key = argv[1];
  const parsed = parseAddOrTrim(argv, true);
  if ("err" in parsed) return parsed;
  if (parsed.id === 0n) return err("ERR The ID specified in XADD must be greater than 0-0");
  const fieldPos = parsed.next + 1;
  const nFields = argv.length - fieldPos;
  if (nFields < 2 || nFields % 2 === 1) return E.ARITY("xadd");
  let r = stream(ks, key);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined) {
    if (parsed.noMkStream) return null;
    r = ks.put(key, "stream", new Stream());
  }
  const s = r.v;
  if (s.lastId === MAX_ID) {
    return err("ERR The stream has exhausted the last possible ID, unable to add more items");
  }
  let id: bigint;
  const tooSmall = err(
    "ERR The ID specified in XADD is equal or smaller than the target stream top item",
  );
  if (parsed.id !== undefined) {
    id = parsed.id;
  } else {
    // `ms-*`, or `*` at the operation's ordered time: Redis's streamNextID.
    const ms = parsed.autoSeqMs ?? BigInt(Math.max(0, Math.floor(ks.now)));
    const lastMs = idMs(s.lastId);
    if (parsed.autoSeqMs !== undefined) {
      if (lastMs === ms) {
        if (idSeq(s.lastId) === MAX_SEQ) return tooSmall;
        id = s.lastId + 1n;
      } else id = makeId(ms, 0);
    } else {
      id = ms > lastMs ? makeId(ms, 0) : s.lastId + 1n;
    }
  }
  if (id <= s.lastId) return tooSmall;
  s.append(id, argv.slice(fieldPos));
  trimStream(s, parsed.trim);
  ks.touch(key); // wakes blocked readers
  return formatId(id);
}

function xrangeGeneric(rev: boolean) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => {
    const start = intervalId(rev ? argv[3] : argv[2], true);
    if (isErr(start)) return start;
    const end = intervalId(rev ? argv[2] : argv[3], false);
    if (isErr(end)) return end;
    let count = -1;
    for (let j = 4; j < argv.length; j++) {
      if (is(argv[j], "count") && j + 1 < argv.length) {
        const n = int64(argv[++j]);
        if (isErr(n)) return n;
        count = countOf(n);
      } else return E.SYNTAX;
    }
    const r = stream(ks, argv[1]);
    if (r === null) return E.WRONGTYPE;
    if (r === undefined) return [];
    if (count === 0) return NIL_ARRAY;
    const [from, to] = r.v.range(start, end);
    return rangeReply(r.v, from, to, count === -1 ? 0 : count, rev);
  };
}

function xlen({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = stream(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  return r === undefined ? 0 : r.v.length;
}

function xdel({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = stream(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined) return 0;
  const ids: bigint[] = [];
  for (let j = 2; j < argv.length; j++) {
    const id = strictId(argv[j]);
    if (isErr(id)) return id;
    ids.push(id);
  }
  let n = 0;
  for (const id of ids) if (r.v.delete(id)) n++;
  if (n > 0) ks.touch(argv[1], false);
  return n;
}

function xtrim({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const parsed = parseAddOrTrim(argv, false);
  if ("err" in parsed) return parsed;
  const r = stream(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined) return 0;
  const n = trimStream(r.v, parsed.trim);
  if (n > 0) ks.touch(argv[1], false);
  return n;
}

// ---- XGROUP -----------------------------------------------------------------------------------

/** Subcommand arities (Redis 7.0), name included. */
const XGROUP_ARITY: Record<string, number> = {
  create: -5,
  setid: -5,
  destroy: 4,
  createconsumer: 5,
  delconsumer: 5,
  help: 2,
};

const XGROUP_HELP: string[] = [
  "XGROUP <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "CREATE <key> <groupname> <id|$> [option]",
  "    Create a new consumer group. Options are:",
  "    * MKSTREAM",
  "      Create the empty stream if it does not exist.",
  "    * ENTRIESREAD entries_read",
  "      Set the group's entries_read counter (internal use).",
  "CREATECONSUMER <key> <groupname> <consumer>",
  "    Create a new consumer in the specified group.",
  "DELCONSUMER <key> <groupname> <consumer>",
  "    Remove the specified consumer.",
  "DESTROY <key> <groupname>",
  "    Remove the specified group.",
  "SETID <key> <groupname> <id|$> [ENTRIESREAD entries_read]",
  "    Set the current group ID and entries_read counter.",
  "HELP",
  "    Prints this help.",
];

function subSyntax(cmd: string, argv: ByteString[]): { err: string } {
  return err(
    `ERR unknown subcommand or wrong number of arguments for '${cstr(argv[1]).slice(0, 128)}'. ` +
      `Try ${cmd} HELP.`,
  );
}

function xgroup({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const sub = argv[1].toLowerCase(); // known, with its arity: checked by the registry
  if (sub === "help") return XGROUP_HELP.map(status);
  const key = argv[2];
  const groupName = argv[3];
  let mkStream = false;
  let entriesRead = -1;
  if ((sub === "create" || sub === "setid") && argv.length >= 6) {
    for (let i = 5; i < argv.length;) {
      if (sub === "create" && is(argv[i], "mkstream")) {
        mkStream = true;
        i++;
      } else if (is(argv[i], "entriesread") && i + 1 < argv.length) {
        const n = int64(argv[i + 1]);
        if (isErr(n)) return n;
        if (n < 0n && n !== -1n) return err("ERR value for ENTRIESREAD must be positive or -1");
        entriesRead = Number(n);
        i += 2;
      } else return subSyntax("XGROUP", argv);
    }
  }
  const r = stream(ks, key);
  if (r === null) return E.WRONGTYPE;
  let g: Group | undefined;
  if (!mkStream) {
    if (r === undefined) {
      return err(
        "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may " +
          "want to use the MKSTREAM option to create an empty stream automatically.",
      );
    }
    g = r.v.groups.get(groupName);
    if (g === undefined && sub !== "create" && sub !== "destroy") {
      return err(`NOGROUP No such consumer group '${cstr(groupName)}' for key name '${cstr(key)}'`);
    }
  } else g = r?.v.groups.get(groupName);
  switch (sub) {
    case "create": {
      if (argv.length > 8) return subSyntax("XGROUP", argv);
      let id: bigint;
      if (argv[4] === "$") id = r?.v.lastId ?? 0n;
      else {
        const p = strictId(argv[4]);
        if (isErr(p)) return p;
        id = p;
      }
      const s = r?.v ?? ks.put(key, "stream", new Stream()).v;
      if (s.groups.has(groupName)) {
        if (r === undefined) ks.touch(key, false);
        return err("BUSYGROUP Consumer Group name already exists");
      }
      s.groups.set(groupName, newGroup(id, entriesRead));
      ks.touch(key, false);
      return OK;
    }
    case "setid": {
      if (argv.length !== 5 && argv.length !== 7) return subSyntax("XGROUP", argv);
      let id: bigint;
      if (argv[4] === "$") id = r!.v.lastId;
      else {
        const p = plainId(argv[4]);
        if (isErr(p)) return p;
        id = p;
      }
      g!.lastId = id;
      g!.entriesRead = entriesRead;
      ks.touch(key, false);
      return OK;
    }
    case "destroy":
      if (g === undefined) return 0;
      r!.v.groups.delete(groupName);
      ks.touch(key); // its blocked readers end with NOGROUP
      return 1;
    case "createconsumer": {
      if (g!.consumers.has(argv[4])) return 0;
      g!.consumers.set(argv[4], { seen: ks.now, pending: new Set() });
      ks.touch(key, false);
      return 1;
    }
    default: {
      // delconsumer
      const c = g!.consumers.get(argv[4]);
      if (c === undefined) return 0;
      for (const id of c.pending) g!.pel.delete(id);
      g!.consumers.delete(argv[4]);
      ks.touch(key, false);
      return c.pending.size;
    }
  }
}

/** A non-strict ID (`-` and `+` allowed), or the error reply. */
function plainId(arg: ByteString, missingSeq = 0n): bigint | { err: string } {
  const p = parseId(arg, missingSeq, false);
  return p === null || !("id" in p) ? INVALID_ID : p.id;
}

// ---- XACK, XPENDING, XCLAIM, XAUTOCLAIM -------------------------------------------------------

/** Removes `id` from `g`'s PEL and its consumer's; true when it was pending. */
function unpend(g: Group, id: bigint): boolean {
  const p = g.pel.get(id);
  if (p === undefined) return false;
  g.pel.delete(id);
  g.consumers.get(p.consumer)?.pending.delete(id);
  return true;
}

function xack({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const r = stream(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  const g = r?.v.groups.get(argv[2]);
  if (g === undefined) return 0;
  const ids: bigint[] = [];
  for (let j = 3; j < argv.length; j++) {
    const id = strictId(argv[j]);
    if (isErr(id)) return id;
    ids.push(id);
  }
  let n = 0;
  for (const id of ids) if (unpend(g, id)) n++;
  if (n > 0) ks.touch(argv[1], false);
  return n;
}

function noGroup(key: ByteString, group: ByteString): { err: string } {
  return err(`NOGROUP No such key '${cstr(key)}' or consumer group '${cstr(group)}'`);
}

/** Names in Redis's radix-tree order (byte order). */
function byName<T>(m: Map<ByteString, T>): [ByteString, T][] {
  return [...m].sort(([a], [b]) => byteOrder(a, b));
}

function xpending({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const summary = argv.length === 3;
  if (!summary && (argv.length < 6 || argv.length > 9)) return E.SYNTAX;
  let start = 0n;
  let end = MAX_ID;
  let count = 0;
  let minIdle = 0n;
  let consumerName: ByteString | undefined;
  if (!summary) {
    let at = 3;
    if (is(argv[3], "idle")) {
      const n = int64(argv[4]);
      if (isErr(n)) return n;
      minIdle = n;
      if (argv.length < 8) return E.SYNTAX;
      at += 2;
    }
    const c = int64(argv[at + 2]);
    if (isErr(c)) return c;
    count = countOf(c);
    const s = intervalId(argv[at], true);
    if (isErr(s)) return s;
    const e = intervalId(argv[at + 1], false);
    if (isErr(e)) return e;
    start = s;
    end = e;
    if (at + 3 < argv.length) consumerName = argv[at + 3];
  }
  const r = stream(ks, argv[1]);
  if (r === null) return E.WRONGTYPE;
  const g = r?.v.groups.get(argv[2]);
  if (g === undefined) return noGroup(argv[1], argv[2]);
  if (summary) {
    if (g.pel.size === 0) return [0, null, null, NIL_ARRAY];
    const ids = pendingIds(g);
    const consumers: Reply[] = [];
    for (const [name, c] of byName(g.consumers)) {
      if (c.pending.size > 0) consumers.push([name, String(c.pending.size)]);
    }
    return [g.pel.size, formatId(ids[0]), formatId(ids[ids.length - 1]), consumers];
  }
  let ids: bigint[];
  if (consumerName !== undefined) {
    const c = g.consumers.get(consumerName);
    if (c === undefined) return [];
    ids = [...c.pending].sort(cmpId);
  } else ids = pendingIds(g);
  const out: Reply[] = [];
  for (const id of ids) {
    if (count === 0) break;
    if (id < start) continue;
    if (id > end) break;
    const p = g.pel.get(id)!;
    const idle = ks.now - p.time;
    if (minIdle !== 0n && BigInt(idle) < minIdle) continue;
    count--;
    out.push([formatId(id), p.consumer, Math.max(0, idle), p.count]);
  }
  return out;
}

/** Moves pending `id` (entry `p`) to consumer `name` at `time`, counting a delivery or not. */
function claim(
  g: Group,
  id: bigint,
  name: ByteString,
  c: Consumer,
  time: number,
  count: number | "incr" | "keep",
): void {
  let p = g.pel.get(id);
  if (p === undefined) {
    p = { consumer: "", time, count: 1 };
    g.pel.set(id, p);
  }
  if (p.consumer !== name) {
    g.consumers.get(p.consumer)?.pending.delete(id);
    p.consumer = name;
    c.pending.add(id);
  }
  p.time = time;
  if (typeof count === "number") p.count = count;
  else if (count === "incr") p.count++;
}

function xclaim({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const [, key, groupName, name] = argv;
  const r = stream(ks, key);
  if (r === null) return E.WRONGTYPE;
  const g = r?.v.groups.get(groupName);
  if (r === undefined || g === undefined) return noGroup(key, groupName);
  const s = r.v;
  const mi = int64(argv[4], "Invalid min-idle-time argument for XCLAIM");
  if (isErr(mi)) return mi;
  const minIdle = mi < 0n ? 0n : mi;
  const ids: bigint[] = [];
  let j = 5;
  for (; j < argv.length; j++) {
    const p = parseId(argv[j], 0n);
    if (p === null || !("id" in p)) break;
    ids.push(p.id);
  }
  const now = ks.now;
  let force = false;
  let justId = false;
  let time = -1n;
  let retry = -1n;
  let lastId = 0n;
  for (; j < argv.length; j++) {
    const more = argv.length - 1 - j;
    const opt = argv[j];
    if (is(opt, "force")) force = true;
    else if (is(opt, "justid")) justId = true;
    else if (is(opt, "idle") && more > 0) {
      const n = int64(argv[++j], "Invalid IDLE option argument for XCLAIM");
      if (isErr(n)) return n;
      time = BigInt(now) - n;
    } else if (is(opt, "time") && more > 0) {
      const n = int64(argv[++j], "Invalid TIME option argument for XCLAIM");
      if (isErr(n)) return n;
      time = n;
    } else if (is(opt, "retrycount") && more > 0) {
      const n = int64(argv[++j], "Invalid RETRYCOUNT option argument for XCLAIM");
      if (isErr(n)) return n;
      retry = n;
    } else if (is(opt, "lastid") && more > 0) {
      const id = strictId(argv[++j]);
      if (isErr(id)) return id;
      lastId = id;
    } else return err(`ERR Unrecognized XCLAIM option '${cstr(opt)}'`);
  }
  let changed = false;
  if (lastId > g.lastId) {
    g.lastId = lastId;
    changed = true;
  }
  const delivery = time === -1n || time < 0n || time > BigInt(now) ? now : Number(time);
  let c: Consumer | undefined;
  const out: Reply[] = [];
  for (const id of ids) {
    const p = g.pel.get(id);
    const i = s.indexOf(id);
    if (i < 0) {
      if (p !== undefined) {
        unpend(g, id);
        changed = true;
      }
      continue;
    }
    if (p === undefined && !force) continue;
    if (p !== undefined && minIdle !== 0n && BigInt(now - p.time) < minIdle) continue;
    c ??= consumerOf(g, name, now);
    const count = retry >= 0n ? Number(retry) : justId ? "keep" : "incr";
    claim(g, id, name, c, delivery, count);
    changed = true;
    out.push(justId ? formatId(id) : entryReply(s, i));
  }
  if (changed) ks.touch(key, false);
  return out;
}

function xautoclaim({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const [, key, groupName, name] = argv;
  const mi = int64(argv[4], "Invalid min-idle-time argument for XAUTOCLAIM");
  if (isErr(mi)) return mi;
  const minIdle = mi < 0n ? 0n : mi;
  const start = intervalId(argv[5], true);
  if (isErr(start)) return start;
  let count = 100;
  let justId = false;
  for (let j = 6; j < argv.length; j++) {
    const more = argv.length - 1 - j;
    if (is(argv[j], "count") && more > 0) {
      const n = parseInt64(argv[j + 1]);
      if (n === null || n < 1n || n > (1n << 63n) / 10n) return err("ERR COUNT must be > 0");
      count = countOf(n);
      j++;
    } else if (is(argv[j], "justid")) justId = true;
    else return E.SYNTAX;
  }
  const r = stream(ks, key);
  if (r === null) return E.WRONGTYPE;
  const g = r?.v.groups.get(groupName);
  if (r === undefined || g === undefined) return noGroup(key, groupName);
  const s = r.v;
  const now = ks.now;
  let attempts = count * 10;
  const ids = pendingIds(g).filter((id) => id >= start);
  const claimed: Reply[] = [];
  const deleted: Reply[] = [];
  let c: Consumer | undefined;
  let at = 0;
  for (; attempts > 0 && count > 0 && at < ids.length; at++) {
    attempts--;
    const id = ids[at];
    const p = g.pel.get(id)!;
    const i = s.indexOf(id);
    if (i < 0) {
      unpend(g, id);
      deleted.push(formatId(id));
      count--;
      continue;
    }
    if (minIdle !== 0n && BigInt(now - p.time) < minIdle) continue;
    c ??= consumerOf(g, name, now);
    claim(g, id, name, c, now, justId ? "keep" : "incr");
    claimed.push(justId ? formatId(id) : entryReply(s, i));
    count--;
  }
  if (claimed.length > 0 || deleted.length > 0 || c !== undefined) ks.touch(key, false);
  const cursor = at < ids.length ? formatId(ids[at]) : "0-0";
  return [cursor, claimed, deleted];
}

// ---- XINFO ------------------------------------------------------------------------------------

const XINFO_ARITY: Record<string, number> = { stream: -3, groups: 3, consumers: 4, help: 2 };

const XINFO_HELP: string[] = [
  "XINFO <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "CONSUMERS <key> <groupname>",
  "    Show consumers of <groupname>.",
  "GROUPS <key>",
  "    Show the stream consumer groups.",
  "STREAM <key> [FULL [COUNT <count>]",
  "    Show information about the stream.",
  "HELP",
  "    Prints this help.",
];

function groupInfo(s: Stream, name: ByteString, g: Group): Reply {
  const lag = s.lag(g);
  return [
    "name",
    name,
    "consumers",
    g.consumers.size,
    "pending",
    g.pel.size,
    "last-delivered-id",
    formatId(g.lastId),
    "entries-read",
    g.entriesRead >= 0 ? g.entriesRead : null,
    "lag",
    lag,
  ];
}

function xinfo({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const sub = argv[1].toLowerCase(); // known, with its arity: checked by the registry
  if (sub === "help") return XINFO_HELP.map(status);
  const key = argv[2];
  const r = stream(ks, key);
  if (r === null) return E.WRONGTYPE;
  if (r === undefined) return err("ERR no such key");
  const s = r.v;
  if (sub === "groups") return byName(s.groups).map(([n, g]) => groupInfo(s, n, g));
  if (sub === "consumers") {
    const g = s.groups.get(argv[3]);
    if (g === undefined) {
      return err(`NOGROUP No such consumer group '${cstr(argv[3])}' for key name '${cstr(key)}'`);
    }
    return byName(g.consumers).map(([n, c]) => [
      "name",
      n,
      "pending",
      c.pending.size,
      "idle",
      Math.max(0, ks.now - c.seen),
    ]);
  }
  let full = false;
  let count = 10;
  if (argv.length > 3) {
    if (!is(argv[3], "full")) return subSyntax("XINFO", argv);
    full = true;
    if (argv.length === 6 && is(argv[4], "count")) {
      const n = int64(argv[5]);
      if (isErr(n)) return n;
      count = countOf(n);
    } else if (argv.length > 4) return subSyntax("XINFO", argv);
  }
  const head: Reply[] = [
    "length",
    s.length,
    "radix-tree-keys",
    s.nodes.length,
    "radix-tree-nodes",
    s.nodes.length + 1,
    "last-generated-id",
    formatId(s.lastId),
    "max-deleted-entry-id",
    formatId(s.maxDeletedId),
    "entries-added",
    s.entriesAdded,
    "recorded-first-entry-id",
    formatId(s.firstId),
  ];
  if (full) return [...head, ...streamFull(s, count)];
  return [
    ...head,
    "groups",
    s.groups.size,
    "first-entry",
    s.length > 0 ? entryReply(s, 0) : null,
    "last-entry",
    s.length > 0 ? entryReply(s, s.length - 1) : null,
  ];
}

/** The rest of `XINFO STREAM key FULL [COUNT count]`: entries, groups, PELs, consumers. */
function streamFull(s: Stream, count: number): Reply[] {
  const upTo = <T>(xs: T[]) => (count === 0 ? xs : xs.slice(0, count));
  const groups = byName(s.groups).map(([name, g]) => {
    const pel = upTo(pendingIds(g)).map((id) => {
      const p = g.pel.get(id)!;
      return [formatId(id), p.consumer, p.time, p.count];
    });
    const consumers = byName(g.consumers).map(([cname, c]) => [
      "name",
      cname,
      "seen-time",
      c.seen,
      "pel-count",
      c.pending.size,
      "pending",
      upTo([...c.pending].sort(cmpId)).map((id) => {
        const p = g.pel.get(id)!;
        return [formatId(id), p.time, p.count];
      }),
    ]);
    return [
      "name",
      name,
      "last-delivered-id",
      formatId(g.lastId),
      "entries-read",
      g.entriesRead >= 0 ? g.entriesRead : null,
      "lag",
      s.lag(g),
      "pel-count",
      g.pel.size,
      "pending",
      pel,
      "consumers",
      consumers,
    ];
  });
  return ["entries", rangeReply(s, 0, s.length, count, false), "groups", groups];
}

// ---- the table ----------------------------------------------------------------------------------

const W: CommandSpec["flags"] = ["write", "denyoom"];
const R: CommandSpec["flags"] = ["readonly"];

/** The stream commands. */
export const STREAM_COMMANDS: CommandSpec[] = [
  {
    name: "xadd",
    arity: -5,
    flags: ["write", "denyoom", "fast"],
    keys: [1, 1, 1],
    group: "stream",
    summary: "Appends a new message to a stream. Creates the key if it doesn't exist.",
    syntax: "key [NOMKSTREAM] [<MAXLEN | MINID> [= | ~] threshold [LIMIT count]] <* | id> " +
      "field value [field value ...]",
    since: "5.0.0",
    apply: xadd,
  },
  {
    name: "xrange",
    arity: -4,
    flags: R,
    keys: [1, 1, 1],
    group: "stream",
    summary: "Returns the messages from a stream within a range of IDs.",
    syntax: "key start end [COUNT count]",
    since: "5.0.0",
    apply: xrangeGeneric(false),
  },
  {
    name: "xrevrange",
    arity: -4,
    flags: R,
    keys: [1, 1, 1],
    group: "stream",
    summary: "Returns the messages from a stream within a range of IDs in reverse order.",
    syntax: "key end start [COUNT count]",
    since: "5.0.0",
    apply: xrangeGeneric(true),
  },
  {
    name: "xlen",
    arity: 2,
    flags: ["readonly", "fast"],
    keys: [1, 1, 1],
    group: "stream",
    summary: "Return the number of messages in a stream.",
    syntax: "key",
    since: "5.0.0",
    apply: xlen,
  },
  {
    name: "xdel",
    arity: -3,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "stream",
    summary: "Returns the number of messages after removing them from a stream.",
    syntax: "key id [id ...]",
    since: "5.0.0",
    apply: xdel,
  },
  {
    name: "xtrim",
    arity: -4,
    flags: ["write"],
    keys: [1, 1, 1],
    group: "stream",
    summary: "Deletes messages from the beginning of a stream.",
    syntax: "key <MAXLEN | MINID> [= | ~] threshold [LIMIT count]",
    since: "5.0.0",
    apply: xtrim,
  },
  {
    name: "xread",
    arity: -4,
    flags: ["readonly", "blocking"],
    // Redis: movable keys (after STREAMS), so no fixed key positions.
    keys: [0, 0, 0],
    movableKeys: streamKeys,
    group: "stream",
    summary: "Returns messages from multiple streams with IDs greater than the ones requested.",
    syntax: "[COUNT count] [BLOCK milliseconds] STREAMS key [key ...] id [id ...]",
    since: "5.0.0",
    apply: xreadGeneric(false),
    block: XREAD_BLOCK,
  },
  {
    name: "xreadgroup",
    arity: -7,
    flags: ["write", "blocking"],
    keys: [0, 0, 0],
    movableKeys: streamKeys,
    group: "stream",
    summary: "Returns new or historical messages from a stream for a consumer in a group.",
    syntax: "GROUP group consumer [COUNT count] [BLOCK milliseconds] [NOACK] STREAMS key " +
      "[key ...] id [id ...]",
    since: "5.0.0",
    apply: xreadGeneric(true),
    block: XREADGROUP_BLOCK,
  },
  {
    name: "xgroup",
    arity: -2,
    flags: W,
    keys: [2, 2, 1],
    group: "stream",
    summary: "A container for consumer groups commands.",
    syntax: "<CREATE | SETID | DESTROY | CREATECONSUMER | DELCONSUMER | HELP> [arguments]",
    since: "5.0.0",
    apply: xgroup,
    subcommands: XGROUP_ARITY,
  },
  {
    name: "xack",
    arity: -4,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "stream",
    summary: "Returns the number of messages that were successfully acknowledged by the " +
      "consumer group member of a stream.",
    syntax: "key group id [id ...]",
    since: "5.0.0",
    apply: xack,
  },
  {
    name: "xpending",
    arity: -3,
    flags: R,
    keys: [1, 1, 1],
    group: "stream",
    summary: "Returns the information and entries from a stream consumer group's pending " +
      "entries list.",
    syntax: "key group [[IDLE min-idle-time] start end count [consumer]]",
    since: "5.0.0",
    apply: xpending,
  },
  {
    name: "xclaim",
    arity: -6,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "stream",
    summary: "Changes, or acquires, ownership of a message in a consumer group, as if the " +
      "message was delivered a consumer group member.",
    syntax:
      "key group consumer min-idle-time id [id ...] [IDLE ms] [TIME unix-time-milliseconds] " +
      "[RETRYCOUNT count] [FORCE] [JUSTID] [LASTID lastid]",
    since: "5.0.0",
    apply: xclaim,
  },
  {
    name: "xautoclaim",
    arity: -6,
    flags: ["write", "fast"],
    keys: [1, 1, 1],
    group: "stream",
    summary: "Changes, or acquires, ownership of messages in a consumer group, as if the " +
      "messages were delivered to as consumer group member.",
    syntax: "key group consumer min-idle-time start [COUNT count] [JUSTID]",
    since: "6.2.0",
    apply: xautoclaim,
  },
  {
    name: "xinfo",
    arity: -2,
    flags: R,
    keys: [2, 2, 1],
    group: "stream",
    summary: "A container for stream introspection commands.",
    syntax: "<STREAM | GROUPS | CONSUMERS | HELP> [arguments]",
    since: "5.0.0",
    apply: xinfo,
    subcommands: XINFO_ARITY,
  },
];
