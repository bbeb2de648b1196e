/**
 * Unit tests of online resharding's server side, in the state machine: the slot state
 * (`slot_state.ts`: every routing rule, snapshot / restore / digest), the `__RESHARD` operations'
 * replies and errors (`commands/slots.ts`), routing at apply time of reads, writes, transactions
 * and blocking commands in `KvStore`, and a deterministic migration of one slot between two stores
 * with client writes interleaved at every step, checked against a model.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ClientTag, Reply } from "../../src/core/types.ts";
import { type KvSnapshot, KvStore } from "../../src/kv/store.ts";
import { initialSlotMap } from "../../src/kv/slot_map.ts";
import { parseSlots, SlotState, TRYAGAIN_ERROR } from "../../src/kv/slot_state.ts";
import { keySlot } from "../../src/kv/slots.ts";
import { encodeExec } from "../../src/kv/commands/tx.ts";
import { NO_CLUSTER } from "../../src/kv/commands/slots.ts";
import { decodeRecord } from "../../src/kv/keyspace.ts";
import { Prng } from "../support/prng.ts";

const MAP = initialSlotMap(["g1", "g2"]);
const OK = { ok: "OK" };
/** A slot of g1 (0-8191) and keys in it, by hash tag. */
const TAG = "{b}";
const S = keySlot(TAG);
const K = (name: string) => `${TAG}${name}`;
/** A key of g2's slots. */
const G2KEY = "{a}x";

/** A store of group `group` of the g1/g2 cluster. */
function store(group: string): KvStore {
  return new KvStore(undefined, 0, undefined, { group, map: MAP });
}

/** Applies `argv` at `time`. */
function run(kv: KvStore, argv: string[], time = 1_000, tag?: ClientTag): Reply {
  return kv.apply({ op: { argv, time }, tag });
}

/** Applies `CLUSTER <sub> ...` as the CLUSTER command submits it. */
function cluster(kv: KvStore, ...argv: string[]): Reply {
  return run(kv, ["__RESHARD", ...argv]);
}

/** The error text of a reply (fails if it is not one). */
function errOf(r: Reply): string {
  assert.ok(
    r !== null && typeof r === "object" && "err" in r,
    `not an error: ${JSON.stringify(r)}`,
  );
  return r.err;
}

Deno.test("slot state: parseSlots takes a slot or an inclusive range", () => {
  assert.deepEqual(parseSlots("5"), [5]);
  assert.deepEqual(parseSlots("3-6"), [3, 4, 5, 6]);
  assert.deepEqual(parseSlots("16383"), [16383]);
  for (const bad of ["", "-1", "16384", "6-3", "1-16384", "a", "1-", "1-2-3", " 1"]) {
    assert.equal(parseSlots(bad), undefined, bad);
  }
});

Deno.test("slot state: every routing rule", () => {
  const st = new SlotState("g1", MAP);
  const none = () => false;
  const all = () => true;
  // Owned, not migrating: served, whatever exists; two slots: CROSSSLOT.
  assert.equal(st.route([K("a")], none, null), null);
  assert.equal(st.route([], none, null), null);
  assert.match(errOf(st.route([K("a"), G2KEY], all, null)), /^CROSSSLOT /);
  // Not owned, not importing: MOVED to the owner (a group), even after ASKING.
  assert.deepEqual(st.route([G2KEY], all, 5), { err: `MOVED ${keySlot(G2KEY)} g2` });
  // Owned and migrating to g2.
  st.migrating.set(S, "g2");
  assert.equal(st.route([K("a"), K("b")], all, null), null, "every key here: served");
  assert.deepEqual(st.route([K("a")], none, null), { err: `ASK ${S} g2` }, "none: ASK");
  const onlyA = (k: string) => k === K("a");
  assert.deepEqual(st.route([K("a"), K("b")], onlyA, null), { err: TRYAGAIN_ERROR });
  st.addTransit(7, [[K("t"), "payload"]]);
  assert.deepEqual(st.route([K("t")], none, null), { err: TRYAGAIN_ERROR }, "in transit");
  assert.deepEqual(st.route([K("a"), K("t")], all, null), { err: TRYAGAIN_ERROR });
  assert.equal(st.dropTransit(7), 1);
  assert.equal(st.dropTransit(7), 0);
  assert.deepEqual(st.route([K("t")], none, null), { err: `ASK ${S} g2` });
  // Not owned, importing from g2: served after ASKING or when every key exists here.
  const G2S = keySlot(G2KEY);
  assert.equal(st.askingStamp, 0);
  st.beginImport([G2S], "g2");
  assert.equal(st.askingStamp, 1);
  assert.equal(st.importSince(G2S), 1);
  assert.equal(st.route([G2KEY], none, 1), null);
  assert.equal(st.route([G2KEY], all, null), null);
  assert.deepEqual(st.route([G2KEY], none, null), { err: `MOVED ${G2S} g2` });
  assert.deepEqual(st.route([G2KEY, "{a}y"], (k) => k === G2KEY, null), {
    err: `MOVED ${G2S} g2`,
  });
  // ASKING read before this import began (an ASK of an earlier move): as without ASKING.
  assert.deepEqual(st.route([G2KEY], none, 0), { err: `MOVED ${G2S} g2` });
  assert.equal(st.route([G2KEY], all, 0), null, "every key here: served");
  // Begun again from the same source (a rerun): the same import; a new one takes a new number.
  st.beginImport([G2S], "g2");
  assert.equal(st.importSince(G2S), 1);
  st.endImport(G2S);
  assert.equal(st.importing.size, 0);
  st.beginImport([G2S, G2S + 1], "g2");
  assert.equal(st.askingStamp, 2);
  assert.equal(st.importSince(G2S + 1), 2);
  assert.deepEqual(st.route([G2KEY], none, 1), { err: `MOVED ${G2S} g2` }, "stale ASKING");
  assert.equal(st.route([G2KEY], none, 2), null);
  assert.equal(st.route([G2KEY], none, 3), null, "read by a replica further on");
});

