/**
 * Redis's INCRBYFLOAT arithmetic, exactly: Redis parses numbers with `strtold`, adds them as x87
 * 80-bit long doubles (a 64-bit significand) and prints the sum with `%.17Lf`, trailing zeros
 * removed. Doing the same in JavaScript doubles gives other digits (`0.1 + 0.2` is `0.3` in Redis,
 * `0.30000000000000004` in doubles), so this module emulates the long double with BigInt: a value
 * is `m × 2^e` with a 64-bit `m`, every operation rounds to nearest, ties to even.
 *
 * Input is what `strtold` reads (decimal or hexadecimal `0x1.8p3`, `inf`); values beyond the long
 * double's range are refused as Redis refuses them (out of range).
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";

/** A finite long double `(-1)^neg × m × 2^e` (m = 0 for zero), or an infinity. */
export type LongDouble = { neg: boolean; m: bigint; e: number } | { inf: 1 | -1 };

const BITS = 64n;
const TWO64 = 1n << BITS;
/** Exponent range of the 80-bit format (normalized m in [2^63, 2^64)). */
const MAX_E = 16383 - 63;
const MIN_E = -16382 - 63;

function bitLength(n: bigint): number {
  return n === 0n ? 0 : n.toString(2).length;
}

/** Rounds `num / den` (positive) to a 64-bit significand: `[m, e]` with value m × 2^e. */
function roundRatio(num: bigint, den: bigint): [bigint, number] {
  if (num === 0n) return [0n, 0];
  // Scale so that the quotient has 66+ bits (64 plus guard), then round half to even.
  let shift = 66 - (bitLength(num) - bitLength(den));
  const n = shift >= 0 ? num << BigInt(shift) : num;
  const d = shift >= 0 ? den : den << BigInt(-shift);
  let q = n / d;
  const rem = n % d;
  let sticky = rem !== 0n;
  let extra = bitLength(q) - 64;
  while (extra > 0) {
    const lost = q & ((1n << BigInt(extra)) - 1n);
    const half = 1n << BigInt(extra - 1);
    q >>= BigInt(extra);
    shift -= extra;
    if (lost > half || (lost === half && (sticky || (q & 1n) === 1n))) q += 1n;
    if (q === TWO64) {
      q >>= 1n;
      shift -= 1;
    }
    sticky = false;
    extra = bitLength(q) - 64;
  }
  return [q, -shift];
}

function make(neg: boolean, m: bigint, e: number): LongDouble | null {
  if (m === 0n) return { neg: false, m: 0n, e: 0 };
  if (e > MAX_E) return { inf: neg ? -1 : 1 };
  if (e < MIN_E) {
    // Subnormal: fewer significant bits; below the smallest one, a range error Redis refuses.
    const shift = MIN_E - e;
    if (shift > 64) return null;
    const lost = m & ((1n << BigInt(shift)) - 1n);
    const half = 1n << BigInt(shift - 1);
    let q = m >> BigInt(shift);
    if (lost > half || (lost === half && (q & 1n) === 1n)) q += 1n;
    return q === 0n ? null : { neg, m: q, e: MIN_E };
  }
  return { neg, m, e };
}

const HEX =
  /^([+-]?)0[xX](?:([0-9a-fA-F]+)\.?([0-9a-fA-F]*)|\.([0-9a-fA-F]+))(?:[pP]([+-]?[0-9]+))?$/;
const DECIMAL = /^([+-]?)(?:([0-9]+)\.?([0-9]*)|\.([0-9]+))(?:[eE]([+-]?[0-9]+))?$/;

/**
 * Parses `s` as Redis's `string2ld` does (decimal notation, `inf`/`infinity`); null when Redis
 * would refuse it (empty, spaces, trailing characters, NaN, out of range).
 */
