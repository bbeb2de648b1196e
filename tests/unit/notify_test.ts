/**
 * Unit tests of keyspace notifications and PUBLISH in the state machine: the flag letters, the
 * events each command produces (only for keys it changed), transactions, expiry, exactly-once
 * retries, and the replicated setting in snapshots.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ClientTag, Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { encodeExec } from "../../src/kv/commands/tx.ts";
import { formatNotifyFlags, NOTIFY, parseNotifyFlags } from "../../src/kv/notify.ts";

/** A store that records what it publishes, with `flags` set through the order. */
function store(flags = "KEA"): { kv: KvStore; got: string[] } {
  const kv = new KvStore();
  const got: string[] = [];
  kv.onPublish = (channel, message) => {
    got.push(`${channel} ${message}`);
    return 7;
  };
  assert.deepEqual(run(kv, ["__CONFIG", "SET", "notify-keyspace-events", flags]), { ok: "OK" });
  return { kv, got };
}

function run(kv: KvStore, argv: string[], time = 1_000, tag?: ClientTag): Reply {
  return kv.apply({ op: { argv, time }, tag });
}

/** The keyevent events (`<event> <key>`) published by `argv`. */
function events(kv: KvStore, got: string[], argv: string[], time = 1_000): string[] {
  got.length = 0;
  run(kv, argv, time);
  return got.filter((l) => l.startsWith("__keyevent@0__:")).map((l) =>
    l.slice("__keyevent@0__:".length)
  );
}

Deno.test("notify: flag letters parse and print as Redis does", () => {
  assert.equal(parseNotifyFlags("x!"), null);
  assert.equal(parseNotifyFlags(""), 0);
  assert.equal(formatNotifyFlags(parseNotifyFlags("KEA")!), "AKE");
  assert.equal(formatNotifyFlags(parseNotifyFlags("Kg$lshzxetd")!), "AK");
  assert.equal(formatNotifyFlags(parseNotifyFlags("El$")!), "$lE");
  assert.equal(formatNotifyFlags(parseNotifyFlags("AnKm")!), "AnKm");
  assert.equal(formatNotifyFlags(parseNotifyFlags("g")!), "g");
  assert.ok((parseNotifyFlags("A")! & NOTIFY.new) === 0, "A does not include n");
});

Deno.test("notify: PUBLISH publishes at its place and replies the local receivers", () => {
  const { kv, got } = store("");
  got.length = 0;
  assert.equal(run(kv, ["PUBLISH", "ch", "hello"]), 7);
  assert.deepEqual(got, ["ch hello"]);
  assert.equal(
    kv.isRead({ op: { argv: ["PUBLISH", "ch", "x"], time: 0 } }),
    false,
    "PUBLISH is ordered",
  );
});

Deno.test("notify: each command's events, only for keys it changed", () => {
  const { kv, got } = store("KEA");
  assert.deepEqual(events(kv, got, ["SET", "k", "v"]), ["set k"]);
  got.length = 0;
  run(kv, ["SET", "k", "v"]);
  assert.deepEqual(got, ["__keyspace@0__:k set", "__keyevent@0__:set k"], "keyspace first");
  assert.deepEqual(events(kv, got, ["SET", "k", "v", "EX", "10"]), ["set k", "expire k"]);
  assert.deepEqual(events(kv, got, ["INCR", "n"]), ["incrby n"]);
  assert.deepEqual(events(kv, got, ["APPEND", "k", "x"]), ["append k"]);
  assert.deepEqual(events(kv, got, ["MSET", "a", "1", "b", "2"]), ["set a", "set b"]);
  assert.deepEqual(events(kv, got, ["DEL", "a", "missing", "b"]), ["del a", "del b"]);
  assert.deepEqual(events(kv, got, ["DEL", "missing"]), [], "nothing deleted: no event");
  assert.deepEqual(events(kv, got, ["RPUSH", "l", "1", "2"]), ["rpush l"]);
  // As in Redis: the push to the destination is reported before the pop from the source.
  assert.deepEqual(events(kv, got, ["LMOVE", "l", "m", "LEFT", "RIGHT"]), [
    "rpush m",
    "lpop l",
  ]);
  assert.deepEqual(events(kv, got, ["LPOP", "l"]), ["lpop l", "del l"], "emptied: del");
  assert.deepEqual(events(kv, got, ["LPOP", "l"]), []);
  assert.deepEqual(events(kv, got, ["HSET", "h", "f", "1"]), ["hset h"]);
  assert.deepEqual(events(kv, got, ["HDEL", "h", "nope"]), []);
  assert.deepEqual(events(kv, got, ["HINCRBY", "h", "f", "2"]), ["hincrby h"]);
  assert.deepEqual(events(kv, got, ["SADD", "s", "x"]), ["sadd s"]);
  assert.deepEqual(events(kv, got, ["SADD", "s", "x"]), [], "already a member: no event");
  assert.deepEqual(events(kv, got, ["SMOVE", "s", "t", "x"]), ["srem s", "del s", "sadd t"]);
  assert.deepEqual(events(kv, got, ["RENAME", "t", "u"]), ["rename_from t", "rename_to u"]);
  assert.deepEqual(events(kv, got, ["EXPIRE", "u", "100"]), ["expire u"]);
  assert.deepEqual(events(kv, got, ["PERSIST", "u"]), ["persist u"]);
  assert.deepEqual(events(kv, got, ["EXPIRE", "u", "-1"]), ["del u"], "expire in the past");
  assert.deepEqual(events(kv, got, ["GET", "k"]), [], "reads publish nothing");
});

