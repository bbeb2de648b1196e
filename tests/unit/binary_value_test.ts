/**
 * `src/codec/binary_value.ts`: the tagged, length-prefixed, canonical codec of peer frames and WAL
 * records.
 *
 * - Generated values (seeded): nested arrays and objects, byte strings with every char code
 *   0..255 (short ones and ones long enough for the native latin1 decoder), strings with chars
 *   above 0xff (astral ones too), integers at the edges of the varint (0, 127, 128, 2^53-1,
 *   negatives), floats, -0, objects with well-known and other field names (array indexes among
 *   them) and `undefined`-valued properties. Each encodes to what a reference encoder written from
 *   the grammar makes, decodes to `JSON.parse(JSON.stringify(value))` (also after a lead byte, and
 *   from a view into a larger buffer), and the decoded value re-encodes to the same bytes.
 * - The exact bytes of small values (the module documentation's grammar), and the well-known
 *   field names' numbers (append only: they are part of every log written).
 * - Every refusal of `decodeValue`, each a `BinaryValueError` whose message says what is wrong;
 *   no proper prefix of an encoding decodes, and a one-byte change is refused or canonical.
 * - Every `TypeError` of `encodeValue`, and that its reused buffer never leaks into a result.
 *
 * Environment: `BINARY_VALUE_SEED=<n>` reruns one seed (a failure prints its seed);
 * `BINARY_VALUE_SEEDS=<n>` sets how many seeds run (default 500).
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  BinaryValueError,
  decodeValue,
  encodeValue,
  MAX_DEPTH,
  WELL_KNOWN_KEYS,
} from "../../src/codec/binary_value.ts";
import { Prng } from "../support/prng.ts";
import { seedsFromEnv } from "../support/seeds.ts";

const { seeds, one: oneSeed } = seedsFromEnv("BINARY_VALUE", 500);

/** Every char code 0..255 once. */
const ALL_BYTES = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));

const utf8 = new TextEncoder();

function hex(b: Uint8Array | readonly number[]): string {
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");
}

function bytes(...parts: (number | string | readonly number[])[]): Uint8Array {
  const out: number[] = [];
  for (const p of parts) {
    if (typeof p === "number") out.push(p);
    else if (typeof p === "string") { for (const c of p) out.push(c.charCodeAt(0)); }
    else out.push(...p);
  }
  return new Uint8Array(out);
}

// ---------------------------------------------------------------------------------------------
// A reference encoder, written from the grammar in the module documentation (slow and plain).

function refVarint(x: number): number[] {
  const out: number[] = [];
  do {
    let b = x % 128;
    x = Math.floor(x / 128);
    if (x > 0) b |= 0x80;
    out.push(b);
  } while (x > 0);
  return out;
}

function refString(s: string): number[] {
  if ([...s].every((c) => c.length === 1 && c.charCodeAt(0) <= 0xff)) {
    return [0x06, ...refVarint(s.length), ...[...s].map((c) => c.charCodeAt(0))];
  }
  const b = utf8.encode(s);
  return [0x07, ...refVarint(b.length), ...b];
}

function refF64(x: number): number[] {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setFloat64(0, x, false);
  return [0x05, ...b];
}

