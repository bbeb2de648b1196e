/**
 * The client library follows the configuration in force: it learns it from `REPLICASET MEMBERS`
 * on every new connection, fails over on `-NOTMEMBER` (to the members named) and on `-READONLY`
 * (to a voter), resending the same tagged request. Against fake replicas on loopback.
 */
import assert from "node:assert/strict";
import type { ByteString } from "../../src/core/types.ts";
import { RespError } from "../../src/net/resp.ts";
import {
  ClientError,
  LamportClient,
  type ReplicaReport,
  type SwitchEvent,
} from "../../src/client/client.ts";
import {
  formatStatusTable,
  majorityView,
  reportedConfiguration,
  runReplCommand,
  UsageError,
} from "../../src/client/repl.ts";
import { checkOneShot } from "../../src/cli/client.ts";
import {
  failoverList,
  formatMembersTable,
  parseMembersReply,
  parseNotMemberMessage,
} from "../../src/client/members.ts";
import {
  configOf,
  deadPort,
  type FakeHandler,
  FakeRespServer,
  kvHandler as kv,
  membersReply,
  reply,
} from "../support/fake_resp_server.ts";

/** Starts one fake replica per handler; closes them and the client whatever happens. */
async function withFakes(
  handlers: FakeHandler[],
  body: (servers: FakeRespServer[], cleanup: (c: LamportClient) => void) => Promise<void>,
): Promise<void> {
  const servers = handlers.map((h) => FakeRespServer.start(h));
  const clients: LamportClient[] = [];
  try {
    await body(servers, (c) => clients.push(c));
  } finally {
    for (const c of clients) await c.close();
    for (const s of servers) await s.close();
  }
}

const notMember = (members: string) =>
  reply.error(`NOTMEMBER this replica is not a member of the cluster; members: ${members}`);
const readOnly = () => reply.error("READONLY You can't write against a read only replica.");

/** A learner: reads like `kv`, refuses writes with READONLY. */
function learner(map: Map<ByteString, ByteString>): FakeHandler {
  const inner = kv(map);
  return (argv, request) => argv[3] === "PUT" ? readOnly() : inner(argv, request);
}

Deno.test("client members: learns the configuration in force and reaches replicas the config lacks", async () => {
  const map = new Map<ByteString, ByteString>();
  await withFakes([kv(map), kv(map), kv(map)], async ([a, b, c], own) => {
    const rows = [
      { id: 1, clientPort: a.port },
      { id: 5, clientPort: b.port },
      { id: 7, clientPort: c.port, role: "learner" as const },
    ];
    for (const s of [a, b, c]) s.members = membersReply(rows);
    const events: SwitchEvent[] = [];
    // The config file knows only replica 1.
    const client = new LamportClient(configOf([a.port]), { onSwitch: (e) => events.push(e) });
    own(client);
    assert.deepEqual(client.replicas.map((r) => r.id), [1]);
    const learned = () => client.members;
    assert.equal(learned(), null);
    await client.connect();
    assert.equal(a.membersAsked, 1);
    assert.deepEqual(
      client.replicas.map((r) => [r.id, r.clientPort]),
      [[1, a.port], [5, b.port], [7, c.port]],
    );
    assert.deepEqual(learned()?.map((m) => [m.address.id, m.role]), [
      [1, "voter"],
      [5, "voter"],
      [7, "learner"],
    ]);
    await client.put("k", "v");
    // Replica 1 goes away: the client fails over to 5, which only the members named.
    a.handler = () => "close";
    await client.put("k", "w");
    assert.equal(client.replica, 5);
    assert.equal(map.get("k"), "w");
    assert.deepEqual(b.argvs, [["REQ", client.clientId, "2", "PUT", "k", "w"]]);
    assert.deepEqual(a.argvs.at(-1), b.argvs[0], "the same request, same seq, was resent");
    assert.equal(b.membersAsked, 1, "it learns again after a failover");
    assert.deepEqual(events.map((e) => [e.from?.id, e.to.id, e.reason]), [[1, 5, "unreachable"]]);
    // status covers the members learned.
    const reports = await client.statusAll();
    assert.deepEqual(reports.map((r) => r.replica.id), [1, 5, 7]);
  });
});

