/**
 * Building the state machine's {@link Reply} values: constructors for each RESP2 reply kind and
 * Redis's standard error texts (worded exactly as Redis 7 words them, so client libraries map
 * them). `encodeReply` in `src/net/resp.ts` turns a reply into RESP2 bytes.
 *
 * @module
 */
import type { Reply } from "../core/types.ts";

/** `+OK`. */
export const OK: Reply = Object.freeze({ ok: "OK" }) as Reply;
/** `*-1`: a null array (EXEC aborted by WATCH, blocking pops that time out). */
export const NIL_ARRAY: Reply = Object.freeze({ nil: "array" }) as Reply;

/** A status (simple string) reply such as `+QUEUED`. */
export function status(text: string): Reply {
  return { ok: text };
}

/** An error reply; `text` starts with its code (`ERR ...`, `WRONGTYPE ...`). */
export function err(text: string): { err: string } {
  return { err: text };
}

/** An integer reply from a number or a bigint (outside the safe range it travels as text). */
export function int(n: number | bigint): Reply {
  if (typeof n === "number") return n;
  return n >= BigInt(Number.MIN_SAFE_INTEGER) && n <= BigInt(Number.MAX_SAFE_INTEGER)
    ? Number(n)
    : { int: n.toString() };
}

/** True when `r` is an error reply. */
export function isError(r: Reply): r is { err: string } {
  return r !== null && typeof r === "object" && !Array.isArray(r) && "err" in r;
}

/** Redis's standard error replies. */
export const E = Object.freeze({
  WRONGTYPE: err("WRONGTYPE Operation against a key holding the wrong kind of value"),
  SYNTAX: err("ERR syntax error"),
  NOT_INT: err("ERR value is not an integer or out of range"),
  NOT_FLOAT: err("ERR value is not a valid float"),
  OVERFLOW: err("ERR increment or decrement would overflow"),
  NO_KEY: err("ERR no such key"),
  INDEX: err("ERR index out of range"),
  HASH_NOT_INT: err("ERR hash value is not an integer"),
  HASH_NOT_FLOAT: err("ERR hash value is not a float"),
  NAN_OR_INF: err("ERR increment would produce NaN or Infinity"),
  EXPIRE_TIME: (name: string) => err(`ERR invalid expire time in '${name}' command`),
  NOT_POSITIVE: err("ERR value is out of range, must be positive"),
  STRING_TOO_LONG: err("ERR string exceeds maximum allowed size (proto-max-bulk-len)"),
  ARITY: (name: string) => err(`ERR wrong number of arguments for '${name}' command`),
});
