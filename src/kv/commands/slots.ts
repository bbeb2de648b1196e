/**
 * The internal read `__SLOTKEYS`, behind CLUSTER COUNTKEYSINSLOT and CLUSTER GETKEYSINSLOT: keys
 * of one hash slot, read at the operation's place in the order like any read. (Linear in the
 * number of keys: lamportkv keeps no per-slot index.)
 *
 * ```text
 * __SLOTKEYS COUNT <slot>          the number of keys in the slot
 * __SLOTKEYS GET <slot> <count>    up to count of its keys
 * ```
 *
 * @module
 */
import type { ByteString, Reply } from "../../core/types.ts";
import type { ApplyContext, CommandSpec } from "../registry.ts";
import { err } from "../reply.ts";
import { keySlot, SLOTS } from "../slots.ts";

function slotKeys({ ks }: ApplyContext, argv: ByteString[]): Reply {
  const sub = argv[1].toUpperCase();
  const slot = /^[0-9]+$/.test(argv[2]) ? Number(argv[2]) : -1;
  if (slot < 0 || slot >= SLOTS) return err("ERR Invalid slot");
  const limit = sub === "GET" && /^[0-9]+$/.test(argv[3] ?? "") ? Number(argv[3]) : Infinity;
  const keys: ByteString[] = [];
  let n = 0;
  for (const k of ks.keys()) {
    if (keySlot(k) !== slot || ks.get(k) === undefined) continue;
    n++;
    if (keys.length < limit) keys.push(k);
  }
  return sub === "COUNT" ? n : keys;
}

/** The internal `__slotkeys` read. */
export const SLOT_COMMANDS: CommandSpec[] = [{
  name: "__slotkeys",
  arity: -3,
  flags: ["readonly"],
  keys: [0, 0, 0],
  group: "lamportkv",
  summary: "Internal: the keys of one hash slot (COUNT <slot>, GET <slot> <count>).",
  syntax: "COUNT slot | GET slot count",
  since: "lamportkv 4",
  apply: slotKeys,
  internal: true,
}];
