import assert from "node:assert/strict";
import { LamportClock } from "../../src/core/clock.ts";
import { compareEntries, HoldbackQueue } from "../../src/core/holdback.ts";
import { InvariantError } from "../../src/core/assert.ts";
import type { Entry } from "../../src/core/types.ts";
import { Prng } from "../support/prng.ts";

function entry(ts: number, origin: number, seq = 1): Entry {
  return { view: 0, ts, origin, seq, cmd: { op: { argv: ["GET", "k"], time: 0 } } };
}

Deno.test("clock: tick increments, observe jumps past the received stamp", () => {
  const c = new LamportClock();
  assert.equal(c.tick(), 1);
  assert.equal(c.tick(), 2);
  c.observe(10);
  assert.equal(c.value, 11);
  c.observe(3); // an older stamp still advances by one
  assert.equal(c.value, 12);
  assert.equal(c.tick(), 13);
});

Deno.test("clock: rejects nonsense stamps loudly", () => {
  const c = new LamportClock();
  assert.throws(() => c.observe(-1), InvariantError);
  assert.throws(() => c.observe(1.5), InvariantError);
  assert.throws(() => new LamportClock(Number.NaN), InvariantError);
});

Deno.test("holdback: orders by timestamp, ties broken by origin", () => {
  const q = new HoldbackQueue();
  for (const e of [entry(5, 2), entry(3, 3), entry(5, 1), entry(3, 1), entry(9, 1)]) q.push(e);
  const order: string[] = [];
  while (q.size > 0) {
    const e = q.pop()!;
    order.push(`${e.ts}/${e.origin}`);
  }
  assert.deepEqual(order, ["3/1", "3/3", "5/1", "5/2", "9/1"]);
  assert.equal(q.pop(), undefined);
  assert.equal(compareEntries(entry(4, 1), entry(4, 2)) < 0, true);
});

Deno.test("holdback: matches a sort over random insertions and removals", () => {
  const rng = new Prng(7);
  const q = new HoldbackQueue();
  const model: Entry[] = [];
  for (let i = 0; i < 2000; i++) {
    if (rng.chance(0.6) || model.length === 0) {
      const e = entry(rng.int(0, 50), rng.int(1, 5), i);
      q.push(e);
      model.push(e);
      model.sort(compareEntries);
    } else {
      assert.equal(compareEntries(q.peek()!, model[0]), 0);
      const got = q.pop()!;
      const want = model.shift()!;
      assert.equal(compareEntries(got, want), 0);
    }
    assert.equal(q.size, model.length);
  }
  assert.equal(q.sorted().length, model.length);
});
