/**
 * The core's rules for learners in view changes (src/core/README.md, "Membership changes", 3):
 * a change goes on without a learner whose report does not come, and a silent learner is dropped
 * from the view only after ten failure timeouts (a member after one).
 */
import assert from "node:assert/strict";
import type { Command, ReplicaId } from "../../src/core/types.ts";
import { address, SyncCluster } from "../support/sync_cluster.ts";

const op = (...argv: string[]): Command => ({ op: { argv, time: 0 } });
/** Failure timeout of the in-memory cluster, ticks. */
const SUSPECT = 100;

/** A cluster of voters 1, 2, 3 with replica 4 added as a learner and in the view. */
function withLearner(): SyncCluster {
  const c = new SyncCluster([1, 2, 3, 4], { suspectTicks: SUSPECT }, [1, 2, 3]);
  c.start();
  const a = address(4);
  const added = c.request(
    1,
    op("__REPLICASET", "ADD", "4", a.host, `${a.clientPort}`, `${a.peerPort}`, "LEARNER"),
  );
  assert.deepEqual(added, { ok: true, result: { ok: "OK" } });
  c.tickUntil(() => status(c, 4).state === "normal", "learner 4 in a view");
  return c;
}

const status = (c: SyncCluster, id: ReplicaId) => c.replicas.get(id)!.status();

Deno.test("learners: a view change goes on without a learner whose report does not come", () => {
  const c = withLearner();
  const before = status(c, 1).view;
  // From now on everything learner 4 sends is held (its flush report among it), and voter 3 is
  // cut off: the voters left must change views.
  c.holdFrom((from) => from === 4);
  c.isolate(3);
  c.tickUntil(
    () => status(c, 1).state === "normal" && status(c, 1).members.join() === "1,2",
    "a view of 1,2 without learner 4's report",
    // Suspecting voter 3 takes a failure timeout; the learner's patience (ten) is not waited out.
    4 * SUSPECT,
  );
  assert.ok(status(c, 1).view > before);
  assert.ok(!status(c, 1).learners.includes(4), "the silent learner is left out of that view");
  assert.deepEqual(c.request(2, op("INCR", "n")), { ok: true, result: 1 });
  // Once it speaks again a later change takes it back in.
  c.releaseHeld();
  c.tickUntil(() => status(c, 1).learners.includes(4), "learner 4 back in a view", 20 * SUSPECT);
});

Deno.test("learners: a silent learner stays in the view ten failure timeouts, a member one", () => {
  const c = withLearner();
  const view = status(c, 1).view;
  c.isolate(4);
  c.tick(3 * SUSPECT);
  assert.equal(status(c, 1).view, view, "no view change for a learner silent three timeouts");
  assert.deepEqual(status(c, 1).learners, [4]);
  assert.deepEqual(c.request(1, op("INCR", "n")), { ok: true, result: 1 });
  c.tickUntil(
    () => status(c, 1).state === "normal" && !status(c, 1).learners.includes(4),
    "learner 4 dropped",
    12 * SUSPECT,
  );
  assert.ok(status(c, 1).view > view);
  // A silent member is dropped after one failure timeout (and a bit: the view change itself).
  const at = status(c, 1).view;
  c.isolate(3);
  c.tickUntil(
    () => status(c, 1).state === "normal" && status(c, 1).members.join() === "1,2",
    "member 3 dropped",
    2 * SUSPECT,
  );
  assert.ok(status(c, 1).view > at);
});
