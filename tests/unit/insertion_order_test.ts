/**
 * `src/kv/insertion_order.ts` and the random picks built on it (`src/kv/commands/random.ts`): the
 * i-th element is the i-th a `Set` iterates, whatever the adds, deletes and re-adds
 * (seeded, across the squeezing of holes); large sets and hashes answer `nth` from a kept index
 * that follows their changes; and the partial Fisher-Yates over indexes picks what the shuffle of
 * a copied array picked with the same draws.
 *
 * Environment: `INSERTION_ORDER_SEED=<n>` reruns one seed (a failure prints its seed);
 * `INSERTION_ORDER_SEEDS=<n>` sets how many run (default 30).
 *
 * @module
 */
import assert from "node:assert/strict";
import { InsertionOrder } from "../../src/kv/insertion_order.ts";
import { ORDERED_FROM, SummedMap, SummedSet } from "../../src/kv/digest_hash.ts";
import { pickDistinctIndexes, pickOne } from "../../src/kv/commands/random.ts";
import type { ApplyContext } from "../../src/kv/registry.ts";
import { Prng } from "../support/prng.ts";
import { seedsFromEnv } from "../support/seeds.ts";

const { seeds } = seedsFromEnv("INSERTION_ORDER", 30);

Deno.test("insertion order: the i-th element is the i-th a Set iterates, whatever the changes", () => {
  for (const seed of seeds) {
    const rng = new Prng(seed);
    let order = new InsertionOrder<string>();
    const model = new Set<string>();
    for (let step = 0; step < 5_000; step++) {
      const x = `e${rng.int(0, 600)}`;
      const r = rng.next();
      // Phases of growth and of deletion, so that holes pile up and are squeezed out.
      const grow = Math.floor(step / 1_000) % 2 === 0;
      if (r < (grow ? 0.7 : 0.25)) {
        order.add(x);
        model.add(x);
      } else if (r < 0.999) {
        order.delete(x);
        model.delete(x);
      } else {
        // Built at once from a collection, as a large set or hash builds it at its first pick.
        order = InsertionOrder.of(model);
      }
      if (step % 50 === 49) {
        const context = `seed ${seed} (INSERTION_ORDER_SEED=${seed}), step ${step}`;
        assert.equal(order.size, model.size, context);
        const expected = [...model];
        for (let i = 0; i < expected.length; i++) assert.equal(order.nth(i), expected[i], context);
        assert.throws(() => order.nth(expected.length), RangeError);
      }
    }
  }
});

Deno.test("insertion order: large sets and hashes keep their index through their changes", () => {
  for (const seed of seeds.slice(0, 5)) {
    const rng = new Prng(seed);
    const set = new SummedSet();
    const map = new SummedMap();
    let indexed = 0;
    for (let step = 0; step < 8_000; step++) {
      const x = `m${rng.int(0, 4 * ORDERED_FROM)}`;
      const r = rng.next();
      if (r < 0.6) {
        set.add(x);
        map.set(x, `v${step}`);
      } else if (r < 0.99995) {
        set.delete(x);
        map.delete(x);
      } else {
        set.clear();
        map.clear();
      }
      if (step % 400 === 399) {
        const context = `seed ${seed} (INSERTION_ORDER_SEED=${seed}), step ${step}`;
        const members = [...set];
        const fields = [...map.keys()];
        for (let k = 0; k < 50 && members.length > 0; k++) {
          const i = rng.int(0, members.length - 1);
          assert.equal(set.nth(i), members[i], `set: ${context}`);
          // A plain set's pick walks to the drawn index.
          const draw = { random: () => (i + 0.5) / members.length } as ApplyContext;
          assert.equal(pickOne(draw, new Set(set)), members[i], `plain set: ${context}`);
          assert.equal(pickOne(draw, set), members[i], `set pick: ${context}`);
          const j = rng.int(0, fields.length - 1);
          assert.equal(map.nth(j), fields[j], `map: ${context}`);
        }
        if (set.size >= ORDERED_FROM) indexed++;
      }
    }
    assert.ok(indexed > 5, `seed ${seed}: only ${indexed} checks of an indexed set`);
  }
});

/** The partial Fisher-Yates shuffle of a copied array, as the picks were made before. */
function shuffledPrefix<T>(ctx: ApplyContext, items: T[], count: number): T[] {
  const a = items.slice();
  const k = Math.min(count, a.length);
  for (let i = 0; i < k; i++) {
    const j = i + Math.min(Math.floor(ctx.random() * (a.length - i)), a.length - i - 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  a.length = k;
  return a;
}

Deno.test("random picks: distinct indexes are what shuffling a copied array picked", () => {
  for (const seed of seeds) {
    for (const [n, count] of [[1, 1], [10, 3], [10, 10], [1_000, 999], [5_000, 40], [7, 20]]) {
      const a = new Prng(seed);
      const b = new Prng(seed);
      const items = Array.from({ length: n }, (_, i) => `x${i}`);
      const picked = pickDistinctIndexes({ random: () => a.next() } as ApplyContext, n, count);
      const before = shuffledPrefix({ random: () => b.next() } as ApplyContext, items, count);
      assert.deepEqual(picked.map((i) => items[i]), before, `seed ${seed}, n ${n}, count ${count}`);
      assert.equal(new Set(picked).size, picked.length);
    }
  }
});