Deno.test("client members: status learns the members first and reports each known replica", async () => {
  const info = (id: number, role: string) => (argv: ByteString[]) =>
    argv[0] === "INFO"
      ? reply.bulk(`# lamportkv\r\nid:${id}\r\nview:1\r\nstate:normal\r\nreplica_role:${role}\r\n`)
      : reply.error("ERR unexpected");
  await withFakes([info(1, "none"), info(2, "voter"), info(3, "learner")], async (s, own) => {
    const [removed, b, c] = s;
    const rows = [{ id: 2, clientPort: b.port }, {
      id: 3,
      clientPort: c.port,
      role: "learner" as const,
    }];
    for (const x of s) x.members = membersReply(rows);
    // The config file lists only replica 1, since removed.
    const client = new LamportClient(configOf([removed.port]));
    own(client);
    const reports = await client.statusAll();
    assert.deepEqual(reports.map((r) => [r.replica.id, r.info?.replica_role]), [
      [1, "none"],
      [2, "voter"],
      [3, "learner"],
    ]);
    assert.equal(removed.membersAsked, 1);
  });
});

Deno.test("client members: the failover order follows the current members, not the config", async () => {
  const map = new Map<ByteString, ByteString>();
  const noQuorum: FakeHandler = () => reply.error("NOQUORUM cannot reach a majority");
  await withFakes([noQuorum, kv(map), noQuorum, kv(map)], async ([a, b, c, d], own) => {
    // Config: 1, 2, 3. In force: voters 1 and 3, learner 4; 2 was removed.
    const rows = [
      { id: 1, clientPort: a.port },
      { id: 3, clientPort: c.port },
      { id: 4, clientPort: d.port, role: "catching-up" as const },
      { id: 6, clientPort: deadPort(), role: "joining" as const },
    ];
    for (const s of [a, c, d]) s.members = membersReply(rows);
    const client = new LamportClient(configOf([a.port, b.port, c.port]));
    own(client);
    assert.equal(await client.get("k"), null);
    assert.equal(client.replica, 4, "voters first, then learners; joining replicas left out");
    assert.deepEqual(client.replicas.map((r) => r.id), [1, 3, 4]);
    assert.equal(b.connections, 0, "the removed replica was never tried");
    assert.deepEqual(a.argvs, c.argvs);
    assert.deepEqual(c.argvs, d.argvs);
  });
});

Deno.test("client members: a server without REPLICASET keeps the config's list", async () => {
  const map = new Map<ByteString, ByteString>();
  await withFakes([kv(map), kv(map)], async ([a, b], own) => {
    const client = new LamportClient(configOf([a.port, b.port]));
    own(client);
    await client.put("k", "v");
    assert.equal(a.membersAsked, 1);
    assert.deepEqual(client.replicas.map((r) => r.clientPort), [a.port, b.port]);
    assert.equal(client.members, null);
    const answer = await client.refreshMembers();
    assert.ok(answer instanceof RespError);
    assert.match(answer.message, /unknown command 'REPLICASET'/);
    // refreshMembers adopts a list when there is one.
    a.members = membersReply([{ id: 2, clientPort: b.port }]);
    const rows = await client.refreshMembers();
    assert.ok(Array.isArray(rows));
    assert.deepEqual(client.replicas.map((r) => [r.id, r.clientPort]), [[2, b.port]]);
  });
});

Deno.test("client members: -NOTMEMBER fails over to the members it names with the same seq", async () => {
  const map = new Map<ByteString, ByteString>();
  await withFakes([kv(map)], async ([c], own) => {
    c.members = membersReply([{ id: 9, clientPort: c.port }]);
    // Replica 1 is waiting to be added: it cannot say the members, and refuses data commands.
    const outsider = FakeRespServer.start(() => notMember(`9 127.0.0.1:${c.port}`));
    try {
      const events: SwitchEvent[] = [];
      const client = new LamportClient(configOf([outsider.port, deadPort()]), {
        onSwitch: (e) => events.push(e),
      });
      own(client);
      await client.put("k", "v");
      assert.equal(client.replica, 9);
      assert.equal(map.get("k"), "v");
      const expected = ["REQ", client.clientId, "1", "PUT", "k", "v"];
      assert.deepEqual(outsider.argvs, [expected]);
      assert.deepEqual(c.argvs, [expected]);
      assert.deepEqual(events.map((e) => [e.from?.id, e.to.id, e.reason]), [[1, 9, "notmember"]]);
      assert.deepEqual(client.replicas.map((r) => r.id), [9]);
      assert.equal(await client.get("k"), "v");
      assert.deepEqual(c.argvs[1], ["REQ", client.clientId, "2", "GET", "k"]);
    } finally {
      await outsider.close();
    }
  });
});

