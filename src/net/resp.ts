/**
 * RESP2, the Redis serialization protocol, as spoken on the client port.
 *
 * - {@link RespRequestParser} (server side) turns incoming bytes into argument vectors: RESP
 *   arrays of bulk strings (what Redis clients send) and inline commands (what a telnet user
 *   types), with the same protocol errors as Redis. It is incremental (bytes may arrive split
 *   anywhere), binary-safe, and bounded: lengths are checked as soon as a header is read, so a
 *   hostile length never causes an allocation.
 * - {@link RespReplyParser} (client side) turns reply bytes into {@link RespValue}s.
 * - The `encode*` functions build replies (server side) and commands (client side).
 *
 * Keys, values and arguments are {@link ByteString}s: one char code 0..255 per raw byte.
 *
 * @module
 */
import type { ByteString, Reply } from "../core/types.ts";
import { bytesToByteString, byteStringToBytes, concatBytes } from "../kv/bytes.ts";
import { ByteQueue } from "./byte_queue.ts";
import {
  DEFAULT_PROTO_MAX_BULK_LEN,
  LARGE_BULK_BYTES,
  MAX_MULTIBULK_LEN,
  PROTO_INLINE_MAX_SIZE,
  REQUEST_SLACK_BYTES,
} from "../limits.ts";

/** Size limits of the request parser. Exceeding any of them is a fatal protocol error. */
export interface RespLimits {
  /** Largest bulk string (one argument) in bytes. */
  maxBulkBytes: number;
  /** Most arguments in one request (array length, or words of an inline command). */
  maxArgs: number;
  /** Longest inline command line in bytes (without its line end). */
  maxInlineBytes: number;
  /**
   * Most payload bytes (sum of all bulk lengths) in one request array. Defaults to
   * `maxBulkBytes + 128 KiB`: room for one maximal value plus a key and small arguments.
   */
  maxRequestBytes?: number;
}

/** Default limits: bulk 8 MiB, 1024 arguments, inline lines 64 KiB. */
export const DEFAULT_RESP_LIMITS: RespLimits = Object.freeze({
  maxBulkBytes: DEFAULT_PROTO_MAX_BULK_LEN,
  maxArgs: MAX_MULTIBULK_LEN,
  maxInlineBytes: PROTO_INLINE_MAX_SIZE,
});

/**
 * One result of {@link RespRequestParser.next}: a command's arguments, or a protocol error.
 *
 * `error` is the complete error reply text including its code, ready for
 * {@link encodeError} (for example `"ERR Protocol error: invalid bulk length"`, which is exactly
 * what Redis sends). When `fatal` is true (every protocol error is) the byte stream can no longer
 * be trusted: send the error, then close the connection.
 */
export type RequestItem = { argv: ByteString[] } | { error: string; fatal: boolean };

/** A RESP error reply (`-ERR ...`), as a value. `message` is the text after the `-`. */
export class RespError {
  /**
   * An error reply value.
   * @param message the error text without the leading `-`, e.g. `"ERR unknown command 'x'"`
   */
  constructor(public message: string) {}

  /** The error code: the first word of the message (e.g. `"ERR"`, `"NOQUORUM"`). */
  get code(): string {
    const space = this.message.indexOf(" ");
    return space < 0 ? this.message : this.message.slice(0, space);
  }
}

/**
 * A decoded RESP2 reply: simple string (a `string`, decoded as UTF-8 text), integer (`number`),
 * bulk string (a {@link ByteString}), null bulk or null array (`null`), array, or error
 * ({@link RespError}).
 */
export type RespValue = string | number | ByteString | null | RespValue[] | RespError;

/**
 * A simple-string reply (`+OK`, `+QUEUED`) kept apart from bulk strings, for clients that show
 * the two differently (`redis-cli` prints `OK` but `"OK"`). See {@link RespReplyParser.nextTagged}.
 */
export class RespStatus {
  /**
   * A simple-string reply value.
   * @param text the reply's text without the leading `+`, decoded as UTF-8
   */
  constructor(public text: string) {}
}

