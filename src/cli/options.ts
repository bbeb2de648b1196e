/**
 * Command-line value parsing shared by the entry points.
 *
 * @module
 */

/**
 * `text` as a strict decimal integer in `[min, max]` (digits only: no sign, exponent, spaces or
 * leading `0x`), or null when it is not one. Callers word their own error.
 */
export function integerInRange(text: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  if (!/^[0-9]+$/.test(text)) return null;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : null;
}
