import assert from "node:assert/strict";
import { Prng } from "../support/prng.ts";
import { PassThrough } from "node:stream";
import type { ByteString } from "../../src/core/types.ts";
import { LamportClient, type ReplicaReport } from "../../src/client/client.ts";
import {
  describeSwitch,
  digestMismatches,
  formatStatusTable,
  formatValue,
  majorityView,
  parseClientCommand,
  quoteByteString,
  runRepl,
  splitLine,
  UsageError,
} from "../../src/client/repl.ts";
import { parseInvocation } from "../../src/cli/client.ts";
import {
  configOf,
  deadPort,
  type FakeHandler,
  FakeRespServer,
  kvHandler,
  reply,
} from "../support/fake_resp_server.ts";

Deno.test("splitLine: words, quotes, escapes and UTF-8", () => {
  assert.deepEqual(splitLine("  put  key   value "), ["put", "key", "value"]);
  assert.deepEqual(splitLine(`put "a key" 'it''s'`.replace("''", "\\'")), [
    "put",
    "a key",
    "it's",
  ]);
  assert.deepEqual(splitLine(`set k "line\\nnext\\t\\x00\\xff\\"q\\\\"`), [
    "set",
    "k",
    'line\nnext\t\x00\xff"q\\',
  ]);
  assert.deepEqual(splitLine(`get 'no\\nescape'`), ["get", "no\\nescape"]);
  // Text is UTF-8 encoded: "é" is two bytes.
  assert.deepEqual(splitLine("put é ü"), ["put", "\xc3\xa9", "\xc3\xbc"]);
  assert.deepEqual(splitLine(""), []);
  assert.deepEqual(splitLine("   "), []);
});

Deno.test("splitLine: unbalanced quotes are a usage error", () => {
  assert.throws(() => splitLine(`put "open`), UsageError);
  assert.throws(() => splitLine(`put 'open`), UsageError);
  assert.throws(() => splitLine(`put "a"b`), /unbalanced quotes/);
});

Deno.test("quoteByteString: redis-cli style, UTF-8 shown as text", () => {
  assert.equal(quoteByteString("plain"), '"plain"');
  assert.equal(quoteByteString("\x00"), '"\\x00"');
  assert.equal(quoteByteString('a"b\\c'), '"a\\"b\\\\c"');
  assert.equal(quoteByteString("l1\nl2\r\t\x07\x08\x7f"), '"l1\\nl2\\r\\t\\a\\b\\x7f"');
  assert.equal(quoteByteString("\xc3\xa9t\xc3\xa9"), '"été"'); // UTF-8 for "été"
  assert.equal(quoteByteString("\xf0\x9f\x98\x80"), '"😀"');
  assert.equal(quoteByteString("\xff\xc3"), '"\\xff\\xc3"'); // invalid / truncated UTF-8
  assert.equal(quoteByteString("\xc0\x80"), '"\\xc0\\x80"'); // overlong encoding
  assert.equal(quoteByteString("\xed\xa0\x80"), '"\\xed\\xa0\\x80"'); // surrogate
  assert.equal(quoteByteString("\xc2\x85"), '"\\xc2\\x85"'); // C1 control (NEL)
  assert.equal(formatValue(null), "(nil)");
  assert.equal(formatValue(""), '""');
});

Deno.test("quoteByteString: typing the quoted form back gives the same bytes", () => {
  const prng = new Prng(12345);
  const random = () => prng.next();
  const pieces = ["a", " ", '"', "'", "\\", "\xc3\xa9", "\xf0\x9f\x98\x80", "\xff", "\x00", "\n"];
  for (let round = 0; round < 500; round++) {
    let s = "";
    const length = Math.floor(random() * 12);
    for (let i = 0; i < length; i++) {
      s += random() < 0.5
        ? pieces[Math.floor(random() * pieces.length)]
        : String.fromCharCode(Math.floor(random() * 256));
    }
    assert.deepEqual(splitLine(`get ${quoteByteString(s)}`), ["get", s], JSON.stringify(s));
  }
});

