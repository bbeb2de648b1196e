/**
 * The blocking list pops (BLPOP, BRPOP, BLMOVE, BRPOPLPUSH, BLMPOP) and the internal operations
 * of the waiter queue (`__BLOCK`, `__BFINISH`, `__BCANCEL`, `__BDROP`; see `../waiters.ts`).
 *
 * Each blocking command has a {@link BlockSpec} (how it parses, takes, finishes and gives back)
 * and, as `apply`, its non-blocking form, which is what it does inside MULTI (as in Redis: no
 * element, no wait). A client's blocking command outside a transaction reaches the state machine
 * as `__BLOCK <waiter id> <command line>`, built by its replica (`src/runtime/blocked_clients.ts`).
 *
 * Timeouts are parsed as Redis 7.0 parses them (seconds as a long double, `0` is forever) with
 * its error texts.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { KeySpace } from "../keyspace.ts";
import type { ApplyContext, CommandSpec } from "../registry.ts";
import { type BlockSpec, type Handed, serveNow } from "../waiters.ts";
import { SummedDeque } from "../digest_hash.ts";
import { E, err, NIL_ARRAY } from "../reply.ts";
import { end, parseMpop, popN } from "./lists.ts";
import { parseLongDouble } from "../long_double.ts";

/**
 * Redis 7.0's getTimeoutFromObjectOrReply (seconds): the timeout in ms, truncated (`0.0001` is 0,
 * forever), or the error reply. Redis converts `seconds × 1000` to a 64-bit integer, so a value
 * beyond its range (`inf`, `1e17`) wraps negative: it answers "timeout is negative" for those too.
 */
export function parseTimeout(arg: ByteString): number | { err: string } {
  const x = parseLongDouble(arg);
  if (x === null) return err("ERR timeout is not a float or out of range");
  const ms = "inf" in x ? NaN : Math.trunc((x.neg ? -1 : 1) * Number(x.m) * 2 ** x.e * 1000);
  if (!(ms >= 0 && ms < 2 ** 63)) return err("ERR timeout is negative");
  return ms === 0 ? 0 : ms;
}

/** Takes `count` elements from one end of the list at `key`. */
function takeList(ks: KeySpace, key: ByteString, head: boolean, count: number) {
  const r = ks.typed(key, "list");
  if (r === null) return E.WRONGTYPE;
  if (r === undefined || r.v.length === 0) return undefined;
  return { key, items: popN(ks, key, r, head, count), head };
}

/** Puts taken elements back at the end they came from (lost only if the key changed type). */
function undoList(ks: KeySpace, _argv: readonly ByteString[], h: Handed): void {
  let r = ks.typed(h.key, "list");
  if (r === null) return;
  r ??= ks.put(h.key, "list", new SummedDeque());
  for (let i = h.items.length - 1; i >= 0; i--) {
    if (h.head) r.v.pushFront(h.items[i]);
    else r.v.pushBack(h.items[i]);
  }
  ks.touch(h.key);
}

/** BLPOP / BRPOP: `key [key ...] timeout`, one element from the first non-empty list. */
function popSpec(head: boolean): BlockSpec {
  return {
    parse(argv) {
      const t = parseTimeout(argv[argv.length - 1]);
      return typeof t === "number" ? { keys: argv.slice(1, -1), timeoutMs: t } : t;
    },
    take: (ks, _argv, key) => takeList(ks, key, head, 1),
    finish: (_ks, _argv, h) => [h.key, h.items[0]],
    undo: undoList,
  };
}

/** BLMPOP: `timeout numkeys key [key ...] <LEFT | RIGHT> [COUNT count]`. */
const BLMPOP: BlockSpec = {
  parse(argv) {
    const p = parseMpop(argv, 2);
    if ("err" in p) return p;
    const t = parseTimeout(argv[1]);
    return typeof t === "number" ? { keys: p.keys, timeoutMs: t } : t;
  },
  take(ks, argv, key) {
    const p = parseMpop(argv, 2) as { head: boolean; count: number };
    return takeList(ks, key, p.head, p.count);
  },
  finish: (_ks, _argv, h) => [h.key, h.items],
  undo: undoList,
};

/** BLMOVE (`src dst <LEFT | RIGHT> <LEFT | RIGHT> timeout`) and BRPOPLPUSH (`src dst timeout`). */
function moveSpec(rpoplpush: boolean): BlockSpec {
  const ends = (argv: readonly ByteString[]) =>
    rpoplpush ? { from: false, to: true } : { from: end(argv[3]), to: end(argv[4]) };
  return {
    parse(argv) {
      const { from, to } = ends(argv);
      if (from === null || to === null) return E.SYNTAX;
      const t = parseTimeout(argv[argv.length - 1]);
      return typeof t === "number" ? { keys: [argv[1]], timeoutMs: t } : t;
    },
    take(ks, argv, key) {
      const src = ks.typed(key, "list");
      if (src === null) return E.WRONGTYPE;
      if (src === undefined || src.v.length === 0) return undefined;
      if (ks.typed(argv[2], "list") === null) return E.WRONGTYPE;
      return takeList(ks, key, ends(argv).from!, 1);
    },
    finish(ks, argv, h) {
      const dst = ks.typed(argv[2], "list");
      if (dst === null) return E.WRONGTYPE;
      const target = dst ?? ks.put(argv[2], "list", new SummedDeque());
      if (ends(argv).to) target.v.pushFront(h.items[0]);
      else target.v.pushBack(h.items[0]);
      ks.touch(argv[2]);
      return h.items[0];
    },
    undo: undoList,
  };
}

