/**
 * A JSON value as a sequence of JSON documents ("pieces"), so that a value of any size (a
 * replica's whole state inside a view change message) is encoded, sent and decoded a piece at a
 * time and never becomes one string.
 *
 * Arrays longer than a threshold, or of a few elements that together take more than a piece, are
 * "holes": the document that meets one writes `[]` in its place
 * and announces it as `[path, length]` (the path from the root, object keys and array indexes);
 * later documents fill it in order with batches of its elements. An element may hold holes of its
 * own, announced by the batch that carries it. The first document is `{"v": value, "h": holes}`,
 * each later one `{"p": hole number, "a": elements, "h"?: holes}`, holes numbered in the order they
 * were announced. Everything else is serialized by the native `JSON.stringify` (much faster than a
 * walk in JavaScript), so a piece is cut between elements of the large arrays only: a single
 * element is never split, and a piece is about `pieceChars` characters or one element, whichever
 * is larger.
 *
 * A {@link LazyArray} is split like the array it stands for, its elements made as their batch is
 * written (a snapshot's records: a piece is then the only copy of them that exists).
 *
 * {@link JsonJoiner} puts the value back together and checks every document field by field: a
 * hole must be an empty array reachable from the root and not announced twice, a batch must name
 * an announced hole and not overfill it, and the value is complete only when every hole is full.
 *
 * @module
 */

import { SPLIT_DOCUMENT_CHARS } from "../limits.ts";
import { LazyArray } from "./lazy_array.ts";

/** One step of a path: an object key or an array index. */
export type PathStep = string | number;

/** A document that is not a valid piece of a split value. */
export class SplitError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "SplitError";
  }
}

/** How {@link splitJson} cuts a value. */
export interface SplitOptions {
  /** A batch is closed once it holds at least this many characters (default `SPLIT_DOCUMENT_CHARS`). */
  pieceChars?: number;
  /** Arrays longer than this become holes (default 64), as do shorter ones over a piece. */
  splitLongerThan?: number;
}

const DEFAULT_SPLIT_LONGER_THAN = 64;

type Announced = [PathStep[], number];

/** An array, or a lazy one, read by index. */
type Indexed = { length: number; at(i: number): unknown };

/** `v` as an {@link Indexed} sequence when it is an array or a {@link LazyArray}. */
function indexed(v: unknown): Indexed | undefined {
  if (v instanceof LazyArray) return v;
  // Array.prototype.at reads a sparse array's holes as undefined (written as null, as by
  // JSON.stringify).
  return Array.isArray(v) ? v : undefined;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === "object" && !Array.isArray(v) &&
    typeof (v as { toJSON?: unknown }).toJSON !== "function";
}

/** What `JSON.stringify` drops from objects (and writes as null in arrays). */
function skipped(v: unknown): boolean {
  return v === undefined || typeof v === "function" || typeof v === "symbol";
}

/**
 * The documents of `value`, lazily: each is serialized when it is asked for, so a sender can
 * write one and let the event loop run before the next. The value must not change meanwhile.
 * Their {@link JsonJoiner} result equals `JSON.parse(JSON.stringify(value))`.
 *
 * @throws {TypeError} when `value` (the root) has no JSON form.
 */
