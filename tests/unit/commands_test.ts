/**
 * Unit tests of the client-port command set: every parseCommand branch and error message,
 * encodeOutcome, and the INFO body (formatInfo / parseInfo).
 *
 * @module
 */
import assert from "node:assert/strict";
import type { Outcome, ReplicaStatus } from "../../src/core/types.ts";
import {
  encodeOutcome,
  formatInfo,
  MAX_CLIENT_ID_BYTES,
  MAX_KEY_BYTES,
  MAX_VALUE_BYTES,
  parseCommand,
  type ParsedCommand,
  parseInfo,
} from "../../src/net/commands.ts";
import { RespError, RespReplyParser, type RespValue } from "../../src/net/resp.ts";

function str(bytes: Uint8Array): string {
  let s = "";
  for (const x of bytes) s += String.fromCharCode(x);
  return s;
}

function err(message: string): ParsedCommand {
  return { type: "error", message };
}

function arity(name: string): ParsedCommand {
  return err(`ERR wrong number of arguments for '${name}' command`);
}

Deno.test("parseCommand: GET", () => {
  assert.deepEqual(parseCommand(["GET", "k"]), {
    type: "op",
    cmd: { op: { kind: "get", key: "k" } },
  });
  assert.deepEqual(parseCommand(["get", ""]), {
    type: "op",
    cmd: { op: { kind: "get", key: "" } },
  });
  assert.deepEqual(parseCommand(["GET"]), arity("get"));
  assert.deepEqual(parseCommand(["gEt", "a", "b"]), arity("get"));
});

Deno.test("parseCommand: SET and PUT", () => {
  const put = { type: "op", cmd: { op: { kind: "put", key: "k", value: "v\r\n\x00\xff" } } };
  assert.deepEqual(parseCommand(["SET", "k", "v\r\n\x00\xff"]), put);
  assert.deepEqual(parseCommand(["put", "k", "v\r\n\x00\xff"]), put);
  assert.deepEqual(parseCommand(["Set", "k", ""]), {
    type: "op",
    cmd: { op: { kind: "put", key: "k", value: "" } },
  });
  assert.deepEqual(parseCommand(["SET", "k"]), arity("set"));
  assert.deepEqual(parseCommand(["SET"]), arity("set"));
  assert.deepEqual(parseCommand(["PUT", "k"]), arity("put"));
  assert.deepEqual(parseCommand(["PUT", "k", "v", "x"]), arity("put"));
  assert.deepEqual(
    parseCommand(["SET", "k", "v", "EX", "10"]),
    err("ERR syntax error: SET options are not supported (got 'EX'); use SET key value"),
  );
  assert.deepEqual(
    parseCommand(["set", "k", "v", "nx"]),
    err("ERR syntax error: SET options are not supported (got 'nx'); use SET key value"),
  );
});

Deno.test("parseCommand: DEL and DELETE", () => {
  const del = { type: "op", cmd: { op: { kind: "delete", key: "k" } } };
  assert.deepEqual(parseCommand(["DEL", "k"]), del);
  assert.deepEqual(parseCommand(["delete", "k"]), del);
  assert.deepEqual(parseCommand(["DEL"]), arity("del"));
  assert.deepEqual(parseCommand(["DELETE"]), arity("delete"));
  assert.deepEqual(
    parseCommand(["DEL", "a", "b"]),
    err("ERR DEL with several keys is not supported: lamportkv deletes one key per command"),
  );
  assert.deepEqual(parseCommand(["DELETE", "a", "b"]), arity("delete"));
});

Deno.test("parseCommand: EXISTS and HAS", () => {
  const has = { type: "op", cmd: { op: { kind: "has", key: "k" } } };
  assert.deepEqual(parseCommand(["EXISTS", "k"]), has);
  assert.deepEqual(parseCommand(["Has", "k"]), has);
  assert.deepEqual(parseCommand(["EXISTS"]), arity("exists"));
  assert.deepEqual(parseCommand(["HAS"]), arity("has"));
  assert.deepEqual(
    parseCommand(["exists", "a", "b"]),
    err("ERR EXISTS with several keys is not supported: lamportkv checks one key per command"),
  );
  assert.deepEqual(parseCommand(["HAS", "a", "b"]), arity("has"));
});

Deno.test("parseCommand: key and value size limits", () => {
  const bigKey = "k".repeat(MAX_KEY_BYTES + 1);
  const okKey = "k".repeat(MAX_KEY_BYTES);
  const keyErr = err("ERR key too large (max 65536 bytes)");
  assert.equal(MAX_KEY_BYTES, 65536);
  assert.equal(MAX_VALUE_BYTES, 8 * 1024 * 1024);
  for (const name of ["GET", "DEL", "DELETE", "EXISTS", "HAS"]) {
    assert.deepEqual(parseCommand([name, bigKey]), keyErr, name);
    assert.equal(parseCommand([name, okKey]).type, "op", name);
  }
  assert.deepEqual(parseCommand(["SET", bigKey, "v"]), keyErr);
  assert.deepEqual(parseCommand(["PUT", bigKey, "v".repeat(MAX_VALUE_BYTES + 1)]), keyErr);
  assert.deepEqual(
    parseCommand(["SET", "k", "v".repeat(MAX_VALUE_BYTES + 1)]),
    err("ERR value too large (max 8388608 bytes)"),
  );
  assert.equal(parseCommand(["SET", okKey, "v".repeat(MAX_VALUE_BYTES)]).type, "op");
});