/**
 * A {@link RespValue} whose simple strings are {@link RespStatus} values: here a `string` is
 * always a bulk string ({@link ByteString}).
 */
export type TaggedRespValue =
  | RespStatus
  | number
  | ByteString
  | null
  | TaggedRespValue[]
  | RespError;

/** Thrown by {@link RespReplyParser.next} when the reply stream is malformed or too large. */
export class RespProtocolError extends Error {
  /**
   * A malformed-stream error.
   * @param message what is wrong with the stream
   */
  constructor(message: string) {
    super(message);
    this.name = "RespProtocolError";
  }
}

// ---------------------------------------------------------------------------------------------
// Byte helpers

const CR = 0x0d;
const LF = 0x0a;
const STAR = 0x2a; // *
const DOLLAR = 0x24; // $
const MINUS = 0x2d; // -
const PLUS = 0x2b; // +
const COLON = 0x3a; // :
const ZERO = 0x30;
const NINE = 0x39;
const DQUOTE = 0x22;
const SQUOTE = 0x27;
const BACKSLASH = 0x5c;

/** A `*<n>` or `$<n>` header never needs more digits than this; longer ones are rejected early. */
const MAX_HEADER_DIGITS = 32;

const utf8Decoder = new TextDecoder();
const utf8Encoder = new TextEncoder();

/** Bytes `[from, to)` of `buf` as a ByteString. */
function latin1(buf: Uint8Array, from: number, to: number): ByteString {
  return bytesToByteString(buf.subarray(from, to));
}

/** Writes ByteString `s` into `out` at `offset`; throws on a char code above 255. */
function writeByteString(s: ByteString, out: Uint8Array, offset: number): void {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c > 0xff) {
      throw new TypeError(
        `not a ByteString: char code ${c} at index ${i} (convert text with utf8ToByteString)`,
      );
    }
    out[offset + i] = c;
  }
}

/** ASCII text (lengths, integers, fixed markers) to bytes. */
const ascii: (s: string) => Uint8Array = byteStringToBytes;

/**
 * Parses `buf[from, to)` as a decimal integer exactly like Redis's `string2ll`: optional `-`,
 * no `+`, no spaces, no leading zeros (except `0` itself), no `-0`. Returns null when malformed
 * or beyond the safe-integer range.
 */
function parseStrictInteger(buf: Uint8Array, from: number, to: number): number | null {
  if (from >= to) return null;
  let negative = false;
  if (buf[from] === MINUS) {
    negative = true;
    from++;
    if (from >= to) return null;
  }
  if (buf[from] === ZERO) return !negative && to - from === 1 ? 0 : null;
  let value = 0;
  for (let i = from; i < to; i++) {
    const c = buf[i];
    if (c < ZERO || c > NINE) return null;
    value = value * 10 + (c - ZERO);
  }
  if (value > Number.MAX_SAFE_INTEGER) return null;
  return negative ? -value : value;
}

/** Result of reading a `*<n>\r\n` / `$<n>\r\n` header. */
type HeaderResult = number | "need" | "bad" | "long";

/**
 * Reads a `<marker><integer>\r\n` line at the front of `q` (the marker byte is not checked).
 * Consumes it and returns the integer; or "need" (incomplete), "bad" (malformed), "long" (no line
 * end within {@link MAX_HEADER_DIGITS} bytes).
 */
function readHeader(q: ByteQueue): HeaderResult {
  const buf = q.buf;
  const s = q.start;
  const end = q.end;
  const scanEnd = Math.min(end, s + 2 + MAX_HEADER_DIGITS);
  let i = s + 1;
  while (i < scanEnd && buf[i] !== CR) i++;
  if (i === scanEnd) return scanEnd === end && end < s + 2 + MAX_HEADER_DIGITS ? "need" : "long";
  if (i + 1 >= end) return "need";
  if (buf[i + 1] !== LF) return "bad";
  const value = parseStrictInteger(buf, s + 1, i);
  if (value === null) return "bad";
  q.start = i + 2;
  return value;
}

