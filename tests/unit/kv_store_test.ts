/**
 * Unit tests of the state machine: commands through the registry, ordered time and expiry,
 * exactly-once retries, transactions, snapshots (current and older formats) and the digest.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ClientTag, Reply } from "../../src/core/types.ts";
import { CLIENT_RESULT_WINDOW, KvStore, RESTORE_PROGRESS_KEYS } from "../../src/kv/store.ts";
import { upgradeOp } from "../../src/kv/legacy.ts";
import { COMMANDS } from "../../src/kv/commands/index.ts";
import { encodeExec, type WatchMark } from "../../src/kv/commands/tx.ts";
import { byteStringToUtf8, concatBytes, joinedRun, utf8ToByteString } from "../../src/kv/bytes.ts";
import { Prng } from "../../src/kv/prng.ts";

/** Applies a command line at time `time` (ms). */
function run(kv: KvStore, argv: string[], time = 1_000, tag?: ClientTag): Reply {
  return kv.apply({ op: { argv, time }, tag });
}

const OK = { ok: "OK" };

/** What a WATCH reads: the key space version and time at its place in the order. */
function mark(kv: KvStore): WatchMark {
  const [version, time] = run(kv, ["__VERSION"]) as number[];
  return { version, time };
}

Deno.test("kv: SET, GET, EXISTS, DEL and the lamportkv aliases", () => {
  const kv = new KvStore();
  assert.equal(run(kv, ["GET", "a"]), null);
  assert.deepEqual(run(kv, ["SET", "a", "1"]), OK);
  assert.equal(run(kv, ["get", "a"]), "1");
  assert.equal(run(kv, ["EXISTS", "a", "a", "b"]), 2);
  assert.deepEqual(run(kv, ["PUT", "b", "2"]), OK);
  assert.equal(run(kv, ["HAS", "b"]), 1);
  assert.equal(run(kv, ["DEL", "a", "b", "c"]), 2);
  assert.equal(run(kv, ["DELETE", "a"]), 0);
  assert.equal(kv.size, 0);
});

Deno.test("kv: reads and writes are told apart by the registry", () => {
  const kv = new KvStore();
  const read = (argv: string[]) => kv.isRead({ op: { argv, time: 0 } });
  assert.equal(read(["GET", "k"]), true);
  assert.equal(read(["mget", "a", "b"]), true);
  assert.equal(read(["SCAN", "0"]), true);
  assert.equal(read(["SET", "k", "v"]), false);
  assert.equal(read(["INCR", "k"]), false);
  assert.equal(read(["__EXEC", "0"]), false);
  assert.equal(read(["NOSUCH"]), false, "unknown commands are ordered (and refused) like writes");
});

Deno.test("kv: wrong arity and unknown commands in the order are answered, not thrown", () => {
  const kv = new KvStore();
  assert.deepEqual(run(kv, ["SET", "k"]), {
    err: "ERR wrong number of arguments for 'set' command",
  });
  assert.deepEqual(run(kv, ["NOSUCH"]), { err: "ERR unknown command 'NOSUCH'" });
});

Deno.test("kv: SET options NX, XX, GET, KEEPTTL and syntax errors", () => {
  const kv = new KvStore();
  assert.equal(run(kv, ["SET", "k", "1", "XX"]), null);
  assert.deepEqual(run(kv, ["SET", "k", "1", "NX"]), OK);
  assert.equal(run(kv, ["SET", "k", "2", "NX"]), null);
  assert.equal(run(kv, ["SET", "k", "2", "XX", "GET"]), "1");
  assert.deepEqual(run(kv, ["SET", "k", "3", "NX", "XX"]), { err: "ERR syntax error" });
  assert.deepEqual(run(kv, ["SET", "k", "3", "EX", "10", "PX", "5"]), { err: "ERR syntax error" });
  assert.deepEqual(run(kv, ["SET", "k", "3", "EX", "x"]), {
    err: "ERR value is not an integer or out of range",
  });
  assert.deepEqual(run(kv, ["SET", "k", "3", "EX", "0"]), {
    err: "ERR invalid expire time in 'set' command",
  });
  assert.deepEqual(run(kv, ["SET", "k", "3", "EX", "10"], 1_000), OK);
  assert.deepEqual(run(kv, ["SET", "k", "4", "KEEPTTL"], 2_000), OK);
  assert.equal(run(kv, ["PTTL", "k"], 2_000), 9_000);
  assert.deepEqual(run(kv, ["SET", "k", "5"], 2_000), OK);
  assert.equal(run(kv, ["TTL", "k"], 2_000), -1);
  run(kv, ["HSET", "h", "f", "v"]);
  assert.deepEqual(run(kv, ["SET", "h", "x", "GET"]), {
    err: "WRONGTYPE Operation against a key holding the wrong kind of value",
  });
});

