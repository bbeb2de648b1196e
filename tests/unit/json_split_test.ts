/**
 * `src/codec/json_split.ts`: a JSON value as a sequence of documents whose large arrays ("holes")
 * are filled in batches, and the joiner that puts it back together.
 *
 * Generated values (seeded): nested objects and arrays, large arrays inside elements of large
 * arrays, holes inside objects inside arrays, sparse arrays, `undefined`, functions and objects
 * with `toJSON` in objects and arrays, strings with every char code 0..255, empty arrays, a large
 * array or a primitive at the top. For each: the joined value equals
 * `JSON.parse(JSON.stringify(value))`, every document is bounded (a batch holds elements while it
 * is under `pieceChars`, so it is at most that plus one element, plus its header and
 * announcements), and no array in any document is longer than the split threshold. Then the
 * joiner refuses what a hostile peer could send: a hole path leading nowhere, a hole announced
 * twice, a non-empty array as a hole, an overfilled hole, a batch for a hole never announced,
 * unknown and missing fields, and `value()` before the value is complete.
 *
 * Environment: `JSON_SPLIT_SEED=<n>` reruns one seed (a failure prints its seed);
 * `JSON_SPLIT_SEEDS=<n>` sets how many seeds run (default 400).
 *
 * @module
 */
import assert from "node:assert/strict";
import { JsonJoiner, SplitError, splitJson } from "../../src/codec/json_split.ts";
import { LazyArray } from "../../src/codec/lazy_array.ts";
import { Prng } from "../support/prng.ts";
import { seedsFromEnv } from "../support/seeds.ts";

const { seeds, one: oneSeed } = seedsFromEnv("JSON_SPLIT", 400);

/** Every char code 0..255 once (a byte string, as keys and values are). */
const ALL_BYTES = String.fromCharCode(...Array.from({ length: 256 }, (_, i) => i));

/** How a seed generates and splits. */
interface Shape {
  /** Arrays longer than this are holes. */
  longer: number;
  pieceChars: number;
  /** Values still to generate: past it, only primitives (keeps a value's size bounded). */
  budget: number;
}

/** A string: every byte value, random bytes, or a few wider chars (and a lone surrogate). */
function randomString(rng: Prng): string {
  const r = rng.next();
  if (r < 0.1) return ALL_BYTES;
  if (r < 0.2) return rng.pick(["", "é", "\u2028", "😀", "\ud800", "__proto__", "constructor"]);
  return String.fromCharCode(
    ...Array.from({ length: rng.int(0, 12) }, () => rng.int(0, rng.chance(0.9) ? 255 : 0xffff)),
  );
}

function primitive(rng: Prng): unknown {
  return rng.pick([
    () => rng.int(-1000, 1000),
    () => rng.next() * 1e6 - 5e5,
    () => rng.pick([0, -0, NaN, Infinity, 2 ** 53 - 1, 1e-300]),
    () => randomString(rng),
    () => rng.chance(0.5),
    () => null,
  ])();
}

/** What `JSON.stringify` drops from objects (and writes as null in arrays), or a `toJSON`. */
function oddity(rng: Prng, shape: Shape, depth: number): unknown {
  return rng.pick([
    () => undefined,
    () => () => 1,
    () => new Date(rng.int(0, 2 ** 40)),
    () => ({ toJSON: () => Array.from({ length: shape.longer }, (_, i) => i) }),
    () => ({ toJSON: () => undefined, x: value(rng, shape, depth + 1) }),
  ])();
}

function array(rng: Prng, shape: Shape, depth: number, large: boolean): unknown[] {
  const n = large ? rng.int(shape.longer + 1, shape.longer * 3 + 20) : rng.int(0, shape.longer);
  const out = Array.from({ length: n }, () => value(rng, shape, depth + 1));
  if (rng.chance(0.1) && n > 0) delete out[rng.int(0, n - 1)]; // sparse
  return out;
}