function reference(v: unknown): number[] {
  if (v === null) return [0x00];
  if (v === false) return [0x01];
  if (v === true) return [0x02];
  if (typeof v === "number") {
    if (Number.isSafeInteger(v)) return v >= 0 ? [0x03, ...refVarint(v)] : [0x04, ...refVarint(-v)];
    return refF64(v);
  }
  if (typeof v === "string") return refString(v);
  if (Array.isArray(v)) return [0x08, ...refVarint(v.length), ...v.flatMap(reference)];
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).filter((k) => o[k] !== undefined);
  const out = [0x09, ...refVarint(keys.length)];
  for (const k of keys) {
    const n = WELL_KNOWN_KEYS.indexOf(k);
    out.push(...(n >= 0 ? [0x0a, n] : refString(k)), ...reference(o[k]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Generated values

/** What the seeds made: the test checks that the interesting cases came up. */
interface Tally {
  values: number;
  allBytes: number;
  longBytes: number;
  astral: number;
  wide: number;
  edgeInts: number;
  negatives: number;
  floats: number;
  negativeZero: number;
  wellKnownKeys: number;
  otherKeys: number;
  indexKeys: number;
  undefinedFields: number;
}

const EDGE_INTS = [
  0,
  1,
  127,
  128,
  255,
  256,
  16383,
  16384,
  2 ** 21 - 1,
  2 ** 21,
  2 ** 31,
  2 ** 32,
  2 ** 49,
  2 ** 53 - 1,
  -1,
  -127,
  -128,
  -(2 ** 53 - 1),
];

function randomString(rng: Prng, tally: Tally): string {
  const r = rng.next();
  if (r < 0.08) return (tally.allBytes++, ALL_BYTES);
  if (r < 0.14) {
    tally.longBytes++;
    return String.fromCharCode(...Array.from({ length: rng.int(24, 300) }, () => rng.int(0, 255)));
  }
  if (r < 0.24) {
    tally.astral++;
    return rng.pick(["😀", "a😀b", "\u{10ffff}", "\u{1f600}\xff", "\ud83d\ude00".repeat(30)]);
  }
  if (r < 0.36) {
    tally.wide++;
    const s = Array.from(
      { length: rng.int(1, 40) },
      () => rng.chance(0.3) ? rng.int(0x100, 0xd7ff) : rng.int(0, 0xff),
    );
    s[rng.int(0, s.length - 1)] = rng.pick([0x100, 0x2028, 0xfeff, 0xffff, 0xe000]);
    return String.fromCharCode(...s);
  }
  if (r < 0.42) return rng.pick(["", "kind", "__proto__x", "constructor", "toString", "0"]);
  return String.fromCharCode(...Array.from({ length: rng.int(0, 23) }, () => rng.int(0, 255)));
}

function randomNumber(rng: Prng, tally: Tally): number {
  const r = rng.next();
  if (r < 0.3) return (tally.edgeInts++, rng.pick(EDGE_INTS));
  if (r < 0.5) return (tally.negatives++, -rng.int(1, 2 ** 20));
  if (r < 0.6) return (tally.negativeZero++, -0);
  if (r < 0.8) {
    tally.floats++;
    return rng.pick([
      () => rng.next() * 1e6 - 5e5,
      () => rng.int(-100, 100) + 0.5,
      () => rng.pick([0.1, -2.5, 1e-300, Number.MIN_VALUE, Number.MAX_VALUE, 2 ** 53, -(2 ** 60)]),
    ])();
  }
  return rng.int(0, 2 ** 32);
}

function randomKey(rng: Prng, tally: Tally): string {
  const r = rng.next();
  if (r < 0.45) return (tally.wellKnownKeys++, rng.pick(WELL_KNOWN_KEYS));
  if (r < 0.6) {
    tally.indexKeys++;
    return String(rng.pick([0, 1, 2, 10, 99, rng.int(0, 1000), 4294967294]));
  }
  tally.otherKeys++;
  return rng.chance(0.5)
    ? rng.pick(["x", "k1", "01", "-1", "4294967295", "constructor", "kinds", ""])
    : randomString(rng, tally);
}

function randomValue(rng: Prng, tally: Tally, depth: number, budget: { n: number }): unknown {
  const r = rng.next();
  if (depth >= 6 || --budget.n <= 0 || r < 0.45) {
    switch (rng.int(0, 5)) {
      case 0:
        return null;
      case 1:
        return rng.chance(0.5);
      case 2:
      case 3:
        return randomNumber(rng, tally);
      default:
        return randomString(rng, tally);
    }
  }
  if (r < 0.7) {
    return Array.from({ length: rng.int(0, 8) }, () => randomValue(rng, tally, depth + 1, budget));
  }
  const o: Record<string, unknown> = rng.chance(0.1) ? Object.create(null) : {};
  for (let i = rng.int(0, 6); i > 0; i--) {
    const key = randomKey(rng, tally);
    if (rng.chance(0.1)) {
      tally.undefinedFields++;
      o[key] = undefined;
    } else o[key] = randomValue(rng, tally, depth + 1, budget);
  }
  return o;
}

function roundTrip(v: unknown): void {
  const encoded = encodeValue(v);
  assert.equal(hex(encoded), hex(reference(v)), "the encoding is not the reference encoder's");
  const want = JSON.parse(JSON.stringify(v));
  const decoded = decodeValue(encoded);
  assert.deepStrictEqual(decoded, want);
  assert.equal(hex(encodeValue(decoded)), hex(encoded), "the decoded value re-encodes otherwise");
  // After a lead byte, decoded from 1.
  const led = encodeValue(v, 0x01);
  assert.equal(hex(led), hex([0x01, ...encoded]));
  assert.deepStrictEqual(decodeValue(led, 1), want);
  // From a view that does not start at its buffer's start.
  const big = new Uint8Array(encoded.length + 7);
  big.set(encoded, 7);
  assert.deepStrictEqual(decodeValue(big.subarray(7)), want);
}

function runSeed(seed: number, tally: Tally): void {
  const rng = new Prng(seed);
  const v = randomValue(rng, tally, 0, { n: rng.int(1, 200) });
  try {
    roundTrip(v);
    tally.values++;
  } catch (err) {
    throw new Error(
      `seed ${seed} (BINARY_VALUE_SEED=${seed}): ${err instanceof Error ? err.message : err}`,
      { cause: err },
    );
  }
}

Deno.test("binary value: generated values round-trip, canonically", () => {
  const tally: Tally = {
    values: 0,
    allBytes: 0,
    longBytes: 0,
    astral: 0,
    wide: 0,
    edgeInts: 0,
    negatives: 0,
    floats: 0,
    negativeZero: 0,
    wellKnownKeys: 0,
    otherKeys: 0,
    indexKeys: 0,
    undefinedFields: 0,
  };
  for (const seed of seeds) runSeed(seed, tally);
  if (!oneSeed) {
    // The generator must have made the cases the test is about.
    assert.equal(tally.values, seeds.length);
    for (const [what, n] of Object.entries(tally)) {
      assert.ok(n >= 20, `only ${n} ${what} (${JSON.stringify(tally)})`);
    }
  }
});

Deno.test("binary value: edge values round-trip", () => {
  const values: unknown[] = [
    null,
    true,
    false,
    ...EDGE_INTS,
    2 ** 53,
    -(2 ** 53),
    0.5,
    -0.5,
    Number.MIN_VALUE,
    -Number.MAX_VALUE,
    "",
    ALL_BYTES,
    ALL_BYTES.slice(0, 23),
    ALL_BYTES.slice(0, 24),
    "\u0100",
    "😀",
    "\ufeff", // a BOM is a char like any other
    "\ufeffx\xff",
    "\x00".repeat(1000) + "\u0100",
    [],
    {},
    [[[]]],
    { [ALL_BYTES]: ALL_BYTES, "\u0100": "\u{10ffff}", "": "" },
    { b: 1, 2: 2, 1: 1, a: 3 }, // listed "1", "2", "b", "a"
    { "4294967295": 1, "4294967294": 2, "01": 3, "-0": 4 },
    Object.assign(Object.create(null), { constructor: 1, toString: 2, hasOwnProperty: 3 }),
    Object.fromEntries(WELL_KNOWN_KEYS.map((k, i) => [k, i])),
    { a: undefined, b: 1, c: undefined },
  ];
  for (const v of values) roundTrip(v);
  // -0 is the integer 0.
  assert.equal(hex(encodeValue(-0)), "03 00");
  assert.ok(Object.is(decodeValue(encodeValue(-0)), 0));
  assert.ok(Object.is((decodeValue(encodeValue([-0])) as number[])[0], 0));
  // Nesting of exactly MAX_DEPTH levels is fine both ways.
  let deep: unknown = 1;
  for (let i = 0; i < MAX_DEPTH; i++) deep = i % 2 === 0 ? [deep] : { a: deep };
  roundTrip(deep);
  // Decoded objects are plain, and a "constructor" field is an own field like any other.
  const o = decodeValue(encodeValue({ constructor: 1 })) as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(o), Object.prototype);
  assert.ok(Object.hasOwn(o, "constructor"));
});

// ---------------------------------------------------------------------------------------------
// Exact bytes

Deno.test("binary value: exact bytes of small values", () => {
  const cases: [unknown, string][] = [
    [null, "00"],
    [false, "01"],
    [true, "02"],
    [0, "03 00"],
    [127, "03 7f"],
    [128, "03 80 01"],
    [300, "03 ac 02"],
    [2 ** 53 - 1, "03 ff ff ff ff ff ff ff 0f"],
    [-1, "04 01"],
    [-300, "04 ac 02"],
    [0.5, "05 3f e0 00 00 00 00 00 00"],
    [2 ** 53, "05 43 40 00 00 00 00 00 00"],
    ["", "06 00"],
    ["ab", "06 02 61 62"],
    ["\x00\xff", "06 02 00 ff"],
    ["\u0100", "07 02 c4 80"],
    ["😀", "07 04 f0 9f 98 80"],
    [[], "08 00"],
    [[1, []], "08 02 03 01 08 00"],
    [{}, "09 00"],
    [{ x: null }, "09 01 06 01 78 00"],
    [{ kind: "hello" }, "09 01 0a 00 06 05 68 65 6c 6c 6f"],
    [{ proof: true, x: undefined }, "09 01 0a 26 02"],
    [{ b: 0, 1: 0 }, "09 02 06 01 31 03 00 06 01 62 03 00"],
  ];
  for (const [v, want] of cases) {
    assert.equal(hex(encodeValue(v)), want, JSON.stringify(v));
    assert.deepStrictEqual(decodeValue(encodeValue(v)), JSON.parse(JSON.stringify(v)));
  }
  // A peer frame: the value tag, then {"kind":"msgs","msgs":[]}.
  assert.equal(
    hex(encodeValue({ kind: "msgs", msgs: [] }, 0x01)),
    "01 09 02 0a 00 06 04 6d 73 67 73 0a 01 08 00",
  );
  assert.deepEqual(decodeValue(bytes(0x01, 0x09, 0x02, 0x0a, 0, 6, 4, "msgs", 0x0a, 1, 8, 0), 1), {
    kind: "msgs",
    msgs: [],
  });
  assert.equal(hex(encodeValue(null, 0x01)), "01 00");
  // A varint of 300 as a length: 300 bytes of a byte string.
  assert.equal(hex(encodeValue("x".repeat(300)).subarray(0, 4)), "06 ac 02 78");
});

Deno.test("binary value: the well-known field names keep their numbers", () => {
  // Append only: a name's number is in every log record and frame written since.
  const FROZEN = [
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
  assert.deepEqual(WELL_KNOWN_KEYS.slice(0, FROZEN.length), FROZEN);
  assert.ok(WELL_KNOWN_KEYS.length <= 256);
  WELL_KNOWN_KEYS.forEach((k, i) => {
    assert.equal(hex(encodeValue({ [k]: null })), hex([0x09, 0x01, 0x0a, i, 0x00]), k);
    assert.deepEqual(decodeValue(bytes(0x09, 0x01, 0x0a, i, 0x00)), { [k]: null });
  });
});

// ---------------------------------------------------------------------------------------------
// Refusals of decodeValue

function refuses(input: Uint8Array, message: RegExp, start = 0): void {
  assert.throws(() => decodeValue(input, start), (err: unknown) => {
    assert.ok(err instanceof BinaryValueError, `expected BinaryValueError, got ${err}`);
    assert.equal(err.name, "BinaryValueError");
    assert.match(err.message, message);
    assert.match(err.message, /^at byte \d+: /);
    return true;
  }, `${hex(input)} must be refused with ${message}`);
}

Deno.test("binary value: decodeValue refuses truncated input and unknown tags", () => {
  const early = /the value ends early/;
  refuses(bytes(), early);
  refuses(bytes(0x03), early);
  refuses(bytes(0x03, 0x80), early);
  refuses(bytes(0x05, 0x3f, 0xe0), early);
  refuses(bytes(0x08, 0x03, 0x00, 0x00, 0x08), early);
  refuses(bytes(0x09, 0x01, 0x0a), early);
  refuses(bytes(0x09, 0x01, 0x0a, 0x00), early);
  refuses(bytes(0x00), early, 1); // from the end
  const whole = encodeValue({ kind: "x", msgs: [1, "ab"] });
  refuses(whole.subarray(0, whole.length - 1), /the value ends early|longer than/);
  for (const tag of [0x0a, 0x0b, 0x7b, 0x80, 0xff]) {
    refuses(bytes(tag), new RegExp(`unknown tag 0x${tag.toString(16).padStart(2, "0")}`));
  }
  refuses(bytes(0x08, 0x01, 0x0b), /at byte 2: unknown tag 0x0b/);
});

Deno.test("binary value: decodeValue refuses varints that are not minimal or too large", () => {
  const notMinimal = /a varint is not minimal/;
  refuses(bytes(0x03, 0x80, 0x00), notMinimal);
  refuses(bytes(0x03, 0xff, 0x00), notMinimal);
  refuses(bytes(0x03, 0xac, 0x82, 0x00), notMinimal);
  refuses(bytes(0x04, 0x81, 0x00), notMinimal);
  refuses(bytes(0x06, 0x80, 0x00), notMinimal); // a length
  refuses(bytes(0x08, 0x80, 0x00), notMinimal); // a count
  const tooLarge = /a varint is above 2\^53-1/;
  refuses(bytes(0x03, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]), tooLarge); // 2^53
  refuses(bytes(0x03, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), tooLarge);
  refuses(bytes(0x04, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]), tooLarge);
  refuses(bytes(0x03, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), tooLarge);
  refuses(bytes(0x03, new Array(1000).fill(0x80), 0x01), tooLarge); // stops early
  refuses(bytes(0x08, [0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x10]), tooLarge);
  // The largest ones are fine.
  assert.equal(
    decodeValue(bytes(0x03, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f])),
    2 ** 53 - 1,
  );
  assert.equal(
    decodeValue(bytes(0x04, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f])),
    -(2 ** 53 - 1),
  );
});