/** C `isspace` in the "C" locale. */
function isSpace(c: number): boolean {
  return c === 0x20 || (c >= 0x09 && c <= 0x0d);
}

function hexValue(c: number): number {
  if (c >= ZERO && c <= NINE) return c - ZERO;
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10;
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10;
  return -1;
}

/**
 * Splits an inline command line `buf[from, to)` into arguments exactly like Redis's
 * `sdssplitargs` (used for inline commands and by redis-cli): blanks separate words; `"..."`
 * understands `\n \r \t \b \a \\ \" \xHH` (any other escaped char stands for itself); `'...'`
 * only understands `\'`; a closing quote must be followed by a blank or the end of the line.
 * Unlike Redis, a NUL byte is an ordinary byte rather than the end of the line. Returns null on
 * unbalanced quotes.
 */
export function splitInlineArgs(buf: Uint8Array, from: number, to: number): ByteString[] | null {
  const args: ByteString[] = [];
  const scratch = new Uint8Array(to - from);
  let p = from;
  for (;;) {
    while (p < to && isSpace(buf[p])) p++;
    if (p >= to) return args;
    let n = 0; // bytes of the current word in scratch
    let inDouble = false;
    let inSingle = false;
    let done = false;
    while (!done) {
      const c = p < to ? buf[p] : -1; // -1: end of line
      if (inDouble) {
        if (c === -1) return null;
        if (
          c === BACKSLASH && p + 3 < to && buf[p + 1] === 0x78 /* x */ &&
          hexValue(buf[p + 2]) >= 0 && hexValue(buf[p + 3]) >= 0
        ) {
          scratch[n++] = hexValue(buf[p + 2]) * 16 + hexValue(buf[p + 3]);
          p += 3;
        } else if (c === BACKSLASH && p + 1 < to) {
          p++;
          const e = buf[p];
          scratch[n++] = e === 0x6e /* n */
            ? LF
            : e === 0x72 /* r */
            ? CR
            : e === 0x74 /* t */
            ? 0x09
            : e === 0x62 /* b */
            ? 0x08
            : e === 0x61 /* a */
            ? 0x07
            : e;
        } else if (c === DQUOTE) {
          if (p + 1 < to && !isSpace(buf[p + 1])) return null;
          done = true;
        } else {
          scratch[n++] = c;
        }
      } else if (inSingle) {
        if (c === -1) return null;
        if (c === BACKSLASH && p + 1 < to && buf[p + 1] === SQUOTE) {
          p++;
          scratch[n++] = SQUOTE;
        } else if (c === SQUOTE) {
          if (p + 1 < to && !isSpace(buf[p + 1])) return null;
          done = true;
        } else {
          scratch[n++] = c;
        }
      } else if (c === -1 || c === 0x20 || c === LF || c === CR || c === 0x09) {
        done = true;
      } else if (c === DQUOTE) {
        inDouble = true;
      } else if (c === SQUOTE) {
        inSingle = true;
      } else {
        scratch[n++] = c;
      }
      if (p < to) p++;
    }
    args.push(latin1(scratch, 0, n));
  }
}

// ---------------------------------------------------------------------------------------------
// Server side: requests

/**
 * Incremental parser of client requests (server side). Feed bytes with {@link push}, then call
 * {@link next} until it returns null (after every push, so the buffer holds at most one partial
 * request).
 *
 * Accepts RESP arrays of bulk strings and inline commands (any line not starting with `*`, ended
 * by `\r\n` or a bare `\n`). Empty inline lines and `*0` / `*-1` arrays yield nothing. Protocol
 * errors use Redis's wording and are all fatal; after one, the parser discards further input and
 * `next()` returns null.
 */