Deno.test("parseClientCommand: names are case-insensitive, aliases work, arity is checked", () => {
  assert.deepEqual(parseClientCommand(["PUT", "k", "v"]), { kind: "put", key: "k", value: "v" });
  assert.deepEqual(parseClientCommand(["Set", "k", "v"]), { kind: "put", key: "k", value: "v" });
  assert.deepEqual(parseClientCommand(["get", "k"]), { kind: "get", key: "k" });
  assert.deepEqual(parseClientCommand(["DEL", "k"]), { kind: "delete", key: "k" });
  assert.deepEqual(parseClientCommand(["delete", "k"]), { kind: "delete", key: "k" });
  assert.deepEqual(parseClientCommand(["exists", "k"]), { kind: "has", key: "k" });
  assert.deepEqual(parseClientCommand(["HAS", "k"]), { kind: "has", key: "k" });
  assert.deepEqual(parseClientCommand(["STATUS"]), { kind: "status" });
  assert.deepEqual(parseClientCommand(["exit"]), { kind: "quit" });
  assert.deepEqual(parseClientCommand(["Quit"]), { kind: "quit" });
  assert.deepEqual(parseClientCommand(["help"]), { kind: "help" });
  assert.throws(() => parseClientCommand(["put", "k"]), /usage: put <key> <value>/);
  assert.throws(() => parseClientCommand(["get"]), /wrong number of arguments for 'get'/);
  assert.throws(() => parseClientCommand(["frob"]), /unknown command 'frob'/);
  assert.throws(() => parseClientCommand(["toString"]), /unknown command/);
  assert.throws(() => parseClientCommand([]), UsageError);
});

Deno.test("describeSwitch: the message the REPL prints", () => {
  const one = { id: 1, host: "127.0.0.1", clientPort: 7001, peerPort: 7101 };
  const two = { id: 2, host: "127.0.0.1", clientPort: 7002, peerPort: 7102 };
  assert.equal(
    describeSwitch({ from: one, to: two, reason: "unreachable", detail: "" }),
    "replica 1 (127.0.0.1:7001) is unreachable; switched to replica 2 (127.0.0.1:7002)",
  );
  assert.equal(
    describeSwitch({ from: one, to: two, reason: "noquorum", detail: "" }),
    "replica 1 (127.0.0.1:7001) cannot reach a quorum; switched to replica 2 (127.0.0.1:7002)",
  );
});

function report(id: number, info: Record<string, string> | null): ReplicaReport {
  return {
    replica: { id, host: "127.0.0.1", clientPort: 7000 + id, peerPort: 7100 + id },
    reachable: info !== null,
    info,
    error: info === null ? "cannot connect to 127.0.0.1:700" + id + ": connection refused" : null,
  };
}

function fields(delivered: number, digest: string): Record<string, string> {
  return {
    id: "0",
    view: "2",
    members: "1,2,3,4",
    clock: "99",
    delivered: String(delivered),
    holdback: "0",
    pending: "0",
    keys: "5",
    digest,
  };
}

Deno.test("formatStatusTable: one row per replica, digest outliers marked", () => {
  const reports = [
    report(1, fields(10, "aaaa")),
    report(2, fields(10, "bbbb")),
    report(3, fields(10, "aaaa")),
    report(4, fields(9, "cccc")),
    report(5, null),
  ];
  assert.deepEqual([...digestMismatches(reports)], [1]);
  const lines = formatStatusTable(reports).split("\n");
  assert.match(
    lines[0],
    /^id\s+address\s+reachable\s+view\s+state\s+members\s+clock\s+delivered\s+holdback\s+keys\s+digest$/,
  );
  assert.match(
    lines[1],
    /^1\s+127\.0\.0\.1:7001\s+yes\s+2\s+-\s+1,2,3,4\s+99\s+10\s+0\s+5\s+aaaa$/,
  );
  assert.match(lines[2], /bbbb \*$/);
  assert.match(lines[3], /aaaa$/);
  assert.match(lines[4], /^4 .* 9 .*cccc$/);
  assert.match(lines[5], /^5\s+127\.0\.0\.1:7005\s+no\s+-\s+-\s+-\s+-\s+-\s+-\s+-\s+-$/);
  assert.match(lines[6], /^\* digest differs from the majority/);
  assert.match(lines[7], /^replica 5: cannot connect/);
});

