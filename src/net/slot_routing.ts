/**
 * Redis Cluster's routing decision for a sharded cluster (replica lines with `group=`): whether
 * this replica's group serves a command line, by the hash slots of its keys.
 *
 * - No keys (PING, INFO, DBSIZE, KEYS, SCAN, FLUSHALL, PUBLISH, ...): served here. As on a Redis
 *   Cluster node, the commands that touch the whole key space act on this group's keys only.
 * - Keys in more than one slot: `-CROSSSLOT Keys in request don't hash to the same slot`.
 * - Keys in one slot that another group owns: `-MOVED <slot> <host>:<port>`, the client address
 *   of that group's master.
 * - Else served here.
 *
 * Keys are found by the command registry's key positions (`keysOf`); WATCH's keys are its
 * arguments, and REQ's those of the command it wraps. A config without groups has no routing at
 * all (every replica serves every slot, and no CROSSSLOT is raised).
 *
 * @module
 */
import type { ByteString, Reply } from "../core/types.ts";
import { COMMANDS } from "../kv/commands/index.ts";
import { arityOk, type CommandSpec, keysOf } from "../kv/registry.ts";
import type { SlotMap } from "../kv/slot_map.ts";
import { keySlot } from "../kv/slots.ts";

/** Redis's error for keys of one request in more than one slot. */
export const CROSSSLOT_ERROR = "CROSSSLOT Keys in request don't hash to the same slot";

/** What routing needs to know about the sharded cluster, as this replica sees it. */
export interface SlotRouting {
  /** This replica's group. */
  readonly group: string;
  /** The slot map in force. */
  map(): SlotMap;
  /** `host:port`: the client address of `group`'s master (the target of MOVED). */
  masterAddress(group: string): string;
}

/**
 * The keys `argv` (a command line whose spec is `spec` and whose arity is right) acts on, for
 * routing: the spec's key positions; WATCH's arguments; REQ's wrapped command's keys (none when
 * that command is unknown or malformed: REQ then answers the error itself).
 */
export function routingKeys(spec: CommandSpec, argv: readonly ByteString[]): ByteString[] {
  if (spec.name === "watch") return argv.slice(1);
  if (spec.name === "req") {
    const inner = argv.length > 3 ? COMMANDS.get(argv[3]) : undefined;
    if (inner === undefined || inner.internal || !arityOk(inner, argv.length - 3)) return [];
    return routingKeys(inner, argv.slice(3));
  }
  return keysOf(spec, argv);
}

/**
 * Where `keys` are served: null here, else the error reply (CROSSSLOT, or MOVED to the owning
 * group's master).
 */
export function routeKeys(keys: readonly ByteString[], routing: SlotRouting): Reply | null {
  if (keys.length === 0) return null;
  const slot = keySlot(keys[0]);
  for (let i = 1; i < keys.length; i++) {
    if (keys[i] !== keys[0] && keySlot(keys[i]) !== slot) return { err: CROSSSLOT_ERROR };
  }
  const owner = routing.map().owner(slot);
  if (owner === routing.group) return null;
  return { err: `MOVED ${slot} ${routing.masterAddress(owner)}` };
}

/** {@link routeKeys} of one command line (see {@link routingKeys}). */
export function routeCommand(
  spec: CommandSpec,
  argv: readonly ByteString[],
  routing: SlotRouting,
): Reply | null {
  return routeKeys(routingKeys(spec, argv), routing);
}
