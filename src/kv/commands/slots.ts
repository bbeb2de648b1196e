/**
 * The internal operations behind the CLUSTER subcommands that read or change a group's slots,
 * each at its place in the group's order. (Linear in the number of keys: lamportkv keeps no
 * per-slot index.)
 *
 * ```text
 * __SLOTKEYS COUNT <slot>          the number of keys in the slot (CLUSTER COUNTKEYSINSLOT)
 * __SLOTKEYS GET <slot> <count>    up to count of its keys (CLUSTER GETKEYSINSLOT)
 * __SLOTMAP                        the group's copy of the slot map (CLUSTER SLOTMAP)
 * __RESHARD <subcommand> <arg>...  CLUSTER SETSLOT, LOADSLOTMAP, MIGRATEKEYS, IMPORTKEYS and
 *                                  MIGRATEDONE, with CLUSTER's arguments (online resharding)
 * __ASKING <stamp> <command> ...  the command, sent after ASKING (see `slot_state.ts`)
 * ```
 *
 * The slot state they read and change is `slot_state.ts`'s; without groups in the config there
 * is none, and they answer Redis's error for a node without cluster support.
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { ApplyContext, CommandSpec } from "../registry.ts";
import { E, err, OK } from "../reply.ts";
import { keySlot, SLOTS } from "../slots.ts";
import { parseSlots, type SlotState } from "../slot_state.ts";
import { SlotMap, type SlotRange } from "../slot_map.ts";
import { type DecodedRecord, decodeRecord, type KeySpace } from "../keyspace.ts";
import type { Waiters } from "../waiters.ts";
import { invariant } from "../../core/assert.ts";

/** Redis's error for cluster commands on a node without cluster support (no groups here). */
export const NO_CLUSTER = "ERR This instance has cluster support disabled";
const BAD_SLOT = "ERR Invalid or out of range slot";
const BAD_SETSLOT = "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP";