Deno.test("kv: counters with Redis's integer rules and overflow", () => {
  const kv = new KvStore();
  assert.equal(run(kv, ["INCR", "n"]), 1);
  assert.equal(run(kv, ["INCRBY", "n", "41"]), 42);
  assert.equal(run(kv, ["DECRBY", "n", "50"]), -8);
  assert.equal(run(kv, ["DECR", "n"]), -9);
  run(kv, ["SET", "n", "9223372036854775806"]);
  assert.deepEqual(run(kv, ["INCR", "n"]), { int: "9223372036854775807" });
  assert.deepEqual(run(kv, ["INCR", "n"]), { err: "ERR increment or decrement would overflow" });
  for (const bad of ["01", "+1", " 1", "1 ", "1.0", "", "9223372036854775808"]) {
    run(kv, ["SET", "b", bad]);
    assert.deepEqual(run(kv, ["INCR", "b"]), {
      err: "ERR value is not an integer or out of range",
    }, bad);
  }
  assert.deepEqual(run(kv, ["DECRBY", "n", "-9223372036854775808"]), {
    err: "ERR decrement would overflow",
  });
  assert.equal(run(kv, ["INCRBYFLOAT", "f", "10.5"]), "10.5");
  assert.equal(run(kv, ["INCRBYFLOAT", "f", "0.1"]), "10.6");
  assert.equal(run(kv, ["INCRBYFLOAT", "f", "-10.6"]), "0");
  assert.equal(run(kv, ["INCRBYFLOAT", "f", "5.0e3"]), "5000");
  assert.deepEqual(run(kv, ["INCRBYFLOAT", "f", "abc"]), { err: "ERR value is not a valid float" });
  assert.deepEqual(run(kv, ["INCRBYFLOAT", "f", "inf"]), {
    err: "ERR increment would produce NaN or Infinity",
  });
});

Deno.test("kv: string ranges, APPEND, STRLEN, MSET/MSETNX/MGET", () => {
  const kv = new KvStore();
  assert.equal(run(kv, ["APPEND", "s", "Hello"]), 5);
  assert.equal(run(kv, ["APPEND", "s", " World"]), 11);
  assert.equal(run(kv, ["GETRANGE", "s", "0", "4"]), "Hello");
  assert.equal(run(kv, ["GETRANGE", "s", "-5", "-1"]), "World");
  assert.equal(run(kv, ["GETRANGE", "s", "5", "2"]), "");
  assert.equal(run(kv, ["SETRANGE", "s", "6", "Redis"]), 11);
  assert.equal(run(kv, ["GET", "s"]), "Hello Redis");
  assert.equal(run(kv, ["SETRANGE", "z", "3", "x"]), 4);
  assert.equal(run(kv, ["GET", "z"]), "\0\0\0x");
  assert.equal(run(kv, ["SETRANGE", "empty", "3", ""]), 0);
  assert.equal(run(kv, ["EXISTS", "empty"]), 0);
  assert.equal(run(kv, ["STRLEN", "s"]), 11);
  assert.deepEqual(run(kv, ["MSET", "a", "1", "b", "2"]), OK);
  assert.deepEqual(run(kv, ["MSET", "a", "1", "b"]), {
    err: "ERR wrong number of arguments for 'mset' command",
  });
  assert.equal(run(kv, ["MSETNX", "b", "3", "c", "4"]), 0);
  assert.equal(run(kv, ["MSETNX", "c", "3", "d", "4"]), 1);
  run(kv, ["SADD", "set", "m"]);
  assert.deepEqual(run(kv, ["MGET", "a", "nope", "set", "d"]), ["1", null, null, "4"]);
});

Deno.test("kv: expiry is decided by ordered time, the same on every replica", () => {
  const a = new KvStore();
  const b = new KvStore();
  // Replica clocks differ: the ops carry their origin's time; ordered time never goes back.
  const ops: [string[], number][] = [
    [["SET", "lock", "me", "NX", "PX", "1000"], 10_000],
    [["SET", "x", "1"], 9_000], // an origin whose clock is behind: time stays 10,000
    [["SET", "lock", "you", "NX", "PX", "1000"], 10_500],
    [["SET", "lock", "you", "NX", "PX", "1000"], 11_000], // expired exactly now: taken
    [["EXPIRE", "x", "5"], 11_000],
    [["__EXPIRE", "100"], 99_000],
  ];
  const results = ops.map(([argv, t]) => [run(a, argv, t), run(b, argv, t)]);
  for (const [ra, rb] of results) assert.deepEqual(ra, rb);
  assert.deepEqual(results.map(([r]) => r), [OK, OK, null, OK, 1, 2]);
  assert.equal(a.digest(), b.digest());
  assert.equal(a.size, 0, "the sweep deleted both expired keys");
});

