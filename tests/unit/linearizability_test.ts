/**
 * Tests of the linearizability checker (`tests/support/linearizability.ts`): hand-written good and
 * bad histories, the equal-time convention, unknown outcomes, the step bound, randomized
 * histories from real executions (which must pass) and mutations of them that are provably
 * impossible (which must be rejected), larger histories, proofs from windows after the bound is
 * hit, and agreement with a brute-force reference on small random histories.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Prng } from "../support/prng.ts";
import { checkLinearizable, type CheckResult, type HistoryOp } from "../support/linearizability.ts";

// ---------------------------------------------------------------------------------------------
// History builders. Times are [call, ret]; ret null = no response.

function put(client: number, key: string, value: string, call: number, ret: number | null) {
  const h: HistoryOp = { client, op: { kind: "put", key, value }, call, ret };
  if (ret !== null) h.result = { kind: "ok" };
  return h;
}

function get(client: number, key: string, value: string | null, call: number, ret: number) {
  const h: HistoryOp = {
    client,
    op: { kind: "get", key },
    call,
    ret,
    result: { kind: "value", value },
  };
  return h;
}

function del(client: number, key: string, n: number | null, call: number, ret: number | null) {
  const h: HistoryOp = { client, op: { kind: "delete", key }, call, ret };
  if (ret !== null && n !== null) h.result = { kind: "int", value: n };
  return h;
}

function has(client: number, key: string, n: number, call: number, ret: number) {
  const h: HistoryOp = {
    client,
    op: { kind: "has", key },
    call,
    ret,
    result: { kind: "int", value: n },
  };
  return h;
}

function assertOk(history: HistoryOp[], note = ""): void {
  const r = checkLinearizable(history);
  assert.deepEqual(r, { ok: true }, `${note}\n${r.ok ? "" : r.message}`);
}

function assertBad(history: HistoryOp[], key: string, note = ""): string {
  const r: CheckResult = checkLinearizable(history);
  assert.equal(r.ok, false, `expected a violation: ${note}`);
  if (r.ok) throw new Error("unreachable");
  assert.equal(r.key, key);
  assert.ok(r.message.startsWith(`key ${JSON.stringify(key)}: `), r.message);
  assert.ok(!gaveUp(r.message), `rejected only for running out of steps: ${note}`);
  return r.message;
}

/** True when the checker gave up (search bound) rather than proving a violation. */
function gaveUp(message: string): boolean {
  return /^key "(?:[^"\\]|\\.)*": search exceeded/.test(message);
}

// ---------------------------------------------------------------------------------------------
// Known-good histories.

Deno.test("empty history is linearizable", () => {
  assertOk([]);
});

Deno.test("sequential history", () => {
  assertOk([
    get(1, "k", null, 0, 1),
    has(1, "k", 0, 2, 3),
    del(1, "k", 0, 4, 5),
    put(1, "k", "a", 6, 7),
    get(2, "k", "a", 8, 9),
    has(2, "k", 1, 10, 11),
    put(1, "k", "b", 12, 13),
    get(1, "k", "b", 14, 15),
    del(2, "k", 1, 16, 17),
    get(1, "k", null, 18, 19),
    has(2, "k", 0, 20, 21),
  ]);
});

Deno.test("concurrent put and get: the read may see either value", () => {
  for (const seen of ["a", "b"]) {
    assertOk([put(1, "k", "a", 0, 1), put(2, "k", "b", 2, 10), get(3, "k", seen, 3, 5)], seen);
  }
  // A read concurrent with the very first put may see it or not.
  for (const seen of [null, "a"]) {
    assertOk([put(1, "k", "a", 0, 10), get(2, "k", seen, 1, 2)], String(seen));
  }
});

