/** When the core takes durable snapshots (its `snapshot` actions), in an in-memory cluster. */
import assert from "node:assert/strict";
import type { Command } from "../../src/core/types.ts";
import { SyncCluster } from "../support/sync_cluster.ts";

const op = (...argv: string[]): Command => ({ op: { argv, time: 0 } });

Deno.test("snapshots: with many keys, one every keys/2 deliveries, not every snapshotEvery", () => {
  const c = new SyncCluster([1, 2, 3], { snapshotEvery: 10 });
  c.start();
  const snapshotsAt: number[] = [];
  const step = c.step.bind(c);
  c.step = (id, event) => {
    const out = step(id, event);
    for (const a of out) {
      if (a.type === "snapshot" && id === 1) snapshotsAt.push(a.snapshot.snapshot.index);
    }
    return out;
  };
  // 100 keys in one operation, then single writes: snapshots come every 50 deliveries, not 10.
  const pairs = Array.from({ length: 100 }, (_, i) => [`k${i}`, "v"]).flat();
  assert.deepEqual(c.request(1, op("MSET", ...pairs)), { ok: true, result: { ok: "OK" } });
  for (let i = 0; i < 120; i++) c.request(1 + (i % 3), op("INCR", "n"));
  assert.ok(snapshotsAt.length >= 2, `snapshots at ${snapshotsAt}`);
  for (let i = 1; i < snapshotsAt.length; i++) {
    assert.ok(snapshotsAt[i] - snapshotsAt[i - 1] >= 50, `snapshots at ${snapshotsAt}`);
  }
});
