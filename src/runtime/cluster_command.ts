/**
 * `CLUSTER <subcommand>`: Redis Cluster's view of the cluster, so that cluster-aware clients
 * (`redis-cli -c`, ioredis's Cluster, node-redis's createCluster) work against lamportkv. The
 * shards come from {@link Shards}: one owning every slot without groups, one per replica group
 * with them. `SLOTS`, `SHARDS`, `NODES`, `INFO` and `MYID` answer in Redis's formats;
 * `KEYSLOT` is Redis's hash; `COUNTKEYSINSLOT` and `GETKEYSINSLOT` are reads of this replica's
 * group, in its order.
 *
 * Online resharding (a sharded cluster only): `SETSLOT`, `LOADSLOTMAP`, `MIGRATEKEYS`,
 * `IMPORTKEYS` and `MIGRATEDONE` are writes into this group's order (`__RESHARD`, checked and
 * applied by the state machine, `src/kv/commands/slots.ts`), `SLOTMAP` a read of its copy of the
 * slot map.
 *
 * @module
 */
import type { ByteString, Command, Outcome, ReplicaId, Reply } from "../core/types.ts";
import { err } from "../kv/reply.ts";
import { keySlot, SLOTS } from "../kv/slots.ts";
import { NO_CLUSTER } from "../kv/commands/slots.ts";
import { nodeId, type Shard, type ShardNode, type Shards } from "./shards.ts";

/** What the CLUSTER command needs from its replica. */
export interface ClusterCommandDeps {
  id: ReplicaId;
  /** The cluster's shards as this replica sees them. */
  shards: Shards;
  /** True while this replica serves (normal in a view). */
  serving(): boolean;
  /** Submits an operation into the order (the slot reads). */
  submit(cmd: Command, respond: (outcome: Outcome) => void): void;
  /** Wall-clock ms stamped on operations. */
  now(): number;
  /** True in a sharded cluster (the resharding subcommands exist only there). */
  sharded: boolean;
}

/** The resharding subcommands: their least number of words (CLUSTER and the name included). */
const RESHARD_ARITY: Readonly<Record<string, number>> = {
  SETSLOT: 4,
  LOADSLOTMAP: 6,
  MIGRATEKEYS: 4,
  IMPORTKEYS: 6,
  MIGRATEDONE: 3,
};

/** Answers `CLUSTER <subcommand> ...` (see the module documentation). */
export function clusterCommand(
  deps: ClusterCommandDeps,
  argv: ByteString[],
  respond: (reply: Reply) => void,
): void {
  const sub = (argv[1] ?? "").toUpperCase();
  const submit = (op: ByteString[]) =>
    deps.submit({ op: { argv: op, time: deps.now() } }, (outcome) => {
      respond(outcome.ok ? outcome.result : err(`${outcome.code} ${outcome.message}`));
    });
  if (Object.hasOwn(RESHARD_ARITY, sub) || sub === "SLOTMAP") {
    if (!deps.sharded) return respond(err(NO_CLUSTER));
    const least = RESHARD_ARITY[sub] ?? 2;
    if (argv.length < least || (sub === "SLOTMAP" && argv.length !== 2)) {
      return respond(
        err(`ERR wrong number of arguments for 'cluster|${sub.toLowerCase()}' command`),
      );
    }
    return submit(sub === "SLOTMAP" ? ["__SLOTMAP"] : ["__RESHARD", ...argv.slice(1)]);
  }
  switch (sub) {
    case "KEYSLOT":
      return respond(keySlot(argv[2]));
    case "COUNTKEYSINSLOT":
    case "GETKEYSINSLOT": {
      if (!/^[0-9]+$/.test(argv[2]) || Number(argv[2]) >= SLOTS) {
        return respond(err("ERR Invalid slot"));
      }
      const get = sub === "GETKEYSINSLOT";
      if (get && !/^[0-9]+$/.test(argv[3])) {
        return respond(err("ERR Invalid number of keys"));
      }
      return submit(
        get ? ["__SLOTKEYS", "GET", argv[2], argv[3]] : ["__SLOTKEYS", "COUNT", argv[2]],
      );
    }
    case "MYID": {
      const mine = deps.shards.all().find((s) => s.mine)!;
      return respond(nodeId(mine.clusterId, deps.id));
    }
    case "SLOTS":
      return respond(slotsReply(deps.shards.all()));
    case "SHARDS":
      return respond(shardsReply(deps.shards.all()));
    case "NODES":
      return respond(nodesReply(deps.shards.all(), deps.id));
    case "INFO":
      return respond(infoReply(deps.shards.all(), deps.serving()));
    case "HELP":
      return respond(CLUSTER_HELP);
    default:
      return respond(
        err(`ERR unknown subcommand '${(argv[1] ?? "").slice(0, 128)}'. Try CLUSTER HELP.`),
      );
  }
}

/** `CLUSTER SLOTS`: per slot range, `[start, end, master, ...replicas]`, ascending. */
export function slotsReply(shards: Shard[]): Reply {
  const node = (s: Shard, n: ShardNode): Reply => [
    n.host,
    n.clientPort,
    nodeId(s.clusterId, n.id),
    [],
  ];
  const rows: { start: number; reply: Reply }[] = [];
  for (const s of shards) {
    if (s.master === undefined) continue;
    for (const [start, end] of s.ranges) {
      rows.push({
        start,
        reply: [start, end, node(s, s.master), ...s.replicas.map((r) => node(s, r))],
      });
    }
  }
  return rows.sort((a, b) => a.start - b.start).map((r) => r.reply);
}

