import assert from "node:assert/strict";
import type { Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { E, err, OK } from "../../src/kv/reply.ts";
import { INDEXED_COLLECTION_ITEMS } from "../../src/kv/keyspace.ts";
import { scanPage } from "../../src/kv/scan_index.ts";
import { encodeExec } from "../../src/kv/commands/tx.ts";

/** A store and a `run(...argv)` that applies one command at increasing times. */
function harness(kv = new KvStore()) {
  let time = 1_700_000_000_000;
  const run = (...argv: string[]): Reply => kv.apply({ op: { argv, time: ++time } });
  return { kv, run };
}

/**
 * A full `cmd` (HSCAN or SSCAN) of `key`, cursor 0 to 0 (at most 10,000 pages), with `between`
 * called after each page with its number: the pages' elements in order, and how many pages.
 */
function fullScan(
  run: (...argv: string[]) => Reply,
  cmd: "HSCAN" | "SSCAN",
  key: string,
  count: number,
  between: (page: number) => void = () => {},
): { elements: string[]; pages: number } {
  const elements: string[] = [];
  let cursor = "0";
  let pages = 0;
  do {
    const page = run(cmd, key, cursor, "COUNT", String(count)) as [string, string[]];
    elements.push(...page[1]);
    cursor = page[0];
    between(pages++);
  } while (cursor !== "0" && pages < 10_000);
  assert.equal(cursor, "0", `${cmd} ${key} ended`);
  return { elements, pages };
}

/** HSCAN's field, value, field, value, ... as a map. */
function pairMap(flat: string[]): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < flat.length; i += 2) m.set(flat[i], flat[i + 1]);
  return m;
}

function sortedPairs(r: Reply): string[] {
  assert.ok(Array.isArray(r));
  const out: string[] = [];
  for (let i = 0; i < r.length; i += 2) out.push(`${r[i]}=${r[i + 1]}`);
  return out.sort();
}

Deno.test("hashes: HSET, HMSET, HGET, HMGET, HLEN, HEXISTS, HSTRLEN", () => {
  const { run } = harness();
  assert.equal(run("HSET", "h", "a", "1", "b", "22"), 2);
  assert.equal(run("HSET", "h", "a", "one", "c", "3"), 1); // a updated, c created
  assert.deepEqual(run("HMSET", "h", "d", "4"), OK);
  assert.equal(run("HGET", "h", "a"), "one");
  assert.equal(run("HGET", "h", "zz"), null);
  assert.equal(run("HGET", "nokey", "a"), null);
  assert.deepEqual(run("HMGET", "h", "a", "zz", "b"), ["one", null, "22"]);
  assert.deepEqual(run("HMGET", "nokey", "a", "b"), [null, null]);
  assert.equal(run("HLEN", "h"), 4);
  assert.equal(run("HLEN", "nokey"), 0);
  assert.equal(run("HEXISTS", "h", "b"), 1);
  assert.equal(run("HEXISTS", "h", "zz"), 0);
  assert.equal(run("HEXISTS", "nokey", "b"), 0);
  assert.equal(run("HSTRLEN", "h", "b"), 2);
  assert.equal(run("HSTRLEN", "h", "zz"), 0);
  assert.equal(run("HSTRLEN", "nokey", "b"), 0);
  // Binary-safe fields and values (one char per byte).
  assert.equal(run("HSET", "h", "\x00\xff", "\r\n\x80"), 1);
  assert.equal(run("HGET", "h", "\x00\xff"), "\r\n\x80");
  assert.deepEqual(run("TYPE", "h"), { ok: "hash" });
});

Deno.test("hashes: arity and odd field/value counts use Redis's texts", () => {
  const { run, kv } = harness();
  assert.deepEqual(run("HSET", "h", "a"), E.ARITY("hset"));
  assert.deepEqual(run("HSET", "h", "a", "1", "b"), E.ARITY("hset"));
  assert.deepEqual(run("hmset", "h", "a", "1", "b"), E.ARITY("hmset"));
  assert.deepEqual(run("HGET", "h"), E.ARITY("hget"));
  assert.deepEqual(run("HGETALL", "h", "x"), E.ARITY("hgetall"));
  assert.deepEqual(run("HSETNX", "h", "a"), E.ARITY("hsetnx"));
  assert.deepEqual(run("HDEL", "h"), E.ARITY("hdel"));
  assert.deepEqual(run("HRANDFIELD"), E.ARITY("hrandfield"));
  assert.equal(kv.size, 0); // nothing was created
});