function object(rng: Prng, shape: Shape, depth: number): Record<string, unknown> {
  const o: Record<string, unknown> = {};
  for (let i = rng.int(0, 5); i > 0; i--) {
    const key = rng.chance(0.8) ? `k${rng.int(0, 20)}` : randomString(rng);
    const v = value(rng, shape, depth + 1);
    // An own "__proto__" key, as JSON.parse makes it (an assignment would set the prototype).
    Object.defineProperty(o, key, {
      value: v,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return o;
}

/** A random value; large arrays become likelier the shallower it is. */
function value(rng: Prng, shape: Shape, depth: number): unknown {
  if (depth >= 5 || --shape.budget <= 0) return primitive(rng);
  const r = rng.next();
  if (r < 0.35) return primitive(rng);
  if (r < 0.42) return oddity(rng, shape, depth);
  if (r < 0.62) return object(rng, shape, depth);
  return array(rng, shape, depth, rng.chance(depth <= 2 ? 0.5 : 0.15));
}

/** What the seeds exercised: the test checks the interesting cases came up. */
interface Tally {
  values: number;
  docs: number;
  holes: number;
  /** Holes announced by a batch (a large array inside an element of a large array). */
  nestedHoles: number;
  /** Holes whose path crosses an object inside an array. */
  objectInArrayHoles: number;
  topLevelLarge: number;
  topLevelPrimitive: number;
}

/** The longest array anywhere in `v` (a document's value: holes are written as `[]`). */
function longestArray(v: unknown): number {
  if (Array.isArray(v)) return Math.max(v.length, ...v.map(longestArray));
  if (v !== null && typeof v === "object") {
    return Math.max(0, ...Object.values(v).map(longestArray));
  }
  return 0;
}

/** Splits `v`, checks every document, joins them; returns the joined value. */
function roundTrip(v: unknown, shape: Shape, tally?: Tally, toJsonArrays = false): unknown {
  const joiner = new JsonJoiner();
  let first = true;
  for (
    const text of splitJson(v, { pieceChars: shape.pieceChars, splitLongerThan: shape.longer })
  ) {
    assert.equal(joiner.complete, false, "a document after the value was complete");
    const doc = JSON.parse(text);
    const holes: [(string | number)[], number][] = doc.h ?? [];
    if (first) {
      assert.deepEqual(Object.keys(doc), ["v", "h"]);
      const longest = longestArray(doc.v);
      assert.ok(toJsonArrays || longest <= shape.longer, "an array over the threshold in the root");
    } else {
      const items: unknown[] = doc.a;
      assert.ok(items.length >= 1, "an empty batch");
      const longestInside = Math.max(0, ...items.map(longestArray));
      assert.ok(toJsonArrays || longestInside <= shape.longer, "a long array in a batch");
      // Elements are added while the batch is under pieceChars: at most that, one element, and
      // the header and announcements around them.
      const texts = items.map((x) => JSON.stringify(x) ?? "null");
      const longest = Math.max(...texts.map((t) => t.length));
      const before = texts.slice(0, -1).reduce((n, t) => n + t.length + 1, 0);
      assert.ok(before < shape.pieceChars, `a batch kept growing past ${shape.pieceChars} chars`);
      const overhead = `{"p":${doc.p},"a":[],"h":${JSON.stringify(holes)}}`.length;
      assert.ok(
        text.length <= shape.pieceChars + longest + overhead,
        `a document of ${text.length} chars (piece ${shape.pieceChars}, element ${longest})`,
      );
      if (tally !== undefined) tally.nestedHoles += holes.length;
    }
    if (tally !== undefined) {
      tally.docs++;
      tally.holes += holes.length;
      for (const [path] of holes) {
        const firstIndex = path.findIndex((s) => typeof s === "number");
        if (firstIndex >= 0 && path.slice(firstIndex).some((s) => typeof s === "string")) {
          tally.objectInArrayHoles++;
        }
      }
    }
    joiner.push(text);
    first = false;
  }
  assert.equal(joiner.complete, true, "complete after the last document");
  return joiner.value();
}

function runSeed(seed: number, tally: Tally): void {
  const rng = new Prng(seed);
  const shape: Shape = rng.chance(0.1)
    ? { longer: 64, pieceChars: rng.int(1, 4096), budget: 5000 }
    : { longer: rng.int(1, 8), pieceChars: rng.int(1, 300), budget: 1000 };
  const r = rng.next();
  const v = r < 0.1
    ? (tally.topLevelPrimitive++, primitive(rng))
    : r < 0.3
    ? (tally.topLevelLarge++, array(rng, shape, 0, true))
    : value(rng, shape, 0);
  const context = `seed ${seed} (JSON_SPLIT_SEED=${seed}), arrays over ${shape.longer}, ` +
    `${shape.pieceChars} chars a piece`;
  try {
    const text = JSON.stringify(v);
    if (text === undefined) {
      // A root with no JSON form (undefined, a function, a toJSON returning undefined).
      assert.throws(() => [...splitJson(v, { splitLongerThan: shape.longer })], TypeError);
      tally.values++;
      return;
    }
    assert.deepStrictEqual(roundTrip(v, shape, tally), JSON.parse(text));
    tally.values++;
  } catch (err) {
    throw new Error(`${context}: ${err instanceof Error ? err.message : err}`, { cause: err });
  }
}

Deno.test("json split: generated values round-trip in bounded documents", () => {
  const tally: Tally = {
    values: 0,
    docs: 0,
    holes: 0,
    nestedHoles: 0,
    objectInArrayHoles: 0,
    topLevelLarge: 0,
    topLevelPrimitive: 0,
  };
  for (const seed of seeds) runSeed(seed, tally);
  if (!oneSeed) {
    // The generator must have made the cases the test is about.
    assert.equal(tally.values, seeds.length);
    assert.ok(tally.docs > tally.values * 2, `only ${tally.docs} documents`);
    assert.ok(tally.nestedHoles > 50, `only ${tally.nestedHoles} holes inside holes`);
    assert.ok(tally.objectInArrayHoles > 50, `only ${tally.objectInArrayHoles} holes in objects`);
    assert.ok(tally.topLevelLarge > 10 && tally.topLevelPrimitive > 10, JSON.stringify(tally));
  }
});

Deno.test("json split: edge values", () => {
  const shape = { longer: 2, pieceChars: 8, budget: 0 };
  const same = (v: unknown) =>
    assert.deepStrictEqual(roundTrip(v, shape), JSON.parse(JSON.stringify(v)));
  for (const v of [0, -0, "", ALL_BYTES, null, true, [], {}, [[]], { a: [] }]) same(v);
  same([ALL_BYTES, ALL_BYTES, ALL_BYTES]); // a hole at the root, elements longer than a piece
  same({ [ALL_BYTES]: [1, 2, 3], "": [[1, 2, 3], undefined, () => 1] });
  same([[1, [1, 2, 3, 4]], undefined, { a: [5, 6, 7], f: () => 1 }, Symbol("s")]);
  same(Array.from({ length: 1000 }, (_, i) => ({ i, v: [i, i, i] })));
  // What toJSON returns is serialized by JSON.stringify as it is: a large array is not a hole.
  const viaToJson = [{ toJSON: () => [1, 2, 3, 4] }, {
    a: [1, 2, 3],
    b: { toJSON: () => [5, 6, 7] },
  }];
  assert.deepStrictEqual(
    roundTrip(viaToJson, shape, undefined, true),
    JSON.parse(JSON.stringify(viaToJson)),
  );
  const [first] = splitJson(viaToJson, { splitLongerThan: 2 });
  assert.equal(first, '{"v":[[1,2,3,4],{"a":[],"b":[5,6,7]}],"h":[[[1,"a"],3]]}');
  // One document when nothing is long; the default threshold is 64 elements.
  const small = Array.from({ length: 64 }, (_, i) => i);
  assert.deepEqual([...splitJson(small)], [`{"v":${JSON.stringify(small)},"h":[]}`]);
  assert.equal([...splitJson([...small, 64])].length, 2);
  // The root must have a JSON form; the options must make sense.
  assert.throws(() => [...splitJson(undefined)], TypeError);
  assert.throws(() => [...splitJson(() => 1)], TypeError);
  assert.throws(() => [...splitJson(1, { pieceChars: 0 })], RangeError);
  assert.throws(() => [...splitJson(1, { splitLongerThan: 0 })], RangeError);
  assert.throws(() => [...splitJson(1, { splitLongerThan: 1.5 })], RangeError);
});

/** Pushes `docs` into a fresh joiner; the last one must be refused with `message`. */
function refused(docs: unknown[], message: RegExp): void {
  const joiner = new JsonJoiner();
  const texts = docs.map((d) => typeof d === "string" ? d : JSON.stringify(d));
  for (const t of texts.slice(0, -1)) joiner.push(t);
  assert.throws(() => joiner.push(texts.at(-1)!), (err: unknown) => {
    assert.ok(err instanceof SplitError, `expected SplitError, got ${err}`);
    assert.match(err.message, message);
    return true;
  }, `${texts.join(" ")} must be refused`);
}

Deno.test("json split: the joiner refuses a hole that is not an unfilled empty array", () => {
  const nowhere = /leads nowhere/;
  refused([{ v: { a: [] }, h: [[["b"], 3]] }], nowhere);
  refused([{ v: { a: [] }, h: [[[0], 3]] }], nowhere); // an index into an object
  refused([{ v: [[]], h: [[["0"], 3]] }], nowhere); // a key into an array
  refused([{ v: [[]], h: [[[1], 3]] }], nowhere);
  refused([{ v: [[]], h: [[[-1], 3]] }], nowhere);
  refused([{ v: [[]], h: [[[0.5], 3]] }], nowhere);
  refused([{ v: { a: 1 }, h: [[["a", "b"], 3]] }], nowhere);
  refused([{ v: {}, h: [[["constructor"], 3]] }], nowhere); // inherited, not own
  refused([{ v: {}, h: [[["__proto__"], 3]] }], nowhere);
  refused([{ v: [[]], h: [[[true], 3]] }], /invalid step/);
  refused([{ v: { a: [] }, h: [["a", 3]] }], /path is not an array/);
  const notEmpty = /not an unfilled empty array/;
  refused([{ v: { a: [1] }, h: [[["a"], 3]] }], notEmpty);
  refused([{ v: { a: {} }, h: [[["a"], 3]] }], notEmpty);
  refused([{ v: { a: "" }, h: [[["a"], 3]] }], notEmpty);
  refused([{ v: [], h: [[[], 2], [[], 2]] }], notEmpty); // the root, twice
  refused([{ v: { a: [] }, h: [[["a"], 3], [["a"], 2]] }], notEmpty);
  // Announced again by a batch (once filled it is not empty either).
  refused([{ v: { a: [], b: [] }, h: [[["a"], 3], [["b"], 1]] }, {
    p: 1,
    a: [[]],
    h: [[["a"], 2]],
  }], notEmpty);
  refused([{ v: { a: [] }, h: [[["a"], 2]] }, { p: 0, a: [1, 2], h: [[["a"], 2]] }], notEmpty);
  // An own "__proto__" key (JSON.parse makes one) is a path like any other.
  const joiner = new JsonJoiner();
  joiner.push('{"v":{"__proto__":[]},"h":[[["__proto__"],2]]}');
  joiner.push('{"p":0,"a":[1,2]}');
  assert.deepEqual(Object.getOwnPropertyDescriptor(joiner.value(), "__proto__")?.value, [1, 2]);
  // Lengths and entries.
  for (const length of [0, -1, 1.5, "3", null, 2 ** 53]) {
    refused([{ v: [], h: [[[], length]] }], /invalid length/);
  }
  refused([{ v: [], h: [[[]]] }], /expected \[path, length\]/);
  refused([{ v: [], h: [[[], 1, 2]] }], /expected \[path, length\]/);
  refused([{ v: [], h: [{}] }], /expected \[path, length\]/);
  refused([{ v: [], h: {} }], /holes: expected an array/);
  refused([{ v: [], h: [[[], 1]] }, { p: 0, a: [[]], h: null }], /holes: expected an array/);
});

Deno.test("json split: the joiner refuses batches that do not fill an announced hole", () => {
  const first = { v: { a: [], b: [[]] }, h: [[["a"], 3]] };
  refused([first, { p: 0, a: [1, 2, 3, 4] }], /brings 4 elements, more than the announced 3/);
  refused([first, { p: 0, a: [1, 2] }, { p: 0, a: [3, 4] }], /brings 4 elements/);
  refused([first, { p: 0, a: [1, 2, 3] }, { p: 0, a: [4] }], /brings 4 elements/);
  const unannounced = /which was not announced/;
  for (const p of [1, -1, "0", 0.5, null, 2 ** 53]) refused([first, { p, a: [1] }], unannounced);
  refused([first, { p: 0, a: [] }], /non-empty array/);
  refused([first, { p: 0, a: {} }], /non-empty array/);
  refused([first, { p: 0, a: "abc" }], /non-empty array/);
});

Deno.test("json split: the joiner refuses unknown or missing fields and what is not a piece", () => {
  refused(["{"], /not valid JSON/);
  refused(['{"v":1,"h":[]} x'], /not valid JSON/);
  refused([""], /not valid JSON/);
  for (const doc of [[], null, 1, '"s"']) refused([doc], /not an object/);
  refused([{ v: 1 }], /missing "h"/);
  refused([{ h: [] }], /missing "v"/);
  refused([{ v: 1, h: [], x: 1 }], /unknown field "x"/);
  refused([{ v: 1, h: [], p: 0 }], /unknown field "p"/);
  const first = { v: [], h: [[[], 3]] };
  refused([first, { a: [1] }], /missing "p"/);
  refused([first, { p: 0 }], /missing "a"/);
  refused([first, { p: 0, a: [1], v: 1 }], /unknown field "v"/);
  refused([first, { p: 0, a: [1], x: 1 }], /unknown field "x"/);
  refused([first, { v: [], h: [] }], /missing "p"/); // a second first document
  refused([first, "[1]"], /not an object/);
});

Deno.test("json split: value() only once every hole is full", () => {
  const joiner = new JsonJoiner();
  assert.equal(joiner.complete, false);
  assert.throws(
    () => joiner.value(),
    (err) => err instanceof SplitError && /no piece/.test(err.message),
  );
  joiner.push(JSON.stringify({ v: { a: [], b: 1 }, h: [[["a"], 3]] }));
  assert.equal(joiner.complete, false);
  assert.throws(
    () => joiner.value(),
    (err) => err instanceof SplitError && /1 holes/.test(err.message),
  );
  joiner.push(JSON.stringify({ p: 0, a: [1, [], 3], h: [[["a", 1], 2]] }));
  assert.equal(joiner.complete, false, "a hole announced by the batch that filled the last one");
  assert.throws(() => joiner.value(), SplitError);
  joiner.push(JSON.stringify({ p: 1, a: ["x", "y"] }));
  assert.equal(joiner.complete, true);
  assert.deepEqual(joiner.value(), { a: [1, ["x", "y"], 3], b: 1 });
  // With nothing to fill, the first document completes the value.
  const one = new JsonJoiner();
  one.push('{"v":[1,2],"h":[]}');
  assert.equal(one.complete, true);
  assert.deepEqual(one.value(), [1, 2]);
});

/** `v` with each of its arrays made a {@link LazyArray} or not, at random. */
function lazify(rng: Prng, v: unknown): unknown {
  if (Array.isArray(v)) {
    // Array.from reads a sparse array's holes as undefined, which JSON writes as null too.
    const items = Array.from(v, (x) => lazify(rng, x));
    return rng.chance(0.5) ? new LazyArray(items.length, (i) => items[i]) : items;
  }
  if (
    v !== null && typeof v === "object" && typeof (v as { toJSON?: unknown }).toJSON !== "function"
  ) {
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, lazify(rng, x)]));
  }
  return v;
}

