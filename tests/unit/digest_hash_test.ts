/**
 * `src/kv/digest_hash.ts`: a large hash or set keeps the sums of its elements' hashes as it
 * changes, and they are always the sums computed from its elements afresh (seeded random
 * operations across the size from which sums are kept); a store's digest with kept sums equals
 * that of a store restored from its snapshot, which computes them from scratch.
 *
 * Environment: `DIGEST_HASH_SEED=<n>` reruns one seed (a failure prints its seed);
 * `DIGEST_HASH_SEEDS=<n>` sets how many run (default 40).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Reply } from "../../src/core/types.ts";
import { elementSums, SUMMED_FROM, SummedMap, SummedSet } from "../../src/kv/digest_hash.ts";
import { KvStore } from "../../src/kv/store.ts";
import { Prng } from "../support/prng.ts";
import { seedsFromEnv } from "../support/seeds.ts";

const { seeds } = seedsFromEnv("DIGEST_HASH", 40);

/** The sums computed afresh from the elements (of a plain copy, which keeps none). */
function fresh(v: Map<string, string> | Set<string>): [number, number] {
  return elementSums(v instanceof Map ? new Map(v) : new Set(v));
}

Deno.test("digest hash: kept sums are the sums of the elements, whatever the operations", () => {
  for (const seed of seeds) {
    const rng = new Prng(seed);
    const m = new SummedMap();
    const s = new SummedSet();
    const key = () => `e${rng.int(0, 2 * SUMMED_FROM)}`;
    for (let step = 0; step < 6_000; step++) {
      const r = rng.next();
      if (r < 0.5) m.set(key(), `v${rng.int(0, 3)}`);
      else if (r < 0.7) m.delete(key());
      else if (r < 0.85) s.add(key());
      else if (r < 0.9999) s.delete(key());
      else {
        m.clear();
        s.clear();
      }
      if (step % 500 === 499) {
        const context = `seed ${seed} (DIGEST_HASH_SEED=${seed}), step ${step}`;
        assert.deepEqual(m.sums(), fresh(m), `map: ${context}`);
        assert.deepEqual(s.sums(), fresh(s), `set: ${context}`);
      }
    }
  }
});

function run(kv: KvStore, ...argv: string[]): Reply {
  return kv.apply({ op: { argv, time: 1_000 } });
}

Deno.test("digest hash: a store keeping sums has the digest of one restored from scratch", () => {
  const kv = new KvStore();
  const n = 2 * SUMMED_FROM;
  run(kv, "HSET", "h", ...Array.from({ length: n }, (_, i) => [`f${i}`, `${i}`]).flat());
  run(kv, "SADD", "s", ...Array.from({ length: n }, (_, i) => `m${i}`));
  run(kv, "SADD", "t", ...Array.from({ length: n }, (_, i) => `m${2 * i}`));
  kv.digest(); // the large ones keep their sums from here on
  for (let i = 0; i < 300; i++) {
    run(kv, "HSET", "h", `f${i * 7}`, `new${i}`);
    run(kv, "HINCRBY", "h", `f${i * 3 + 1}`, "5");
    run(kv, "HDEL", "h", `f${i * 11}`);
    run(kv, "SADD", "s", `x${i}`);
    run(kv, "SREM", "s", `m${i * 5}`);
    run(kv, "SMOVE", "s", "t", `m${i * 5 + 1}`);
    if (i % 50 === 0) run(kv, "SPOP", "s", "3");
    if (i % 100 === 0) run(kv, "SINTERSTORE", "u", "s", "t");
    if (i % 25 === 0) {
      const copy = new KvStore();
      copy.restore(JSON.parse(JSON.stringify(kv.snapshot())));
      assert.equal(copy.digest(), kv.digest(), `after round ${i}`);
    }
  }
});
