/**
 * Checked reads of snapshot fields: each returns the value when it has the expected shape and
 * throws a TypeError otherwise (a malformed snapshot is refused, never half loaded).
 *
 * @module
 */
import type { ByteString } from "../core/types.ts";

/** `v` as a safe integer. */
export function num(v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v)) throw new TypeError("malformed number");
  return v;
}

/** `v` as a (byte) string. */
export function str(v: unknown): ByteString {
  if (typeof v !== "string") throw new TypeError("malformed string");
  return v;
}

/** `v` as an array of (byte) strings. */
export function strs(v: unknown): ByteString[] {
  if (!Array.isArray(v) || !v.every((x) => typeof x === "string")) {
    throw new TypeError("malformed string list");
  }
  return v;
}
