/**
 * Streams in the state machine: ID generation from ordered time, trimming, consumer groups and
 * their PEL, idle times from ordered time, and snapshots (round trip, digest). Replies and errors
 * are checked against Redis 7.0's in `tests/e2e/differential_test.ts` (family `streams`).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { E, NIL_ARRAY } from "../../src/kv/reply.ts";
import { formatId, parseId } from "../../src/kv/stream.ts";
import { CommandGenerator } from "../support/command_gen.ts";
import { COMMANDS } from "../../src/kv/commands/index.ts";
import { keysOf } from "../../src/kv/registry.ts";

const T0 = 1_700_000_000_000;

/** A store and `run(time, ...argv)`: applies one command at ordered time `time`. */
function harness(kv = new KvStore()) {
  const at = (time: number, ...argv: string[]): Reply => kv.apply({ op: { argv, time } });
  return { kv, at };
}

Deno.test("streams: XADD * takes its ID from the ordered time, strictly increasing", () => {
  const { at } = harness();
  assert.equal(at(T0, "XADD", "s", "*", "f", "v"), `${T0}-0`);
  assert.equal(at(T0, "XADD", "s", "*", "f", "v"), `${T0}-1`); // same ms: next seq
  // A replica whose clock is behind cannot make the ID go back: ordered time is the maximum.
  assert.equal(at(T0 - 5_000, "XADD", "s", "*", "f", "v"), `${T0}-2`);
  assert.equal(at(T0 + 7, "XADD", "s", "*", "f", "v"), `${T0 + 7}-0`);
  // An explicit ID ahead of the clock: later * IDs continue from it.
  assert.equal(at(T0 + 8, "XADD", "s", `${T0 + 100}-5`, "f", "v"), `${T0 + 100}-5`);
  assert.equal(at(T0 + 9, "XADD", "s", "*", "f", "v"), `${T0 + 100}-6`);
  assert.equal(at(T0 + 10, "XADD", "s", `${T0 + 100}-*`, "f", "v"), `${T0 + 100}-7`);
  assert.equal(at(T0 + 11, "XADD", "s", `${T0 + 200}-*`, "f", "v"), `${T0 + 200}-0`);
  assert.deepEqual(at(T0 + 12, "XADD", "s", `${T0 + 100}-*`, "f", "v"), {
    err: "ERR The ID specified in XADD is equal or smaller than the target stream top item",
  });
  assert.deepEqual(at(T0 + 13, "XADD", "s", "0-0", "f", "v"), {
    err: "ERR The ID specified in XADD must be greater than 0-0",
  });
  assert.deepEqual(at(T0 + 14, "XADD", "s", "1-x", "f", "v"), {
    err: "ERR Invalid stream ID specified as stream command argument",
  });
  assert.deepEqual(at(T0 + 15, "XADD", "s", "*", "f"), E.ARITY("xadd"));
  assert.equal(at(T0 + 16, "XLEN", "s"), 8);
  assert.equal(at(T0 + 17, "XADD", "n", "NOMKSTREAM", "*", "f", "v"), null);
  assert.equal(at(T0 + 18, "EXISTS", "n"), 0);
  assert.deepEqual(at(T0 + 19, "TYPE", "s"), { ok: "stream" });
  const last = "18446744073709551615-18446744073709551615";
  assert.equal(at(T0, "XADD", "m", last, "f", "v"), last);
  assert.deepEqual(at(T0, "XADD", "m", "*", "f", "v"), {
    err: "ERR The stream has exhausted the last possible ID, unable to add more items",
  });
});

Deno.test("streams: two stores applying the same order generate the same IDs and digest", () => {
  const a = harness();
  const b = harness();
  const times = [T0, T0 + 3, T0 + 1, T0 + 3, T0 + 40, T0 + 2];
  for (const t of times) {
    assert.equal(
      a.at(t, "XADD", "s", "*", "n", String(t)),
      b.at(t, "XADD", "s", "*", "n", String(t)),
    );
  }
  assert.deepEqual(a.at(T0 + 50, "XRANGE", "s", "-", "+"), b.at(T0 + 50, "XRANGE", "s", "-", "+"));
  assert.equal(a.kv.digest(), b.kv.digest());
  b.at(T0 + 60, "XDEL", "s", `${T0}-0`);
  assert.notEqual(a.kv.digest(), b.kv.digest());
});

