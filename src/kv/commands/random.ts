/**
 * Deterministic random choices for SPOP, SRANDMEMBER and HRANDFIELD: every draw comes from the
 * operation's {@link ApplyContext.random}, seeded by its place in the order, so every replica
 * picks the same elements.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { ApplyContext } from "../registry.ts";
import { ORDERED_FROM, SummedMap, SummedSet, walkTo } from "../digest_hash.ts";
import { E, err } from "../reply.ts";
import { INT64_MIN, parseInt64, parseSafeInt } from "./args.ts";

/** Most elements a negative-count SRANDMEMBER/HRANDFIELD may return (Redis has no limit). */
export const MAX_RANDOM_REPLY = 1 << 22;

/** A uniform index in [0, n) from the operation's deterministic random source. */
export function randomIndex(ctx: ApplyContext, n: number): number {
  const i = Math.floor(ctx.random() * n);
  return i < n ? i : n - 1;
}

/**
 * `count` distinct indexes of [0, n) in random order: a partial Fisher-Yates shuffle of
 * `0..n-1`, with only the places it moved held (O(count), not O(n)).
 */
export function pickDistinctIndexes(ctx: ApplyContext, n: number, count: number): number[] {
  const k = Math.min(count, n);
  /** Places of the virtual array moved so far (any other place `x` holds `x`). */
  const moved = new Map<number, number>();
  const out = new Array<number>(k);
  for (let i = 0; i < k; i++) {
    const j = i + randomIndex(ctx, n - i);
    // Swap places i and j; place i is final from now on, so only j needs to remember.
    out[i] = moved.get(j) ?? j;
    moved.set(j, moved.get(i) ?? i);
  }
  return out;
}

/** A set's members or a hash's fields, in the order they iterate in. */
type Keyed = Set<ByteString> | Map<ByteString, ByteString>;

/** The element at index `i` of the order a set or a hash (its fields) iterates in. */
function nthOf(c: Keyed, i: number): ByteString {
  return c instanceof SummedSet || c instanceof SummedMap ? c.nth(i) : walkTo(c.keys(), i);
}

/**
 * A reader of a set's members or a hash's fields by index in their order, for many picks: the
 * large ones' order index, or else the elements copied to an array once.
 */
function picker(c: Keyed): (i: number) => ByteString {
  if ((c instanceof SummedSet || c instanceof SummedMap) && c.size >= ORDERED_FROM) {
    return (i) => c.nth(i);
  }
  const items = [...c.keys()];
  return (i) => items[i];
}

/** One random member of a non-empty set, or field of a hash (SPOP, SRANDMEMBER, HRANDFIELD). */
export function pickOne(ctx: ApplyContext, c: Keyed): ByteString {
  return nthOf(c, randomIndex(ctx, c.size));
}

/** `count` distinct random members or fields (at most all of them), in random order. */
export function pickDistinct(ctx: ApplyContext, c: Keyed, count: number): ByteString[] {
  return pickDistinctIndexes(ctx, c.size, count).map(picker(c));
}

/** `count` random members or fields of a non-empty collection, each drawn anew (repeats). */
export function pickRepeated(ctx: ApplyContext, c: Keyed, count: number): ByteString[] {
  const at = picker(c);
  const out = new Array<ByteString>(count);
  for (let i = 0; i < count; i++) out[i] = at(randomIndex(ctx, c.size));
  return out;
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