Deno.test("overlapping writes may take effect in either order", () => {
  for (const [first, second] of [["a", "b"], ["b", "a"]]) {
    assertOk([
      put(1, "k", "a", 0, 10),
      put(2, "k", "b", 1, 9),
      get(3, "k", first, 11, 12),
      get(3, "k", first, 13, 14),
      put(1, "k", "c", 15, 16),
      get(2, "k", "c", 17, 18),
    ], `${first} wins`);
    // Two reads during both writes can see first one value, then the other.
    assertOk([
      put(1, "k", "a", 0, 10),
      put(2, "k", "b", 0, 10),
      get(3, "k", first, 1, 2),
      get(3, "k", second, 3, 4),
    ]);
  }
});

Deno.test("deletes and has", () => {
  assertOk([
    put(1, "k", "a", 0, 1),
    del(2, "k", 1, 2, 6), // concurrent with the has and the get below
    has(3, "k", 1, 3, 4), // before the delete
    get(1, "k", null, 5, 7), // after it
    del(3, "k", 0, 8, 9),
    has(3, "k", 0, 10, 11),
  ]);
  // Two concurrent deletes of a present key: exactly one removes it.
  assertOk([put(1, "k", "a", 0, 1), del(1, "k", 1, 2, 5), del(2, "k", 0, 2, 5)]);
  assertOk([put(1, "k", "a", 0, 1), del(1, "k", 0, 2, 5), del(2, "k", 1, 2, 5)]);
});

Deno.test("unknown-outcome put that later reads observe", () => {
  assertOk([
    put(1, "k", "a", 0, 1),
    put(2, "k", "x", 2, null), // no response; took effect later
    get(3, "k", "a", 3, 4),
    get(3, "k", "x", 20, 21),
    get(1, "k", "x", 22, 23),
  ]);
  // The client moved on after the timeout: its next op overlaps the unknown one.
  assertOk([
    put(1, "k", "x", 0, null),
    put(1, "k", "y", 5, 6),
    get(2, "k", "x", 7, 8),
  ]);
  // An op that failed with UNKNOWN has a ret but no result: same thing.
  const failed: HistoryOp = {
    client: 2,
    op: { kind: "put", key: "k", value: "x" },
    call: 2,
    ret: 3,
  };
  assertOk([failed, get(1, "k", null, 4, 5), get(1, "k", "x", 6, 7)]);
});

Deno.test("unknown-outcome put that no read ever observes", () => {
  assertOk([
    put(1, "k", "a", 0, 1),
    put(2, "k", "lost", 2, null),
    get(1, "k", "a", 3, 4),
    get(1, "k", "a", 50, 51),
  ]);
  // Many of them, never observed.
  const h: HistoryOp[] = [put(1, "k", "a", 0, 1)];
  for (let i = 0; i < 30; i++) h.push(put(2 + i, "k", `u${i}`, 2 + i, null));
  for (let i = 0; i < 30; i++) h.push(get(1, "k", "a", 100 + 2 * i, 101 + 2 * i));
  assertOk(h);
});

Deno.test("unknown-outcome delete may or may not have happened", () => {
  assertOk([put(1, "k", "a", 0, 1), del(2, "k", null, 2, null), has(1, "k", 1, 3, 4)]);
  assertOk([put(1, "k", "a", 0, 1), del(2, "k", null, 2, null), has(1, "k", 0, 3, 4)]);
});

Deno.test("unknown-outcome reads are dropped", () => {
  const lostGet: HistoryOp = { client: 1, op: { kind: "get", key: "k" }, call: 0, ret: null };
  const failedHas: HistoryOp = { client: 2, op: { kind: "has", key: "k" }, call: 0, ret: 5 };
  assertOk([lostGet, failedHas, put(1, "k", "a", 10, 11), get(2, "k", "a", 12, 13)]);
  // A key with only unknown ops is trivially fine.
  assertOk([lostGet, put(3, "z", "q", 0, null)]);
});

Deno.test("many keys are checked independently", () => {
  const h: HistoryOp[] = [];
  for (let k = 0; k < 50; k++) {
    const key = `key-${k}`;
    h.push(put(k, key, `v${k}`, k, k + 100));
    h.push(get(k + 100, key, null, k, k + 1)); // concurrent with the put: may miss it
    h.push(get(k + 200, key, `v${k}`, 200, 201));
  }
  assertOk(h);
  // A violation on one key among many is reported for that key.
  h.push(get(999, "key-17", null, 300, 301));
  assertBad(h, "key-17");
});

