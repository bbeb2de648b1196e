/**
 * The replicated slot state of one replica group of a sharded cluster (online resharding): the
 * group's copy of the slot map, the slots it is moving out (`migrating`, to a target group) or
 * receiving (`importing`, from a source group), the keys taken out of its key space and not yet
 * confirmed at the target (`in transit`, by batch), and the batches it imported (so that a batch
 * sent twice is applied once). It is part of the state machine (`store.ts`): in snapshots and in
 * the digest, changed only by the `__RESHARD` operations (`commands/slots.ts`), and it decides
 * where each keyed command is served ({@link SlotState.route}).
 *
 * The first group of the config file is the control group: its copy of the map is the
 * authoritative one (`CLUSTER SETSLOT ... NODE` is accepted there only).
 *
 * @module
 */
import type { ByteString, Reply } from "../core/types.ts";
import { type SlotMap, SlotMap as SlotMapClass, type SlotRange } from "./slot_map.ts";
import { commonSlot, keySlot, slotRange, SLOTS } from "./slots.ts";
import { hashOf } from "./digest_hash.ts";
import { num, str } from "./decode.ts";

/** Redis's error for keys of one request in more than one slot. */
export const CROSSSLOT_ERROR = "CROSSSLOT Keys in request don't hash to the same slot";
/** Redis's error while some keys of a request are being moved. */
export const TRYAGAIN_ERROR = "TRYAGAIN Multiple keys request during rehashing of slot";

/** The snapshot form of a {@link SlotState}. */
export interface SlotStateSnapshot {
  /** The map copy: its epoch and its ranges `[start, end, group]`. */
  map: [number, [number, number, string][]];
  /** `[slot, target group]`. */
  migrating: [number, string][];
  /** `[slot, source group, import number]` (see {@link SlotState.importSince}). */
  importing: [number, string, number][];
  /** How many imports were begun (see {@link SlotState.askingStamp}). */
  imports: number;
  /** In-transit batches: `[batch id, [[key, payload], ...]]`. */
  transit: [number, [ByteString, ByteString][]][];
  /** Imported batch ids by source group. */
  imported: [string, number[]][];
}

/** The slot state of one group; see the module documentation. */
export class SlotState {
  /** This replica's group. */
  readonly group: string;
  /** The config's epoch-0 map (its first group is the control group). */
  readonly initial: SlotMap;
  #map: SlotMap;
  /** Slot -> the group it is moving to. */
  readonly migrating = new Map<number, string>();
  /** Slot -> the group it is coming from. */
  readonly #importing = new Map<number, string>();
  /** Slot -> the number of the import that brings it (see {@link askingStamp}). */
  readonly #importSince = new Map<number, number>();
  /** How many imports were begun: every `SETSLOT IMPORTING` that starts one takes a number. */
  #imports = 0;
  /** In-transit batches: id -> key -> payload. */
  readonly #batches = new Map<number, Map<ByteString, ByteString>>();
  /** In-transit keys: key -> its batch id. */
  readonly #transit = new Map<ByteString, number>();
  /** Applied batch ids by source group. */
  readonly #imported = new Map<string, Set<number>>();

  /** The state of `group` in a cluster whose epoch-0 map is `initial`. */
  constructor(group: string, initial: SlotMap) {
    if (!initial.groups.includes(group)) throw new Error(`group ${group} is not in the slot map`);
    this.group = group;
    this.initial = initial;
    this.#map = initial;
  }

  /** This group's copy of the slot map. */
  get map(): SlotMap {
    return this.#map;
  }

  /** Slot -> the group it is coming from ({@link beginImport}, {@link endImport}). */
  get importing(): ReadonlyMap<number, string> {
    return this.#importing;
  }

  /** The control group (the config file's first group). */
  get control(): string {
    return this.initial.groups[0];
  }

  /** True for a group of the cluster. */
  knows(group: string): boolean {
    return this.initial.groups.includes(group);
  }

  /** True when this group owns `slot` per its copy. */
  owns(slot: number): boolean {
    return this.#map.owner(slot) === this.group;
  }

