/**
 * The list commands against {@link KvStore} directly (replies and error texts as Redis 7.0 gives
 * them), the {@link Deque} against a plain array model, and list values through snapshot/restore.
 */
import assert from "node:assert/strict";
import type { ByteString, Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { Deque } from "../../src/kv/list.ts";
import { COMMANDS } from "../../src/kv/commands/index.ts";
import { Prng } from "../support/prng.ts";

const OK = { ok: "OK" };
const NIL_ARRAY = { nil: "array" };
const WRONGTYPE = { err: "WRONGTYPE Operation against a key holding the wrong kind of value" };
const NOT_INT = { err: "ERR value is not an integer or out of range" };
const SYNTAX = { err: "ERR syntax error" };
const NOT_POSITIVE = { err: "ERR value is out of range, must be positive" };

/** A store and a command runner with a clock that moves forward by 1 ms per command. */
function store(): [KvStore, (...argv: ByteString[]) => Reply] {
  const kv = new KvStore();
  let time = 1_000;
  return [kv, (...argv) => kv.apply({ op: { argv, time: time++ } })];
}

function list(run: (...argv: ByteString[]) => Reply, key: ByteString): Reply {
  return run("LRANGE", key, "0", "-1");
}

Deno.test("lists: LPUSH, RPUSH, LPUSHX, RPUSHX", () => {
  const [, run] = store();
  assert.equal(run("LPUSHX", "l", "a"), 0);
  assert.equal(run("EXISTS", "l"), 0);
  assert.equal(run("RPUSH", "l", "a", "b"), 2);
  assert.equal(run("LPUSH", "l", "c", "d"), 4);
  assert.deepEqual(list(run, "l"), ["d", "c", "a", "b"]);
  assert.equal(run("RPUSHX", "l", "e", "f"), 6);
  assert.equal(run("LPUSHX", "l", "g"), 7);
  assert.deepEqual(list(run, "l"), ["g", "d", "c", "a", "b", "e", "f"]);
  assert.deepEqual(run("TYPE", "l"), { ok: "list" });
  // Binary-safe elements.
  assert.equal(run("RPUSH", "bin", "\x00\xff", ""), 2);
  assert.deepEqual(list(run, "bin"), ["\x00\xff", ""]);
  assert.deepEqual(run("LPUSH", "l"), {
    err: "ERR wrong number of arguments for 'lpush' command",
  });
});

Deno.test("lists: LPOP and RPOP, with and without count", () => {
  const [, run] = store();
  assert.equal(run("LPOP", "l"), null);
  assert.equal(run("RPOP", "l"), null);
  assert.deepEqual(run("LPOP", "l", "1"), NIL_ARRAY); // Redis 7.0: a null array
  assert.deepEqual(run("RPOP", "l", "0"), NIL_ARRAY);
  assert.deepEqual(run("LPOP", "l", "-1"), NOT_POSITIVE); // the count is checked first
  run("RPUSH", "l", "a", "b", "c", "d", "e");
  assert.equal(run("LPOP", "l"), "a");
  assert.equal(run("RPOP", "l"), "e");
  assert.deepEqual(run("LPOP", "l", "0"), []);
  assert.deepEqual(run("LPOP", "l", "1"), ["b"]);
  assert.deepEqual(run("LPOP", "l", "-1"), NOT_POSITIVE);
  assert.deepEqual(run("LPOP", "l", "x"), NOT_POSITIVE);
  assert.deepEqual(run("RPOP", "l", "1", "2"), {
    err: "ERR wrong number of arguments for 'rpop' command",
  });
  assert.deepEqual(run("RPOP", "l", "9223372036854775807"), ["d", "c"]);
  assert.equal(run("EXISTS", "l"), 0); // emptied: deleted
  run("RPUSH", "l", "x");
  assert.equal(run("RPOP", "l"), "x");
  assert.equal(run("EXISTS", "l"), 0);
});

Deno.test("lists: LLEN, LRANGE, LINDEX", () => {
  const [, run] = store();
  assert.equal(run("LLEN", "l"), 0);
  assert.deepEqual(run("LRANGE", "l", "0", "-1"), []);
  assert.equal(run("LINDEX", "l", "0"), null);
  assert.equal(run("LINDEX", "l", "x"), null); // the key is looked at first
  assert.deepEqual(run("LRANGE", "l", "x", "1"), NOT_INT); // the indexes are parsed first
  run("RPUSH", "l", "a", "b", "c", "d");
  assert.equal(run("LLEN", "l"), 4);
  assert.deepEqual(run("LRANGE", "l", "1", "2"), ["b", "c"]);
  assert.deepEqual(run("LRANGE", "l", "-3", "-2"), ["b", "c"]);
  assert.deepEqual(run("LRANGE", "l", "-100", "100"), ["a", "b", "c", "d"]);
  assert.deepEqual(run("LRANGE", "l", "3", "1"), []);
  assert.deepEqual(run("LRANGE", "l", "4", "10"), []);
  assert.deepEqual(
    run("LRANGE", "l", "-9223372036854775808", "9223372036854775807"),
    ["a", "b", "c", "d"],
  );
  assert.deepEqual(run("LRANGE", "l", "0", "01"), NOT_INT);
  assert.deepEqual(run("LRANGE", "l", "0", "9223372036854775808"), NOT_INT);
  assert.equal(run("LINDEX", "l", "0"), "a");
  assert.equal(run("LINDEX", "l", "-1"), "d");
  assert.equal(run("LINDEX", "l", "4"), null);
  assert.equal(run("LINDEX", "l", "-5"), null);
  assert.deepEqual(run("LINDEX", "l", "x"), NOT_INT);
});

Deno.test("lists: LSET", () => {
  const [, run] = store();
  assert.deepEqual(run("LSET", "l", "0", "x"), { err: "ERR no such key" });
  assert.deepEqual(run("LSET", "l", "x", "x"), { err: "ERR no such key" });
  run("RPUSH", "l", "a", "b", "c");
  assert.deepEqual(run("LSET", "l", "1", "B"), OK);
  assert.deepEqual(run("LSET", "l", "-1", "C"), OK);
  assert.deepEqual(run("LSET", "l", "3", "x"), { err: "ERR index out of range" });
  assert.deepEqual(run("LSET", "l", "-4", "x"), { err: "ERR index out of range" });
  assert.deepEqual(run("LSET", "l", "x", "x"), NOT_INT);
  assert.deepEqual(list(run, "l"), ["a", "B", "C"]);
});

Deno.test("lists: LREM", () => {
  const [, run] = store();
  assert.equal(run("LREM", "l", "0", "a"), 0);
  assert.deepEqual(run("LREM", "l", "x", "a"), NOT_INT);
  run("RPUSH", "l", "a", "b", "a", "c", "a", "b");
  assert.equal(run("LREM", "l", "1", "a"), 1);
  assert.deepEqual(list(run, "l"), ["b", "a", "c", "a", "b"]);
  assert.equal(run("LREM", "l", "-1", "b"), 1);
  assert.deepEqual(list(run, "l"), ["b", "a", "c", "a"]);
  assert.equal(run("LREM", "l", "-1", "a"), 1);
  assert.deepEqual(list(run, "l"), ["b", "a", "c"]);
  assert.equal(run("LREM", "l", "0", "z"), 0);
  run("RPUSH", "l", "a", "a");
  assert.equal(run("LREM", "l", "0", "a"), 3);
  assert.deepEqual(list(run, "l"), ["b", "c"]);
  assert.equal(run("LREM", "l", "-9223372036854775808", "b"), 1);
  assert.equal(run("LREM", "l", "5", "c"), 1);
  assert.equal(run("EXISTS", "l"), 0);
});

Deno.test("lists: LTRIM", () => {
  const [, run] = store();
  assert.deepEqual(run("LTRIM", "l", "0", "1"), OK);
  assert.deepEqual(run("LTRIM", "l", "x", "1"), NOT_INT);
  run("RPUSH", "l", "a", "b", "c", "d", "e");
  assert.deepEqual(run("LTRIM", "l", "1", "-2"), OK);
  assert.deepEqual(list(run, "l"), ["b", "c", "d"]);
  assert.deepEqual(run("LTRIM", "l", "-100", "100"), OK);
  assert.deepEqual(list(run, "l"), ["b", "c", "d"]);
  assert.deepEqual(run("LTRIM", "l", "1", "1"), OK);
  assert.deepEqual(list(run, "l"), ["c"]);
  assert.deepEqual(run("LTRIM", "l", "1", "0"), OK);
  assert.equal(run("EXISTS", "l"), 0);
  run("RPUSH", "l", "a", "b");
  assert.deepEqual(run("LTRIM", "l", "5", "10"), OK);
  assert.equal(run("EXISTS", "l"), 0);
});

Deno.test("lists: LINSERT", () => {
  const [, run] = store();
  assert.equal(run("LINSERT", "l", "BEFORE", "a", "x"), 0);
  assert.deepEqual(run("LINSERT", "l", "middle", "a", "x"), SYNTAX);
  assert.equal(run("EXISTS", "l"), 0);
  run("RPUSH", "l", "a", "b", "a");
  assert.equal(run("LINSERT", "l", "before", "a", "x"), 4);
  assert.equal(run("LINSERT", "l", "AFTER", "a", "y"), 5);
  assert.equal(run("LINSERT", "l", "After", "b", "z"), 6);
  assert.equal(run("LINSERT", "l", "BEFORE", "nope", "q"), -1);
  assert.deepEqual(list(run, "l"), ["x", "a", "y", "b", "z", "a"]);
});

Deno.test("lists: LMOVE and RPOPLPUSH", () => {
  const [, run] = store();
  assert.equal(run("LMOVE", "a", "b", "LEFT", "RIGHT"), null);
  assert.equal(run("EXISTS", "b"), 0);
  assert.deepEqual(run("LMOVE", "a", "b", "up", "RIGHT"), SYNTAX);
  assert.deepEqual(run("LMOVE", "a", "b", "LEFT", "down"), SYNTAX);
  assert.equal(run("RPOPLPUSH", "a", "b"), null);
  run("RPUSH", "a", "1", "2", "3");
  assert.equal(run("LMOVE", "a", "b", "left", "right"), "1");
  assert.equal(run("LMOVE", "a", "b", "Right", "Left"), "3");
  assert.deepEqual(list(run, "b"), ["3", "1"]);
  assert.equal(run("RPOPLPUSH", "b", "a"), "1");
  assert.deepEqual(list(run, "a"), ["1", "2"]);
  // Same key: a rotation.
  assert.equal(run("LMOVE", "a", "a", "LEFT", "RIGHT"), "1");
  assert.deepEqual(list(run, "a"), ["2", "1"]);
  assert.equal(run("RPOPLPUSH", "a", "a"), "1");
  assert.deepEqual(list(run, "a"), ["1", "2"]);
  // Emptying the source deletes it; a one-element rotation keeps it.
  assert.equal(run("RPOPLPUSH", "b", "a"), "3");
  assert.equal(run("EXISTS", "b"), 0);
  run("RPUSH", "one", "x");
  assert.equal(run("LMOVE", "one", "one", "RIGHT", "LEFT"), "x");
  assert.deepEqual(list(run, "one"), ["x"]);
  // The destination is checked only when there is something to move.
  run("SET", "s", "v");
  assert.equal(run("LMOVE", "missing", "s", "LEFT", "LEFT"), null);
  assert.deepEqual(run("LMOVE", "a", "s", "LEFT", "LEFT"), WRONGTYPE);
  assert.deepEqual(run("RPOPLPUSH", "s", "a"), WRONGTYPE);
  assert.deepEqual(list(run, "a"), ["3", "1", "2"]); // unchanged by the refused moves
});

Deno.test("lists: LPOS with RANK, COUNT and MAXLEN", () => {
  const [, run] = store();
  assert.equal(run("LPOS", "l", "a"), null);
  assert.deepEqual(run("LPOS", "l", "a", "COUNT", "1"), []);
  run("RPUSH", "l", "a", "b", "c", "a", "b", "c", "a");
  assert.equal(run("LPOS", "l", "a"), 0);
  assert.equal(run("LPOS", "l", "c"), 2);
  assert.equal(run("LPOS", "l", "z"), null);
  assert.deepEqual(run("LPOS", "l", "z", "COUNT", "0"), []);
  assert.equal(run("LPOS", "l", "a", "RANK", "2"), 3);
  assert.equal(run("LPOS", "l", "a", "RANK", "-1"), 6);
  assert.equal(run("LPOS", "l", "a", "RANK", "-3"), 0);
  assert.equal(run("LPOS", "l", "a", "RANK", "4"), null);
  assert.deepEqual(run("LPOS", "l", "a", "COUNT", "0"), [0, 3, 6]);
  assert.deepEqual(run("LPOS", "l", "a", "COUNT", "2"), [0, 3]);
  assert.deepEqual(run("LPOS", "l", "a", "COUNT", "2", "RANK", "-1"), [6, 3]);
  assert.deepEqual(run("LPOS", "l", "a", "RANK", "2", "COUNT", "0"), [3, 6]);
  assert.deepEqual(run("LPOS", "l", "a", "COUNT", "0", "MAXLEN", "4"), [0, 3]);
  assert.deepEqual(run("LPOS", "l", "a", "RANK", "-1", "COUNT", "0", "MAXLEN", "2"), [6]);
  assert.equal(run("LPOS", "l", "c", "MAXLEN", "2"), null);
  assert.equal(run("LPOS", "l", "a", "maxlen", "0"), 0);
  assert.deepEqual(run("LPOS", "l", "a", "rank", "1", "COUNT", "1", "RANK", "2"), [3]);
  // Redis 7.0 negates RANK -2^63 in 64 bits: the first match from the tail, COUNT ignored.
  assert.equal(run("LPOS", "l", "a", "RANK", "-9223372036854775808"), 6);
  assert.deepEqual(
    run("LPOS", "l", "a", "RANK", "-9223372036854775808", "COUNT", "1"),
    [6, 3, 0],
  );
  assert.equal(run("LPOS", "l", "a", "RANK", "9223372036854775807"), null);
  // Errors, checked before the key is looked at.
  const rankZero = {
    err: "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... " +
      "or use negative to start from the end of the list",
  };
  assert.deepEqual(run("LPOS", "l", "a", "RANK", "0"), rankZero);
  assert.deepEqual(run("LPOS", "nokey", "a", "RANK", "0"), rankZero);
  assert.deepEqual(run("LPOS", "l", "a", "RANK", "x"), NOT_INT);
  assert.deepEqual(run("LPOS", "l", "a", "COUNT", "-1"), { err: "ERR COUNT can't be negative" });
  assert.deepEqual(run("LPOS", "l", "a", "COUNT", "x"), { err: "ERR COUNT can't be negative" });
  assert.deepEqual(run("LPOS", "l", "a", "MAXLEN", "-1"), { err: "ERR MAXLEN can't be negative" });
  assert.deepEqual(run("LPOS", "l", "a", "RANK"), SYNTAX);
  assert.deepEqual(run("LPOS", "l", "a", "FOO", "1"), SYNTAX);
  run("SET", "s", "v");
  assert.deepEqual(run("LPOS", "s", "a", "RANK", "0"), rankZero);
  assert.deepEqual(run("LPOS", "s", "a"), WRONGTYPE);
});

Deno.test("lists: LMPOP", () => {
  const [, run] = store();
  assert.deepEqual(run("LMPOP", "1", "l", "LEFT"), NIL_ARRAY);
  run("RPUSH", "l2", "a", "b", "c");
  assert.deepEqual(run("LMPOP", "2", "l1", "l2", "LEFT"), ["l2", ["a"]]);
  assert.deepEqual(run("LMPOP", "2", "l1", "l2", "right", "COUNT", "5"), ["l2", ["c", "b"]]);
  assert.equal(run("EXISTS", "l2"), 0);
  const greater = (what: string) => ({ err: `ERR ${what} should be greater than 0` });
  assert.deepEqual(run("LMPOP", "0", "l", "LEFT"), greater("numkeys"));
  assert.deepEqual(run("LMPOP", "-1", "l", "LEFT"), greater("numkeys"));
  assert.deepEqual(run("LMPOP", "x", "l", "LEFT"), greater("numkeys"));
  assert.deepEqual(run("LMPOP", "1", "l", "LEFT", "COUNT", "0"), greater("count"));
  assert.deepEqual(run("LMPOP", "1", "l", "LEFT", "COUNT", "x"), greater("count"));
  assert.deepEqual(run("LMPOP", "2", "l", "LEFT"), SYNTAX);
  assert.deepEqual(run("LMPOP", "9223372036854775807", "l", "LEFT"), SYNTAX);
  assert.deepEqual(run("LMPOP", "1", "l", "middle"), SYNTAX);
  assert.deepEqual(run("LMPOP", "1", "l", "LEFT", "COUNT"), SYNTAX);
  assert.deepEqual(run("LMPOP", "1", "l", "LEFT", "COUNT", "1", "COUNT", "1"), SYNTAX);
  assert.deepEqual(run("LMPOP", "1", "l", "LEFT", "foo"), SYNTAX);
  assert.deepEqual(run("LMPOP", "1", "l"), {
    err: "ERR wrong number of arguments for 'lmpop' command",
  });
  // A key of another type stops the scan only when it is reached.
  run("SET", "s", "v");
  run("RPUSH", "l", "x");
  assert.deepEqual(run("LMPOP", "2", "s", "l", "LEFT"), WRONGTYPE);
  assert.deepEqual(run("LMPOP", "2", "l", "s", "LEFT"), ["l", ["x"]]);
});

Deno.test("lists: every list command answers WRONGTYPE on another type, changing nothing", () => {
  const [kv, run] = store();
  run("SET", "s", "v");
  run("RPUSH", "l", "a");
  const digest = kv.digest();
  for (
    const argv of [
      ["LPUSH", "s", "a"],
      ["RPUSH", "s", "a"],
      ["LPUSHX", "s", "a"],
      ["RPUSHX", "s", "a"],
      ["LPOP", "s"],
      ["RPOP", "s"],
      ["LPOP", "s", "0"],
      ["RPOP", "s", "2"],
      ["LLEN", "s"],
      ["LRANGE", "s", "0", "-1"],
      ["LINDEX", "s", "0"],
      ["LSET", "s", "0", "x"],
      ["LREM", "s", "0", "a"],
      ["LTRIM", "s", "0", "1"],
      ["LINSERT", "s", "BEFORE", "a", "b"],
      ["LMOVE", "s", "l", "LEFT", "LEFT"],
      ["LMOVE", "l", "s", "LEFT", "LEFT"],
      ["RPOPLPUSH", "s", "l"],
      ["RPOPLPUSH", "l", "s"],
      ["LPOS", "s", "a"],
      ["LMPOP", "1", "s", "LEFT"],
    ]
  ) {
    assert.deepEqual(run(...argv), WRONGTYPE, argv.join(" "));
  }
  assert.equal(kv.digest(), digest);
  assert.equal(run("GET", "s"), "v");
  assert.deepEqual(list(run, "l"), ["a"]);
});

Deno.test("lists: specs match Redis 7's COMMAND INFO", () => {
  const expect: Record<string, [number, string[], [number, number, number]]> = {
    lpush: [-3, ["write", "denyoom", "fast"], [1, 1, 1]],
    rpush: [-3, ["write", "denyoom", "fast"], [1, 1, 1]],
    lpushx: [-3, ["write", "denyoom", "fast"], [1, 1, 1]],
    rpushx: [-3, ["write", "denyoom", "fast"], [1, 1, 1]],
    lpop: [-2, ["write", "fast"], [1, 1, 1]],
    rpop: [-2, ["write", "fast"], [1, 1, 1]],
    llen: [2, ["readonly", "fast"], [1, 1, 1]],
    lrange: [4, ["readonly"], [1, 1, 1]],
    lindex: [3, ["readonly"], [1, 1, 1]],
    lset: [4, ["write", "denyoom"], [1, 1, 1]],
    lrem: [4, ["write"], [1, 1, 1]],
    ltrim: [4, ["write"], [1, 1, 1]],
    linsert: [5, ["write", "denyoom"], [1, 1, 1]],
    lmove: [5, ["write", "denyoom"], [1, 2, 1]],
    rpoplpush: [3, ["write", "denyoom"], [1, 2, 1]],
    lpos: [-3, ["readonly"], [1, 1, 1]],
    lmpop: [-4, ["write"], [0, 0, 0]],
  };
  for (const [name, [arity, flags, keys]] of Object.entries(expect)) {
    const spec = COMMANDS.get(name);
    assert.ok(spec?.apply, name);
    assert.equal(spec.arity, arity, name);
    assert.deepEqual([...spec.flags], flags, name);
    assert.deepEqual([...spec.keys], keys, name);
    assert.equal(spec.group, "list", name);
  }
});

Deno.test("lists: writes that change a list bump its version; refused ones and reads do not", () => {
  const [kv, run] = store();
  run("RPUSH", "l", "a", "b");
  const ver = () => kv.keyspace.get("l")!.ver;
  let v = ver();
  for (
    const argv of [
      ["LPUSH", "l", "x"],
      ["RPUSHX", "l", "y"],
      ["LSET", "l", "0", "z"],
      ["LINSERT", "l", "AFTER", "z", "w"],
      ["LREM", "l", "1", "w"],
      ["LTRIM", "l", "0", "-1"],
      ["LPOP", "l"],
      ["RPOPLPUSH", "l", "l"],
      ["LMPOP", "1", "l", "RIGHT"],
    ]
  ) {
    const before = kv.digest();
    run(...argv);
    assert.ok(ver() > v, argv.join(" "));
    v = ver();
    if (argv[0] !== "LTRIM") assert.notEqual(kv.digest(), before, argv.join(" "));
  }
  const digest = kv.digest();
  for (
    const argv of [
      ["LLEN", "l"],
      ["LRANGE", "l", "0", "-1"],
      ["LINDEX", "l", "0"],
      ["LPOS", "l", "a"],
      ["LSET", "l", "99", "x"],
      ["LREM", "l", "0", "nope"],
      ["LINSERT", "l", "BEFORE", "nope", "x"],
      ["LPOP", "l", "0"],
    ]
  ) {
    run(...argv);
    assert.equal(ver(), v, argv.join(" "));
  }
  assert.equal(kv.digest(), digest);
});

Deno.test("lists: an expired list is absent for every list command", () => {
  const kv = new KvStore();
  const at = (time: number, ...argv: ByteString[]) => kv.apply({ op: { argv, time } });
  at(1_000, "RPUSH", "l", "a", "b");
  at(1_000, "PEXPIRE", "l", "100");
  assert.equal(at(1_050, "LLEN", "l"), 2);
  assert.equal(at(1_100, "LLEN", "l"), 0);
  assert.deepEqual(at(1_100, "LRANGE", "l", "0", "-1"), []);
  assert.equal(at(1_100, "LPUSHX", "l", "x"), 0);
  assert.equal(at(1_100, "RPUSH", "l", "c"), 1);
  assert.deepEqual(at(1_100, "LRANGE", "l", "0", "-1"), ["c"]);
  assert.equal(at(1_100, "PTTL", "l"), -1);
});

Deno.test("lists: snapshot and restore keep contents and digest", () => {
  const [kv, run] = store();
  run("RPUSH", "l", "a", "b", "\x00\xff");
  run("LPUSH", "l", "z");
  run("LPOP", "l");
  run("LPUSH", "l", "y");
  for (let i = 0; i < 100; i++) run(i % 2 ? "RPUSH" : "LPUSH", "big", String(i));
  run("LTRIM", "big", "10", "-10");
  run("SET", "s", "v");
  run("PEXPIRE", "l", "1000000");
  const digest = kv.digest();
  const snap = JSON.parse(JSON.stringify(kv.snapshot()));
  const rec = snap.keyspace.keys.find((k: unknown[]) => k[0] === "l");
  assert.deepEqual(rec[4], ["y", "a", "b", "\x00\xff"]); // a flat array in the snapshot
  const copy = new KvStore();
  copy.restore(snap);
  assert.equal(copy.digest(), digest);
  const runCopy = (...argv: ByteString[]) => copy.apply({ op: { argv, time: 5_000 } });
  for (const key of ["l", "big"]) {
    assert.deepEqual(runCopy("LRANGE", key, "0", "-1"), run("LRANGE", key, "0", "-1"));
  }
  // The restored lists are deques: they keep working, and the digests keep agreeing.
  for (const r of [run, runCopy]) {
    r("LPUSH", "l", "p");
    r("RPOP", "big", "3");
    r("LINSERT", "big", "AFTER", "50", "x");
  }
  assert.equal(copy.digest(), kv.digest());
});

Deno.test("lists: the digest depends on a list's contents and order, not its history", () => {
  const [a, runA] = store();
  const [b, runB] = store();
  runA("RPUSH", "l", "1", "2", "3");
  runB("LPUSH", "l", "3", "2", "1", "0");
  assert.notEqual(a.digest(), b.digest());
  runB("LPOP", "l");
  assert.equal(a.digest(), b.digest());
  runB("LSET", "l", "0", "2");
  runB("LSET", "l", "1", "1");
  assert.notEqual(a.digest(), b.digest());
});

// ---- the deque against an array model ----------------------------------------------------------

function checkSame(d: Deque, model: ByteString[], what: string): void {
  assert.equal(d.length, model.length, what);
  assert.deepEqual(d.toArray(), model, what);
  assert.deepEqual([...d], model, what);
  assert.deepEqual([...d.reversed()], [...model].reverse(), what);
}

Deno.test("deque: seeded random operations agree with a plain array", () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const p = new Prng(seed);
    const d = new Deque();
    const model: ByteString[] = [];
    let next = 0;
    for (let step = 0; step < 3_000; step++) {
      const what = `seed ${seed} step ${step}`;
      // Phases of growth and of shrinking so the buffer doubles and halves repeatedly.
      const grow = Math.floor(step / 400) % 2 === 0;
      const op = p.int(0, 13);
      const v = String(p.chance(0.3) ? p.int(0, 3) : next++);
      switch (op) {
        case 0:
        case 1:
          if (grow || p.chance(0.3)) {
            d.pushBack(v);
            model.push(v);
          }
          break;
        case 2:
        case 3:
          if (grow || p.chance(0.3)) {
            d.pushFront(v);
            model.unshift(v);
          }
          break;
        case 4:
        case 5:
          assert.equal(d.popBack(), model.pop(), what);
          break;
        case 6:
        case 7:
          assert.equal(d.popFront(), model.shift(), what);
          break;
        case 8: {
          const i = p.int(0, model.length);
          d.insert(i, v);
          model.splice(i, 0, v);
          break;
        }
        case 9:
          if (model.length > 0) {
            const i = p.int(0, model.length - 1);
            assert.equal(d.removeAt(i), model.splice(i, 1)[0], what);
          }
          break;
        case 10: {
          const i = p.int(-1, model.length);
          assert.equal(d.at(i), model[i], what);
          assert.equal(d.set(i, v), i >= 0 && i < model.length, what);
          if (i >= 0 && i < model.length) model[i] = v;
          break;
        }
        case 11: {
          const s = p.int(-2, model.length + 2);
          const e = p.int(-2, model.length + 2);
          const clamp = (x: number) => Math.max(0, Math.min(x, model.length));
          const cs = clamp(s);
          const ce = Math.max(cs, clamp(e));
          assert.deepEqual(d.slice(s, e), model.slice(cs, ce), what);
          if (p.chance(0.1)) {
            d.keep(s, e);
            model.splice(0, model.length, ...model.slice(cs, ce));
          }
          break;
        }
        case 12: {
          const x = String(p.int(0, 3));
          const limit = p.int(0, 3);
          const fromTail = p.chance(0.5);
          let removed = 0;
          const idx = model.map((_, i) => i);
          if (fromTail) idx.reverse();
          const drop = new Set<number>();
          for (const i of idx) {
            if (model[i] === x && (limit === 0 || removed < limit)) {
              drop.add(i);
              removed++;
            }
          }
          assert.equal(d.removeValue(x, limit, fromTail), removed, what);
          model.splice(0, model.length, ...model.filter((_, i) => !drop.has(i)));
          break;
        }
        default: {
          const x = String(p.int(0, 3));
          assert.equal(d.indexOf(x), model.indexOf(x), what);
        }
      }
      checkSame(d, model, what);
    }
  }
});

