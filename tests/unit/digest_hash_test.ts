/**
 * `src/kv/digest_hash.ts`: a large hash or set keeps the sums of its elements' hashes as it
 * changes, a large list its hash and a large stream the sums of its entries' and nodes' hashes,
 * and they are always those computed from its elements afresh
 * (seeded random operations across the size from which they are kept); a store's digest with kept
 * sums and hashes equals that of a store restored from its snapshot, which computes them from
 * scratch.
 *
 * Environment: `DIGEST_HASH_SEED=<n>` reruns one seed (a failure prints its seed);
 * `DIGEST_HASH_SEEDS=<n>` sets how many run (default 40).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Reply } from "../../src/core/types.ts";
import {
  elementSums,
  listHash,
  SUMMED_FROM,
  SummedDeque,
  SummedMap,
  SummedSet,
} from "../../src/kv/digest_hash.ts";
import { Deque } from "../../src/kv/list.ts";
import { decodeStream, encodeStream, makeId, Stream } from "../../src/kv/stream.ts";
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

Deno.test("digest hash: a kept list hash is the hash of the elements, whatever the operations", () => {
  for (const seed of seeds) {
    const rng = new Prng(seed);
    const d = new SummedDeque();
    const value = () => `e${rng.int(0, 1_000)}`;
    let keptReads = 0;
    for (let step = 0; step < 10_000; step++) {
      const r = rng.next();
      const n = d.length;
      // Grows on average past SUMMED_FROM; edits in the middle (which drop a kept hash) are rare.
      if (r < 0.3) d.pushBack(value());
      else if (r < 0.55) d.pushFront(value());
      else if (r < 0.67) d.popBack();
      else if (r < 0.79) d.popFront();
      else if (r < 0.94) d.set(rng.int(0, n), value());
      else if (r < 0.96) d.keep(rng.int(-2, 5), n - rng.int(-2, 5));
      else if (r < 0.97) d.insert(rng.int(0, n), value());
      else if (r < 0.98 && n > 0) d.removeAt(rng.int(0, n - 1));
      else if (r < 0.99) d.removeValue(value(), rng.int(0, 3), rng.next() < 0.5);
      if (step % 47 === 46) {
        const context = `seed ${seed} (DIGEST_HASH_SEED=${seed}), step ${step}, length ${d.length}`;
        const before = Deque.steps;
        const kept = d.hash();
        if (Deque.steps === before && d.length >= SUMMED_FROM) keptReads++;
        assert.deepEqual(kept, listHash(Deque.from(d)), `list: ${context}`);
      }
    }
    // The hash was read without reading the list: the case under test happened.
    assert.ok(keptReads > 10, `seed ${seed}: only ${keptReads} reads of a kept hash`);
  }
});

Deno.test("digest hash: a list's hash depends on each element and its place", () => {
  const base = Array.from({ length: 2 * SUMMED_FROM }, (_, i) => `e${i}`);
  const hashes = new Set<string>();
  const variants = [
    base,
    base.with(5, "x"),
    base.with(0, base[1]).with(1, base[0]),
    base.with(3, base[5]).with(5, base[3]),
    [...base.slice(1), base[0]],
    [...base, ""],
    ["", ...base],
  ];
  for (const v of variants) hashes.add(listHash(Deque.from(v)).join(":"));
  assert.equal(hashes.size, variants.length);
});

Deno.test("digest hash: a store keeping list hashes has the digest of one restored from scratch", () => {
  const kv = new KvStore();
  const n = 2 * SUMMED_FROM;
  run(kv, "RPUSH", "l", ...Array.from({ length: n }, (_, i) => `${i}`));
  run(kv, "RPUSH", "m", ...Array.from({ length: n }, (_, i) => `${i % 10}`));
  kv.digest(); // the large ones keep their hashes from here on
  for (let i = 0; i < 300; i++) {
    run(kv, "LPUSH", "l", `a${i}`, `b${i}`);
    run(kv, "RPUSH", "l", `c${i}`);
    run(kv, "LPOP", "l");
    run(kv, "RPOP", "l", "2");
    run(kv, "LSET", "l", `${i * 7}`, `s${i}`);
    run(kv, "LSET", "l", "-3", `t${i}`);
    run(kv, "LMOVE", "l", "m", "LEFT", "RIGHT");
    run(kv, "RPOPLPUSH", "m", "l");
    run(kv, "LMPOP", "2", "m", "l", "RIGHT", "COUNT", "2");
    if (i % 20 === 0) run(kv, "LTRIM", "m", "1", "-2");
    if (i % 30 === 0) run(kv, "LINSERT", "l", "BEFORE", `${i * 3}`, `i${i}`);
    if (i % 40 === 0) run(kv, "LREM", "m", "2", `${i % 10}`);
    if (i % 25 === 0) {
      const copy = new KvStore();
      copy.restore(JSON.parse(JSON.stringify(kv.snapshot())));
      assert.equal(copy.digest(), kv.digest(), `after round ${i}`);
    }
  }
  assert.ok((run(kv, "LLEN", "m") as number) >= SUMMED_FROM);
});

Deno.test("digest hash: a stream's kept sums are those of its entries and nodes, whatever the operations", () => {
  for (const seed of seeds) {
    const rng = new Prng(seed);
    const s = new Stream();
    let ms = 1;
    let keptReads = 0;
    for (let step = 0; step < 6_000; step++) {
      const r = rng.next();
      if (r < 0.75) {
        ms += rng.int(0, 2);
        s.append(makeId(ms, step), [
          "f",
          `v${rng.int(0, 9)}`,
          ...(rng.next() < 0.2 ? ["g", "x"] : []),
        ]);
      } else if (r < 0.9 && s.length > 0) {
        s.delete(s.idAt(rng.int(0, s.length - 1)));
      } else if (r < 0.91) {
        s.delete(makeId(ms + 1, 0)); // not there
      } else if (r < 0.92) {
        s.trimHead(Math.min(s.length, rng.int(0, 30)));
      }
      if (step % 149 === 148) {
        const context = `seed ${seed} (DIGEST_HASH_SEED=${seed}), step ${step}, length ${s.length}`;
        assert.deepEqual(s.contentSums(), decodeStream(encodeStream(s)).contentSums(), context);
        // Kept from here on (once large): the next comparisons check sums kept through changes.
        if (keeps(s)) keptReads++;
      }
    }
    assert.ok(keptReads > 10, `seed ${seed}: only ${keptReads} reads of kept sums`);
  }
});

/**
 * True when `s` keeps its sums: an entry changed behind its back (not through append, delete or
 * trimHead) leaves them as they were.
 */