Deno.test("binary value: decodeValue refuses numbers with another encoding", () => {
  refuses(bytes(0x04, 0x00), /at byte 0: a negative integer of 0/);
  const asFloat = /an integer written as a float/;
  for (const x of [0, -0, 1, -1, 300, 2 ** 53 - 1, -(2 ** 53 - 1)]) {
    refuses(bytes(refF64(x)), asFloat);
  }
  refuses(bytes(refF64(NaN)), /NaN as a number/);
  refuses(bytes(0x05, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0x01), /NaN as a number/); // another NaN
  refuses(bytes(0x05, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff), /NaN as a number/);
  refuses(bytes(refF64(Infinity)), /Infinity as a number/);
  refuses(bytes(refF64(-Infinity)), /-Infinity as a number/);
  // Floats that are not safe integers are floats.
  assert.equal(decodeValue(bytes(refF64(2 ** 53))), 2 ** 53);
  assert.equal(decodeValue(bytes(refF64(-0.5))), -0.5);
});

Deno.test("binary value: decodeValue refuses strings with another encoding or no UTF-8", () => {
  const asText = /a byte string is written as text/;
  refuses(bytes(0x07, 0x00), asText);
  refuses(bytes(0x07, 0x01, 0x41), asText);
  refuses(bytes(0x07, 0x02, 0xc3, 0xbf), asText); // "\xff" in UTF-8
  refuses(bytes(0x07, refVarint(384), [...utf8.encode(ALL_BYTES)]), asText);
  const notUtf8 = /a text string is not UTF-8/;
  refuses(bytes(0x07, 0x02, 0xc4, 0x41), notUtf8); // a cut sequence
  refuses(bytes(0x07, 0x01, 0xc4), notUtf8);
  refuses(bytes(0x07, 0x03, 0xed, 0xa0, 0x80), notUtf8); // a surrogate
  refuses(bytes(0x07, 0x02, 0xc0, 0x80), notUtf8); // overlong
  refuses(bytes(0x07, 0x04, 0xf4, 0x90, 0x80, 0x80), notUtf8); // above U+10FFFF
  refuses(bytes(0x07, 0x01, 0xff), notUtf8);
  refuses(bytes(0x08, 0x01, 0x07, 0x01, 0x80), /at byte 2: a text string is not UTF-8/);
});