Deno.test("deque: pushes and pops at both ends move each element O(1) times (Deque.steps)", () => {
  const d = new Deque();
  const n = 200_000;
  const before = Deque.steps;
  for (let i = 0; i < n; i++) d.pushFront(String(i));
  for (let i = 0; i < n; i++) d.popBack();
  for (let i = 0; i < n; i++) d.pushBack(String(i));
  for (let i = 0; i < n; i++) d.popFront();
  assert.equal(d.length, 0);
  // Doubling and halving copy under 2n elements per phase; growing by a constant, or shifting at
  // the front, would copy about n²/2 (2·10^10 here).
  const steps = Deque.steps - before;
  assert.ok(steps > 0 && steps <= 8 * n, `${steps} steps`);
  // The meter sees a shift in the middle: the shorter side moves.
  const e = Deque.from(Array.from({ length: 1_000 }, (_, i) => String(i)));
  const s0 = Deque.steps;
  e.insert(10, "x");
  e.removeAt(990);
  assert.equal(Deque.steps - s0, 10 + 10);
});

Deno.test("lists: LPUSH and LPOP on a 100,000-element list never read or copy the list", () => {
  const [kv, run] = store();
  for (let i = 0; i < 100; i++) {
    run("RPUSH", "l", ...Array.from({ length: 1_000 }, (_, j) => String(i * 1_000 + j)));
  }
  kv.digest();
  const before = Deque.steps;
  for (let i = 0; i < 20_000; i++) {
    run("LPUSH", "l", "x");
    run("LPOP", "l");
  }
  // Copying the list on a write, or hashing it after each one, reads 100,000 elements at a time.
  const steps = Deque.steps - before;
  assert.ok(steps < 1_000, `${steps} steps`);
  assert.equal(run("LLEN", "l"), 100_000);
  assert.equal(run("LINDEX", "l", "0"), "0");
  // The list keeps its hash (digest_hash.ts): the next digest reads none of it either.
  const read = Deque.steps;
  kv.digest();
  assert.equal(Deque.steps - read, 0);
  // An edit in the middle drops the kept hash: the next digest reads the list whole, once (the
  // meter sees the store's reads).
  run("LINSERT", "l", "BEFORE", "50000", "y");
  const edited = Deque.steps;
  kv.digest();
  assert.ok(Deque.steps - edited >= 100_000, `${Deque.steps - edited} steps`);
});