export function* splitJson(value: unknown, options: SplitOptions = {}): Generator<string> {
  const pieceChars = options.pieceChars ?? SPLIT_DOCUMENT_CHARS;
  const longer = options.splitLongerThan ?? DEFAULT_SPLIT_LONGER_THAN;
  if (!(pieceChars >= 1) || !Number.isSafeInteger(longer) || longer < 1) {
    throw new RangeError(`invalid split options: ${pieceChars} chars, arrays over ${longer}`);
  }
  /** The holes announced so far, in order: each is written by batches after the documents before. */
  const holes: { array: Indexed; path: PathStep[] }[] = [];

  /**
   * Whether `a` is a hole: longer than `longer`, or of two elements or more that together take
   * more than a piece (a few large values, e.g. a snapshot of four 24 MiB strings, would otherwise
   * make one document, serialized in one go while the event loop waits).
   */
  function isHole(a: Indexed): boolean {
    return a.length > longer || (a.length > 1 && overPiece(a));
  }

  /**
   * Whether the JSON text of `v` takes more than `pieceChars` characters, by a walk that stops
   * once it does: a string counts its length (escapes are not counted), other scalars a few
   * characters, an array that is a hole by its length none (it is written elsewhere).
   */
  function overPiece(v: unknown): boolean {
    let left = pieceChars;
    const over = (x: unknown): boolean => {
      if (typeof x === "string") left -= x.length + 3;
      else if (typeof x !== "object" || x === null) left -= 8;
      else {
        const a = indexed(x);
        left -= 2;
        if (a !== undefined) {
          if (a.length > longer) return left < 0;
          for (let i = 0; i < a.length; i++) if (over(a.at(i))) return true;
        } else if (isPlainObject(x)) {
          for (const key in x) {
            left -= key.length + 4;
            if (over(x[key])) return true;
          }
        }
      }
      return left < 0;
    };
    return over(v);
  }

  function hasHole(v: unknown): boolean {
    const a = indexed(v);
    if (a !== undefined) {
      if (isHole(a)) return true;
      for (let i = 0; i < a.length; i++) {
        const x = a.at(i);
        if (typeof x === "object" && x !== null && hasHole(x)) return true;
      }
      return false;
    }
    if (!isPlainObject(v)) return false;
    for (const key in v) {
      const x = v[key];
      if (typeof x === "object" && x !== null && hasHole(x)) return true;
    }
    return false;
  }

  /** The text of `v` (holes written as `[]`), or undefined when it has no JSON form. */
  function encode(v: unknown, path: PathStep[], out: Announced[]): string | undefined {
    const a = indexed(v);
    if (a !== undefined) {
      if (isHole(a)) {
        holes.push({ array: a, path });
        out.push([path, a.length]);
        return "[]";
      }
      if (!hasHole(a)) return JSON.stringify(v);
      return "[" + Array.from({ length: a.length }, (_, i) => element(a.at(i), path, i, out))
        .join(",") +
        "]";
    }
    if (isPlainObject(v) && hasHole(v)) {
      const fields: string[] = [];
      for (const [key, x] of Object.entries(v)) {
        const text = skipped(x) ? undefined : encode(x, [...path, key], out);
        if (text !== undefined) fields.push(JSON.stringify(key) + ":" + text);
      }
      return "{" + fields.join(",") + "}";
    }
    // undefined for what has no JSON form (e.g. a toJSON returning undefined).
    return JSON.stringify(v);
  }

  /** The text of element `i` of the array at `path` (null for what has no JSON form). */
  function element(x: unknown, path: PathStep[], i: number, out: Announced[]): string {
    if (skipped(x)) return "null";
    // The path is built only for an element that holds holes (most hold none).
    const text = typeof x === "object" && x !== null && hasHole(x)
      ? encode(x, [...path, i], out)
      : JSON.stringify(x);
    return text ?? "null";
  }

  const first: Announced[] = [];
  const root = encode(value, [], first);
  if (root === undefined) throw new TypeError("value has no JSON form");
  yield `{"v":${root},"h":${JSON.stringify(first)}}`;
  for (let hole = 0; hole < holes.length; hole++) {
    const { array, path } = holes[hole];
    let i = 0;
    while (i < array.length) {
      const items: string[] = [];
      const announced: Announced[] = [];
      let chars = 0;
      while (i < array.length && chars < pieceChars) {
        const text = element(array.at(i), path, i, announced);
        items.push(text);
        chars += text.length + 1;
        i++;
      }
      yield `{"p":${hole},"a":[${items.join(",")}]` +
        (announced.length > 0 ? `,"h":${JSON.stringify(announced)}` : "") + "}";
    }
    // Keep only what is still to be written.
    holes[hole] = { array: [], path };
  }
}

interface Hole {
  array: unknown[];
  length: number;
}

/** Puts a value split by {@link splitJson} back together, one document at a time. */
export class JsonJoiner {
  #started = false;
  #root: unknown;
  readonly #holes: Hole[] = [];
  readonly #claimed = new Set<unknown[]>();
  /** Holes not yet full. */
  #open = 0;