Deno.test("slot state: snapshot, restore (field-checked) and digest round trip", () => {
  const st = new SlotState("g1", MAP);
  assert.equal(st.digest(), "", "pristine: no digest part");
  st.migrating.set(S, "g2");
  st.beginImport([9000], "g2");
  st.addTransit(12, [[K("x"), "p1"], [K("y"), "p2"]]);
  st.noteImported("g2", 3);
  const snap = JSON.parse(JSON.stringify(st.snapshot()));
  const copy = new SlotState("g1", MAP);
  copy.restore(snap);
  assert.deepEqual(copy.snapshot(), st.snapshot());
  assert.equal(copy.digest(), st.digest());
  assert.notEqual(st.digest(), "");
  assert.equal(copy.transitBatch(K("y")), 12);
  assert.ok(copy.wasImported("g2", 3));
  assert.equal(copy.askingStamp, 1);
  assert.equal(copy.importSince(9000), 1);
  // A snapshot written before import numbers: `[slot, group]`, no count.
  const older = new SlotState("g1", MAP);
  older.restore({ ...snap, importing: [[9000, "g2"]], imports: undefined });
  assert.equal(older.importSince(9000), 0);
  assert.equal(older.askingStamp, 0);
  copy.restore(undefined);
  assert.ok(copy.pristine);
  // Malformed fields are refused, and the state is left as it was.
  const broken: unknown[] = [
    null,
    { ...snap, map: [1, [[0, 16383, "g9"]]] },
    { ...snap, map: [1, [[0, 100, "g1"]]] },
    { ...snap, map: ["1", snap.map[1]] },
    { ...snap, migrating: [[16384, "g2"]] },
    { ...snap, importing: [[1, "nope"]] },
    { ...snap, importing: [[1, "g2", 2]] },
    { ...snap, importing: [[1, "g2", 1, 0]] },
    { ...snap, imports: "1" },
    { ...snap, transit: [[1, [[K("x")]]]] },
    { ...snap, transit: [[1.5, []]] },
    { ...snap, imported: [["g2", ["3"]]] },
    { ...snap, imported: undefined },
  ];
  for (const b of broken) {
    assert.throws(() => copy.restore(b), TypeError, JSON.stringify(b));
    assert.ok(copy.pristine, "nothing changed");
  }
});

