/**
 * The invariants of a sharded simulation ({@link simulateShards}): each group's own (total order,
 * replay, digests: see invariants.ts), a linearizable history per key across both groups (with the
 * final value of every key as a last read), no key lost or held by two groups, every key at the
 * owner of its slot, slot-map epochs that only grow, and every slot move completed.
 *
 * @module
 */
import { checkLinearizable, type HistoryOp } from "../support/linearizability.ts";
import { modelResult } from "../support/ops.ts";
import { keySlot } from "../../src/kv/slots.ts";
import { checkInvariants } from "./invariants.ts";
import { checkModelLinearizable } from "../support/model_check.ts";
import type { RespValue } from "../../src/net/resp.ts";
import type { ShardSimResult } from "./shard_simulator.ts";
import { shardStore } from "./shard_store.ts";
import { initialSlotMap } from "../../src/kv/slot_map.ts";

/** All violations in `result` (empty when it is correct). */
export function checkShardInvariants(result: ShardSimResult): string[] {
  const out: string[] = [...result.problems];
  if (!result.quiescent) {
    const open = result.requests.filter((r) => r.ret === null).length;
    out.push(`no progress: not settled after ${result.endedAt} ms (${open} operations open)`);
  }
  const groups = [...result.groups.keys()];
  for (const [name, group] of result.groups) {
    const newStore = (founding: typeof group.founding) =>
      shardStore(name, initialSlotMap(groups), founding);
    const violations = checkInvariants(group, {
      allSucceed: false,
      boundedProgress: false,
      newStore,
    })
      .filter((v) => !v.startsWith("no progress")); // reported once above
    out.push(...violations.map((v) => `group ${name}: ${v}`));
  }
  if (result.quiescent && result.movesDone !== result.options.moves) {
    out.push(`${result.movesDone} of ${result.options.moves} slot moves completed`);
  }
  const allMoved = result.quiescent && result.movesDone === result.options.moves;
  if (allMoved) {
    // Every move ended: all groups hold the control group's map, and nothing is left in flight.
    const epoch = result.finalMap?.epoch;
    for (const [name, slots] of result.finalSlots) {
      if (slots.epoch !== epoch || slots.migrating + slots.importing + slots.transit > 0) {
        out.push(
          `group ${name} ends with ${JSON.stringify(slots)}; the control map's epoch is ${epoch}`,
        );
      }
    }
  }
  const finalReads: HistoryOp[] = [];
  for (const [key, at] of result.finalKeys) {
    if (at.size > 1) out.push(`key ${key} is in both groups: ${JSON.stringify([...at])}`);
    const owner = result.finalMap?.owner(keySlot(key));
    for (const group of at.keys()) {
      // Mid-move, the target holds imported keys before it owns the slot: checked once every
      // move ended.
      if (allMoved && owner !== undefined && group !== owner) {
        out.push(`key ${key} is in group ${group}, but slot ${keySlot(key)} is ${owner}'s`);
      }
    }
    if (!result.quiescent) continue;
    // Without the control group's map (no serving replica), the one group holding it, if any.
    const value = owner !== undefined
      ? at.get(owner)
      : at.size === 1
      ? [...at.values()][0]
      : undefined;
    // What a read of the key at the end must see: its last write, wherever it happened.
    finalReads.push({
      client: -1,
      op: { kind: "get", key },
      call: result.endedAt,
      ret: result.endedAt,
      result: modelResult("get", value ?? null),
    });
  }
  if (result.requests.some((r) => r.op === null)) {
    out.push(...checkDataModel(result, finalReads));
    return out;
  }
  const history: HistoryOp[] = result.requests.flatMap((r) =>
    r.op === null ? [] : [{
      client: r.client,
      op: r.op,
      call: r.call,
      ret: r.ret,
      result: r.ret === null || r.result === undefined
        ? undefined
        : modelResult(r.op.kind, r.result),
    }]
  );
  const lin = checkLinearizable([...history, ...finalReads]);
  if (!lin.ok) {
    const trail = result.requests.filter((r) => r.op?.key === lin.key)
      .map((r) =>
        `  c${r.client} ${JSON.stringify(r.op)} [${r.call}, ${r.ret}]: ${r.trail.join("; ")}`
      );
    out.push(`history of key ${lin.key} not linearizable: ${lin.message}\n${trail.join("\n")}`);
  }
  return out;
}

/**
 * The data-model workload: the whole history (and every key's final value, read last) against
 * the state machine as the sequential model.
 */
function checkDataModel(result: ShardSimResult, finalReads: HistoryOp[]): string[] {
  const lin = checkModelLinearizable([
    ...result.requests.map((r) => ({
      client: r.client,
      argv: r.argv,
      call: r.call,
      ret: r.ret,
      reply: r.result as RespValue | undefined,
    })),
    ...finalReads.map((read) => ({
      client: read.client,
      argv: ["GET", read.op.key],
      call: read.call,
      ret: read.ret,
      reply: read.result?.kind === "value" ? read.result.value : null,
    })),
  ]);
  if (lin.ok) return [];
  const trail = result.requests.map((r) =>
    `  c${r.client} ${r.argv.join(" ").slice(0, 80)} [${r.call}, ${r.ret}]: ${r.trail.join("; ")}`
  );
  return [`history not linearizable: ${lin.message}\n${trail.join("\n")}`];
}