Deno.test("kv: a read hides a key whose time has passed, without changing anything", () => {
  const kv = new KvStore();
  run(kv, ["SET", "k", "v", "PX", "100"], 1_000);
  const before = kv.digest();
  assert.equal(run(kv, ["GET", "k"], 1_050), "v");
  assert.equal(run(kv, ["GET", "k"], 1_100), null);
  assert.equal(run(kv, ["EXISTS", "k"], 5_000), 0);
  assert.equal(run(kv, ["TTL", "k"], 5_000), -2);
  assert.equal(kv.digest(), before, "reads never delete");
  assert.equal(kv.size, 1);
});

Deno.test("kv: EXPIRE options, TTL, PERSIST, EXPIRETIME", () => {
  const kv = new KvStore();
  const t = 1_700_000_000_000;
  run(kv, ["SET", "k", "v"], t);
  assert.equal(run(kv, ["EXPIRE", "k", "100", "XX"], t), 0);
  assert.equal(run(kv, ["EXPIRE", "k", "100", "NX"], t), 1);
  assert.equal(run(kv, ["EXPIRE", "k", "50", "GT"], t), 0);
  assert.equal(run(kv, ["EXPIRE", "k", "50", "LT"], t), 1);
  assert.equal(run(kv, ["TTL", "k"], t), 50);
  assert.equal(run(kv, ["PTTL", "k"], t + 1), 49_999);
  assert.equal(run(kv, ["EXPIRETIME", "k"], t), t / 1000 + 50);
  assert.deepEqual(run(kv, ["EXPIRE", "k", "1", "NX", "XX"], t), {
    err: "ERR NX and XX, GT or LT options at the same time are not compatible",
  });
  assert.deepEqual(run(kv, ["EXPIRE", "k", "1", "GT", "LT"], t), {
    err: "ERR GT and LT options at the same time are not compatible",
  });
  assert.deepEqual(run(kv, ["EXPIRE", "k", "1", "XY"], t), { err: "ERR Unsupported option XY" });
  assert.equal(run(kv, ["PERSIST", "k"], t), 1);
  assert.equal(run(kv, ["PERSIST", "k"], t), 0);
  assert.equal(run(kv, ["EXPIRE", "k", "-1"], t), 1, "a time in the past deletes the key");
  assert.equal(run(kv, ["EXISTS", "k"], t), 0);
});

Deno.test("kv: KEYS and SCAN return every key; SCAN pages are the same on any replica", () => {
  const a = new KvStore();
  const b = new KvStore();
  const keys = Array.from({ length: 200 }, (_, i) => `key:${i}`);
  for (const k of keys) run(a, ["SET", k, "v"]);
  for (const k of [...keys].reverse()) run(b, ["SET", k, "v"]); // other insertion order
  assert.deepEqual((run(a, ["KEYS", "key:1?"]) as string[]).sort(), keys.slice(10, 20).sort());
  const seen: string[] = [];
  let cursor = "0";
  let pages = 0;
  do {
    const ra = run(a, ["SCAN", cursor, "COUNT", "7"]) as [string, string[]];
    const rb = run(b, ["SCAN", cursor, "COUNT", "7"]) as [string, string[]];
    assert.deepEqual(ra, rb, `page at cursor ${cursor}`);
    seen.push(...ra[1]);
    cursor = ra[0];
    pages++;
  } while (cursor !== "0" && pages < 1000);
  assert.deepEqual(seen.sort(), [...keys].sort());
  assert.deepEqual(run(a, ["SCAN", "x"]), { err: "ERR invalid cursor" });
  assert.deepEqual(run(a, ["SCAN", "0", "COUNT", "0"]), { err: "ERR syntax error" });
  run(a, ["RPUSH", "list", "x"]);
  assert.deepEqual(run(a, ["SCAN", "0", "TYPE", "list", "COUNT", "1000"]), ["0", ["list"]]);
});