Deno.test("kv slots: commands error without groups, and the CLUSTER subcommands' errors", () => {
  const plain = new KvStore();
  assert.deepEqual(run(plain, ["__SLOTMAP"]), { err: NO_CLUSTER });
  assert.deepEqual(cluster(plain, "SETSLOT", "1", "STABLE"), { err: NO_CLUSTER });
  // Without groups nothing is routed.
  assert.deepEqual(run(plain, ["MSET", K("a"), "1", G2KEY, "2"]), OK);

  const g1 = store("g1");
  const g2 = store("g2");
  const bad = "ERR Invalid CLUSTER SETSLOT action or number of arguments. Try CLUSTER HELP";
  assert.equal(errOf(cluster(g1, "SETSLOT", "1", "FOO", "g2")), bad);
  assert.equal(errOf(cluster(g1, "SETSLOT", "1", "STABLE", "x")), bad);
  assert.equal(errOf(cluster(g1, "SETSLOT", "1", "MIGRATING")), bad);
  assert.equal(errOf(cluster(g1, "SETSLOT", "x", "STABLE")), "ERR Invalid or out of range slot");
  assert.equal(
    errOf(cluster(g1, "SETSLOT", "16384", "STABLE")),
    "ERR Invalid or out of range slot",
  );
  assert.equal(
    errOf(cluster(g1, "SETSLOT", "1", "MIGRATING", "g9")),
    "ERR I don't know about group g9",
  );
  assert.match(errOf(cluster(g1, "SETSLOT", "1", "MIGRATING", "g1")), /itself/);
  assert.equal(
    errOf(cluster(g1, "SETSLOT", "8191-8192", "MIGRATING", "g2")),
    "ERR I'm not the owner of hash slot 8192",
  );
  assert.equal(
    errOf(cluster(g2, "SETSLOT", "8191-8192", "IMPORTING", "g1")),
    "ERR I'm already the owner of hash slot 8192",
  );
  assert.match(errOf(cluster(g2, "SETSLOT", "1", "NODE", "g2")), /control group g1/);
  assert.equal(errOf(cluster(g1, "SETSLOT", "1", "NODE", "g3")), "ERR I don't know about group g3");
  // LOADSLOTMAP
  assert.match(errOf(cluster(g2, "LOADSLOTMAP", "1", "0", "16383")), /syntax/);
  assert.equal(errOf(cluster(g2, "LOADSLOTMAP", "x", "0", "16383", "g1")), "ERR Invalid epoch");
  assert.equal(
    errOf(cluster(g2, "LOADSLOTMAP", "1", "0", "16384", "g1")),
    "ERR Invalid or out of range slot",
  );
  assert.equal(
    errOf(cluster(g2, "LOADSLOTMAP", "1", "0", "16383", "gx")),
    "ERR I don't know about group gx",
  );
  assert.match(
    errOf(cluster(g2, "LOADSLOTMAP", "1", "0", "100", "g1")),
    /invalid slot map: slot 101 has no owner/,
  );
  assert.equal(cluster(g2, "LOADSLOTMAP", "0", "0", "16383", "g1"), 0, "not newer: no-op");
  // g2 still holds keys of 8192-16383: it cannot give them away.
  assert.deepEqual(run(g2, ["SET", G2KEY, "v"]), OK);
  assert.equal(
    errOf(cluster(g2, "LOADSLOTMAP", "1", "0", "16383", "g1")),
    `ERR Can't assign hashslot ${
      keySlot(G2KEY)
    } to a different group while I still hold keys for this hash slot.`,
  );
  assert.equal((run(g2, ["__SLOTMAP"]) as Reply[])[0], 0, "nothing changed");
  // MIGRATEKEYS / IMPORTKEYS / MIGRATEDONE
  assert.equal(
    errOf(cluster(g1, "MIGRATEKEYS", String(S), "5")),
    `ERR hash slot ${S} is not migrating`,
  );
  assert.deepEqual(cluster(g1, "SETSLOT", String(S), "MIGRATING", "g2"), OK);
  assert.match(errOf(cluster(g1, "MIGRATEKEYS", String(S), "0")), /positive/);
  assert.match(errOf(cluster(g1, "MIGRATEKEYS", String(S))), /syntax/);
  assert.deepEqual(cluster(g1, "MIGRATEKEYS", String(S), "5"), [0], "no keys: nothing left");
  const payload = JSON.stringify(["string", 0, "v"]);
  assert.equal(
    errOf(cluster(g2, "IMPORTKEYS", "g1", "5", K("a"), payload)),
    `ERR hash slot ${S} is not importing from group g1`,
  );
  assert.deepEqual(cluster(g2, "SETSLOT", String(S), "IMPORTING", "g1"), OK);
  assert.match(errOf(cluster(g2, "IMPORTKEYS", "g1", "5", K("a"))), /syntax/);
  assert.match(errOf(cluster(g2, "IMPORTKEYS", "g1", "x", K("a"), payload)), /batch id/);
  assert.match(errOf(cluster(g2, "IMPORTKEYS", "gz", "5", K("a"), payload)), /gz/);
  // A bad payload in a batch: nothing of the batch is set.
  assert.match(
    errOf(cluster(g2, "IMPORTKEYS", "g1", "5", K("a"), payload, K("b"), '["string"]')),
    /bad payload/,
  );
  assert.equal(run(g2, ["__ASKING", "1", "EXISTS", K("a")]), 0);
  assert.equal(cluster(g2, "IMPORTKEYS", "g1", "5", K("a"), payload), 1);
  assert.equal(cluster(g2, "IMPORTKEYS", "g1", "5", K("a"), payload), 0, "once");
  assert.match(errOf(cluster(g1, "MIGRATEDONE", "x")), /batch id/);
  assert.equal(cluster(g1, "MIGRATEDONE", "99"), 0);
  assert.match(errOf(cluster(g1, "NOPE", "x")), /unknown subcommand 'NOPE'/);
  // STABLE clears; IMPORTING's imported batches are forgotten with it.
  assert.deepEqual(cluster(g2, "SETSLOT", String(S), "STABLE"), OK);
  assert.deepEqual([g2.slots!.importing.size, g2.slots!.migrating.size], [0, 0]);
  assert.equal(g2.slots!.askingStamp, 1, "the count of imports begun stays");
});

