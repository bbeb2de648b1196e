/**
 * Unit tests of the replicated waiter queue (`src/kv/waiters.ts`) and the blocking list commands
 * (`src/kv/commands/blocking.ts`) in the state machine: FIFO hand-offs identical on every replica,
 * timeout against push, cancel and drop giving elements back, snapshots, and Redis's replies.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { encodeExec } from "../../src/kv/commands/tx.ts";
import { parseTimeout } from "../../src/kv/commands/blocking.ts";

const BLOCKED = { ok: "__BLOCKED" };
const NIL = { nil: "array" };

/** Applies a command line at ordered time `time` (ms). */
function run(kv: KvStore, argv: string[], time = 1_000): Reply {
  return kv.apply({ op: { argv, time } });
}

/** Applies the same operations to `n` stores (replicas); returns the stores and every reply. */
function replicas(n: number, ops: string[][]): { stores: KvStore[]; replies: Reply[][] } {
  const stores = Array.from({ length: n }, () => new KvStore());
  const replies = stores.map((kv) => ops.map((op, i) => run(kv, op, 1_000 + i)));
  return { stores, replies };
}

/** What each waiter holds: id -> handed items (or "waiting"). */
function holdings(kv: KvStore): Record<string, string[] | "waiting"> {
  const out: Record<string, string[] | "waiting"> = {};
  for (const w of kv.waiters.all()) out[w.id] = w.handed?.items ?? "waiting";
  return out;
}

Deno.test("blocking: waiters are served first come first served, the same on every replica", () => {
  const ops = [
    ["__BLOCK", "2.b/1", "BLPOP", "k", "0"],
    ["__BLOCK", "1.a/1", "BRPOP", "other", "k", "0"],
    ["__BLOCK", "3.c/1", "BLPOP", "k", "0"],
    ["RPUSH", "k", "x", "y"],
  ];
  const { stores, replies } = replicas(3, ops);
  for (const r of replies) assert.deepEqual(r, [BLOCKED, BLOCKED, BLOCKED, 2]);
  for (const kv of stores) {
    assert.deepEqual(holdings(kv), { "2.b/1": ["x"], "1.a/1": ["y"], "3.c/1": "waiting" });
    assert.deepEqual(run(kv, ["LLEN", "k"]), 0, "handed elements left the list");
  }
  assert.equal(new Set(stores.map((kv) => kv.digest())).size, 1, "same digest everywhere");
  for (const kv of stores) {
    assert.deepEqual(run(kv, ["__BFINISH", "1.a/1"]), ["k", "y"]);
    assert.deepEqual(run(kv, ["__BFINISH", "2.b/1"]), ["k", "x"]);
    assert.deepEqual(run(kv, ["LPUSH", "k", "z"]), 1, "a push reports the length it made");
    assert.deepEqual(holdings(kv), { "3.c/1": ["z"] });
  }
});

Deno.test("blocking: a timeout ordered before the push wins, and the element stays", () => {
  const kv = new KvStore();
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/1", "BLPOP", "k", "0.5"]), BLOCKED);
  assert.equal(kv.waiters.get("1.a/1")?.deadline, 1_500, "deadline in ordered time");
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/1"]), NIL, "timed out");
  assert.equal(run(kv, ["RPUSH", "k", "x"]), 1);
  assert.deepEqual(run(kv, ["LRANGE", "k", "0", "-1"]), ["x"], "nobody took it");
  // The other order: the push first, then the timeout finds the element handed: delivered.
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/2", "BLPOP", "j", "1"]), BLOCKED);
  assert.equal(run(kv, ["RPUSH", "j", "y"]), 1);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/2"]), ["j", "y"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/2"]), NIL, "a second finish finds nothing");
  assert.equal(run(kv, ["EXISTS", "j"]), 0, "delivered exactly once");
});