export class RespRequestParser {
  readonly #limits: Required<RespLimits>;
  #q = new ByteQueue();
  /** Arguments still to read in the current array (0 = between requests). */
  #argsLeft = 0;
  #argv: ByteString[] = [];
  /** Length of the bulk string being read, or -1 when its `$` header is next. */
  #bulkLen = -1;
  /** Bulk payload bytes of the current array so far (checked against maxRequestBytes). */
  #requestBytes = 0;
  /** Bytes of a pending inline line already searched for `\n` (so re-scans are linear). */
  #inlineScanned = 0;
  /**
   * The received parts of a large bulk string being read (null: none is), kept apart from the
   * queue: each byte is copied once and held once, however slowly the bulk arrives.
   */
  #parts: Uint8Array[] | null = null;
  /** Bytes in {@link #parts}. */
  #partBytes = 0;
  #failed = false;

  /**
   * A parser for one connection.
   * @param limits size limits; defaults to {@link DEFAULT_RESP_LIMITS}
   */
  constructor(limits: RespLimits = DEFAULT_RESP_LIMITS) {
    this.#limits = {
      ...limits,
      maxRequestBytes: limits.maxRequestBytes ?? limits.maxBulkBytes + REQUEST_SLACK_BYTES,
    };
  }

  /** True once a protocol error has been returned; the connection should be closed. */
  get failed(): boolean {
    return this.#failed;
  }

  /** Bytes received but not yet consumed (for tests and diagnostics). */
  get bufferedBytes(): number {
    return this.#q.available;
  }

  /** Bytes held for the request being received: unconsumed input plus arguments read so far. */
  get pendingBytes(): number {
    const argBytes = this.#argsLeft > 0
      ? this.#requestBytes - (this.#bulkLen >= 0 ? this.#bulkLen : 0)
      : 0;
    return this.#q.available + argBytes + this.#partBytes;
  }

  /**
   * Bytes of memory this parser holds: its whole buffer (allocated, which may exceed what it
   * holds unconsumed) plus the arguments read so far.
   */
  get heldBytes(): number {
    return this.pendingBytes - this.#q.available + this.#q.capacity;
  }

  /** True while part of a request has arrived and the rest has not. */
  get partial(): boolean {
    return !this.#failed && (this.#argsLeft > 0 || this.#q.available > 0);
  }

  /** Appends received bytes (copied; the caller may reuse `chunk`). Ignored after a failure. */
  push(chunk: Uint8Array): void {
    if (this.#failed) return;
    if (this.#parts !== null && this.#q.available === 0) {
      // The next bytes of a large bulk string: straight into its parts (one copy).
      const take = Math.min(chunk.length, this.#bulkLen - this.#partBytes);
      if (take > 0) {
        this.#parts.push(chunk.slice(0, take));
        this.#partBytes += take;
        chunk = chunk.subarray(take);
      }
    }
    this.#q.append(chunk);
  }

  /** The next complete request or protocol error, or null when more bytes are needed. */
  next(): RequestItem | null {
    if (this.#failed) return null;
    const q = this.#q;
    for (;;) {
      if (this.#argsLeft === 0) {
        if (q.available === 0) {
          q.resetIfEmpty();
          return null;
        }
        if (q.buf[q.start] !== STAR) {
          const item = this.#inline();
          if (item === "empty") continue;
          return item;
        }
        const n = readHeader(q);
        if (n === "need") return null;
        if (n === "long") return this.#fail("Protocol error: too big mbulk count string");
        if (n === "bad" || n > this.#limits.maxArgs) {
          return this.#fail("Protocol error: invalid multibulk length");
        }
        if (n <= 0) continue; // "*0" and "*-1": nothing to do, like Redis
        this.#argsLeft = n;
        this.#argv = [];
        this.#bulkLen = -1;
        this.#requestBytes = 0;
      }
      return this.#bulks();
    }
  }

  /** Reads bulk strings of the current array; returns the request when complete. */
  #bulks(): RequestItem | null {
    const q = this.#q;
    while (this.#argsLeft > 0) {
      if (this.#bulkLen < 0) {
        if (q.available === 0) return null;
        const marker = q.buf[q.start];
        if (marker !== DOLLAR) {
          return this.#fail(`Protocol error: expected '$', got '${String.fromCharCode(marker)}'`);
        }
        const len = readHeader(q);
        if (len === "need") return null;
        if (len === "long") return this.#fail("Protocol error: too big bulk count string");
        if (len === "bad" || len < 0) return this.#fail("Protocol error: invalid bulk length");
        if (len > this.#limits.maxBulkBytes) {
          return this.#fail(
            `Protocol error: invalid bulk length (${len} > max ${this.#limits.maxBulkBytes} bytes)`,
          );
        }
        if (this.#requestBytes + len > this.#limits.maxRequestBytes) {
          return this.#fail(
            `Protocol error: request too large (max ${this.#limits.maxRequestBytes} bytes)`,
          );
        }
        this.#requestBytes += len;
        this.#bulkLen = len;
      }
      const len = this.#bulkLen;
      if (this.#parts === null && len >= LARGE_BULK_BYTES && q.available < len + 2) {
        this.#parts = [];
      }
      if (this.#parts !== null) {
        const arg = this.#largeBulk();
        if (arg === null) return null;
        if (typeof arg !== "string") return arg;
        this.#argv.push(arg);
      } else {
        const avail = q.available;
        if (avail > len && q.buf[q.start + len] !== CR) return this.#badTerminator();
        if (avail < len + 2) return null;
        if (q.buf[q.start + len + 1] !== LF) return this.#badTerminator();
        this.#argv.push(latin1(q.buf, q.start, q.start + len));
        q.start += len + 2;
      }
      this.#bulkLen = -1;
      this.#argsLeft--;
    }
    const argv = this.#argv;
    this.#argv = [];
    q.resetIfEmpty();
    return { argv };
  }

  /**
   * Moves the queued bytes of the large bulk string being read into its parts; returns the bulk
   * once it and its CRLF are complete, null while more bytes are needed, or a protocol error.
   */
  #largeBulk(): ByteString | RequestItem | null {
    const q = this.#q;
    const parts = this.#parts!;
    const take = Math.min(q.available, this.#bulkLen - this.#partBytes);
    if (take > 0) {
      parts.push(q.buf.slice(q.start, q.start + take));
      q.start += take;
      this.#partBytes += take;
    }
    if (this.#partBytes < this.#bulkLen) {
      q.resetIfEmpty();
      return null;
    }
    if (q.available > 0 && q.buf[q.start] !== CR) return this.#badTerminator();
    if (q.available < 2) return null;
    if (q.buf[q.start + 1] !== LF) return this.#badTerminator();
    q.start += 2;
    const arg = parts.length === 1
      ? latin1(parts[0], 0, parts[0].length)
      : parts.map((p) => latin1(p, 0, p.length)).join("");
    this.#parts = null;
    this.#partBytes = 0;
    return arg;
  }

  #badTerminator(): RequestItem {
    return this.#fail(`Protocol error: bulk string of ${this.#bulkLen} bytes not followed by CRLF`);
  }

  /** Reads one inline line; "empty" when it held no words. */
  #inline(): RequestItem | null | "empty" {
    const q = this.#q;
    const buf = q.buf;
    const s = q.start;
    const max = this.#limits.maxInlineBytes;
    // The line end may sit at most at s + max + 1 (content, then "\r", then "\n").
    const scanEnd = Math.min(q.end, s + max + 2);
    let lf = s + this.#inlineScanned;
    while (lf < scanEnd && buf[lf] !== LF) lf++;
    if (lf === scanEnd) {
      const pending = q.end - s;
      // Only a final "\r" may still be followed by "\n" and leave max bytes of content.
      if (pending > max + 1 || (pending === max + 1 && buf[q.end - 1] !== CR)) {
        return this.#fail("Protocol error: too big inline request");
      }
      this.#inlineScanned = lf - s;
      return null;
    }
    this.#inlineScanned = 0;
    const lineEnd = lf > s && buf[lf - 1] === CR ? lf - 1 : lf;
    if (lineEnd - s > max) return this.#fail("Protocol error: too big inline request");
    const argv = splitInlineArgs(buf, s, lineEnd);
    q.start = lf + 1;
    if (argv === null) return this.#fail("Protocol error: unbalanced quotes in request");
    if (argv.length === 0) return "empty";
    if (argv.length > this.#limits.maxArgs) {
      return this.#fail(`Protocol error: too many arguments (max ${this.#limits.maxArgs})`);
    }
    q.resetIfEmpty();
    return { argv };
  }

  #fail(message: string): RequestItem {
    this.#failed = true;
    this.#argv = [];
    this.#parts = null;
    this.#partBytes = 0;
    this.#q.release();
    return { error: `ERR ${message}`, fatal: true };
  }
}

