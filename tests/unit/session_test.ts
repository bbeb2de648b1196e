/**
 * Unit tests of a client session over a fake replica: how each command line is dispatched
 * (data commands submitted as operations, server commands answered at once), transactions and
 * WATCH, connection commands, COMMAND/CONFIG/INFO, REQ, error texts, and reply encoding.
 *
 * @module
 */
import assert from "node:assert/strict";
import { PubSubHub } from "../../src/net/pubsub.ts";
import type { Command, Outcome, ReplicaStatus, Reply } from "../../src/core/types.ts";
import { KvStore } from "../../src/kv/store.ts";
import { encodeReply } from "../../src/net/resp.ts";
import { COMMANDS } from "../../src/kv/commands/index.ts";
import {
  type AclHost,
  Session,
  type SessionHost,
  type WriteMemory,
} from "../../src/net/session.ts";
import { defaultTable, describeTable } from "../../src/kv/acl.ts";
import { formatInfo, parseInfo, type ServerStats } from "../../src/net/info.ts";

const STATUS: ReplicaStatus = {
  id: 2,
  view: 7,
  state: "normal",
  members: [1, 2, 3],
  learners: [],
  role: "voter",
  voters: [1, 2, 3],
  clock: 42,
  delivered: 10,
  holdback: 1,
  unacked: 3,
  pending: 0,
  keys: 5,
  digest: "00ff",
};

const STATS: ServerStats = {
  startedAt: Date.now(),
  tcpPort: 7001,
  connectedClients: 1,
  totalConnections: 3,
  totalCommands: 9,
  rejectedConnections: 0,
  expires: 2,
};

/** A host whose operations run on a real KvStore at once (or are held, to test ordering). */
class FakeHost implements SessionHost {
  readonly store = new KvStore();
  readonly submitted: Command[] = [];
  held: (() => void)[] = [];
  hold = false;
  readonly all: Session[] = [];
  clock = 1_000_000;
  state: ReplicaStatus["state"] = "normal";
  /** Set `over` to make the replica refuse writes for memory. */
  readonly mem = { over: false };
  readonly memory: WriteMemory = {
    maxmemory: 1000,
    limit: 1000,
    outOfMemory: () => this.mem.over,
  };

  submit(cmd: Command, respond: (outcome: Outcome) => void): void {
    this.submitted.push(cmd);
    const run = () => respond({ ok: true, result: this.store.apply(cmd) });
    if (this.hold) this.held.push(run);
    else run();
  }
  status(): ReplicaStatus {
    return { ...STATUS, state: this.state };
  }
  now(): number {
    return this.clock;
  }
  sessions(): Iterable<Session> {
    return this.all;
  }
  stats(): ServerStats {
    return STATS;
  }
  config(): Record<string, string> {
    return { databases: "1", save: "", appendonly: "no" };
  }
  readonly local = defaultTable();
  acl(): AclHost {
    return {
      table: () => this.store.acl.table ?? this.local,
      initialised: () => this.store.acl.table !== null,
      initArgv: () => ["__ACL", "INIT", ...describeTable(this.local)],
    };
  }
  noteDenied(): void {}
  readonly hub = new PubSubHub();
  constructor() {
    // What the store publishes goes to this host's subscribers, as in a replica.
    this.store.onPublish = (channel, message) => this.hub.publish(channel, message);
  }
  pubsub(): PubSubHub {
    return this.hub;
  }
  release(): void {
    const h = this.held;
    this.held = [];
    for (const run of h) run();
  }
}

function session(host = new FakeHost(), id = 1): { host: FakeHost; s: Session } {
  const s = new Session(host, id, `127.0.0.1:${5000 + id}`, "127.0.0.1:7001");
  host.all.push(s);
  return { host, s };
}

/** Runs a command and returns its reply (which must come synchronously). */
function run(s: Session, ...argv: string[]): Reply {
  let got: Reply | undefined;
  let calls = 0;
  s.run(argv, (r) => {
    got = r;
    calls++;
  });
  assert.equal(calls, 1, `${argv.join(" ")} answered once`);
  return got!;
}

const OK = { ok: "OK" };
const arity = (name: string) => ({ err: `ERR wrong number of arguments for '${name}' command` });

