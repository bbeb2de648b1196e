/**
 * End to end: the live fuzzer (`tests/fuzz/live.ts`) in its CI size. At least 10,000 malformed
 * frames go to each client port and each peer port of a 3-replica cluster while a correct
 * workload runs; its history stays linearizable, the replicas agree on the digest at the same
 * delivered index, every replica answers PING, and none passed 500 MB of RSS.
 * `deno task fuzz` runs 100,000 frames per port; `--seconds N` longer.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { runLive } from "../fuzz/live.ts";
import { workloadSeed } from "../support/history.ts";

const FRAMES_PER_PORT = 10_000;

Deno.test({
  name: "e2e: 10,000 malformed frames per port; the cluster stays linearizable, equal, alive",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const seed = workloadSeed();
    console.log(`live fuzz seed ${seed} (replay with LAMPORTKV_SEED=${seed})`);
    const result = await runLive({ framesPerPort: FRAMES_PER_PORT, seed, log: console.log });
    assert.deepEqual(result.problems, []);
    for (const [port, n] of Object.entries(result.frames)) {
      assert.ok(n >= FRAMES_PER_PORT, `${port}: only ${n} frames`);
    }
    assert.equal(Object.keys(result.frames).length, 6);
    // The workload ran throughout: every round of it was checked, with real traffic in each.
    assert.ok(result.rounds >= 1, "no workload round was checked");
    assert.ok(
      result.opsDone >= 50 * result.rounds,
      `only ${result.opsDone} workload operations in ${result.rounds} rounds`,
    );
  },
});
