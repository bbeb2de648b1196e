/**
 * What the sharded simulation needs of the server side of online resharding, in one place: a
 * replica's state machine for a group of a sharded cluster, the ASKING wrapper, and the redirects
 * it answers with (the state machine names the group; the host would turn it into an address).
 *
 * @module
 */
import type { ByteString, Reply } from "../../src/core/types.ts";
import { RespError, type RespValue } from "../../src/net/resp.ts";
import { KvStore } from "../../src/kv/store.ts";
import { initialSlotMap, type SlotMap } from "../../src/kv/slot_map.ts";
import type { ReplicaSet } from "../../src/kv/replica_set.ts";

/** A redirect a client follows. */
export type Redirect =
  | { kind: "moved"; slot: number; group: string }
  | { kind: "ask"; slot: number; group: string }
  | { kind: "tryagain" };

/**
 * A replica's state machine in group `group` of a sharded cluster, starting from the epoch-0
 * `map` (its first group is the control group).
 */
export function shardStore(
  group: string,
  map: SlotMap,
  founding: ReplicaSet | undefined,
): KvStore {
  return new KvStore(undefined, 0, founding, { group, map });
}

/**
 * True when a redirected request is remembered under its exactly-once tag: a second copy of it,
 * ordered after the slot came to this group, gets the same redirect rather than being applied
 * (the client took the first redirect as final and went on with a new tag).
 */
export function redirectsRemembered(): boolean {
  const store = shardStore("b", initialSlotMap(["a", "b"]), undefined);
  const set = { op: { argv: ["SET", "{t2}k", "v"], time: 0 }, tag: { client: "c", seq: 1 } };
  const first = store.apply(set); // slot 4748 is a's: MOVED
  store.apply({ op: { argv: ["__RESHARD", "LOADSLOTMAP", "1", "0", "16383", "b"], time: 0 } });
  return JSON.stringify(store.apply(set)) === JSON.stringify(first);
}

/** The slot map `store` holds (null: the store has none). */
export function shardMapOf(store: KvStore): SlotMap | null {
  return store.slots?.map ?? null;
}

/** What a group's slot state holds beside its map: slots moving out and in, keys in transit. */
export function slotsInFlight(
  store: KvStore,
): { migrating: number; importing: number; transit: number } {
  const slots = store.slots;
  return {
    migrating: slots?.migrating.size ?? 0,
    importing: slots?.importing.size ?? 0,
    transit: slots?.transitSize ?? 0,
  };
}

/** `argv` marked as sent after ASKING (the wrapper the session submits into the order). */
export function asking(argv: ByteString[]): ByteString[] {
  return ["__asking", ...argv];
}

/** The redirect `reply` is, or null. */
export function redirectOf(reply: Reply): Redirect | null {
  if (reply === null || typeof reply !== "object" || !("err" in reply)) return null;
  const m = /^(MOVED|ASK) (\d+) (\S+)$/.exec(reply.err);
  if (m) return { kind: m[1] === "MOVED" ? "moved" : "ask", slot: Number(m[2]), group: m[3] };
  return reply.err.startsWith("TRYAGAIN") ? { kind: "tryagain" } : null;
}

/** `reply` as a RESP client decodes it (what the reshard tool gets from a group). */
export function toRespValue(reply: Reply): RespValue {
  if (reply === null || typeof reply === "string" || typeof reply === "number") return reply;
  if (Array.isArray(reply)) return reply.map(toRespValue);
  if ("err" in reply) return new RespError(reply.err);
  if ("ok" in reply) return reply.ok;
  if ("int" in reply) return Number(reply.int);
  return null;
}