function slotKeys({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const sub = argv[1].toUpperCase();
  const slot = /^[0-9]+$/.test(argv[2]) ? Number(argv[2]) : -1;
  if (slot < 0 || slot >= SLOTS) return err("ERR Invalid slot");
  const limit = sub === "GET" && /^[0-9]+$/.test(argv[3] ?? "") ? Number(argv[3]) : Infinity;
  const indexed = ks.keysInSlot(slot);
  if (indexed !== undefined) return sub === "COUNT" ? indexed.length : indexed.slice(0, limit);
  // A key space not sharded keeps no slot index: its keys are walked.
  const keys: ByteString[] = [];
  let n = 0;
  for (const k of ks.keys()) {
    if (keySlot(k) !== slot || ks.get(k) === undefined) continue;
    n++;
    if (keys.length < limit) keys.push(k);
  }
  return sub === "COUNT" ? n : keys;
}

/** `__SLOTMAP`: `[epoch, [start, end, group], ...]` of the group's copy. */
function slotMapReply({ slots }: ApplyContext): Reply {
  if (slots === undefined) return err(NO_CLUSTER);
  const map = slots.map;
  return [map.epoch, ...map.ranges.map((r): Reply => [r.start, r.end, r.group])];
}

/** A non-negative integer argument, or undefined. */
function natural(arg: ByteString | undefined): number | undefined {
  return arg !== undefined && /^[0-9]{1,15}$/.test(arg) ? Number(arg) : undefined;
}

/** `ERR I don't know about group <g>` unless `g` is a group of the cluster. */
function unknownGroup(slots: SlotState, g: ByteString): Reply | null {
  return slots.knows(g) ? null : err(`ERR I don't know about group ${g.slice(0, 128)}`);
}

/** The smallest of `slots` that holds a key of the (sharded) key space, or undefined. */
function slotWithKeys(ks: KeySpace, slots: ReadonlySet<number>): number | undefined {
  return [...slots].sort((a, b) => a - b).find((s) => slotKeysOf(ks, s).length > 0);
}

/** The live keys of `slot` in byte order, from a sharded key space's slot index. */
function slotKeysOf(ks: KeySpace, slot: number): ByteString[] {
  const keys = ks.keysInSlot(slot);
  invariant(keys !== undefined, "a sharded group's key space keeps no slot index");
  return keys;
}

/**
 * Adopts `map` if no slot this group gives away still holds keys (in the key space or in
 * transit): null, else Redis's error for it (nothing changed).
 */
function adoptMap(
  ks: KeySpace,
  slots: SlotState,
  map: SlotMap,
  waiters: Waiters | undefined,
): Reply | null {
  const leaving = slots.leaving(map);
  const held = slotWithKeys(ks, leaving) ??
    [...leaving].find((s) => slots.hasTransitIn(new Set([s])));
  if (held !== undefined) {
    return err(
      `ERR Can't assign hashslot ${held} to a different group while I still hold keys for this hash slot.`,
    );
  }
  slots.adopt(map);
  // Clients blocked here on keys of a slot this group no longer serves are answered MOVED, as
  // Redis Cluster does (else they would wait for writes that now go to another group).
  waiters?.endWith((w) => {
    const slot = keySlot(w.keys[0]);
    if (slots.owns(slot) || slots.importing.has(slot)) return null;
    return `MOVED ${slot} ${slots.map.owner(slot)}`;
  });
  return null;
}

/**
 * `SETSLOT <slots> IMPORTING|MIGRATING <group> [EPOCH <e>] | STABLE | NODE <group> [EPOCH <e>]`.
 * With `EPOCH` (what the reshard tool sends: the epoch of the map it planned the move from), the
 * step is refused unless this group's copy of the map is at that epoch, so that a copy of a step
 * of an earlier move, held somewhere and ordered late, cannot start a move again (or, for NODE,
 * give a slot back to a group that no longer holds its keys).
 */
function setSlot(
  ks: KeySpace,
  slots: SlotState,
  argv: ByteString[],
  waiters: Waiters | undefined,
): Reply {
  const range = parseSlots(argv[2] ?? "");
  const action = (argv[3] ?? "").toUpperCase();
  const argc = action === "STABLE" ? 4 : 5;
  const withEpoch = action !== "STABLE" && argv.length === argc + 2 &&
    argv[argc].toUpperCase() === "EPOCH";
  if (argv.length !== argc && !withEpoch) return err(BAD_SETSLOT);
  if (range === undefined) return err(BAD_SLOT);
  const epoch = withEpoch ? natural(argv[argc + 1]) : undefined;
  if (withEpoch && epoch === undefined) return err("ERR Invalid epoch");
  const group = argv[4];
  const stale = () => staleStep(slots, epoch, "step");
  if (action === "STABLE") {
    const set = new Set(range);
    if (slots.hasTransitIn(set)) {
      return err(`ERR slots ${argv[2]} have keys in transit: finish their batch with MIGRATEDONE`);
    }
    for (const s of range) {
      slots.migrating.delete(s);
      slots.endImport(s);
    }
    slots.pruneImported();
    return OK;
  }
  if (!["IMPORTING", "MIGRATING", "NODE"].includes(action)) return err(BAD_SETSLOT);
  const unknown = unknownGroup(slots, group);
  if (unknown !== null) return unknown;
  if (action === "NODE") {
    if (slots.group !== slots.control) {
      return err(`ERR SETSLOT NODE is only accepted by the control group ${slots.control}`);
    }
    // Done already (a retry): the epoch it made; else only at the epoch it was planned at.
    if (range.every((s) => slots.map.owner(s) === group)) return slots.map.epoch;
    return stale() ?? assignSlots(ks, slots, range, group, waiters);
  }
  const refused = stale();
  if (refused !== null) return refused;
  if (group === slots.group) {
    return err(`ERR group ${group} is this group: a slot cannot move to itself`);
  }
  if (action === "IMPORTING") {
    const owned = range.find((s) => slots.owns(s));
    if (owned !== undefined) return err(`ERR I'm already the owner of hash slot ${owned}`);
    slots.beginImport(range, group);
    return OK;
  }
  const foreign = range.find((s) => !slots.owns(s));
  if (foreign !== undefined) return err(`ERR I'm not the owner of hash slot ${foreign}`);
  for (const s of range) slots.migrating.set(s, group);
  return OK;
}

/**
 * The refusal of a step (or batch) the reshard tool planned at `epoch` when this group's copy of
 * the map is at another one, or null (also without `EPOCH`).
 */
function staleStep(slots: SlotState, epoch: number | undefined, what: string): Reply | null {
  if (epoch === undefined || epoch === slots.map.epoch) return null;
  return err(
    `ERR the slot map is at epoch ${slots.map.epoch}, not ${epoch}: a ${what} of another move`,
  );
}

/** `SETSLOT <slots> NODE <group>` at the control group (a change): the new epoch. */
function assignSlots(
  ks: KeySpace,
  slots: SlotState,
  range: number[],
  group: string,
  waiters: Waiters | undefined,
): Reply {
  const map = slots.map;
  const owner = (s: number) =>
    (s >= range[0] && s <= range[range.length - 1]) ? group : map.owner(s);
  const ranges: SlotRange[] = [];
  for (let s = 0; s < SLOTS; s++) {
    const g = owner(s);
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.group === g && last.end === s - 1) last.end = s;
    else ranges.push({ start: s, end: s, group: g });
  }
  const refused = adoptMap(
    ks,
    slots,
    new SlotMap(map.epoch + 1, map.groups, ranges),
    waiters,
  );
  return refused ?? map.epoch + 1;
}

