/**
 * Divergence detection: replicas compare state digests at the same delivered index, and the one
 * that differs from a majority stops (a `diverged` action); the others go on.
 *
 * @module
 */
import assert from "node:assert/strict";
import { DivergenceDetector } from "../../src/core/divergence.ts";
import { SyncCluster } from "../support/sync_cluster.ts";

Deno.test("divergence: the replica that differs from a majority is the one that stops", () => {
  const members = [1, 2, 3];
  const healthy = new DivergenceDetector(1, 10);
  const odd = new DivergenceDetector(3, 10);
  healthy.delivered(10, () => "aaaa", members);
  odd.delivered(10, () => "bbbb", members);
  healthy.report(2, 10, "aaaa", members);
  healthy.report(3, 10, "bbbb", members);
  assert.equal(healthy.diverged, null, "a minority never stops a replica");
  odd.report(1, 10, "aaaa", members);
  assert.equal(odd.diverged, null, "one report is not a majority of three");
  odd.report(2, 10, "aaaa", members);
  assert.deepEqual(odd.diverged, { index: 10, mine: "bbbb", majority: "aaaa", agreeing: [1, 2] });
  // Indexes that are not checkpoints, and reports for indexes we never reached, are ignored.
  const d = new DivergenceDetector(1, 10);
  d.report(2, 7, "x", members);
  d.report(2, 20, "x", members);
  d.report(3, 20, "x", members);
  assert.equal(d.diverged, null);
  d.delivered(20, () => "y", members);
  const late = d.diverged as { index: number } | null;
  assert.equal(late?.index, 20, "reports that arrived first are judged when we get there");
  assert.equal(new DivergenceDetector(1, 0).latest(), null);
});

Deno.test("divergence: a replica whose state was damaged stops; the others serve on", () => {
  const c = new SyncCluster([1, 2, 3], { checkpointEvery: 5 });
  c.start();
  let id = 1;
  const write = (replica: number, key: string) => {
    c.step(replica, {
      type: "request",
      id: id++,
      cmd: { op: { argv: ["SET", key, "v"], time: 0 } },
    });
    c.step(replica, { type: "flush" });
    c.settle();
  };
  for (let i = 0; i < 3; i++) write(1, `before${i}`);
  // Replica 3's state goes wrong behind the protocol's back (a bug, a damaged disk, ...).
  c.stores.get(3)!.apply({ op: { argv: ["SET", "damage", "x"], time: 0 } });
  for (let i = 0; i < 6; i++) write(1 + (i % 2), `after${i}`);
  c.tick(30); // heartbeats carry the checkpoints
  assert.deepEqual([...c.diverged.keys()], [3], "only the damaged replica diverged");
  const d = c.diverged.get(3)!;
  assert.equal(d.index % 5, 0);
  assert.deepEqual(d.agreeing, [1, 2]);
  assert.equal(c.stores.get(1)!.digest(), c.stores.get(2)!.digest());
});
