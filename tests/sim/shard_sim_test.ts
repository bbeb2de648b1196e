/**
 * Seeded simulations of online resharding: two replica groups with their own faults (crashes,
 * restarts, pauses, partitions of a minority, link flaps) on one event queue, clients routing
 * keys by slot (MOVED, ASK, TRYAGAIN), and a migrator moving slot ranges back and forth with the
 * reshard procedure, killed and rerun at random. 1,000 seeds, each checked with
 * {@link checkShardInvariants}; a failing seed is printed with the command that reruns it.
 *
 * Environment: SIM_SEED=<n> runs that seed only; SIM_SEEDS=<n> sets how many seeds;
 * SIM_TRACE=1 prints the faults and view changes of each group.
 */
import assert from "node:assert/strict";
import { DEFAULT_SHARD_SIM, simulateShards } from "./shard_simulator.ts";
import { checkShardInvariants } from "./shard_invariants.ts";

const only = Deno.env.get("SIM_SEED");
const count = Number(Deno.env.get("SIM_SEEDS") ?? "1000");

Deno.test("shard sim: slot moves interleaved with crashes and partitions", shardSeeds);

async function shardSeeds(): Promise<void> {
  const seeds = only !== undefined
    ? [Number(only)]
    : Array.from({ length: count }, (_, i) => 2_000_001 + i);
  const failures: string[] = [];
  const totals = {
    moves: 0,
    restarts: 0,
    keysMoved: 0,
    moved: 0,
    ask: 0,
    tryagain: 0,
    snapshotInstalls: 0,
  };
  for (const seed of seeds) {
    const rerun = `SIM_SEED=${seed} deno test -A tests/sim/shard_sim_test.ts`;
    let result: Awaited<ReturnType<typeof simulateShards>>;
    try {
      result = await simulateShards({ ...DEFAULT_SHARD_SIM, seed });
    } catch (err) {
      // A replica's own assertion (an invariant inside the core) stopped the run.
      failures.push(`seed ${seed}: ${err instanceof Error ? err.message : err}\n  rerun: ${rerun}`);
      if (failures.length >= 3) break;
      continue;
    }
    totals.moves += result.movesDone;
    totals.restarts += result.migratorRestarts;
    totals.keysMoved += result.keysMoved;
    totals.moved += result.redirects.moved;
    totals.ask += result.redirects.ask;
    totals.tryagain += result.redirects.tryagain;
    for (const group of result.groups.values()) totals.snapshotInstalls += group.snapshotInstalls;
    const violations = checkShardInvariants(result);
    if (violations.length > 0) {
      failures.push(`seed ${seed}: ${violations.slice(0, 5).join("\n  ")}\n  rerun: ${rerun}`);
      if (failures.length >= 3) break;
    }
  }
  console.log(`shard sim: ${seeds.length} seeds, ${JSON.stringify(totals)}`);
  assert.deepEqual(failures, [], `failing seeds:\n${failures.join("\n")}`);
  if (only === undefined) {
    // The runs did what they are for: keys moved, clients redirected every way, runs resumed.
    assert.ok(totals.moves > 0 && totals.keysMoved > 0, "no slot move moved a key");
    assert.ok(totals.moved > 0 && totals.ask > 0, "clients were never redirected");
    assert.ok(totals.restarts > 0, "the migrator was never resumed");
    assert.ok(totals.snapshotInstalls > 0, "no replica caught up from a snapshot");
  }
}
