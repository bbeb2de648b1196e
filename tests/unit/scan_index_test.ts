/**
 * Unit tests of SCAN's order and index (`src/kv/scan_index.ts`): an index page is the page a walk
 * over every key gives, ties included; a full scan returns every key present throughout however
 * keys come and go between pages; and a page reads a few buckets, not the whole key space.
 *
 * @module
 */
import assert from "node:assert/strict";
import { scanHash, ScanIndex, scanPage } from "../../src/kv/scan_index.ts";
import { Prng } from "../../src/kv/prng.ts";

const SEED = Number(Deno.env.get("SCAN_INDEX_SEED") ?? 0x5ca9);

/** A hash with few distinct values in each bucket, so that pages meet ties. */
function tieHash(key: string): number {
  const h = scanHash(key);
  return ((h & 0xfff00000) | (h & 3)) >>> 0;
}

const all = () => true;

Deno.test("scan index: its pages are those of a walk over every key, ties included", () => {
  for (const hash of [scanHash, tieHash]) {
    const rng = new Prng(SEED);
    const index = new ScanIndex(hash);
    const keys = new Set<string>();
    for (let i = 0; i < 3_000; i++) {
      const key = `k:${rng.int(0, 5_000)}`;
      if (keys.has(key)) {
        keys.delete(key);
        assert.equal(index.delete(key), true);
      } else {
        keys.add(key);
        index.add(key);
      }
    }
    assert.equal(index.size, keys.size);
    const reference = (cursor: number, count: number) => {
      // The walk over every key, in the index's order.
      const items = [...keys].map((k) => ({ k, h: hash(k) }));
      const picked = items.filter((it) => it.h >= cursor).sort((a, b) =>
        a.h - b.h || (a.k < b.k ? -1 : 1)
      );
      if (picked.length <= count) return { next: 0, page: picked.map((it) => it.k) };
      const last = picked[count - 1].h;
      let keep = count;
      while (keep < picked.length && picked[keep].h === last) keep++;
      return { next: last + 1, page: picked.slice(0, keep).map((it) => it.k) };
    };
    for (let round = 0; round < 300; round++) {
      const cursor = rng.chance(0.2) ? 0 : rng.int(0, 0xffffffff);
      const count = rng.pick([1, 2, 5, 10, 100]);
      assert.deepEqual(
        index.page(cursor, count, all),
        reference(cursor, count),
        `seed ${SEED}, round ${round}: cursor ${cursor}, count ${count}`,
      );
    }
  }
});

Deno.test("scan index: scanPage over every item gives the same pages as the index", () => {
  const rng = new Prng(SEED + 1);
  // scanPage orders by scanHash: the index compared with it does too.
  const index = new ScanIndex();
  const keys: string[] = [];
  for (let i = 0; i < 2_000; i++) {
    keys.push(`m:${i}`);
    index.add(`m:${i}`);
  }
  for (let round = 0; round < 200; round++) {
    const cursor = rng.chance(0.1) ? 0 : rng.int(0, 0xffffffff);
    const count = rng.pick([1, 3, 10, 50, 5_000]);
    assert.deepEqual(
      index.page(cursor, count, all),
      scanPage(keys, (k) => k, cursor, count),
      `seed ${SEED}, round ${round}: cursor ${cursor}, count ${count}`,
    );
  }
});

Deno.test("scan index: a full scan returns every key present throughout, keys changing between pages", () => {
  for (const hash of [scanHash, tieHash]) {
    const rng = new Prng(SEED + 2);
    const index = new ScanIndex(hash);
    const present = new Set<string>();
    for (let i = 0; i < 2_000; i++) {
      present.add(`s:${i}`);
      index.add(`s:${i}`);
    }
    const throughout = new Set(present);
    const ever = new Set(present);
    const returned = new Set<string>();
    let cursor = 0;
    let pages = 0;
    do {
      const { next, page } = index.page(cursor, rng.pick([1, 7, 20]), all);
      for (const k of page) {
        assert.ok(ever.has(k), `a key never present: ${k}`);
        returned.add(k);
      }
      assert.ok(next === 0 || next > cursor, `the cursor moves on (${cursor} -> ${next})`);
      cursor = next;
      // Between pages, some keys go and new ones come.
      for (let j = 0; j < 5; j++) {
        const gone = `s:${rng.int(0, 3_000)}`;
        if (present.delete(gone)) {
          index.delete(gone);
          throughout.delete(gone);
        }
        const key = `s:${rng.int(0, 3_000)}`;
        if (!present.has(key)) {
          present.add(key);
          ever.add(key);
          index.add(key);
        }
      }
      pages++;
    } while (cursor !== 0 && pages < 10_000);
    assert.equal(cursor, 0, `seed ${SEED}: the scan ended`);
    for (const k of throughout) assert.ok(returned.has(k), `seed ${SEED}: ${k} was never returned`);
    assert.equal(index.size, present.size);
  }
});

Deno.test("scan index: a page hashes a few buckets' keys, not every key", () => {
  let hashed = 0;
  const counting = (key: string) => {
    hashed++;
    return scanHash(key);
  };
  const index = new ScanIndex(counting);
  const n = 200_000;
  for (let i = 0; i < n; i++) index.add(`key:${i}`);
  hashed = 0;
  let cursor = 0;
  const seen = new Set<string>();
  for (let p = 0; p < 50; p++) {
    const { next, page } = index.page(cursor, 10, all);
    for (const k of page) seen.add(k);
    cursor = next;
  }
  assert.equal(seen.size >= 500, true, `50 pages of 10 returned ${seen.size} keys`);
  // A walk over every key hashes all 200,000 for each page; the index, a bucket or two of about
  // 50 keys (4,096 buckets).
  assert.ok(hashed < 20_000, `50 pages hashed ${hashed} keys of ${n}`);
});

Deno.test("scan index: skips keys that are not live, deletes what it holds only, clears", () => {
  const index = new ScanIndex();
  for (const k of ["a", "b", "c"]) index.add(k);
  assert.equal(index.delete("zz"), false);
  assert.deepEqual(index.page(0, 10, (k) => k !== "b").page.sort(), ["a", "c"]);
  assert.equal(index.delete("b"), true);
  assert.equal(index.delete("b"), false);
  assert.equal(index.size, 2);
  assert.deepEqual(index.page(0x1_0000_0000, 10, all), { next: 0, page: [] });
  index.clear();
  assert.equal(index.size, 0);
  assert.deepEqual(index.page(0, 10, all), { next: 0, page: [] });
});