Deno.test("kv slots: migration payloads are field-checked", () => {
  for (
    const bad of [
      "nope",
      "[]",
      JSON.stringify(["string", 0]),
      JSON.stringify(["blob", 0, "x"]),
      JSON.stringify(["string", -1, "x"]),
      JSON.stringify(["string", 1.5, "x"]),
      JSON.stringify(["string", 0, 5]),
      JSON.stringify(["hash", 0, ["f"]]),
      JSON.stringify(["list", 0, []]),
      JSON.stringify(["set", 0, [1]]),
      JSON.stringify(["stream", 0, { bogus: true }]),
    ]
  ) {
    assert.throws(() => decodeRecord(bad), TypeError, bad);
  }
  assert.deepEqual(decodeRecord(JSON.stringify(["string", 5, "\xff\x00"])), {
    t: "string",
    v: "\xff\x00",
    exp: 5,
  });
});

Deno.test("kv slots: NODE at the control group and LOADSLOTMAP's adoption rules", () => {
  const g1 = store("g1");
  const g2 = store("g2");
  assert.deepEqual(run(g1, ["SET", K("a"), "1"]), OK);
  // The control group would give away a slot it holds keys of: refused.
  assert.match(errOf(cluster(g1, "SETSLOT", String(S), "NODE", "g2")), /still hold keys/);
  assert.equal(run(g1, ["DEL", K("a")]), 1);
  assert.deepEqual(cluster(g1, "SETSLOT", String(S), "MIGRATING", "g2"), OK);
  assert.deepEqual(cluster(g2, "SETSLOT", String(S), "IMPORTING", "g1"), OK);
  assert.equal(cluster(g1, "SETSLOT", String(S), "NODE", "g2"), 1);
  assert.equal(cluster(g1, "SETSLOT", String(S), "NODE", "g2"), 1, "idempotent");
  // Handed over: g1 holds no key of S and answers ASK (g2 may still have the old map, where S is
  // g1's, and would answer MOVED back); g2 serves it after ASKING meanwhile.
  assert.ok(g1.slots!.handedOver(S));
  assert.deepEqual(run(g1, ["GET", K("x")]), { err: `ASK ${S} g2` });
  assert.deepEqual(run(g2, ["GET", K("x")]), { err: `MOVED ${S} g1` }, "g2 has the old map");
  assert.equal(run(g2, ["__ASKING", "1", "GET", K("x")]), null);
  const map = run(g1, ["__SLOTMAP"]) as Reply[];
  assert.deepEqual(map, [1, [0, S - 1, "g1"], [S, S, "g2"], [S + 1, 8191, "g1"], [
    8192,
    16383,
    "g2",
  ]]);
  const args = map.flatMap((r) => Array.isArray(r) ? r : [r]).map(String);
  assert.equal(cluster(g2, "LOADSLOTMAP", ...args), 1);
  assert.equal(cluster(g2, "LOADSLOTMAP", ...args), 0);
  assert.equal(g2.slots!.importing.size, 0, "importing cleared for a slot now owned");
  assert.deepEqual(run(g2, ["__SLOTMAP"]), map);
  // The same map again at g1 (every group has it): the hand-over ends, MOVED from now on.
  assert.equal(cluster(g1, "LOADSLOTMAP", ...args), 0);
  assert.equal(g1.slots!.migrating.size, 0, "migrating cleared for a slot no longer owned");
  assert.deepEqual(run(g1, ["GET", K("x")]), { err: `MOVED ${S} g2` });
  // Moving it back: epoch 2.
  assert.equal(cluster(g1, "SETSLOT", String(S), "NODE", "g1"), 2);
});

Deno.test("kv slots: steps with EPOCH are refused at another epoch (a step of an older move)", () => {
  const g1 = store("g1");
  const g2 = store("g2");
  const payload = JSON.stringify(["string", 0, "old"]);
  assert.equal(
    errOf(cluster(g2, "SETSLOT", String(S), "IMPORTING", "g1", "EPOCH", "x")),
    "ERR Invalid epoch",
  );
  assert.match(
    errOf(cluster(g2, "SETSLOT", String(S), "STABLE", "EPOCH", "0")),
    /Invalid CLUSTER SETSLOT/,
  );
  assert.match(
    errOf(cluster(g2, "SETSLOT", String(S), "IMPORTING", "g1", "EPOCH")),
    /Invalid CLUSTER SETSLOT/,
  );
  // A move at epoch 0: every step names it.
  assert.deepEqual(cluster(g2, "SETSLOT", String(S), "IMPORTING", "g1", "EPOCH", "0"), OK);
  assert.deepEqual(cluster(g1, "SETSLOT", String(S), "MIGRATING", "g2", "EPOCH", "0"), OK);
  assert.equal(cluster(g2, "IMPORTKEYS", "g1", "7", "EPOCH", "0", K("a"), payload), 1);
  assert.equal(cluster(g1, "SETSLOT", String(S), "NODE", "g2", "EPOCH", "0"), 1);
  assert.equal(cluster(g1, "SETSLOT", String(S), "NODE", "g2", "EPOCH", "0"), 1, "a retry: done");
  const args = (run(g1, ["__SLOTMAP"]) as Reply[]).flatMap((r) => Array.isArray(r) ? r : [r])
    .map(String);
  assert.equal(cluster(g2, "LOADSLOTMAP", ...args), 1);
  assert.equal(cluster(g1, "LOADSLOTMAP", ...args), 0);
  // Moved back at epoch 1 (the key with it).
  assert.deepEqual(cluster(g1, "SETSLOT", String(S), "IMPORTING", "g2", "EPOCH", "1"), OK);
  // Copies of the first move's steps, ordered late: refused, nothing changes.
  const stale = /^ERR the slot map is at epoch [12], not 0: a (step|batch) of another move$/;
  assert.match(errOf(cluster(g2, "SETSLOT", String(S), "MIGRATING", "g1", "EPOCH", "0")), stale);
  assert.equal(g2.slots!.migrating.size, 0);
  assert.match(errOf(cluster(g2, "SETSLOT", String(S), "IMPORTING", "g1", "EPOCH", "0")), stale);
  assert.match(errOf(cluster(g1, "IMPORTKEYS", "g2", "7", "EPOCH", "0", K("a"), payload)), stale);
  assert.equal(g1.peek(K("a")), undefined, "the old batch set nothing");
  // The first move's NODE again, after the slot went back to g1 (epoch 2): refused, while
  // without EPOCH it would take the slot away from g1 again.
  assert.deepEqual(cluster(g2, "SETSLOT", String(S), "MIGRATING", "g1", "EPOCH", "1"), OK);
  assert.equal(cluster(g1, "SETSLOT", String(S), "NODE", "g1", "EPOCH", "1"), 2);
  assert.match(errOf(cluster(g1, "SETSLOT", String(S), "NODE", "g2", "EPOCH", "0")), stale);
  assert.equal(g1.slots!.map.owner(S), "g1");
  assert.equal(g1.slots!.map.epoch, 2);
});

