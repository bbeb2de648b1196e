import assert from "node:assert/strict";
import { Prng } from "../support/prng.ts";
import { PassThrough } from "node:stream";
import type { ByteString } from "../../src/core/types.ts";
import { LamportClient, type ReplicaReport } from "../../src/client/client.ts";
import {
  describeSwitch,
  digestMismatches,
  formatError,
  formatStatusTable,
  isQuit,
  majorityView,
  promptFor,
  ReplSession,
  runRepl,
  splitLine,
  UsageError,
} from "../../src/client/repl.ts";
import { formatReply, formatReplyRaw, quoteByteString } from "../../src/client/display.ts";
import {
  arityError,
  clientArityError,
  clientHelp,
  commandNames,
  completeLine,
  ONE_SHOT_COMMANDS,
  REPL_COMMANDS,
  REPL_HELP_NOTES,
  topicHelp,
} from "../../src/client/commands.ts";
import { COMMANDS } from "../../src/kv/commands/index.ts";
import { RespError, RespStatus, type TaggedRespValue } from "../../src/net/resp.ts";
import { ClientError } from "../../src/client/client.ts";
import { parseInvocation } from "../../src/cli/client.ts";
import {
  configOf,
  deadPort,
  FakeRespServer,
  lamportLikeHandler,
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
  assert.equal(quoteByteString(""), '""');
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

const ok = new RespStatus("OK");

Deno.test("formatReply: every reply shape as redis-cli shows it in a terminal", () => {
  assert.equal(formatReply(ok), "OK");
  assert.equal(formatReply(new RespStatus("QUEUED")), "QUEUED");
  assert.equal(formatReply("OK"), '"OK"'); // a bulk string, quoted
  assert.equal(formatReply("caf\xc3\xa9\n\x00"), '"café\\n\\x00"');
  assert.equal(formatReply(""), '""');
  assert.equal(formatReply(null), "(nil)");
  assert.equal(formatReply(5), "(integer) 5");
  assert.equal(formatReply(-1), "(integer) -1");
  assert.equal(
    formatReply(new RespError("WRONGTYPE Operation against a key holding the wrong kind of value")),
    "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
  );
  assert.equal(formatReply([]), "(empty array)");
  // LRANGE
  assert.equal(formatReply(["a", "b", "c d", ""]), '1) "a"\n2) "b"\n3) "c d"\n4) ""');
  // SCAN 0: the nested array starts on its number's line and is indented under it.
  assert.equal(
    formatReply(["0", ["s", "l", "h"]]),
    '1) "0"\n2) 1) "s"\n   2) "l"\n   3) "h"',
  );
  // HGETALL
  assert.equal(formatReply(["f1", "v1", "f2", "v2"]), '1) "f1"\n2) "v1"\n3) "f2"\n4) "v2"');
  // EXEC of a transaction: statuses, integers, arrays and errors side by side.
  assert.equal(
    formatReply([
      ok,
      2,
      ["a", "b"],
      new RespError("WRONGTYPE Operation against a key holding the wrong kind of value"),
      null,
      [],
    ]),
    [
      "1) OK",
      "2) (integer) 2",
      '3) 1) "a"',
      '   2) "b"',
      "4) (error) WRONGTYPE Operation against a key holding the wrong kind of value",
      "5) (nil)",
      "6) (empty array)",
    ].join("\n"),
  );
});

Deno.test("formatReply: COMMAND INFO get, exactly as redis-cli 7 prints it", () => {
  const s = (text: string) => new RespStatus(text);
  const info: TaggedRespValue = [[
    "get",
    2,
    [s("readonly"), s("fast")],
    1,
    1,
    1,
    [s("@read"), s("@string"), s("@fast")],
    [],
    [["flags", [s("RO"), s("access")], "begin_search", ["type", "index", "spec", ["index", 1]]]],
    [],
  ]];
  // Captured from redis-cli 7.0.15 against redis-server 7.0 (the key specs cut short).
  const expected = [
    '1)  1) "get"',
    "    2) (integer) 2",
    "    3) 1) readonly",
    "       2) fast",
    "    4) (integer) 1",
    "    5) (integer) 1",
    "    6) (integer) 1",
    "    7) 1) @read",
    "       2) @string",
    "       3) @fast",
    "    8) (empty array)",
    '    9) 1) 1) "flags"',
    "          2) 1) RO",
    "             2) access",
    '          3) "begin_search"',
    '          4) 1) "type"',
    '             2) "index"',
    '             3) "spec"',
    '             4) 1) "index"',
    "                2) (integer) 1",
    "   10) (empty array)",
  ];
  assert.equal(formatReply(info), expected.join("\n"));
});

Deno.test("formatReplyRaw: redis-cli's output when it is not a terminal", () => {
  assert.equal(formatReplyRaw(ok), "OK");
  assert.equal(formatReplyRaw("a\x00b\xff"), "a\x00b\xff"); // raw bytes
  assert.equal(formatReplyRaw(new RespStatus("é")), "\xc3\xa9"); // status text as UTF-8
  assert.equal(formatReplyRaw(null), "");
  assert.equal(formatReplyRaw(42), "42");
  assert.equal(formatReplyRaw([]), "");
  assert.equal(formatReplyRaw(["1", null, "1"]), "1\n\n1"); // MGET with a missing key
  assert.equal(formatReplyRaw(["0", ["s", "l"]]), "0\ns\nl"); // nested arrays flattened
  // EXEC: an error element is followed by an empty line, as redis-cli prints it.
  assert.equal(
    formatReplyRaw([ok, new RespError("WRONGTYPE x"), ["1", null], []]),
    "OK\nWRONGTYPE x\n\n1\n\n",
  );
});

Deno.test("arityError: the registry's arity, worded as the server words it", () => {
  assert.equal(arityError(["get"])?.message, "ERR wrong number of arguments for 'get' command");
  assert.equal(
    arityError(["PUT", "k"])?.message,
    "ERR wrong number of arguments for 'put' command",
  );
  assert.equal(arityError(["MSET", "a", "1", "b"]), null); // -3: at least 3 words
  assert.equal(arityError(["get", "k"]), null);
  assert.equal(arityError(["frob"]), null); // unknown: the server answers
  assert.equal(arityError(["__expire"]), null); // internal: unknown to clients
  assert.equal(arityError([]), null);
  const status = REPL_COMMANDS.find((c) => c.name === "status")!;
  const help = REPL_COMMANDS.find((c) => c.name === "help")!;
  assert.equal(clientArityError(status, 1), null);
  assert.match(clientArityError(status, 2)!.message, /for 'status' command$/);
  assert.equal(clientArityError(help, 2), null);
  assert.match(clientArityError(help, 3)!.message, /for 'help' command$/);
  assert.deepEqual([isQuit(["QUIT"]), isQuit(["exit"]), isQuit(["quit", "x"]), isQuit([])], [
    true,
    true,
    false,
    false,
  ]);
});

Deno.test("help: every public command by group with its syntax; help <command>, help @group", () => {
  const text = clientHelp(REPL_COMMANDS, REPL_HELP_NOTES);
  const lines = text.split("\n");
  for (const own of ["STATUS", "HELP [command | @group]", "QUIT", "EXIT"]) {
    assert.ok(lines.some((l) => l.startsWith(`  ${own} `)), own);
  }
  for (const spec of COMMANDS.public()) {
    const usage = `  ${spec.name.toUpperCase()}${spec.syntax ? " " + spec.syntax : ""}`;
    assert.ok(lines.includes(usage), `help lacks ${usage}`);
    // Listed under its group.
    const at = lines.indexOf(usage);
    const heading = lines.slice(0, at).reverse().find((l) => l.startsWith("@"));
    assert.equal(heading, `@${spec.group}:`, spec.name);
  }
  assert.ok(!text.includes("__EXPIRE") && !text.includes("__EXEC"), "internal commands listed");
  assert.ok(text.endsWith(REPL_HELP_NOTES.at(-1)!));
  assert.ok(!clientHelp(ONE_SHOT_COMMANDS).split("\n").some((l) => l.startsWith("  EXIT ")));

  assert.equal(
    topicHelp(REPL_COMMANDS, "Get"),
    "\n  GET key\n  summary: Returns the string value of a key.\n  since: 1.0.0\n  group: string\n",
  );
  const set = COMMANDS.get("set")!;
  assert.ok(topicHelp(REPL_COMMANDS, "set")!.includes(`  SET ${set.syntax}\n`));
  const tx = topicHelp(REPL_COMMANDS, "@transactions")!;
  for (const name of ["MULTI", "EXEC", "DISCARD", "WATCH key [key ...]", "UNWATCH"]) {
    assert.ok(tx.includes(`  ${name}\n`), name);
  }
  assert.match(topicHelp(REPL_COMMANDS, "status")!, /STATUS\n {2}summary: INFO of every replica/);
  assert.equal(topicHelp(REPL_COMMANDS, "frob"), null);
  assert.equal(topicHelp(REPL_COMMANDS, "@nosuch"), null);
  assert.equal(topicHelp(REPL_COMMANDS, "__expire"), null);
});

Deno.test("completeLine: command names and help topics, case-insensitive", () => {
  const names = commandNames(REPL_COMMANDS);
  assert.ok(names.includes("status") && names.includes("quit") && names.includes("incrbyfloat"));
  assert.ok(!names.some((n) => n.startsWith("__")));
  assert.deepEqual(completeLine(REPL_COMMANDS, "inc"), [["incr", "incrby", "incrbyfloat"], "inc"]);
  assert.deepEqual(completeLine(REPL_COMMANDS, "INCRBYF"), [["INCRBYFLOAT"], "INCRBYF"]);
  assert.deepEqual(completeLine(REPL_COMMANDS, "  Mul"), [["multi"], "Mul"]);
  assert.deepEqual(completeLine(REPL_COMMANDS, "sta"), [["status"], "sta"]);
  assert.deepEqual(completeLine(REPL_COMMANDS, "help exp"), [
    ["expire", "expireat", "expiretime"],
    "exp",
  ]);
  assert.deepEqual(completeLine(REPL_COMMANDS, "help @tr"), [["@transactions"], "@tr"]);
  assert.deepEqual(completeLine(REPL_COMMANDS, "zz"), [[], "zz"]);
  assert.deepEqual(completeLine(REPL_COMMANDS, "get ke"), [[], "get ke"]); // arguments: nothing
  assert.equal(completeLine(REPL_COMMANDS, "")[0].length, names.length);
});

Deno.test("formatError: client errors say whether the command may have been applied", () => {
  assert.equal(
    formatError(new ClientError("NOQUORUM", "GET failed within 10 ms: replica 1: NOQUORUM x")),
    "NOQUORUM: GET failed within 10 ms: replica 1: NOQUORUM x (it was not applied)",
  );
  assert.equal(
    formatError(new ClientError("TIMEOUT", "SET failed: (it may have been applied)", true)),
    "TIMEOUT: SET failed: (it may have been applied)",
  );
  assert.equal(
    formatError(new ClientError("UNKNOWN", "INCR: replica 1: UNKNOWN y", true)),
    "UNKNOWN: INCR: replica 1: UNKNOWN y (it may have been applied)",
  );
  assert.equal(formatError(new UsageError("unbalanced quotes")), "unbalanced quotes");
});

Deno.test("ReplSession: tracks MULTI and WATCH as redis-cli tracks MULTI", () => {
  const session = new ReplSession();
  const err = new RespError("ERR x");
  session.update(["MULTI"], err);
  assert.equal(session.active, false);
  session.update(["multi"], ok);
  assert.deepEqual([session.inMulti, session.active], [true, true]);
  session.update(["exec"], new RespError("EXECABORT Transaction discarded"));
  assert.equal(session.active, false);
  session.update(["watch", "k"], ok);
  assert.deepEqual([session.inMulti, session.watching], [false, true]);
  session.update(["multi"], ok);
  session.update(["discard"], ok);
  assert.equal(session.active, false);
  session.update(["watch", "k"], ok);
  session.update(["unwatch"], ok);
  assert.equal(session.active, false);
  session.update(["multi"], ok);
  session.lost();
  assert.equal(session.active, false);
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
    /^id\s+address\s+reachable\s+view\s+state\s+role\s+members\s+clock\s+delivered\s+holdback\s+keys\s+digest$/,
  );
  assert.match(
    lines[1],
    /^1\s+127\.0\.0\.1:7001\s+yes\s+2\s+-\s+-\s+1,2,3,4\s+99\s+10\s+0\s+5\s+aaaa$/,
  );
  assert.match(lines[2], /bbbb \*$/);
  assert.match(lines[3], /aaaa$/);
  assert.match(lines[4], /^4 .* 9 .*cccc$/);
  assert.match(lines[5], /^5\s+127\.0\.0\.1:7005\s+no\s+-\s+-\s+-\s+-\s+-\s+-\s+-\s+-\s+-$/);
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
    lastFromStdin: false,
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
  const server = FakeRespServer.start(lamportLikeHandler(map));
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
        "delete greeting",
        "has greeting",
        "frob",
        `put "unbalanced`,
        "",
        "put k",
        "status now",
        "quit now",
        "Exit",
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
      "(integer) 0",
      "(error) ERR unknown command 'frob', with args beginning with: ",
      "(error) unbalanced quotes (or a closing quote not followed by a space)",
      "(error) ERR wrong number of arguments for 'put' command",
      "(error) ERR wrong number of arguments for 'status' command",
      "(error) ERR wrong number of arguments for 'quit' command",
      "",
    ]);
    assert.equal(map.has("after-quit"), false);
    // Data commands went REQ-wrapped, the unknown one as it was; "put k" was never sent.
    assert.deepEqual(server.argvs.map((a) => a[0] === "REQ" ? ["REQ", ...a.slice(3)] : a), [
      ["REQ", "put", "greeting", "hello world\x00"],
      ["REQ", "GET", "greeting"],
      ["REQ", "get", "nothing"],
      ["REQ", "Exists", "greeting"],
      ["REQ", "del", "greeting"],
      ["REQ", "delete", "greeting"],
      ["REQ", "has", "greeting"],
      ["frob"],
    ]);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("runRepl: any command passes through; replies of every shape; MULTI/EXEC", async () => {
  const map = new Map<ByteString, ByteString>();
  const server = FakeRespServer.start(lamportLikeHandler(map));
  const client = new LamportClient(configOf([server.port]));
  try {
    const output = await repl(
      client,
      [
        "PING",
        "incr n",
        "incr n",
        "lpush n x",
        "mget n nope",
        "keys *",
        "scan 0",
        "multi",
        "incr n",
        "get",
        "lpush n x",
        "scan 0",
        "exec",
        "frob a b",
        "help get",
      ].join("\n") + "\n",
    );
    assert.deepEqual(output.split("\n"), [
      "PONG",
      "(integer) 1",
      "(integer) 2",
      "(error) WRONGTYPE Operation against a key holding the wrong kind of value",
      '1) "2"',
      "2) (nil)",
      "(empty array)",
      '1) "0"',
      '2) 1) "n"',
      "OK",
      "QUEUED",
      // Inside MULTI the server must see a wrong arity (so that EXEC aborts): sent, not checked.
      "QUEUED",
      "QUEUED",
      "QUEUED",
      "1) (integer) 3",
      "2) (error) ERR wrong number of arguments for 'get' command",
      "3) (error) WRONGTYPE Operation against a key holding the wrong kind of value",
      '4) 1) "0"',
      '   2) 1) "n"',
      "(error) ERR unknown command 'frob', with args beginning with: 'a' 'b' ",
      "",
      "  GET key",
      "  summary: Returns the string value of a key.",
      "  since: 1.0.0",
      "  group: string",
      "",
      "",
    ]);
    const sent = server.argvs.map((a) => a[0]);
    // Data commands go as REQ (exactly once); server commands and unknown names as they are.
    assert.deepEqual(sent, [
      "PING",
      "REQ",
      "REQ",
      "REQ",
      ...["REQ", "REQ", "REQ"],
      "multi",
      "REQ",
      "REQ",
      "REQ",
      "REQ",
      "exec",
      "frob",
    ]);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("runRepl: a transaction never fails over; its loss is reported", async () => {
  const map = new Map<ByteString, ByteString>();
  const handler = lamportLikeHandler(map);
  let multiSeen = false;
  // Replica 1 accepts MULTI, then closes the connection at the next command.
  const first = FakeRespServer.start((argv, request) => {
    if (multiSeen) return "close";
    if (argv[0] === "multi") multiSeen = true;
    return handler(argv, request);
  });
  const second = FakeRespServer.start(lamportLikeHandler(map));
  const client = new LamportClient(configOf([first.port, second.port]));
  try {
    await client.connect();
    const session = new ReplSession();
    session.update(["multi"], ok);
    assert.match(promptFor(client, session), /^lamportkv 1@127\.0\.0\.1:\d+\(TX\)> $/);
    session.lost();
    assert.match(promptFor(client, session), /^lamportkv 1@127\.0\.0\.1:\d+> $/);

    const output = await repl(client, "multi\nset a 1\nset b 2\nget b\n");
    const lines = output.split("\n");
    assert.equal(lines[0], "OK");
    assert.match(
      lines[1],
      /^\(error\) UNAVAILABLE: set: replica 1 \(127\.0\.0\.1:\d+\): .*; the transaction and watched keys are gone with the connection \(it may have been applied\)$/,
    );
    // The next commands run outside any transaction, on the next replica.
    assert.match(lines[2], /^replica 1 .* is unreachable; switched to replica 2/);
    assert.deepEqual(lines.slice(3), ["OK", '"2"', ""]);
    assert.equal(map.get("a"), undefined);
    // "set a 1" was not resent to replica 2.
    assert.deepEqual(second.argvs.map((a) => a.slice(3)), [["set", "b", "2"], ["get", "b"]]);
  } finally {
    await client.close();
    await first.close();
    await second.close();
  }
});

Deno.test("runRepl: a NOQUORUM answer fails at once, not at the 10 s deadline", async () => {
  const noQuorum = FakeRespServer.start(() => reply.error("NOQUORUM cannot reach a majority"));
  const client = new LamportClient(configOf([noQuorum.port, deadPort()]));
  try {
    const started = performance.now();
    const output = await repl(client, "put a 1\n");
    assert.ok(performance.now() - started < 5000, "it did not wait out its deadline");
    assert.match(
      output,
      /\(error\) NOQUORUM: put: no reachable replica can reach a majority: replica 1 \(127\.0\.0\.1:\d+\): NOQUORUM cannot reach a majority; replica 2 \(127\.0\.0\.1:\d+\): cannot connect .* \(it was not applied\)\n$/,
    );
  } finally {
    await client.close();
    await noQuorum.close();
  }
});

Deno.test("runRepl: announces a failover and reports errors", async () => {
  const map = new Map<ByteString, ByteString>();
  const server = FakeRespServer.start(lamportLikeHandler(map));
  const noQuorum = FakeRespServer.start(() => reply.error("NOQUORUM cannot reach a majority"));
  const client = new LamportClient(configOf([noQuorum.port, server.port]));
  const lonely = new LamportClient(configOf([deadPort()]), { deadlineMs: 60_000 });
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
    assert.match(lines[4], /^2\s+127\.0\.0\.1:\d+\s+yes\s+-\s+-\s+-\s+-\s+-\s+1\s+-\s+-\s+d$/);
    assert.equal(lines[5], "replica 1: NOQUORUM cannot reach a majority");
    assert.match(lines[6], /^no view has a majority of the 2 replicas/);
    assert.deepEqual(lines.slice(7), [""]);
    const failed = await repl(lonely, "get a\n");
    assert.match(
      failed,
      /^\(error\) UNAVAILABLE: get: no replica can be reached: replica 1 \(127\.0\.0\.1:\d+\): cannot connect.* \(it was not applied\)\n$/,
    );
  } finally {
    await client.close();
    await lonely.close();
    await server.close();
    await noQuorum.close();
  }
});
