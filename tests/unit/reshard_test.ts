/**
 * Unit tests of the resharding procedure (`src/client/reshard.ts`) against an in-memory sharded
 * cluster (`tests/support/fake_sharded_cluster.ts`): slot ranges parsed, reshard and rebalance
 * planned (even counts, fewest slots moved), keys moved with the slots, the steps in the design's
 * order, refusals reported; and a run stopped at every single call (before or after the group
 * applied it, even twice in a row) is finished by running the same command again: every key in
 * exactly one group, the owner of its slot, with its value, every group on the control group's
 * map, nothing left migrating, importing or in transit.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  balancedCounts,
  formatRate,
  type Move,
  parseSlotRange,
  planRebalance,
  planReshard,
  rebalance,
  reshard,
  ReshardError,
  type ReshardProgress,
} from "../../src/client/reshard.ts";
import { initialSlotMap, SlotMap } from "../../src/kv/slot_map.ts";
import { keySlot, SLOTS } from "../../src/kv/slots.ts";
import { Crash, FakeShardedCluster } from "../support/fake_sharded_cluster.ts";
import { Prng } from "../support/prng.ts";

/** `n` keys `k0`, `k1`, ... with values `v0`, ... */
function keys(n: number): Map<string, string> {
  return new Map(Array.from({ length: n }, (_, i) => [`k${i}`, `v${i}`]));
}

/** A fake cluster of `map` holding `data`. */
function clusterOf(map: SlotMap, data: ReadonlyMap<string, string>): FakeShardedCluster {
  const cluster = new FakeShardedCluster(map);
  for (const [k, v] of data) cluster.put(k, v);
  return cluster;
}

const text = (moves: Move[]) => moves.map((m) => `${m.from}>${m.to} ${m.start}-${m.end}`);

Deno.test("reshard: slot ranges", () => {
  assert.deepEqual(parseSlotRange("0-99"), { start: 0, end: 99 });
  assert.deepEqual(parseSlotRange("7"), { start: 7, end: 7 });
  assert.deepEqual(parseSlotRange("0-16383"), { start: 0, end: 16383 });
  for (const bad of ["", "a-b", "5-4", "0-16384", "-1", "1-", "1-2-3", " 1-2", "1.5-2"]) {
    assert.throws(() => parseSlotRange(bad), ReshardError, bad);
  }
  assert.throws(() => parseSlotRange("5-4"), /bad slot range '5-4': expected <start>-<end>/);
});

Deno.test("reshard: plans", () => {
  const two = initialSlotMap(["g1", "g2"]);
  assert.deepEqual(text(planReshard(two, 8000, 8300, "g2")), ["g1>g2 8000-8191"]);
  assert.deepEqual(text(planReshard(two, 8000, 8300, "g1")), ["g2>g1 8192-8300"]);
  assert.deepEqual(text(planReshard(two, 0, 99, "g1")), []);
  assert.throws(() => planReshard(two, 0, 1, "g9"), /unknown group 'g9' \(the groups: g1, g2\)/);
  const mixed = new SlotMap(4, ["a", "b", "c"], [
    { start: 0, end: 99, group: "a" },
    { start: 100, end: 199, group: "b" },
    { start: 200, end: 299, group: "a" },
    { start: 300, end: SLOTS - 1, group: "c" },
  ]);
  // Grouped by source, in the map's group order.
  assert.deepEqual(text(planReshard(mixed, 50, 350, "b")), [
    "a>b 50-99",
    "a>b 200-299",
    "c>b 300-350",
  ]);

  // Rebalance: already even; everything in one group; three groups from two.
  assert.deepEqual(planRebalance(two), []);
  const all = new SlotMap(0, ["a", "b", "c"], [{ start: 0, end: SLOTS - 1, group: "a" }]);
  assert.deepEqual([...balancedCounts(all)], [["a", 5462], ["b", 5461], ["c", 5461]]);
  assert.deepEqual(text(planRebalance(all)), ["a>b 10923-16383", "a>c 5462-10922"]);
  const grown = new SlotMap(0, ["g1", "g2", "g3"], two.ranges);
  // The extra slot stays with the group that has most (ties: the first).
  assert.deepEqual([...balancedCounts(grown)], [["g1", 5462], ["g2", 5461], ["g3", 5461]]);
  assert.deepEqual(text(planRebalance(grown)), ["g1>g3 5462-8191", "g2>g3 13653-16383"]);
  // A donor's highest slots, over several of its ranges, the highest first.
  const split = new SlotMap(0, ["a", "b"], [
    { start: 0, end: 9999, group: "a" },
    { start: 10000, end: 16000, group: "b" },
    { start: 16001, end: SLOTS - 1, group: "a" },
  ]);
  assert.deepEqual(text(planRebalance(split)), ["a>b 16001-16383", "a>b 8192-9999"]);
  // Fewest slots moved: the surplus of each group over its even share, no more.
  for (const map of [all, grown, split]) {
    const counts = balancedCounts(map);
    const moved = planRebalance(map).reduce((n, m) => n + m.end - m.start + 1, 0);
    const surplus = map.groups.reduce((n, g) => n + Math.max(0, map.count(g) - counts.get(g)!), 0);
    assert.equal(moved, surplus);
  }
  assert.equal(
    formatRate(1200, 120_000, 1500),
    "moved 1200 keys (0.12 MB) in 1.5 s: 800 keys/s, 0.08 MB/s",
  );
});