Deno.test("client members: a config listing only a removed replica still reaches the cluster", async () => {
  const map = new Map<ByteString, ByteString>();
  await withFakes([kv(map), kv(map), kv(map)], async ([removed, b, c], own) => {
    // Replica 1 was removed: it knows the set in force (without itself) and refuses data.
    const rows = [{ id: 2, clientPort: b.port }, { id: 3, clientPort: c.port }];
    for (const s of [removed, b, c]) s.members = membersReply(rows);
    removed.handler = () => notMember(`2 127.0.0.1:${b.port}, 3 127.0.0.1:${c.port}`);
    const client = new LamportClient(configOf([removed.port]));
    own(client);
    await client.connect();
    assert.equal(client.replica, 1);
    assert.deepEqual(client.replicas.map((r) => r.id), [2, 3]);
    await client.put("k", "v");
    assert.equal(client.replica, 2);
    assert.equal(map.get("k"), "v");
    assert.deepEqual(removed.argvs, b.argvs, "the same request was resent");
    assert.equal(c.connections, 0);
  });
});

Deno.test("client members: -NOTMEMBER everywhere fails at once, not applied", async () => {
  await withFakes(
    [() => notMember("unknown yet"), () => notMember("unknown yet")],
    async (s, own) => {
      const client = new LamportClient(configOf(s.map((x) => x.port)));
      own(client);
      await assert.rejects(client.put("k", "v"), (err: unknown) => {
        assert.ok(err instanceof ClientError);
        assert.equal(err.code, "NOTMEMBER");
        assert.equal(err.maybeApplied, false);
        assert.match(err.message, /no reachable replica would take it/);
        assert.match(err.message, /it was not applied/);
        return true;
      });
      assert.deepEqual(s.map((x) => x.argvs.length), [1, 1]);
    },
  );
});

Deno.test("client members: -READONLY on a write goes to a voter; reads stay on learners", async () => {
  const map = new Map<ByteString, ByteString>([["k", "old"]]);
  await withFakes([learner(map), kv(map), learner(map)], async ([l1, v, l3], own) => {
    const rows = [
      { id: 2, clientPort: v.port },
      { id: 1, clientPort: l1.port, role: "learner" as const },
      { id: 3, clientPort: l3.port, role: "learner" as const },
    ];
    for (const s of [l1, v, l3]) s.members = membersReply(rows);
    const events: SwitchEvent[] = [];
    // Only the learner is in the config; it is tried first.
    const client = new LamportClient(configOf([l1.port]), { onSwitch: (e) => events.push(e) });
    own(client);
    assert.equal(await client.get("k"), "old");
    assert.equal(client.replica, 1, "a learner serves reads");
    await client.put("k", "new");
    assert.equal(client.replica, 2);
    assert.equal(map.get("k"), "new");
    assert.equal(l3.connections, 0, "learner 3 (next in the list) was skipped for the voter");
    assert.deepEqual(l1.argvs[1], ["REQ", client.clientId, "2", "PUT", "k", "new"]);
    assert.deepEqual(v.argvs, [l1.argvs[1]]);
    assert.deepEqual(events.map((e) => [e.from?.id, e.to.id, e.reason]), [[1, 2, "readonly"]]);
  });
});

Deno.test("client members: -READONLY from every replica fails at once, not applied", async () => {
  const map = new Map<ByteString, ByteString>();
  await withFakes([learner(map), learner(map)], async (s, own) => {
    const client = new LamportClient(configOf(s.map((x) => x.port)));
    own(client);
    await assert.rejects(client.put("k", "v"), (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.code, "READONLY");
      assert.equal(err.maybeApplied, false);
      return true;
    });
  });
});

Deno.test("client members: a refusal after an attempt that may have been applied is UNKNOWN", async () => {
  // Replica 1 drops the first attempt (it may have been applied), then refuses like 2.
  let dropped = false;
  const dropOnce: FakeHandler = () => {
    if (dropped) return notMember("unknown yet");
    dropped = true;
    return "close";
  };
  await withFakes([dropOnce, () => notMember("unknown yet")], async (s, own) => {
    const client = new LamportClient(configOf(s.map((x) => x.port)));
    own(client);
    await assert.rejects(client.put("k", "v"), (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.code, "UNKNOWN");
      assert.equal(err.maybeApplied, true);
      assert.match(err.message, /it may have been applied/);
      return true;
    });
    assert.deepEqual(s.map((x) => x.argvs.length), [2, 2]);
  });
});