Deno.test("session: data commands become operations stamped with the host's time", () => {
  const { host, s } = session();
  assert.deepEqual(run(s, "SET", "k", "v"), OK);
  assert.equal(run(s, "get", "k"), "v");
  assert.deepEqual(host.submitted.map((c) => c.op), [
    { argv: ["SET", "k", "v"], time: 1_000_000 },
    { argv: ["get", "k"], time: 1_000_000 },
  ]);
  assert.deepEqual(run(s, "GET"), arity("get"));
  assert.deepEqual(run(s, "SET", "k"), arity("set"));
  assert.equal(host.submitted.length, 2, "arity errors never reach the order");
});

Deno.test("session: unknown and internal commands, in Redis 7's wording", () => {
  const { host, s } = session();
  assert.deepEqual(run(s, "FOO"), { err: "ERR unknown command 'FOO', with args beginning with: " });
  assert.deepEqual(run(s, "flushall2", "async", "x"), {
    err: "ERR unknown command 'flushall2', with args beginning with: 'async' 'x' ",
  });
  assert.deepEqual(run(s, "caf\xc3\xa9"), {
    err: "ERR unknown command 'caf\u00e9', with args beginning with: ",
  });
  const long = run(s, "X".repeat(300), "a".repeat(100), "b".repeat(100), "c");
  assert.deepEqual(long, {
    err: `ERR unknown command '${"X".repeat(128)}', with args beginning with: ` +
      `'${"a".repeat(100)}' '${"b".repeat(25)}' `,
  });
  assert.deepEqual(run(s, "__EXEC", "0"), {
    err: "ERR unknown command '__EXEC', with args beginning with: '0' ",
  });
  assert.deepEqual(run(s, "__EXPIRE", "10"), {
    err: "ERR unknown command '__EXPIRE', with args beginning with: '10' ",
  });
  let empty: Reply | undefined;
  s.run([], (r) => (empty = r));
  assert.deepEqual(empty, { err: "ERR empty command" });
  assert.equal(host.submitted.length, 0);
});

Deno.test("session: MULTI/EXEC queues, then runs everything as one operation", () => {
  const { host, s } = session();
  assert.deepEqual(run(s, "MULTI"), OK);
  assert.deepEqual(run(s, "MULTI"), { err: "ERR MULTI calls can not be nested" });
  assert.deepEqual(run(s, "SET", "a", "1"), { ok: "QUEUED" });
  assert.deepEqual(run(s, "INCR", "a"), { ok: "QUEUED" });
  assert.deepEqual(run(s, "GET", "a"), { ok: "QUEUED" });
  assert.equal(host.submitted.length, 0, "nothing is ordered before EXEC");
  assert.deepEqual(run(s, "EXEC"), [OK, 2, "2"]);
  assert.equal(host.submitted.length, 1);
  assert.equal(host.submitted[0].op.argv[0], "__EXEC");
  assert.deepEqual(run(s, "EXEC"), { err: "ERR EXEC without MULTI" });
  assert.deepEqual(run(s, "DISCARD"), { err: "ERR DISCARD without MULTI" });
  run(s, "MULTI");
  run(s, "SET", "a", "9");
  assert.deepEqual(run(s, "DISCARD"), OK);
  assert.equal(run(s, "GET", "a"), "2");
});

Deno.test("session: a queue-time error aborts EXEC with EXECABORT", () => {
  const { host, s } = session();
  run(s, "MULTI");
  run(s, "SET", "a", "1");
  assert.deepEqual(run(s, "GET"), arity("get"));
  assert.deepEqual(run(s, "NOSUCH"), {
    err: "ERR unknown command 'NOSUCH', with args beginning with: ",
  });
  assert.deepEqual(run(s, "EXEC"), {
    err: "EXECABORT Transaction discarded because of previous errors.",
  });
  assert.equal(host.submitted.length, 0);
  assert.deepEqual(run(s, "WATCH", "x"), OK);
  run(s, "MULTI");
  assert.deepEqual(run(s, "WATCH", "x"), { err: "ERR WATCH inside MULTI is not allowed" });
  assert.deepEqual(run(s, "EXEC"), [], "WATCH inside MULTI does not abort");
});

