/**
 * The shards of the cluster as this replica sees them, for the `CLUSTER` replies and for MOVED:
 * each shard is one replica group with its slot ranges, its master and its replicas.
 *
 * - Without groups in the config file there is one shard, this replica set, owning every slot.
 * - With groups (`group=<name>`), one shard per group, owning its ranges of this group's
 *   replicated copy of the slot map (`src/kv/slot_state.ts`: it changes as slots move). This
 *   replica's own group is described from its replicated state
 *   (members in force, view); the other groups, which are replica sets of their own and never
 *   talk to this one, from the config file and a {@link GroupProbe} of their client ports.
 *
 * A shard's master: for this replica's group, the leader of its view (its lowest id; every
 * replica of the group names the same one), else the first voter of the configuration in force;
 * for another group, its lowest-id replica that answers the probe (the leader that group names
 * itself while its lowest ids are up), or its lowest id before any probe answered. Every voter
 * of a group accepts writes, so a client sent to any of them is served.
 *
 * @module
 */
import type { ReplicaId, ReplicaStatus } from "../core/types.ts";
import type { Membership } from "../core/membership.ts";
import { clusterId, groupConfig, type Sharding } from "../config/config.ts";
import type { SlotState } from "../kv/slot_state.ts";
import { SLOTS } from "../kv/slots.ts";
import type { SlotRouting } from "../net/slot_routing.ts";
import type { MemberAddress } from "../kv/replica_set.ts";
import type { MemberRow } from "./replica_set_host.ts";
import { GroupProbe, type MapFollowing } from "./group_probe.ts";

/** One node of a shard: where it listens (its HTTP port aside), and whether it is up. */
export interface ShardNode extends Omit<MemberAddress, "httpPort"> {
  /** Serving as far as this replica knows (in its view; for another group: answers probes). */
  online: boolean;
}

/** One shard: a replica group, its slots, master and replicas. */
export interface Shard {
  /** The group name (undefined: the one shard of a file without groups). */
  group: string | undefined;
  /** The cluster id its node ids are made of (see {@link nodeId}). */
  clusterId: string;
  /** Its slot ranges, `[start, end]`, ascending. */
  ranges: [number, number][];
  /** Its master (undefined while this replica knows no member of its own group yet). */
  master: ShardNode | undefined;
  /** Its other members and learners. */
  replicas: ShardNode[];
  /** This replica's own group. */
  mine: boolean;
  /** Entries delivered (CLUSTER SHARDS' replication offset; 0 for another group: unknown). */
  offset: number;
  /** Its view's epoch (CLUSTER NODES' config epoch; 0 for another group: unknown). */
  epoch: number;
  /** Slots this group moves out: `[slot, the target's master node id]` (own group only). */
  migrating?: [number, string][];
  /** Slots this group receives: `[slot, the source's master node id]` (own group only). */
  importing?: [number, string][];
}

/** What {@link Shards} needs from its replica. */
export interface ShardsDeps {
  id: ReplicaId;
  /** The members of this replica's group (`REPLICASET MEMBERS`' rows). */
  rows(): MemberRow[];
  /** The core's standing. */
  standing(): { state: ReplicaStatus["state"]; view: number; members: readonly ReplicaId[] };
  /** The core's membership. */
  membership(): Membership;
  /** Entries delivered here. */
  delivered(): number;
  /** The cluster id kept in the data directory (the node ids of a file without groups). */
  clusterId: string;
  /**
   * The whole config file and this replica's group, for a sharded cluster (absent: a file
   * without groups).
   */
  sharding?: Sharding;
  /** The group's replicated slot state (sharded only: the map, migrating and importing slots). */
  slots?: () => SlotState | undefined;
  /**
   * Submits `CLUSTER LOADSLOTMAP <args>` into this group's order (the probe's newer maps of the
   * control group; absent: not followed). Resolves when answered.
   */
  loadMap?: (args: string[]) => Promise<void>;
}

/** A node id: 40 hex digits, 16 of the cluster id then the replica id. */
export function nodeId(cluster: string, id: ReplicaId): string {
  const hex = cluster.replace(/[^0-9a-f]/gi, "").toLowerCase();
  return hex.slice(0, 16).padEnd(16, "0") + id.toString(16).padStart(24, "0");
}

/** A sharded cluster as one replica sees it: the whole file, its group, its slots, the probe. */
interface ShardedState extends Sharding {
  /** The group's replicated slot state. */
  slots: () => SlotState;
  /** The other groups' replicas' liveness. */
  probe: GroupProbe;
  /** Each group's cluster id (computed from its lines of the file), by group. */
  groupIds: Map<string, string>;
}

/** The shards of the cluster, as one replica sees them. */
export class Shards {
  readonly #deps: ShardsDeps;
  /** Undefined: a file without groups. */
  readonly #sharding: ShardedState | undefined;

