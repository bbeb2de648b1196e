/**
 * The Lamport clock: incremented before every send, advanced past every timestamp received.
 *
 * @module
 */
import { invariant } from "./assert.ts";

/** A Lamport logical clock. */
export class LamportClock {
  #value: number;

  /** Starts at `initial` (0 for a fresh replica). */
  constructor(initial = 0) {
    invariant(Number.isSafeInteger(initial) && initial >= 0, `bad initial clock ${initial}`);
    this.#value = initial;
  }

  /** The current value. */
  get value(): number {
    return this.#value;
  }

  /** Stamps a send: increments the clock and returns the new value. */
  tick(): number {
    this.#value += 1;
    return this.#value;
  }

  /** Observes a received timestamp: the clock becomes `max(clock, ts) + 1`. */
  observe(ts: number): void {
    invariant(Number.isSafeInteger(ts) && ts >= 0, `bad timestamp ${ts}`);
    this.#value = Math.max(this.#value, ts) + 1;
  }
}