Deno.test("session: WATCH makes EXEC fail when another client changed the key", () => {
  const host = new FakeHost();
  const { s: a } = session(host, 1);
  const { s: b } = session(host, 2);
  run(a, "SET", "balance", "10");
  assert.deepEqual(run(a, "WATCH", "balance"), OK);
  run(b, "SET", "balance", "20");
  run(a, "MULTI");
  run(a, "INCRBY", "balance", "5");
  assert.deepEqual(run(a, "EXEC"), { nil: "array" });
  assert.equal(run(a, "GET", "balance"), "20");
  // The watch is gone after EXEC: the next transaction runs.
  run(a, "MULTI");
  run(a, "INCRBY", "balance", "5");
  assert.deepEqual(run(a, "EXEC"), [25]);
  // UNWATCH forgets the keys.
  run(a, "WATCH", "balance");
  run(b, "SET", "balance", "0");
  run(a, "UNWATCH");
  run(a, "MULTI");
  run(a, "INCR", "balance");
  assert.deepEqual(run(a, "EXEC"), [1]);
});

Deno.test("session: a pipelined EXEC waits for the WATCH read before it is ordered", () => {
  const { host, s } = session();
  host.hold = true;
  const replies: Reply[] = [];
  for (const argv of [["WATCH", "k"], ["MULTI"], ["SET", "k", "v"], ["EXEC"]]) {
    s.run(argv, (r) => replies.push(r));
  }
  assert.equal(host.submitted.length, 1, "only the WATCH read so far");
  host.release();
  assert.equal(host.submitted.length, 2);
  const exec = host.submitted[1].op.argv;
  assert.deepEqual(exec.slice(0, 4), ["__EXEC", "1", "k", "0@1000000"]);
  host.release();
  // In callback order: MULTI and SET answer at once, WATCH when its read returns, then EXEC.
  assert.deepEqual(replies, [OK, { ok: "QUEUED" }, OK, [OK]]);
});

Deno.test("session: commands sent after a waiting EXEC are ordered after it", () => {
  const { host, s } = session();
  host.hold = true;
  const replies: Reply[] = [];
  const argvs = [
    ["WATCH", "k"],
    ["MULTI"],
    ["SET", "k", "v"],
    ["EXEC"],
    ["SET", "k", "late"],
    [
      "WATCH",
      "k",
    ],
    ["MULTI"],
    ["INCR", "n"],
    ["EXEC"],
    ["GET", "k"],
  ];
  for (const argv of argvs) s.run(argv, (r) => replies.push(r));
  assert.equal(host.submitted.length, 1, "everything after EXEC waits for the WATCH read");
  for (let i = 0; i < 6 && host.held.length > 0; i++) host.release();
  assert.deepEqual(host.submitted.map((c) => c.op.argv[0]), [
    "__VERSION",
    "__EXEC",
    "SET",
    "__VERSION",
    "__EXEC",
    "GET",
  ]);
  assert.deepEqual(replies.at(-1), "late");
  assert.deepEqual(replies.filter(Array.isArray), [[OK], [1]]);
  assert.equal(s.run(["QUIT"], () => {}), "close");
});

Deno.test("session: PING, ECHO, SELECT, TIME, QUIT, RESET", () => {
  const { s } = session();
  assert.deepEqual(run(s, "PING"), { ok: "PONG" });
  assert.equal(run(s, "PING", "hi"), "hi");
  assert.deepEqual(run(s, "PING", "a", "b"), arity("ping"));
  assert.equal(run(s, "ECHO", "x\r\n"), "x\r\n");
  assert.deepEqual(run(s, "SELECT", "0"), OK);
  assert.deepEqual(run(s, "SELECT", "1"), { err: "ERR DB index is out of range" });
  assert.deepEqual(run(s, "SELECT", "x"), { err: "ERR value is not an integer or out of range" });
  assert.deepEqual(run(s, "TIME"), ["1000", "0"]);
  assert.equal(s.run(["QUIT"], () => {}), "close");
  run(s, "MULTI");
  assert.deepEqual(run(s, "RESET"), { ok: "RESET" });
  assert.equal(s.inMulti, false);
});

/** Runs a command whose reply may come later (a failed login's is delayed). */
function runLater(s: Session, ...argv: string[]): Promise<Reply> {
  return new Promise((resolve) => s.run(argv, resolve));
}