  /**
   * The shards of `deps`; a sharded one probes the other groups once {@link start}ed (and, in a
   * group other than the control group, follows the control group's slot map).
   *
   * @throws {Error} when `deps.sharding` has groups but `deps.slots` gives no slot state.
   */
  constructor(deps: ShardsDeps) {
    this.#deps = deps;
    const sharding = deps.sharding;
    const groups = sharding?.config.groups;
    const slots = deps.slots;
    if (sharding === undefined || groups === undefined) return;
    if (slots?.() === undefined) throw new Error("a sharded replica's store has no slot state");
    this.#sharding = {
      ...sharding,
      slots: () => slots()!,
      probe: new GroupProbe({
        targets: sharding.config.replicas.filter((r) => r.group !== sharding.group),
        follow: this.#following(sharding, slots()!, deps.loadMap),
      }),
      groupIds: new Map(groups.map((g) => [g, clusterId(groupConfig(sharding.config, g))])),
    };
  }

  /** How a non-control group follows the control group's map (undefined: it does not). */
  #following(
    sharding: Sharding,
    state: SlotState,
    loadMap: ((args: string[]) => Promise<void>) | undefined,
  ): MapFollowing | undefined {
    if (loadMap === undefined || state.control === sharding.group) return undefined;
    return {
      sources: sharding.config.replicas.filter((r) => r.group === state.control),
      epoch: () => state.map.epoch,
      load: loadMap,
    };
  }

  /** Starts probing the other groups (sharded only). */
  start(): void {
    this.#sharding?.probe.start();
  }

  /** Stops probing. */
  stop(): void {
    this.#sharding?.probe.stop();
  }

  /** The routing of a sharded cluster for the client sessions (undefined: not sharded). */
  routing(): SlotRouting | undefined {
    const sharding = this.#sharding;
    if (sharding === undefined) return undefined;
    return {
      group: sharding.group,
      map: () => sharding.slots().map,
      moving: (slot) => sharding.slots().moving(slot),
      askingStamp: () => sharding.slots().askingStamp,
      masterAddress: (group) => {
        const master = this.#foreign(sharding, group).master;
        return master === undefined ? "?:0" : `${master.host}:${master.clientPort}`;
      },
    };
  }

  /** Every shard, in slot order (this replica's own shard among them). */
  all(): Shard[] {
    const sharding = this.#sharding;
    if (sharding === undefined) {
      return [{ ...this.#own(), group: undefined, clusterId: this.#deps.clusterId }];
    }
    const slots = sharding.slots();
    const map = slots.map;
    return map.groups.map((group) => {
      const ranges = map.rangesOf(group).map((r): [number, number] => [r.start, r.end]);
      const shard = group === sharding.group ? this.#own() : this.#foreign(sharding, group);
      const moving = group === sharding.group ? this.#moving(sharding, slots) : {};
      return { ...shard, group, clusterId: sharding.groupIds.get(group)!, ranges, ...moving };
    }).sort((a, b) => (a.ranges[0]?.[0] ?? SLOTS) - (b.ranges[0]?.[0] ?? SLOTS));
  }

  /** This group's migrating and importing slots, with the other group's master's node id. */
  #moving(sharding: ShardedState, slots: SlotState): Pick<Shard, "migrating" | "importing"> {
    const masterId = (group: string) => {
      const master = this.#foreign(sharding, group).master;
      return master === undefined ? "-" : nodeId(sharding.groupIds.get(group)!, master.id);
    };
    const list = (m: ReadonlyMap<number, string>): [number, string][] =>
      [...m].sort((a, b) => a[0] - b[0]).map(([slot, g]) => [slot, masterId(g)]);
    return { migrating: list(slots.migrating), importing: list(slots.importing) };
  }

  /** This replica's group: its view's leader as master, the other members and learners after. */
  #own(): Omit<Shard, "group" | "clusterId"> {
    const rows = this.#deps.rows().filter((r) => r.role !== "joining");
    const s = this.#deps.standing();
    const leader = s.state === "normal" && s.members.length > 0
      ? Math.min(...s.members)
      : this.#deps.membership().voters[0];
    const master = rows.find((r) => r.id === leader);
    const node = (r: MemberRow) => shardNode(r, r.state === "in-view");
    return {
      ranges: [[0, SLOTS - 1]],
      master: master === undefined ? undefined : node(master),
      replicas: rows.filter((r) => r !== master).map(node),
      mine: true,
      offset: this.#deps.delivered(),
      epoch: Math.max(0, s.view),
    };
  }

  /** Another group, from the file and the probe: its lowest online id as master. */
  #foreign(sharding: ShardedState, group: string): Omit<Shard, "group" | "clusterId"> {
    const nodes = sharding.config.replicas.filter((r) => r.group === group)
      .map((r) => shardNode(r, sharding.probe.online(r.id) ?? true));
    const master = nodes.find((n) => n.online) ?? nodes[0];
    return {
      ranges: [],
      master,
      replicas: nodes.filter((n) => n !== master),
      mine: false,
      offset: 0,
      epoch: 0,
    };
  }
}

/** A shard node at `address` (a member row or a config line). */
function shardNode(address: MemberAddress, online: boolean): ShardNode {
  const { id, host, clientPort, peerPort } = address;
  return { id, host, clientPort, peerPort, online };
}