Deno.test("kv: SCAN after deletes, expiry, a restore, RENAME and FLUSHALL: live keys, same pages", () => {
  const a = new KvStore();
  for (let i = 0; i < 300; i++) run(a, ["SET", `k:${i}`, "v"]);
  for (let i = 0; i < 300; i += 3) run(a, ["DEL", `k:${i}`]);
  run(a, ["RENAME", "k:1", "renamed"]);
  run(a, ["SET", "short", "v", "PX", "10"], 1_000);
  const scanAll = (kv: KvStore, time: number) => {
    const seen: string[] = [];
    const pages: unknown[] = [];
    let cursor = "0";
    do {
      const page = run(kv, ["SCAN", cursor, "COUNT", "5"], time) as [string, string[]];
      pages.push(page);
      seen.push(...page[1]);
      cursor = page[0];
    } while (cursor !== "0" && pages.length < 1_000);
    return { seen: seen.sort(), pages };
  };
  const live = (time: number) => (run(a, ["KEYS", "*"], time) as string[]).sort();
  assert.ok(live(1_005).includes("short") && live(1_005).includes("renamed"));
  assert.deepEqual(scanAll(a, 1_005).seen, live(1_005));
  // Past its time the key is not returned, though no write removed it yet.
  assert.ok(!live(2_000).includes("short"));
  assert.deepEqual(scanAll(a, 2_000).seen, live(2_000));
  // A replica restored from a snapshot (its index rebuilt in another order) gives the same pages.
  const b = new KvStore();
  b.restore(JSON.parse(JSON.stringify(a.snapshot())));
  assert.deepEqual(scanAll(b, 1_005).pages, scanAll(a, 1_005).pages);
  run(a, ["FLUSHALL"]);
  assert.deepEqual(run(a, ["SCAN", "0"]), ["0", []]);
  run(a, ["SET", "again", "v"]);
  assert.deepEqual(run(a, ["SCAN", "0"]), ["0", ["again"]]);
});

Deno.test("kv: RENAME, RENAMENX, TYPE, FLUSHALL", () => {
  const kv = new KvStore();
  assert.deepEqual(run(kv, ["RENAME", "a", "b"]), { err: "ERR no such key" });
  run(kv, ["SET", "a", "1", "EX", "100"]);
  assert.deepEqual(run(kv, ["RENAME", "a", "b"]), OK);
  assert.equal(run(kv, ["TTL", "b"]), 100);
  run(kv, ["SET", "c", "2"]);
  assert.equal(run(kv, ["RENAMENX", "b", "c"]), 0);
  assert.equal(run(kv, ["RENAMENX", "b", "d"]), 1);
  assert.deepEqual(run(kv, ["TYPE", "d"]), { ok: "string" });
  assert.deepEqual(run(kv, ["TYPE", "nope"]), { ok: "none" });
  assert.deepEqual(run(kv, ["FLUSHALL"]), OK);
  assert.equal(run(kv, ["DBSIZE"]), 0);
});

Deno.test("kv: a transaction is one operation; WATCH aborts it if a key changed after", () => {
  const kv = new KvStore();
  run(kv, ["SET", "balance", "10"]);
  const since = mark(kv);
  const tx = encodeExec([["balance", since]], [["DECRBY", "balance", "3"], ["INCR", "other"], [
    "HSET",
    "balance",
    "f",
    "v",
  ]]);
  assert.deepEqual(run(kv, tx), [7, 1, {
    err: "WRONGTYPE Operation against a key holding the wrong kind of value",
  }]);
  // Someone else changes the key after our WATCH: EXEC answers a null array, nothing applied.
  const since2 = mark(kv);
  run(kv, ["SET", "balance", "100"]);
  assert.deepEqual(run(kv, encodeExec([["balance", since2]], [["INCR", "balance"]])), {
    nil: "array",
  });
  assert.equal(run(kv, ["GET", "balance"]), "100");
  // A key deleted after WATCH counts as modified too; one never touched does not.
  const since3 = mark(kv);
  run(kv, ["DEL", "balance"]);
  assert.deepEqual(run(kv, encodeExec([["balance", since3]], [])), { nil: "array" });
  assert.deepEqual(run(kv, encodeExec([["untouched", since3]], [["INCR", "x"]])), [1]);
  // A key already expired when watched, and gone since, is unchanged (Redis's rule); one that
  // expires after its WATCH counts as modified.
  run(kv, ["SET", "gone", "v", "PXAT", "500"], 1_000);
  const expiredAtWatch = mark(kv);
  run(kv, ["__EXPIRE", "10"], 2_000);
  assert.deepEqual(run(kv, encodeExec([["gone", expiredAtWatch]], [["INCR", "y"]]), 3_000), [1]);
  run(kv, ["SET", "soon", "v", "PX", "1000"], 3_000);
  const beforeExpiry = mark(kv);
  assert.deepEqual(run(kv, encodeExec([["soon", beforeExpiry]], [["INCR", "y"]]), 5_000), {
    nil: "array",
  });
});

