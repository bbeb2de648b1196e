/**
 * An in-memory sharded cluster for tests of the resharding procedure (`src/client/reshard.ts`):
 * each group is one object answering the design's CLUSTER subcommands (SETSLOT IMPORTING /
 * MIGRATING / STABLE / NODE, SLOTMAP, LOADSLOTMAP, MIGRATEKEYS, IMPORTKEYS, MIGRATEDONE) with the
 * design's rules and refusals (a source keeps a slot it gave away as migrating, handed over, until
 * the same map is loaded again), over a key space of string keys. The cluster can stop the caller
 * at a chosen call, before or after the group applied it (a tool killed there), and says what is
 * wrong with its state ({@link FakeShardedCluster.problems}).
 *
 * @module
 */
import type { ByteString } from "../../src/core/types.ts";
import type { GroupLink, ShardedCluster } from "../../src/client/reshard.ts";
import { keySlot, SLOTS } from "../../src/kv/slots.ts";
import { SlotMap, type SlotRange } from "../../src/kv/slot_map.ts";
import { RespError, type RespValue } from "../../src/net/resp.ts";

/** Thrown by a link when the cluster stops the caller (see {@link FakeShardedCluster.crashAt}). */
export class Crash extends Error {
  /** Builds the error. */
  constructor(call: number, applied: boolean) {
    super(`crash at call ${call} (${applied ? "after" : "before"} it was applied)`);
    this.name = "Crash";
  }
}

/** One group's replicated slot state and key space. */
export class FakeGroup {
  readonly name: string;
  epoch = 0;
  /** The owner of every slot, as this group's copy says. */
  owner: string[];
  readonly keys = new Map<ByteString, ByteString>();
  readonly migrating = new Map<number, string>();
  readonly importing = new Map<number, string>();
  /** In-transit batches by id. */
  readonly inTransit = new Map<string, Map<ByteString, ByteString>>();
  /** Applied batches, `<source>/<id>`. */
  readonly imported = new Set<string>();
  #version = 0;
  readonly #cluster: FakeShardedCluster;

  constructor(name: string, owner: string[], cluster: FakeShardedCluster) {
    this.name = name;
    this.owner = [...owner];
    this.#cluster = cluster;
  }

  /** The ranges of this group's copy of the map. */
  ranges(): SlotRange[] {
    return rangesOf(this.owner);
  }

  /** Answers one command line. */
  handle(argv: readonly ByteString[]): RespValue {
    const [cluster, sub, ...args] = argv;
    if (cluster?.toUpperCase() !== "CLUSTER") return err("ERR unknown command");
    switch (sub?.toUpperCase()) {
      case "SLOTMAP":
        return [this.epoch, ...this.ranges().map((r) => [r.start, r.end, r.group])];
      case "SETSLOT":
        return this.#setSlot(args);
      case "LOADSLOTMAP":
        return this.#loadSlotMap(args);
      case "MIGRATEKEYS":
        return this.#migrateKeys(args);
      case "IMPORTKEYS":
        return this.#importKeys(args);
      case "MIGRATEDONE": {
        const batch = this.inTransit.get(args[0]);
        this.inTransit.delete(args[0]);
        return batch?.size ?? 0;
      }
      default:
        return err(`ERR unknown subcommand '${sub}'`);
    }
  }

