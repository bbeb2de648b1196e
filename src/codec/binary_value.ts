/**
 * The binary codec of peer messages and log records: a JSON-shaped value (null, booleans, numbers,
 * strings, arrays, plain objects) as tagged, length-prefixed bytes. Keys and values of the key
 * space are byte strings (char codes 0..255) and take one byte per byte, where JSON in UTF-8 took
 * two for 0x80..0xff and six for control characters; the field names of the protocol's messages
 * and records take one byte each.
 *
 * ```text
 * value  := 0x00                          null
 *         | 0x01 | 0x02                   false | true
 *         | 0x03 varint                   an integer 0 .. 2^53-1
 *         | 0x04 varint                   the integer -n, n in 1 .. 2^53-1
 *         | 0x05 f64 (8 bytes, BE)        any other finite number
 *         | 0x06 varint bytes             a byte string: each byte is one char code 0..255
 *         | 0x07 varint bytes             a string with a char code above 0xff, as UTF-8
 *         | 0x08 varint value*            an array of that many values
 *         | 0x09 varint (key value)*      an object of that many fields
 * key    := 0x0A u8                       the field name WELL_KNOWN_KEYS[u8]
 *         | 0x06 ... | 0x07 ...           any other field name, as a string
 * varint := LEB128, 7 bits per byte, least significant first, minimal (no trailing 0x80 groups)
 * ```
 *
 * Every value has exactly one encoding, and {@link decodeValue} accepts only that one: minimal
 * varints, integers never as f64, a string as text only when it is not a byte string, well-known
 * field names only by number, no field twice, fields in the order an object lists them (names
 * that are array indexes, "0" to "4294967294", first and ascending), nothing after the value. So a
 * decoded value re-encodes to the very bytes it came from (the fuzzer checks this). A length or count is checked
 * against the bytes that remain before anything is allocated, and nesting is limited to
 * {@link MAX_DEPTH}, so no input makes the decoder allocate much or overflow its stack.
 *
 * Objects encode their own enumerable properties in insertion order; properties whose value is
 * `undefined` are left out, as `JSON.stringify` does.
 *
 * @module
 */
import { bytesToByteString } from "../kv/bytes.ts";

/** A byte sequence that is not the encoding of a value (the message names what and where). */
export class BinaryValueError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "BinaryValueError";
  }
}

const T_NULL = 0x00;
const T_FALSE = 0x01;
const T_TRUE = 0x02;
const T_UINT = 0x03;
const T_NEGINT = 0x04;
const T_F64 = 0x05;
const T_BYTES = 0x06;
const T_TEXT = 0x07;
const T_ARRAY = 0x08;
const T_OBJECT = 0x09;
const T_KEY = 0x0a;

/** Deepest nesting of arrays and objects a decoded value may have (the protocol needs 8). */
export const MAX_DEPTH = 64;

/**
 * Field names written as one number. Append only: the position of a name is part of the format of
 * every log written since (the field names of `src/core/types.ts` and of the peer frames).
 */
export const WELL_KNOWN_KEYS: readonly string[] = [
  "kind",
  "msgs",
  "type",
  "entry",
  "view",
  "ts",
  "origin",
  "seq",
  "cmd",
  "op",
  "argv",
  "time",
  "tag",
  "client",
  "promised",
  "acks",
  "hears",
  "members",
  "learners",
  "delivered",
  "report",
  "install",
  "round",
  "index",
  "digest",
  "from",
  "entries",
  "snapshot",
  "last",
  "state",
  "normalView",
  "holdback",
  "log",
  "accepted",
  "blank",
  "r",
  "cluster",
  "nonce",
  "proof",
];
if (WELL_KNOWN_KEYS.length > 256 || new Set(WELL_KNOWN_KEYS).size !== WELL_KNOWN_KEYS.length) {
  throw new Error("WELL_KNOWN_KEYS must be at most 256 distinct names");
}
const KEY_NUMBER = new Map(WELL_KNOWN_KEYS.map((k, i) => [k, i]));

const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** A growable output buffer. */
class Writer {
  buf: Uint8Array;
  n = 0;

  constructor(capacity: number) {
    this.buf = new Uint8Array(capacity);
  }

  ensure(more: number): void {
    if (this.n + more <= this.buf.length) return;
    let capacity = this.buf.length * 2;
    while (capacity < this.n + more) capacity *= 2;
    const grown = new Uint8Array(capacity);
    grown.set(this.buf.subarray(0, this.n));
    this.buf = grown;
  }

  varint(x: number): void {
    if (x < 0x80) {
      this.buf[this.n++] = x;
      return;
    }
    this.ensure(8);
    while (x >= 0x80) {
      this.buf[this.n++] = (x % 0x80) | 0x80;
      x = Math.floor(x / 0x80);
    }
    this.buf[this.n++] = x;
  }

