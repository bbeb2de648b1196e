/**
 * Which replica group owns each of the 16,384 hash slots (`slots.ts`) of a sharded cluster.
 *
 * A slot map has an epoch. Epoch 0 is the map derived from the config file
 * ({@link initialSlotMap}): the groups, in order of first appearance in the file, each own one
 * contiguous range of equal size (the first ones one slot more when the slots do not divide
 * evenly), as `redis-cli --cluster create` splits them: `0-8191` and `8192-16383` for two groups.
 * Every replica derives the same map from the same file, without talking.
 *
 * Slots then move between groups at run time (online resharding): each group replicates its own
 * copy of the map (`slot_state.ts`), changed through its order by `CLUSTER SETSLOT ... NODE` (at
 * the control group, the file's first group, whose copy is authoritative: epoch + 1 per change)
 * and `CLUSTER LOADSLOTMAP` (any group: a map with a higher epoch than its copy's wins).
 *
 * @module
 */
import { SLOTS } from "./slots.ts";

/** A contiguous range of slots, both ends included, owned by one group. */
export interface SlotRange {
  start: number;
  end: number;
  /** The owning group's name. */
  group: string;
}

/** An immutable slot-to-group map. */
export class SlotMap {
  /** 0: derived from the config file; each change at the control group adds one. */
  readonly epoch: number;
  /** The groups, in the order the map lists them (the config file's). */
  readonly groups: readonly string[];
  /** Every range, ascending by slot, covering every slot exactly once. */
  readonly ranges: readonly SlotRange[];
  /** The index in {@link groups} of each slot's owner. */
  readonly #owner: Uint16Array;

  /**
   * A map of `ranges` (they must cover every slot exactly once, each of one of `groups`).
   *
   * @throws {Error} when they do not.
   */
  constructor(epoch: number, groups: readonly string[], ranges: readonly SlotRange[]) {
    if (groups.length === 0 || groups.length > SLOTS) {
      throw new Error(`a slot map needs 1 to ${SLOTS} groups, got ${groups.length}`);
    }
    const owner = new Uint16Array(SLOTS).fill(0xffff);
    const sorted = [...ranges].sort((a, b) => a.start - b.start);
    for (const r of sorted) {
      const g = groups.indexOf(r.group);
      if (g < 0) throw new Error(`slot range ${r.start}-${r.end}: unknown group ${r.group}`);
      if (!(0 <= r.start && r.start <= r.end && r.end < SLOTS)) {
        throw new Error(`bad slot range ${r.start}-${r.end}`);
      }
      for (let s = r.start; s <= r.end; s++) {
        if (owner[s] !== 0xffff) throw new Error(`slot ${s} is in two ranges`);
        owner[s] = g;
      }
    }
    const missing = owner.indexOf(0xffff);
    if (missing >= 0) throw new Error(`slot ${missing} has no owner`);
    this.epoch = epoch;
    this.groups = [...groups];
    this.ranges = sorted.map((r) => ({ ...r }));
    this.#owner = owner;
  }

  /** The group that owns `slot` (0..16383). */
  owner(slot: number): string {
    return this.groups[this.#owner[slot]];
  }

  /** The ranges `group` owns, ascending. */
  rangesOf(group: string): SlotRange[] {
    return this.ranges.filter((r) => r.group === group);
  }

  /** How many slots `group` owns. */
  count(group: string): number {
    let n = 0;
    for (const r of this.rangesOf(group)) n += r.end - r.start + 1;
    return n;
  }
}

/**
 * The epoch-0 map of `groups` (in config order): one contiguous range each, split as
 * `redis-cli --cluster create` splits the slots over its masters (single-precision steps of
 * 16384 / n slots, rounded; the last group takes the rest): `0-8191 8192-16383` for two groups,
 * `0-5460 5461-10922 10923-16383` for three.
 */
export function initialSlotMap(groups: readonly string[]): SlotMap {
  const n = groups.length;
  const perGroup = Math.fround(SLOTS / n);
  const ranges: SlotRange[] = [];
  let first = 0;
  let cursor = 0;
  groups.forEach((group, i) => {
    let last = lround(Math.fround(Math.fround(cursor + perGroup) - 1));
    if (last > SLOTS || i === n - 1) last = SLOTS - 1;
    if (last < first) last = first;
    ranges.push({ start: first, end: last, group });
    first = last + 1;
    cursor = Math.fround(cursor + perGroup);
  });
  return new SlotMap(0, groups, ranges);
}

/** C's `lround`: to the nearest integer, halves away from zero. */
function lround(x: number): number {
  return Math.sign(x) * Math.floor(Math.abs(x) + 0.5);
}