  /** Slots of `text` (`s` or `a-b`), or null. */
  #slots(text: ByteString | undefined): number[] | null {
    const m = /^(\d+)(?:-(\d+))?$/.exec(text ?? "");
    if (m === null) return null;
    const a = Number(m[1]);
    const b = Number(m[2] ?? m[1]);
    if (a > b || b >= SLOTS) return null;
    return Array.from({ length: b - a + 1 }, (_, i) => a + i);
  }

  /** The slots of the keys held here, in the key space or in transit. */
  #held(): Set<number> {
    const held = new Set<number>();
    for (const k of this.keys.keys()) held.add(keySlot(k));
    for (const batch of this.inTransit.values()) for (const k of batch.keys()) held.add(keySlot(k));
    return held;
  }

  /** The refusal of a step planned at another epoch (`EPOCH <e>` at `args[at]`), or null. */
  #stale(args: ByteString[], at: number): RespValue | null {
    if (args[at]?.toUpperCase() !== "EPOCH") return null;
    return Number(args[at + 1]) === this.epoch ? null : err("ERR another epoch");
  }

  #setSlot(args: ByteString[]): RespValue {
    const slots = this.#slots(args[0]);
    const how = args[1]?.toUpperCase();
    const group = args[2];
    if (slots === null) return err("ERR bad slots");
    const stale = this.#stale(args, 3);
    const done = how === "NODE" && slots.every((s) => this.owner[s] === group);
    if (stale !== null && !done) return stale;
    const known = group !== undefined && this.#cluster.groups.includes(group);
    switch (how) {
      case "IMPORTING":
        if (!known) return err("ERR unknown group");
        if (slots.some((s) => this.owner[s] === this.name)) {
          return err("ERR this group owns some of these slots");
        }
        for (const s of slots) {
          if (this.migrating.has(s)) this.#clear(s); // a slot handed over from here comes back
          this.importing.set(s, group);
        }
        return "OK";
      case "MIGRATING":
        if (!known) return err("ERR unknown group");
        if (slots.some((s) => this.owner[s] !== this.name)) {
          return err("ERR this group does not own all of these slots");
        }
        for (const s of slots) this.migrating.set(s, group);
        return "OK";
      case "STABLE":
        if (slots.some((s) => this.#inTransit(s))) return err("ERR keys in transit");
        for (const s of slots) this.#clear(s);
        return "OK";
      case "NODE": {
        const control = this.#cluster.groups[0];
        if (this.name !== control) return err(`ERR the control group is ${control}`);
        if (!known) return err("ERR unknown group");
        const next = [...this.owner];
        for (const s of slots) next[s] = group;
        if (next.every((g, s) => g === this.owner[s])) return this.epoch;
        const refusal = this.#adopt(next);
        if (refusal !== null) return refusal;
        return ++this.epoch;
      }
      default:
        return err("ERR syntax error");
    }
  }

  #inTransit(slot: number): boolean {
    for (const batch of this.inTransit.values()) {
      for (const k of batch.keys()) if (keySlot(k) === slot) return true;
    }
    return false;
  }

  #clear(slot: number): void {
    this.migrating.delete(slot);
    const source = this.importing.get(slot);
    this.importing.delete(slot);
    if (source !== undefined && ![...this.importing.values()].includes(source)) {
      for (const id of [...this.imported]) {
        if (id.startsWith(`${source}/`)) this.imported.delete(id);
      }
    }
  }

  /** Adopts `next` unless a slot of this group with keys goes elsewhere (the error then). */
  #adopt(next: string[]): RespValue | null {
    const held = this.#held();
    for (let s = 0; s < SLOTS; s++) {
      if (this.owner[s] === this.name && next[s] !== this.name && held.has(s)) {
        return err(`ERR slot ${s} still has keys here`);
      }
    }
    this.owner = next;
    for (const s of [...this.importing.keys()]) if (next[s] === this.name) this.#clear(s);
    // A slot given to its migration's target is handed over: kept until the same map comes
    // again (every group has it by then).
    for (const [s, target] of [...this.migrating]) {
      if (next[s] !== this.name && next[s] !== target) this.#clear(s);
    }
    return null;
  }

  #loadSlotMap(args: ByteString[]): RespValue {
    const epoch = Number(args[0]);
    if ((args.length - 1) % 3 !== 0) return err("ERR syntax error");
    const next = new Array<string>(SLOTS);
    for (let i = 1; i < args.length; i += 3) {
      for (let s = Number(args[i]); s <= Number(args[i + 1]); s++) next[s] = args[i + 2];
    }
    if (next.some((g) => g === undefined)) return err("ERR the map leaves slots out");
    if (epoch < this.epoch) return 0;
    if (epoch === this.epoch) {
      for (const s of [...this.migrating.keys()]) if (this.owner[s] !== this.name) this.#clear(s);
      return 0;
    }
    const refusal = this.#adopt(next);
    if (refusal !== null) return refusal;
    this.epoch = epoch;
    return 1;
  }

  #migrateKeys(args: ByteString[]): RespValue {
    const slots = this.#slots(args[0]);
    const count = Number(args[1]);
    if (slots === null || !(count > 0)) return err("ERR syntax error");
    if (slots.some((s) => !this.migrating.has(s))) return err("ERR not migrating");
    const wanted = new Set(slots);
    for (const [id, batch] of this.inTransit) {
      if ([...batch.keys()].some((k) => wanted.has(keySlot(k)))) return [id, ...flat(batch)];
    }
    const id = String(++this.#version);
    const keys = [...this.keys.keys()].filter((k) => wanted.has(keySlot(k))).sort().slice(0, count);
    if (keys.length === 0) return [id];
    const batch = new Map(keys.map((k) => [k, this.keys.get(k)!]));
    for (const k of keys) this.keys.delete(k);
    this.inTransit.set(id, batch);
    return [id, ...flat(batch)];
  }

  #importKeys(args: ByteString[]): RespValue {
    const stale = this.#stale(args, 2);
    if (stale !== null) return stale;
    const [source, id, ...rest] = args;
    const pairs = args[2]?.toUpperCase() === "EPOCH" ? rest.slice(2) : rest;
    if (pairs.length === 0 || pairs.length % 2 !== 0) return err("ERR syntax error");
    for (let i = 0; i < pairs.length; i += 2) {
      if (this.importing.get(keySlot(pairs[i])) !== source) {
        return err(`ERR slot ${keySlot(pairs[i])} is not importing from ${source}`);
      }
    }
    if (this.imported.has(`${source}/${id}`)) return 0;
    for (let i = 0; i < pairs.length; i += 2) this.keys.set(pairs[i], pairs[i + 1]);
    this.imported.add(`${source}/${id}`);
    return 1;
  }
}

