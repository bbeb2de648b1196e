/**
 * Argument parsing shared by the data commands, with Redis's exact rules: integers as Redis's
 * `string2ll` accepts them (optional `-`, no `+`, no leading zeros or spaces, 64-bit range),
 * floats as `strtold` does, and Redis's float formatting for INCRBYFLOAT/HINCRBYFLOAT.
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

const FLOAT_RE = /^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf|infinity)$/i;

/** `s` as a float as Redis's `string2ld` reads it (NaN refused), or null. */
export function parseFloat64(s: ByteString): number | null {
  if (s.length === 0 || s.length > 5000 || !FLOAT_RE.test(s)) return null;
  const lower = s.toLowerCase().replace(/^[+-]/, "");
  if (lower === "inf" || lower === "infinity") return s.startsWith("-") ? -Infinity : Infinity;
  const n = Number(s);
  return Number.isNaN(n) ? null : n;
}

/**
 * `x` as Redis prints a long double in "human" form (`%.17Lf`, then trailing zeros and a bare
 * point removed). lamportkv computes in double precision; results agree with Redis whenever the
 * decimal result has at most 17 significant digits.
 */
export function formatFloat(x: number): string {
  if (x === 0) return "0";
  if (!Number.isFinite(x)) return x > 0 ? "inf" : "-inf";
  // Shortest round-trip digits; expand any exponent into plain decimal notation.
  const s = String(x);
  if (!/e/i.test(s)) return s;
  const [mant, expText] = s.toLowerCase().split("e");
  const exp = Number(expText);
  const neg = mant.startsWith("-");
  const digits = mant.replace("-", "").replace(".", "");
  const point =
    (mant.replace("-", "").indexOf(".") === -1
      ? mant.replace("-", "").length
      : mant.replace("-", "").indexOf(".")) + exp;
  let out: string;
  if (point <= 0) out = "0." + "0".repeat(-point) + digits;
  else if (point >= digits.length) out = digits + "0".repeat(point - digits.length);
  else out = digits.slice(0, point) + "." + digits.slice(point);
  if (out.includes(".")) {
    // %.17Lf keeps 17 decimals at most.
    const [ip, fp] = out.split(".");
    out = ip + "." + fp.slice(0, 17);
    out = out.replace(/0+$/, "").replace(/\.$/, "");
    if (out === "" || out === "0") out = "0";
  }
  return (neg ? "-" : "") + out;
}

/** Case-insensitive equality of an argument with an ASCII word (given in lowercase). */
export function is(arg: ByteString, word: string): boolean {
  return arg.length === word.length && arg.toLowerCase() === word;
}
