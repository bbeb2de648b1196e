/**
 * The mutation engine of the fuzzers: seeded, coverage-blind, structure-aware.
 *
 * Byte-level mutations ({@link mutateBytes}) work on any input: bit flips, byte insert, delete
 * and overwrite with interesting bytes, chunk duplication, splices with other valid corpus items,
 * truncation, and injected "structure" tokens: huge or negative RESP length prefixes (`*2147483648`,
 * `$-2`, `*99999999999999999999`), deep nesting (`*1\r\n*1\r\n...`), huge 4-byte frame or record
 * length fields, CRLF in odd places. {@link mutateJson} mutates a JSON value in place of a node:
 * boundary numbers (0, -1, 2^48, 2^53, 1e308, 0.5, -0), wrong types, deleted and unknown fields,
 * duplicated and dropped array elements, deep nesting, long strings, grafts from other values.
 *
 * Everything is driven by a {@link Prng}, so an input is reproducible from its seed.
 *
 * @module
 */
import type { Prng } from "../support/prng.ts";
import { encodeValue, MAX_DEPTH, WELL_KNOWN_KEYS } from "../../src/codec/binary_value.ts";

const enc = new TextEncoder();

/** Bytes that often matter to parsers. */
const INTERESTING_BYTES = [
  0x00,
  0x01,
  0x0a,
  0x0d,
  0x20,
  0x22,
  0x27,
  0x2a,
  0x24,
  0x2b,
  0x2d,
  0x3a,
  0x30,
  0x39,
  0x5c,
  0x7b,
  0x7d,
  0x5b,
  0x5d,
  0x7f,
  0x80,
  0xc0,
  0xff,
];

/** Decimal texts at the edges of every integer parser. */
export const INTERESTING_NUMBERS: readonly string[] = [
  "0",
  "-0",
  "1",
  "-1",
  "-2",
  "00",
  "01",
  "+1",
  "2147483647",
  "2147483648",
  "-2147483648",
  "4294967295",
  "4294967296",
  "9007199254740991",
  "9007199254740992",
  "9223372036854775807",
  "9223372036854775808",
  "-9223372036854775809",
  "99999999999999999999999999999999",
  "281474976710656",
  "1e9",
  "0x10",
  " 1",
  "1 ",
  "",
];

/** RESP fragments: headers with hostile lengths, deep nesting, stray line ends. */
function respToken(rng: Prng): string {
  switch (rng.int(0, 9)) {
    case 0:
      return `*${rng.pick(INTERESTING_NUMBERS)}\r\n`;
    case 1:
      return `$${rng.pick(INTERESTING_NUMBERS)}\r\n`;
    case 2:
      return "*1\r\n".repeat(rng.int(1, 3000));
    case 3:
      return rng.pick(["\r\n", "\r", "\n", "\r\r\n", "\n\r"]);
    case 4:
      return `${rng.pick(["+", "-", ":", "$", "*", "_", ",", "#", "%", "~", ">", "!", "="])}${
        rng.pick(INTERESTING_NUMBERS)
      }\r\n`;
    case 5:
      return `"${rng.pick(["\\x", "\\x4", "\\", "\\\\", '\\"', 'a"b', "\\xzz"])}`;
    case 6:
      return "'" + rng.pick(["\\'", "a'b", "", "\\"]);
    case 7:
      return "x".repeat(rng.chance(0.1) ? rng.int(0, 70_000) : rng.int(0, 300));
    case 8:
      return `*2\r\n$3\r\nGET\r\n$${rng.pick(INTERESTING_NUMBERS)}\r\nkey\r\n`;
    default:
      return " ".repeat(rng.int(1, 40)) + "\t";
  }
}

