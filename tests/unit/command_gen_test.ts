/**
 * The differential-test generator and reply normalizer (`tests/support/command_gen.ts`) and the
 * typed reply parser (`tests/support/tagged_resp.ts`), without any server.
 *
 * @module
 */
import assert from "node:assert/strict";
import {
  ALL_FAMILIES,
  type Check,
  CommandGenerator,
  compareReplies,
  runScan,
  type Unit,
} from "../support/command_gen.ts";
import { type TaggedReply, TaggedReplyParser } from "../support/tagged_resp.ts";
import { byteStringToBytes } from "../../src/kv/bytes.ts";

const bulk = (value: string | null): TaggedReply => ({ type: "bulk", value });
const int = (value: number): TaggedReply => ({ type: "int", value: String(value) });
const arr = (...value: TaggedReply[]): TaggedReply => ({ type: "array", value });

function firstUnits(seed: number, families = ALL_FAMILIES, n = 300): Unit[] {
  const g = new CommandGenerator({ seed, families, nowMs: 1_700_000_000_000 });
  return Array.from({ length: n }, () => g.next());
}

Deno.test("command_gen: the same seed gives the same sequence; another seed another", () => {
  assert.deepEqual(firstUnits(7), firstUnits(7));
  assert.notDeepEqual(firstUnits(7), firstUnits(8));
});

Deno.test("command_gen: only enabled families are generated", () => {
  const names = new Set<string>();
  for (const u of firstUnits(3, ["basic"], 2000)) {
    assert.equal(u.kind, "commands");
    if (u.kind === "commands") { for (const c of u.commands) names.add(c.argv[0].toUpperCase()); }
  }
  for (const n of names) {
    assert.ok(
      ["GET", "SET", "DEL", "EXISTS", "PING", "FOO", "SETT", "GETX", "HGETALLL", "XYZZY", "LPOPP"]
        .includes(n),
      `unexpected command ${n}`,
    );
  }
});

Deno.test("command_gen: binaryInErrors=false keeps unknown-command arguments printable", () => {
  const g = new CommandGenerator({ seed: 5, families: ["basic"], binaryInErrors: false });
  for (let i = 0; i < 3000; i++) {
    const u = g.next();
    if (u.kind !== "commands") continue;
    for (const c of u.commands) {
      if (
        c.queueError && !["GET", "SET", "DEL", "EXISTS", "PING"].includes(c.argv[0].toUpperCase())
      ) {
        for (const a of c.argv) assert.match(a, /^[\x20-\x7e]*$/);
      }
    }
  }
});

Deno.test("command_gen: a transaction stays in one unit from MULTI to EXEC or DISCARD", () => {
  for (const u of firstUnits(11, ALL_FAMILIES, 3000)) {
    if (u.kind !== "commands" || u.commands.length === 1) continue;
    const all = u.commands.map((c) => c.argv[0].toUpperCase());
    // A SET with an absolute expiry is followed by EXISTS probes (see #expiredProbes).
    let end = all.length;
    while (end > 1 && all[end - 1] === "EXISTS") end--;
    const names = all.slice(0, end);
    if (names.length === 1) {
      assert.equal(names[0], "SET", all.join(" "));
      continue;
    }
    assert.ok(names.includes("MULTI"), names.join(" "));
    assert.ok(["EXEC", "DISCARD"].includes(names[names.length - 1]), names.join(" "));
  }
});