  string(s: string): void {
    const length = s.length;
    const start = this.n;
    this.ensure(9 + length);
    this.buf[this.n++] = T_BYTES;
    this.varint(length);
    if (length >= NATIVE_ASCII_MIN) {
      // ASCII is the same bytes in UTF-8, which the native encoder writes: it fills exactly
      // `length` bytes only if every char is ASCII (any other takes two or more).
      const { read, written } = utf8.encodeInto(s, this.buf.subarray(this.n, this.n + length));
      if (read === length && written === length) {
        this.n += length;
        return;
      }
    }
    const b = this.buf;
    let n = this.n;
    for (let i = 0; i < length; i++) {
      const c = s.charCodeAt(i);
      if (c > 0xff) {
        this.n = start;
        this.#text(s);
        return;
      }
      b[n++] = c;
    }
    this.n = n;
  }

  #text(s: string): void {
    if (!s.isWellFormed()) throw new TypeError("a string with a lone surrogate has no encoding");
    const bytes = utf8.encode(s);
    this.ensure(9 + bytes.length);
    this.buf[this.n++] = T_TEXT;
    this.varint(bytes.length);
    this.buf.set(bytes, this.n);
    this.n += bytes.length;
  }

  value(v: unknown, depth: number): void {
    this.ensure(10);
    switch (typeof v) {
      case "string":
        this.string(v);
        return;
      case "number":
        if (Number.isSafeInteger(v)) {
          this.buf[this.n++] = v >= 0 ? T_UINT : T_NEGINT;
          this.varint(Math.abs(v));
        } else {
          if (!Number.isFinite(v)) throw new TypeError(`${v} has no encoding`);
          this.ensure(9);
          this.buf[this.n++] = T_F64;
          new DataView(this.buf.buffer).setFloat64(this.n, v, false);
          this.n += 8;
        }
        return;
      case "boolean":
        this.buf[this.n++] = v ? T_TRUE : T_FALSE;
        return;
      case "object":
        if (v === null) {
          this.buf[this.n++] = T_NULL;
          return;
        }
        if (depth >= MAX_DEPTH) throw new TypeError(`nested deeper than ${MAX_DEPTH} levels`);
        if (Array.isArray(v)) {
          this.buf[this.n++] = T_ARRAY;
          this.varint(v.length);
          for (const x of v) this.value(x, depth + 1);
          return;
        }
        this.#object(v as Record<string, unknown>, depth);
        return;
    }
    throw new TypeError(`a ${typeof v} has no encoding`);
  }

  #object(o: Record<string, unknown>, depth: number): void {
    const proto = Object.getPrototypeOf(o);
    if (proto !== Object.prototype && proto !== null) {
      throw new TypeError("only plain objects have an encoding");
    }
    const keys = Object.keys(o);
    let count = 0;
    for (const key of keys) if (o[key] !== undefined) count++;
    this.buf[this.n++] = T_OBJECT;
    this.varint(count);
    for (const key of keys) {
      if (o[key] === undefined) continue;
      const number = KEY_NUMBER.get(key);
      if (number === undefined) {
        if (key === "__proto__") throw new TypeError('a field named "__proto__" has no encoding');
        this.string(key);
      } else {
        this.ensure(2);
        this.buf[this.n++] = T_KEY;
        this.buf[this.n++] = number;
      }
      this.value(o[key], depth + 1);
    }
  }
}

/**
 * Encodes `value`, after the byte `lead` when given (a frame's or record's tag).
 *
 * @throws {TypeError} when `value` holds something without an encoding: `undefined` (except as an
 * object's property), a function, symbol or bigint, NaN or an infinity, an object that is not
 * plain (a Map, a Date, a typed array), a field named `__proto__` (an own property, as
 * `JSON.parse` makes), a string with a lone surrogate, or nesting deeper than {@link MAX_DEPTH}.
 */
export function encodeValue(value: unknown, lead?: number): Uint8Array {
  const w = scratch;
  w.n = 0;
  try {
    if (lead !== undefined) w.buf[w.n++] = lead;
    w.value(value, 0);
    return w.buf.slice(0, w.n);
  } finally {
    if (w.buf.length > SCRATCH_KEPT_BYTES) scratch = new Writer(SCRATCH_BYTES);
  }
}

/** The encoder's reusable buffer: its first size, and the most it keeps between calls. */
const SCRATCH_BYTES = 64 * 1024;
const SCRATCH_KEPT_BYTES = 1024 * 1024;
let scratch = new Writer(SCRATCH_BYTES);

/** Strings at least this long are tried with the native (UTF-8) encoder as ASCII first. */
const NATIVE_ASCII_MIN = 24;

/** Reads one value from `bytes`. */
class Reader {
  readonly b: Uint8Array;
  readonly end: number;
  p: number;

  constructor(bytes: Uint8Array, start: number) {
    this.b = bytes;
    this.end = bytes.length;
    this.p = start;
  }

  fail(problem: string, at: number = this.p): never {
    throw new BinaryValueError(`at byte ${at}: ${problem}`);
  }

  byte(): number {
    if (this.p >= this.end) this.fail("the value ends early");
    return this.b[this.p++];
  }