Deno.test("session: HELLO speaks RESP2 only, with AUTH default and SETNAME", async () => {
  const { s } = session();
  const hello = run(s, "HELLO", "2", "SETNAME", "app") as Reply[];
  assert.deepEqual(hello.slice(0, 6), ["server", "redis", "version", "7.0.15", "proto", 2]);
  assert.equal(run(s, "CLIENT", "GETNAME"), "app");
  assert.deepEqual(run(s, "HELLO", "3"), { err: "NOPROTO unsupported protocol version" });
  assert.deepEqual(run(s, "HELLO", "x"), {
    err: "ERR Protocol version is not an integer or out of range",
  });
  assert.ok(Array.isArray(run(s, "HELLO")));
  assert.ok(Array.isArray(run(s, "HELLO", "2", "AUTH", "default", "anything")));
  assert.deepEqual(await runLater(s, "HELLO", "2", "AUTH", "bob", "pw"), {
    err: "WRONGPASS invalid username-password pair or user is disabled.",
  });
  assert.deepEqual(run(s, "HELLO", "2", "BOGUS"), {
    err: "ERR Syntax error in HELLO option 'BOGUS'",
  });
});

Deno.test("session: CLIENT SETNAME, GETNAME, ID, INFO, LIST, KILL, SETINFO", () => {
  const host = new FakeHost();
  const { s } = session(host, 1);
  const { s: other } = session(host, 2);
  let killed = false;
  other.kill = () => (killed = true);
  assert.equal(run(s, "CLIENT", "GETNAME"), null);
  assert.deepEqual(run(s, "CLIENT", "SETNAME", "worker-1"), OK);
  assert.deepEqual(run(s, "CLIENT", "SETNAME", "has space"), {
    err: "ERR Client names cannot contain spaces, newlines or special characters.",
  });
  assert.equal(run(s, "CLIENT", "ID"), 1);
  assert.match(run(s, "CLIENT", "INFO") as string, /^id=1 addr=127\.0\.0\.1:5001 .*name=worker-1 /);
  const list = (run(s, "CLIENT", "LIST") as string).trim().split("\n");
  assert.equal(list.length, 2);
  assert.deepEqual(run(s, "CLIENT", "SETINFO", "lib-name", "ioredis"), OK);
  assert.deepEqual(run(s, "CLIENT", "KILL", "127.0.0.1:9"), { err: "ERR No such client" });
  assert.deepEqual(run(s, "CLIENT", "KILL", "127.0.0.1:5002"), OK);
  assert.equal(killed, true);
  assert.deepEqual(run(s, "CLIENT", "KILL", "ID", "2"), 1);
  assert.deepEqual(run(s, "CLIENT", "NOSUCH"), {
    err: "ERR unknown subcommand 'NOSUCH'. Try CLIENT HELP.",
  });
});

Deno.test("session: COMMAND COUNT, LIST, INFO and DOCS come from the registry", () => {
  const { s } = session();
  const publicCount = COMMANDS.public().length;
  assert.equal(run(s, "COMMAND", "COUNT"), publicCount);
  assert.ok((run(s, "COMMAND", "LIST") as string[]).includes("getex"));
  assert.ok(!(run(s, "COMMAND", "LIST") as string[]).includes("__exec"));
  const [get] = run(s, "COMMAND", "INFO", "get") as Reply[][];
  assert.deepEqual(get.slice(0, 6), ["get", 2, [{ ok: "readonly" }, { ok: "fast" }], 1, 1, 1]);
  assert.deepEqual(run(s, "COMMAND", "INFO", "nosuch"), [null]);
  const docs = run(s, "COMMAND", "DOCS", "set") as Reply[];
  assert.equal(docs[0], "set");
  assert.deepEqual((docs[1] as Reply[]).slice(0, 2), ["summary", COMMANDS.get("set")!.summary]);
  assert.equal((run(s, "COMMAND") as Reply[]).length, publicCount);
});

Deno.test("session: CONFIG GET by pattern; CONFIG SET refused", () => {
  const { s } = session();
  assert.deepEqual(run(s, "CONFIG", "GET", "databases"), ["databases", "1"]);
  assert.deepEqual(run(s, "CONFIG", "GET", "a*"), ["appendonly", "no"]);
  assert.deepEqual(run(s, "CONFIG", "GET", "nosuch"), []);
  assert.match((run(s, "CONFIG", "SET", "x", "y") as { err: string }).err, /^ERR CONFIG SET/);
});