// ---------------------------------------------------------------------------------------------
// Client side: replies

/** Size limits of the reply parser. */
export interface RespReplyLimits {
  /** Largest bulk string in bytes (default 512 MiB, Redis's proto-max-bulk-len). */
  maxBulkBytes: number;
  /** Most elements in one array (default 1,048,576). */
  maxArrayLength: number;
  /** Deepest array nesting (default 64). */
  maxDepth: number;
  /** Longest simple string, error or integer line in bytes (default 1 MiB). */
  maxLineBytes: number;
}

/** Defaults of {@link RespReplyLimits}. */
const DEFAULT_REPLY_LIMITS: RespReplyLimits = Object.freeze({
  maxBulkBytes: 512 * 1024 * 1024,
  maxArrayLength: 1024 * 1024,
  maxDepth: 64,
  maxLineBytes: 1024 * 1024,
});

interface OpenArray {
  items: TaggedRespValue[];
  left: number;
}

/**
 * Incremental parser of RESP2 replies (client side). Feed bytes with {@link push}, then call
 * {@link next} until it returns `undefined`. Simple strings and error messages are decoded as
 * UTF-8 text; bulk strings are {@link ByteString}s; `$-1` and `*-1` are null. Malformed input
 * throws {@link RespProtocolError}, and every later call throws it again.
 *
 * {@link nextTagged} returns the same replies with simple strings as {@link RespStatus} values.
 * One reply is read in one mode: a caller may switch between the two only between replies.
 */