Deno.test("notify: classes filter events; K and E choose the channels", () => {
  const { kv, got } = store("El");
  assert.deepEqual(events(kv, got, ["SET", "k", "v"]), []);
  got.length = 0;
  run(kv, ["LPUSH", "l", "x"]);
  assert.deepEqual(got, ["__keyevent@0__:lpush l"]);
  const ks = store("Kn$");
  ks.got.length = 0;
  run(ks.kv, ["SET", "k", "v"]);
  assert.deepEqual(ks.got, ["__keyspace@0__:k new", "__keyspace@0__:k set"]);
  const off = store("");
  off.got.length = 0;
  run(off.kv, ["SET", "k", "v"]);
  assert.deepEqual(off.got, []);
});

Deno.test("notify: expiry (lazy and by the sweep) publishes expired", () => {
  const { kv, got } = store("Ex");
  run(kv, ["SET", "a", "1", "PX", "10"], 1_000);
  run(kv, ["SET", "b", "1", "PX", "10"], 1_000);
  assert.deepEqual(events(kv, got, ["SET", "a", "2"], 2_000), ["expired a"], "met by a write");
  assert.deepEqual(events(kv, got, ["__EXPIRE", "10"], 2_000), ["expired b"], "the sweep");
});

Deno.test("notify: EXEC publishes each queued command's events, a retry publishes nothing", () => {
  const { kv, got } = store("E$l");
  const exec = encodeExec([], [["SET", "a", "1"], ["RPUSH", "l", "x"], ["PUBLISH", "c", "m"]]);
  got.length = 0;
  assert.deepEqual(run(kv, exec), [{ ok: "OK" }, 1, 7]);
  assert.deepEqual(got, ["__keyevent@0__:set a", "__keyevent@0__:rpush l", "c m"]);
  const tag = { client: "c1", seq: 1 };
  got.length = 0;
  assert.equal(run(kv, ["PUBLISH", "c", "once"], 1_000, tag), 7);
  assert.equal(run(kv, ["PUBLISH", "c", "once"], 1_000, tag), 7);
  assert.deepEqual(got, ["c once"], "a retried PUBLISH is not published twice");
});

Deno.test("notify: the setting is replicated state: in snapshots, default from the config", () => {
  const kv = new KvStore(undefined, parseNotifyFlags("Kg")!);
  assert.equal(formatNotifyFlags(kv.notifyFlags), "gK");
  assert.equal(kv.snapshot().notify, undefined, "the config file's value is not in snapshots");
  run(kv, ["__CONFIG", "SET", "notify-keyspace-events", "AKE"]);
  const copy = new KvStore();
  copy.restore(JSON.parse(JSON.stringify(kv.snapshot())));
  assert.equal(formatNotifyFlags(copy.notifyFlags), "AKE");
  assert.equal(
    copy.checkState({ ...kv.snapshot(), notify: "x" }),
    "malformed notify-keyspace-events in snapshot",
  );
  assert.deepEqual(run(kv, ["__CONFIG", "SET", "notify-keyspace-events", "?"]), {
    err: "ERR invalid notify-keyspace-events",
  });
});

Deno.test("notify: EXEC's commands share one random sequence, notifications on or off", () => {
  const draws = (flags: string) => {
    const { kv } = store(flags);
    run(kv, ["SADD", "s", ...Array.from({ length: 50 }, (_, i) => `m${i}`)]);
    return run(kv, encodeExec([], [["SRANDMEMBER", "s", "3"], ["SRANDMEMBER", "s", "3"]]));
  };
  const [a, b] = draws("") as Reply[];
  assert.notDeepEqual(a, b, "the second command continues the sequence");
  assert.deepEqual(draws("KEA"), [a, b], "notifications do not change what is drawn");
});