Deno.test("members: parseMembersReply reads REPLICASET MEMBERS rows", () => {
  const row = (id: number, role: string, http: number | null = null) => [
    "id",
    id,
    "host",
    "h",
    "client-port",
    7000 + id,
    "peer-port",
    8000 + id,
    "http-port",
    http,
    "role",
    role,
    "state",
    "out",
  ];
  const rows = parseMembersReply([row(1, "voter", 9001), row(4, "joining"), row(2, "learner")]);
  assert.deepEqual(rows, [
    {
      address: { id: 1, host: "h", clientPort: 7001, peerPort: 8001, httpPort: 9001 },
      role: "voter",
      state: "out",
    },
    {
      address: { id: 4, host: "h", clientPort: 7004, peerPort: 8004 },
      role: "joining",
      state: "out",
    },
    {
      address: { id: 2, host: "h", clientPort: 7002, peerPort: 8002 },
      role: "learner",
      state: "out",
    },
  ]);
  assert.deepEqual(failoverList(rows!).map((a) => a.id), [1, 2]);
  // Rows without a usable address or role are left out; non-lists are not member lists.
  const bad = [...row(3, "voter")];
  bad[5] = 0;
  assert.deepEqual(parseMembersReply([bad, row(5, "boss")]), []);
  assert.equal(parseMembersReply(new RespError("ERR unknown command")), null);
  assert.equal(parseMembersReply("OK"), null);
  assert.equal(parseMembersReply([["id"]]), null);
  assert.equal(parseMembersReply([[1, 2]]), null);
});

Deno.test("members: parseNotMemberMessage reads the members a refusal names", () => {
  assert.deepEqual(
    parseNotMemberMessage(
      "NOTMEMBER this replica is not a member of the cluster; members: 3 127.0.0.1:7003, " +
        "4 [::1]:7004, 5 h",
    ),
    [
      { id: 3, host: "127.0.0.1", clientPort: 7003, peerPort: 0 },
      { id: 4, host: "::1", clientPort: 7004, peerPort: 0 },
    ],
  );
  assert.deepEqual(
    parseNotMemberMessage("NOTMEMBER ...; members: unknown yet (this replica waits to be added)"),
    [],
  );
  assert.deepEqual(parseNotMemberMessage("NOTMEMBER no list"), []);
});

Deno.test("members: formatMembersTable shows every row and the voters and learners", () => {
  const rows = parseMembersReply([
    [
      "id",
      1,
      "host",
      "127.0.0.1",
      "client-port",
      7001,
      "peer-port",
      8001,
      "http-port",
      9001,
      "role",
      "voter",
      "state",
      "in-view",
    ],
    [
      "id",
      4,
      "host",
      "10.0.0.4",
      "client-port",
      7004,
      "peer-port",
      8004,
      "http-port",
      null,
      "role",
      "catching-up",
      "state",
      "out",
    ],
    [
      "id",
      6,
      "host",
      "h6",
      "client-port",
      7006,
      "peer-port",
      8006,
      "http-port",
      null,
      "role",
      "joining",
      "state",
      "out",
    ],
  ])!;
  assert.equal(
    formatMembersTable(rows, 1),
    [
      "id  address    client  peer  http  role         state",
      "1   127.0.0.1  7001    8001  9001  voter        in-view",
      "4   10.0.0.4   7004    8004  -     catching-up  out",
      "6   h6         7006    8006  -     joining      out",
      "voters: 1  learners: 4  waiting to join: 6  (as replica 1 sees it)",
    ].join("\n"),
  );
});

/** A fake replica for the membership commands: records REPLICASET changes, answers `change`. */
function adminHandler(
  changes: ByteString[][],
  change: (argv: ByteString[]) => Uint8Array = () => reply.ok(),
): FakeHandler {
  const inner = kv(new Map());
  return (argv, request) => {
    if (argv[0] !== "REPLICASET") return inner(argv, request);
    changes.push(argv);
    return change(argv);
  };
}