Deno.test("streams: IDs parse as Redis's string2ull reads them", () => {
  const id = (s: string) => {
    const p = parseId(s, 0n);
    return p === null || !("id" in p) ? null : formatId(p.id);
  };
  assert.equal(id("5"), "5-0");
  assert.equal(id("007-01"), "7-1");
  assert.equal(
    id("18446744073709551615-18446744073709551615"),
    "18446744073709551615-18446744073709551615",
  );
  assert.equal(id("18446744073709551616"), null);
  assert.equal(id("-1"), null);
  assert.equal(id("-"), null); // strict
  assert.equal(id("1-"), null);
  assert.equal(id("a-1"), null);
  assert.equal(id(""), null);
});

Deno.test("streams: XRANGE/XREVRANGE with COUNT and exclusive bounds", () => {
  const { at } = harness();
  for (let i = 1; i <= 5; i++) at(T0, "XADD", "s", `${i}-0`, "i", String(i));
  const ids = (r: Reply) => (r as [string, string[]][]).map((e) => e[0]);
  assert.deepEqual(ids(at(T0, "XRANGE", "s", "-", "+")), ["1-0", "2-0", "3-0", "4-0", "5-0"]);
  assert.deepEqual(ids(at(T0, "XRANGE", "s", "(2-0", "4")), ["3-0", "4-0"]);
  assert.deepEqual(ids(at(T0, "XRANGE", "s", "2", "(4-0")), ["2-0", "3-0"]);
  assert.deepEqual(ids(at(T0, "XRANGE", "s", "-", "+", "COUNT", "2")), ["1-0", "2-0"]);
  assert.deepEqual(at(T0, "XRANGE", "s", "-", "+", "COUNT", "0"), NIL_ARRAY);
  assert.deepEqual(ids(at(T0, "XREVRANGE", "s", "+", "-", "COUNT", "2")), ["5-0", "4-0"]);
  assert.deepEqual(ids(at(T0, "XREVRANGE", "s", "(5-0", "(1-0")), ["4-0", "3-0", "2-0"]);
  assert.deepEqual(at(T0, "XRANGE", "s", "3-0", "3-0"), [["3-0", ["i", "3"]]]);
  assert.deepEqual(at(T0, "XRANGE", "s", "(-", "+"), {
    err: "ERR Invalid stream ID specified as stream command argument",
  });
  assert.deepEqual(at(T0, "XRANGE", "s", "-", "(0-0"), {
    err: "ERR invalid end ID for the interval",
  });
  assert.deepEqual(at(T0, "XRANGE", "nokey", "-", "+"), []);
  at(T0, "SET", "str", "x");
  assert.deepEqual(at(T0, "XRANGE", "str", "-", "+"), E.WRONGTYPE);
});