  /**
   * What a replica's session stamps on a command that came after `ASKING` (`__ASKING <stamp>
   * <command>`), read from its own copy when it reads the command: the number of imports begun so
   * far. The state machine honours `ASKING` only when the stamp shows that the import of the
   * slot had begun when the command was read ({@link route}): an `ASK` from an earlier move of
   * the same slot (a request held by a paused replica, or retried for long) must not be served
   * while the key's value is again at the source.
   */
  get askingStamp(): number {
    return this.#imports;
  }

  /** The number of the import that brings `slot` (undefined: not importing). */
  importSince(slot: number): number | undefined {
    return this.#importSince.get(slot);
  }

  /**
   * Begins importing `slots` from `source` (one import number for all of them); a slot already
   * importing from `source` keeps its number (a rerun of the same step). A slot handed over from
   * here earlier ({@link handedOver}) comes back: that hand-over ends.
   */
  beginImport(slots: readonly number[], source: string): void {
    for (const s of slots) if (this.handedOver(s)) this.migrating.delete(s);
    const fresh = slots.filter((s) => this.importing.get(s) !== source);
    if (fresh.length === 0) return;
    this.#imports += 1;
    for (const s of fresh) {
      this.#importing.set(s, source);
      this.#importSince.set(s, this.#imports);
    }
  }

  /** Ends the import of `slot` (nothing if it was not importing). */
  endImport(slot: number): void {
    this.#importing.delete(slot);
    this.#importSince.delete(slot);
  }

  /** The in-transit batch `key` is in, or undefined. */
  transitBatch(key: ByteString): number | undefined {
    return this.#transit.get(key);
  }

  /** How many keys are in transit. */
  get transitSize(): number {
    return this.#transit.size;
  }

