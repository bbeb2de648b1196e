/**
 * Redis Cluster's routing decision for a sharded cluster (replica lines with `group=`): whether
 * this replica's group serves a command line, by the hash slots of its keys.
 *
 * - No keys (PING, INFO, DBSIZE, KEYS, SCAN, FLUSHALL, PUBLISH, ...): served here. As on a Redis
 *   Cluster node, the commands that touch the whole key space act on this group's keys only.
 * - Keys in more than one slot: `-CROSSSLOT Keys in request don't hash to the same slot`.
 * - Keys in one slot that another group owns (per this group's replicated copy of the slot map)
 *   and that is not moving (importing here, or handed over from here):
 *   `-MOVED <slot> <host>:<port>`, the client address of that
 *   group's master.
 * - Else the command goes into the order, where the state machine decides again, for good
 *   (`src/kv/slot_state.ts`: MOVED, ASK, TRYAGAIN while a slot moves). Its redirects name a
 *   group; {@link addressRedirect} turns the group into its master's address.
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
import { commonSlot } from "../kv/slots.ts";
import { CROSSSLOT_ERROR } from "../kv/slot_state.ts";

export { CROSSSLOT_ERROR };

/** What routing needs to know about the sharded cluster, as this replica sees it. */
export interface SlotRouting {
  /** This replica's group. */
  readonly group: string;
  /** The slot map in force (this group's replicated copy). */
  map(): SlotMap;
  /**
   * True while `slot` is importing into this group or handed over from it (`SlotState.moving`):
   * its commands go into the order, where the state machine decides.
   */
  moving(slot: number): boolean;
  /** The stamp of a command read after `ASKING` (`SlotState.askingStamp` of this replica). */
  askingStamp(): number;
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
  const slot = commonSlot(keys);
  if (slot === undefined) return null;
  if (slot === null) return { err: CROSSSLOT_ERROR };
  const owner = routing.map().owner(slot);
  if (owner === routing.group || routing.moving(slot)) return null;
  return { err: `MOVED ${slot} ${routing.masterAddress(owner)}` };
}

/**
 * A reply of the state machine with the group of its redirect (`MOVED <slot> <group>`,
 * `ASK <slot> <group>`) replaced by that group's master's address; any other reply as it is.
 */
export function addressRedirect(reply: Reply, routing: SlotRouting): Reply {
  if (reply === null || typeof reply !== "object" || !("err" in reply)) return reply;
  const m = /^(MOVED|ASK) ([0-9]+) ([A-Za-z0-9_-]+)$/.exec(reply.err);
  if (m === null || !routing.map().groups.includes(m[3])) return reply;
  return { err: `${m[1]} ${m[2]} ${routing.masterAddress(m[3])}` };
}

/** {@link routeKeys} of one command line (see {@link routingKeys}). */
export function routeCommand(
  spec: CommandSpec,
  argv: readonly ByteString[],
  routing: SlotRouting,
): Reply | null {
  return routeKeys(routingKeys(spec, argv), routing);
}