Deno.test("streams: MAXLEN/MINID trimming, exact and approximate, with LIMIT", () => {
  const { at } = harness();
  for (let i = 1; i <= 250; i++) at(T0, "XADD", "s", `${i}-0`, "f", "v");
  // Approximate: whole blocks of 100 entries only, while the rest keeps at least MAXLEN.
  assert.equal(at(T0, "XTRIM", "s", "MAXLEN", "~", "120"), 100);
  assert.equal(at(T0, "XTRIM", "s", "MAXLEN", "~", "10", "LIMIT", "40"), 0);
  assert.equal(at(T0, "XTRIM", "s", "MAXLEN", "~", "10", "LIMIT", "100"), 100);
  assert.equal(at(T0, "XLEN", "s"), 50);
  assert.equal(at(T0, "XTRIM", "s", "MINID", "~", "240"), 0); // the block holds IDs >= 240
  assert.equal(at(T0, "XTRIM", "s", "MINID", "240"), 39);
  assert.equal(at(T0, "XTRIM", "s", "MAXLEN", "=", "3"), 8);
  assert.deepEqual(at(T0, "XRANGE", "s", "-", "+"), [
    ["248-0", ["f", "v"]],
    ["249-0", ["f", "v"]],
    ["250-0", ["f", "v"]],
  ]);
  assert.equal(at(T0, "XADD", "s", "MAXLEN", "2", "251-0", "f", "v"), "251-0");
  assert.equal(at(T0, "XLEN", "s"), 2);
  assert.equal(at(T0, "XADD", "s", "MINID", "251", "252-0", "f", "v"), "252-0");
  assert.equal(at(T0, "XLEN", "s"), 2);
  assert.deepEqual(at(T0, "XTRIM", "s", "MAXLEN", "1", "LIMIT", "5"), {
    err: "ERR syntax error, LIMIT cannot be used without the special ~ option",
  });
  assert.deepEqual(at(T0, "XTRIM", "s", "MAXLEN", "-1"), {
    err: "ERR The MAXLEN argument must be >= 0.",
  });
  assert.deepEqual(at(T0, "XADD", "s", "MAXLEN", "1", "MINID", "1", "*", "f", "v"), {
    err: "ERR syntax error, MAXLEN and MINID options at the same time are not compatible",
  });
  // Trimming never deletes the key; XDEL of everything neither.
  assert.equal(at(T0, "XTRIM", "s", "MAXLEN", "0"), 2);
  assert.equal(at(T0, "EXISTS", "s"), 1);
  assert.equal(at(T0, "XLEN", "s"), 0);
});

Deno.test("streams: XREAD with COUNT and $; BLOCK answers at once in the state machine", () => {
  const { at } = harness();
  at(T0, "XADD", "a", "1-0", "f", "1");
  at(T0, "XADD", "a", "2-0", "f", "2");
  at(T0, "XADD", "b", "1-0", "g", "1");
  assert.deepEqual(at(T0, "XREAD", "COUNT", "1", "STREAMS", "a", "b", "0", "0"), [
    ["a", [["1-0", ["f", "1"]]]],
    ["b", [["1-0", ["g", "1"]]]],
  ]);
  assert.deepEqual(at(T0, "XREAD", "STREAMS", "a", "nokey", "1-0", "0"), [
    ["a", [["2-0", ["f", "2"]]]],
  ]);
  assert.deepEqual(at(T0, "XREAD", "STREAMS", "a", "$"), NIL_ARRAY);
  // In the state machine BLOCK answers at once (as in Redis's MULTI); the server does the wait.
  assert.deepEqual(at(T0, "XREAD", "BLOCK", "0", "STREAMS", "a", "$"), NIL_ARRAY);
  assert.deepEqual(at(T0, "XREAD", "BLOCK", "10", "STREAMS", "a", "1"), [
    ["a", [["2-0", ["f", "2"]]]],
  ]);
  assert.deepEqual(at(T0, "XREAD", "BLOCK", "-1", "STREAMS", "a", "1"), {
    err: "ERR timeout is negative",
  });
  assert.deepEqual(at(T0, "XREAD", "STREAMS", "a", "b", "0"), {
    err:
      "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified.",
  });
});