Deno.test("kv slots: clients blocked on a slot that leaves the group are answered MOVED", () => {
  const g1 = store("g1");
  const g2 = store("g2");
  let other = "";
  for (let i = 0; other === ""; i++) {
    const slot = keySlot(`o${i}`);
    if (slot < 8192 && slot !== S) other = `o${i}`;
  }
  const blocked = { ok: "__BLOCKED" };
  assert.deepEqual(run(g1, ["__BLOCK", "1.0/1", "BLPOP", K("w"), "0"]), blocked);
  assert.deepEqual(run(g1, ["__BLOCK", "1.0/2", "BLPOP", other, "0"]), blocked);
  assert.deepEqual(cluster(g2, "SETSLOT", String(S), "IMPORTING", "g1"), OK);
  assert.deepEqual(cluster(g1, "SETSLOT", String(S), "MIGRATING", "g2"), OK);
  assert.equal(g1.waiters.get("1.0/1")?.handed, undefined, "migrating: still waiting");
  assert.equal(cluster(g1, "SETSLOT", String(S), "NODE", "g2"), 1);
  // The slot left: its waiter ends with MOVED, the other one goes on waiting.
  assert.deepEqual(run(g1, ["__BFINISH", "1.0/1"]), { err: `MOVED ${S} g2` });
  assert.equal(g1.waiters.get("1.0/2")?.handed, undefined);
  // The same at a group that learns the map by LOADSLOTMAP (g2 gives S back to g1).
  const args = (run(g1, ["__SLOTMAP"]) as Reply[]).flatMap((r) => Array.isArray(r) ? r : [r])
    .map(String);
  assert.equal(cluster(g2, "LOADSLOTMAP", ...args), 1);
  assert.deepEqual(run(g2, ["__BLOCK", "4.0/1", "BLPOP", K("w"), "0"]), blocked);
  assert.deepEqual(cluster(g1, "SETSLOT", String(S), "IMPORTING", "g2"), OK);
  assert.deepEqual(cluster(g2, "SETSLOT", String(S), "MIGRATING", "g1"), OK);
  assert.equal(cluster(g1, "SETSLOT", String(S), "NODE", "g1"), 2);
  const back = (run(g1, ["__SLOTMAP"]) as Reply[]).flatMap((r) => Array.isArray(r) ? r : [r])
    .map(String);
  assert.equal(cluster(g2, "LOADSLOTMAP", ...back), 1);
  assert.deepEqual(run(g2, ["__BFINISH", "4.0/1"]), { err: `MOVED ${S} g1` });
  assert.equal(g2.waiters.size, 0);
});

