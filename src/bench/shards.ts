/**
 * The benchmark's view of a sharded cluster (a config file with `group=` lines): its groups with
 * the client addresses of their replicas ({@link shardsOf}), which group owns each of the 16,384
 * hash slots ({@link SlotOwners}: read from a replica's `CLUSTER SLOTS`, or derived from the
 * file as every replica derives its epoch-0 map), the slot of every benchmark key
 * ({@link keySlotTable}); `-MOVED` and `-ASK` replies are read by `parseRedirect`
 * (`src/kv/slots.ts`).
 *
 * A file without groups is one shard of every replica, owning every slot: the load generator
 * routes both the same way.
 *
 * @module
 */
import { type ClusterConfig, groupConfig } from "../config/config.ts";
import { initialSlotMap } from "../kv/slot_map.ts";
import { keySlot, SLOTS } from "../kv/slots.ts";
import { RespConnection } from "../client/connection.ts";
import { RespError, type RespValue } from "../net/resp.ts";
import { targetsOf } from "./cluster.ts";
import type { Target } from "./load.ts";
import { KEY_SPACE_PREFIX, type KeySpace } from "./ops.ts";
import type { RequestEncoder } from "./requests.ts";

/** One replica group: its name and its replicas' client addresses, in id order. */
export interface BenchShard {
  /** The group name (`""` for the one shard of a file without groups). */
  group: string;
  /** Its replicas. */
  targets: Target[];
}

/** The shards of `config`: one per group in file order, or one of every replica without groups. */
export function shardsOf(config: ClusterConfig): BenchShard[] {
  if (config.groups === undefined) return [{ group: "", targets: targetsOf(config) }];
  return config.groups.map((group) => ({ group, targets: targetsOf(groupConfig(config, group)) }));
}

/** The index in `shards` of the group with a replica at `host:port`; -1 when none has. */
export function shardOfAddress(shards: readonly BenchShard[], host: string, port: number): number {
  return shards.findIndex((s) => s.targets.some((t) => t.port === port && t.host === host));
}

/** Which shard (an index into the shard list) owns each slot. */
export interface SlotOwners {
  /** Owner of slot `s` (0..16383); changed in place when a MOVED names another one. */
  owner: Uint16Array;
  /** Where the map came from, for the report: `CLUSTER SLOTS of replica <id>` or `config`. */
  source: string;
}

/** The epoch-0 map every replica derives from the file (see `initialSlotMap`). */
export function configSlotOwners(shards: readonly BenchShard[]): SlotOwners {
  const owner = new Uint16Array(SLOTS);
  if (shards.length > 1) {
    const map = initialSlotMap(shards.map((s) => s.group));
    for (const r of map.ranges) owner.fill(map.groups.indexOf(r.group), r.start, r.end + 1);
  }
  return { owner, source: "config" };
}

/**
 * The owners of a `CLUSTER SLOTS` reply (`[[start, end, [host, port, id], replicas...], ...]`):
 * each range goes to the shard with a replica at its master's address.
 *
 * @throws {Error} when the reply is not that shape, names an address of no shard, or leaves a
 *   slot without an owner.
 */
export function parseClusterSlots(reply: RespValue, shards: readonly BenchShard[]): Uint16Array {
  if (!Array.isArray(reply)) throw new Error("CLUSTER SLOTS: not an array");
  const owner = new Uint16Array(SLOTS).fill(0xffff);
  for (const range of reply) {
    if (!Array.isArray(range) || range.length < 3 || !Array.isArray(range[2])) {
      throw new Error("CLUSTER SLOTS: a range is not [start, end, [host, port, ...], ...]");
    }
    const [start, end, master] = range as [RespValue, RespValue, RespValue[]];
    const host = String(master[0]);
    const port = Number(master[1]);
    if (
      !Number.isInteger(start) || !Number.isInteger(end) || (start as number) < 0 ||
      (end as number) >= SLOTS || (start as number) > (end as number)
    ) {
      throw new Error(`CLUSTER SLOTS: bad range ${start}-${end}`);
    }
    const shard = shardOfAddress(shards, host, port);
    if (shard < 0) {
      throw new Error(`CLUSTER SLOTS: ${host}:${port} is no replica of the config file`);
    }
    owner.fill(shard, start as number, (end as number) + 1);
  }
  const missing = owner.indexOf(0xffff);
  if (missing >= 0) throw new Error(`CLUSTER SLOTS: slot ${missing} has no owner`);
  return owner;
}

/**
 * The slot owners as the first replica that answers `CLUSTER SLOTS` lists them (replicas are
 * asked in file order), else those derived from the file, with the reason in `problems`.
 */
export async function fetchSlotOwners(
  shards: readonly BenchShard[],
  timeoutMs: number,
  problems: string[] = [],
): Promise<SlotOwners> {
  if (shards.length === 1) return configSlotOwners(shards);
  for (const t of shards.flatMap((s) => s.targets)) {
    let conn: RespConnection | undefined;
    try {
      conn = await RespConnection.connect(t.host, t.port, {
        connectTimeoutMs: timeoutMs,
        requestTimeoutMs: timeoutMs,
      });
      const reply = await conn.send(["CLUSTER", "SLOTS"]);
      if (reply instanceof RespError) throw new Error(`-${reply.message}`);
      return {
        owner: parseClusterSlots(reply, shards),
        source: `CLUSTER SLOTS of replica ${t.id}`,
      };
    } catch (err) {
      problems.push(`replica ${t.id}: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      await conn?.close();
    }
  }
  return configSlotOwners(shards);
}

/** The slot of key `i` of key space `space`, for every `i` of `encoder`'s key space. */
export function keySlotTable(encoder: RequestEncoder, space: KeySpace): Uint16Array {
  const table = new Uint16Array(encoder.keys);
  const prefix = KEY_SPACE_PREFIX[space];
  for (let i = 0; i < encoder.keys; i++) table[i] = keySlot(encoder.keyName(i, prefix));
  return table;
}