Deno.test("hashes: HSETNX sets only absent fields", () => {
  const { run } = harness();
  assert.equal(run("HSETNX", "h", "a", "1"), 1);
  assert.equal(run("HSETNX", "h", "a", "2"), 0);
  assert.equal(run("HSETNX", "h", "b", "2"), 1);
  assert.deepEqual(run("HMGET", "h", "a", "b"), ["1", "2"]);
});

Deno.test("hashes: HDEL counts deleted fields and deletes the emptied hash", () => {
  const { run, kv } = harness();
  run("HSET", "h", "a", "1", "b", "2", "c", "3");
  assert.equal(run("HDEL", "h", "a", "a", "zz"), 1);
  assert.equal(run("HDEL", "nokey", "a"), 0);
  assert.equal(run("HDEL", "h", "b", "c"), 2);
  assert.equal(run("EXISTS", "h"), 0);
  assert.equal(kv.size, 0);
  assert.deepEqual(run("TYPE", "h"), { ok: "none" });
});

Deno.test("hashes: HGETALL, HKEYS, HVALS in insertion order; empty for a missing key", () => {
  const { run } = harness();
  run("HSET", "h", "z", "1", "a", "2", "m", "3");
  run("HSET", "h", "a", "20");
  assert.deepEqual(run("HGETALL", "h"), ["z", "1", "a", "20", "m", "3"]);
  assert.deepEqual(run("HKEYS", "h"), ["z", "a", "m"]);
  assert.deepEqual(run("HVALS", "h"), ["1", "20", "3"]);
  assert.deepEqual(run("HGETALL", "nokey"), []);
  assert.deepEqual(run("HKEYS", "nokey"), []);
  assert.deepEqual(run("HVALS", "nokey"), []);
});

Deno.test("hashes: HINCRBY creates, adds, refuses non-integers and overflow", () => {
  const { run } = harness();
  assert.equal(run("HINCRBY", "h", "n", "5"), 5);
  assert.equal(run("HINCRBY", "h", "n", "-7"), -2);
  assert.equal(run("HGET", "h", "n"), "-2");
  assert.deepEqual(run("HINCRBY", "h", "n", "x"), E.NOT_INT);
  assert.deepEqual(run("HINCRBY", "h", "n", "1.5"), E.NOT_INT);
  assert.deepEqual(run("HINCRBY", "h", "n", " 1"), E.NOT_INT);
  assert.deepEqual(run("HINCRBY", "h", "n", "9223372036854775808"), E.NOT_INT);
  run("HSET", "h", "s", "abc", "f", "1.5", "sp", " 1", "z", "007");
  for (const f of ["s", "f", "sp", "z"]) {
    assert.deepEqual(run("HINCRBY", "h", f, "1"), err("ERR hash value is not an integer"));
  }
  run("HSET", "h", "big", "9223372036854775806");
  assert.deepEqual(run("HINCRBY", "h", "big", "1"), { int: "9223372036854775807" });
  assert.deepEqual(run("HINCRBY", "h", "big", "1"), E.OVERFLOW);
  assert.equal(run("HGET", "h", "big"), "9223372036854775807");
  run("HSET", "h", "small", "-9223372036854775807");
  assert.deepEqual(run("HINCRBY", "h", "small", "-1"), { int: "-9223372036854775808" });
  assert.deepEqual(run("HINCRBY", "h", "small", "-1"), E.OVERFLOW);
  assert.deepEqual(run("HINCRBY", "h", "n", "9223372036854775807"), { int: "9223372036854775805" });
});