Deno.test("formatStatusTable: replicas outside the majority's view are marked", () => {
  const at = (view: string, state: string) => ({ ...fields(7, "aaaa"), view, state });
  const reports = [
    report(1, at("4", "normal")),
    report(2, at("4", "normal")),
    report(3, at("1", "joining")),
  ];
  assert.equal(majorityView(reports), "4");
  const lines = formatStatusTable(reports).split("\n");
  assert.match(lines[1], /yes\s+4\s+normal/);
  assert.match(lines[3], /yes\s+1 !\s+joining/);
  assert.match(lines.at(-1)!, /^! not serving in the majority's view 4/);
  const split = [report(1, at("4", "normal")), report(2, at("5", "normal")), report(3, null)];
  assert.equal(majorityView(split), null);
  assert.match(formatStatusTable(split), /no view has a majority of the 3 replicas/);
});

Deno.test("formatStatusTable: without a majority every differing digest is marked", () => {
  const reports = [report(1, fields(4, "aaaa")), report(2, fields(4, "bbbb"))];
  assert.deepEqual([...digestMismatches(reports)], [0, 1]);
  const agreeing = [report(1, fields(4, "aaaa")), report(2, fields(4, "aaaa"))];
  assert.equal(digestMismatches(agreeing).size, 0);
  assert.doesNotMatch(formatStatusTable(agreeing), /\*/);
});

Deno.test("parseInvocation: options before the command, command words taken literally", () => {
  assert.deepEqual(parseInvocation(["c.conf"]), {
    help: false,
    configPath: "c.conf",
    replica: undefined,
    timeoutMs: 10_000,
    command: [],
  });
  const inv = parseInvocation(["--replica", "2", "c.conf", "-t", "500", "put", "k", "-1"]);
  assert.equal(inv.replica, 2);
  assert.equal(inv.timeoutMs, 500);
  assert.equal(inv.configPath, "c.conf");
  assert.deepEqual(inv.command, ["put", "k", "-1"]);
  assert.deepEqual(parseInvocation(["c.conf", "get", "--help"]).command, ["get", "--help"]);
  assert.equal(parseInvocation(["--help"]).help, true);
  assert.equal(parseInvocation(["-r3", "c.conf"]).replica, 3);
  assert.deepEqual(parseInvocation(["c.conf", "--", "get", "-k"]).command, ["get", "-k"]);
  assert.throws(() => parseInvocation(["c.conf", "--bogus"]), UsageError);
  assert.throws(() => parseInvocation(["--timeout", "soon", "c.conf"]), /--timeout must be/);
  assert.throws(() => parseInvocation(["--replica", "0", "c.conf"]), /--replica must be/);
  assert.throws(() => parseInvocation(["c.conf", "--replica"]), UsageError);
});

/** A fake replica holding `map`. */
function kv(map: Map<ByteString, ByteString>): FakeHandler {
  return kvHandler(map, "# lamportkv\r\ndelivered:1\r\ndigest:d\r\n");
}

async function repl(client: LamportClient, input: string): Promise<string> {
  const stdin = new PassThrough();
  const stdout = new PassThrough();
  let output = "";
  stdout.on("data", (chunk: Uint8Array | string) => {
    output += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
  });
  stdin.end(input);
  await runRepl({ client, input: stdin, output: stdout });
  stdout.end();
  return output;
}

Deno.test("runRepl: runs commands, prints redis-cli style answers, stops at quit", async () => {
  const map = new Map<ByteString, ByteString>();
  const server = FakeRespServer.start(kv(map));
  const client = new LamportClient(configOf([server.port]));
  try {
    const output = await repl(
      client,
      [
        `put greeting "hello world\\x00"`,
        "GET greeting",
        "get nothing",
        "Exists greeting",
        "del greeting",
        "del greeting",
        "frob",
        `put "unbalanced`,
        "",
        "put k",
        "quit",
        "put after-quit x",
      ].join("\n") + "\n",
    );
    assert.deepEqual(output.split("\n"), [
      "OK",
      '"hello world\\x00"',
      "(nil)",
      "(integer) 1",
      "(integer) 1",
      "(integer) 0",
      `(error) unknown command 'frob' (try "help")`,
      "(error) unbalanced quotes (or a closing quote not followed by a space)",
      "(error) wrong number of arguments for 'put' (usage: put <key> <value>)",
      "",
    ]);
    assert.equal(map.has("after-quit"), false);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("runRepl: announces a failover and reports errors", async () => {
  const map = new Map<ByteString, ByteString>();
  const server = FakeRespServer.start(kv(map));
  const noQuorum = FakeRespServer.start(() => reply.error("NOQUORUM cannot reach a majority"));
  const client = new LamportClient(configOf([noQuorum.port, server.port]));
  const lonely = new LamportClient(configOf([deadPort()]), { deadlineMs: 100 });
  try {
    const output = await repl(client, "put a 1\nstatus\n");
    const lines = output.split("\n");
    assert.equal(
      lines[0],
      `replica 1 (127.0.0.1:${noQuorum.port}) cannot reach a quorum; ` +
        `switched to replica 2 (127.0.0.1:${server.port})`,
    );
    assert.equal(lines[1], "OK");
    assert.match(lines[2], /^id\s+address/);
    // The NOQUORUM replica answers INFO with an error: reachable, no fields, error shown.
    assert.match(lines[3], /^1\s+127\.0\.0\.1:\d+\s+yes\s+-\s+-/);
    assert.match(lines[4], /^2\s+127\.0\.0\.1:\d+\s+yes\s+-\s+-\s+-\s+-\s+1\s+-\s+-\s+d$/);
    assert.equal(lines[5], "replica 1: NOQUORUM cannot reach a majority");
    assert.match(lines[6], /^no view has a majority of the 2 replicas/);
    assert.deepEqual(lines.slice(7), [""]);
    const failed = await repl(lonely, "get a\n");
    assert.match(
      failed,
      /^\(error\) UNAVAILABLE: GET failed within 100 ms: replica 1: cannot connect/,
    );
  } finally {
    await client.close();
    await lonely.close();
    await server.close();
    await noQuorum.close();
  }
});