Deno.test("reshard: moves the keys of the slots, step by step, with progress", async () => {
  const data = keys(300);
  const cluster = clusterOf(initialSlotMap(["g1", "g2"]), data);
  const before = [...data.keys()].filter((k) => keySlot(k) >= 4000 && keySlot(k) < 8192);
  const progress: ReshardProgress[] = [];
  const summary = await reshard(cluster, { start: 4000, end: 9000 }, "g2", {
    batch: 10,
    onProgress: (p) => progress.push(p),
  });
  assert.deepEqual(cluster.problems(data), []);
  assert.deepEqual(text(summary.moves), ["g1>g2 4000-8191"]);
  assert.equal(summary.keys, before.length);
  assert.ok(before.length > 20, "several batches");
  assert.equal(summary.epoch, 1);
  for (const k of before) assert.equal(cluster.group("g2").keys.get(k), data.get(k));
  assert.deepEqual(cluster.map().ranges, [
    { start: 0, end: 3999, group: "g1" },
    { start: 4000, end: SLOTS - 1, group: "g2" },
  ]);
  assert.equal(progress.length, Math.ceil(before.length / 10) + 1);
  assert.deepEqual(progress.at(-1)!.moveDone, true);
  assert.equal(progress.at(-1)!.keys, before.length);
  assert.equal(
    progress.at(-1)!.bytes,
    before.reduce((n, k) => n + k.length + data.get(k)!.length, 0),
  );
  // The design's order: importing at the target, migrating at the source, batches, the new
  // owner at the control group, the map to the target, then the others; then the map to every
  // group again (ending the control group's hand-over of the range).
  const log = cluster.log;
  assert.deepEqual(log.slice(0, 7), [
    "g1 SLOTMAP",
    "g2 LOADSLOTMAP 0",
    "g1 LOADSLOTMAP 0",
    "g2 LOADSLOTMAP 0",
    "g2 SETSLOT 4000-8191",
    "g1 SETSLOT 4000-8191",
    "g1 MIGRATEKEYS 4000-8191",
  ]);
  assert.deepEqual(log.slice(7, 9).map((l) => l.split(" ").slice(0, 2).join(" ")), [
    "g2 IMPORTKEYS",
    "g1 MIGRATEDONE",
  ]);
  assert.deepEqual(log.slice(-6), [
    "g1 MIGRATEKEYS 4000-8191",
    "g1 SETSLOT 4000-8191",
    "g1 SLOTMAP",
    "g2 LOADSLOTMAP 1",
    "g2 LOADSLOTMAP 1",
    "g1 LOADSLOTMAP 1",
  ]);
  assert.equal(cluster.group("g1").migrating.size, 0, "hand-over ended");

  // Again: nothing to do. Back: the keys return.
  const again = await reshard(cluster, { start: 4000, end: 9000 }, "g2");
  assert.deepEqual(again.moves, []);
  const back = await reshard(cluster, { start: 0, end: SLOTS - 1 }, "g1", { batch: 1000 });
  assert.deepEqual(text(back.moves), ["g2>g1 4000-16383"]);
  assert.deepEqual(cluster.problems(data), []);
  assert.equal(cluster.group("g1").keys.size, data.size);
  assert.equal(cluster.group("g2").keys.size, 0);
  assert.equal(back.epoch, 2);
});