Deno.test("repl: members, add, remove, promote run REPLICASET and show the outcome", async () => {
  const changes: ByteString[][] = [];
  // Replica 1 is a learner: it refuses changes (READONLY); replica 2 makes them.
  const learnerAdmin = adminHandler(changes, () => readOnly());
  const voterAdmin = adminHandler(
    changes,
    (argv) => argv[2] === "9" ? reply.error("ERR no such replica '9' (members: 1, 2)") : reply.ok(),
  );
  await withFakes([learnerAdmin, voterAdmin], async ([a, b], own) => {
    const rows = [
      { id: 2, clientPort: b.port },
      { id: 1, clientPort: a.port, role: "learner" as const },
    ];
    a.members = membersReply(rows);
    b.members = membersReply(rows);
    const client = new LamportClient(configOf([a.port]));
    own(client);
    const table = await runReplCommand(client, ["members"]);
    const lines = table.split("\n");
    assert.match(lines[0], /^id\s+address\s+client\s+peer\s+http\s+role\s+state$/);
    assert.match(lines[1], new RegExp(`^2\\s+127\\.0\\.0\\.1\\s+${b.port}\\s+40002\\s+-\\s+voter`));
    assert.match(lines[2], /^1\s+.*learner\s+in-view$/);
    assert.equal(lines[3], "voters: 2  learners: 1  (as replica 1 sees it)");

    // A learner refuses the change (READONLY): it goes to the voter, and the list is relearned.
    const asked = b.membersAsked;
    assert.equal(await runReplCommand(client, ["add", "2", "10.0.0.3", "7003", "8003"]), "OK");
    assert.equal(
      await runReplCommand(client, ["ADD", "3", "h", "7003", "8003", "9", "Learner"]),
      "OK",
    );
    assert.equal(await runReplCommand(client, ["remove", "3"]), "OK");
    assert.equal(await runReplCommand(client, ["promote", "4"]), "OK");
    assert.ok(b.membersAsked > asked + 1, "the members are learned again after a change");
    assert.equal(
      await runReplCommand(client, ["remove", "9"]),
      "(error) ERR no such replica '9' (members: 1, 2)",
    );
    assert.deepEqual(changes, [
      ["REPLICASET", "ADD", "2", "10.0.0.3", "7003", "8003"],
      ["REPLICASET", "ADD", "2", "10.0.0.3", "7003", "8003"],
      ["REPLICASET", "ADD", "3", "h", "7003", "8003", "9", "LEARNER"],
      ["REPLICASET", "REMOVE", "3"],
      ["REPLICASET", "PROMOTE", "4"],
      ["REPLICASET", "REMOVE", "9"],
    ]);
    assert.deepEqual(a.requests.map((r) => r.argv[1]), ["ADD"], "only the first went to 1");

    // Bad input is answered without contacting the cluster, with the usage line.
    const before = changes.length;
    const usageAdd = "usage: ADD <id> <host> <client_port> <peer_port> [<http_port>] [learner]";
    const bad: [string[], string][] = [
      [["add", "4", "h", "1"], "(error) ERR wrong number of arguments for 'add' command"],
      [["add", "4", "h", "0", "1"], "(error) ERR invalid port '0' (1..65535)"],
      [["add", "0", "h", "1", "2"], "(error) ERR replica id must be an integer in 1..999, got '0'"],
      [
        ["add", "4", "h", "1", "2", "3", "voter"],
        "(error) ERR syntax error: the last argument may only be 'learner', got 'voter'",
      ],
      [["add", "4", "h", "5", "5"], "(error) ERR the ports of one replica must differ"],
    ];
    for (const [argv, error] of bad) {
      assert.equal(await runReplCommand(client, argv), `${error}\n${usageAdd}`);
    }
    assert.equal(
      await runReplCommand(client, ["remove", "x"]),
      "(error) ERR replica id must be an integer in 1..999, got 'x'\nusage: REMOVE <id>",
    );
    assert.equal(
      await runReplCommand(client, ["promote"]),
      "(error) ERR wrong number of arguments for 'promote' command\nusage: PROMOTE <id>",
    );
    assert.equal(
      await runReplCommand(client, ["members", "x"]),
      "(error) ERR wrong number of arguments for 'members' command\nusage: MEMBERS",
    );
    assert.equal(changes.length, before);

    // Help: `<command> --help` and `help <command>`.
    const help = await runReplCommand(client, ["add", "--help"]);
    assert.equal(help, await runReplCommand(client, ["help", "add"]));
    assert.match(help, /ADD <id> <host> <client_port> <peer_port> \[<http_port>\] \[learner\]/);
    assert.match(help, /group: client/);
    assert.match(help, /\.\/lamportkv client <config> add 4 127\.0\.0\.1 7004 8004 9004/);
    assert.match(await runReplCommand(client, ["help"]), /MEMBERS\s+The configuration in force/);
  });
});