  /**
   * The value as joined so far (undefined before the first document): its large arrays hold the
   * elements that arrived, in order, until {@link complete}.
   */
  get partial(): unknown {
    return this.#root;
  }

  /** True once the first document arrived and every announced hole is full. */
  get complete(): boolean {
    return this.#started && this.#open === 0;
  }

  /**
   * Takes the next document.
   *
   * @throws {SplitError} when it is not valid JSON or not a valid next piece; the joiner must
   * then be dropped.
   */
  push(text: string): void {
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch (err) {
      throw new SplitError(`piece is not valid JSON: ${err instanceof Error ? err.message : err}`);
    }
    if (!isPlainObject(doc)) throw new SplitError("piece is not an object");
    if (!this.#started) {
      exactKeys(doc, ["v", "h"], []);
      this.#started = true;
      this.#root = doc.v;
      this.#announce(doc.h);
      return;
    }
    exactKeys(doc, ["p", "a"], ["h"]);
    const p = doc.p;
    if (!Number.isSafeInteger(p) || (p as number) < 0 || (p as number) >= this.#holes.length) {
      throw new SplitError(`piece fills hole ${JSON.stringify(p)}, which was not announced`);
    }
    const hole = this.#holes[p as number];
    const items = doc.a;
    if (!Array.isArray(items) || items.length === 0) {
      throw new SplitError(`piece for hole ${p}: expected a non-empty array of elements`);
    }
    if (hole.array.length + items.length > hole.length) {
      throw new SplitError(
        `piece for hole ${p} brings ${hole.array.length + items.length} elements, ` +
          `more than the announced ${hole.length}`,
      );
    }
    for (const item of items) hole.array.push(item);
    if (hole.array.length === hole.length) this.#open--;
    if (doc.h !== undefined) this.#announce(doc.h);
  }

  /**
   * The whole value.
   *
   * @throws {SplitError} when it is not {@link complete}.
   */
  value(): unknown {
    if (!this.#started) throw new SplitError("no piece arrived");
    if (this.#open !== 0) throw new SplitError(`${this.#open} holes are not filled`);
    return this.#root;
  }

  #announce(list: unknown): void {
    if (!Array.isArray(list)) throw new SplitError("holes: expected an array");
    for (const entry of list) {
      if (!Array.isArray(entry) || entry.length !== 2) {
        throw new SplitError("hole: expected [path, length]");
      }
      const [path, length] = entry;
      if (!Number.isSafeInteger(length) || length < 1) {
        throw new SplitError(`hole: invalid length ${JSON.stringify(length)}`);
      }
      if (!Array.isArray(path)) throw new SplitError("hole: the path is not an array");
      let at: unknown = this.#root;
      for (const step of path) {
        if (typeof step === "number") {
          if (!Array.isArray(at) || !Number.isSafeInteger(step) || step < 0 || step >= at.length) {
            throw new SplitError(`hole path ${JSON.stringify(path)} leads nowhere`);
          }
          at = at[step];
        } else if (typeof step === "string") {
          if (!isPlainObject(at) || !Object.hasOwn(at, step)) {
            throw new SplitError(`hole path ${JSON.stringify(path)} leads nowhere`);
          }
          at = at[step];
        } else {
          throw new SplitError(`hole path ${JSON.stringify(path)}: invalid step`);
        }
      }
      if (!Array.isArray(at) || at.length !== 0 || this.#claimed.has(at)) {
        throw new SplitError(`hole path ${JSON.stringify(path)} is not an unfilled empty array`);
      }
      this.#claimed.add(at);
      this.#holes.push({ array: at, length: length as number });
      this.#open++;
    }
  }
}

function exactKeys(o: Record<string, unknown>, required: string[], optional: string[]): void {
  for (const key of required) {
    if (!Object.hasOwn(o, key)) throw new SplitError(`piece: missing "${key}"`);
  }
  for (const key of Object.keys(o)) {
    if (!required.includes(key) && !optional.includes(key)) {
      throw new SplitError(`piece: unknown field "${key}"`);
    }
  }
}