/** `CLUSTER SHARDS`: per shard, its `slots` (flat start/end pairs) and `nodes`. */
export function shardsReply(shards: Shard[]): Reply {
  const node = (s: Shard, n: ShardNode, role: string): Reply => [
    "id",
    nodeId(s.clusterId, n.id),
    "port",
    n.clientPort,
    "ip",
    n.host,
    "endpoint",
    n.host,
    "role",
    role,
    "replication-offset",
    s.offset,
    "health",
    n.online ? "online" : "fail",
  ];
  return shards.filter((s) => s.master !== undefined).map((s) => [
    "slots",
    s.ranges.flat(),
    "nodes",
    [node(s, s.master!, "master"), ...s.replicas.map((r) => node(s, r, "replica"))],
  ]);
}

/**
 * `CLUSTER NODES`: one line per node, `<id> <ip:port@cport> <flags> <master> <ping-sent>
 * <pong-recv> <config-epoch> <link-state> [<slot range> ...]`.
 */
export function nodesReply(shards: Shard[], self: ReplicaId): Reply {
  let text = "";
  for (const s of shards) {
    if (s.master === undefined) continue;
    const masterId = nodeId(s.clusterId, s.master.id);
    const line = (n: ShardNode, role: string) =>
      [
        nodeId(s.clusterId, n.id),
        `${n.host}:${n.clientPort}@${n.peerPort}`,
        (s.mine && n.id === self ? "myself," : "") + role + (n.online ? "" : ",fail"),
        role === "master" ? "-" : masterId,
        0,
        0,
        s.epoch,
        n.online ? "connected" : "disconnected",
        ...(role === "master" ? s.ranges.map(([a, b]) => a === b ? `${a}` : `${a}-${b}`) : []),
        ...(role === "master" ? movingSlots(s) : []),
      ].join(" ") + "\n";
    text += line(s.master, "master") + s.replicas.map((r) => line(r, "slave")).join("");
  }
  return text;
}

/** Redis's `[slot->-<target id>]` and `[slot-<-<source id>]` of a master's CLUSTER NODES line. */
function movingSlots(s: Shard): string[] {
  return [
    ...(s.migrating ?? []).map(([slot, id]) => `[${slot}->-${id}]`),
    ...(s.importing ?? []).map(([slot, id]) => `[${slot}-<-${id}]`),
  ];
}

/** `CLUSTER INFO`: the cluster's state, slots, nodes and epochs. */
export function infoReply(shards: Shard[], serving: boolean): Reply {
  let assigned = 0;
  let ok = 0;
  let known = 0;
  let size = 0;
  for (const s of shards) {
    const count = s.ranges.reduce((n, [a, b]) => n + b - a + 1, 0);
    if (s.master === undefined) continue;
    known += 1 + s.replicas.length;
    if (count > 0) size++;
    assigned += count;
    if (s.mine ? serving : s.master.online) ok += count;
  }
  const epoch = shards.find((s) => s.mine)?.epoch ?? 0;
  return [
    "cluster_enabled:1",
    `cluster_state:${serving && ok === SLOTS ? "ok" : "fail"}`,
    `cluster_slots_assigned:${assigned}`,
    `cluster_slots_ok:${ok}`,
    "cluster_slots_pfail:0",
    `cluster_slots_fail:${assigned - ok}`,
    `cluster_known_nodes:${known}`,
    `cluster_size:${size}`,
    `cluster_current_epoch:${epoch}`,
    `cluster_my_epoch:${epoch}`,
    "cluster_stats_messages_sent:0",
    "cluster_stats_messages_received:0",
    "total_cluster_links_buffer_limit_exceeded:0",
  ].join("\r\n") + "\r\n";
}

const CLUSTER_HELP: Reply = [
  "CLUSTER <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
  "KEYSLOT <key>",
  "    Return the hash slot for <key>.",
  "COUNTKEYSINSLOT <slot>",
  "    Return the number of keys in <slot>.",
  "GETKEYSINSLOT <slot> <count>",
  "    Return key names stored by this replica set in a slot.",
  "MYID",
  "    Return the node id.",
  "SLOTS",
  "    Return information about slots range mappings (each replica group's ranges).",
  "SHARDS",
  "    Return information about the shards (replica groups): their slots and nodes.",
  "NODES",
  "    Return cluster configuration seen by this node.",
  "INFO",
  "    Return information about the cluster.",
  "SETSLOT <slot>|<start>-<end> (IMPORTING <group>|MIGRATING <group>|STABLE|NODE <group>)",
  "        [EPOCH <epoch>]",
  "    Online resharding (groups, not node ids): IMPORTING from <group> (at the target),",
  "    MIGRATING to <group> (at the source), STABLE clears both, NODE assigns the slots to <group>",
  "    in the authoritative map (control group only; returns the new epoch). With EPOCH: refused",
  "    unless this group's map is at <epoch> (a step of an older move, delivered late).",
  "SLOTMAP",
  "    Return this group's copy of the slot map: [epoch, [start, end, group], ...].",
  "LOADSLOTMAP <epoch> <start> <end> <group> [<start> <end> <group> ...]",
  "    Adopt the slot map when <epoch> is higher than this group's (1); the same map again ends",
  "    this group's hand-overs of slots it gave away (0); an older one does nothing (0).",
  "MIGRATEKEYS <slot>|<start>-<end> <count>",
  "    Move up to <count> keys of migrating slots into transit: [batch-id, key, payload, ...].",
  "IMPORTKEYS <source-group> <batch-id> [EPOCH <epoch>] <key> <payload> [<key> <payload> ...]",
  "    Set keys of slots importing from <source-group> (a batch is applied once; EPOCH as above).",
  "MIGRATEDONE <batch-id>",
  "    Drop an in-transit batch once imported: returns the number of keys dropped.",
  "HELP",
  "    Print this help.",
].map((line) => ({ ok: line }));