Deno.test("json split: a lazy array is split into the same documents as its array", () => {
  let lazyHoles = 0;
  for (const seed of seeds.slice(0, 200)) {
    const rng = new Prng(seed);
    const shape = { longer: rng.int(1, 8), pieceChars: rng.int(1, 300), budget: 1000 };
    const v = array(rng, shape, 0, true);
    const lazy = lazify(rng, v);
    const options = { splitLongerThan: shape.longer, pieceChars: shape.pieceChars };
    const docs = [...splitJson(lazy, options)];
    assert.deepEqual(docs, [...splitJson(v, options)], `seed ${seed} (JSON_SPLIT_SEED=${seed})`);
    assert.equal(JSON.stringify(lazy), JSON.stringify(v));
    if (lazy instanceof LazyArray && docs.length > 1) lazyHoles++;
  }
  if (!oneSeed) assert.ok(lazyHoles > 20, `only ${lazyHoles} lazy arrays split at the root`);
});

Deno.test("json split: a lazy array's elements are made only as their batch is written", () => {
  let made = 0;
  const lazy = new LazyArray(1000, (i) => (made++, [i, "x".repeat(10)]));
  const docs = splitJson({ keys: lazy, n: 1 }, { pieceChars: 100 });
  const joiner = new JsonJoiner();
  let next = docs.next();
  joiner.push(next.value as string);
  assert.equal(made, 0, "the first document announces the hole and makes no element");
  let batches = 0;
  for (next = docs.next(); !next.done; next = docs.next()) {
    const before: number = made;
    joiner.push(next.value);
    batches++;
    assert.ok(made - before <= 10, `a batch of about 100 chars made ${made - before} elements`);
  }
  assert.equal(made, 1000, "each element made once");
  assert.ok(batches >= 100);
  assert.deepStrictEqual(joiner.value(), JSON.parse(JSON.stringify({ keys: lazy, n: 1 })));
  assert.throws(() => lazy.at(1000), RangeError);
  assert.throws(() => new LazyArray(-1, () => 0), RangeError);
});

Deno.test("json split: a short array of large elements is split, one element a document", () => {
  const big = (c: string) => c.repeat(100_000);
  // A snapshot of four large values, and an update of two large writes (the array is short: by
  // its length alone it would be written whole in the first document).
  const snapshot = { keys: ["a", "b", "c", "d"].map((c) => [c, "string", 0, 1, big(c)]) };
  const update = {
    msgs: [{
      type: "update",
      entries: ["e", "f"].map((c) => ({ seq: 1, cmd: { op: { argv: ["SET", c, big(c)] } } })),
    }],
  };
  for (const value of [snapshot, update]) {
    const docs = [...splitJson(value, { pieceChars: 1000 })];
    const joiner = new JsonJoiner();
    for (const doc of docs) joiner.push(doc);
    assert.deepStrictEqual(joiner.value(), value);
    const longest = Math.max(...docs.map((d) => d.length));
    assert.ok(longest < 101_000, `a document of ${longest} chars: more than one large element`);
    assert.ok(docs.length >= 3, `${docs.length} documents`);
  }
  // Short arrays of small elements are still written inline: one document.
  assert.equal(
    [...splitJson({ keys: [["a", "string", 0, 1, "x"]] }, { pieceChars: 1000 })].length,
    1,
  );
});
