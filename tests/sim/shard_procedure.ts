/**
 * A stand-in for the reshard tool (`src/client/reshard.ts` on branch `reshard`, same signature):
 * the design's procedure (/work/reshard_design.md, "The reshard procedure") against groups
 * reached through {@link SimCluster}. An error reply throws (a failed step); every step is
 * idempotent, so a killed or failed run is resumed by running it again.
 *
 * @module
 */
import type { ByteString } from "../../src/core/types.ts";
import { SlotMap, type SlotRange } from "../../src/kv/slot_map.ts";
import { RespError, type RespValue } from "../../src/net/resp.ts";

/** The groups of a sharded cluster as the procedure talks to them (control group first). */
export interface SimCluster {
  readonly groups: readonly string[];
  link(name: string): { call(argv: ByteString[]): Promise<RespValue> };
}

/**
 * Gives slots `start`..`end` to group `to`: pushes the control group's map to every group (the
 * end of a stopped run), then for each part owned by another group A: `to` IMPORTING A, A
 * MIGRATING `to`, batches of MIGRATEKEYS / IMPORTKEYS / MIGRATEDONE until A has none left,
 * control NODE `to`, and every group loads the control group's map (`to` first, then A).
 *
 * @throws {Error} on an error or unexpected reply.
 */
export async function reshard(
  cluster: SimCluster,
  slots: { start: number; end: number },
  to: string,
  options: { batch: number },
): Promise<{ epoch: number }> {
  const call = async (group: string, argv: ByteString[]) => {
    const reply = await cluster.link(group).call(argv);
    if (reply instanceof RespError) throw new Error(`${group}: ${argv[1]}: ${reply.message}`);
    return reply;
  };
  const control = cluster.groups[0];
  const controlMap = async () =>
    parseSlotMap(await call(control, ["CLUSTER", "SLOTMAP"]), cluster.groups);
  const publish = async (map: SlotMap, first: string[]) => {
    const load = [
      "CLUSTER",
      "LOADSLOTMAP",
      `${map.epoch}`,
      ...map.ranges.flatMap((r) => [`${r.start}`, `${r.end}`, r.group]),
    ];
    for (const group of new Set([...first, ...cluster.groups])) {
      if (group !== control) await call(group, load);
    }
  };
  let map = await controlMap();
  await publish(map, []);
  const parts = map.ranges.flatMap((r) => {
    const start = Math.max(r.start, slots.start);
    const end = Math.min(r.end, slots.end);
    return start <= end && r.group !== to ? [{ start, end, from: r.group }] : [];
  });
  for (const { start, end, from } of parts) {
    const range = start === end ? `${start}` : `${start}-${end}`;
    await call(to, ["CLUSTER", "SETSLOT", range, "IMPORTING", from]);
    await call(from, ["CLUSTER", "SETSLOT", range, "MIGRATING", to]);
    for (;;) {
      const reply = await call(from, ["CLUSTER", "MIGRATEKEYS", range, `${options.batch}`]);
      if (!Array.isArray(reply) || reply.length % 2 !== 1) {
        throw new Error(`MIGRATEKEYS: unexpected reply ${JSON.stringify(reply)}`);
      }
      const [id, ...pairs] = reply.map(String);
      if (pairs.length === 0) break;
      await call(to, ["CLUSTER", "IMPORTKEYS", from, id, ...pairs]);
      await call(from, ["CLUSTER", "MIGRATEDONE", id]);
    }
    await call(control, ["CLUSTER", "SETSLOT", range, "NODE", to]);
    map = await controlMap();
    await publish(map, [to, from]);
  }
  return { epoch: map.epoch };
}

/** Parses a `CLUSTER SLOTMAP` reply: `[epoch, [start, end, group], ...]`. */
function parseSlotMap(reply: RespValue, groups: readonly string[]): SlotMap {
  if (!Array.isArray(reply) || reply.length < 2) {
    throw new Error(`CLUSTER SLOTMAP: unexpected reply ${JSON.stringify(reply)}`);
  }
  const [epoch, ...rows] = reply;
  const ranges: SlotRange[] = rows.map((row) => {
    if (!Array.isArray(row) || row.length !== 3) {
      throw new Error(`CLUSTER SLOTMAP: bad range ${JSON.stringify(row)}`);
    }
    return { start: Number(row[0]), end: Number(row[1]), group: String(row[2]) };
  });
  return new SlotMap(Number(epoch), groups, ranges);
}
