/**
 * The entries of one view met so far, by `(origin, seq)`, for recovery to hold each entry of the
 * log once. An origin numbers its entries of a view 1, 2, 3, … and they are logged in that order
 * almost always, so each origin keeps a floor (every seq up to it met) and only the few met ahead
 * of the floor in a set: memory stays small and nothing is allocated per entry, however long the
 * log (a set of `view:origin:seq` strings cost recovery about 2 µs an entry and a string each).
 *
 * @module
 */
import type { ReplicaId } from "./types.ts";

/** Per origin: every seq ≤ floor met, and the seqs above it met out of order. */
interface OriginSeen {
  floor: number;
  ahead: Set<number>;
}

/** A set of `(origin, seq)` pairs of one view. */
export class SeenEntries {
  readonly #origins = new Map<ReplicaId, OriginSeen>();

  /** Adds `(origin, seq)`; false when it was there already. */
  add(origin: ReplicaId, seq: number): boolean {
    let o = this.#origins.get(origin);
    if (o === undefined) {
      o = { floor: 0, ahead: new Set() };
      this.#origins.set(origin, o);
    }
    if (seq <= o.floor) return false;
    if (seq !== o.floor + 1) {
      if (o.ahead.has(seq)) return false;
      o.ahead.add(seq);
      return true;
    }
    o.floor = seq;
    while (o.ahead.delete(o.floor + 1)) o.floor++;
    return true;
  }

  /** Forgets everything (a new view numbers its entries afresh). */
  clear(): void {
    this.#origins.clear();
  }
}
