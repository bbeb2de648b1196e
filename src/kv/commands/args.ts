/**
 * Argument parsing shared by the data commands, with Redis's exact rules: integers as Redis's
 * `string2ll` accepts them (optional `-`, no `+`, no leading zeros or spaces, 64-bit range).
 * Floats (INCRBYFLOAT, HINCRBYFLOAT) are in `../long_double.ts`.
 *
 * @module
 */
import type { ByteString } from "../../core/types.ts";

/** The 64-bit signed range. */
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

const INT_RE = /^(0|-?[1-9][0-9]{0,19})$/;

/** `s` as a 64-bit integer, or null if Redis would refuse it. */
export function parseInt64(s: ByteString): bigint | null {
  if (s.length === 0 || s.length > 20 || !INT_RE.test(s)) return null;
  const n = BigInt(s);
  return n < INT64_MIN || n > INT64_MAX ? null : n;
}

/** `s` as an integer within the safe range (for counts, indexes, offsets), or null. */
export function parseSafeInt(s: ByteString): number | null {
  const n = parseInt64(s);
  if (n === null) return null;
  if (n > BigInt(Number.MAX_SAFE_INTEGER)) return Number.MAX_SAFE_INTEGER;
  if (n < BigInt(Number.MIN_SAFE_INTEGER)) return Number.MIN_SAFE_INTEGER;
  return Number(n);
}

/** Case-insensitive equality of an argument with an ASCII word (given in lowercase). */
export function is(arg: ByteString, word: string): boolean {
  return arg.length === word.length && arg.toLowerCase() === word;
}