Deno.test("binary value: decodeValue checks lengths and counts before allocating", () => {
  refuses(bytes(0x06, 0x05, 0x61), /at byte 1: a byte string of 5 is longer than the 1 bytes left/);
  refuses(bytes(0x07, 0x03, 0xc4, 0x80), /a text string of 3 is longer than the 2 bytes left/);
  refuses(bytes(0x08, 0x05, 0x00, 0x00), /an array of 5 is longer than the 2 bytes left/);
  refuses(bytes(0x09, 0x02, 0x0a), /an object of 2 is longer than the 1 bytes left/);
  // The largest count there is: refused at the count, before an array of it is made.
  const max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f];
  refuses(bytes(0x08, max), /an array of 9007199254740991 is longer than the 0 bytes left/);
  refuses(bytes(0x09, max, 0x00), /an object of 9007199254740991 is longer than the 1 bytes left/);
  refuses(bytes(0x06, max), /a byte string of 9007199254740991/);
  // A count that would be a large allocation, on a few bytes: refused at the count.
  for (let i = 0; i < 100; i++) {
    refuses(
      bytes(0x08, refVarint(100_000_000 + i), 0x00, 0x00),
      /an array of 1000000\d\d is longer/,
    );
  }
});

Deno.test("binary value: decodeValue refuses field names with another encoding", () => {
  const n = WELL_KNOWN_KEYS.length;
  refuses(bytes(0x09, 0x01, 0x0a, n, 0x00), new RegExp(`at byte 2: unknown field number ${n}`));
  refuses(bytes(0x09, 0x01, 0x0a, 0xff, 0x00), /unknown field number 255/);
  refuses(bytes(0x09, 0x01, 0x06, 0x04, "kind", 0x00), /the field "kind" is written by name/);
  refuses(bytes(0x09, 0x01, 0x06, 0x05, "proof", 0x00), /the field "proof" is written by name/);
  refuses(bytes(0x09, 0x01, 0x06, 0x09, "__proto__", 0x00), /a field named "__proto__"/);
  refuses(bytes(0x09, 0x01, 0x06, 0x09, "__proto__", 0x09, 0x00), /a field named "__proto__"/);
  refuses(
    bytes(0x09, 0x02, 0x06, 0x01, "a", 0x00, 0x06, 0x01, "a", 0x00),
    /the field "a" appears twice/,
  );
  refuses(bytes(0x09, 0x02, 0x0a, 0x00, 0x00, 0x0a, 0x00, 0x00), /the field "kind" appears twice/);
  refuses(
    bytes(0x09, 0x02, 0x06, 0x01, "1", 0x00, 0x06, 0x01, "1", 0x00),
    /the field "1" appears twice/,
  );
  const notString = /a field name is not a string/;
  for (const tag of [0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x08, 0x09, 0x0b, 0xff]) {
    refuses(bytes(0x09, 0x01, tag, 0x00, 0x00), notString);
  }
});