/** The non-blocking form of a blocking command (inside MULTI): `empty` when nothing is there. */
function applyNow(spec: BlockSpec, empty: Reply) {
  return ({ ks }: ApplyContext, argv: ByteString[]): Reply => {
    const r = serveNow(spec, ks, argv);
    if ("err" in r) return { err: r.err };
    return "reply" in r ? r.reply : empty;
  };
}

/** An owner: `<replica>.<incarnation>`; a waiter id: `<owner>/<n>`. */
const OWNER = /^[0-9]+\.[0-9A-Za-z_-]+$/;
const WAITER_ID = /^[0-9]+\.[0-9A-Za-z_-]+\/[0-9]+$/;

/** What a waiter operation sees: the apply context with its waiter queue. */
type WaiterContext = ApplyContext & { waiters: NonNullable<ApplyContext["waiters"]> };

/** An internal waiter operation: `argv[1]` is a waiter id (an owner for `__bdrop`). */
function waiterOp(
  name: string,
  arity: number,
  summary: string,
  run: (ctx: WaiterContext, argv: ByteString[]) => Reply,
): CommandSpec {
  return {
    name,
    arity,
    flags: ["write"],
    keys: [0, 0, 0],
    group: "lamportkv",
    summary,
    syntax: "",
    since: "1.0.0",
    internal: true,
    apply: (ctx, argv) => {
      if (ctx.waiters === undefined) return err(`ERR '${name}' needs the waiter queue`);
      const ok = name === "__bdrop" ? OWNER.test(argv[1]) : WAITER_ID.test(argv[1]);
      if (!ok) return err("ERR malformed waiter id");
      return run(ctx as WaiterContext, argv);
    },
  };
}

/** Redis's flags: BLMPOP is not `noscript`, the others are. */
const POP_FLAGS = ["write", "noscript", "blocking"] as const;
const MOVE_FLAGS = ["write", "denyoom", "noscript", "blocking"] as const;
const MOVE_SUMMARY =
  "Pop an element from a list, push it to another list and return it; or block until one is " +
  "available";
const BLPOP = popSpec(true);
const BRPOP = popSpec(false);
const BLMOVE = moveSpec(false);
const BRPOPLPUSH = moveSpec(true);

/** The blocking list commands and the waiter queue's internal operations. */
export const BLOCKING_COMMANDS: CommandSpec[] = [
  {
    name: "blpop",
    arity: -3,
    flags: POP_FLAGS,
    keys: [1, -2, 1],
    group: "list",
    summary: "Remove and get the first element in a list, or block until one is available",
    syntax: "key [key ...] timeout",
    since: "2.0.0",
    apply: applyNow(BLPOP, NIL_ARRAY),
    block: BLPOP,
  },
  {
    name: "brpop",
    arity: -3,
    flags: POP_FLAGS,
    keys: [1, -2, 1],
    group: "list",
    summary: "Remove and get the last element in a list, or block until one is available",
    syntax: "key [key ...] timeout",
    since: "2.0.0",
    apply: applyNow(BRPOP, NIL_ARRAY),
    block: BRPOP,
  },
  {
    name: "blmove",
    arity: 6,
    flags: MOVE_FLAGS,
    keys: [1, 2, 1],
    group: "list",
    summary: MOVE_SUMMARY,
    syntax: "source destination <LEFT | RIGHT> <LEFT | RIGHT> timeout",
    since: "6.2.0",
    apply: applyNow(BLMOVE, null),
    block: BLMOVE,
  },
  {
    name: "brpoplpush",
    arity: 4,
    flags: MOVE_FLAGS,
    keys: [1, 2, 1],
    group: "list",
    summary: MOVE_SUMMARY,
    syntax: "source destination timeout",
    since: "2.2.0",
    apply: applyNow(BRPOPLPUSH, null),
    block: BRPOPLPUSH,
  },
  {
    // Movable keys after numkeys, as LMPOP.
    name: "blmpop",
    arity: -5,
    flags: ["write", "blocking"],
    keys: [0, 0, 0],
    group: "list",
    summary: "Pop elements from a list, or block until one is available",
    syntax: "timeout numkeys key [key ...] <LEFT | RIGHT> [COUNT count]",
    since: "7.0.0",
    apply: applyNow(BLMPOP, NIL_ARRAY),
    block: BLMPOP,
  },
  waiterOp(
    "__block",
    -3,
    "A client's blocking command: served now, or its waiter is registered",
    ({ ks, waiters }, argv) => waiters.block(ks, argv[1], argv.slice(2), ks.now),
  ),
  waiterOp(
    "__bfinish",
    2,
    "The owner resolves its waiter: what it was handed, else a timeout",
    ({ ks, waiters }, argv) => waiters.finish(ks, argv[1]),
  ),
  waiterOp(
    "__bcancel",
    2,
    "The waiter's client is gone: remove it, giving back what it was handed",
    ({ ks, waiters }, argv) => (waiters.cancel(ks, argv[1]) ? 1 : 0),
  ),
  waiterOp(
    "__bdrop",
    2,
    "Cancel every waiter of an owner that can no longer answer",
    ({ ks, waiters }, argv) => waiters.drop(ks, argv[1]),
  ),
];
