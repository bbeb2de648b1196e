/**
 * Unit tests of the slot map: the epoch-0 split of the config's groups (redis-cli --cluster
 * create's), lookups, and maps that do not cover every slot once.
 *
 * @module
 */
import assert from "node:assert/strict";
import { initialSlotMap, SlotMap } from "../../src/kv/slot_map.ts";
import { SLOTS } from "../../src/kv/slots.ts";

const ranges = (m: SlotMap) => m.ranges.map((r) => `${r.group}:${r.start}-${r.end}`);

Deno.test("slot map: the config's groups split the slots as redis-cli --cluster create does", () => {
  assert.deepEqual(ranges(initialSlotMap(["a"])), ["a:0-16383"]);
  assert.deepEqual(ranges(initialSlotMap(["a", "b"])), ["a:0-8191", "b:8192-16383"]);
  assert.deepEqual(ranges(initialSlotMap(["x", "y", "z"])), [
    "x:0-5460",
    "y:5461-10922",
    "z:10923-16383",
  ]);
  // Any count: contiguous, in order, covering every slot, sizes within one slot of each other.
  for (const n of [4, 5, 6, 7, 10, 100, 1000, SLOTS]) {
    const groups = Array.from({ length: n }, (_, i) => `g${i}`);
    const m = initialSlotMap(groups);
    assert.equal(m.epoch, 0);
    assert.equal(m.ranges.length, n);
    let next = 0;
    const sizes = m.ranges.map((r, i) => {
      assert.equal(r.group, groups[i]);
      assert.equal(r.start, next);
      next = r.end + 1;
      return r.end - r.start + 1;
    });
    assert.equal(next, SLOTS);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `n=${n}: ${Math.min(...sizes)}..`);
  }
});

Deno.test("slot map: owner, ranges and counts", () => {
  const m = initialSlotMap(["a", "b"]);
  assert.equal(m.owner(0), "a");
  assert.equal(m.owner(8191), "a");
  assert.equal(m.owner(8192), "b");
  assert.equal(m.owner(16383), "b");
  assert.equal(m.count("a"), 8192);
  assert.deepEqual(m.rangesOf("b"), [{ start: 8192, end: 16383, group: "b" }]);
  // A later map (a higher epoch) may give a group several ranges.
  const later = new SlotMap(3, ["a", "b"], [
    { start: 0, end: 99, group: "a" },
    { start: 100, end: 199, group: "b" },
    { start: 200, end: 16383, group: "a" },
  ]);
  assert.equal(later.epoch, 3);
  assert.equal(later.owner(150), "b");
  assert.equal(later.count("a"), SLOTS - 100);
  assert.equal(later.rangesOf("a").length, 2);
});

Deno.test("slot map: every slot exactly once, of a known group", () => {
  assert.throws(() => new SlotMap(0, [], []), /1 to 16384 groups/);
  assert.throws(
    () => new SlotMap(0, ["a"], [{ start: 0, end: 100, group: "a" }]),
    /slot 101 has no owner/,
  );
  assert.throws(
    () =>
      new SlotMap(0, ["a"], [
        { start: 0, end: 16383, group: "a" },
        { start: 5, end: 5, group: "a" },
      ]),
    /slot 5 is in two ranges/,
  );
  assert.throws(
    () => new SlotMap(0, ["a"], [{ start: 0, end: 16383, group: "b" }]),
    /unknown group b/,
  );
  assert.throws(
    () => new SlotMap(0, ["a"], [{ start: 0, end: 16384, group: "a" }]),
    /bad slot range 0-16384/,
  );
});