function keeps(s: Stream): boolean {
  if (s.length === 0) return false;
  const before = s.contentSums();
  const entry = s.entryAt(0);
  const saved = entry[0];
  entry[0] = "changed";
  const after = s.contentSums();
  entry[0] = saved;
  return before[0] === after[0] && before[1] === after[1];
}

Deno.test("digest hash: a store keeping stream sums has the digest of one restored from scratch", () => {
  const kv = new KvStore();
  for (let i = 1; i <= 2 * SUMMED_FROM; i++) run(kv, "XADD", "s", `${i}-0`, "f", `${i}`);
  run(kv, "XGROUP", "CREATE", "s", "g", "0");
  kv.digest(); // the stream keeps its sums from here on
  let id = 2 * SUMMED_FROM;
  for (let i = 0; i < 200; i++) {
    run(kv, "XADD", "s", `${++id}-0`, "f", `x${i}`);
    run(kv, "XADD", "s", "MAXLEN", "~", `${2 * SUMMED_FROM}`, `${++id}-0`, "f", `y${i}`);
    run(kv, "XADD", "s", "MAXLEN", `${2 * SUMMED_FROM}`, `${++id}-1`, "a", "b", "c", "d");
    run(kv, "XDEL", "s", `${id - 40}-0`, `${id - 41}-0`);
    run(kv, "XREADGROUP", "GROUP", "g", "c1", "COUNT", "2", "STREAMS", "s", ">");
    if (i % 20 === 0) run(kv, "XTRIM", "s", "MINID", `${id - 2 * SUMMED_FROM + 50}`);
    if (i % 30 === 0) run(kv, "XTRIM", "s", "MAXLEN", "~", `${SUMMED_FROM + 100}`);
    if (i % 25 === 0) {
      const copy = new KvStore();
      copy.restore(JSON.parse(JSON.stringify(kv.snapshot())));
      assert.equal(copy.digest(), kv.digest(), `after round ${i}`);
    }
  }
  assert.ok((run(kv, "XLEN", "s") as number) >= SUMMED_FROM);
});