export function parseLongDouble(s: ByteString): LongDouble | null {
  if (s.length === 0 || s.length > 5000) return null;
  const lower = s.toLowerCase();
  const sign = lower.startsWith("-") ? -1 : 1;
  const word = lower.replace(/^[+-]/, "");
  if (word === "inf" || word === "infinity") return { inf: sign as 1 | -1 };
  const h = HEX.exec(s);
  if (h !== null) {
    const frac = h[3] ?? h[4] ?? "";
    const mant = BigInt("0x" + ((h[2] ?? "") + frac || "0"));
    const exp2 = Number(h[5] ?? "0") - 4 * frac.length;
    if (!Number.isSafeInteger(exp2) || Math.abs(exp2) > 100_000) return null;
    if (mant === 0n) return { neg: false, m: 0n, e: 0 };
    const [q, e] = roundRatio(mant, 1n);
    return finite(make(h[1] === "-", q, e + exp2));
  }
  const m = DECIMAL.exec(s);
  if (m === null) return null;
  const intPart = m[2] ?? "";
  const fracPart = m[3] ?? m[4] ?? "";
  const exp = Number(m[5] ?? "0");
  if (!Number.isSafeInteger(exp) || Math.abs(exp) > 100_000) return null;
  const digits = BigInt((intPart + fracPart).replace(/^0+(?=.)/, "") || "0");
  const scale = exp - fracPart.length;
  const neg = m[1] === "-";
  if (digits === 0n) return { neg: false, m: 0n, e: 0 };
  const [q, e] = scale >= 0
    ? roundRatio(digits * 10n ** BigInt(scale), 1n)
    : roundRatio(digits, 10n ** BigInt(-scale));
  return finite(make(neg, q, e));
}

/** A parsed number that overflowed is a range error for `strtold`: refused. */
function finite(x: LongDouble | null): LongDouble | null {
  return x !== null && "inf" in x ? null : x;
}

/** `a + b`, rounded to a long double. */
export function addLongDouble(a: LongDouble, b: LongDouble): LongDouble {
  if ("inf" in a || "inf" in b) {
    const ia = "inf" in a ? a.inf : 0;
    const ib = "inf" in b ? b.inf : 0;
    return { inf: (ia || ib) as 1 | -1 }; // inf + -inf (NaN) is refused by the caller anyway
  }
  if (a.m === 0n) return b;
  if (b.m === 0n) return a;
  const [hi, lo] = a.e >= b.e ? [a, b] : [b, a];
  const gap = hi.e - lo.e;
  if (gap > 140) return hi; // lo is far below half an ulp of hi
  const x = (hi.neg ? -1n : 1n) * (hi.m << BigInt(gap));
  const y = (lo.neg ? -1n : 1n) * lo.m;
  const sum = x + y;
  if (sum === 0n) return { neg: false, m: 0n, e: 0 };
  const neg = sum < 0n;
  const [m, e] = roundRatio(neg ? -sum : sum, 1n);
  return make(neg, m, e + lo.e) ?? { neg: false, m: 0n, e: 0 };
}

/** True for an infinity. */
export function isInfinite(x: LongDouble): boolean {
  return "inf" in x;
}

/** `x` as Redis prints it: `%.17Lf`, trailing zeros and a bare point removed, `-0` as `0`. */
export function formatLongDouble(x: LongDouble): string {
  if ("inf" in x) return x.inf > 0 ? "inf" : "-inf";
  if (x.m === 0n) return "0";
  let text: string;
  if (x.e >= 0) {
    text = (x.m << BigInt(x.e)).toString();
  } else {
    // x = m / 2^k = m × 5^k / 10^k; round to 17 decimals, ties to even (as glibc's printf).
    const k = BigInt(-x.e);
    const scaled = x.m * 5n ** k;
    let q: bigint;
    if (k > 17n) {
      const div = 10n ** (k - 17n);
      q = scaled / div;
      const rem = scaled % div;
      if (rem * 2n > div || (rem * 2n === div && (q & 1n) === 1n)) q += 1n;
    } else {
      q = scaled * 10n ** (17n - k);
    }
    const digits = q.toString().padStart(18, "0");
    const ip = digits.slice(0, -17);
    const fp = digits.slice(-17).replace(/0+$/, "");
    text = fp === "" ? ip : `${ip}.${fp}`;
  }
  if (text === "0") return "0";
  return x.neg ? `-${text}` : text;
}