Deno.test("streams: consumer groups, the PEL, XACK and idle times from ordered time", () => {
  const { at, kv } = harness();
  for (let i = 1; i <= 4; i++) at(T0, "XADD", "s", `${i}-0`, "n", String(i));
  assert.deepEqual(at(T0, "XGROUP", "CREATE", "s", "g", "0"), { ok: "OK" });
  assert.deepEqual(at(T0, "XGROUP", "CREATE", "s", "g", "$"), {
    err: "BUSYGROUP Consumer Group name already exists",
  });
  const version = kv.keyspace.version;
  // XREADGROUP is a write: it changes the PEL and the group's last ID.
  assert.deepEqual(
    at(T0 + 10, "XREADGROUP", "GROUP", "g", "alice", "COUNT", "2", "STREAMS", "s", ">"),
    [
      ["s", [["1-0", ["n", "1"]], ["2-0", ["n", "2"]]]],
    ],
  );
  assert.ok(kv.keyspace.version > version);
  assert.deepEqual(at(T0 + 20, "XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"), [
    ["s", [["3-0", ["n", "3"]], ["4-0", ["n", "4"]]]],
  ]);
  assert.deepEqual(at(T0 + 21, "XREADGROUP", "GROUP", "g", "bob", "STREAMS", "s", ">"), NIL_ARRAY);
  // Idle times are ordered time minus delivery time: every replica computes the same.
  assert.deepEqual(at(T0 + 100, "XPENDING", "s", "g", "-", "+", "10"), [
    ["1-0", "alice", 90, 1],
    ["2-0", "alice", 90, 1],
    ["3-0", "bob", 80, 1],
    ["4-0", "bob", 80, 1],
  ]);
  assert.deepEqual(at(T0 + 100, "XPENDING", "s", "g", "IDLE", "85", "-", "+", "10"), [
    ["1-0", "alice", 90, 1],
    ["2-0", "alice", 90, 1],
  ]);
  assert.deepEqual(at(T0 + 100, "XPENDING", "s", "g"), [4, "1-0", "4-0", [["alice", "2"], [
    "bob",
    "2",
  ]]]);
  // History: the consumer's own pending entries again, counted as a delivery.
  assert.deepEqual(at(T0 + 110, "XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"), [
    ["s", [["1-0", ["n", "1"]], ["2-0", ["n", "2"]]]],
  ]);
  assert.deepEqual(at(T0 + 110, "XPENDING", "s", "g", "-", "+", "1", "alice"), [[
    "1-0",
    "alice",
    0,
    2,
  ]]);
  assert.equal(at(T0 + 120, "XACK", "s", "g", "1-0", "1-0", "9-0"), 1);
  // A deleted entry still pending shows as [id, nil] in the history.
  at(T0 + 121, "XDEL", "s", "2-0");
  assert.deepEqual(at(T0 + 122, "XREADGROUP", "GROUP", "g", "alice", "STREAMS", "s", "0"), [
    ["s", [["2-0", NIL_ARRAY]]],
  ]);
  // XCLAIM with min idle: bob's entries idle 80+ at T0 + 200 move to carol.
  assert.deepEqual(at(T0 + 200, "XCLAIM", "s", "g", "carol", "150", "3-0", "4-0", "JUSTID"), [
    "3-0",
    "4-0",
  ]);
  assert.deepEqual(at(T0 + 201, "XCLAIM", "s", "g", "dave", "150", "3-0"), []); // idle 1 now
  // XAUTOCLAIM scans the PEL; the deleted 2-0 is dropped and reported.
  assert.deepEqual(at(T0 + 400, "XAUTOCLAIM", "s", "g", "dave", "100", "0", "COUNT", "10"), [
    "0-0",
    [["3-0", ["n", "3"]], ["4-0", ["n", "4"]]],
    ["2-0"],
  ]);
  assert.deepEqual(at(T0 + 400, "XPENDING", "s", "g"), [2, "3-0", "4-0", [["dave", "2"]]]);
  assert.deepEqual(at(T0 + 450, "XINFO", "CONSUMERS", "s", "g"), [
    ["name", "alice", "pending", 0, "idle", 328],
    ["name", "bob", "pending", 0, "idle", 430],
    ["name", "carol", "pending", 0, "idle", 250],
    ["name", "dave", "pending", 2, "idle", 50],
  ]);
  assert.deepEqual(at(T0 + 450, "XINFO", "GROUPS", "s"), [
    [
      "name",
      "g",
      "consumers",
      4,
      "pending",
      2,
      "last-delivered-id",
      "4-0",
      "entries-read",
      4,
      "lag",
      0,
    ],
  ]);
  // FULL: delivery and seen times are ordered time too.
  const full = at(T0 + 450, "XINFO", "STREAM", "s", "FULL", "COUNT", "1") as Reply[];
  assert.deepEqual(full.slice(14, 16), ["entries", [["1-0", ["n", "1"]]]]);
  const [group] = full[17] as Reply[][];
  assert.deepEqual(group.slice(8, 12), ["pel-count", 2, "pending", [["3-0", "dave", T0 + 400, 2]]]);
  assert.equal(at(T0 + 460, "XGROUP", "DELCONSUMER", "s", "g", "dave"), 2);
  assert.deepEqual(at(T0 + 460, "XPENDING", "s", "g"), [0, null, null, NIL_ARRAY]);
  assert.deepEqual(at(T0, "XREADGROUP", "GROUP", "nog", "x", "STREAMS", "s", ">"), {
    err: "NOGROUP No such key 's' or consumer group 'nog' in XREADGROUP with GROUP option",
  });
  assert.equal(at(T0, "XGROUP", "DESTROY", "s", "g"), 1);
  assert.deepEqual(at(T0, "XINFO", "GROUPS", "s"), []);
});