Deno.test("binary-safe keys and values", () => {
  const key = "\x00\r\n\xff";
  assertOk([put(1, key, "\x00\x01", 0, 1), get(2, key, "\x00\x01", 2, 3)]);
  assertBad([put(1, key, "\x00\x01", 0, 1), get(2, key, "\x00\x02", 2, 3)], key);
});

// ---------------------------------------------------------------------------------------------
// Known-bad histories.

Deno.test("rejects a stale read after a completed write", () => {
  const msg = assertBad([
    put(1, "k", "old", 0, 1),
    put(1, "k", "new", 2, 3),
    get(2, "k", "old", 4, 5),
  ], "k");
  // The message explains: the prefix, the value, and the read that cannot be placed.
  assert.match(msg, /put "new"/);
  assert.match(msg, /#2 client 2 get -> "old" \[call 4, ret 5\]/);
  assert.match(msg, /put "new" -> ok \[call 2, ret 3\]: would overwrite "old"/);
  // A read that cannot fit at all is named as such.
  const msg2 = assertBad([put(1, "k", "a", 0, 1), get(2, "k", null, 2, 3)], "k");
  assert.match(
    msg2,
    /#1 client 2 get -> absent \[call 2, ret 3\]: read absent but the value is "a"/,
  );
});

Deno.test("rejects a read of a value never written", () => {
  const msg = assertBad([put(1, "k", "a", 0, 10), get(2, "k", "zzz", 1, 2)], "k");
  assert.match(msg, /#1 client 2 get -> "zzz" \[call 1, ret 2\] read a value that no put/);
  // Written, but only after the read returned.
  assertBad([get(2, "k", "zzz", 1, 2), put(1, "k", "zzz", 3, 4)], "k");
  assertBad([get(2, "k", "zzz", 1, 2)], "k");
  // Written to another key only.
  assertBad([put(1, "other", "zzz", 0, 1), get(2, "k", "zzz", 2, 3)], "k");
});

Deno.test("rejects a read going back in time", () => {
  // The long put of "b" overlaps both reads, but once a read saw "b", a later read can't see "a".
  assertBad([
    put(1, "k", "a", 0, 1),
    put(2, "k", "b", 2, 100),
    get(3, "k", "b", 10, 11),
    get(3, "k", "a", 20, 21),
  ], "k");
  // Same with two different readers.
  assertBad([
    put(1, "k", "a", 0, 1),
    put(2, "k", "b", 2, 100),
    get(3, "k", "b", 10, 11),
    get(4, "k", "a", 20, 21),
  ], "k");
});

Deno.test("rejects has=1 after a completed delete", () => {
  const msg = assertBad([
    put(1, "k", "a", 0, 1),
    del(1, "k", 1, 2, 3),
    has(2, "k", 1, 4, 5),
  ], "k");
  assert.match(msg, /returned 1 but the key is absent/);
});

Deno.test("rejects delete returning 1 on an absent key", () => {
  assertBad([del(1, "k", 1, 0, 1)], "k");
  assertBad([put(1, "k", "a", 0, 1), del(1, "k", 1, 2, 3), del(2, "k", 1, 4, 5)], "k");
});

Deno.test("rejects a lost write", () => {
  assertBad([put(1, "k", "a", 0, 1), get(2, "k", null, 2, 3)], "k");
  assertBad([put(1, "k", "a", 0, 1), has(2, "k", 0, 2, 3)], "k");
  assertBad([put(1, "k", "a", 0, 1), get(1, "k", "a", 2, 3), get(2, "k", null, 4, 5)], "k");
});

Deno.test("rejects an unknown-outcome write observed before its call", () => {
  assertBad([get(1, "k", "x", 0, 1), put(2, "k", "x", 5, null)], "k");
});

Deno.test("rejects results of the wrong shape", () => {
  const h: HistoryOp = {
    client: 1,
    op: { kind: "get", key: "k" },
    call: 0,
    ret: 1,
    result: { kind: "ok" },
  };
  const msg = assertBad([h], "k");
  assert.match(msg, /wrong shape/);
  assertBad([has(1, "k", 2, 0, 1)], "k");
});

Deno.test("touching intervals are concurrent; precedence needs ret < call", () => {
  // put "b" [5,10] touches put "a" [0,5] and the read [10,12]: "b" then "a" then the read fits.
  assertOk([put(1, "k", "a", 0, 5), put(2, "k", "b", 5, 10), get(3, "k", "a", 10, 12)]);
  // With a gap the order is forced and the read of "a" is stale.
  assertBad([put(1, "k", "a", 0, 4), put(2, "k", "b", 5, 10), get(3, "k", "a", 11, 12)], "k");
  // An op with call === ret is fine.
  assertOk([put(1, "k", "a", 3, 3), get(2, "k", "a", 3, 3)]);
});

Deno.test("malformed histories throw TypeError", () => {
  const bad: unknown[] = [
    { client: 1, op: { kind: "put", key: "k" }, call: 0, ret: 1, result: { kind: "ok" } },
    { client: 1, op: { kind: "frob", key: "k" }, call: 0, ret: 1 },
    { client: 1, op: { kind: "get", key: "k" }, call: 5, ret: 1 },
    { client: 1, op: { kind: "get", key: "k" }, call: NaN, ret: 1 },
    { client: 1, op: { kind: "get", key: 3 }, call: 0, ret: 1 },
  ];
  for (const h of bad) {
    assert.throws(() => checkLinearizable([h as HistoryOp]), TypeError, JSON.stringify(h));
  }
  assert.throws(() => checkLinearizable([], { maxSteps: 0 }), TypeError);
});

Deno.test("a search over the step bound fails instead of claiming ok", () => {
  const h: HistoryOp[] = [];
  for (let i = 0; i < 20; i++) h.push(put(i, "k", `v${i}`, 0, 100));
  h.push(get(99, "k", "v7", 101, 102));
  assertOk(h);
  const r = checkLinearizable(h, { maxSteps: 5 });
  assert.equal(r.ok, false);
  if (r.ok) throw new Error("unreachable");
  assert.equal(r.key, "k");
  assert.match(r.message, /search exceeded 5 steps/);
});

// ---------------------------------------------------------------------------------------------
// Randomized histories from real sequential executions.

/** Seeded random numbers in [0, 1) from the project's PRNG. */
function rng(seed: number): () => number {
  const prng = new Prng(seed);
  return () => prng.next();
}

interface GenOptions {
  clients: number;
  opsPerClient: number;
  keys: number;
  /** Probability that an op gets no response (outcome unknown). */
  unknownRate: number;
  /** Values for puts to pick from (default: a unique value per put). */
  valuePool?: string[];
}

/**
 * Each client issues ops one at a time (the next call after the previous return); each op takes
 * effect at a random integer point inside its [call, ret] interval. Applying the ops to a map in
 * the order of those points gives the results, so the history is linearizable by construction.
 * An op with no response takes effect at its point or (half the time) never.
 */
function generate(random: () => number, o: GenOptions): HistoryOp[] {
  const int = (n: number) => Math.floor(random() * n);
  const planned: { h: HistoryOp; at: number; applies: boolean }[] = [];
  for (let c = 0; c < o.clients; c++) {
    let t = int(20);
    for (let j = 0; j < o.opsPerClient; j++) {
      const call = t + int(5);
      const at = call + int(15);
      const ret = at + int(15);
      t = ret + 1;
      const key = `k${int(o.keys)}`;
      const roll = random();
      const op: HistoryOp["op"] = roll < 0.35
        ? {
          kind: "put",
          key,
          value: o.valuePool ? o.valuePool[int(o.valuePool.length)] : `c${c}-${j}`,
        }
        : roll < 0.75
        ? { kind: "get", key }
        : roll < 0.87
        ? { kind: "delete", key }
        : { kind: "has", key };
      const unknown = random() < o.unknownRate;
      planned.push({
        h: { client: c, op, call, ret: unknown ? null : ret },
        at,
        applies: !unknown || random() < 0.5,
      });
    }
  }
  // Equal points: the intervals both contain the point, so any order of them is valid.
  planned.sort((a, b) => a.at - b.at);
  const map = new Map<string, string>();
  for (const p of planned) {
    if (!p.applies) continue;
    const { kind, key, value } = p.h.op;
    let result: HistoryOp["result"];
    if (kind === "put") {
      map.set(key, value as string);
      result = { kind: "ok" };
    } else if (kind === "get") {
      result = { kind: "value", value: map.get(key) ?? null };
    } else if (kind === "delete") {
      result = { kind: "int", value: map.delete(key) ? 1 : 0 };
    } else {
      result = { kind: "int", value: map.has(key) ? 1 : 0 };
    }
    if (p.h.ret !== null) p.h.result = result;
  }
  // Shuffle: the checker must not depend on the input order.
  const out = planned.map((p) => p.h);
  for (let i = out.length - 1; i > 0; i--) {
    const j = int(i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/**
 * Makes one completed get return a value that was provably overwritten before the get was
 * called: a value with a single, completed writer W, and a completed write P of the same key
 * (another value, or a delete) with W.ret < P.call and P.ret < get.call. Returns null when the
 * history has no such get.
 */
function staleRead(
  h: HistoryOp[],
  random: () => number,
): { history: HistoryOp[]; index: number } | null {
  const done = (x: HistoryOp) => x.ret !== null && x.result !== undefined;
  const gets = completedGets(h);
  for (let attempt = 0; attempt < 20 && gets.length > 0; attempt++) {
    const index = gets[Math.floor(random() * gets.length)];
    const g = h[index];
    const current = (g.result as { value: string | null }).value;
    const writes = h.filter((x) => x.op.key === g.op.key && x.op.kind === "put");
    const stale = writes.filter((w) =>
      done(w) && w.op.value !== current &&
      writes.filter((x) => x.op.value === w.op.value).length === 1 &&
      h.some((p) =>
        p.op.key === g.op.key && done(p) && (p.op.kind === "delete" ||
          (p.op.kind === "put" && p.op.value !== w.op.value)) &&
        (w.ret as number) < p.call && (p.ret as number) < g.call
      )
    );
    if (stale.length === 0) continue;
    // The most recent such value: the hardest to tell apart from a legal read.
    stale.sort((a, b) => (b.ret as number) - (a.ret as number));
    const history = h.map((x) => ({ ...x }));
    history[index].result = { kind: "value", value: stale[0].op.value as string };
    return { history, index };
  }
  return null;
}

/** Indexes of completed gets. */
function completedGets(h: HistoryOp[]): number[] {
  return h.flatMap((x, i) => x.op.kind === "get" && x.result !== undefined ? [i] : []);
}

Deno.test("randomized: histories of real executions pass; impossible reads are rejected", () => {
  let staleCount = 0;
  for (let seed = 1; seed <= 150; seed++) {
    const random = rng(seed);
    const h = generate(random, {
      clients: 1 + Math.floor(random() * 6),
      opsPerClient: 5 + Math.floor(random() * 30),
      keys: 1 + Math.floor(random() * 3),
      unknownRate: random() < 0.5 ? 0 : 0.1,
    });
    assertOk(h, `seed ${seed}`);

    const gets = completedGets(h);
    if (gets.length === 0) continue;
    const i = gets[Math.floor(random() * gets.length)];
    const mutated = h.map((x) => ({ ...x }));
    mutated[i].result = { kind: "value", value: "never-written" }; // no put writes this value
    const r = checkLinearizable(mutated);
    assert.equal(r.ok, false, `seed ${seed}: mutated read of #${i} accepted`);
    if (r.ok) throw new Error("unreachable");
    assert.equal(r.key, h[i].op.key, `seed ${seed}`);
    assert.match(r.message, /no put of this key wrote/, `seed ${seed}`);

    // A stale read that is provably impossible needs the search itself to find it.
    const stale = staleRead(h, random);
    if (stale === null) continue;
    assertBad(stale.history, h[stale.index].op.key, `seed ${seed}, stale read #${stale.index}`);
    staleCount++;
  }
  assert.ok(staleCount > 50, `only ${staleCount} stale-read mutations`);
});

Deno.test("randomized: in a sequential history any other read value is rejected", () => {
  // No overlap at all: the only linearization is the real order, so changing a read to any
  // value other than the true one (including an older, stale value of the key) is a violation.
  for (let seed = 1; seed <= 100; seed++) {
    const random = rng(1000 + seed);
    const h = generate(random, { clients: 1, opsPerClient: 40, keys: 2, unknownRate: 0 });
    assertOk(h, `seed ${seed}`);
    const gets = completedGets(h);
    for (const i of gets) {
      const key = h[i].op.key;
      const truth = (h[i].result as { value: string | null }).value;
      const written = h.flatMap((x) => x.op.kind === "put" && x.op.key === key ? [x.op.value] : []);
      const others = [null, ...written].filter((v) => v !== truth);
      if (others.length === 0) continue;
      const wrong = others[Math.floor(random() * others.length)] ?? null;
      const mutated = h.map((x) => ({ ...x }));
      mutated[i].result = { kind: "value", value: wrong };
      const r = checkLinearizable(mutated);
      assert.equal(r.ok, false, `seed ${seed}: read #${i} of ${String(wrong)} accepted`);
    }
  }
});

// ---------------------------------------------------------------------------------------------
// A larger history.

Deno.test("2,000 ops over 5 keys and 8 clients", () => {
  const random = rng(42);
  const h = generate(random, { clients: 8, opsPerClient: 250, keys: 5, unknownRate: 0.005 });
  assert.equal(h.length, 2000);
  assertOk(h);
  // And the same history with one impossible read is rejected (not by running out of steps).
  const gets = completedGets(h);
  const i = gets[Math.floor(gets.length / 2)];
  const mutated = h.map((x) => ({ ...x }));
  mutated[i].result = { kind: "value", value: "never-written" };
  assertBad(mutated, h[i].op.key);
  const stale = staleRead(h, random);
  assert.ok(stale !== null);
  assertBad(stale.history, h[stale.index].op.key);
});

Deno.test("a violation beyond the step bound is still proven from a window around it", () => {
  // One key, 8 clients, unknown outcomes: the full search for the stale read runs out of steps,
  // and the checker then proves the violation from a short window of the history around it.
  let viaWindow = 0;
  for (let seed = 1; seed <= 6; seed++) {
    const random = rng(seed);
    const h = generate(random, { clients: 8, opsPerClient: 300, keys: 1, unknownRate: 0.05 });
    assertOk(h, `seed ${seed}`);
    const stale = staleRead(h, random);
    if (stale === null) continue;
    const r = checkLinearizable(stale.history, { maxSteps: 200_000 });
    assert.equal(r.ok, false, `seed ${seed}`);
    if (r.ok) throw new Error("unreachable");
    assert.ok(!gaveUp(r.message), r.message);
    // It names the stale read, or the put whose overwritten value it returned.
    const value = (stale.history[stale.index].result as { value: string }).value;
    const writer = h.findIndex((x) => x.op.kind === "put" && x.op.value === value);
    assert.match(r.message, new RegExp(`#(${stale.index}|${writer}) `), r.message);
    if (/window is a proof/.test(r.message)) viaWindow++;
  }
  assert.ok(viaWindow > 0, "no violation needed the window");
});

Deno.test("out of steps on a linearizable history: gives up, never claims a violation", () => {
  // The window proofs tried after the search runs out of steps must never refute a history that
  // is linearizable by construction: the answer is ok or "search exceeded", nothing else.
  let gaveUpCount = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const random = rng(7000 + seed);
    const int = (n: number) => Math.floor(random() * n);
    const h = generate(random, {
      clients: 2 + int(8),
      opsPerClient: 5 + int(25),
      keys: 1,
      unknownRate: [0, 0.1, 0.3][int(3)],
      valuePool: random() < 0.5 ? ["a", "b", "c"] : undefined,
    });
    const r = checkLinearizable(h, { maxSteps: 5 + int(100) });
    if (r.ok) continue;
    assert.ok(gaveUp(r.message), `seed ${seed}: false violation\n${r.message}`);
    gaveUpCount++;
  }
  assert.ok(gaveUpCount > 100, `the bound was hit only ${gaveUpCount} times`);
});

// ---------------------------------------------------------------------------------------------
// Agreement with a brute-force reference on small histories.

/**
 * Reference: tries every order of the ops that respects real time (A before B when
 * A.ret < B.call), with every known op placed and each unknown-outcome write placed or not.
 * Unknown-outcome reads are ignored. Exponential; only for a handful of ops per key.
 */
function bruteForce(history: HistoryOp[]): boolean {
  const keys = new Set(history.map((h) => h.op.key));
  for (const key of keys) {
    const ops = history.filter((h) =>
      h.op.key === key &&
      !(h.op.kind !== "put" && h.op.kind !== "delete" && (h.ret === null || !h.result))
    );
    const known = (h: HistoryOp) => h.ret !== null && h.result !== undefined;
    const retOf = (h: HistoryOp) => known(h) ? h.ret as number : Infinity;
    const used = new Array<boolean>(ops.length).fill(false);
    const search = (state: string | null, remainingKnown: number): boolean => {
      if (remainingKnown === 0) return true;
      for (let i = 0; i < ops.length; i++) {
        if (used[i]) continue;
        // Every unplaced known op that returned before this one was called must come first.
        if (ops.some((o, j) => !used[j] && j !== i && known(o) && retOf(o) < ops[i].call)) continue;
        const h = ops[i];
        const r = known(h) ? h.result : undefined;
        let next: string | null = state;
        if (h.op.kind === "put") {
          if (r && r.kind !== "ok") continue;
          next = h.op.value as string;
        } else if (h.op.kind === "get") {
          if (!r || r.kind !== "value" || r.value !== state) continue;
        } else if (h.op.kind === "has") {
          if (!r || r.kind !== "int" || r.value !== (state === null ? 0 : 1)) continue;
        } else {
          if (r && (r.kind !== "int" || r.value !== (state === null ? 0 : 1))) continue;
          next = null;
        }
        used[i] = true;
        const found = search(next, remainingKnown - (known(h) ? 1 : 0));
        used[i] = false;
        if (found) return true;
      }
      return false;
    };
    if (!search(null, ops.filter(known).length)) return false;
  }
  return true;
}

Deno.test("agrees with a brute-force reference on small random histories", () => {
  let good = 0;
  let bad = 0;
  for (let seed = 1; seed <= 3000; seed++) {
    const random = rng(50_000 + seed);
    const int = (n: number) => Math.floor(random() * n);
    const h = generate(random, {
      clients: 1 + int(4),
      opsPerClient: 1 + int(3),
      keys: 1 + int(2),
      unknownRate: 0.25,
      valuePool: ["a", "b", "c"], // few values, so unknown puts can share one
    });
    // Perturb some results: some histories stay linearizable, some do not.
    for (const x of h) {
      if (x.result !== undefined && random() < 0.25) {
        x.result = x.op.kind === "get"
          ? { kind: "value", value: [null, "a", "b", "c"][int(4)] }
          : x.op.kind === "put"
          ? { kind: "ok" }
          : { kind: "int", value: int(2) };
      }
    }
    const expected = bruteForce(h);
    const r = checkLinearizable(h);
    assert.equal(r.ok, expected, `seed ${seed}: ${JSON.stringify(h)}\n${r.ok ? "" : r.message}`);
    if (expected) good++;
    else bad++;
  }
  // Both verdicts were exercised a fair number of times.
  assert.ok(good > 300 && bad > 300, `good ${good}, bad ${bad}`);
});