/** An in-memory sharded cluster (see the module documentation). */
export class FakeShardedCluster implements ShardedCluster {
  readonly groups: readonly string[];
  readonly #groups = new Map<string, FakeGroup>();
  /** Calls made through the links so far. */
  calls = 0;
  /** Throw {@link Crash} at this call (1-based; null: never). */
  crashAt: number | null = null;
  /** Whether the group applies the call {@link crashAt} stops at before the throw. */
  crashAfterApply = false;
  /** Every call, as `<group> <argv[1]> <argv[2]>`. */
  readonly log: string[] = [];

  /** Groups `groups` (the first is the control group), all holding `map` at epoch 0. */
  constructor(map: SlotMap) {
    this.groups = map.groups;
    const owner = Array.from({ length: SLOTS }, (_, s) => map.owner(s));
    for (const g of map.groups) this.#groups.set(g, new FakeGroup(g, owner, this));
  }

  /** Group `name`. */
  group(name: string): FakeGroup {
    const group = this.#groups.get(name);
    if (group === undefined) throw new Error(`no group ${name}`);
    return group;
  }

  /** The link to group `name`, stopping the caller as {@link crashAt} says. */
  link(name: string): GroupLink {
    const group = this.group(name);
    return {
      call: (argv) => {
        const call = ++this.calls;
        this.log.push([name, ...argv.slice(1, 3)].join(" "));
        if (call === this.crashAt && !this.crashAfterApply) throw new Crash(call, false);
        const reply = group.handle(argv);
        if (call === this.crashAt) throw new Crash(call, true);
        return Promise.resolve(reply);
      },
    };
  }

  /** Stores `key` in the group owning its slot (per the control group's map). */
  put(key: ByteString, value: ByteString): void {
    const control = this.group(this.groups[0]);
    this.group(control.owner[keySlot(key)]).keys.set(key, value);
  }

  /** The control group's map. */
  map(): SlotMap {
    const control = this.group(this.groups[0]);
    return new SlotMap(control.epoch, this.groups, control.ranges());
  }

  /**
   * What is wrong with the cluster's state, given every key and value it should hold: groups
   * whose map differs from the control group's, slots still migrating or importing, keys in
   * transit, keys missing, or in a group that does not own them, or with another value.
   */
  problems(expected: ReadonlyMap<ByteString, ByteString>): string[] {
    const found: string[] = [];
    const control = this.group(this.groups[0]);
    const owners = new Map<ByteString, string[]>();
    for (const g of this.#groups.values()) {
      if (g.epoch !== control.epoch || g.owner.some((o, s) => o !== control.owner[s])) {
        found.push(`${g.name}: map epoch ${g.epoch} differs from the control group's`);
      }
      if (g.migrating.size > 0) found.push(`${g.name}: ${g.migrating.size} slots migrating`);
      if (g.importing.size > 0) found.push(`${g.name}: ${g.importing.size} slots importing`);
      if (g.inTransit.size > 0) found.push(`${g.name}: ${g.inTransit.size} batches in transit`);
      for (const [k, v] of g.keys) {
        owners.set(k, [...owners.get(k) ?? [], g.name]);
        if (expected.get(k) !== v) found.push(`${g.name}: key ${k} has ${v}`);
      }
    }
    for (const k of expected.keys()) {
      const where = owners.get(k) ?? [];
      const owner = control.owner[keySlot(k)];
      if (where.length !== 1 || where[0] !== owner) {
        found.push(`key ${k} is in [${where.join(", ")}], its slot's owner is ${owner}`);
      }
    }
    return found;
  }
}

/** The ranges of an owner-per-slot array. */
function rangesOf(owner: readonly string[]): SlotRange[] {
  const ranges: SlotRange[] = [];
  for (let s = 0; s < SLOTS; s++) {
    const last = ranges.at(-1);
    if (last !== undefined && last.group === owner[s]) last.end = s;
    else ranges.push({ start: s, end: s, group: owner[s] });
  }
  return ranges;
}

function flat(batch: Map<ByteString, ByteString>): ByteString[] {
  return [...batch].flat();
}

function err(message: string): RespError {
  return new RespError(message);
}