  /** True when some in-transit key is in one of `slots`. */
  hasTransitIn(slots: ReadonlySet<number>): boolean {
    for (const k of this.#transit.keys()) if (slots.has(keySlot(k))) return true;
    return false;
  }

  /** The lowest-id in-transit batch with a key in `slots`, as `[id, key, payload, ...]`. */
  transitReply(slots: ReadonlySet<number>): Reply | undefined {
    const ids = [...this.#batches.keys()].sort((a, b) => a - b);
    for (const id of ids) {
      const batch = this.#batches.get(id)!;
      if (![...batch.keys()].some((k) => slots.has(keySlot(k)))) continue;
      return [id, ...[...batch].flat()];
    }
    return undefined;
  }

  /** Puts keys (with their payloads) in transit under batch `id`. */
  addTransit(id: number, entries: readonly [ByteString, ByteString][]): void {
    if (entries.length === 0) return;
    const batch = this.#batches.get(id) ?? new Map<ByteString, ByteString>();
    for (const [k, p] of entries) {
      batch.set(k, p);
      this.#transit.set(k, id);
    }
    this.#batches.set(id, batch);
  }

  /** Drops in-transit batch `id`; returns how many keys it held (0: unknown). */
  dropTransit(id: number): number {
    const batch = this.#batches.get(id);
    if (batch === undefined) return 0;
    for (const k of batch.keys()) this.#transit.delete(k);
    this.#batches.delete(id);
    return batch.size;
  }

  /** True when batch `id` from `source` was imported. */
  wasImported(source: string, id: number): boolean {
    return this.#imported.get(source)?.has(id) ?? false;
  }

  /** Records batch `id` from `source` as imported. */
  noteImported(source: string, id: number): void {
    const ids = this.#imported.get(source) ?? new Set<number>();
    ids.add(id);
    this.#imported.set(source, ids);
  }

  /** Forgets the imported batches of sources no slot imports from any more. */
  pruneImported(): void {
    const sources = new Set(this.importing.values());
    for (const s of [...this.#imported.keys()]) if (!sources.has(s)) this.#imported.delete(s);
  }

  /**
   * Adopts `map` as this group's copy: importing is cleared for the slots it now owns, migrating
   * for those it no longer owns, except those handed over to their migration's target (see
   * {@link handedOver}). (The caller checks that no key is left behind.)
   */
  adopt(map: SlotMap): void {
    this.#map = map;
    for (const s of [...this.importing.keys()]) if (this.owns(s)) this.endImport(s);
    for (const [s, target] of [...this.migrating]) {
      if (!this.owns(s) && map.owner(s) !== target) this.migrating.delete(s);
    }
    this.pruneImported();
  }

  /**
   * True when `slot` was migrating from this group and now belongs to the migration's target: a
   * hand-over. Until every group has the new map (the target may still hold the old one, where
   * the slot is this group's, and would answer MOVED back here), this group answers `ASK` for
   * the slot rather than `MOVED`; a `LOADSLOTMAP` of the map it already holds ends the hand-over
   * ({@link endHandOvers}: the reshard tool sends it once every group loaded the map).
   */
  handedOver(slot: number): boolean {
    const target = this.migrating.get(slot);
    return target !== undefined && !this.owns(slot) && this.#map.owner(slot) === target;
  }

  /**
   * True while `slot` is importing here or handed over from here: where its commands are served
   * is decided at their place in the order ({@link route}), not before.
   */
  moving(slot: number): boolean {
    return this.#importing.has(slot) || this.handedOver(slot);
  }

  /** Ends every hand-over ({@link handedOver}). */
  endHandOvers(): void {
    for (const s of [...this.migrating.keys()]) if (!this.owns(s)) this.migrating.delete(s);
  }

  /** The slots this group owns now and would not own under `map`. */
  leaving(map: SlotMap): Set<number> {
    const out = new Set<number>();
    for (const r of this.#map.rangesOf(this.group)) {
      for (let s = r.start; s <= r.end; s++) if (map.owner(s) !== this.group) out.add(s);
    }
    return out;
  }

  /**
   * Where a command on `keys` is served, decided at its place in the order: null here, else the
   * error reply. Redirects name the GROUP (`MOVED <slot> <group>`, `ASK <slot> <group>`); the
   * replica turns it into that group's master's address. `exists` tells whether a key is in the
   * key space; `asking`: the command came after `ASKING`, with its session's stamp
   * ({@link askingStamp}), or null. A stamp older than the slot's import is an `ASK` from an
   * earlier move: the command is then routed as one without `ASKING` (MOVED to the source, which
   * answers ASK again if it still applies).
   */
  route(
    keys: readonly ByteString[],
    exists: (key: ByteString) => boolean,
    asking: number | null,
  ): Reply | null {
    const slot = commonSlot(keys);
    if (slot === undefined) return null;
    if (slot === null) return { err: CROSSSLOT_ERROR };
    if (this.owns(slot)) {
      const target = this.migrating.get(slot);
      if (target === undefined) return null;
      if (keys.some((k) => this.#transit.has(k))) return { err: TRYAGAIN_ERROR };
      const present = keys.filter(exists).length;
      if (present === keys.length) return null;
      if (present === 0) return { err: `ASK ${slot} ${target}` };
      return { err: TRYAGAIN_ERROR };
    }
    const since = this.#importSince.get(slot);
    if (since !== undefined && ((asking !== null && asking >= since) || keys.every(exists))) {
      return null;
    }
    // Handed over (no key of the slot is left here): the target serves it after ASKING whether
    // or not it has the new map yet.
    if (this.handedOver(slot)) return { err: `ASK ${slot} ${this.migrating.get(slot)}` };
    return { err: `MOVED ${slot} ${this.#map.owner(slot)}` };
  }

  /** True while nothing differs from the epoch-0 state. */
  get pristine(): boolean {
    return this.#map === this.initial && this.migrating.size === 0 &&
      this.importing.size === 0 && this.#batches.size === 0 && this.#imported.size === 0 &&
      this.#imports === 0;
  }

  /** The state, JSON-compatible. */
  snapshot(): SlotStateSnapshot {
    return {
      map: [this.#map.epoch, this.#map.ranges.map((r) => [r.start, r.end, r.group])],
      migrating: [...this.migrating],
      importing: [...this.importing].map(([s, g]) => [s, g, this.#importSince.get(s)!]),
      imports: this.#imports,
      transit: [...this.#batches].map(([id, batch]) => [id, [...batch]]),
      imported: [...this.#imported].map(([g, ids]) => [g, [...ids]]),
    };
  }

  /**
   * Replaces the state with a {@link snapshot} (undefined: the epoch-0 state). Throws TypeError
   * when a field is malformed (then nothing changed).
   */
  restore(s: unknown): void {
    if (s === undefined) return this.#load(this.initial, [], [], [], [], 0);
    const o = s as Partial<SlotStateSnapshot> | null;
    if (!o || typeof o !== "object") throw new TypeError("malformed slot state");
    const bad = (what: string) => new TypeError(`malformed slot state: ${what}`);
    if (!Array.isArray(o.map) || o.map.length !== 2 || !Array.isArray(o.map[1])) throw bad("map");
    const ranges = o.map[1].map((r): SlotRange => {
      if (!Array.isArray(r) || r.length !== 3) throw bad("map range");
      return { start: num(r[0]), end: num(r[1]), group: this.#group(r[2]) };
    });
    let map: SlotMap;
    try {
      map = new SlotMapClass(num(o.map[0]), this.initial.groups, ranges);
    } catch (e) {
      throw bad(e instanceof Error ? e.message : String(e));
    }
    const slotGroups = (v: unknown, what: string): [number, string][] => {
      if (!Array.isArray(v)) throw bad(what);
      return v.map((e) => {
        if (!Array.isArray(e) || e.length !== 2) throw bad(what);
        return [this.#slot(e[0]), this.#group(e[1])];
      });
    };
    const migrating = slotGroups(o.migrating, "migrating");
    // Written before import numbers (2026-12-05): `[slot, group]`, and no count (0).
    const imports = o.imports === undefined ? 0 : num(o.imports);
    if (!Array.isArray(o.importing)) throw bad("importing");
    const importing = o.importing.map((e: unknown[]): [number, string, number] => {
      if (!Array.isArray(e) || e.length < 2 || e.length > 3) throw bad("importing");
      const since = e.length === 3 ? num(e[2]) : 0;
      if (since > imports) throw bad("import number above the count");
      return [this.#slot(e[0]), this.#group(e[1]), since];
    });
    if (!Array.isArray(o.transit)) throw bad("transit");
    const transit = o.transit.map((b): [number, [ByteString, ByteString][]] => {
      if (!Array.isArray(b) || b.length !== 2 || !Array.isArray(b[1])) throw bad("transit batch");
      return [
        num(b[0]),
        b[1].map((kp): [ByteString, ByteString] => {
          if (!Array.isArray(kp) || kp.length !== 2) throw bad("transit key");
          return [str(kp[0]), str(kp[1])];
        }),
      ];
    });
    if (!Array.isArray(o.imported)) throw bad("imported");
    const imported = o.imported.map((e): [string, number[]] => {
      if (!Array.isArray(e) || e.length !== 2 || !Array.isArray(e[1])) throw bad("imported");
      return [this.#group(e[0]), e[1].map(num)];
    });
    this.#load(map, migrating, importing, transit, imported, imports);
  }

  #load(
    map: SlotMap,
    migrating: [number, string][],
    importing: [number, string, number][],
    transit: [number, [ByteString, ByteString][]][],
    imported: [string, number[]][],
    imports: number,
  ): void {
    this.#map = map;
    this.migrating.clear();
    this.#importing.clear();
    this.#importSince.clear();
    this.#imports = imports;
    this.#batches.clear();
    this.#transit.clear();
    this.#imported.clear();
    for (const [s, g] of migrating) this.migrating.set(s, g);
    for (const [s, g, since] of importing) {
      this.#importing.set(s, g);
      this.#importSince.set(s, since);
    }
    for (const [id, entries] of transit) this.addTransit(id, entries);
    for (const [g, ids] of imported) this.#imported.set(g, new Set(ids));
  }

  #slot(v: unknown): number {
    const s = num(v);
    if (s < 0 || s >= SLOTS) throw new TypeError("malformed slot state: slot out of range");
    return s;
  }

  #group(v: unknown): string {
    const g = str(v);
    if (!this.knows(g)) throw new TypeError(`malformed slot state: unknown group ${g}`);
    return g;
  }

  /** Hash of the state (an empty string while {@link pristine}, so digests stay as before). */
  digest(): string {
    if (this.pristine) return "";
    const [a, b] = hashOf([JSON.stringify(this.snapshot())]);
    return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
  }
}

/** The slots of `arg` ({@link slotRange}) as a list; undefined when it is not a range. */
export function parseSlots(arg: ByteString): number[] | undefined {
  const range = slotRange(arg);
  if (range === undefined) return undefined;
  const out: number[] = [];
  for (let s = range.start; s <= range.end; s++) out.push(s);
  return out;
}