Deno.test("session: REQ wraps a data command with an exactly-once tag", () => {
  const { host, s } = session();
  assert.deepEqual(run(s, "REQ", "c1", "7", "INCR", "n"), 1);
  assert.deepEqual(run(s, "REQ", "c1", "7", "INCR", "n"), 1, "a retry is answered the same");
  assert.deepEqual(host.submitted[0].tag, { client: "c1", seq: 7 });
  assert.deepEqual(run(s, "REQ", "c", "1"), arity("req"));
  const clientErr = { err: "ERR REQ client id must be 1 to 128 bytes" };
  assert.deepEqual(run(s, "REQ", "", "1", "GET", "k"), clientErr);
  assert.deepEqual(run(s, "REQ", "c".repeat(129), "1", "GET", "k"), clientErr);
  const seqErr = { err: "ERR REQ sequence number must be a positive integer" };
  for (const seq of ["0", "-1", "01", "1.5", "abc", "", " 1", "+1", "9007199254740992", "1e3"]) {
    assert.deepEqual(run(s, "REQ", "c", seq, "GET", "k"), seqErr, `seq ${seq}`);
  }
  assert.deepEqual(run(s, "REQ", "c", "1", "PING"), {
    err: "ERR REQ can only wrap a data command, not 'PING'",
  });
  assert.deepEqual(run(s, "REQ", "c", "1", "__EXEC", "0"), {
    err: "ERR REQ can only wrap a data command, not '__EXEC'",
  });
  assert.deepEqual(run(s, "REQ", "c", "1", "GET"), arity("get"));
});

Deno.test("session: over maxmemory, commands that add data get OOM, as in Redis", () => {
  const { host, s } = session();
  assert.deepEqual(run(s, "SET", "k", "v"), OK);
  host.mem.over = true;
  const oom = { err: "OOM command not allowed when used memory > 'maxmemory'." };
  const before = host.submitted.length;
  for (
    const argv of [["SET", "a", "b"], ["INCR", "n"], ["LPUSH", "l", "x"], ["APPEND", "k", "x"]]
  ) {
    assert.deepEqual(run(s, ...argv), oom, argv.join(" "));
  }
  assert.deepEqual(run(s, "REQ", "c1", "1", "SET", "a", "b"), oom, "a REQ by what it wraps");
  assert.equal(host.submitted.length, before, "refused before they were ordered");
  // Reads, deletions and commands that free or keep memory still run (Redis's denyoom flag).
  assert.equal(run(s, "GET", "k"), "v");
  assert.equal(run(s, "EXPIRE", "k", "100"), 1);
  assert.equal(run(s, "DEL", "k"), 1);
  assert.equal(run(s, "REQ", "c1", "2", "DEL", "k"), 0);
  assert.deepEqual(run(s, "PING"), { ok: "PONG" });
  host.mem.over = false;
  assert.deepEqual(run(s, "SET", "a", "b"), OK, "accepted again once memory is below the limit");
});

Deno.test("session: over maxmemory, MULTI refuses every queued command, as in Redis", () => {
  const { host, s } = session();
  host.mem.over = true;
  const oom = { err: "OOM command not allowed when used memory > 'maxmemory'." };
  assert.deepEqual(run(s, "MULTI"), OK);
  assert.deepEqual(run(s, "GET", "k"), oom, "queuing costs memory: even a read is refused");
  assert.deepEqual(run(s, "EXEC"), {
    err: "EXECABORT Transaction discarded because of previous errors.",
  });
  // Memory passed the limit after the commands were queued: a transaction that adds data is
  // discarded at EXEC; one that only reads runs.
  host.mem.over = false;
  assert.deepEqual(run(s, "MULTI"), OK);
  assert.deepEqual(run(s, "SET", "k", "v"), { ok: "QUEUED" });
  host.mem.over = true;
  assert.deepEqual(run(s, "EXEC"), {
    err: "EXECABORT Transaction discarded because of: OOM command not allowed when used memory " +
      "> 'maxmemory'.",
  });
  assert.equal(run(s, "GET", "k"), null, "the discarded SET was not applied");
  host.mem.over = false;
  assert.deepEqual(run(s, "MULTI"), OK);
  assert.deepEqual(run(s, "GET", "k"), { ok: "QUEUED" });
  host.mem.over = true;
  assert.deepEqual(run(s, "EXEC"), [null]);
  assert.deepEqual(run(s, "MULTI"), OK);
  assert.deepEqual(run(s, "DISCARD"), OK, "DISCARD is never refused");
});