Deno.test("kv: a retried tagged write is applied once and answered the same", () => {
  const kv = new KvStore();
  const tag = { client: "c1", seq: 1 };
  run(kv, ["SET", "k", "v1"], 1, tag);
  run(kv, ["SET", "k", "v2"], 1, { client: "c2", seq: 1 });
  assert.deepEqual(run(kv, ["SET", "k", "v1"], 1, tag), OK);
  assert.equal(kv.peek("k"), "v2");
  assert.equal(run(kv, ["INCR", "n"], 1, { client: "c3", seq: 4 }), 1);
  assert.equal(run(kv, ["INCR", "n"], 1, { client: "c3", seq: 4 }), 1, "answered from the table");
  assert.equal(run(kv, ["GET", "n"]), "1");
});

Deno.test("kv: pipelined tagged writes can each be retried, within the window", () => {
  const kv = new KvStore();
  const client = "pipe";
  for (let seq = 1; seq <= CLIENT_RESULT_WINDOW + 4; seq++) {
    assert.equal(run(kv, ["INCR", "n"], 1, { client, seq }), seq);
  }
  // Any of the last WINDOW requests may be retried and gets its own first answer.
  const newest = CLIENT_RESULT_WINDOW + 4;
  for (let seq = newest - CLIENT_RESULT_WINDOW + 1; seq <= newest; seq++) {
    assert.equal(run(kv, ["INCR", "n"], 1, { client, seq }), seq);
  }
  assert.deepEqual(run(kv, ["INCR", "n"], 1, { client, seq: 1 }), {
    err: "ERR request too old to retry: its result is no longer known",
  });
  assert.equal(run(kv, ["GET", "n"]), String(newest));
});

Deno.test("kv: the client table is bounded, least recently used forgotten", () => {
  const kv = new KvStore(2);
  const put = (client: string, value: string) =>
    run(kv, ["SET", "k", value], 1, { client, seq: 1 });
  put("a", "1");
  put("b", "2");
  put("c", "3"); // forgets a
  put("a", "4"); // a is new again: applied
  assert.equal(kv.peek("k"), "4");
  put("c", "5"); // c remembered: not applied
  assert.equal(kv.peek("k"), "4");
});

Deno.test("kv: snapshot and restore keep every type, expiry, versions and the digest", () => {
  const kv = new KvStore();
  run(kv, ["SET", "s", "v\x00\xff", "PX", "5000"], 1_000);
  run(kv, ["HSET", "h", "f1", "1", "f2", "2"]);
  run(kv, ["RPUSH", "l", "a", "b", "c"]);
  run(kv, ["SADD", "st", "x", "y"]);
  run(kv, ["INCR", "n"], 1, { client: "c", seq: 3 });
  const since = mark(kv);
  const copy = new KvStore();
  copy.restore(JSON.parse(JSON.stringify(kv.snapshot())));
  assert.equal(copy.digest(), kv.digest());
  assert.equal(copy.size, kv.size);
  assert.equal(copy.time, kv.time);
  assert.equal(run(copy, ["PTTL", "s"], 1_000), 5_000);
  assert.deepEqual(run(copy, ["LRANGE", "l", "0", "-1"]), ["a", "b", "c"]);
  assert.equal(run(copy, ["INCR", "n"], 1, { client: "c", seq: 3 }), 1, "exactly-once survives");
  assert.deepEqual(run(copy, encodeExec([["h", since]], [])), [], "WATCH versions survive");
  // Both continue identically: restored records carry their hashes (deleting or overwriting one
  // takes out what it added).
  for (const s of [kv, copy]) run(s, ["HDEL", "h", "f1"]);
  assert.equal(copy.digest(), kv.digest());
  for (const s of [kv, copy]) {
    run(s, ["DEL", "st"]);
    run(s, ["SET", "n", "7"]);
    run(s, ["RPUSH", "l", "d"]);
  }
  assert.equal(copy.digest(), kv.digest());
  const fresh = new KvStore();
  run(fresh, ["SET", "only", "1"]);
  for (const s of [kv, copy]) {
    for (const key of ["s", "h", "l", "n"]) run(s, ["DEL", key]);
    run(s, ["SET", "only", "1"]);
  }
  assert.equal(copy.digest(), fresh.digest(), "every restored key's hash was taken out");
  assert.equal(kv.digest(), fresh.digest());
});

