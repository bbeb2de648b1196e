/**
 * What the sharded simulation needs of the server side of online resharding, in one place: a
 * replica's state machine for a group of a sharded cluster, the ASKING wrapper, and the redirects
 * it answers with (the state machine names the group; the host would turn it into an address).
 *
 * @module
 */
import type { ByteString, Command, Reply } from "../../src/core/types.ts";
import { RespError, type RespValue } from "../../src/net/resp.ts";
import { KvStore } from "../../src/kv/store.ts";
import type { SlotMap } from "../../src/kv/slot_map.ts";
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

/**
 * `argv` marked as sent after ASKING, as a client sends it; the replica that reads it stamps it
 * ({@link stampAsking}).
 */
export function asking(argv: ByteString[]): ByteString[] {
  return ["__asking", ...argv];
}

/**
 * `cmd` as a replica's session submits it when it reads it: a command marked by {@link asking}
 * gets the stamp of `store` then (`__ASKING <stamp> <command> ...`, see `SlotState.askingStamp`).
 */
export function stampAsking(store: KvStore, cmd: Command): Command {
  const argv = cmd.op.argv;
  if (argv[0] !== "__asking") return cmd;
  const stamp = String(store.slots?.askingStamp ?? 0);
  return { ...cmd, op: { ...cmd.op, argv: ["__ASKING", stamp, ...argv.slice(1)] } };
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