Deno.test("session: INFO has Redis's sections and lamportkv's", () => {
  const { s } = session();
  const all = parseInfo(run(s, "INFO") as string);
  assert.equal(all.redis_version, "7.0.15");
  assert.equal(all.connected_clients, "1");
  assert.equal(all.db0, "keys=5,expires=2,avg_ttl=0");
  assert.equal(all.state, "normal");
  assert.equal(all.members, "1,2,3");
  assert.equal(all.loading, "0");
  const body = run(s, "INFO", "keyspace") as string;
  assert.equal(body, "# Keyspace\r\ndb0:keys=5,expires=2,avg_ttl=0\r\n");
  assert.equal(run(s, "INFO", "nosuch"), "");
  // lamportkv's own fields in their order (unacked: own entries kept until every member acked).
  assert.match(
    formatInfo(STATUS, STATS, ["lamportkv"]),
    /\r\ndelivered:10\r\nholdback:1\r\nunacked:3\r\npending:0\r\n/,
  );
  assert.equal(
    formatInfo({ ...STATUS, state: "joining" }, STATS, ["persistence"]),
    "# Persistence\r\nloading:1\r\naof_enabled:0\r\n",
  );
});

Deno.test("session: while the replica serves no data, INFO says loading:1 and PING answers LOADING", () => {
  const { host, s } = session();
  assert.deepEqual(run(s, "PING"), { ok: "PONG" });
  for (const state of ["joining", "changing", "installing"] as const) {
    host.state = state;
    assert.equal(parseInfo(run(s, "INFO") as string).loading, "1", state);
    // As Redis while it loads its data set: PING and ECHO are refused with LOADING.
    for (const argv of [["PING"], ["PING", "hi"], ["ECHO", "hi"]]) {
      const reply = run(s, ...argv) as { err: string };
      assert.match(reply.err, new RegExp(`^LOADING .*not serving.*state ${state}`), state);
    }
    // Connection and server commands still run (INFO above, TIME, CLIENT ...).
    assert.ok(Array.isArray(run(s, "TIME")));
    // Data commands are not refused: they wait for a view (the core answers them).
    const before = host.submitted.length;
    run(s, "SET", "k", "v");
    assert.equal(host.submitted.length, before + 1);
  }
  host.state = "normal";
  assert.equal(parseInfo(run(s, "INFO") as string).loading, "0");
  assert.deepEqual(run(s, "PING"), { ok: "PONG" });
  assert.equal(run(s, "ECHO", "hi"), "hi");
});

Deno.test("reply encoding: every RESP2 shape", () => {
  const text = (r: Reply) => new TextDecoder("latin1").decode(encodeReply(r));
  assert.equal(text(OK), "+OK\r\n");
  assert.equal(text({ err: "ERR x\r\ny" }), "-ERR x  y\r\n");
  assert.equal(text("v\r\n\xff"), "$4\r\nv\r\n\xff\r\n");
  assert.equal(text(""), "$0\r\n\r\n");
  assert.equal(text(null), "$-1\r\n");
  assert.equal(text(-3), ":-3\r\n");
  assert.equal(text({ int: "9223372036854775807" }), ":9223372036854775807\r\n");
  assert.equal(text({ nil: "array" }), "*-1\r\n");
  assert.equal(text([]), "*0\r\n");
  assert.equal(text(["a", 1, [null]]), "*3\r\n$1\r\na\r\n:1\r\n*1\r\n$-1\r\n");
});

/** A session that can receive pushes: its replies and pushes, in order. */
function subscriber(host: FakeHost, id: number): { s: Session; out: Reply[] } {
  const { s } = session(host, id);
  const out: Reply[] = [];
  s.push = (r) => out.push(r);
  return { s, out };
}

/** Runs a command, collecting its reply into `out` (after the pushes before it). */
function runInto(s: Session, out: Reply[], ...argv: string[]): void {
  s.run(argv, (r) => out.push(r));
}

