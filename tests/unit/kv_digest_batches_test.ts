/**
 * The state's digest hashes changed records a batch at a time (`KeySpace.hashChangedOver`,
 * called by the store after each write): with large values written to many keys, what waits for
 * the next checkpoint stays bounded, and the digest is the one hashing everything at once gives
 * (the one a store restored from a snapshot computes from scratch).
 *
 * @module
 */
import assert from "node:assert/strict";
import { InvariantError } from "../../src/core/assert.ts";
import type { Reply } from "../../src/core/types.ts";
import { KeySpace } from "../../src/kv/keyspace.ts";
import { KvStore } from "../../src/kv/store.ts";
import { DIGEST_BATCH_BYTES } from "../../src/limits.ts";

const MiB = 1 << 20;

/** A value of `bytes` bytes that differs with `seed`. */
const big = (bytes: number, seed: number) => String.fromCharCode(97 + (seed % 26)).repeat(bytes);

function run(kv: KvStore, argv: string[]): Reply {
  return kv.apply({ op: { argv, time: 1_000 } });
}

Deno.test("digest batches: a store hashes large changed values a batch at a time", () => {
  const kv = new KvStore();
  let most = 0;
  let batches = 0;
  for (let i = 0; i < 100; i++) {
    const before = kv.unhashedBytes;
    assert.deepEqual(run(kv, ["SET", `k${i % 70}`, big(MiB, i)]), { ok: "OK" });
    if (kv.unhashedBytes < before) batches++;
    most = Math.max(most, kv.unhashedBytes);
    assert.ok(kv.unhashedBytes <= DIGEST_BATCH_BYTES, `${kv.unhashedBytes} bytes wait`);
  }
  assert.ok(batches >= 1 && most > DIGEST_BATCH_BYTES / 2, `${batches} batches, ${most} bytes`);
  // In-place changes and deletions between batches.
  for (let i = 0; i < 30; i++) {
    run(kv, ["APPEND", `k${i}`, big(1000, i)]);
    run(kv, ["HSET", "h", `f${i}`, big(100_000, i)]);
    if (i % 7 === 0) run(kv, ["DEL", `k${i + 1}`]);
    assert.ok(kv.unhashedBytes <= DIGEST_BATCH_BYTES, `${kv.unhashedBytes} bytes wait`);
  }
  const copy = new KvStore();
  copy.restore(JSON.parse(JSON.stringify(kv.snapshot())));
  assert.equal(copy.digest(), kv.digest(), "the digest of a store restored from scratch");
  // Collections wait for the checkpoint: hashing one early would read it whole at each write.
  assert.equal(kv.unhashedBytes, 0);
  run(kv, ["RPUSH", "list", ...Array.from({ length: 1000 }, (_, i) => big(1000, i))]);
  run(kv, ["RPUSH", "list", "one more"]);
  assert.equal(kv.unhashedBytes, 0, "a list counts nothing");
});

Deno.test("digest batches: hashing early gives the digest hashing at once gives", () => {
  const early = new KeySpace();
  const late = new KeySpace();
  let lateMost = 0;
  for (let i = 0; i < 50; i++) {
    for (const ks of [early, late]) {
      ks.writing = true;
      ks.version++;
      ks.put(`k${i % 13}`, "string", big(200_000 + i, i));
      if (i % 5 === 0) ks.put(`s${i}`, "set", new Set(["a", "b", `m${i}`]));
      if (i % 9 === 0) ks.delete(`k${(i + 3) % 13}`);
      ks.writing = false;
    }
    early.hashChangedOver(MiB);
    assert.ok(early.unhashedBytes <= MiB + 250_000, `${early.unhashedBytes} bytes wait`);
    lateMost = Math.max(lateMost, late.unhashedBytes);
    if (i % 10 === 9) assert.equal(early.digest(), late.digest(), `after write ${i}`);
  }
  assert.ok(lateMost > 1.5 * MiB, `the late key space kept ${lateMost} bytes unhashed at most`);
  assert.equal(early.digest(), late.digest());
  assert.equal(late.unhashedBytes, 0, "a digest hashes everything");
  // Never inside a write: a record may still change before its write ends.
  early.writing = true;
  assert.throws(() => early.hashChangedOver(0), InvariantError);
});
