/**
 * The in-memory form of a list value: a double-ended queue on a growable ring buffer. Pushes and
 * pops at either end are O(1) amortized; index access is O(1); inserting or removing in the middle
 * shifts the shorter side (O(min(i, n - i))); bulk edits (trim, filtered removal) are O(n).
 *
 * The capacity is a power of two, doubled when full and halved when less than a quarter is used,
 * so memory stays proportional to the length.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";

const MIN_CAPACITY = 8;

/**
 * A sequence with O(1) amortized pushes and pops at both ends: a list's byte strings, a stream's
 * entries.
 */
export class Deque<T = ByteString> implements Iterable<T> {
  /**
   * Elements read or moved by all deques so far beyond the O(1) work of each call: by resizing,
   * shifting, slicing, trimming, searching and iterating. A cost meter that does not depend on the
   * machine's speed (a test checks complexity with it) and that the deque never resets.
   */
  static steps = 0;

  #buf: (T | undefined)[];
  #mask: number;
  #head = 0;
  #len = 0;

  /** An empty deque. */
  constructor() {
    this.#buf = new Array(MIN_CAPACITY);
    this.#mask = MIN_CAPACITY - 1;
  }

  /** A deque holding `items` in order (copied). */
  static from<T>(items: Iterable<T>): Deque<T> {
    const d = new Deque<T>();
    for (const x of items) d.pushBack(x);
    Deque.steps += d.#len;
    return d;
  }

  /** Number of elements. */
  get length(): number {
    return this.#len;
  }