Deno.test("hashes: HINCRBYFLOAT formats like Redis and refuses bad numbers", () => {
  const { run } = harness();
  assert.equal(run("HINCRBYFLOAT", "h", "x", "10.5"), "10.5");
  assert.equal(run("HINCRBYFLOAT", "h", "x", "0.25"), "10.75");
  assert.equal(run("HINCRBYFLOAT", "h", "x", "-10.75"), "0");
  assert.equal(run("HINCRBYFLOAT", "h", "y", "5.0e3"), "5000");
  // Long double arithmetic, printed with %.17Lf, exactly as redis-server 7.0 prints it.
  assert.equal(run("HINCRBYFLOAT", "h", "y", "1.5e-3"), "5000.00150000000000006");
  run("HSET", "h", "i", "3");
  assert.equal(run("HINCRBYFLOAT", "h", "i", "1"), "4");
  assert.equal(run("HINCRBY", "h", "i", "1"), 5); // the result text is an integer again
  assert.deepEqual(run("HINCRBYFLOAT", "h", "x", "abc"), E.NOT_FLOAT);
  assert.deepEqual(run("HINCRBYFLOAT", "h", "x", ""), E.NOT_FLOAT);
  assert.deepEqual(run("HINCRBYFLOAT", "h", "x", "inf"), err("ERR value is NaN or Infinity"));
  assert.deepEqual(run("HINCRBYFLOAT", "h", "x", "-inf"), err("ERR value is NaN or Infinity"));
  run("HSET", "h", "s", "abc", "sp", " 1", "inf", "inf", "huge", "1e308");
  assert.deepEqual(run("HINCRBYFLOAT", "h", "s", "1"), err("ERR hash value is not a float"));
  assert.deepEqual(run("HINCRBYFLOAT", "h", "sp", "1"), err("ERR hash value is not a float"));
  assert.deepEqual(run("HINCRBYFLOAT", "h", "inf", "1"), E.NAN_OR_INF);
  assert.match(run("HINCRBYFLOAT", "h", "huge", "1e308") as string, /^1999999999999999999933717/);
  run("HSET", "h", "huge", "6e4931");
  assert.deepEqual(run("HINCRBYFLOAT", "h", "huge", "6e4931"), E.NAN_OR_INF);
  assert.equal(run("HGET", "h", "huge"), "6e4931"); // unchanged after an error
  // The increment is checked before the key's type.
  run("SET", "str", "1");
  assert.deepEqual(run("HINCRBYFLOAT", "str", "f", "abc"), E.NOT_FLOAT);
  assert.deepEqual(run("HINCRBY", "str", "f", "abc"), E.NOT_INT);
});

Deno.test("hashes: HSCAN pages cover every field; MATCH, COUNT and errors", () => {
  const { run } = harness();
  const fields: string[] = [];
  for (let i = 0; i < 100; i++) fields.push(`field:${i}`, `v${i}`);
  run("HSET", "h", ...fields);
  const { elements, pages } = fullScan(run, "HSCAN", "h", 7);
  const seen = pairMap(elements);
  assert.equal(seen.size, 100);
  assert.equal(seen.get("field:42"), "v42");
  assert.ok(pages > 5);
  // One page with a large COUNT; MATCH filters fields.
  const all = run("HSCAN", "h", "0", "COUNT", "1000", "MATCH", "field:1?") as [string, string[]];
  assert.equal(all[0], "0");
  assert.equal(sortedPairs(all[1]).length, 10);
  assert.deepEqual(run("HSCAN", "nokey", "0"), ["0", []]);
  assert.deepEqual(run("HSCAN", "nokey", "0", "COUNT", "0"), ["0", []]); // key before options
  assert.deepEqual(run("HSCAN", "h", "x"), err("ERR invalid cursor"));
  assert.deepEqual(run("HSCAN", "h", "0", "COUNT", "0"), E.SYNTAX);
  assert.deepEqual(run("HSCAN", "h", "0", "COUNT", "x"), E.NOT_INT);
  assert.deepEqual(run("HSCAN", "h", "0", "MATCH"), E.SYNTAX);
  assert.deepEqual(run("HSCAN", "h", "0", "TYPE", "string"), E.SYNTAX);
  run("SET", "str", "1");
  assert.deepEqual(run("HSCAN", "str", "0"), E.WRONGTYPE);
  assert.deepEqual(run("HSCAN", "str", "x"), err("ERR invalid cursor")); // cursor first
});

