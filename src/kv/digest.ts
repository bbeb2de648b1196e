/**
 * An order-independent digest of a map: the sum, modulo 2^32 in each of two lanes, of a hash of
 * every (key, value) pair. Adding or removing a pair updates it in O(len), and two maps with the
 * same pairs have the same digest whatever order they were built in.
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";

/** Two independent 32-bit hashes (FNV-1a and a multiplicative variant) of `key`, 0, `value`. */
function pairHash(key: ByteString, value: ByteString): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  const mix = (code: number) => {
    a = Math.imul(a ^ code, 0x01000193);
    b = Math.imul(b ^ code, 0x5bd1e995) ^ (b >>> 15);
  };
  for (let i = 0; i < key.length; i++) mix(key.charCodeAt(i));
  mix(0x100); // separator outside the byte range: ("ab","c") and ("a","bc") differ
  for (let i = 0; i < value.length; i++) mix(value.charCodeAt(i));
  mix(key.length & 0xff);
  return [a >>> 0, b >>> 0];
}

/** A running multiset digest of (key, value) pairs. */
export class MapDigest {
  #a = 0;
  #b = 0;

  /** Accounts for a pair entering the map. */
  add(key: ByteString, value: ByteString): void {
    const [a, b] = pairHash(key, value);
    this.#a = (this.#a + a) >>> 0;
    this.#b = (this.#b + b) >>> 0;
  }

  /** Accounts for a pair leaving the map. */
  remove(key: ByteString, value: ByteString): void {
    const [a, b] = pairHash(key, value);
    this.#a = (this.#a - a) >>> 0;
    this.#b = (this.#b - b) >>> 0;
  }

  /** 16 hex digits. */
  toString(): string {
    return this.#a.toString(16).padStart(8, "0") + this.#b.toString(16).padStart(8, "0");
  }
}