Deno.test("reshard: control group neither source nor target; rebalance onto new groups", async () => {
  const data = keys(200);
  const two = initialSlotMap(["g1", "g2"]);
  const cluster = clusterOf(new SlotMap(0, ["g1", "g2", "g3"], two.ranges), data);
  await reshard(cluster, { start: 10000, end: 12000 }, "g3", { batch: 7 });
  assert.deepEqual(cluster.problems(data), []);
  assert.equal(cluster.map().count("g3"), 2001);
  const summary = await rebalance(cluster, { batch: 7 });
  assert.deepEqual(cluster.problems(data), []);
  const map = cluster.map();
  assert.deepEqual(map.groups.map((g) => map.count(g)), [5462, 5461, 5461]);
  assert.ok(summary.keys > 0);
  assert.deepEqual((await rebalance(cluster)).moves, [], "balanced: nothing to do");
});

Deno.test("reshard: refusals and bad input are errors naming the group and the command", async () => {
  const cluster = clusterOf(initialSlotMap(["g1", "g2"]), keys(10));
  await assert.rejects(
    reshard(cluster, { start: 0, end: 1 }, "nope"),
    /unknown group 'nope' \(the groups: g1, g2\)/,
  );
  await assert.rejects(reshard(cluster, { start: 0, end: 1 }, "g2", { batch: 0 }), /batch/);
  // A target whose copy says it owns some of the slots already refuses IMPORTING.
  cluster.group("g2").owner[5] = "g2";
  await assert.rejects(
    reshard(cluster, { start: 0, end: 10 }, "g2"),
    /group g2 refused CLUSTER SETSLOT 0-10 IMPORTING \.\.\.: ERR this group owns some/,
  );
});

/** The same command until it ends, restarted after each {@link Crash}; returns the restarts. */
async function untilDone(run: () => Promise<unknown>): Promise<number> {
  for (let restarts = 0; restarts < 10; restarts++) {
    try {
      await run();
      return restarts;
    } catch (e) {
      if (!(e instanceof Crash)) throw e;
    }
  }
  throw new Error("did not end within 10 runs");
}

Deno.test("reshard: a run stopped at any call is finished by running it again", async () => {
  const data = keys(60);
  const start = () => clusterOf(initialSlotMap(["g1", "g2"]), data);
  const command = (c: FakeShardedCluster) =>
    reshard(c, { start: 3000, end: 12000 }, "g2", { batch: 4 });
  const plain = start();
  await command(plain);
  const total = plain.calls;
  assert.ok(total > 20, `${total} calls`);
  for (let at = 1; at <= total; at++) {
    for (const after of [false, true]) {
      const cluster = start();
      cluster.crashAt = at;
      cluster.crashAfterApply = after;
      await assert.rejects(command(cluster), Crash);
      cluster.crashAt = null;
      await command(cluster);
      const problems = cluster.problems(data);
      assert.deepEqual(problems, [], `stopped at call ${at} (${after ? "after" : "before"})`);
      assert.deepEqual(cluster.map().ranges, plain.map().ranges);
    }
  }
});

Deno.test("reshard: rebalance stopped again and again at random calls ends balanced", async () => {
  const data = keys(120);
  const random = new Prng(16);
  for (let round = 0; round < 20; round++) {
    const lopsided = new SlotMap(0, ["g1", "g2", "g3"], [
      { start: 0, end: 9000, group: "g1" },
      { start: 9001, end: 9500, group: "g3" },
      { start: 9501, end: SLOTS - 1, group: "g1" },
    ]);
    const cluster = clusterOf(lopsided, data);
    let stops = 0;
    const restarts = await untilDone(() => {
      // Stop the first few runs somewhere within their next 60 calls.
      if (stops++ < 3) {
        cluster.crashAt = cluster.calls + random.int(1, 60);
        cluster.crashAfterApply = random.chance(0.5);
      } else cluster.crashAt = null;
      return rebalance(cluster, { batch: 5 });
    });
    assert.ok(restarts >= 1);
    assert.deepEqual(cluster.problems(data), [], `round ${round}`);
    const map = cluster.map();
    assert.deepEqual(map.groups.map((g) => map.count(g)), [5462, 5461, 5461], `round ${round}`);
  }
});