  varint(): number {
    const at = this.p;
    let x = 0;
    let scale = 1;
    for (;;) {
      const c = this.byte();
      x += (c & 0x7f) * scale;
      if (c < 0x80) {
        if (c === 0 && scale > 1) this.fail("a varint is not minimal", at);
        if (x > Number.MAX_SAFE_INTEGER) this.fail("a varint is above 2^53-1", at);
        return x;
      }
      scale *= 0x80;
      if (scale >= 2 ** 56) this.fail("a varint is above 2^53-1", at);
    }
  }

  /** A length or count of items of at least one byte each that must fit in what remains. */
  length(what: string): number {
    const at = this.p;
    const n = this.varint();
    if (n > this.end - this.p) {
      this.fail(`${what} of ${n} is longer than the ${this.end - this.p} bytes left`, at);
    }
    return n;
  }

  bytes(): string {
    const n = this.length("a byte string");
    const p = this.p;
    this.p += n;
    return bytesToByteString(this.b.subarray(p, p + n));
  }

  text(): string {
    const at = this.p - 1;
    const n = this.length("a text string");
    let s: string;
    try {
      s = fromUtf8.decode(this.b.subarray(this.p, this.p + n));
    } catch {
      this.fail("a text string is not UTF-8", at);
    }
    this.p += n;
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0xff) return s;
    this.fail("a byte string is written as text", at);
  }

  value(depth: number): unknown {
    const at = this.p;
    const tag = this.byte();
    switch (tag) {
      case T_NULL:
        return null;
      case T_FALSE:
        return false;
      case T_TRUE:
        return true;
      case T_UINT:
        return this.varint();
      case T_NEGINT: {
        const n = this.varint();
        if (n === 0) this.fail("a negative integer of 0", at);
        return -n;
      }
      case T_F64: {
        if (this.end - this.p < 8) this.fail("the value ends early");
        const x = new DataView(this.b.buffer, this.b.byteOffset + this.p, 8).getFloat64(0, false);
        this.p += 8;
        if (!Number.isFinite(x)) this.fail(`${x} as a number`, at);
        if (Number.isSafeInteger(x)) this.fail("an integer written as a float", at);
        return x;
      }
      case T_BYTES:
        return this.bytes();
      case T_TEXT:
        return this.text();
      case T_ARRAY: {
        if (depth >= MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`, at);
        const n = this.length("an array");
        const a = new Array(n);
        for (let i = 0; i < n; i++) a[i] = this.value(depth + 1);
        return a;
      }
      case T_OBJECT:
        if (depth >= MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`, at);
        return this.object(depth);
    }
    this.fail(`unknown tag 0x${tag.toString(16).padStart(2, "0")}`, at);
  }

  object(depth: number): Record<string, unknown> {
    const n = this.length("an object");
    const o: Record<string, unknown> = {};
    // An object lists names that are array indexes first, ascending, whatever the order they were
    // added in: so must the encoding, or two encodings would decode to the same object.
    let named = false;
    let lastIndex = -1;
    for (let i = 0; i < n; i++) {
      const at = this.p;
      const tag = this.byte();
      let key: string;
      if (tag === T_KEY) {
        const number = this.byte();
        if (number >= WELL_KNOWN_KEYS.length) this.fail(`unknown field number ${number}`, at);
        key = WELL_KNOWN_KEYS[number];
      } else if (tag === T_BYTES || tag === T_TEXT) {
        key = tag === T_BYTES ? this.bytes() : this.text();
        if (KEY_NUMBER.has(key)) this.fail(`the field "${key}" is written by name`, at);
        if (key === "__proto__") this.fail('a field named "__proto__"', at);
      } else {
        this.fail("a field name is not a string", at);
      }
      if (Object.hasOwn(o, key)) this.fail(`the field "${key}" appears twice`, at);
      const index = tag === T_KEY ? -1 : arrayIndex(key);
      if (index < 0) named = true;
      else if (named || index < lastIndex) this.fail(`the field "${key}" is out of order`, at);
      else lastIndex = index;
      o[key] = this.value(depth + 1);
    }
    return o;
  }
}

/** The array index `key` is (a canonical decimal 0 .. 2^32-2), or -1 when it is none. */
function arrayIndex(key: string): number {
  const n = key.length;
  if (n === 0 || n > 10) return -1;
  const first = key.charCodeAt(0);
  if (first < 0x30 || first > 0x39 || (first === 0x30 && n > 1)) return -1;
  for (let i = 1; i < n; i++) {
    const c = key.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return -1;
  }
  const x = Number(key);
  return x <= 0xfffffffe ? x : -1;
}

/**
 * Decodes the value that fills `bytes` from `start` (default 0) to its end.
 *
 * @throws {BinaryValueError} when the bytes are not exactly the encoding of one value.
 */
export function decodeValue(bytes: Uint8Array, start: number = 0): unknown {
  const r = new Reader(bytes, start);
  const value = r.value(0);
  if (r.p !== r.end) r.fail(`${r.end - r.p} bytes after the value`);
  return value;
}