Deno.test("blocking: a cancelled hand-off gives the element back to the next waiter", () => {
  const kv = new KvStore();
  run(kv, ["__BLOCK", "1.a/1", "BLPOP", "k", "0"]);
  run(kv, ["__BLOCK", "2.b/1", "BLPOP", "k", "0"]);
  run(kv, ["RPUSH", "k", "x"]);
  assert.deepEqual(holdings(kv), { "1.a/1": ["x"], "2.b/1": "waiting" });
  assert.equal(run(kv, ["__BCANCEL", "1.a/1"]), 1);
  assert.deepEqual(holdings(kv), { "2.b/1": ["x"] }, "given back and handed on at once");
  assert.equal(run(kv, ["__BCANCEL", "2.b/1"]), 1);
  assert.deepEqual(run(kv, ["LRANGE", "k", "0", "-1"]), ["x"], "back in the list");
  assert.equal(run(kv, ["__BCANCEL", "2.b/1"]), 0, "cancelling twice does nothing");
  assert.equal(kv.waiters.size, 0);
});

Deno.test("blocking: dropping a dead owner restores the list in its order", () => {
  const kv = new KvStore();
  run(kv, ["__BLOCK", "3.dead/1", "BLPOP", "k", "0"]);
  run(kv, ["__BLOCK", "3.dead/2", "BLMPOP", "0", "1", "k", "LEFT", "COUNT", "2"]);
  run(kv, ["__BLOCK", "3.dead/3", "BRPOP", "q", "0"]);
  run(kv, ["RPUSH", "k", "a", "b", "c", "d"]);
  assert.deepEqual(holdings(kv), {
    "3.dead/1": ["a"],
    "3.dead/2": ["b", "c"],
    "3.dead/3": "waiting",
  });
  assert.deepEqual(run(kv, ["LRANGE", "k", "0", "-1"]), ["d"]);
  assert.deepEqual(
    run(kv, ["__BLOCK", "1.live/1", "BLMPOP", "0", "1", "k", "LEFT", "COUNT", "10"]),
    ["k", ["d"]],
    "served at once: not blocked",
  );
  run(kv, ["__BLOCK", "1.live/2", "BLPOP", "k", "0"]);
  assert.equal(run(kv, ["__BDROP", "3.dead"]), 3);
  assert.deepEqual(holdings(kv), { "1.live/2": ["a"] });
  assert.deepEqual(run(kv, ["LRANGE", "k", "0", "-1"]), ["b", "c"], "the rest, in order");
});