Deno.test("repl: members from a server without membership changes is its error", async () => {
  await withFakes([kv(new Map())], async ([a], own) => {
    const client = new LamportClient(configOf([a.port]));
    own(client);
    assert.match(
      await runReplCommand(client, ["members"]),
      /^\(error\) ERR unknown command 'REPLICASET'/,
    );
  });
});

Deno.test("checkOneShot: membership commands' usage errors and --help", () => {
  assert.throws(() => checkOneShot(["add", "4", "h", "1", "70000"]), (e: unknown) => {
    assert.ok(e instanceof UsageError);
    assert.equal(
      e.message,
      "(error) ERR invalid port '70000' (1..65535)\n" +
        "usage: ADD <id> <host> <client_port> <peer_port> [<http_port>] [learner]",
    );
    return true;
  });
  assert.throws(
    () => checkOneShot(["promote", "1000"]),
    /replica id must be an integer in 1\.\.999, got '1000'\nusage: PROMOTE <id>/,
  );
  assert.throws(() => checkOneShot(["remove"]), /wrong number of arguments for 'remove'/);
  assert.match(checkOneShot(["remove", "--help"]) ?? "", /REMOVE <id>\n\s+summary: Removes/);
  assert.match(checkOneShot(["status", "-h"]) ?? "", /STATUS\n\s+summary:/);
  assert.equal(checkOneShot(["add", "4", "h", "1", "2", "learner"]), null);
  assert.equal(checkOneShot(["members"]), null);
  assert.match(checkOneShot(["help"]) ?? "", /PROMOTE <id>\s+Makes a learner a voter/);
});

function statusReport(id: number, info: Record<string, string> | null): ReplicaReport {
  return {
    replica: { id, host: "127.0.0.1", clientPort: 7000 + id, peerPort: 8000 + id },
    reachable: info !== null,
    info,
    error: null,
  };
}

Deno.test("formatStatusTable: each replica's role and the configuration in force", () => {
  const at = (view: string, state: string, role: string) => ({
    view,
    state,
    replica_role: role,
    voters: "1,2,3",
    learners: "4",
    delivered: "7",
    digest: "d",
  });
  const reports = [
    statusReport(1, at("4", "normal", "voter")),
    statusReport(2, at("4", "normal", "voter")),
    statusReport(3, null),
    statusReport(4, at("4", "normal", "learner")),
    // Removed: not counted among the voters, not marked as outside the view.
    statusReport(5, { ...at("1", "normal", "none"), voters: "1,2,3,5", learners: "" }),
  ];
  assert.deepEqual(reportedConfiguration(reports), { voters: [1, 2, 3], learners: [4] });
  assert.equal(majorityView(reports), "4");
  const lines = formatStatusTable(reports).split("\n");
  assert.match(lines[0], /^id\s+address\s+reachable\s+view\s+state\s+role\s+members/);
  assert.match(lines[1], /^1\s+\S+\s+yes\s+4\s+normal\s+voter\s/);
  assert.match(lines[4], /^4\s+\S+\s+yes\s+4\s+normal\s+learner\s/);
  assert.match(lines[5], /^5\s+\S+\s+yes\s+1\s+normal\s+none\s/);
  assert.ok(lines.includes("configuration: voters 1,2,3; learners 4"), lines.join("\n"));
  assert.ok(!lines.some((l) => l.startsWith("!")), "a non-member is not outside the view");
  // Two of three voters are not a majority of five replicas, but are of the three voters.
  const two = [reports[0], reports[1], statusReport(3, null), reports[3]];
  assert.equal(majorityView(two), "4");
  const one = [reports[0], statusReport(2, null), statusReport(3, null), reports[3]];
  assert.equal(majorityView(one), null);
  assert.match(formatStatusTable(one), /no view has a majority of the 3 voters/);
  // Without voters in INFO (an older server): no configuration line, role "-".
  const old = formatStatusTable([statusReport(1, { view: "1", state: "normal", role: "master" })]);
  assert.doesNotMatch(old, /configuration:/);
  assert.match(old.split("\n")[1], /^1\s+\S+\s+yes\s+1\s+normal\s+-\s/);
});