/** `LOADSLOTMAP <epoch> <start> <end> <group> ...`: 1 adopted, 0 not newer. */
function loadSlotMap(
  ks: KeySpace,
  slots: SlotState,
  argv: ByteString[],
  waiters: Waiters | undefined,
): Reply {
  if (argv.length < 6 || (argv.length - 3) % 3 !== 0) return E.SYNTAX;
  const epoch = natural(argv[2]);
  if (epoch === undefined) return err("ERR Invalid epoch");
  const ranges: SlotRange[] = [];
  for (let i = 3; i < argv.length; i += 3) {
    const start = natural(argv[i]);
    const end = natural(argv[i + 1]);
    if (start === undefined || end === undefined || start > end || end >= SLOTS) {
      return err(BAD_SLOT);
    }
    const unknown = unknownGroup(slots, argv[i + 2]);
    if (unknown !== null) return unknown;
    ranges.push({ start, end, group: argv[i + 2] });
  }
  let map: SlotMap;
  try {
    map = new SlotMap(epoch, slots.map.groups, ranges);
  } catch (e) {
    return err(`ERR invalid slot map: ${e instanceof Error ? e.message : e}`);
  }
  if (epoch < slots.map.epoch) return 0;
  if (epoch === slots.map.epoch) {
    // The map this group holds, again: every group has it now, hand-overs end.
    slots.endHandOvers();
    return 0;
  }
  return adoptMap(ks, slots, map, waiters) ?? 1;
}

/** The slots of `arg` if every one is migrating: the set, else the error. */
function migratingSlots(slots: SlotState, arg: ByteString): Set<number> | Reply {
  const range = parseSlots(arg);
  if (range === undefined) return err(BAD_SLOT);
  const still = range.find((s) => !slots.migrating.has(s));
  if (still !== undefined) return err(`ERR hash slot ${still} is not migrating`);
  return new Set(range);
}

/** `MIGRATEKEYS <slots> <count>`: `[batch-id, key, payload, ...]` (no keys: nothing left). */
function migrateKeys(ks: KeySpace, slots: SlotState, argv: ByteString[]): Reply {
  if (argv.length !== 4) return E.SYNTAX;
  const set = migratingSlots(slots, argv[2]);
  if (!(set instanceof Set)) return set;
  const count = natural(argv[3]);
  if (count === undefined || count === 0) return err("ERR count must be a positive integer");
  const again = slots.transitReply(set);
  if (again !== undefined) return again;
  const id = ks.version;
  const entries: [ByteString, ByteString][] = [];
  // Slot by slot, each in byte order: the same batch on every replica of the group.
  for (const slot of [...set].sort((a, b) => a - b)) {
    for (const k of slotKeysOf(ks, slot)) {
      if (entries.length >= count) break;
      const payload = ks.exportRecord(k);
      if (payload !== undefined) entries.push([k, payload]);
    }
    if (entries.length >= count) break;
  }
  for (const [k] of entries) ks.delete(k);
  slots.addTransit(id, entries);
  return [entries.length === 0 ? 0 : id, ...entries.flat()];
}