Deno.test("streams: NOACK, SETID, MKSTREAM and ENTRIESREAD", () => {
  const { at } = harness();
  assert.deepEqual(at(T0, "XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"), { ok: "OK" });
  at(T0, "XADD", "s", "1-0", "f", "v");
  at(T0, "XADD", "s", "2-0", "f", "v");
  assert.equal(
    (at(T0, "XREADGROUP", "GROUP", "g", "c", "NOACK", "STREAMS", "s", ">") as Reply[]).length,
    1,
  );
  assert.deepEqual(at(T0, "XPENDING", "s", "g"), [0, null, null, NIL_ARRAY]);
  assert.deepEqual(at(T0, "XGROUP", "SETID", "s", "g", "0", "ENTRIESREAD", "0"), { ok: "OK" });
  assert.deepEqual(at(T0, "XINFO", "GROUPS", "s"), [
    [
      "name",
      "g",
      "consumers",
      1,
      "pending",
      0,
      "last-delivered-id",
      "0-0",
      "entries-read",
      0,
      "lag",
      2,
    ],
  ]);
  assert.deepEqual(at(T0, "XGROUP", "CREATE", "nokey", "g", "0"), {
    err: "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want " +
      "to use the MKSTREAM option to create an empty stream automatically.",
  });
  assert.equal(at(T0, "XGROUP", "CREATECONSUMER", "s", "g", "z"), 1);
  assert.equal(at(T0, "XGROUP", "CREATECONSUMER", "s", "g", "z"), 0);
  assert.deepEqual(at(T0, "XGROUP", "FOO", "s"), {
    err: "ERR unknown subcommand 'FOO'. Try XGROUP HELP.",
  });
  assert.deepEqual(at(T0, "XGROUP", "CREATE", "s"), E.ARITY("xgroup|create"));
});

Deno.test("streams: snapshot round trip keeps entries, groups, PEL, consumers and the digest", () => {
  const { at, kv } = harness();
  for (let i = 0; i < 20; i++) at(T0 + i, "XADD", "s", "*", "i", String(i), "bin", "\x00\xff\r\n");
  at(T0 + 30, "XDEL", "s", `${T0 + 3}-0`);
  at(T0 + 31, "XGROUP", "CREATE", "s", "g", "0");
  at(T0 + 32, "XGROUP", "CREATE", "s", "h", "$", "ENTRIESREAD", "20");
  at(T0 + 33, "XREADGROUP", "GROUP", "g", "a", "COUNT", "5", "STREAMS", "s", ">");
  at(T0 + 34, "XREADGROUP", "GROUP", "g", "b", "COUNT", "3", "STREAMS", "s", ">");
  at(T0 + 35, "XACK", "s", "g", `${T0}-0`);
  at(T0 + 36, "XGROUP", "CREATECONSUMER", "s", "h", "idle");
  const snap = JSON.parse(JSON.stringify(kv.snapshot()));
  const copy = new KvStore();
  copy.restore(snap);
  assert.equal(copy.digest(), kv.digest());
  const b = harness(copy);
  for (
    const argv of [
      ["XRANGE", "s", "-", "+"],
      ["XPENDING", "s", "g", "-", "+", "100"],
      ["XPENDING", "s", "g"],
      ["XINFO", "GROUPS", "s"],
      ["XINFO", "CONSUMERS", "s", "g"],
      ["XINFO", "CONSUMERS", "s", "h"],
      ["XINFO", "STREAM", "s"],
      ["XINFO", "STREAM", "s", "FULL", "COUNT", "0"],
    ]
  ) {
    assert.deepEqual(b.at(T0 + 50, ...argv), at(T0 + 50, ...argv), argv.join(" "));
  }
  // Both continue identically.
  assert.equal(b.at(T0 + 60, "XADD", "s", "*", "x", "y"), at(T0 + 60, "XADD", "s", "*", "x", "y"));
  assert.deepEqual(
    b.at(T0 + 61, "XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"),
    at(T0 + 61, "XREADGROUP", "GROUP", "g", "a", "STREAMS", "s", ">"),
  );
  assert.equal(copy.digest(), kv.digest());
  // A PEL change alone changes the digest.
  const before = kv.digest();
  at(T0 + 70, "XACK", "s", "g", `${T0 + 1}-0`);
  assert.notEqual(kv.digest(), before);
  // A malformed stream is refused.
  const bad = JSON.parse(JSON.stringify(kv.snapshot()));
  const rec = bad.keyspace.keys.find((k: unknown[]) => k[1] === "stream");
  rec[4].entries.reverse();
  assert.match(kv.checkState(bad) ?? "", /out of order/);
});

