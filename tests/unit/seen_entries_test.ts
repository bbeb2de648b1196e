import assert from "node:assert/strict";
import { SeenEntries } from "../../src/core/seen_entries.ts";
import { Prng } from "../../src/kv/prng.ts";

Deno.test("seen entries: each (origin, seq) is new once, in order or not", () => {
  const seen = new SeenEntries();
  assert.equal(seen.add(1, 1), true);
  assert.equal(seen.add(1, 1), false);
  assert.equal(seen.add(1, 3), true, "ahead of the floor");
  assert.equal(seen.add(1, 3), false);
  assert.equal(seen.add(2, 1), true, "origins are apart");
  assert.equal(seen.add(1, 2), true, "fills the gap: the floor moves past 3");
  assert.equal(seen.add(1, 2), false);
  assert.equal(seen.add(1, 3), false);
  assert.equal(seen.add(1, 4), true);
  assert.equal(seen.add(2, 2), true);
  seen.clear();
  assert.equal(seen.add(1, 1), true, "a cleared set has met nothing");
});

Deno.test("seen entries: agrees with a set of every pair on random sequences", () => {
  const prng = new Prng(12345);
  const rand = (n: number) => prng.int(0, n - 1);
  for (let round = 0; round < 200; round++) {
    const seen = new SeenEntries();
    const model = new Set<string>();
    for (let i = 0; i < 300; i++) {
      const origin = 1 + rand(3);
      const seq = 1 + rand(40);
      assert.equal(seen.add(origin, seq), !model.has(`${origin}:${seq}`), `round ${round} op ${i}`);
      model.add(`${origin}:${seq}`);
    }
  }
});