/** `IMPORTKEYS <source> <batch-id> <key> <payload> ...`: 1 applied, 0 applied before. */
function importKeys(ks: KeySpace, slots: SlotState, argv: ByteString[]): Reply {
  if (argv.length < 4 || argv.length % 2 !== 0) return E.SYNTAX;
  const source = argv[2];
  const unknown = unknownGroup(slots, source);
  if (unknown !== null) return unknown;
  const id = natural(argv[3]);
  if (id === undefined) return err("ERR Invalid batch id");
  // `EPOCH <e>` before the keys (a payload is never a number, so a key named EPOCH is no
  // ambiguity): refused unless this group's map is at epoch e, as SETSLOT's (a batch of an
  // earlier move from the same source, ordered late, must not overwrite newer values; the ids
  // of imported batches are forgotten when an import ends).
  const epoch = argv.length >= 6 && argv[4].toUpperCase() === "EPOCH"
    ? natural(argv[5])
    : undefined;
  const refused = staleStep(slots, epoch, "batch");
  if (refused !== null) return refused;
  const first = epoch === undefined ? 4 : 6;
  const records: [ByteString, DecodedRecord][] = [];
  for (let i = first; i < argv.length; i += 2) {
    const slot = keySlot(argv[i]);
    if (slots.importing.get(slot) !== source) {
      return err(`ERR hash slot ${slot} is not importing from group ${source}`);
    }
    try {
      records.push([argv[i], decodeRecord(argv[i + 1])]);
    } catch (e) {
      return err(
        `ERR bad payload for a key of slot ${slot}: ${e instanceof Error ? e.message : e}`,
      );
    }
  }
  if (slots.wasImported(source, id)) return 0;
  for (const [k, r] of records) ks.importRecord(k, r);
  slots.noteImported(source, id);
  return 1;
}

/** `__RESHARD <subcommand> ...`: the slot-changing CLUSTER subcommands. */
function reshard({ ks, slots, waiters }: ApplyContext, argv: ByteString[]): Reply {
  if (slots === undefined) return err(NO_CLUSTER);
  switch (argv[1].toUpperCase()) {
    case "SETSLOT":
      return setSlot(ks, slots, argv, waiters);
    case "LOADSLOTMAP":
      return loadSlotMap(ks, slots, argv, waiters);
    case "MIGRATEKEYS":
      return migrateKeys(ks, slots, argv);
    case "IMPORTKEYS":
      return importKeys(ks, slots, argv);
    case "MIGRATEDONE": {
      const id = argv.length === 3 ? natural(argv[2]) : undefined;
      if (id === undefined) return err("ERR Invalid batch id");
      return slots.dropTransit(id);
    }
    default:
      return err(`ERR unknown subcommand '${argv[1].slice(0, 128)}'. Try CLUSTER HELP.`);
  }
}

/** An internal operation of the `lamportkv` group, without keys. */
function internalOp(
  name: string,
  arity: number,
  flags: CommandSpec["flags"],
  summary: string,
  syntax: string,
  since: string,
  apply: NonNullable<CommandSpec["apply"]>,
): CommandSpec {
  return {
    name,
    arity,
    flags,
    keys: [0, 0, 0],
    group: "lamportkv",
    summary,
    syntax,
    since,
    apply,
    internal: true,
  };
}

/** The internal slot operations (see the module documentation). */
export const SLOT_COMMANDS: CommandSpec[] = [
  internalOp(
    "__slotkeys",
    -3,
    ["readonly"],
    "Internal: the keys of one hash slot (COUNT <slot>, GET <slot> <count>).",
    "COUNT slot | GET slot count",
    "lamportkv 4",
    slotKeys,
  ),
  internalOp(
    "__slotmap",
    1,
    ["readonly"],
    "Internal: the group's copy of the slot map (CLUSTER SLOTMAP).",
    "",
    "lamportkv 5",
    slotMapReply,
  ),
  internalOp(
    "__reshard",
    -3,
    ["write", "admin"],
    "Internal: CLUSTER SETSLOT, LOADSLOTMAP, MIGRATEKEYS, IMPORTKEYS, MIGRATEDONE.",
    "subcommand [arg ...]",
    "lamportkv 5",
    reshard,
  ),
  // The store applies the wrapped command itself; this is reached only by a misuse.
  internalOp(
    "__asking",
    -3,
    ["write"],
    "Internal: a command sent after ASKING, with its session's stamp (the store unwraps it).",
    "stamp command [arg ...]",
    "lamportkv 5",
    () => err("ERR __ASKING must wrap a command"),
  ),
];