Deno.test("kv: a key space snapshot with a key twice is refused", () => {
  const kv = new KvStore();
  run(kv, ["SET", "a", "1"]);
  const snap = JSON.parse(JSON.stringify(kv.snapshot()));
  snap.keyspace.keys.push(snap.keyspace.keys[0]);
  assert.throws(() => new KvStore().restore(snap), /a key twice/);
  assert.match(new KvStore().checkState(snap) ?? "", /a key twice/);
});

Deno.test("kv: a state prepared in slices restores like a state restored at once", () => {
  const kv = new KvStore();
  for (let i = 0; i < 25; i++) run(kv, ["SET", `k${i}`, `v${i}`]);
  run(kv, ["HSET", "h", "f", "1"]);
  run(kv, ["SET", "t", "x", "PX", "100000"]);
  const text = JSON.stringify(kv.snapshot());
  const state = JSON.parse(text);
  const target = new KvStore();
  // 28 keys, 10 a slice: paused twice while restoring them, then twice in each of the two passes
  // that build SCAN's index, then done.
  const slices = [...target.preparing(state, 10)];
  assert.equal(slices.length, 6);
  // Prepared: checkState answers from what was restored, even though the state object is damaged
  // now (nothing ever changes a received state; this shows no second dry run happened).
  state.keyspace.keys.push(state.keyspace.keys[0]);
  assert.equal(target.checkState(state), null);
  target.restore(state);
  assert.equal(target.digest(), kv.digest());
  assert.equal(target.size, kv.size);
  assert.equal(run(target, ["HGET", "h", "f"]), "1");
  // The prepared store's SCAN index came with its keys.
  assert.deepEqual(
    (run(target, ["SCAN", "0", "COUNT", "1000"]) as [string, string[]])[1].sort(),
    (run(kv, ["KEYS", "*"]) as string[]).sort(),
  );
  // A second preparing() of a state already prepared does nothing.
  const again = JSON.parse(text);
  const other = new KvStore();
  assert.equal([...other.preparing(again, 10)].length, 6);
  assert.equal([...other.preparing(again, 10)].length, 0);
});

Deno.test("kv: a state that cannot be restored is left to checkState by preparing", () => {
  const kv = new KvStore();
  run(kv, ["SET", "a", "1"]);
  const snap = JSON.parse(JSON.stringify(kv.snapshot()));
  snap.keyspace.keys.push(snap.keyspace.keys[0]);
  const target = new KvStore();
  run(target, ["SET", "mine", "1"]);
  const before = target.digest();
  assert.doesNotThrow(() => [...target.preparing(snap, 1)]);
  assert.match(target.checkState(snap) ?? "", /a key twice/);
  assert.equal(target.digest(), before, "preparing changed nothing of the store itself");
  for (const bad of [null, 7, "x", { clients: "no" }]) {
    assert.deepEqual([...target.preparing(bad, 1)], []);
    assert.notEqual(target.checkState(bad), null);
  }
});

Deno.test("kv: a snapshot of the release before typed values still loads", () => {
  const kv = new KvStore();
  kv.restore({ map: [["a", "1"], ["b", "2"]], clients: [["c1", 4, { kind: "ok" }]] });
  assert.equal(run(kv, ["GET", "a"]), "1");
  assert.deepEqual(run(kv, ["SET", "x", "y"], 1, { client: "c1", seq: 4 }), OK);
  assert.equal(run(kv, ["EXISTS", "x"]), 0, "the retry was answered from the old table");
  assert.throws(() => kv.restore({ nonsense: true }), TypeError);
});

Deno.test("kv: an operation in the log format before the registry is still applied", () => {
  const kv = new KvStore();
  // deno-lint-ignore no-explicit-any
  const legacy = (op: any) => kv.apply({ op: upgradeOp(op) });
  assert.deepEqual(legacy({ kind: "put", key: "k", value: "v" }), OK);
  assert.equal(legacy({ kind: "get", key: "k" }), "v");
  assert.equal(legacy({ kind: "has", key: "k" }), 1);
  assert.equal(legacy({ kind: "delete", key: "k" }), 1);
});

Deno.test("kv: digest depends on contents, not on history", () => {
  const a = new KvStore();
  const b = new KvStore();
  const empty = a.digest();
  run(a, ["SET", "x", "1"]);
  run(a, ["SET", "y", "2"]);
  run(b, ["SET", "y", "old"]);
  run(b, ["SET", "x", "1"]);
  assert.notEqual(a.digest(), b.digest());
  run(b, ["SET", "y", "2"]);
  assert.equal(a.digest(), b.digest());
  run(a, ["DEL", "x", "y"]);
  assert.equal(a.digest(), empty);
  run(a, ["SET", "ab", "c"]);
  run(b, ["FLUSHALL"]);
  run(b, ["SET", "a", "bc"]);
  assert.notEqual(a.digest(), b.digest(), "key and value are separated");
});

