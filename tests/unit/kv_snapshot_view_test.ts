/**
 * A key space's snapshot is a view read lazily (`src/kv/keyspace.ts`, `SnapshotView`): it must
 * stay what the state was when it was taken, however it is read afterwards, while writes go on.
 *
 * Seeded: a store takes random commands of every family (the differential generator's), a
 * snapshot is taken and its JSON text recorded at once; more random commands follow (FLUSHALL
 * among them), a second snapshot is taken in between, and the first is split into documents with
 * commands applied between documents. Every later reading of each snapshot (its JSON, its joined
 * documents, a store restored from it directly) must equal what was recorded when it was taken,
 * and the store restored from it must have the digest the original had then. Then: FLUSHALL of
 * more keys than the tombstone limit (the map is dropped whole), and a record changed in place
 * without being looked up, which must fail loudly rather than change a snapshot.
 *
 * Environment: `SNAPSHOT_VIEW_SEED=<n>` reruns one seed (a failure prints its seed);
 * `SNAPSHOT_VIEW_SEEDS=<n>` sets how many run (default 300).
 *
 * @module
 */
import assert from "node:assert/strict";
import { JsonJoiner, splitJson } from "../../src/codec/json_split.ts";
import { InvariantError } from "../../src/core/assert.ts";
import { KeySpace } from "../../src/kv/keyspace.ts";
import { KvStore } from "../../src/kv/store.ts";
import { commandArgvs } from "../fuzz/corpus_gen.ts";
import { Prng } from "../support/prng.ts";
import { seedsFromEnv } from "../support/seeds.ts";

const { seeds, one: oneSeed } = seedsFromEnv("SNAPSHOT_VIEW", 300);

/** Applies `n` random commands (every family; FLUSHALL now and then) to `store`. */
function write(store: KvStore, rng: Prng, n: number, clock: { t: number }): void {
  for (const argv of commandArgvs(rng, n)) {
    store.apply({ op: { argv, time: clock.t += rng.int(1, 3000) } });
  }
  if (rng.chance(0.1)) store.apply({ op: { argv: ["FLUSHALL"], time: clock.t += 1 } });
}

/** What a snapshot holds when it is taken, to compare its later readings with. */
interface Taken {
  snapshot: ReturnType<KvStore["snapshot"]>;
  json: string;
  digest: string;
}

function take(store: KvStore): Taken {
  const digest = store.digest();
  const snapshot = store.snapshot();
  return { snapshot, json: JSON.stringify(snapshot), digest };
}

/** Every later reading of `taken` equals what it was when taken. */
function checkStill(taken: Taken, context: string): void {
  assert.equal(JSON.stringify(taken.snapshot), taken.json, `${context}: JSON changed`);
  const copy = new KvStore();
  copy.restore(taken.snapshot); // the lazy form itself, as a replica's own snapshot is checked
  assert.equal(copy.digest(), taken.digest, `${context}: a restored copy's digest`);
}

Deno.test("snapshot view: later writes never change a snapshot taken before them", () => {
  let changedKeys = 0;
  for (const seed of seeds) {
    const context = `seed ${seed} (SNAPSHOT_VIEW_SEED=${seed})`;
    const rng = new Prng(seed);
    const store = new KvStore();
    const clock = { t: 1_700_000_000_000 };
    write(store, rng, 40, clock);
    const first = take(store);
    const keysThen = JSON.parse(first.json).keyspace.keys.length;
    write(store, rng, 20, clock);
    const second = take(store);
    // The first snapshot written out in documents, commands applied between them (as a writer
    // yields to the event loop between records).
    const joiner = new JsonJoiner();
    for (const doc of splitJson(first.snapshot, { pieceChars: 64, splitLongerThan: 2 })) {
      joiner.push(doc);
      write(store, rng, 3, clock);
    }
    assert.equal(JSON.stringify(joiner.value()), first.json, `${context}: documents differ`);
    write(store, rng, 20, clock);
    checkStill(first, `${context}, first snapshot`);
    checkStill(second, `${context}, second snapshot`);
    if (keysThen > 0 && JSON.stringify(store.snapshot()) !== first.json) changedKeys++;
  }
  if (!oneSeed) assert.ok(changedKeys > seeds.length / 2, `only ${changedKeys} states changed`);
});

Deno.test("snapshot view: FLUSHALL of more keys than the tombstone limit keeps the view", () => {
  const ks = new KeySpace();
  ks.writing = true;
  for (let i = 0; i < 70_000; i++) ks.put(`k${i}`, "string", `v${i}`);
  ks.put("h", "hash", new Map([["f", "1"]]));
  const snap = ks.snapshot();
  ks.version++;
  ks.clear(); // past 65,536 tombstones: the record map is dropped whole
  ks.put("k1", "string", "new");
  const keys = [...snap.keys];
  assert.equal(keys.length, 70_001);
  assert.deepEqual(keys[1], ["k1", "string", 0, 0, "v1"]);
  assert.deepEqual(keys[70_000], ["h", "hash", 0, 0, ["f", "1"]]);
  assert.equal(ks.size, 1);
});

Deno.test("snapshot view: a record changed in place without a lookup fails loudly", () => {
  const ks = new KeySpace();
  ks.writing = true;
  ks.put("h", "hash", new Map([["f", "1"]]));
  const snap = ks.snapshot();
  ks.version++;
  // A write that reaches a record other than through get/typed cannot be seen by the view.
  const [, r] = [...ks.entries()][0];
  (r.v as Map<string, string>).set("f", "2");
  assert.throws(() => ks.touch("h"), InvariantError);
  // Through a lookup, the view keeps the record as it was.
  const ks2 = new KeySpace();
  ks2.writing = true;
  ks2.put("h", "hash", new Map([["f", "1"]]));
  const snap2 = ks2.snapshot();
  ks2.version++;
  ks2.typed("h", "hash")!.v.set("f", "2");
  ks2.touch("h");
  assert.deepEqual([...snap2.keys], [["h", "hash", 0, 0, ["f", "1"]]]);
  assert.equal(snap.keys.length, 1);
});

Deno.test("snapshot view: restore refuses a record newer than its key space", () => {
  const ks = new KeySpace();
  assert.throws(
    () => ks.restore({ keys: [["a", "string", 0, 5, "x"]], version: 4, tombFloor: 0, tombs: [] }),
    /version is after/,
  );
  ks.restore({ keys: [["a", "string", 0, 4, "x"]], version: 4, tombFloor: 0, tombs: [] });
  assert.equal(ks.size, 1);
});