Deno.test("hashes: HRANDFIELD count semantics, WITHVALUES and errors", () => {
  const { run } = harness();
  run("HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4", "e", "5");
  const fields = new Set(["a", "b", "c", "d", "e"]);
  const one = run("HRANDFIELD", "h");
  assert.ok(typeof one === "string" && fields.has(one));
  assert.equal(run("HRANDFIELD", "nokey"), null);
  assert.deepEqual(run("HRANDFIELD", "nokey", "3"), []);
  assert.deepEqual(run("HRANDFIELD", "nokey", "3", "WITHVALUES"), []);
  assert.deepEqual(run("HRANDFIELD", "h", "0"), []);
  const three = run("HRANDFIELD", "h", "3") as string[];
  assert.equal(three.length, 3);
  assert.equal(new Set(three).size, 3); // distinct
  for (const f of three) assert.ok(fields.has(f));
  assert.deepEqual(new Set(run("HRANDFIELD", "h", "10") as string[]), fields);
  const many = run("HRANDFIELD", "h", "-20") as string[];
  assert.equal(many.length, 20); // repeats allowed
  for (const f of many) assert.ok(fields.has(f));
  const pairs = run("HRANDFIELD", "h", "-8", "withvalues") as string[];
  assert.equal(pairs.length, 16);
  for (let i = 0; i < pairs.length; i += 2) {
    assert.equal(pairs[i + 1], String(pairs[i].charCodeAt(0) - 96));
  }
  assert.equal((run("HRANDFIELD", "h", "2", "WITHVALUES") as string[]).length, 4);
  assert.deepEqual(run("HRANDFIELD", "h", "x"), E.NOT_INT);
  assert.deepEqual(run("HRANDFIELD", "h", "2", "bogus"), E.SYNTAX);
  assert.deepEqual(run("HRANDFIELD", "h", "2", "WITHVALUES", "x"), E.SYNTAX);
  assert.deepEqual(run("HRANDFIELD", "nokey", "x", "bogus"), E.NOT_INT); // count first
  assert.deepEqual(
    run("HRANDFIELD", "h", "-9223372036854775808"),
    err(
      "ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807",
    ),
  );
  assert.deepEqual(
    run("HRANDFIELD", "h", "-9223372036854775807", "WITHVALUES"),
    err("ERR value is out of range"),
  );
  run("SET", "str", "1");
  assert.deepEqual(run("HRANDFIELD", "str"), E.WRONGTYPE);
  assert.deepEqual(run("HRANDFIELD", "str", "0"), E.WRONGTYPE);
});

Deno.test("hashes: every hash command answers WRONGTYPE on another type and changes nothing", () => {
  const { run, kv } = harness();
  run("SET", "str", "x");
  run("SADD", "set", "m");
  const before = kv.digest();
  for (const key of ["str", "set"]) {
    for (
      const argv of [
        ["HSET", key, "f", "v"],
        ["HMSET", key, "f", "v"],
        ["HSETNX", key, "f", "v"],
        ["HGET", key, "f"],
        ["HMGET", key, "f"],
        ["HDEL", key, "f"],
        ["HGETALL", key],
        ["HEXISTS", key, "f"],
        ["HLEN", key],
        ["HSTRLEN", key, "f"],
        ["HINCRBY", key, "f", "1"],
        ["HINCRBYFLOAT", key, "f", "1"],
        ["HKEYS", key],
        ["HVALS", key],
        ["HSCAN", key, "0"],
        ["HRANDFIELD", key],
        ["HRANDFIELD", key, "2", "WITHVALUES"],
      ]
    ) {
      assert.deepEqual(run(...argv), E.WRONGTYPE, argv.join(" "));
    }
  }
  assert.equal(kv.digest(), before);
  assert.equal(run("GET", "str"), "x");
});

Deno.test("hashes: expired hashes are absent and writes start a new one", () => {
  const kv = new KvStore();
  kv.apply({ op: { argv: ["HSET", "h", "a", "1"], time: 1000 } });
  kv.apply({ op: { argv: ["PEXPIRE", "h", "100"], time: 1000 } });
  assert.equal(kv.apply({ op: { argv: ["HGET", "h", "a"], time: 1050 } }), "1");
  assert.equal(kv.apply({ op: { argv: ["HGET", "h", "a"], time: 1100 } }), null);
  assert.equal(kv.apply({ op: { argv: ["HSET", "h", "b", "2"], time: 1200 } }), 1);
  assert.deepEqual(kv.apply({ op: { argv: ["HGETALL", "h"], time: 1200 } }), ["b", "2"]);
  assert.equal(kv.apply({ op: { argv: ["TTL", "h"], time: 1200 } }), -1);
});

Deno.test("hashes: writes bump the key's version for WATCH only when they change it", () => {
  const { run, kv } = harness();
  run("HSET", "h", "a", "1");
  const v = kv.keyspace.version;
  run("HSETNX", "h", "a", "2");
  run("HDEL", "h", "zz");
  run("HGET", "h", "a");
  run("HRANDFIELD", "h", "2");
  assert.equal(kv.keyspace.modifiedSince("h", v), false);
  run("HINCRBY", "h", "a", "1");
  assert.equal(kv.keyspace.modifiedSince("h", v), true);
});

