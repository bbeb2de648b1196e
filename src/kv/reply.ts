/**
 * Building and encoding the state machine's {@link Reply} values: constructors for each RESP2
 * reply kind, Redis's standard error texts (worded exactly as Redis 7 words them, so client
 * libraries map them), and {@link encodeReply}, which turns a reply into RESP2 bytes.
 *
 * @module
 */
import type { ByteString, Reply } from "../core/types.ts";
import { concatBytes } from "./bytes.ts";

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

const CRLF = "\r\n";

function ascii(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

const encoder = new TextEncoder();

/** A one-line reply (status or error): UTF-8 text with CR/LF replaced, as Redis does. */
function line(prefix: string, text: string): Uint8Array {
  return encoder.encode(prefix + text.replace(/[\r\n]/g, " ") + CRLF);
}

function writeBulk(s: ByteString, parts: Uint8Array[]): void {
  const out = new Uint8Array(String(s.length).length + 3 + s.length + 2);
  let at = 0;
  const head = `$${s.length}\r\n`;
  for (let i = 0; i < head.length; i++) out[at++] = head.charCodeAt(i);
  for (let i = 0; i < s.length; i++) out[at++] = s.charCodeAt(i);
  out[at++] = 13;
  out[at] = 10;
  parts.push(out);
}

function encodeInto(r: Reply, parts: Uint8Array[]): void {
  if (r === null) parts.push(ascii("$-1\r\n"));
  else if (typeof r === "string") writeBulk(r, parts);
  else if (typeof r === "number") parts.push(ascii(`:${r}\r\n`));
  else if (Array.isArray(r)) {
    parts.push(ascii(`*${r.length}\r\n`));
    for (const e of r) encodeInto(e, parts);
  } else if ("ok" in r) parts.push(line("+", r.ok));
  else if ("err" in r) parts.push(line("-", r.err));
  else if ("int" in r) parts.push(ascii(`:${r.int}\r\n`));
  else parts.push(ascii("*-1\r\n"));
}

/** The RESP2 bytes of a reply. */
export function encodeReply(r: Reply): Uint8Array {
  if (typeof r === "string") {
    const parts: Uint8Array[] = [];
    writeBulk(r, parts);
    return parts[0];
  }
  const parts: Uint8Array[] = [];
  encodeInto(r, parts);
  return parts.length === 1 ? parts[0] : concatBytes(parts);
}