Deno.test("command_gen: compareReplies applies each documented normalization", () => {
  const exact: Check = { kind: "exact" };
  assert.equal(compareReplies(exact, bulk("OK"), bulk("OK")), undefined);
  // The RESP type matters: +OK is not $2 OK.
  assert.notEqual(compareReplies(exact, { type: "simple", value: "OK" }, bulk("OK")), undefined);
  assert.notEqual(
    compareReplies(exact, arr(bulk("a"), bulk("b")), arr(bulk("b"), bulk("a"))),
    undefined,
  );
  const unordered: Check = { kind: "unordered" };
  assert.equal(
    compareReplies(unordered, arr(bulk("a"), bulk("b")), arr(bulk("b"), bulk("a"))),
    undefined,
  );
  assert.notEqual(compareReplies(unordered, arr(bulk("a"), bulk("a")), arr(bulk("a"))), undefined);
  const pairs: Check = { kind: "pairs" };
  assert.equal(
    compareReplies(
      pairs,
      arr(bulk("f"), bulk("1"), bulk("g"), bulk("2")),
      arr(bulk("g"), bulk("2"), bulk("f"), bulk("1")),
    ),
    undefined,
  );
  assert.notEqual(
    compareReplies(
      pairs,
      arr(bulk("f"), bulk("1"), bulk("g"), bulk("2")),
      arr(bulk("f"), bulk("2"), bulk("g"), bulk("1")),
    ),
    undefined,
  );
  const tol: Check = { kind: "tolerance", within: 2 };
  assert.equal(compareReplies(tol, int(1000), int(998)), undefined);
  assert.notEqual(compareReplies(tol, int(1000), int(997)), undefined);
  assert.notEqual(compareReplies(tol, int(-1), int(-2)), undefined);
  assert.notEqual(compareReplies(tol, int(1), int(-1)), undefined);
  const shape: Check = { kind: "shape" };
  assert.equal(
    compareReplies(shape, arr(bulk("a"), bulk("b")), arr(bulk("c"), bulk("a"))),
    undefined,
  );
  assert.notEqual(compareReplies(shape, arr(bulk("a")), arr(bulk("c"), bulk("a"))), undefined);
  assert.notEqual(compareReplies(shape, bulk("a"), bulk(null)), undefined);
  const exec: Check = { kind: "exec", items: [unordered, tol] };
  assert.equal(
    compareReplies(
      exec,
      arr(arr(bulk("a"), bulk("b")), int(10)),
      arr(arr(bulk("b"), bulk("a")), int(11)),
    ),
    undefined,
  );
  assert.notEqual(
    compareReplies(exec, arr(arr(bulk("a")), int(10)), arr(arr(bulk("b")), int(10))),
    undefined,
  );
  const err = (value: string): TaggedReply => ({ type: "error", value });
  assert.notEqual(compareReplies(exact, err("ERR a"), err("ERR b")), undefined);
  assert.equal(compareReplies(exact, err("ERR a"), err("ERR b"), { errors: "code" }), undefined);
  assert.notEqual(
    compareReplies(exact, err("ERR a"), err("WRONGTYPE a"), { errors: "code" }),
    undefined,
  );
});

Deno.test("command_gen: runScan follows cursors and returns the union of the elements", async () => {
  const pages: Record<string, TaggedReply> = {
    "0": arr(bulk("7"), arr(bulk("a"), bulk("b"))),
    "7": arr(bulk("3"), arr(bulk("b"), bulk("c"))),
    "3": arr(bulk("0"), arr()),
  };
  const sent: string[][] = [];
  const reply = await runScan(
    {
      kind: "scan",
      argv: ["SCAN", "0", "COUNT", "2"],
      cursorIndex: 1,
      shape: "elements",
      family: "keys",
    },
    (argv) => {
      sent.push(argv);
      return Promise.resolve(pages[argv[1]]);
    },
  );
  assert.deepEqual(sent.map((a) => a[1]), ["0", "7", "3"]);
  assert.deepEqual(reply, arr(bulk("a"), bulk("b"), bulk("c")));
  const error = await runScan(
    { kind: "scan", argv: ["SCAN", "abc"], cursorIndex: 1, shape: "elements", family: "keys" },
    () => Promise.resolve({ type: "error", value: "ERR invalid cursor" }),
  );
  assert.deepEqual(error, { type: "error", value: "ERR invalid cursor" });
});

Deno.test("tagged_resp: replies keep their type, 64-bit integers and raw bytes, across splits", () => {
  const wire = "+OK\r\n$2\r\nOK\r\n:9223372036854775807\r\n-ERR \xff x\r\n$-1\r\n*-1\r\n" +
    "*2\r\n$3\r\na\r\n\r\n*0\r\n";
  const bytes = byteStringToBytes(wire);
  const p = new TaggedReplyParser();
  const out: TaggedReply[] = [];
  for (const b of bytes) {
    p.push(Uint8Array.of(b));
    for (let r = p.next(); r !== undefined; r = p.next()) out.push(r);
  }
  assert.deepEqual(out, [
    { type: "simple", value: "OK" },
    bulk("OK"),
    { type: "int", value: "9223372036854775807" },
    { type: "error", value: "ERR \xff x" },
    bulk(null),
    { type: "array", value: null },
    arr(bulk("a\r\n"), arr()),
  ]);
});
