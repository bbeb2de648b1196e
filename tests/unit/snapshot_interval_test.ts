/** When the core takes durable snapshots (its `snapshot` actions), in an in-memory cluster. */
import assert from "node:assert/strict";
import type { Command } from "../../src/core/types.ts";
import { SyncCluster } from "../support/sync_cluster.ts";

const op = (...argv: string[]): Command => ({ op: { argv, time: 0 } });

/** Runs `keys` keys then 120 single writes; the delivered indexes replica 1 snapshotted at. */
function snapshotIndexes(keys: number): number[] {
  const c = new SyncCluster([1, 2, 3], { snapshotEvery: 10, snapshotGrowsFrom: 100 });
  c.start();
  const at: number[] = [];
  const step = c.step.bind(c);
  c.step = (id, event) => {
    const out = step(id, event);
    for (const a of out) if (a.type === "snapshot" && id === 1) at.push(a.snapshot.snapshot.index);
    return out;
  };
  const pairs = Array.from({ length: keys }, (_, i) => [`k${i}`, "v"]).flat();
  assert.deepEqual(c.request(1, op("MSET", ...pairs)), { ok: true, result: { ok: "OK" } });
  for (let i = 0; i < 120; i++) c.request(1 + (i % 3), op("INCR", "n"));
  return at;
}

Deno.test("snapshots: from snapshotGrowsFrom keys on, keys/2 deliveries apart", () => {
  const at = snapshotIndexes(100);
  assert.ok(at.length >= 2, `snapshots at ${at}`);
  for (let i = 1; i < at.length; i++) assert.ok(at[i] - at[i - 1] >= 50, `snapshots at ${at}`);
});

Deno.test("snapshots: below it, every snapshotEvery deliveries", () => {
  const at = snapshotIndexes(20);
  assert.ok(at.length >= 10, `snapshots at ${at}`);
  for (let i = 1; i < at.length; i++) assert.ok(at[i] - at[i - 1] <= 12, `snapshots at ${at}`);
});