Deno.test("parseCommand: PING, QUIT, INFO, COMMAND", () => {
  assert.deepEqual(parseCommand(["PING"]), { type: "ping" });
  assert.deepEqual(parseCommand(["ping", "hi\xff"]), { type: "ping", message: "hi\xff" });
  assert.deepEqual(parseCommand(["PING", "a", "b"]), arity("ping"));
  assert.deepEqual(parseCommand(["QUIT"]), { type: "quit" });
  assert.deepEqual(parseCommand(["quit", "now"]), { type: "quit" });
  assert.deepEqual(parseCommand(["INFO"]), { type: "info" });
  assert.deepEqual(parseCommand(["info", "LamportKV"]), { type: "info", section: "lamportkv" });
  assert.deepEqual(parseCommand(["INFO", "a", "b"]), arity("info"));
  assert.deepEqual(parseCommand(["COMMAND"]), { type: "command" });
  assert.deepEqual(parseCommand(["command", "DOCS"]), { type: "command" });
  assert.deepEqual(parseCommand(["COMMAND", "COUNT"]), { type: "command" });
});

Deno.test("parseCommand: REQ wraps an op command with an exactly-once tag", () => {
  assert.deepEqual(parseCommand(["REQ", "c1", "7", "SET", "k", "v"]), {
    type: "op",
    cmd: { op: { kind: "put", key: "k", value: "v" }, tag: { client: "c1", seq: 7 } },
  });
  assert.deepEqual(parseCommand(["req", "c\xff", "9007199254740991", "get", "k"]), {
    type: "op",
    cmd: { op: { kind: "get", key: "k" }, tag: { client: "c\xff", seq: 9007199254740991 } },
  });
  for (const name of ["DEL", "DELETE", "EXISTS", "HAS", "PUT"]) {
    const args = name === "PUT" ? ["k", "v"] : ["k"];
    const parsed = parseCommand(["REQ", "c", "1", name, ...args]);
    assert.equal(parsed.type, "op", name);
    assert.ok(parsed.type === "op" && parsed.cmd.tag?.seq === 1 && parsed.cmd.tag.client === "c");
  }
  const maxClient = "c".repeat(MAX_CLIENT_ID_BYTES);
  assert.equal(parseCommand(["REQ", maxClient, "1", "GET", "k"]).type, "op");
});

Deno.test("parseCommand: REQ errors", () => {
  assert.deepEqual(parseCommand(["REQ"]), arity("req"));
  assert.deepEqual(parseCommand(["REQ", "c", "1"]), arity("req"));
  const clientErr = err("ERR REQ client id must be 1 to 128 bytes");
  assert.deepEqual(parseCommand(["REQ", "", "1", "GET", "k"]), clientErr);
  assert.deepEqual(parseCommand(["REQ", "c".repeat(129), "1", "GET", "k"]), clientErr);
  const seqErr = err("ERR REQ sequence number must be a positive integer");
  for (const seq of ["0", "-1", "01", "1.5", "abc", "", " 1", "+1", "9007199254740992", "1e3"]) {
    assert.deepEqual(parseCommand(["REQ", "c", seq, "GET", "k"]), seqErr, `seq ${seq}`);
  }
  const wrapErr = (name: string) =>
    err(`ERR REQ can only wrap GET, SET, PUT, DEL, DELETE, EXISTS or HAS, not '${name}'`);
  assert.deepEqual(parseCommand(["REQ", "c", "1", "PING"]), wrapErr("PING"));
  assert.deepEqual(parseCommand(["REQ", "c", "1", "req", "c", "2", "GET", "k"]), wrapErr("req"));
  assert.deepEqual(parseCommand(["REQ", "c", "1", "FLUSHALL"]), wrapErr("FLUSHALL"));
  // Errors of the wrapped command come through unchanged.
  assert.deepEqual(parseCommand(["REQ", "c", "1", "GET"]), arity("get"));
  assert.deepEqual(
    parseCommand(["REQ", "c", "1", "DEL", "a", "b"]),
    err("ERR DEL with several keys is not supported: lamportkv deletes one key per command"),
  );
  assert.deepEqual(
    parseCommand(["REQ", "c", "1", "SET", "k", "v".repeat(MAX_VALUE_BYTES + 1)]),
    err("ERR value too large (max 8388608 bytes)"),
  );
});