Deno.test("kv slots: reads, writes, EXEC and blocking commands are routed at apply time", () => {
  const g1 = store("g1");
  // A key of g2's: MOVED naming the group, for reads, writes, retries and transactions.
  const moved = { err: `MOVED ${keySlot(G2KEY)} g2` };
  assert.deepEqual(run(g1, ["GET", G2KEY]), moved);
  assert.deepEqual(run(g1, ["SET", G2KEY, "v"]), moved);
  const tag = { client: "c", seq: 1 };
  assert.deepEqual(run(g1, ["SET", G2KEY, "v"], 1_000, tag), moved);
  // The request's tag again (say, late through another replica, once the slot could be served
  // here): the remembered redirect, nothing applied.
  assert.deepEqual(run(g1, ["SET", K("a"), "v0"], 1_000, tag), moved, "a redirect is remembered");
  assert.equal(run(g1, ["GET", K("a")]), null, "and nothing applied under its tag");
  const next = { client: "c", seq: 2 };
  assert.deepEqual(run(g1, ["SET", K("a"), "v"], 1_000, next), OK);
  assert.deepEqual(run(g1, ["SET", K("a"), "other"], 1_000, next), OK, "a retry: the result");
  assert.equal(run(g1, ["GET", K("a")]), "v");
  assert.deepEqual(run(g1, encodeExec([], [["SET", G2KEY, "1"], ["GET", G2KEY]])), moved);
  assert.deepEqual(
    run(g1, encodeExec([], [["SET", K("a"), "1"], ["GET", G2KEY]])),
    { err: "CROSSSLOT Keys in request don't hash to the same slot" },
  );
  assert.deepEqual(run(g1, ["__BLOCK", "w1", "BLPOP", G2KEY, "0"]), moved);
  assert.deepEqual(run(g1, ["SET", K("e"), "v", "PX", "10"]), OK);
  // Migrating: EXEC is routed as one unit (ASK when none of its keys is here).
  assert.deepEqual(cluster(g1, "SETSLOT", String(S), "MIGRATING", "g2"), OK);
  assert.deepEqual(run(g1, encodeExec([], [["GET", K("a")], ["APPEND", K("a"), "w"]])), ["v", 2]);
  assert.deepEqual(run(g1, encodeExec([], [["GET", K("new")]])), { err: `ASK ${S} g2` });
  assert.deepEqual(run(g1, encodeExec([], [["MGET", K("a"), K("new")]])), { err: TRYAGAIN_ERROR });
  assert.deepEqual(
    run(g1, ["__ASKING", "1", "GET", K("new")]),
    { err: `ASK ${S} g2` },
    "ASKING: not here",
  );
  // Commands without keys are served.
  assert.equal(run(g1, ["DBSIZE"], 1_005), 2);
  // An expired key counts as absent.
  assert.equal(run(g1, ["GET", K("e")], 1_005), "v");
  assert.deepEqual(run(g1, ["GET", K("e")], 5_000), { err: `ASK ${S} g2` });
});

Deno.test("kv slots: in-transit keys leave the key space and answer TRYAGAIN; snapshots keep them", () => {
  const g1 = store("g1");
  for (const k of ["a", "b", "c"]) assert.deepEqual(run(g1, ["SET", K(k), k]), OK);
  assert.deepEqual(run(g1, ["SET", "{c}other", "x"]), OK);
  assert.deepEqual(cluster(g1, "SETSLOT", String(S), "MIGRATING", "g2"), OK);
  const batch = cluster(g1, "MIGRATEKEYS", String(S), "2") as Reply[];
  assert.equal(batch.length, 5);
  assert.deepEqual(cluster(g1, "MIGRATEKEYS", String(S), "2"), batch, "resumed: the same batch");
  const [id, k0] = batch as [number, string];
  assert.equal(run(g1, ["DBSIZE"]), 2, "in transit: not in the key space");
  assert.ok(!(run(g1, ["KEYS", "*"]) as string[]).includes(k0));
  assert.deepEqual(run(g1, ["GET", k0]), { err: TRYAGAIN_ERROR });
  assert.deepEqual(run(g1, ["SET", k0, "new"]), { err: TRYAGAIN_ERROR });
  assert.match(errOf(cluster(g1, "SETSLOT", String(S), "STABLE")), /in transit/);
  // Snapshot, restore, digest: the same state.
  const snap = JSON.parse(JSON.stringify(g1.snapshot())) as KvSnapshot;
  assert.ok(snap.slots !== undefined);
  const copy = store("g1");
  assert.equal(copy.checkState(snap), null);
  copy.restore(snap);
  assert.equal(copy.digest(), g1.digest());
  assert.deepEqual(run(copy, ["GET", k0]), { err: TRYAGAIN_ERROR });
  assert.deepEqual(cluster(copy, "MIGRATEKEYS", String(S), "2"), batch);
  // The digest sees the slot state: after MIGRATEDONE on one only, they differ.
  assert.equal(cluster(copy, "MIGRATEDONE", String(id)), 2);
  assert.notEqual(copy.digest(), g1.digest());
  // A malformed slot state is refused by the dry run.
  const bad = { ...snap, slots: { ...(snap.slots as object), migrating: [[S, "g7"]] } };
  assert.match(copy.checkState(bad) ?? "", /unknown group g7/);
  // A snapshot without slot state: the epoch-0 state.
  const plain = { ...snap };
  delete plain.slots;
  copy.restore(plain);
  assert.ok(copy.slots!.pristine);
});

/**
 * Moves slot S from g1 to g2 step by step as the reshard tool does (batches of 2), with random
 * client commands between every two steps. A client follows redirects as cluster clients do
 * (MOVED: the other group; ASK: ASKING then the other group; TRYAGAIN: again later, here after the
 * next step; so is a command bounced between MOVED g2 and MOVED g1 in the window between the
 * control group's SETSLOT NODE and the target's LOADSLOTMAP). A model (a plain map) takes every write that was served; every read must return
 * the model's value, and at the end the keys of S are in g2 only, exactly the model's.
 */