export class RespReplyParser {
  readonly #limits: RespReplyLimits;
  #q = new ByteQueue();
  #stack: OpenArray[] = [];
  /** Length of the bulk payload being read, or -1. */
  #bulkLen = -1;
  /** Bytes of a pending line already searched for `\r` (so re-scans are linear). */
  #lineScanned = 0;
  #error: RespProtocolError | null = null;

  /**
   * A parser for one connection.
   * @param limits overrides of {@link DEFAULT_REPLY_LIMITS}
   */
  constructor(limits: Partial<RespReplyLimits> = {}) {
    this.#limits = { ...DEFAULT_REPLY_LIMITS, ...limits };
  }

  /** Appends received bytes (copied). Ignored after a protocol error. */
  push(chunk: Uint8Array): void {
    if (this.#error) return;
    this.#q.append(chunk);
  }

  /** The next complete reply, or `undefined` when more bytes are needed. */
  next(): RespValue | undefined {
    // Without tagging no RespStatus is ever built, so the value is a RespValue.
    return this.#next(false) as RespValue | undefined;
  }

  /** Like {@link next}, with simple strings as {@link RespStatus} values. */
  nextTagged(): TaggedRespValue | undefined {
    return this.#next(true);
  }

  #next(tagStatus: boolean): TaggedRespValue | undefined {
    if (this.#error) throw this.#error;
    const q = this.#q;
    for (;;) {
      let value: TaggedRespValue;
      if (this.#bulkLen >= 0) {
        const len = this.#bulkLen;
        if (q.available < len + 2) return undefined;
        if (q.buf[q.start + len] !== CR || q.buf[q.start + len + 1] !== LF) {
          this.#fail(`bulk string of ${len} bytes not followed by CRLF`);
        }
        value = latin1(q.buf, q.start, q.start + len);
        q.start += len + 2;
        this.#bulkLen = -1;
      } else {
        if (q.available === 0) {
          q.resetIfEmpty();
          return undefined;
        }
        const cr = this.#findLineEnd();
        if (cr < 0) return undefined;
        const type = q.buf[q.start];
        const from = q.start + 1;
        const next = cr + 2;
        if (type === PLUS) {
          const text = utf8Decoder.decode(q.buf.subarray(from, cr));
          value = tagStatus ? new RespStatus(text) : text;
        } else if (type === MINUS) {
          value = new RespError(utf8Decoder.decode(q.buf.subarray(from, cr)));
        } else if (type === COLON) {
          value = this.#integer(from, cr);
        } else if (type === DOLLAR) {
          const len = parseStrictInteger(q.buf, from, cr);
          if (len === null || len < -1) this.#fail("invalid bulk length");
          if (len > this.#limits.maxBulkBytes) {
            this.#fail(`bulk length ${len} exceeds the limit of ${this.#limits.maxBulkBytes}`);
          }
          q.start = next;
          if (len >= 0) {
            this.#bulkLen = len;
            continue;
          }
          value = null;
        } else if (type === STAR) {
          const len = parseStrictInteger(q.buf, from, cr);
          if (len === null || len < -1) this.#fail("invalid array length");
          if (len > this.#limits.maxArrayLength) {
            this.#fail(`array length ${len} exceeds the limit of ${this.#limits.maxArrayLength}`);
          }
          q.start = next;
          if (len > 0) {
            if (this.#stack.length >= this.#limits.maxDepth) {
              this.#fail(`arrays nested deeper than ${this.#limits.maxDepth}`);
            }
            this.#stack.push({ items: [], left: len });
            continue;
          }
          value = len === 0 ? [] : null;
        } else {
          this.#fail(`unexpected reply type byte 0x${type.toString(16).padStart(2, "0")}`);
        }
        q.start = next;
      }
      // Attach the finished value to the innermost open array, closing arrays that fill up.
      for (;;) {
        const top = this.#stack[this.#stack.length - 1];
        if (top === undefined) {
          q.resetIfEmpty();
          return value;
        }
        top.items.push(value);
        if (--top.left > 0) break;
        this.#stack.pop();
        value = top.items;
      }
    }
  }

  /** Index of the `\r` ending the line at the front, or -1 when incomplete. */
  #findLineEnd(): number {
    const q = this.#q;
    const buf = q.buf;
    const s = q.start;
    const scanEnd = Math.min(q.end, s + 2 + this.#limits.maxLineBytes);
    let i = s + 1 + this.#lineScanned;
    while (i < scanEnd && buf[i] !== CR) i++;
    if (i === scanEnd) {
      if (q.end - s >= 2 + this.#limits.maxLineBytes) {
        this.#fail(`line longer than ${this.#limits.maxLineBytes} bytes`);
      }
      this.#lineScanned = i - s - 1;
      return -1;
    }
    this.#lineScanned = i - s - 1;
    if (i + 1 >= q.end) return -1;
    if (buf[i + 1] !== LF) this.#fail("line not ended by CRLF");
    this.#lineScanned = 0;
    return i;
  }

  #integer(from: number, to: number): number {
    const buf = this.#q.buf;
    let i = from;
    if (i < to && (buf[i] === MINUS || buf[i] === PLUS)) i++;
    if (i >= to) this.#fail("invalid integer");
    for (let j = i; j < to; j++) {
      if (buf[j] < ZERO || buf[j] > NINE) this.#fail("invalid integer");
    }
    return Number(latin1(buf, from, to));
  }