Deno.test("binary value: decodeValue refuses fields out of the order an object lists them", () => {
  // An object lists array-index names ("0" .. "4294967294") first, ascending: {b, 1} is {1, b}.
  const field = (k: string) => [0x06, k.length, ...[...k].map((c) => c.charCodeAt(0)), 0x00];
  const obj = (...keys: string[]) => bytes(0x09, keys.length, ...keys.map(field));
  const outOfOrder = /is out of order/;
  refuses(obj("b", "1"), /at byte 6: the field "1" is out of order/);
  refuses(obj("2", "1"), outOfOrder);
  refuses(obj("1", "b", "0"), outOfOrder);
  refuses(obj("a", "4294967294"), outOfOrder);
  refuses(bytes(0x09, 0x02, 0x0a, 0x00, 0x00, field("7")), outOfOrder); // after a well-known name
  // Names that are not array indexes keep their order, wherever they are.
  for (
    const keys of [["1", "b"], ["1", "2", "10"], ["b", "a"], ["b", "01"], ["b", "4294967295"], [
      "b",
      "-1",
    ], ["b", "1.5"]]
  ) {
    const input = obj(...keys);
    const v = decodeValue(input) as Record<string, unknown>;
    assert.deepEqual(Object.keys(v), keys);
    assert.equal(hex(encodeValue(v)), hex(input));
  }
});