/** A 4-byte big-endian length that is huge, negative as i32, zero, or just off by one. */
function lengthField(rng: Prng): Uint8Array {
  const out = new Uint8Array(4);
  const n = rng.pick([
    0,
    1,
    0x7fffffff,
    0x80000000,
    0xffffffff,
    4096,
    4097,
    64 * 1024 * 1024,
    64 * 1024 * 1024 + 1,
    256 * 1024 * 1024 + 1,
    rng.int(0, 0xffffffff),
  ]);
  new DataView(out.buffer).setUint32(0, n >>> 0, false);
  return out;
}

function concat(...parts: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Which structure tokens {@link mutateBytes} injects. */
export type TokenKind = "resp" | "length" | "json" | "binary" | "none";

/** Options of {@link mutateBytes}. */
export interface MutateOptions {
  /** Other valid inputs to splice from. */
  corpus?: readonly Uint8Array[];
  /** The kind of structure tokens to inject (default "resp"). */
  tokens?: TokenKind;
  /** Upper bound on the result's size (default 1 MiB). */
  maxBytes?: number;
}

/** JSON fragments that break or stretch a JSON parser. */
function jsonToken(rng: Prng): string {
  switch (rng.int(0, 6)) {
    case 0:
      return "[".repeat(rng.int(1, 20_000));
    case 1:
      return '{"a":'.repeat(rng.int(1, 5000));
    case 2:
      return rng.pick(INTERESTING_NUMBERS);
    case 3:
      return rng.pick(['"\\ud800"', '"\\u00ff"', '"\\u0100"', "null", "true", "1e999", "-1e-999"]);
    case 4:
      return `"${"\\u0000".repeat(rng.int(1, 200))}"`;
    case 5:
      return rng.pick([",", ":", "}", "]", '"', "\\"]);
    default:
      return '"__proto__":{"x":1},';
  }
}

/** A varint of the codec (LEB128, minimal). */
function varintBytes(x: number): number[] {
  const out: number[] = [];
  while (x >= 0x80) {
    out.push((x % 0x80) | 0x80);
    x = Math.floor(x / 0x80);
  }
  out.push(x);
  return out;
}

/**
 * Bytes that break or stretch the binary value decoder: tags, varints that are huge, not minimal
 * or endless, counts and lengths beyond the input, deep nesting, field names it refuses, floats
 * holding integers or NaN, text that is latin1 or not UTF-8.
 */
export function binaryToken(rng: Prng): number[] {
  const ascii = (s: string) => [...s].map((c) => c.charCodeAt(0));
  switch (rng.int(0, 9)) {
    case 0:
      return [rng.chance(0.7) ? rng.int(0, 0x0b) : rng.int(0, 255)];
    case 1:
      return [
        rng.int(0x03, 0x09),
        ...rng.pick([
          varintBytes(2 ** 53 - 1),
          [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10], // 2^53
          [0x80, 0x00],
          [0xff, 0x00],
          new Array(rng.int(1, 20)).fill(0x80),
          varintBytes(rng.int(0, 2 ** 31)),
          varintBytes(rng.pick([127, 128, 255, 256, 16383, 16384])),
        ]),
      ];
    case 2: { // deep nesting
      const head = rng.pick([[0x08, 0x01], [0x09, 0x01, 0x0a, 0x00], [
        0x09,
        0x01,
        0x06,
        0x01,
        0x61,
      ]]);
      const n = rng.pick([MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1, rng.int(1, 5000)]);
      return new Array(n).fill(head).flat();
    }
    case 3:
      return [0x0a, rng.pick([WELL_KNOWN_KEYS.length, 0xff, rng.int(0, WELL_KNOWN_KEYS.length)])];
    case 4: // a field name the decoder refuses, or one that reorders array indexes
      return [
        0x06,
        ...rng.pick([
          ascii("\x04kind"),
          ascii("\x09__proto__"),
          ascii("\x011"),
          ascii("\x0a4294967294"),
        ]),
      ];
    case 5: {
      const b = new Uint8Array(8);
      new DataView(b.buffer).setFloat64(0, rng.pick([0, -0, 1, NaN, Infinity, 2 ** 53, 0.5]));
      return [0x05, ...b];
    }
    case 6:
      return rng.pick([[0x07, 0x01, 0x41], [0x07, 0x00], [0x07, 0x02, 0xc0, 0x80], [
        0x07,
        0x03,
        0xed,
        0xa0,
        0x80,
      ], [0x07, 0x02, 0xc4, 0x80]]);
    case 7: // an object with a field twice
      return [0x09, 0x02, 0x0a, 0x00, 0x00, 0x0a, 0x00, 0x00];
    default:
      return [rng.pick([0x06, 0x07, 0x08, 0x09]), ...varintBytes(rng.int(0, 2 ** 40))];
  }
}

/**
 * The encoding of `value` (what {@link mutateJson} made of a valid value) after `lead`; when the
 * encoder has none for it (a lone surrogate, nesting past `MAX_DEPTH`, a field named
 * `__proto__`), `lead` and a {@link binaryToken}: bytes the decoder refuses, those reasons
 * among them.
 */
export function encodeMutated(rng: Prng, value: unknown, lead?: number): Uint8Array {
  try {
    return encodeValue(value, lead);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
  }
  const token = binaryToken(rng);
  return new Uint8Array(lead === undefined ? token : [lead, ...token]);
}

/** Applies 1..`rounds` random byte-level mutations to a copy of `input`. */
export function mutateBytes(
  rng: Prng,
  input: Uint8Array,
  options: MutateOptions = {},
): Uint8Array {
  let b: Uint8Array = input.slice();
  const rounds = rng.chance(0.5) ? 1 : rng.int(2, 8);
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  for (let r = 0; r < rounds; r++) {
    b = mutateOnce(rng, b, options);
    if (b.length > maxBytes) b = b.subarray(0, maxBytes).slice();
  }
  return b;
}

function mutateOnce(rng: Prng, b: Uint8Array, options: MutateOptions): Uint8Array {
  const at = () => rng.int(0, b.length); // an insertion point (may be the end)
  const pos = () => rng.int(0, Math.max(0, b.length - 1));
  switch (rng.int(0, 11)) {
    case 0: { // bit flip
      if (b.length === 0) return b;
      b[pos()] ^= 1 << rng.int(0, 7);
      return b;
    }
    case 1: { // overwrite with an interesting or random byte
      if (b.length === 0) return b;
      b[pos()] = rng.chance(0.7) ? rng.pick(INTERESTING_BYTES) : rng.int(0, 255);
      return b;
    }
    case 2: { // insert bytes
      const i = at();
      const n = rng.int(1, 8);
      const ins = new Uint8Array(n);
      for (let k = 0; k < n; k++) {
        ins[k] = rng.chance(0.5) ? rng.pick(INTERESTING_BYTES) : rng.int(0, 255);
      }
      return concat(b.subarray(0, i), ins, b.subarray(i));
    }
    case 3: { // delete a range
      if (b.length === 0) return b;
      const i = pos();
      const n = rng.int(1, Math.min(16, b.length - i));
      return concat(b.subarray(0, i), b.subarray(i + n));
    }
    case 4: // truncate
      return b.subarray(0, rng.int(0, b.length)).slice();
    case 5: { // duplicate a chunk
      if (b.length === 0) return b;
      const i = pos();
      const n = rng.int(1, Math.min(64, b.length - i));
      const j = at();
      return concat(b.subarray(0, j), b.subarray(i, i + n), b.subarray(j));
    }
    case 6:
    case 7: { // splice with another corpus item
      const corpus = options.corpus ?? [];
      if (corpus.length === 0) return b;
      const other = rng.pick(corpus);
      const i = at();
      const from = rng.int(0, other.length);
      const to = rng.int(from, other.length);
      return rng.chance(0.5)
        ? concat(b.subarray(0, i), other.subarray(from, to), b.subarray(i))
        : concat(b.subarray(0, i), other.subarray(from));
    }
    case 8:
    case 9:
    case 10: { // inject a structure token
      const kind = options.tokens ?? "resp";
      if (kind === "none") return b;
      const i = at();
      const token = kind === "resp"
        ? enc.encode(respToken(rng))
        : kind === "json"
        ? enc.encode(jsonToken(rng))
        : kind === "binary"
        ? new Uint8Array(binaryToken(rng))
        : lengthField(rng);
      if (kind === "length" && rng.chance(0.5) && b.length >= 4) {
        // Overwrite a length field in place (frame and record headers start with one).
        const where = rng.pick([0, 4, Math.min(pos(), b.length - 4)]);
        if (where + 4 <= b.length) b.set(token, where);
        return b;
      }
      if (kind === "binary" && rng.chance(0.5) && token.length <= b.length) {
        b.set(token, rng.int(0, b.length - token.length)); // written over a value's bytes
        return b;
      }
      return concat(b.subarray(0, i), token, b.subarray(i));
    }
    default: { // swap two bytes
      if (b.length < 2) return b;
      const i = pos();
      const j = pos();
      const t = b[i];
      b[i] = b[j];
      b[j] = t;
      return b;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// JSON values

/** Numbers at the edges of every range check of the peer protocol and the state machine. */
export const INTERESTING_JSON_NUMBERS: readonly number[] = [
  0,
  -0,
  1,
  -1,
  -2,
  2,
  3,
  9,
  0.5,
  -0.5,
  1e308,
  -1e308,
  2 ** 31,
  2 ** 32,
  2 ** 48 - 1,
  2 ** 48,
  2 ** 48 + 1,
  2 ** 53 - 1,
  2 ** 53,
  -(2 ** 53),
  Number.MAX_VALUE,
  Number.MIN_VALUE,
];

function interestingJson(rng: Prng, depth = 0): unknown {
  switch (rng.int(0, 12)) {
    case 0:
    case 1:
    case 2:
      return rng.pick(INTERESTING_JSON_NUMBERS);
    case 3:
      return rng.pick([
        "",
        "x",
        "SET",
        "GET",
        "hello",
        "msgs",
        "update",
        "\u00ff",
        "\u0100",
        "\ud800",
      ]);
    case 4:
      return null;
    case 5:
      return rng.chance(0.5);
    case 6:
      return [];
    case 7:
      return {};
    case 8:
      return depth > 2 ? 1 : [interestingJson(rng, depth + 1), interestingJson(rng, depth + 1)];
    case 9:
      return depth > 2 ? {} : {
        [rng.pick(["view", "ts", "x", "__proto__", "constructor"])]: interestingJson(
          rng,
          depth + 1,
        ),
      };
    case 10: { // deep nesting
      let v: unknown = 1;
      const n = rng.int(10, 1500);
      for (let i = 0; i < n; i++) v = rng.chance(0.5) ? [v] : { a: v };
      return v;
    }
    case 11:
      return "y".repeat(rng.int(0, 2000));
    default:
      return Array.from({ length: rng.int(0, 300) }, () => rng.int(0, 9));
  }
}

interface Slot {
  get(): unknown;
  set(v: unknown): void;
  remove(): void;
  parent: unknown;
}

/** Every node of `root` (a parsed JSON value), as slots that can replace or remove it. */
function slots(root: { v: unknown }): Slot[] {
  const out: Slot[] = [];
  const visit = (parent: unknown, key: string | number, depth: number) => {
    const p = parent as Record<string | number, unknown>;
    const value = p[key];
    out.push({
      get: () => p[key],
      set: (v) => (p[key] = v),
      remove: () => {
        if (Array.isArray(p)) p.splice(key as number, 1);
        else delete p[key];
      },
      parent,
    });
    if (depth > 40 || out.length > 5000) return;
    if (Array.isArray(value)) value.forEach((_, i) => visit(value, i, depth + 1));
    else if (value !== null && typeof value === "object") {
      for (const k of Object.keys(value)) visit(value, k, depth + 1);
    }
  };
  visit(root, "v", 0);
  return out;
}

/**
 * Mutates a JSON value (a structured clone is made first): 1..4 structural edits at random nodes.
 * `donors` are other valid values whose nodes may be grafted in.
 */
export function mutateJson(rng: Prng, value: unknown, donors: readonly unknown[] = []): unknown {
  const root = { v: clone(value) };
  const rounds = rng.int(1, 4);
  for (let r = 0; r < rounds; r++) {
    const all = slots(root);
    const s = rng.pick(all);
    const cur = s.get();
    switch (rng.int(0, 9)) {
      case 0:
      case 1:
      case 2:
        s.set(interestingJson(rng));
        break;
      case 3: // a number nearby
        if (typeof cur === "number") s.set(cur + rng.pick([-1, 1, -2, 2, 1000, -1000]));
        else s.set(rng.pick(INTERESTING_JSON_NUMBERS));
        break;
      case 4: // drop the node (field or element)
        if (s.parent !== root) s.remove();
        break;
      case 5: // an unknown field, or a duplicated element
        if (Array.isArray(cur)) {
          if (cur.length > 0) cur.splice(rng.int(0, cur.length), 0, clone(rng.pick(cur)));
        } else if (cur !== null && typeof cur === "object") {
          (cur as Record<string, unknown>)[rng.pick(["extra", "view", "__proto__", "0"])] =
            interestingJson(rng);
        } else s.set(interestingJson(rng));
        break;
      case 6: { // graft a node of a donor (or of the value itself)
        const donor = donors.length > 0 && rng.chance(0.7) ? { v: clone(rng.pick(donors)) } : root;
        const from = rng.pick(slots(donor));
        s.set(clone(from.get()));
        break;
      }
      case 7: // repeat an array many times (big batches)
        if (Array.isArray(cur) && cur.length > 0 && size(root.v, 20_000) < 20_000) {
          const curBytes = jsonText(cur).length;
          const n = curBytes > 50_000 ? 1 : rng.int(2, Math.max(2, Math.floor(100_000 / curBytes)));
          const copy = [...cur];
          for (let i = 0; i < n; i++) cur.push(...copy);
          // Copies, not shared references: a later repeat of a repeat must not explode.
          s.set(JSON.parse(jsonText(cur)));
        } else s.set(String(cur));
        break;
      case 8: // a string that differs by one char, or a number as a string
        if (typeof cur === "string") {
          const i = rng.int(0, cur.length);
          s.set(
            cur.slice(0, i) + String.fromCharCode(rng.pick([0, 0xff, 0x100, 0xd800, 0x41])) +
              cur.slice(i + 1),
          );
        } else if (typeof cur === "number") s.set(String(cur));
        else s.set(interestingJson(rng));
        break;
      default: // wrap in an array or object
        s.set(rng.chance(0.5) ? [cur] : { v: cur });
    }
  }
  // Keep inputs small enough that a slow one means a slow decoder, not a big input.
  return jsonText(root.v).length > 512 * 1024 ? value : root.v;
}

/** A deep copy (the value itself when it is too deep to copy). */
function clone<T>(v: T): T {
  try {
    return structuredClone(v);
  } catch {
    return v;
  }
}

/** Counts the nodes of `v` (stops counting at `limit`). */
function size(v: unknown, limit: number): number {
  let n = 0;
  const stack: unknown[] = [v];
  while (stack.length > 0 && n < limit) {
    const x = stack.pop();
    n++;
    if (Array.isArray(x)) { for (const y of x) stack.push(y); }
    else if (x !== null && typeof x === "object") {
      for (const y of Object.values(x)) stack.push(y);
    }
  }
  return n;
}

/** `JSON.stringify` that never throws (for values that came from {@link mutateJson}). */
export function jsonText(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "null";
  } catch {
    return "null";
  }
}
