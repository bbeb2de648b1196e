/**
 * Unit tests of the key space's index containers: `KeyBuckets` (SCAN's buckets, arrays) and
 * `SlotKeys` (the keys of each hash slot, sets): what they hold after adds and deletes, against a
 * plain set as the model.
 *
 * @module
 */
import assert from "node:assert/strict";
import { KeyBuckets } from "../../src/kv/key_buckets.ts";
import { SlotKeys } from "../../src/kv/slot_keys.ts";
import { keySlot } from "../../src/kv/slots.ts";
import { Prng } from "../../src/kv/prng.ts";

const SEED = Number(Deno.env.get("KEY_INDEX_SEED") ?? 0x1d);

Deno.test("key buckets and slot keys: adds and deletes against a model", () => {
  const rng = new Prng(SEED);
  const bucketOf = (k: string) => k.length % 7;
  const buckets = new KeyBuckets(7, bucketOf);
  const slots = new SlotKeys(keySlot);
  const model = new Set<string>();
  for (let i = 0; i < 5_000; i++) {
    // Hash tags put many keys in a few slots.
    const key = rng.chance(0.5) ? `{t${rng.int(0, 3)}}${rng.int(0, 300)}` : `k${rng.int(0, 300)}`;
    if (model.has(key)) {
      model.delete(key);
      assert.equal(buckets.delete(key), true);
      assert.equal(slots.delete(key), true);
    } else {
      model.add(key);
      buckets.add(key);
      slots.add(key);
    }
    assert.equal(buckets.delete(`absent${i}`), false);
    assert.equal(slots.delete(`absent${i}`), false);
  }
  assert.equal(buckets.size, model.size);
  assert.equal(slots.size, model.size);
  for (let b = 0; b < 7; b++) {
    const expected = [...model].filter((k) => bucketOf(k) === b).sort();
    assert.deepEqual([...buckets.bucket(b)].sort(), expected, `seed ${SEED}, bucket ${b}`);
  }
  for (const slot of new Set([...model].map(keySlot))) {
    const expected = [...model].filter((k) => keySlot(k) === slot).sort();
    assert.deepEqual([...slots.keys(slot)].sort(), expected, `seed ${SEED}, slot ${slot}`);
  }
  buckets.clear();
  slots.clear();
  assert.equal(buckets.size, 0);
  assert.equal(slots.size, 0);
  assert.deepEqual(buckets.bucket(3), []);
  assert.deepEqual([...slots.keys(keySlot("{t1}x"))], []);
});
