/**
 * End to end: concurrent clients on real replicas produce a linearizable history, and the replicas
 * end with the same delivered index and digest.
 *
 * Ten clients, each with its own connection to one of three replicas (spread over all three), run
 * a seeded random mix of PUT/GET/DELETE/EXISTS on four keys for about 3 s (bounded in ops too).
 * Every write value is unique. A timeout or lost connection records the op as unknown and the
 * client reconnects. Set `LAMPORTKV_SEED` to replay a seed.
 *
 * Sanitizers: off, because the replica child processes and their output pipes outlive single
 * async ops by design (the harness awaits them all in `stop()`).
 *
 * @module
 */
import assert from "node:assert/strict";
import { checkLinearizable } from "../support/linearizability.ts";
import { runWorkload, workloadSeed } from "../support/history.ts";
import { Prng } from "../support/prng.ts";
import { withCluster } from "../support/cluster.ts";

const CLIENTS = 10;
const KEYS = ["k1", "k2", "k3", "k4"];
const RUN_MS = 3000;
const MAX_OPS_PER_CLIENT = 1500;

Deno.test({
  name: "e2e: concurrent clients on 3 replicas see a linearizable history; replicas agree",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const seed = workloadSeed();
    console.log(`linearizable_test seed: ${seed} (replay with LAMPORTKV_SEED=${seed})`);
    await withCluster({ replicas: 3 }, async (cluster) => {
      const history = await runWorkload({
        replicas: cluster.ids.map((id) => ({ id, port: cluster.clientPort(id) })),
        clients: CLIENTS,
        keys: KEYS,
        rng: new Prng(seed),
        runMs: RUN_MS,
        maxOpsPerClient: MAX_OPS_PER_CLIENT,
        note: (line) => cluster.note(line),
      });
      const counts = history.counts();
      console.log(
        `history: ${counts.done} completed, ${counts.unknown} unknown, ${counts.failed} failed`,
      );
      assert.ok(counts.done >= CLIENTS, `too few completed ops (${counts.done})`);

      const ops = history.ops();
      const verdict = checkLinearizable(ops);
      if (!verdict.ok) {
        assert.fail(
          `history not linearizable (seed ${seed}), key ${verdict.key}:\n` +
            verdict.message,
        );
      }

      // The history is not trivial, and the check has teeth: falsifying one read breaks it.
      const reads = ops.filter((o) => o.result?.kind === "value" && o.result.value !== null);
      assert.ok(reads.length > 0, "no GET returned a value: the workload tested nothing");
      const falsified = ops.map((o) =>
        o === reads[0] ? { ...o, result: { kind: "value" as const, value: "never written" } } : o
      );
      assert.equal(checkLinearizable(falsified).ok, false, "the checker accepted a falsified read");

      // Every completed write took a log index (reads are answered without one).
      const writes = history.writesDone();
      const agreed = await cluster.waitForAgreement({ minDelivered: writes });
      assert.ok(agreed.delivered >= writes);
    });
  },
});