Deno.test("blocking: BLMOVE moves on finish; into a wrong type it gives the element back", () => {
  const kv = new KvStore();
  assert.deepEqual(
    run(kv, ["__BLOCK", "1.a/1", "BLMOVE", "s", "d", "RIGHT", "LEFT", "0"]),
    BLOCKED,
  );
  run(kv, ["RPUSH", "s", "x", "y"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/1"]), "y");
  assert.deepEqual(run(kv, ["LRANGE", "d", "0", "-1"]), ["y"]);
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/2", "BRPOPLPUSH", "e", "d2", "0"]), BLOCKED);
  run(kv, ["RPUSH", "e", "z"]);
  run(kv, ["SET", "d2", "string"]);
  assert.deepEqual(run(kv, ["__BFINISH", "1.a/2"]), {
    err: "WRONGTYPE Operation against a key holding the wrong kind of value",
  });
  assert.deepEqual(run(kv, ["LRANGE", "e", "0", "-1"]), ["z"], "given back");
});

Deno.test("blocking: waiters and hand-offs survive a snapshot and count in the digest", () => {
  const kv = new KvStore();
  const before = kv.digest();
  run(kv, ["__BLOCK", "1.a/1", "BLPOP", "k", "0"]);
  assert.notEqual(kv.digest(), before, "a waiter changes the digest");
  run(kv, ["__BLOCK", "2.b/1", "BLPOP", "k", "j", "0"]);
  run(kv, ["__BLOCK", "3.c/1", "BRPOP", "j", "0"]);
  run(kv, ["RPUSH", "k", "x"]);
  const copy = new KvStore();
  copy.restore(JSON.parse(JSON.stringify(kv.snapshot())));
  assert.equal(copy.digest(), kv.digest());
  assert.deepEqual(holdings(copy), holdings(kv));
  for (const s of [kv, copy]) {
    assert.equal(run(s, ["RPUSH", "j", "1", "2"]), 2);
    assert.deepEqual(holdings(s), { "1.a/1": ["x"], "2.b/1": ["1"], "3.c/1": ["2"] });
  }
  assert.equal(copy.digest(), kv.digest());
  assert.equal(
    new KvStore().checkState({ ...kv.snapshot(), waiters: [{ id: 1 }] }),
    "malformed waiter",
  );
  const [w] = kv.snapshot().waiters!;
  for (const bad of [[{ ...w, argv: ["GET", "k"] }], [w, w]]) {
    assert.equal(new KvStore().checkState({ ...kv.snapshot(), waiters: bad }), "malformed waiter");
  }
});

Deno.test("blocking: replies and errors as Redis gives them", () => {
  const kv = new KvStore();
  run(kv, ["RPUSH", "k", "a", "b", "c"]);
  run(kv, ["SET", "s", "x"]);
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/1", "BLPOP", "none", "k", "0"]), ["k", "a"]);
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/2", "BRPOP", "k", "0.1"]), ["k", "c"]);
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/3", "BLPOP", "s", "k", "0"]), {
    err: "WRONGTYPE Operation against a key holding the wrong kind of value",
  });
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/4", "BLPOP", "k", "-1"]), {
    err: "ERR timeout is negative",
  });
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/5", "BLPOP", "k", "abc"]), {
    err: "ERR timeout is not a float or out of range",
  });
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/6", "BLMOVE", "k", "d", "UP", "LEFT", "0"]), {
    err: "ERR syntax error",
  });
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/7", "BLMPOP", "0", "0", "k", "LEFT"]), {
    err: "ERR numkeys should be greater than 0",
  });
  assert.deepEqual(run(kv, ["__BLOCK", "1.a/8", "BLMPOP", "1", "1", "k", "RIGHT", "COUNT", "5"]), [
    "k",
    ["b"],
  ]);
  assert.equal(kv.waiters.size, 0, "nothing blocked: every one was answered at once");
  assert.deepEqual(run(kv, ["BLPOP", "k", "0"]), NIL, "outside __BLOCK (MULTI): no wait");
  const exec = encodeExec([], [["BLPOP", "k", "0"], ["BRPOPLPUSH", "k", "d", "0"]]);
  assert.deepEqual(run(kv, exec), [NIL, null], "BLMOVE-like commands answer a null bulk");
  assert.deepEqual(run(kv, ["__BFINISH", "bad id"]), { err: "ERR malformed waiter id" });
  for (const argv of [["BLMPOP"], ["GET", "k"], ["BLPOP", "k"]]) {
    assert.deepEqual(run(kv, ["__BLOCK", "1.a/9", ...argv]), {
      err: "ERR not a blocking command line",
    });
  }
  assert.deepEqual(run(kv, ["BLPOP", "k", "-0"]), NIL);
  assert.equal(parseTimeout("1.5"), 1500);
  assert.equal(parseTimeout("0.0001"), 0, "truncated: forever, as in Redis 7.0");
  assert.equal(parseTimeout("-0.0001"), 0);
  assert.equal(parseTimeout("0x10"), 16_000);
  assert.equal(parseTimeout("0"), 0);
  assert.deepEqual(parseTimeout("inf"), { err: "ERR timeout is negative" }, "wraps in Redis");
  assert.deepEqual(parseTimeout("1e17"), { err: "ERR timeout is negative" });
  assert.deepEqual(parseTimeout(" 1"), { err: "ERR timeout is not a float or out of range" });
});