Deno.test("bytes: every byte value and UTF-8 survive the round trip", () => {
  const all = new Uint8Array(256).map((_, i) => i);
  const text = "héllo\r\n wörld ✓ 😀";
  assert.equal(byteStringToUtf8(utf8ToByteString(text)), text);
  const s = utf8ToByteString(text);
  for (let i = 0; i < s.length; i++) assert.ok(s.charCodeAt(i) < 256);
  assert.equal(
    [...new TextEncoder().encode(byteStringToUtf8(String.fromCharCode(...all.slice(0, 128))))]
      .length,
    128,
  );
});

Deno.test("bytes: joinedRun takes small chunks together and a large one alone, uncopied", () => {
  const a = new Uint8Array([1, 2]);
  const b = new Uint8Array([3]);
  const big = new Uint8Array(10).fill(9);
  const c = new Uint8Array([4, 5]);
  const chunks = [a, b, big, c];
  const first = joinedRun(chunks, 0, 4);
  assert.deepEqual([...first.bytes], [1, 2, 3]);
  assert.equal(first.end, 2);
  const second = joinedRun(chunks, first.end, 4);
  assert.equal(second.bytes, big, "a chunk over the bound goes alone, as it is");
  assert.equal(second.end, 3);
  const third = joinedRun(chunks, second.end, 4);
  assert.equal(third.bytes, c);
  assert.equal(third.end, 4);
  // Exactly the bound still joins; one byte over does not.
  assert.equal(joinedRun([a, b, c], 0, 5).end, 3);
  assert.equal(joinedRun([a, b, c], 0, 4).end, 2);
});

Deno.test("bytes: concatBytes joins chunks into a new array", () => {
  const a = new Uint8Array([1, 2]);
  const joined = concatBytes([a, new Uint8Array(0), new Uint8Array([3])]);
  assert.deepEqual([...joined], [1, 2, 3]);
  assert.notEqual(concatBytes([a]), a, "a single chunk is copied, never aliased");
  assert.equal(concatBytes([]).length, 0);
});

Deno.test("kv: the incremental digest equals one computed from scratch, digests taken anywhere", () => {
  const seed = Number(Deno.env.get("KV_DIGEST_SEED") ?? "7");
  let x = seed;
  const rand = (n: number) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x % n;
  };
  const kv = new KvStore();
  const key = () => `k${rand(30)}`;
  const ops: (() => string[])[] = [
    () => ["SET", key(), `v${rand(100)}`],
    () => ["DEL", key()],
    () => ["INCR", `n${rand(5)}`],
    () => ["HSET", `h${rand(5)}`, `f${rand(10)}`, `${rand(100)}`],
    () => ["HDEL", `h${rand(5)}`, `f${rand(10)}`],
    () => ["SADD", `s${rand(5)}`, `m${rand(10)}`],
    () => ["RPUSH", `l${rand(5)}`, `e${rand(10)}`],
    () => ["LPOP", `l${rand(5)}`],
    () => ["PEXPIRE", key(), `${1 + rand(50)}`],
    () => ["RENAME", key(), key()],
  ];
  for (let i = 0; i < 3000; i++) {
    run(kv, ops[rand(ops.length)](), 1_000 + i);
    if (rand(7) === 0) kv.digest();
  }
  const fresh = new KvStore();
  fresh.restore(JSON.parse(JSON.stringify(kv.snapshot())));
  assert.equal(kv.digest(), fresh.digest(), `seed ${seed} (rerun: KV_DIGEST_SEED=${seed})`);
});

Deno.test("registry: a command is found by its name in any case, and only by its name", () => {
  const set = COMMANDS.get("set");
  assert.ok(set !== undefined);
  for (const name of ["SET", "Set", "sEt"]) assert.equal(COMMANDS.get(name), set, name);
  for (const name of ["SETX", "SE", "S\u00c9T", ""]) {
    assert.equal(COMMANDS.get(name), undefined, name);
  }
  const store = new KvStore();
  assert.deepEqual(run(store, ["SeT", "k", "v"]), { ok: "OK" });
  assert.equal(run(store, ["gEt", "k"]), "v");
  // A first argument of the length of __ASKING that is not it is a command name like any other.
  assert.deepEqual(run(store, ["__ASKINX", "k"]), { err: "ERR unknown command '__ASKINX'" });
  // And __ASKING itself is still unwrapped, in any case.
  assert.equal(run(store, ["__asking", "1", "GET", "k"]), "v");
});

