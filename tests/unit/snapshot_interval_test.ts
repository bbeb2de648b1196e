/** When the core takes durable snapshots (its `snapshot` actions), in an in-memory cluster. */
import assert from "node:assert/strict";
import type { Command } from "../../src/core/types.ts";
import { SyncCluster } from "../support/sync_cluster.ts";

const op = (...argv: string[]): Command => ({ op: { argv, time: 0 } });

/**
 * Runs `keys` keys then 120 single writes; the delivered indexes replica 1 snapshotted at
 * (`percent`: the replicas' `snapshotLogPercent`, absent: the default, 50).
 */
function snapshotIndexes(keys: number, percent?: number): number[] {
  const c = new SyncCluster([1, 2, 3], {
    snapshotEvery: 10,
    snapshotGrowsFrom: 100,
    ...(percent === undefined ? {} : { snapshotLogPercent: percent }),
  });
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

/** The gaps between consecutive snapshot indexes. */
const gaps = (at: number[]) => at.slice(1).map((x, i) => x - at[i]);

Deno.test("snapshots: from snapshotGrowsFrom keys on, keys/2 deliveries apart", () => {
  const at = snapshotIndexes(100);
  assert.ok(at.length >= 2, `snapshots at ${at}`);
  for (const gap of gaps(at)) assert.ok(gap >= 50 && gap <= 52, `snapshots at ${at}`);
});

Deno.test("snapshots: snapshotLogPercent sets the share of the keys between them", () => {
  // A quarter of 100 keys: 25 deliveries apart (the 120 writes give four or five).
  const quarter = snapshotIndexes(100, 25);
  assert.ok(quarter.length >= 4, `snapshots at ${quarter}`);
  for (const gap of gaps(quarter)) assert.ok(gap >= 25 && gap <= 27, `snapshots at ${quarter}`);
  // 0: snapshotEvery alone, however many keys.
  const none = snapshotIndexes(100, 0);
  assert.ok(none.length >= 10, `snapshots at ${none}`);
  for (const gap of gaps(none)) assert.ok(gap >= 10 && gap <= 12, `snapshots at ${none}`);
});

Deno.test("snapshots: below it, every snapshotEvery deliveries", () => {
  const at = snapshotIndexes(20);
  assert.ok(at.length >= 10, `snapshots at ${at}`);
  for (let i = 1; i < at.length; i++) assert.ok(at[i] - at[i - 1] <= 12, `snapshots at ${at}`);
});

Deno.test("snapshots: snapshot-due (the storage's log grew large in bytes) takes one at once", () => {
  for (const snapshotEvery of [10_000, 0]) {
    const c = new SyncCluster([1, 2, 3], { snapshotEvery });
    c.start();
    assert.deepEqual(c.request(1, op("SET", "k", "v")), { ok: true, result: { ok: "OK" } });
    const out = c.step(1, { type: "snapshot-due" });
    const taken = out.filter((a) => a.type === "snapshot");
    if (snapshotEvery === 0) {
      assert.equal(taken.length, 0, "no snapshots at all with snapshotEvery 0");
      continue;
    }
    assert.equal(taken.length, 1);
    const s = taken[0].type === "snapshot" ? taken[0].snapshot : undefined;
    assert.equal(s?.snapshot.index, c.replicas.get(1)!.status().delivered);
  }
});

Deno.test("snapshots: snapshot-due is ignored while a view change is under way", () => {
  const c = new SyncCluster([1, 2, 3], {});
  c.start();
  // Replica 3 cut off and replica 2's messages held: the view change cannot end, and replica 1
  // is not normal meanwhile.
  c.isolate(3);
  c.holdFrom((from) => from === 2);
  c.tickUntil(() => c.replicas.get(1)!.status().state !== "normal", "a view change at 1");
  assert.equal(c.step(1, { type: "snapshot-due" }).filter((a) => a.type === "snapshot").length, 0);
  c.releaseHeld();
  c.tickUntil(() => c.replicas.get(1)!.status().state === "normal", "1 normal again");
  assert.equal(c.step(1, { type: "snapshot-due" }).filter((a) => a.type === "snapshot").length, 1);
});
