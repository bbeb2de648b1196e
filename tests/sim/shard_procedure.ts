/**
 * The reshard procedure of the design (docs: /work/reshard_design.md, "The reshard procedure"),
 * written as a generator of steps so that a simulation can drive it on its event queue: each
 * yielded {@link Step} is a command for one group, and the generator resumes with its reply.
 * An error reply throws (a failed step); since every step is idempotent, the caller resumes a
 * killed or failed run by starting the procedure again from scratch.
 *
 * @module
 */
import type { ByteString, Reply } from "../../src/core/types.ts";
import { SlotMap, type SlotRange } from "../../src/kv/slot_map.ts";

/** Move slots `start`..`end` (inclusive) to group `to`. */
export interface Move {
  start: number;
  end: number;
  to: string;
}

/** One command of the procedure, for one group. */
export interface Step {
  group: string;
  argv: ByteString[];
}

/**
 * Runs `move`: reads the control group's map, and for each part of the range owned by another
 * group A (target B): B IMPORTING A, A MIGRATING B, batches of MIGRATEKEYS / IMPORTKEYS /
 * MIGRATEDONE until A has none left, control NODE B. Then every group (B first, then A, then the
 * rest) loads the control group's map. Returns that map.
 *
 * @throws {Error} on an error reply (the step failed; run the procedure again).
 */
export function* reshard(
  move: Move,
  control: string,
  groups: readonly string[],
  batch: number,
): Generator<Step, SlotMap, Reply> {
  let map = parseSlotMap(yield { group: control, argv: ["CLUSTER", "SLOTMAP"] }, groups);
  const parts = map.ranges.flatMap((r) => {
    const start = Math.max(r.start, move.start);
    const end = Math.min(r.end, move.end);
    return start <= end && r.group !== move.to ? [{ start, end, group: r.group }] : [];
  });
  for (const part of parts) {
    const slots = part.start === part.end ? `${part.start}` : `${part.start}-${part.end}`;
    const from = part.group;
    const to = move.to;
    ok(yield { group: to, argv: ["CLUSTER", "SETSLOT", slots, "IMPORTING", from] });
    ok(yield { group: from, argv: ["CLUSTER", "SETSLOT", slots, "MIGRATING", to] });
    for (;;) {
      const reply = ok(
        yield {
          group: from,
          argv: ["CLUSTER", "MIGRATEKEYS", slots, `${batch}`],
        },
      );
      if (!Array.isArray(reply) || reply.length < 1 || reply.length % 2 !== 1) {
        throw new Error(`MIGRATEKEYS: unexpected reply ${JSON.stringify(reply)}`);
      }
      const [id, ...pairs] = reply.map(String);
      if (pairs.length === 0) break;
      ok(yield { group: to, argv: ["CLUSTER", "IMPORTKEYS", from, id, ...pairs] });
      ok(yield { group: from, argv: ["CLUSTER", "MIGRATEDONE", id] });
    }
    ok(yield { group: control, argv: ["CLUSTER", "SETSLOT", slots, "NODE", to] });
  }
  map = parseSlotMap(yield { group: control, argv: ["CLUSTER", "SLOTMAP"] }, groups);
  const load = [
    "CLUSTER",
    "LOADSLOTMAP",
    `${map.epoch}`,
    ...map.ranges.flatMap((r) => [`${r.start}`, `${r.end}`, r.group]),
  ];
  const sources = parts.map((p) => p.group);
  const order = [
    move.to,
    ...groups.filter((g) => sources.includes(g) && g !== move.to),
    ...groups.filter((g) => !sources.includes(g) && g !== move.to),
  ];
  for (const group of order) ok(yield { group, argv: load });
  return map;
}

/** `reply`, unless it is an error (then the step failed). */
function ok(reply: Reply): Reply {
  if (reply !== null && typeof reply === "object" && "err" in reply) {
    throw new Error(reply.err);
  }
  return reply;
}

/** Parses a `CLUSTER SLOTMAP` reply: `[epoch, [start, end, group], ...]`. */
export function parseSlotMap(reply: Reply, groups: readonly string[]): SlotMap {
  ok(reply);
  if (!Array.isArray(reply) || reply.length < 2) {
    throw new Error(`CLUSTER SLOTMAP: unexpected reply ${JSON.stringify(reply)}`);
  }
  const [epoch, ...rows] = reply;
  const ranges: SlotRange[] = rows.map((row) => {
    if (!Array.isArray(row) || row.length !== 3) {
      throw new Error(`CLUSTER SLOTMAP: bad range ${JSON.stringify(row)}`);
    }
    return { start: intOf(row[0]), end: intOf(row[1]), group: String(row[2]) };
  });
  return new SlotMap(intOf(epoch), groups, ranges);
}

/** An integer reply (a number, or a RESP integer kept as a string). */
function intOf(reply: Reply): number {
  const n = reply !== null && typeof reply === "object" && "int" in reply
    ? Number(reply.int)
    : Number(reply);
  if (!Number.isInteger(n)) throw new Error(`not an integer: ${JSON.stringify(reply)}`);
  return n;
}