Deno.test("kv slots: a slot migrates between two stores with interleaved writes (model checked)", () => {
  for (let seed = 1; seed <= 20; seed++) {
    const rnd = new Prng(seed);
    const stores: Record<string, KvStore> = { g1: store("g1"), g2: store("g2") };
    const model = new Map<string, string>();
    const names = Array.from({ length: 12 }, (_, i) => K(`k${i}`));
    let time = 1_000;
    let served = 0;
    /** Between NODE at g1 and LOADSLOTMAP at g2. */
    let window = false;
    /** One client command on `key`, starting at g1 (whose map may be old). */
    const client = (): void => {
      const key = names[Math.floor(rnd.next() * names.length)];
      const write = rnd.next() < 0.6;
      const argv = write ? ["SET", key, `v${time}`] : ["GET", key];
      let at = "g1";
      let asking = false;
      for (let hop = 0; hop < 4; hop++) {
        time++;
        // Stamped as the receiving replica's session does when it reads the command.
        const stamp = String(stores[at].slots!.askingStamp);
        const op = asking ? ["__ASKING", stamp, ...argv] : argv;
        const reply = run(stores[at], op, time);
        const e = reply !== null && typeof reply === "object" && "err" in reply ? reply.err : "";
        if (e.startsWith("TRYAGAIN")) return; // retried later: nothing happened
        const redirect = /^(MOVED|ASK) [0-9]+ (g[12])$/.exec(e);
        if (redirect !== null) {
          at = redirect[2];
          asking = redirect[1] === "ASK";
          continue;
        }
        assert.equal(e, "", `seed ${seed}: ${argv.join(" ")}: ${e}`);
        served++;
        if (write) model.set(key, argv[2]);
        else assert.equal(reply, model.get(key) ?? null, `seed ${seed}: GET ${key} at ${at}`);
        return;
      }
      assert.ok(window, `seed ${seed}: too many redirections for ${argv.join(" ")}`);
    };
    const between = () => {
      const n = Math.floor(rnd.next() * 4);
      for (let i = 0; i < n; i++) client();
    };
    for (let i = 0; i < 8; i++) client();
    const steps: (() => void)[] = [
      () => assert.deepEqual(cluster(stores.g2, "SETSLOT", String(S), "IMPORTING", "g1"), OK),
      () => assert.deepEqual(cluster(stores.g1, "SETSLOT", String(S), "MIGRATING", "g2"), OK),
    ];
    for (const step of steps) {
      step();
      between();
    }
    for (let round = 0; round < 50; round++) {
      const batch = cluster(stores.g1, "MIGRATEKEYS", String(S), "2") as (string | number)[];
      between();
      if (batch.length === 1) break;
      const [id, ...pairs] = batch;
      assert.equal(cluster(stores.g2, "IMPORTKEYS", "g1", String(id), ...pairs.map(String)), 1);
      between();
      // A duplicate delivery of the batch (a resumed tool) changes nothing.
      assert.equal(cluster(stores.g2, "IMPORTKEYS", "g1", String(id), ...pairs.map(String)), 0);
      assert.equal(cluster(stores.g1, "MIGRATEDONE", String(id)), pairs.length / 2);
      between();
    }
    assert.equal(cluster(stores.g1, "SETSLOT", String(S), "NODE", "g2"), 1);
    window = true;
    between();
    window = false;
    const map = (run(stores.g1, ["__SLOTMAP"]) as Reply[]).flatMap((r) =>
      Array.isArray(r) ? r : [r]
    );
    assert.equal(cluster(stores.g2, "LOADSLOTMAP", ...map.map(String)), 1);
    for (let i = 0; i < 10; i++) client();
    // Every key of S is in g2 exactly as the model says, none left in g1 or in transit.
    assert.equal(run(stores.g1, ["DBSIZE"]), 0, `seed ${seed}`);
    assert.equal(stores.g1.slots!.transitSize, 0);
    assert.deepEqual(
      (run(stores.g2, ["KEYS", "*"]) as string[]).sort(),
      [...model.keys()].sort(),
      `seed ${seed}`,
    );
    for (const [k, v] of model) assert.equal(run(stores.g2, ["GET", k]), v);
    assert.ok(served > 10, `seed ${seed}: clients were served (${served})`);
  }
});

/**
 * Random resharding operations and client commands on a g1 store; at random points its snapshot
 * is restored into a fresh store, which then applies the same operations: every reply and the
 * final digests are equal (the snapshot holds the whole slot state), and nothing throws.
 */