Deno.test("hashes: same operations give the same digest and the same random fields", () => {
  const ops: string[][] = [
    ["HSET", "h", "a", "1", "b", "2", "c", "3", "d", "4"],
    ["HINCRBY", "h", "a", "10"],
    ["HINCRBYFLOAT", "h", "b", "0.5"],
    ["HDEL", "h", "c"],
    ["HSET", "g", "x", "y"],
    ["HDEL", "g", "x"],
  ];
  const a = harness();
  const b = harness();
  for (const op of ops) assert.deepEqual(a.run(...op), b.run(...op));
  assert.equal(a.kv.digest(), b.kv.digest());
  for (const op of [["HRANDFIELD", "h", "-10", "WITHVALUES"], ["HRANDFIELD", "h", "2"]]) {
    assert.deepEqual(a.run(...op), b.run(...op));
  }
  // The digest depends on contents, not on history or field order.
  const c = harness();
  c.run("HSET", "h", "d", "4", "b", "2.5", "a", "11");
  assert.equal(c.kv.digest(), a.kv.digest());
  c.run("HSET", "h", "a", "12");
  assert.notEqual(c.kv.digest(), a.kv.digest());
});

Deno.test("hashes: snapshot and restore keep the data and the digest", () => {
  const a = harness();
  a.run("HSET", "h", "a", "1", "b", "\x00\xff", "", "empty");
  a.run("HSET", "h2", "x", "y");
  const snap = JSON.parse(JSON.stringify(a.kv.snapshot()));
  const b = harness(new KvStore());
  b.kv.restore(snap);
  assert.equal(b.kv.digest(), a.kv.digest());
  assert.deepEqual(sortedPairs(b.run("HGETALL", "h")), sortedPairs(a.run("HGETALL", "h")));
  assert.equal(b.run("HGET", "h", ""), "empty");
  b.run("HSET", "h", "c", "3");
  a.run("HSET", "h", "c", "3");
  assert.equal(b.kv.digest(), a.kv.digest());
});

Deno.test("hashes and sets: HSCAN/SSCAN of a large collection from its index, kept exact through changes", () => {
  const { run } = harness();
  const n = INDEXED_COLLECTION_ITEMS + 500;
  for (let i = 0; i < n; i += 500) {
    const h = ["HSET", "h"];
    const s = ["SADD", "s"];
    for (let j = i; j < Math.min(n, i + 500); j++) h.push(`f${j}`, `v${j}`), s.push(`m${j}`);
    run(...h);
    run(...s);
  }
  // The pages are those of a walk over every element.
  const fields = [...Array(n).keys()].map((j) => `f${j}`);
  for (const cursor of [0, 123_456_789, 3_000_000_000]) {
    const walk = scanPage(fields, (f) => f, cursor, 10);
    const page = run("HSCAN", "h", String(cursor), "COUNT", "10") as [string, string[]];
    assert.equal(page[0], String(walk.next));
    assert.deepEqual(page[1], walk.page.flatMap((f) => [f, `v${f.slice(1)}`]));
  }
  // A full scan with writes between its pages (each its own operation, or inside a transaction
  // with an HSCAN between two writes): every field present throughout comes back, with its value.
  const { elements, pages } = fullScan(run, "HSCAN", "h", 50, (page) => {
    run("HSET", "h", `new${page}`, "x");
    run("HDEL", "h", `f${page}`);
    run(...encodeExec([], [["HSET", "h", `tx${page}`, "y"], ["HSCAN", "h", "0"], [
      "HSET",
      "h",
      `f${n - 1 - page}`,
      "changed",
    ]]));
  });
  const seen = pairMap(elements);
  for (let j = pages; j < n - pages; j++) assert.equal(seen.get(`f${j}`), `v${j}`, `f${j}`);
  // After the scan: what the transactions wrote after their HSCAN is seen by the next one.
  const all = pairMap(fullScan(run, "HSCAN", "h", 1000).elements);
  assert.equal(all.size, run("HLEN", "h"));
  assert.equal(all.get(`f${n - 1}`), "changed");
  assert.equal(all.get(`tx${pages - 1}`), "y");
  // SSCAN: every member once, and a member added after a page is found by a new scan.
  const members = new Set(fullScan(run, "SSCAN", "s", 100).elements);
  assert.equal(members.size, n);
  run("SADD", "s", "late");
  run("SREM", "s", "m0");
  const again = new Set(fullScan(run, "SSCAN", "s", 100).elements);
  assert.ok(again.has("late") && !again.has("m0"));
  assert.equal(again.size, n);
  // Deleting and re-creating the key drops the index with the old collection.
  run("DEL", "h");
  run("HSET", "h", "only", "1");
  assert.deepEqual(run("HSCAN", "h", "0"), ["0", ["only", "1"]]);
});
