/**
 * Unit tests of XREAD and XREADGROUP with BLOCK as waiters of the replicated waiter queue
 * (`src/kv/commands/stream_read.ts` over `src/kv/waiters.ts`), in the state machine and through a
 * replica's blocked clients (`src/runtime/blocked_clients.ts`): `$` fixed at the waiter's place in
 * the order, XADD handing the new entries to every XREAD waiter and to the first XREADGROUP
 * waiter of a group (its PEL changed at the XADD's place), the same hand-offs on every replica,
 * timeout against XADD decided by whichever comes first in the order, Redis 7.0's replies and
 * errors (deleted stream or group, default COUNT, XGROUP SETID not waking), snapshots.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Command, Outcome, Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { isBlockingCommand } from "../../src/kv/commands/index.ts";
import { encodeExec } from "../../src/kv/commands/tx.ts";
import { BlockedClients } from "../../src/runtime/blocked_clients.ts";
import { waitFor } from "../support/cluster.ts";

const BLOCKED = { ok: "__BLOCKED" };
const NIL = { nil: "array" };

/** Applies a command line at ordered time `time` (ms). */
function run(kv: KvStore, argv: string[], time = 1_000): Reply {
  return kv.apply({ op: { argv, time } });
}

/** What each waiter holds: its reply if it finished now ("waiting" when nothing was handed). */
function holdings(kv: KvStore): Record<string, string> {
  const out: Record<string, string> = {};
  for (const w of kv.waiters.all()) {
    out[w.id] = w.handed === undefined
      ? "waiting"
      : w.handed.err ?? `${w.handed.key}:${w.handed.items.filter((_, i) => i % 4 === 0)}`;
  }
  return out;
}