Deno.test("kv slots: random operations, snapshots restored mid-way, replies and digests equal", () => {
  for (let seed = 1; seed <= 30; seed++) {
    const rnd = new Prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd.next() * xs.length)];
    const slots = [String(S), `${S}-${S + 1}`, "9000", "100-200"];
    const keys = [K("a"), K("b"), "{c}x", G2KEY];
    const ops = (): string[] => {
      const n = String(Math.floor(rnd.next() * 4));
      return pick([
        () => [
          "__RESHARD",
          "SETSLOT",
          pick(slots),
          pick(["IMPORTING", "MIGRATING", "NODE"]),
          pick(["g1", "g2"]),
        ],
        () => ["__RESHARD", "SETSLOT", pick(slots), "STABLE"],
        () => ["__RESHARD", "MIGRATEKEYS", pick(slots), "2"],
        () => ["__RESHARD", "MIGRATEDONE", n],
        () => ["__RESHARD", "IMPORTKEYS", "g2", n, pick(keys), JSON.stringify(["string", 0, n])],
        () => ["__RESHARD", "LOADSLOTMAP", n, "0", "9999", "g1", "10000", "16383", "g2"],
        () => ["SET", pick(keys), n],
        () => ["__ASKING", String(Math.floor(rnd.next() * 3)), "SET", pick(keys), n],
        () => ["GET", pick(keys)],
        () => ["__SLOTMAP"],
      ])();
    };
    const a = store("g1");
    let b: KvStore | undefined;
    for (let i = 0; i < 60; i++) {
      if (b === undefined && rnd.next() < 0.05) {
        b = store("g1");
        b.restore(JSON.parse(JSON.stringify(a.snapshot())));
        assert.equal(b.digest(), a.digest(), `seed ${seed}: restored`);
      }
      const argv = ops();
      const ra = run(a, argv, 1_000 + i);
      if (b !== undefined) assert.deepEqual(run(b, argv, 1_000 + i), ra, `seed ${seed}: ${argv}`);
      assert.ok(!JSON.stringify(ra).includes("internal error"), `seed ${seed}: ${argv}: ${ra}`);
    }
    if (b !== undefined) assert.equal(b.digest(), a.digest(), `seed ${seed}`);
  }
});

Deno.test("kv slots: a slot's keys come from the slot index, in byte order, the same after a restore", () => {
  const g1 = store("g1");
  assert.ok(g1.keyspace.keysInSlot(S) !== undefined, "a sharded store indexes its keys by slot");
  assert.equal(new KvStore().keyspace.keysInSlot(S), undefined, "a plain one does not");
  const rnd = new Prng(7);
  const names = Array.from({ length: 60 }, (_, i) => K(`k${i}`));
  // Adds and deletes in a random order, so that the live store's sets are in another order than
  // a restored store's (built in the key space's order).
  for (let i = 0; i < 400; i++) {
    const key = names[Math.floor(rnd.next() * names.length)];
    run(g1, rnd.next() < 0.6 ? ["SET", key, "v"] : ["DEL", key]);
  }
  run(g1, ["SET", K("short"), "v", "PX", "50"], 1_000);
  run(g1, ["SET", "{c}elsewhere", "v"]);
  const live = (run(g1, ["KEYS", `${TAG}*`], 1_010) as string[]).sort();
  assert.ok(live.includes(K("short")));
  assert.deepEqual(run(g1, ["__SLOTKEYS", "GET", String(S), "1000"], 1_010), live);
  assert.equal(run(g1, ["__SLOTKEYS", "COUNT", String(S)], 1_010), live.length);
  assert.deepEqual(run(g1, ["__SLOTKEYS", "GET", String(S), "3"], 1_010), live.slice(0, 3));
  // Once its time has passed, the key is not counted.
  assert.equal(run(g1, ["__SLOTKEYS", "COUNT", String(S)], 2_000), live.length - 1);
  const copy = store("g1");
  copy.restore(JSON.parse(JSON.stringify(g1.snapshot())));
  assert.deepEqual(cluster(copy, "SETSLOT", String(S), "MIGRATING", "g2"), OK);
  assert.deepEqual(cluster(g1, "SETSLOT", String(S), "MIGRATING", "g2"), OK);
  // Batch by batch, the same keys on both, in byte order, until the slot is empty.
  let moved = 0;
  for (let step = 0; step < 100; step++) {
    const batch = cluster(g1, "MIGRATEKEYS", String(S), "4") as Reply[];
    assert.deepEqual(cluster(copy, "MIGRATEKEYS", String(S), "4"), batch, `batch ${step}`);
    if (batch[0] === 0) break;
    const keys = batch.filter((_, i) => i % 2 === 1) as string[];
    assert.deepEqual(keys, [...keys].sort(), "a batch in byte order");
    moved += keys.length;
    assert.equal(cluster(g1, "MIGRATEDONE", String(batch[0])), keys.length);
    assert.equal(cluster(copy, "MIGRATEDONE", String(batch[0])), keys.length);
  }
  assert.equal(moved, live.length, "every key of the slot moved");
  assert.equal(run(g1, ["__SLOTKEYS", "COUNT", String(S)]), 0);
  assert.equal(copy.digest(), g1.digest());
  assert.deepEqual(run(g1, ["GET", "{c}elsewhere"]), "v", "a key of another slot stays");
});
