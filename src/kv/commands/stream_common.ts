/**
 * Helpers shared by the stream commands (`streams.ts`) and the stream reads (`stream_read.ts`):
 * argument parsing with Redis's error replies, entry replies, and consumer bookkeeping.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { KeySpace, Rec } from "../keyspace.ts";
import { E, err } from "../reply.ts";
import { type Consumer, type Group, parseId, type Stream } from "../stream.ts";
import { parseInt64 } from "./args.ts";

/** Redis's reply to a malformed stream ID. */
export const INVALID_ID: { err: string } = err(
  "ERR Invalid stream ID specified as stream command argument",
);

/** `s` up to its first NUL: how Redis's `%s` prints a name in an error message. */
export function cstr(s: ByteString): ByteString {
  const nul = s.indexOf("\0");
  return nul < 0 ? s : s.slice(0, nul);
}

/** The stream at `key`: its record, undefined when absent, null when of another type. */
export function stream(ks: KeySpace, key: ByteString): Rec<"stream"> | undefined | null {
  return ks.typed(key, "stream");
}

/** Redis's getLongLongFromObjectOrReply: the integer, or the error reply (`message` or NOT_INT). */
export function int64(arg: ByteString, message?: string): bigint | { err: string } {
  const n = parseInt64(arg);
  return n === null ? (message === undefined ? E.NOT_INT : err(`ERR ${message}`)) : n;
}

/** True for an error reply. */
export function isErr(v: unknown): v is { err: string } {
  return typeof v === "object" && v !== null && "err" in v;
}

/** A COUNT argument as a number: negative counts as 0 (Redis), huge ones capped at 2^32. */
export function countOf(n: bigint): number {
  return n < 0n ? 0 : Number(n > 1n << 32n ? 1n << 32n : n);
}

/** A strict ID argument (no `-`/`+`), or the error reply. */
export function strictId(arg: ByteString, missingSeq = 0n): bigint | { err: string } {
  const p = parseId(arg, missingSeq);
  return p === null || !("id" in p) ? INVALID_ID : p.id;
}

/** One entry as Redis replies it: `[id, [field, value, ...]]`. */
export function entryReply(s: Stream, i: number): Reply {
  const entry = s.entryAt(i);
  return [entry[0], entry.slice(1)];
}

/** Entries `[from, to)` of `s`, forward or in reverse, at most `count` (0: all). */
export function rangeReply(
  s: Stream,
  from: number,
  to: number,
  count: number,
  rev: boolean,
): Reply[] {
  const out: Reply[] = [];
  if (!rev) {
    for (let i = from; i < to && (count === 0 || out.length < count); i++) {
      out.push(entryReply(s, i));
    }
  } else {
    for (let i = to - 1; i >= from && (count === 0 || out.length < count); i--) {
      out.push(entryReply(s, i));
    }
  }
  return out;
}

/** The consumer `name` of `g`, seen now (created when missing). */
export function consumerOf(g: Group, name: ByteString, now: number): Consumer {
  let c = g.consumers.get(name);
  if (c === undefined) {
    c = { seen: now, pending: new Set() };
    g.consumers.set(name, c);
  }
  c.seen = now;
  return c;
}

/** Records the delivery of `id` to `c` in `g`'s PEL (moving it from another consumer). */
export function deliver(g: Group, name: ByteString, c: Consumer, id: bigint, now: number): void {
  const old = g.pel.get(id);
  if (old !== undefined) g.consumers.get(old.consumer)?.pending.delete(id);
  g.pel.set(id, { consumer: name, time: now, count: 1 });
  c.pending.add(id);
}