  #fail(message: string): never {
    this.#error = new RespProtocolError(`RESP protocol error: ${message}`);
    this.#q.release();
    this.#stack = [];
    throw this.#error;
  }
}

// ---------------------------------------------------------------------------------------------
// Encoders

const CRLF_BULK_NULL = ascii("$-1\r\n");
const EMPTY_ARRAY = ascii("*0\r\n");
const NULL_ARRAY = ascii("*-1\r\n");

/** Encodes a one-line reply: text as UTF-8, CR and LF replaced by spaces (they would end it). */
function lineReply(prefix: number, text: string): Uint8Array {
  const body = utf8Encoder.encode(text.replace(/[\r\n]/g, " "));
  const out = new Uint8Array(1 + body.length + 2);
  out[0] = prefix;
  out.set(body, 1);
  out[1 + body.length] = CR;
  out[2 + body.length] = LF;
  return out;
}

/** `+<s>\r\n`, e.g. `encodeSimple("OK")`. `s` is text (sent as UTF-8); CR/LF become spaces. */
export function encodeSimple(s: string): Uint8Array {
  return lineReply(PLUS, s);
}

/**
 * `-<message>\r\n`. `message` is the text without the leading `-` and starts with the error
 * code, e.g. `encodeError("ERR unknown command 'x'")`. It is text, sent as UTF-8 (convert echoed
 * client bytes with `byteStringToUtf8` first); CR/LF become spaces.
 */
