import assert from "node:assert/strict";
import type { Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { E, err } from "../../src/kv/reply.ts";

/** A store and a `run(...argv)` that applies one command at increasing times. */
function harness(kv = new KvStore()) {
  let time = 1_700_000_000_000;
  const run = (...argv: string[]): Reply => kv.apply({ op: { argv, time: ++time } });
  return { kv, run };
}

function sorted(r: Reply): string[] {
  assert.ok(Array.isArray(r), `not an array: ${JSON.stringify(r)}`);
  return (r as string[]).slice().sort();
}

Deno.test("sets: SADD, SREM, SMEMBERS, SISMEMBER, SMISMEMBER, SCARD", () => {
  const { run, kv } = harness();
  assert.equal(run("SADD", "s", "a", "b", "a"), 2);
  assert.equal(run("SADD", "s", "b", "c"), 1);
  assert.deepEqual(run("SMEMBERS", "s"), ["a", "b", "c"]); // insertion order
  assert.deepEqual(run("SMEMBERS", "nokey"), []);
  assert.equal(run("SISMEMBER", "s", "a"), 1);
  assert.equal(run("SISMEMBER", "s", "z"), 0);
  assert.equal(run("SISMEMBER", "nokey", "a"), 0);
  assert.deepEqual(run("SMISMEMBER", "s", "a", "z", "c"), [1, 0, 1]);
  assert.deepEqual(run("SMISMEMBER", "nokey", "a", "b"), [0, 0]);
  assert.equal(run("SCARD", "s"), 3);
  assert.equal(run("SCARD", "nokey"), 0);
  assert.equal(run("SREM", "s", "a", "z", "a"), 1);
  assert.equal(run("SREM", "nokey", "a"), 0);
  assert.equal(run("SREM", "s", "b", "c"), 2);
  assert.equal(run("EXISTS", "s"), 0); // the emptied set is deleted
  assert.equal(kv.size, 0);
  assert.equal(run("SADD", "s", "\x00", "\xff\r\n"), 2);
  assert.equal(run("SISMEMBER", "s", "\xff\r\n"), 1);
  assert.deepEqual(run("TYPE", "s"), { ok: "set" });
});

Deno.test("sets: arity errors use Redis's texts", () => {
  const { run, kv } = harness();
  assert.deepEqual(run("SADD", "s"), E.ARITY("sadd"));
  assert.deepEqual(run("srem", "s"), E.ARITY("srem"));
  assert.deepEqual(run("SMEMBERS"), E.ARITY("smembers"));
  assert.deepEqual(run("SISMEMBER", "s"), E.ARITY("sismember"));
  assert.deepEqual(run("SMOVE", "a", "b"), E.ARITY("smove"));
  assert.deepEqual(run("SINTERSTORE", "d"), E.ARITY("sinterstore"));
  assert.deepEqual(run("SINTERCARD", "1"), E.ARITY("sintercard"));
  assert.deepEqual(run("SPOP"), E.ARITY("spop"));
  assert.equal(kv.size, 0);
});

Deno.test("sets: SPOP with and without count", () => {
  const { run, kv } = harness();
  run("SADD", "s", "a", "b", "c", "d", "e");
  const all = new Set(["a", "b", "c", "d", "e"]);
  const one = run("SPOP", "s");
  assert.ok(typeof one === "string" && all.has(one));
  assert.equal(run("SISMEMBER", "s", one as string), 0);
  assert.equal(run("SCARD", "s"), 4);
  assert.deepEqual(run("SPOP", "s", "0"), []);
  const two = run("SPOP", "s", "2") as string[];
  assert.equal(two.length, 2);
  assert.equal(new Set(two).size, 2);
  for (const m of two) assert.equal(run("SISMEMBER", "s", m), 0);
  assert.equal(run("SCARD", "s"), 2);
  const rest = run("SPOP", "s", "10") as string[];
  assert.equal(rest.length, 2);
  assert.deepEqual(new Set([one, ...two, ...rest]), all);
  assert.equal(kv.size, 0); // popping the last member deletes the set
  assert.equal(run("SPOP", "s"), null);
  assert.deepEqual(run("SPOP", "s", "3"), []);
  run("SADD", "t", "x");
  assert.equal(run("SPOP", "t"), "x");
  assert.equal(run("EXISTS", "t"), 0);
  run("SADD", "s", "a");
  assert.deepEqual(run("SPOP", "s", "-1"), E.NOT_POSITIVE);
  assert.deepEqual(run("SPOP", "s", "x"), err("ERR value is out of range, must be positive"));
  assert.deepEqual(run("SPOP", "s", "1", "2"), E.SYNTAX);
  assert.deepEqual(run("SPOP", "nokey", "-1"), E.NOT_POSITIVE); // count before the key
});

Deno.test("sets: SRANDMEMBER count semantics and errors", () => {
  const { run, kv } = harness();
  run("SADD", "s", "a", "b", "c", "d", "e");
  const all = new Set(["a", "b", "c", "d", "e"]);
  const digest = kv.digest();
  const one = run("SRANDMEMBER", "s");
  assert.ok(typeof one === "string" && all.has(one));
  assert.equal(run("SRANDMEMBER", "nokey"), null);
  assert.deepEqual(run("SRANDMEMBER", "nokey", "3"), []);
  assert.deepEqual(run("SRANDMEMBER", "s", "0"), []);
  const three = run("SRANDMEMBER", "s", "3") as string[];
  assert.equal(three.length, 3);
  assert.equal(new Set(three).size, 3);
  for (const m of three) assert.ok(all.has(m));
  assert.deepEqual(new Set(run("SRANDMEMBER", "s", "100") as string[]), all);
  const many = run("SRANDMEMBER", "s", "-50") as string[];
  assert.equal(many.length, 50);
  for (const m of many) assert.ok(all.has(m));
  assert.ok(new Set(many).size > 1);
  assert.equal(kv.digest(), digest); // a read
  assert.equal(run("SCARD", "s"), 5);
  assert.deepEqual(run("SRANDMEMBER", "s", "x"), E.NOT_INT);
  assert.deepEqual(run("SRANDMEMBER", "s", "1", "2"), E.SYNTAX);
  assert.deepEqual(
    run("SRANDMEMBER", "s", "-9223372036854775808"),
    err(
      "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
    ),
  );
  // A huge positive count is the whole set; a huge negative one is refused, not attempted.
  assert.equal((run("SRANDMEMBER", "s", "9223372036854775807") as string[]).length, 5);
  assert.ok("err" in (run("SRANDMEMBER", "s", "-9223372036854775807") as object));
});

Deno.test("sets: SINTER, SUNION, SDIFF and SINTERCARD", () => {
  const { run } = harness();
  run("SADD", "a", "1", "2", "3", "4");
  run("SADD", "b", "3", "4", "5");
  run("SADD", "c", "4", "5", "6");
  assert.deepEqual(sorted(run("SINTER", "a", "b")), ["3", "4"]);
  assert.deepEqual(sorted(run("SINTER", "a", "b", "c")), ["4"]);
  assert.deepEqual(run("SINTER", "a", "nokey"), []);
  assert.deepEqual(sorted(run("SINTER", "a")), ["1", "2", "3", "4"]);
  assert.deepEqual(sorted(run("SUNION", "a", "b", "nokey")), ["1", "2", "3", "4", "5"]);
  assert.deepEqual(run("SUNION", "nokey"), []);
  assert.deepEqual(sorted(run("SDIFF", "a", "b")), ["1", "2"]);
  assert.deepEqual(sorted(run("SDIFF", "a", "b", "c")), ["1", "2"]);
  assert.deepEqual(sorted(run("SDIFF", "a", "nokey")), ["1", "2", "3", "4"]);
  assert.deepEqual(run("SDIFF", "nokey", "a"), []);
  assert.deepEqual(run("SDIFF", "a", "a"), []);
  assert.equal(run("SINTERCARD", "2", "a", "b"), 2);
  assert.equal(run("SINTERCARD", "1", "a"), 4);
  assert.equal(run("SINTERCARD", "1", "a", "LIMIT", "3"), 3);
  assert.equal(run("SINTERCARD", "1", "a", "limit", "0"), 4); // 0: no limit
  assert.equal(run("SINTERCARD", "1", "a", "LIMIT", "1", "LIMIT", "2"), 2); // the last one wins
  assert.equal(run("SINTERCARD", "2", "a", "nokey"), 0);
  const numkeys = err("ERR numkeys should be greater than 0");
  assert.deepEqual(run("SINTERCARD", "0", "a"), numkeys);
  assert.deepEqual(run("SINTERCARD", "-1", "a"), numkeys);
  assert.deepEqual(run("SINTERCARD", "x", "a"), numkeys);
  assert.deepEqual(
    run("SINTERCARD", "3", "a", "b"),
    err("ERR Number of keys can't be greater than number of args"),
  );
  assert.deepEqual(run("SINTERCARD", "1", "a", "LIMIT", "-1"), err("ERR LIMIT can't be negative"));
  assert.deepEqual(run("SINTERCARD", "1", "a", "LIMIT", "x"), err("ERR LIMIT can't be negative"));
  assert.deepEqual(run("SINTERCARD", "1", "a", "LIMIT"), E.SYNTAX);
  assert.deepEqual(run("SINTERCARD", "1", "a", "FOO", "1"), E.SYNTAX);
});

Deno.test("sets: the STORE forms overwrite any destination and delete it on an empty result", () => {
  const { run } = harness();
  run("SADD", "a", "1", "2", "3");
  run("SADD", "b", "2", "3", "4");
  run("SET", "dst", "a string");
  run("EXPIRE", "dst", "100");
  assert.equal(run("SINTERSTORE", "dst", "a", "b"), 2);
  assert.deepEqual(run("TYPE", "dst"), { ok: "set" });
  assert.equal(run("TTL", "dst"), -1); // a new key, without the old expiry
  assert.deepEqual(sorted(run("SMEMBERS", "dst")), ["2", "3"]);
  assert.equal(run("SUNIONSTORE", "dst", "a", "b"), 4);
  assert.deepEqual(sorted(run("SMEMBERS", "dst")), ["1", "2", "3", "4"]);
  assert.equal(run("SDIFFSTORE", "dst", "a", "b"), 1);
  assert.deepEqual(run("SMEMBERS", "dst"), ["1"]);
  // The destination may be one of the sources.
  assert.equal(run("SUNIONSTORE", "a", "a", "b"), 4);
  assert.deepEqual(sorted(run("SMEMBERS", "a")), ["1", "2", "3", "4"]);
  assert.deepEqual(sorted(run("SMEMBERS", "b")), ["2", "3", "4"]); // the source is not shared
  run("SADD", "dst", "9");
  assert.deepEqual(run("SMEMBERS", "b"), ["2", "3", "4"]);
  // An empty result deletes the destination.
  run("HSET", "h", "f", "v");
  assert.equal(run("SINTERSTORE", "h", "a", "nokey"), 0);
  assert.equal(run("EXISTS", "h"), 0);
  run("SET", "str", "x");
  assert.equal(run("SDIFFSTORE", "str", "b", "a"), 0);
  assert.equal(run("EXISTS", "str"), 0);
  assert.equal(run("SUNIONSTORE", "dst", "nokey"), 0);
  assert.equal(run("EXISTS", "dst"), 0);
  assert.equal(run("SINTERSTORE", "nothing", "nokey"), 0);
  assert.equal(run("EXISTS", "nothing"), 0);
  // A wrong-typed source is an error, and the destination is untouched.
  run("SADD", "dst", "keep");
  run("SET", "str", "x");
  for (const cmd of ["SINTERSTORE", "SUNIONSTORE", "SDIFFSTORE"]) {
    assert.deepEqual(run(cmd, "dst", "a", "str"), E.WRONGTYPE, cmd);
    assert.deepEqual(run(cmd, "dst", "nokey", "str"), E.WRONGTYPE, cmd);
  }
  assert.deepEqual(run("SMEMBERS", "dst"), ["keep"]);
});

Deno.test("sets: SMOVE", () => {
  const { run } = harness();
  run("SADD", "src", "a", "b");
  run("SADD", "dst", "b");
  assert.equal(run("SMOVE", "src", "dst", "a"), 1);
  assert.deepEqual(run("SMEMBERS", "src"), ["b"]);
  assert.deepEqual(sorted(run("SMEMBERS", "dst")), ["a", "b"]);
  assert.equal(run("SMOVE", "src", "dst", "zz"), 0);
  assert.equal(run("SMOVE", "src", "dst", "b"), 1); // already in dst: still moved
  assert.equal(run("EXISTS", "src"), 0); // the emptied source is deleted
  assert.deepEqual(sorted(run("SMEMBERS", "dst")), ["a", "b"]);
  assert.equal(run("SMOVE", "nokey", "dst", "a"), 0);
  assert.equal(run("SMOVE", "dst", "new", "a"), 1);
  assert.deepEqual(run("SMEMBERS", "new"), ["a"]);
  assert.equal(run("SMOVE", "dst", "dst", "b"), 1); // same key: 1 if a member, no change
  assert.equal(run("SMOVE", "dst", "dst", "zz"), 0);
  assert.deepEqual(run("SMEMBERS", "dst"), ["b"]);
  run("SET", "str", "x");
  assert.deepEqual(run("SMOVE", "str", "dst", "b"), E.WRONGTYPE);
  assert.deepEqual(run("SMOVE", "dst", "str", "b"), E.WRONGTYPE);
  assert.deepEqual(run("SMOVE", "dst", "str", "zz"), E.WRONGTYPE);
  assert.equal(run("SMOVE", "nokey", "str", "b"), 0); // a missing source wins
  assert.deepEqual(run("SMEMBERS", "dst"), ["b"]);
});

Deno.test("sets: SSCAN pages cover every member; MATCH, COUNT and errors", () => {
  const { run } = harness();
  const members = Array.from({ length: 150 }, (_, i) => `m${i}`);
  run("SADD", "s", ...members);
  const seen = new Set<string>();
  let cursor = "0";
  let pages = 0;
  do {
    const r = run("SSCAN", "s", cursor, "COUNT", "10") as [string, string[]];
    for (const m of r[1]) seen.add(m);
    cursor = r[0];
    pages++;
  } while (cursor !== "0" && pages < 1000);
  assert.equal(seen.size, 150);
  assert.ok(pages >= 10);
  const matched = run("SSCAN", "s", "0", "MATCH", "m1?", "COUNT", "1000") as [string, string[]];
  assert.equal(matched[0], "0");
  assert.deepEqual(matched[1].slice().sort(), Array.from({ length: 10 }, (_, i) => `m1${i}`));
  assert.deepEqual(run("SSCAN", "nokey", "0"), ["0", []]);
  assert.deepEqual(run("SSCAN", "s", "x"), err("ERR invalid cursor"));
  assert.deepEqual(run("SSCAN", "s", "0", "COUNT", "0"), E.SYNTAX);
  assert.deepEqual(run("SSCAN", "s", "0", "COUNT"), E.SYNTAX);
  run("SET", "str", "x");
  assert.deepEqual(run("SSCAN", "str", "0"), E.WRONGTYPE);
});

Deno.test("sets: every set command answers WRONGTYPE on another type and changes nothing", () => {
  const { run, kv } = harness();
  run("SET", "str", "x");
  run("HSET", "hash", "f", "v");
  run("SADD", "ok", "m");
  const before = kv.digest();
  for (const key of ["str", "hash"]) {
    for (
      const argv of [
        ["SADD", key, "m"],
        ["SREM", key, "m"],
        ["SMEMBERS", key],
        ["SISMEMBER", key, "m"],
        ["SMISMEMBER", key, "m"],
        ["SCARD", key],
        ["SPOP", key],
        ["SPOP", key, "0"],
        ["SRANDMEMBER", key],
        ["SRANDMEMBER", key, "0"],
        ["SINTER", "ok", key],
        ["SINTER", "nokey", key],
        ["SUNION", key, "ok"],
        ["SDIFF", "ok", key],
        ["SINTERCARD", "2", "nokey", key],
        ["SMOVE", key, "ok", "m"],
        ["SMOVE", "ok", key, "m"],
        ["SSCAN", key, "0"],
      ]
    ) {
      assert.deepEqual(run(...argv), E.WRONGTYPE, argv.join(" "));
    }
  }
  assert.equal(kv.digest(), before);
});

Deno.test("sets: writes bump the key's version for WATCH only when they change it", () => {
  const { run, kv } = harness();
  run("SADD", "s", "a", "b");
  const v = kv.keyspace.version;
  run("SADD", "s", "a");
  run("SREM", "s", "zz");
  run("SMOVE", "s", "t", "zz");
  run("SPOP", "s", "0");
  run("SRANDMEMBER", "s", "-3");
  assert.equal(kv.keyspace.modifiedSince("s", v), false);
  run("SMOVE", "s", "t", "a");
  assert.equal(kv.keyspace.modifiedSince("s", v), true);
  assert.equal(kv.keyspace.modifiedSince("t", v), true);
});

Deno.test("sets: same operations give the same digest and the same random picks", () => {
  const ops: string[][] = [
    ["SADD", "s", ...Array.from({ length: 40 }, (_, i) => `m${i}`)],
    ["SPOP", "s"],
    ["SPOP", "s", "5"],
    ["SREM", "s", "m1", "m2"],
    ["SUNIONSTORE", "u", "s", "nokey"],
    ["SPOP", "u", "7"],
    ["SRANDMEMBER", "s", "-10"],
    ["SRANDMEMBER", "s", "10"],
    ["SMOVE", "s", "t", "m30"],
  ];
  const a = harness();
  const b = harness();
  for (const op of ops) assert.deepEqual(b.run(...op), a.run(...op), op.join(" "));
  assert.equal(a.kv.digest(), b.kv.digest());
  // The digest depends on contents, not on member order.
  const d = harness();
  const e = harness();
  d.run("SADD", "x", "1", "2", "3");
  e.run("SADD", "x", "3");
  e.run("SADD", "x", "2", "1");
  assert.equal(d.kv.digest(), e.kv.digest());
  e.run("SREM", "x", "1");
  assert.notEqual(d.kv.digest(), e.kv.digest());
});

Deno.test("sets: snapshot and restore keep the data and the digest", () => {
  const a = harness();
  a.run("SADD", "s", "a", "\x00\xff", "");
  a.run("SADD", "t", "x");
  a.run("PEXPIRE", "t", "100000");
  const snap = JSON.parse(JSON.stringify(a.kv.snapshot()));
  const b = harness(new KvStore());
  b.kv.restore(snap);
  assert.equal(b.kv.digest(), a.kv.digest());
  assert.deepEqual(sorted(b.run("SMEMBERS", "s")), sorted(a.run("SMEMBERS", "s")));
  assert.equal(b.run("SISMEMBER", "s", ""), 1);
  assert.ok((b.run("PTTL", "t") as number) > 0);
  // After the round trip both replicas keep agreeing, random picks included.
  const at = 1_800_000_000_000;
  const pop = { argv: ["SPOP", "s", "2"], time: at };
  assert.deepEqual(b.kv.apply({ op: pop }), a.kv.apply({ op: pop }));
  assert.equal(b.kv.digest(), a.kv.digest());
});