Deno.test("binary value: decodeValue refuses trailing bytes and deep nesting", () => {
  refuses(bytes(0x00, 0x00), /at byte 1: 1 bytes after the value/);
  refuses(bytes(0x08, 0x00, 0x00, 0x00, 0x00), /3 bytes after the value/);
  refuses(bytes(0x01, 0x00, 0x00), /at byte 2: 1 bytes after the value/, 1);
  // MAX_DEPTH arrays or objects in each other are fine; one more is refused.
  /** `n` times `head`, then null. */
  const nest = (n: number, head: readonly number[]) => {
    const out = new Uint8Array(n * head.length + 1);
    for (let i = 0; i < n; i++) out.set(head, i * head.length);
    return out;
  };
  const arrays = (n: number) => nest(n, [0x08, 0x01]);
  assert.equal(
    JSON.stringify(decodeValue(arrays(MAX_DEPTH))),
    "[".repeat(MAX_DEPTH) + "null" + "]".repeat(MAX_DEPTH),
  );
  refuses(
    arrays(MAX_DEPTH + 1),
    new RegExp(`at byte ${2 * MAX_DEPTH}: nested deeper than ${MAX_DEPTH} levels`),
  );
  refuses(arrays(100_000), /nested deeper than/); // no stack overflow
  const objects = (n: number) => nest(n, [0x09, 0x01, 0x06, 0x01, 0x61]);
  decodeValue(objects(MAX_DEPTH));
  refuses(objects(MAX_DEPTH + 1), /nested deeper than/);
  refuses(objects(100_000), /nested deeper than/);
});