Deno.test("session pub/sub: confirmations, messages, pattern messages, counts", () => {
  const host = new FakeHost();
  const { s, out } = subscriber(host, 1);
  runInto(s, out, "SUBSCRIBE", "a", "b", "a");
  assert.deepEqual(out.splice(0), [["subscribe", "a", 1], ["subscribe", "b", 2], [
    "subscribe",
    "a",
    2,
  ]]);
  runInto(s, out, "PSUBSCRIBE", "a*");
  assert.deepEqual(out.splice(0), [["psubscribe", "a*", 3]]);
  assert.ok(s.subscribed);
  const pub = session(host, 2).s;
  assert.equal(run(pub, "PUBLISH", "a", "hi"), 2, "one channel and one pattern subscription");
  assert.deepEqual(out.splice(0), [["message", "a", "hi"], ["pmessage", "a*", "a", "hi"]]);
  assert.equal(run(pub, "PUBLISH", "zz", "x"), 0);
  assert.deepEqual(run(pub, "PUBSUB", "CHANNELS"), ["a", "b"]);
  assert.deepEqual(run(pub, "PUBSUB", "CHANNELS", "b*"), ["b"]);
  assert.deepEqual(run(pub, "PUBSUB", "NUMSUB", "a", "zz"), ["a", 1, "zz", 0]);
  assert.equal(run(pub, "PUBSUB", "NUMPAT"), 1);
  assert.match(s.describe(0), /flags=P db=0 sub=2 psub=1 /);
  assert.match(String(run(pub, "CLIENT", "LIST", "TYPE", "pubsub")), /^id=1 .*flags=P/);
  assert.equal(String(run(pub, "CLIENT", "LIST", "TYPE", "pubsub")).split("\n").length, 2);
  assert.doesNotMatch(String(run(pub, "CLIENT", "LIST", "TYPE", "normal")), /id=1 /);
  runInto(s, out, "UNSUBSCRIBE");
  assert.deepEqual(out.splice(0), [["unsubscribe", "a", 2], ["unsubscribe", "b", 1]]);
  runInto(s, out, "PUNSUBSCRIBE", "a*", "nope");
  assert.deepEqual(out.splice(0), [["punsubscribe", "a*", 0], ["punsubscribe", "nope", 0]]);
  assert.ok(!s.subscribed);
  runInto(s, out, "UNSUBSCRIBE");
  assert.deepEqual(out.splice(0), [["unsubscribe", null, 0]]);
  assert.deepEqual(run(pub, "PUBSUB", "CHANNELS"), []);
});

Deno.test("session pub/sub: subscribed mode allows only (P)(UN)SUBSCRIBE, PING, QUIT, RESET", () => {
  const host = new FakeHost();
  const { s, out } = subscriber(host, 1);
  runInto(s, out, "SUBSCRIBE", "c");
  out.length = 0;
  assert.deepEqual(run(s, "GET", "k"), {
    err:
      "ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
  });
  assert.deepEqual(run(s, "GET"), arity("get"), "arity is checked first, as in Redis");
  assert.deepEqual(run(s, "PING"), ["pong", ""]);
  assert.deepEqual(run(s, "PING", "hey"), ["pong", "hey"]);
  assert.deepEqual(run(s, "RESET"), { ok: "RESET" });
  assert.ok(!s.subscribed, "RESET leaves subscribed mode");
  assert.deepEqual(run(s, "PING"), { ok: "PONG" });
  runInto(s, out, "SUBSCRIBE", "c");
  s.close();
  assert.equal(host.hub.numsub("c"), 0, "a closed connection's subscriptions are gone");
  // A transient session (the REST port) cannot receive pushes.
  const rest = session(host, 3).s;
  assert.deepEqual(run(rest, "SUBSCRIBE", "c"), { err: "ERR SUBSCRIBE needs a RESP connection" });
});

Deno.test("session CONFIG SET notify-keyspace-events goes through the order", () => {
  const host = new FakeHost();
  const { s } = session(host);
  assert.deepEqual(run(s, "CONFIG", "SET", "notify-keyspace-events", "KEA"), OK);
  assert.deepEqual(host.submitted.at(-1)?.op.argv, [
    "__CONFIG",
    "SET",
    "notify-keyspace-events",
    "AKE",
  ]);
  assert.deepEqual(run(s, "CONFIG", "SET", "notify-keyspace-events", "Q"), {
    err:
      "ERR CONFIG SET failed (possibly related to argument 'notify-keyspace-events') - Invalid event class character. Use 'Ag$lshzxeKEtmdn'.",
  });
  assert.deepEqual(run(s, "CONFIG", "SET", "maxclients"), arity("config|set"));
  assert.match(
    String((run(s, "CONFIG", "SET", "maxclients", "5") as { err: string }).err),
    /not supported/,
  );
  assert.deepEqual(run(s, "MULTI"), OK);
  assert.match(
    String((run(s, "CONFIG", "SET", "notify-keyspace-events", "") as { err: string }).err),
    /cannot be used inside MULTI/,
  );
});