Deno.test("stream waiters: only a line with BLOCK blocks; BLOCK inside STREAMS is a key", () => {
  assert.equal(isBlockingCommand(["XREAD", "STREAMS", "s", "0"]), false);
  assert.equal(isBlockingCommand(["XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "0"]), true);
  assert.equal(isBlockingCommand(["xread", "STREAMS", "block", "0"]), false);
  assert.equal(
    isBlockingCommand([
      "XREADGROUP",
      "GROUP",
      "g",
      "c",
      "NOACK",
      "BLOCK",
      "5",
      "STREAMS",
      "s",
      ">",
    ]),
    true,
  );
  assert.equal(isBlockingCommand(["XREADGROUP", "GROUP", "g", "c", "STREAMS", "s", ">"]), false);
  assert.equal(isBlockingCommand(["XRANGE", "s", "-", "+"]), false);
});

Deno.test("stream waiters: XADD serves every XREAD waiter, in order, the same on every replica", () => {
  const ops = [
    ["XADD", "s", "1-1", "f", "old"],
    ["__BLOCK", "2.b/1", "XREAD", "BLOCK", "0", "STREAMS", "s", "$"],
    ["__BLOCK", "1.a/1", "XREAD", "BLOCK", "0", "STREAMS", "other", "s", "$", "0"],
    ["__BLOCK", "3.c/1", "XREAD", "COUNT", "1", "BLOCK", "0", "STREAMS", "s", "$"],
    ["XADD", "s", "2-1", "f", "new1"],
    ["XADD", "s", "2-2", "f", "new2"],
  ];
  const stores = [1, 2, 3].map(() => new KvStore());
  const replies = stores.map((kv) => ops.map((op, i) => run(kv, op, 1_000 + i)));
  // The second line reads `0` of `s`: served at once with everything there, not a waiter.
  const atOnce = [["s", [["1-1", ["f", "old"]]]]];
  for (const r of replies) assert.deepEqual(r, ["1-1", BLOCKED, atOnce, BLOCKED, "2-1", "2-2"]);
  for (const kv of stores) {
    // `$` was fixed to 1-1 at the waiter's place: the first XADD served both waiters.
    assert.deepEqual(holdings(kv), { "2.b/1": "s:2-1", "3.c/1": "s:2-1" });
    assert.deepEqual(kv.waiters.get("2.b/1")?.argv.at(-1), "1-1", "$ resolved in the order");
  }
  assert.equal(new Set(stores.map((kv) => kv.digest())).size, 1, "same digest everywhere");
  for (const kv of stores) {
    assert.deepEqual(run(kv, ["__BFINISH", "2.b/1"]), [["s", [["2-1", ["f", "new1"]]]]]);
    assert.deepEqual(run(kv, ["__BFINISH", "3.c/1"]), [["s", [["2-1", ["f", "new1"]]]]]);
    assert.equal(kv.waiters.size, 0);
    assert.equal(run(kv, ["XLEN", "s"]), 3, "a read consumes nothing");
  }
});

Deno.test("stream waiters: a multi-key XREAD is answered with the one stream that got entries", () => {
  const kv = new KvStore();
  assert.deepEqual(
    run(kv, ["__BLOCK", "1.a/1", "XREAD", "BLOCK", "0", "STREAMS", "a", "b", "$", "$"]),
    BLOCKED,
  );
  run(kv, ["SET", "a", "x"]); // another type: still waiting (as in Redis)
  run(kv, ["DEL", "a"]);
  assert.deepEqual(holdings(kv), { "1.a/1": "waiting" });
  run(kv, ["XADD", "b", "0-1", "k", "v"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/1"]), [["b", [["0-1", ["k", "v"]]]]]);
  // Entries added in one EXEC are handed together; served at once, every stream answers.
  run(kv, ["__BLOCK", "1.a/2", "XREAD", "BLOCK", "0", "STREAMS", "a", "b", "$", "$"]);
  run(kv, encodeExec([], [["XADD", "a", "1-1", "x", "1"], ["XADD", "a", "1-2", "x", "2"]]));
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/2"]), [[
    "a",
    [["1-1", ["x", "1"]], ["1-2", ["x", "2"]]],
  ]]);
  assert.deepEqual(
    run(kv, ["__BLOCK", "1.a/3", "XREAD", "BLOCK", "0", "STREAMS", "a", "b", "0", "0"]),
    [["a", [["1-1", ["x", "1"]], ["1-2", ["x", "2"]]]], ["b", [["0-1", ["k", "v"]]]]],
  );
});

Deno.test("stream waiters: XADD gives the group's entries to its first waiter, PEL in the order", () => {
  const kv = new KvStore();
  run(kv, ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
  run(kv, ["XGROUP", "CREATE", "s", "h", "$"]);
  const group = (
    g: string,
    c: string,
  ) => ["XREADGROUP", "GROUP", g, c, "BLOCK", "0", "STREAMS", "s", ">"];
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/1", ...group("g", "c1")]), BLOCKED);
  assert.deepEqual(run(kv, ["__BLOCK", "2.b/1", ...group("g", "c2")]), BLOCKED);
  assert.deepEqual(run(kv, ["__BLOCK", "3.c/1", ...group("h", "c3")]), BLOCKED);
  assert.deepEqual(run(kv, ["XINFO", "CONSUMERS", "s", "g"]), [], "no consumer before a delivery");
  run(kv, ["XADD", "s", "5-1", "n", "1"], 2_000);
  assert.deepEqual(holdings(kv), { "1.a/1": "s:5-1", "2.b/1": "waiting", "3.c/1": "s:5-1" });
  // The PEL changed at the XADD's place, before any finish.
  assert.deepEqual(run(kv, ["XPENDING", "s", "g"]), [1, "5-1", "5-1", [["c1", "1"]]]);
  assert.deepEqual(run(kv, ["XPENDING", "s", "h"]), [1, "5-1", "5-1", [["c3", "1"]]]);
  run(kv, ["XADD", "s", "5-2", "n", "2"], 2_000);
  assert.deepEqual(holdings(kv), { "1.a/1": "s:5-1", "2.b/1": "s:5-2", "3.c/1": "s:5-1" });
  assert.deepEqual(run(kv, ["__BFINISH", "2.b/1"]), [["s", [["5-2", ["n", "2"]]]]]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/1"]), [["s", [["5-1", ["n", "1"]]]]]);
  // A client gone after its hand-off: the entries stay in its consumer's PEL (read with 0).
  assert.equal(run(kv, ["__BCANCEL", "3.c/1"]), 1);
  assert.deepEqual(run(kv, ["XREADGROUP", "GROUP", "h", "c3", "STREAMS", "s", "0"]), [
    ["s", [["5-1", ["n", "1"]]]],
  ]);
});

Deno.test("stream waiters: timeout against XADD is decided once, by the order", () => {
  const kv = new KvStore();
  run(kv, ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
  const line = ["XREADGROUP", "GROUP", "g", "c", "BLOCK", "100", "STREAMS", "s", ">"];
  // The timeout first: a null array, and the later entry is nobody's.
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/1", ...line]), BLOCKED);
  assert.equal(kv.waiters.get("1.a/1")?.deadline, 1_100, "deadline in ordered time");
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/1"]), NIL);
  run(kv, ["XADD", "s", "1-1", "n", "1"]);
  assert.deepEqual(run(kv, ["XPENDING", "s", "g"]), [0, null, null, NIL]);
  // The XADD first: the timeout's finish delivers what was handed.
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/2", ...line]), [["s", [["1-1", ["n", "1"]]]]]);
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/3", ...line]), BLOCKED);
  run(kv, ["XADD", "s", "1-2", "n", "2"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/3"]), [["s", [["1-2", ["n", "2"]]]]]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/3"]), NIL, "a second finish finds nothing");
  // XREAD likewise.
  run(kv, ["__BLOCK", "1.a/4", "XREAD", "BLOCK", "5", "STREAMS", "s", "$"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/4"]), NIL);
  run(kv, ["__BLOCK", "1.a/5", "XREAD", "BLOCK", "5", "STREAMS", "s", "$"]);
  run(kv, ["XADD", "s", "1-3", "n", "3"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/5"]), [["s", [["1-3", ["n", "3"]]]]]);
});

Deno.test("stream waiters: a deleted stream or group ends XREADGROUP waiters as Redis does", () => {
  const kv = new KvStore();
  const line = (c: string) => ["XREADGROUP", "GROUP", "g", c, "BLOCK", "0", "STREAMS", "s", ">"];
  const fresh = () => {
    run(kv, ["DEL", "s"]);
    run(kv, ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
  };
  fresh();
  run(kv, ["__BLOCK", "1.a/1", ...line("c")]);
  run(kv, ["__BLOCK", "1.a/2", "XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
  run(kv, ["XGROUP", "DESTROY", "s", "g"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/1"]), {
    err: "NOGROUP the consumer group this client was blocked on no longer exists",
  });
  fresh();
  assert.deepEqual(holdings(kv), { "1.a/2": "waiting" }, "an XREAD waiter outlives a DEL");
  run(kv, ["__BLOCK", "1.a/3", ...line("c")]);
  run(kv, ["DEL", "s"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/3"]), {
    err: "UNBLOCKED the stream key no longer exists",
  });
  fresh();
  run(kv, ["__BLOCK", "1.a/4", ...line("c")]);
  run(kv, ["SET", "s", "x"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/4"]), {
    err: "UNBLOCKED the stream key no longer exists",
  });
  fresh();
  run(kv, ["__BLOCK", "1.a/5", ...line("c")]);
  run(kv, ["FLUSHALL"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/5"]), {
    err: "UNBLOCKED the stream key no longer exists",
  });
  // The ordered expiry sweep removes it: the same.
  fresh();
  run(kv, ["PEXPIRE", "s", "100"]);
  run(kv, ["__BLOCK", "1.a/9", ...line("c")]);
  assert.equal(run(kv, ["__EXPIRE", "10"], 1_200), 1);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/9"]), {
    err: "UNBLOCKED the stream key no longer exists",
  });
  // Errors that are there at once are answered at once (no waiter).
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/6", ...line("c")]), {
    err: "NOGROUP No such key 's' or consumer group 'g' in XREADGROUP with GROUP option",
  });
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/7", "XREAD", "BLOCK", "-1", "STREAMS", "s", "$"]), {
    err: "ERR timeout is negative",
  });
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/8", "XREAD", "BLOCK", "x", "STREAMS", "s", "$"]), {
    err: "ERR timeout is not an integer or out of range",
  });
  assert.equal(kv.waiters.size, 1, "only the XREAD waiter is left");
});

Deno.test("stream waiters: XGROUP SETID does not wake; the next XADD hands 1000 entries", () => {
  const kv = new KvStore();
  for (let i = 1; i <= 1200; i++) run(kv, ["XADD", "s", `${i}-1`, "f", "v"]);
  run(kv, ["XGROUP", "CREATE", "s", "g", "$"]);
  run(kv, ["__BLOCK", "1.a/1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
  run(kv, ["XGROUP", "SETID", "s", "g", "0"]);
  run(kv, ["XACK", "s", "g", "1-1"]);
  assert.deepEqual(holdings(kv), { "1.a/1": "waiting" }, "as in Redis: only XADD wakes");
  run(kv, ["XADD", "s", "2000-1", "f", "v"]);
  const [[key, entries]] = run(kv, ["__BFINISH", "1.a/1"]) as [string, [string, string[]][]][];
  assert.equal(key, "s");
  assert.equal(entries.length, 1000, "Redis's XREAD_BLOCKED_DEFAULT_COUNT");
  assert.deepEqual([entries[0][0], entries[999][0]], ["1-1", "1000-1"]);
  assert.deepEqual((run(kv, ["XPENDING", "s", "g"]) as unknown[])[0], 1000);
});

Deno.test("stream waiters: waiters and hand-offs survive a snapshot, errors included", () => {
  const kv = new KvStore();
  run(kv, ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
  run(kv, ["XGROUP", "CREATE", "t", "g", "$", "MKSTREAM"]);
  run(kv, ["__BLOCK", "1.a/1", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "s", ">"]);
  run(kv, ["__BLOCK", "1.a/2", "XREADGROUP", "GROUP", "g", "c", "BLOCK", "0", "STREAMS", "t", ">"]);
  run(kv, ["__BLOCK", "1.a/3", "XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
  run(kv, ["XADD", "s", "1-1", "a", "b"]);
  run(kv, ["DEL", "t"]);
  const copy = new KvStore();
  copy.restore(JSON.parse(JSON.stringify(kv.snapshot())));
  assert.equal(copy.digest(), kv.digest());
  for (const store of [kv, copy]) {
    assert.deepEqual(run(store, ["__BFINISH", "1.a/1"]), [["s", [["1-1", ["a", "b"]]]]]);
    assert.deepEqual(run(store, ["__BFINISH", "1.a/2"]), {
      err: "UNBLOCKED the stream key no longer exists",
    });
    assert.deepEqual(run(store, ["__BFINISH", "1.a/3"]), [["s", [["1-1", ["a", "b"]]]]]);
  }
  assert.equal(copy.digest(), kv.digest());
});

Deno.test("stream waiters: a replica's blocked XREAD is served by XADD, or times out", async () => {
  const kv = new KvStore();
  const blocked: BlockedClients = new BlockedClients({
    id: 1,
    submit: (cmd: Command, respond: (o: Outcome) => void) => {
      const result = kv.apply({ op: { argv: cmd.op.argv, time: 1_000 } });
      blocked.afterStep();
      queueMicrotask(() => respond({ ok: true, result }));
    },
    now: () => 1_000,
    waiters: () => kv.waiters,
    members: () => [1],
    leads: () => true,
  });
  const call = (argv: string[]) =>
    new Promise<Reply>((resolve) => {
      blocked.submit({ op: { argv, time: 1_000 } }, (o) => resolve(o.ok ? o.result : null));
    });
  try {
    const reader = call(["XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
    await waitFor(() => kv.waiters.size === 1, { timeoutMs: 2000, intervalMs: 1 });
    run(kv, ["XADD", "s", "3-1", "k", "v"]);
    blocked.afterStep();
    assert.deepEqual(await reader, [["s", [["3-1", ["k", "v"]]]]]);
    assert.deepEqual(await call(["XREAD", "BLOCK", "10", "STREAMS", "s", "$"]), NIL);
    assert.equal(kv.waiters.size, 0);
  } finally {
    blocked.stop();
  }
});

Deno.test("stream waiters: dropping a dead owner removes its readers; its hand-offs stay pending", () => {
  const kv = new KvStore();
  run(kv, ["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
  const line = (c: string) => ["XREADGROUP", "GROUP", "g", c, "BLOCK", "0", "STREAMS", "s", ">"];
  run(kv, ["__BLOCK", "3.dead/1", ...line("d1")]);
  run(kv, ["__BLOCK", "3.dead/2", ...line("d2")]);
  run(kv, ["__BLOCK", "3.dead/3", "XREAD", "BLOCK", "0", "STREAMS", "s", "$"]);
  run(kv, ["__BLOCK", "1.live/1", ...line("l1")]);
  run(kv, ["XADD", "s", "1-1", "n", "1"]);
  assert.deepEqual(holdings(kv), {
    "3.dead/1": "s:1-1",
    "3.dead/2": "waiting",
    "3.dead/3": "s:1-1",
    "1.live/1": "waiting",
  });
  assert.equal(run(kv, ["__BDROP", "3.dead"]), 3);
  assert.deepEqual(holdings(kv), { "1.live/1": "waiting" });
  // d1's entry is in its PEL (it reads it again with ID 0); the next one goes to the live reader.
  assert.deepEqual(run(kv, ["XPENDING", "s", "g"]), [1, "1-1", "1-1", [["d1", "1"]]]);
  run(kv, ["XADD", "s", "1-2", "n", "2"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.live/1"]), [["s", [["1-2", ["n", "2"]]]]]);
  assert.deepEqual(run(kv, ["XREADGROUP", "GROUP", "g", "d1", "STREAMS", "s", "0"]), [
    ["s", [["1-1", ["n", "1"]]]],
  ]);
});