Deno.test("binary value: a prefix of an encoding is refused, a changed byte refused or canonical", () => {
  const samples = [
    { kind: "msgs", msgs: [{ type: "ack", view: 1, ts: 300, acks: { 1: 4, 2: 3 } }] },
    ["\u0100x", ALL_BYTES.slice(0, 40), -5, 0.25, null, true, { x: [[]] }],
  ];
  for (const v of samples) {
    const encoded = encodeValue(v);
    for (let n = 0; n < encoded.length; n++) {
      assert.throws(() => decodeValue(encoded.subarray(0, n)), BinaryValueError);
    }
    for (let i = 0; i < encoded.length; i++) {
      for (
        const b of [0x00, 0x01, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x7f, 0x80, 0xff, encoded[i] ^ 1]
      ) {
        const changed = encoded.slice();
        changed[i] = b;
        let decoded: unknown;
        try {
          decoded = decodeValue(changed);
        } catch (err) {
          assert.ok(err instanceof BinaryValueError, `${hex(changed)}: ${err}`);
          continue;
        }
        assert.equal(hex(encodeValue(decoded)), hex(changed), "accepted but not canonical");
      }
    }
  }
});

// ---------------------------------------------------------------------------------------------
// encodeValue

function noEncoding(v: unknown, message: RegExp): void {
  assert.throws(() => encodeValue(v), (err: unknown) => {
    assert.ok(err instanceof TypeError, `expected TypeError, got ${err}`);
    assert.match(err.message, message);
    return true;
  });
}

Deno.test("binary value: encodeValue throws TypeError for what has no encoding", () => {
  noEncoding(undefined, /undefined has no encoding/);
  noEncoding([1, undefined], /undefined has no encoding/);
  noEncoding([1, , 2], /undefined has no encoding/); // a hole
  noEncoding(() => 1, /function has no encoding/);
  noEncoding({ f: () => 1 }, /function has no encoding/);
  noEncoding(Symbol("s"), /symbol has no encoding/);
  noEncoding(1n, /bigint has no encoding/);
  noEncoding({ n: 1n }, /bigint has no encoding/);
  noEncoding(NaN, /NaN has no encoding/);
  noEncoding(Infinity, /Infinity has no encoding/);
  noEncoding([-Infinity], /-Infinity has no encoding/);
  for (const v of [new Map(), new Set(), new Date(0), new Uint8Array(2), new (class X {})()]) {
    noEncoding(v, /only plain objects have an encoding/);
    noEncoding({ v }, /only plain objects have an encoding/);
  }
  noEncoding("\ud800", /lone surrogate/);
  noEncoding("a\udc00b\u0100", /lone surrogate/);
  noEncoding(["x", "\ud83d"], /lone surrogate/);
  noEncoding({ "\ud800": 1 }, /lone surrogate/);
  // A field named "__proto__" (JSON.parse makes one) would be refused by decodeValue.
  noEncoding(JSON.parse('{"__proto__":1}'), /"__proto__"/);
  noEncoding({ a: JSON.parse('{"x":1,"__proto__":{}}') }, /"__proto__"/);
  let deep: unknown = 1;
  for (let i = 0; i <= MAX_DEPTH; i++) deep = i % 2 === 0 ? [deep] : { a: deep };
  noEncoding(deep, new RegExp(`nested deeper than ${MAX_DEPTH} levels`));
  let deeper: unknown = [];
  for (let i = 0; i < 100_000; i++) deeper = [deeper];
  noEncoding(deeper, /nested deeper than/); // no stack overflow
  // A failed encoding leaves nothing behind: the next one is whole.
  assert.equal(hex(encodeValue("x")), "06 01 78");
  assert.equal(hex(encodeValue([1], 0x01)), "01 08 01 03 01");
});