  /** The element at `i` (0 ≤ i < length), or undefined when out of range. */
  at(i: number): T | undefined {
    if (i < 0 || i >= this.#len || !Number.isInteger(i)) return undefined;
    return this.#buf[(this.#head + i) & this.#mask];
  }

  /** Replaces the element at `i` (0 ≤ i < length); false when out of range. */
  set(i: number, v: T): boolean {
    if (i < 0 || i >= this.#len || !Number.isInteger(i)) return false;
    this.#buf[(this.#head + i) & this.#mask] = v;
    return true;
  }

  /** Appends at the tail. */
  pushBack(v: T): void {
    if (this.#len === this.#buf.length) this.#resize(this.#buf.length * 2);
    this.#buf[(this.#head + this.#len) & this.#mask] = v;
    this.#len++;
  }

  /** Prepends at the head. */
  pushFront(v: T): void {
    if (this.#len === this.#buf.length) this.#resize(this.#buf.length * 2);
    this.#head = (this.#head - 1) & this.#mask;
    this.#buf[this.#head] = v;
    this.#len++;
  }

  /** Removes and returns the tail element (undefined when empty). */
  popBack(): T | undefined {
    if (this.#len === 0) return undefined;
    const i = (this.#head + this.#len - 1) & this.#mask;
    const v = this.#buf[i];
    this.#buf[i] = undefined;
    this.#len--;
    this.#maybeShrink();
    return v;
  }

  /** Removes and returns the head element (undefined when empty). */
  popFront(): T | undefined {
    if (this.#len === 0) return undefined;
    const v = this.#buf[this.#head];
    this.#buf[this.#head] = undefined;
    this.#head = (this.#head + 1) & this.#mask;
    this.#len--;
    this.#maybeShrink();
    return v;
  }

  /** Inserts `v` so that it becomes the element at `i` (0 ≤ i ≤ length). */
  insert(i: number, v: T): void {
    if (i < 0 || i > this.#len || !Number.isInteger(i)) throw new RangeError("insert index");
    if (i === 0) return this.pushFront(v);
    if (i === this.#len) return this.pushBack(v);
    if (this.#len === this.#buf.length) this.#resize(this.#buf.length * 2);
    const buf = this.#buf;
    const m = this.#mask;
    Deque.steps += Math.min(i, this.#len - i);
    if (i < this.#len / 2) {
      // Shift the first i elements one place towards the front.
      this.#head = (this.#head - 1) & m;
      for (let k = 0; k < i; k++) buf[(this.#head + k) & m] = buf[(this.#head + k + 1) & m];
    } else {
      // Shift the elements from i on one place towards the back.
      for (let k = this.#len; k > i; k--) buf[(this.#head + k) & m] = buf[(this.#head + k - 1) & m];
    }
    buf[(this.#head + i) & m] = v;
    this.#len++;
  }

  /** Removes and returns the element at `i` (0 ≤ i < length). */
  removeAt(i: number): T {
    if (i < 0 || i >= this.#len || !Number.isInteger(i)) throw new RangeError("remove index");
    if (i === 0) return this.popFront()!;
    if (i === this.#len - 1) return this.popBack()!;
    const buf = this.#buf;
    const m = this.#mask;
    const v = buf[(this.#head + i) & m]!;
    Deque.steps += Math.min(i, this.#len - 1 - i);
    if (i < this.#len / 2) {
      for (let k = i; k > 0; k--) buf[(this.#head + k) & m] = buf[(this.#head + k - 1) & m];
      buf[this.#head] = undefined;
      this.#head = (this.#head + 1) & m;
    } else {
      for (let k = i; k < this.#len - 1; k++) {
        buf[(this.#head + k) & m] = buf[(this.#head + k + 1) & m];
      }
      buf[(this.#head + this.#len - 1) & m] = undefined;
    }
    this.#len--;
    this.#maybeShrink();
    return v;
  }

  /** Elements `start` (inclusive) to `end` (exclusive), clamped to the list, as an array. */
  slice(start = 0, end = this.#len): T[] {
    const s = Math.max(0, Math.min(start, this.#len));
    const e = Math.max(s, Math.min(end, this.#len));
    const out = new Array<T>(e - s);
    Deque.steps += e - s;
    for (let k = s; k < e; k++) out[k - s] = this.#buf[(this.#head + k) & this.#mask]!;
    return out;
  }

  /** Keeps only elements `start` (inclusive) to `end` (exclusive), clamped to the list. */
  keep(start: number, end: number): void {
    const s = Math.max(0, Math.min(start, this.#len));
    const e = Math.max(s, Math.min(end, this.#len));
    const m = this.#mask;
    Deque.steps += s + this.#len - e;
    for (let k = 0; k < s; k++) this.#buf[(this.#head + k) & m] = undefined;
    for (let k = e; k < this.#len; k++) this.#buf[(this.#head + k) & m] = undefined;
    this.#head = (this.#head + s) & m;
    this.#len = e - s;
    this.#maybeShrink();
  }

  /**
   * Removes elements equal to `v`: at most `limit` of them (0: all), the first ones from the head,
   * or from the tail when `fromTail`. Returns how many were removed. O(n).
   */
  removeValue(v: T, limit: number, fromTail: boolean): number {
    const n = this.#len;
    const buf = this.#buf;
    const m = this.#mask;
    const h = this.#head;
    let removed = 0;
    Deque.steps += n;
    if (!fromTail) {
      let w = 0;
      for (let r = 0; r < n; r++) {
        const x = buf[(h + r) & m]!;
        if (x === v && (limit === 0 || removed < limit)) removed++;
        else buf[(h + w++) & m] = x;
      }
      for (let k = w; k < n; k++) buf[(h + k) & m] = undefined;
    } else {
      let w = n - 1;
      for (let r = n - 1; r >= 0; r--) {
        const x = buf[(h + r) & m]!;
        if (x === v && (limit === 0 || removed < limit)) removed++;
        else buf[(h + w--) & m] = x;
      }
      for (let k = 0; k <= w; k++) buf[(h + k) & m] = undefined;
      this.#head = (h + removed) & m;
    }
    this.#len = n - removed;
    this.#maybeShrink();
    return removed;
  }

  /** Index of the first element equal to `v` from the head, or -1. */
  indexOf(v: T): number {
    for (let k = 0; k < this.#len; k++) {
      if (this.#buf[(this.#head + k) & this.#mask] === v) {
        Deque.steps += k + 1;
        return k;
      }
    }
    Deque.steps += this.#len;
    return -1;
  }

  /** The elements as a new array, head first. */
  toArray(): T[] {
    return this.slice();
  }

  /** Iterates head to tail. The deque must not be modified while iterating. */
  *[Symbol.iterator](): Iterator<T> {
    for (let k = 0; k < this.#len; k++) {
      Deque.steps++;
      yield this.#buf[(this.#head + k) & this.#mask]!;
    }
  }

  /** Iterates tail to head. The deque must not be modified while iterating. */
  *reversed(): IterableIterator<T> {
    for (let k = this.#len - 1; k >= 0; k--) {
      Deque.steps++;
      yield this.#buf[(this.#head + k) & this.#mask]!;
    }
  }

  #maybeShrink(): void {
    const cap = this.#buf.length;
    if (cap > MIN_CAPACITY && this.#len < cap / 4) this.#resize(cap / 2);
  }

  /** Moves the elements to a new buffer of `cap` (a power of two ≥ length), head at 0. */
  #resize(cap: number): void {
    const next = new Array<T | undefined>(cap);
    Deque.steps += this.#len;
    for (let k = 0; k < this.#len; k++) next[k] = this.#buf[(this.#head + k) & this.#mask];
    this.#buf = next;
    this.#mask = cap - 1;
    this.#head = 0;
  }
}