Deno.test("streams: generated command sequences never fail inside, and snapshots round-trip", () => {
  for (const seed of [11, 22, 33]) {
    const gen = new CommandGenerator({ seed, families: ["streams", "keys"], nowMs: T0 });
    const a = harness();
    const b = harness();
    let t = T0;
    for (let n = 0; n < 1500; n++) {
      const unit = gen.next();
      if (unit.kind !== "commands") continue;
      for (const { argv } of unit.commands) {
        t += 7;
        const ra = a.at(t, ...argv);
        assert.deepEqual(b.at(t, ...argv), ra, argv.join(" "));
        const text = JSON.stringify(ra);
        assert.ok(!text.includes("internal error"), `${argv.join(" ")}: ${text}`);
      }
      if (n % 100 === 99) {
        const copy = new KvStore();
        copy.restore(JSON.parse(JSON.stringify(a.kv.snapshot())));
        assert.equal(copy.digest(), a.kv.digest(), `seed ${seed}, step ${n}`);
        assert.equal(b.kv.digest(), a.kv.digest(), `seed ${seed}, step ${n}`);
      }
    }
  }
});

Deno.test("streams: a snapshot with an inconsistent PEL or node layout is refused", () => {
  const { at, kv } = harness();
  at(T0, "XADD", "s", "1-0", "f", "v");
  at(T0, "XADD", "s", "2-0", "f", "v");
  at(T0, "XGROUP", "CREATE", "s", "g", "0");
  at(T0, "XREADGROUP", "GROUP", "g", "a", "COUNT", "1", "STREAMS", "s", ">");
  at(T0, "XGROUP", "CREATECONSUMER", "s", "g", "b");
  const good = JSON.stringify(kv.snapshot());
  assert.equal(kv.checkState(JSON.parse(good)), null);
  const broken = (edit: (stream: Record<string, unknown[]>) => void) => {
    const snap = JSON.parse(good);
    edit(snap.keyspace.keys.find((k: unknown[]) => k[1] === "stream")[4]);
    return kv.checkState(snap) ?? "";
  };
  assert.match(
    broken((s) => (s.groups[0] as unknown[][])[3].push(["1-0", "b", T0, 1])),
    /listed twice/,
  );
  assert.match(
    broken((s) => (s.groups[0] as unknown[][])[3].push(["2-0", "nobody", T0, 1])),
    /unknown consumer/,
  );
  assert.match(broken((s) => s.nodes.push([1, 1, "3-0"])), /nodes do not cover/);
});

Deno.test("streams: XREAD/XREADGROUP report their keys (after STREAMS) for ACL checks", () => {
  const keys = (...argv: string[]) => keysOf(COMMANDS.get(argv[0])!, argv);
  assert.deepEqual(keys("XREAD", "COUNT", "2", "STREAMS", "a", "b", "0", "$"), ["a", "b"]);
  assert.deepEqual(
    keys("XREADGROUP", "GROUP", "streams", "c", "BLOCK", "5", "STREAMS", "k", ">"),
    ["k"],
  );
  assert.deepEqual(keys("XREAD", "STREAMS"), []);
  assert.deepEqual(keys("XADD", "s", "*", "f", "v"), ["s"]);
  assert.deepEqual(keys("XGROUP", "CREATE", "s", "g", "$"), ["s"]);
});