Deno.test("binary value: the encoder's reused buffer never leaks into a result", () => {
  // A value of more than 1 MiB (the buffer grows past what it keeps), then small ones.
  const big = {
    kind: "msgs",
    msgs: Array.from({ length: 40 }, (_, i) => ALL_BYTES.repeat(120) + i),
  };
  const bigBytes = encodeValue(big);
  assert.ok(bigBytes.length > 1024 * 1024, `${bigBytes.length} bytes`);
  const bigCopy = bigBytes.slice();
  const small = encodeValue({ kind: "x" }, 0x01);
  assert.equal(hex(small), "01 09 01 0a 00 06 01 78");
  assert.deepEqual(decodeValue(small, 1), { kind: "x" });
  assert.deepEqual(bigBytes, bigCopy, "a later encoding changed an earlier result");
  assert.deepStrictEqual(decodeValue(bigBytes), big);
  // Results own their bytes (no view of the encoder's buffer), and later ones do not touch them.
  const a = encodeValue("aaaa");
  const b = encodeValue("bbbb");
  assert.equal(a.byteOffset, 0);
  assert.equal(a.buffer.byteLength, a.length);
  assert.equal(hex(a), "06 04 61 61 61 61");
  assert.equal(hex(b), "06 04 62 62 62 62");
  // A value that grows the buffer but less than it keeps, then a small one, then a big one again.
  const mid = ALL_BYTES.repeat(2000); // 512 KiB
  const midBytes = encodeValue([mid, "\u0100".repeat(1000)]);
  assert.equal(hex(encodeValue(7)), "03 07");
  assert.deepStrictEqual(decodeValue(midBytes), [mid, "\u0100".repeat(1000)]);
  assert.deepStrictEqual(decodeValue(encodeValue(big)), big);
  assert.equal(hex(encodeValue(null)), "00");
  // After a failure in the middle of a large value, too.
  assert.throws(() => encodeValue([ALL_BYTES.repeat(5000), undefined]), TypeError);
  assert.equal(hex(encodeValue([true])), "08 01 02");
});

Deno.test("binary value: long strings take the byte form by every path of the encoder", () => {
  const ascii = "k".repeat(30);
  const cases: [string, number][] = [
    [ascii, 0x06], // all ASCII: written by the native encoder
    [ascii + "\xe9", 0x06], // ASCII, then a byte 0x80-0xff at the end: written in the loop
    ["\xff" + ascii, 0x06], // a high byte first
    [ascii + "\x00\x7f\x80", 0x06],
    [ascii + "\u20ac", 0x07], // a char above 0xff: text, as UTF-8
    ["\u20ac" + "\xe9".repeat(40), 0x07],
  ];
  for (const [s, tag] of cases) {
    const bytes = encodeValue(s);
    assert.equal(bytes[0], tag, JSON.stringify(s));
    assert.equal(decodeValue(bytes), s);
    if (tag === 0x06) {
      // One byte per char code, after the tag and a one-byte length.
      assert.equal(bytes.length, 2 + s.length);
      assert.deepEqual([...bytes.subarray(2)], [...s].map((c) => c.charCodeAt(0)));
    }
  }
  // In an object after other fields (the native write lands at the right offset).
  const v = { kind: "x", a: ascii, b: ascii + "\xe9", c: [ascii, 1] };
  assert.deepEqual(decodeValue(encodeValue(v, 0x01), 1), v);
});
