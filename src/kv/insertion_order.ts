/**
 * The elements of a large set or hash in insertion order (the order a JavaScript `Set` or `Map`
 * iterates them in), with the i-th found in O(log n): what SPOP, SRANDMEMBER and HRANDFIELD pick
 * from. They pick the element at a random index of that order, so that every replica picks the
 * same one; walking the collection to the index took 2 ms on a set of a million members, and a
 * count (which copied the members to an array) 35 ms.
 *
 * Slots in insertion order, a deleted element leaving a hole, and a Fenwick tree of the live slots
 * to find the i-th live one. The holes are squeezed out (order kept) once they outnumber the live
 * elements, so memory stays proportional to the size. A collection builds its index at its first
 * pick while large (`digest_hash.ts`), about 0.4 s per million elements in one event-loop turn,
 * and keeps it as it changes (a map entry, a slot and a counter per element).
 *
 * @module
 */

/** Elements in insertion order, with the i-th found in O(log n). */
export class InsertionOrder<T> {
  #slots: (T | undefined)[] = [];
  #slotOf = new Map<T, number>();
  /** Fenwick tree over the slots (1-based): live counts; its length is a power of two plus one. */
  #tree = new Int32Array(1);

  /** An order holding `items` (distinct), in order: built in O(n), not by n adds. */
  static of<T>(items: Iterable<T>): InsertionOrder<T> {
    const order = new InsertionOrder<T>();
    for (const x of items) {
      if (order.#slotOf.has(x)) continue;
      order.#slotOf.set(x, order.#slots.length);
      order.#slots.push(x);
    }
    order.#rebuild(false);
    return order;
  }

  /** Elements held. */
  get size(): number {
    return this.#slotOf.size;
  }

  /** Appends `x` unless it is held (a re-added element goes last, as in a `Set`). */
  add(x: T): void {
    if (this.#slotOf.has(x)) return;
    const slot = this.#slots.length;
    if (slot + 1 >= this.#tree.length) this.#rebuild(false);
    this.#slots.push(x);
    this.#slotOf.set(x, slot);
    this.#bump(slot, 1);
  }

  /** Removes `x` if held. */
  delete(x: T): void {
    const slot = this.#slotOf.get(x);
    if (slot === undefined) return;
    this.#slotOf.delete(x);
    this.#slots[slot] = undefined;
    this.#bump(slot, -1);
    if (this.#slots.length > 64 && this.#slots.length > 2 * this.size) this.#rebuild(true);
  }

  /** The element at index `i` (0 ≤ i < size) of the insertion order. */
  nth(i: number): T {
    if (!(Number.isInteger(i) && i >= 0 && i < this.size)) {
      throw new RangeError(`index ${i} of ${this.size} elements`);
    }
    // Fenwick descent: the smallest slot whose prefix count is i + 1.
    const tree = this.#tree;
    let pos = 0;
    let left = i + 1;
    for (let step = tree.length - 1; step > 0; step >>>= 1) { // tree.length - 1: a power of two
      const next = pos + step;
      if (next < tree.length && tree[next] < left) {
        pos = next;
        left -= tree[next];
      }
    }
    return this.#slots[pos]!; // the 1-based slot is pos + 1
  }

  /** Adds `delta` to the count of `slot` (0-based). */
  #bump(slot: number, delta: number): void {
    const tree = this.#tree;
    for (let k = slot + 1; k < tree.length; k += k & -k) tree[k] += delta;
  }

  /**
   * Rebuilds the slots (without holes when `squeeze`) and a tree with room for twice as many:
   * O(n), after O(n) adds or deletes since the last one.
   */
  #rebuild(squeeze: boolean): void {
    if (squeeze) {
      const live: T[] = [];
      for (const x of this.#slots) if (x !== undefined) live.push(x);
      this.#slots = live;
      this.#slotOf = new Map(live.map((x, slot) => [x, slot]));
    }
    let cap = 1;
    while (cap < 2 * (this.#slots.length + 1)) cap *= 2;
    const tree = new Int32Array(cap + 1);
    // Linear construction: each node passes its count to its parent.
    for (let slot = 0; slot < this.#slots.length; slot++) {
      if (this.#slots[slot] !== undefined) tree[slot + 1] += 1;
    }
    for (let k = 1; k <= cap; k++) {
      const parent = k + (k & -k);
      if (parent <= cap) tree[parent] += tree[k];
    }
    this.#tree = tree;
  }
}
