/**
 * Deterministic random choices for SPOP, SRANDMEMBER and HRANDFIELD: every draw comes from the
 * operation's {@link ApplyContext.random}, seeded by its place in the order, so every replica
 * picks the same elements.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { ApplyContext } from "../registry.ts";
import { E, err } from "../reply.ts";
import { INT64_MIN, parseInt64, parseSafeInt } from "./args.ts";

/** Most elements a negative-count SRANDMEMBER/HRANDFIELD may return (Redis has no limit). */
export const MAX_RANDOM_REPLY = 1 << 22;

/** A uniform index in [0, n) from the operation's deterministic random source. */
export function randomIndex(ctx: ApplyContext, n: number): number {
  const i = Math.floor(ctx.random() * n);
  return i < n ? i : n - 1;
}

/** `count` distinct elements of `items` in random order (a partial Fisher-Yates shuffle). */
export function pickDistinct<T>(ctx: ApplyContext, items: T[], count: number): T[] {
  const a = items.slice();
  const k = Math.min(count, a.length);
  for (let i = 0; i < k; i++) {
    const j = i + randomIndex(ctx, a.length - i);
    const t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
  a.length = k;
  return a;
}

/**
 * Parses a RANDMEMBER-style count as Redis's getRangeLongFromObjectOrReply(-LONG_MAX, LONG_MAX):
 * a number, or the error reply.
 */
export function parseRandomCount(arg: ByteString): number | Reply {
  const n = parseInt64(arg);
  if (n === null) return E.NOT_INT;
  if (n === INT64_MIN) {
    return err(
      "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
    );
  }
  // Beyond 2^53 only the sign and "larger than any collection" matter.
  return parseSafeInt(arg)!;
}