Deno.test("parseCommand: unknown commands, in Redis 7's wording", () => {
  assert.deepEqual(
    parseCommand(["FOO"]),
    err("ERR unknown command 'FOO', with args beginning with: "),
  );
  assert.deepEqual(
    parseCommand(["flushall", "async", "x"]),
    err("ERR unknown command 'flushall', with args beginning with: 'async' 'x' "),
  );
  // UTF-8 bytes are shown as text.
  assert.deepEqual(
    parseCommand(["caf\xc3\xa9"]),
    err("ERR unknown command 'caf\u00e9', with args beginning with: "),
  );
  // Long names and arguments are cut at 128 bytes, like Redis.
  const long = parseCommand(["X".repeat(300), "a".repeat(100), "b".repeat(100), "c"]);
  assert.deepEqual(
    long,
    err(
      `ERR unknown command '${"X".repeat(128)}', with args beginning with: ` +
        `'${"a".repeat(100)}' '${"b".repeat(25)}' `,
    ),
  );
  assert.deepEqual(parseCommand([]), err("ERR empty command"));
});

function decode(bytes: Uint8Array): RespValue | undefined {
  const p = new RespReplyParser();
  p.push(bytes);
  return p.next();
}

Deno.test("encodeOutcome", () => {
  const cases: [Outcome, string][] = [
    [{ ok: true, result: { kind: "ok" } }, "+OK\r\n"],
    [{ ok: true, result: { kind: "value", value: "v\r\n\xff" } }, "$4\r\nv\r\n\xff\r\n"],
    [{ ok: true, result: { kind: "value", value: "" } }, "$0\r\n\r\n"],
    [{ ok: true, result: { kind: "value", value: null } }, "$-1\r\n"],
    [{ ok: true, result: { kind: "int", value: 1 } }, ":1\r\n"],
    [{ ok: true, result: { kind: "int", value: 0 } }, ":0\r\n"],
    [{ ok: false, code: "NOQUORUM", message: "no majority" }, "-NOQUORUM no majority\r\n"],
    [{ ok: false, code: "UNKNOWN", message: "timed out" }, "-UNKNOWN timed out\r\n"],
    [{ ok: false, code: "REFUSED", message: "a\r\nb" }, "-REFUSED a  b\r\n"],
    [{ ok: false, code: "REFUSED", message: "" }, "-REFUSED\r\n"],
  ];
  for (const [outcome, wire] of cases) {
    assert.equal(str(encodeOutcome(outcome)), wire, JSON.stringify(outcome));
  }
  assert.deepEqual(
    decode(encodeOutcome({ ok: false, code: "NOQUORUM", message: "x" })),
    new RespError("NOQUORUM x"),
  );
});

const STATUS: ReplicaStatus = {
  id: 1,
  view: 0,
  state: "normal",
  members: [1, 2, 3],
  clock: 17,
  delivered: 5,
  holdback: 2,
  pending: 1,
  keys: 4,
  digest: "9f86d081",
};

Deno.test("formatInfo: Redis INFO layout in ReplicaStatus order", () => {
  const body = formatInfo(STATUS);
  assert.equal(
    body,
    "# lamportkv\r\nid:1\r\nview:0\r\nstate:normal\r\nmembers:1,2,3\r\nclock:17\r\n" +
      "delivered:5\r\n" +
      "holdback:2\r\npending:1\r\nkeys:4\r\ndigest:9f86d081\r\n",
  );
  // Field order does not depend on the object's key order.
  const shuffled = { digest: "d", keys: 0, members: [], id: 2 } as unknown as ReplicaStatus;
  const lines = formatInfo({ ...STATUS, ...shuffled }).split("\r\n");
  assert.deepEqual(lines.slice(0, 5), [
    "# lamportkv",
    "id:2",
    "view:0",
    "state:normal",
    "members:",
  ]);
  // Extra fields of a newer status follow, sanitised.
  const extra = { ...STATUS, uptime: 3, note: "a\r\nb" } as unknown as ReplicaStatus;
  assert.ok(formatInfo(extra).endsWith("digest:9f86d081\r\nuptime:3\r\nnote:a  b\r\n"));
});

Deno.test("formatInfo: sections", () => {
  const full = formatInfo(STATUS);
  for (const section of ["lamportkv", "ALL", "default", "Everything"]) {
    assert.equal(formatInfo(STATUS, section), full, section);
  }
  assert.equal(formatInfo(STATUS, "server"), "");
});

Deno.test("parseInfo reads formatInfo back", () => {
  assert.deepEqual(parseInfo(formatInfo(STATUS)), {
    id: "1",
    view: "0",
    state: "normal",
    members: "1,2,3",
    clock: "17",
    delivered: "5",
    holdback: "2",
    pending: "1",
    keys: "4",
    digest: "9f86d081",
  });
  assert.deepEqual(parseInfo("# a\nx:1\n\nnocolon\n:empty\ny:a:b\r\n__proto__:z\r\n"), {
    x: "1",
    y: "a:b",
    ["__proto__"]: "z",
  });
  assert.equal(Object.getPrototypeOf(parseInfo("__proto__:z")), Object.prototype);
  assert.deepEqual(parseInfo(""), {});
});