Deno.test("kv: a restore reports its progress in keys, now and then and at the end, when told to", () => {
  const kv = new KvStore();
  const n = 2 * RESTORE_PROGRESS_KEYS + 10;
  for (let i = 0; i < n; i += 1000) {
    const argv = ["MSET"];
    for (let k = i; k < Math.min(n, i + 1000); k++) argv.push(`k${k}`, "v");
    run(kv, argv);
  }
  const state = JSON.parse(JSON.stringify(kv.snapshot()));
  const copy = new KvStore();
  const reports: [number, number][] = [];
  copy.onRestoreProgress = (restored, total) => reports.push([restored, total]);
  copy.restore(state);
  assert.deepEqual(reports, [
    [RESTORE_PROGRESS_KEYS, n],
    [2 * RESTORE_PROGRESS_KEYS, n],
    [n, n],
  ]);
  assert.equal(copy.digest(), kv.digest(), "restored alike, in slices or not");
  copy.onRestoreProgress = undefined;
  copy.restore(state);
  assert.equal(reports.length, 3, "told nothing once the hook is gone");
});

Deno.test("kv: INFO's expires count follows every write that sets, clears or drops an expiry", () => {
  const rng = new Prng(Number(Deno.env.get("KV_EXPIRES_SEED") ?? 0xe4));
  const kv = new KvStore();
  const counted = () => {
    const keys = (JSON.parse(JSON.stringify(kv.snapshot())) as {
      keyspace: { keys: [string, string, number][] };
    }).keyspace.keys;
    return keys.filter((rec) => rec[2] !== 0).length;
  };
  let time = 1_000;
  for (let i = 0; i < 2_000; i++) {
    const key = `k:${rng.int(0, 40)}`;
    const other = `k:${rng.int(0, 40)}`;
    const ms = String(rng.int(1, 400));
    const argv = rng.pick([
      ["SET", key, "v"],
      ["SET", key, "v", "PX", ms],
      ["SET", key, "v", "KEEPTTL"],
      ["SETEX", key, "1", "v"],
      ["PEXPIRE", key, ms],
      ["PERSIST", key],
      ["GETEX", key, "PERSIST"],
      ["DEL", key],
      ["RENAME", key, other],
      ["RPUSH", key, "x"],
      ["GET", key],
      ["FLUSHALL"],
    ].filter((a) => a[0] !== "FLUSHALL" || rng.chance(0.02)));
    time += rng.int(0, 20);
    run(kv, argv, time);
    assert.equal(kv.keyspace.expiring, counted(), `after ${argv.join(" ")} at ${time}`);
  }
  const copy = new KvStore();
  copy.restore(JSON.parse(JSON.stringify(kv.snapshot())));
  assert.equal(copy.keyspace.expiring, kv.keyspace.expiring);
});

Deno.test("kv: RANDOMKEY answers a live key, the same on replicas that hold the same keys", () => {
  const a = new KvStore();
  const b = new KvStore();
  assert.equal(run(a, ["RANDOMKEY"]), null, "no key: nil");
  const keys = Array.from({ length: 50 }, (_, i) => `key:${i}`);
  for (const k of keys) run(a, ["SET", k, "v"]);
  for (const k of [...keys].reverse()) run(b, ["SET", k, "v"]); // other insertion order
  run(a, ["SET", "brief", "v", "PX", "10"], 1_000);
  run(b, ["SET", "brief", "v", "PX", "10"], 1_000);
  const drawn = new Set<string>();
  for (let t = 2_000; t < 2_400; t++) {
    const key = run(a, ["RANDOMKEY"], t);
    assert.equal(run(b, ["RANDOMKEY"], t), key, `at ${t}`);
    assert.ok(typeof key === "string" && keys.includes(key), `a live key: ${key}`);
    drawn.add(key as string);
  }
  assert.ok(drawn.size >= 20, `${drawn.size} distinct keys in 400 draws of 50`);
  // A key whose time has not passed yet may be drawn; past its time it never is.
  const early = new Set<unknown>();
  for (let t = 1_000; t < 1_010; t++) {
    const key = run(a, ["RANDOMKEY"], t);
    assert.equal(run(b, ["RANDOMKEY"], t), key, `at ${t}, before the short key's time`);
    early.add(key);
  }
  for (const k of early) assert.ok(k === "brief" || keys.includes(k as string));
  run(a, ["FLUSHALL"]);
  run(a, ["SET", "only", "v", "PX", "5"], 3_000);
  assert.equal(run(a, ["RANDOMKEY"], 3_001), "only");
  assert.equal(run(a, ["RANDOMKEY"], 3_010), null, "only an expired key: nil");
});