export function encodeError(message: string): Uint8Array {
  return lineReply(MINUS, message);
}

/** `:<n>\r\n`. Throws RangeError unless `n` is a safe integer. */
export function encodeInteger(n: number): Uint8Array {
  if (!Number.isSafeInteger(n)) throw new RangeError(`not a safe integer: ${n}`);
  return ascii(`:${n}\r\n`);
}

/** `$<len>\r\n<bytes>\r\n`, or `$-1\r\n` for null. Binary-safe; throws on chars above 255. */
export function encodeBulk(s: ByteString | null): Uint8Array {
  if (s === null) return CRLF_BULK_NULL.slice();
  const header = `$${s.length}\r\n`;
  const out = new Uint8Array(header.length + s.length + 2);
  writeByteString(header, out, 0);
  writeByteString(s, out, header.length);
  out[out.length - 2] = CR;
  out[out.length - 1] = LF;
  return out;
}

/** `*0\r\n`: an empty array (the reply to COMMAND). */
export function encodeEmptyArray(): Uint8Array {
  return EMPTY_ARRAY.slice();
}

/** `*-1\r\n`: a null array. */
export function encodeNullArray(): Uint8Array {
  return NULL_ARRAY.slice();
}

/** An array reply whose elements are already encoded replies. */
export function encodeArray(elements: Uint8Array[]): Uint8Array {
  return concatBytes([ascii(`*${elements.length}\r\n`), ...elements]);
}

/**
 * A command as a RESP array of bulk strings (client side), e.g.
 * `encodeCommand(["SET", "k", "v"])`. Binary-safe; throws on chars above 255.
 */
export function encodeCommand(argv: ByteString[]): Uint8Array {
  const head = `*${argv.length}\r\n`;
  let total = head.length;
  for (const arg of argv) total += 1 + String(arg.length).length + 2 + arg.length + 2;
  const out = new Uint8Array(total);
  writeByteString(head, out, 0);
  let offset = head.length;
  for (const arg of argv) {
    const header = `$${arg.length}\r\n`;
    writeByteString(header, out, offset);
    offset += header.length;
    writeByteString(arg, out, offset);
    offset += arg.length;
    out[offset++] = CR;
    out[offset++] = LF;
  }
  return out;
}

/**
 * The RESP2 bytes of a state machine {@link Reply} (see `src/core/types.ts` for its shape).
 * `bulk` encodes its bulk strings (default {@link encodeBulk}; `src/net/shared_bulks.ts` shares
 * large ones).
 */
export function encodeReply(
  r: Reply,
  bulk: (s: ByteString | null) => Uint8Array = encodeBulk,
): Uint8Array {
  if (r === null || typeof r === "string") return bulk(r);
  if (typeof r === "number") return encodeInteger(r);
  if (Array.isArray(r)) return encodeArray(r.map((e) => encodeReply(e, bulk)));
  if ("ok" in r) return encodeSimple(r.ok);
  if ("err" in r) return encodeError(r.err);
  if ("int" in r) return ascii(`:${r.int}\r\n`);
  return encodeNullArray();
}
