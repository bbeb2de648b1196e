/**
 * Unit tests of the key space's split map: it behaves as a `Map` (checked against one under
 * random operations), splits keys evenly by hash range, and a SCAN page read group by group is
 * the page read over every key.
 *
 * @module
 */
import assert from "node:assert/strict";
import { KEY_MAP_SHARDS, keyHash, KeyMap, shardOf } from "../../src/kv/key_map.ts";
import { scanGroups, scanPage } from "../../src/kv/commands/keys.ts";
import { Prng } from "../support/prng.ts";

Deno.test("key map: behaves as a Map under random sets and deletes", () => {
  const rnd = new Prng(7);
  const ours = new KeyMap<number>();
  const ref = new Map<string, number>();
  for (let i = 0; i < 20_000; i++) {
    const key = `k${rnd.int(0, 2999)}`;
    if (rnd.int(0, 2) === 0) assert.equal(ours.delete(key), ref.delete(key), `delete ${key}`);
    else {
      ours.set(key, i);
      ref.set(key, i);
    }
    assert.equal(ours.size, ref.size);
  }
  for (const key of ["k1", "k2999", "absent", ""]) {
    assert.equal(ours.get(key), ref.get(key));
    assert.equal(ours.has(key), ref.has(key));
  }
  const entries = [...ours].sort(([a], [b]) => a < b ? -1 : 1);
  assert.deepEqual(entries, [...ref].sort(([a], [b]) => a < b ? -1 : 1));
  assert.deepEqual([...ours.keys()], [...ours.entries()].map(([k]) => k));
  assert.deepEqual([...ours.values()], [...ours.entries()].map(([, v]) => v));
});

Deno.test("key map: keys come map by map in hash-range order, each map in insertion order", () => {
  const m = new KeyMap<number>();
  const keys = Array.from({ length: 5000 }, (_, i) => `user:${i}:profile`);
  keys.forEach((k, i) => m.set(k, i));
  m.set(keys[10], -1); // a new value keeps the key's place
  const shards = [...m.keys()].map((k) => shardOf(keyHash(k)));
  for (let i = 1; i < shards.length; i++) assert.ok(shards[i - 1] <= shards[i], "by map");
  const order = [...m.entries()].map(([k]) => keys.indexOf(k));
  for (let i = 1; i < order.length; i++) {
    if (shards[i - 1] === shards[i]) assert.ok(order[i - 1] < order[i], "insertion order");
  }
  assert.equal(m.get(keys[10]), -1);
});

Deno.test("key map: keys with a common prefix spread over the maps", () => {
  const counts = new Array(KEY_MAP_SHARDS).fill(0);
  const n = 200_000;
  for (let i = 0; i < n; i++) counts[shardOf(keyHash(`key:${String(i).padStart(12, "0")}`))]++;
  const mean = n / KEY_MAP_SHARDS;
  const max = Math.max(...counts);
  assert.ok(max < 2.5 * mean, `the fullest map holds ${max} keys, the mean ${mean}`);
  assert.ok(counts.filter((c) => c === 0).length === 0, "every map holds some keys");
});

Deno.test("key map: shardsFrom gives the maps at and after a hash, in ascending ranges", () => {
  const m = new KeyMap<number>();
  for (let i = 0; i < 20_000; i++) m.set(`k${i}`, i);
  for (const from of [0, 1, 2 ** 31, 0xffff_ffff, 2 ** 32, 12345678]) {
    const groups = [...m.shardsFrom(from)].map((g) => [...g].map(([k]) => keyHash(k)));
    if (from > 0xffff_ffff) assert.equal(groups.length, 0);
    for (let i = 0; i < groups.length; i++) {
      if (i > 0) assert.ok(Math.min(...groups[i]) > Math.max(...groups[i - 1]), "disjoint");
    }
    const all = [...m.keys()].map(keyHash).filter((h) => h >= from).sort((a, b) => a - b);
    const got = groups.flat().filter((h) => h >= from).sort((a, b) => a - b);
    assert.deepEqual(got, all, `every key at or after ${from}`);
  }
});

Deno.test("key map: a SCAN page read by groups is the page read over every key", () => {
  const rnd = new Prng(11);
  // Few keys (most maps hold one or none) at small counts, many (maps of ten or so) at large.
  for (const [keys, counts] of [[3000, [1, 10, 100]], [40_000, [100, 1000]]] as const) {
    const m = new KeyMap<number>();
    for (let i = 0; i < keys; i++) m.set(`key:${rnd.int(0, 1e9)}`, i);
    for (const count of counts) {
      let cursor = 0;
      let pages = 0;
      const seen = new Set<string>();
      do {
        const whole = scanPage(m.keys(), (k) => k, cursor, count);
        const grouped = scanGroups(
          [...m.shardsFrom(cursor)].map((g) => [...g].map(([k]) => k)),
          (k: string) => k,
          cursor,
          count,
        );
        assert.deepEqual(grouped, whole, `cursor ${cursor}, count ${count}`);
        for (const k of whole.page) seen.add(k);
        cursor = whole.next;
        pages++;
      } while (cursor !== 0 && pages < 100_000);
      assert.equal(seen.size, m.size, `count ${count}: a full scan returns every key`);
    }
  }
});
