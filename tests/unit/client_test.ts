import assert from "node:assert/strict";
import type { ByteString } from "../../src/core/types.ts";
import { RespError } from "../../src/net/resp.ts";
import {
  ClientError,
  type ClientOptions,
  LamportClient,
  type SwitchEvent,
} from "../../src/client/client.ts";
import {
  configOf,
  deadPort,
  type FakeHandler,
  type FakeReply,
  FakeRespServer,
  kvHandler as kv,
  reply,
  waitFor,
} from "../support/fake_resp_server.ts";
import { LOADING_REPLY } from "../../src/runtime/loading_listeners.ts";

/** Starts servers, runs `body`, and always closes everything. */
async function withServers(
  handlers: FakeHandler[],
  options: ClientOptions,
  body: (client: LamportClient, servers: FakeRespServer[], events: SwitchEvent[]) => Promise<void>,
): Promise<void> {
  const servers = handlers.map((h) => FakeRespServer.start(h));
  const events: SwitchEvent[] = [];
  const client = new LamportClient(configOf(servers.map((s) => s.port)), {
    onSwitch: (e) => events.push(e),
    ...options,
  });
  try {
    await body(client, servers, events);
  } finally {
    await client.close();
    for (const server of servers) await server.close();
  }
}

Deno.test("client: ops are sent as REQ <client> <seq> <CMD> and replies are mapped", async () => {
  const map = new Map<ByteString, ByteString>();
  await withServers([kv(map)], {}, async (client, [server]) => {
    assert.equal(client.replica, null);
    await client.put("k", "v\x00\xff");
    assert.equal(client.replica, 1);
    assert.equal(await client.get("k"), "v\x00\xff");
    assert.equal(await client.get("missing"), null);
    assert.equal(await client.has("k"), true);
    assert.equal(await client.delete("k"), true);
    assert.equal(await client.delete("k"), false);
    assert.equal(await client.has("k"), false);
    const id = client.clientId;
    assert.match(id, /^[0-9a-f]{16}$/);
    assert.deepEqual(server.argvs, [
      ["REQ", id, "1", "PUT", "k", "v\x00\xff"],
      ["REQ", id, "2", "GET", "k"],
      ["REQ", id, "3", "GET", "missing"],
      ["REQ", id, "4", "HAS", "k"],
      ["REQ", id, "5", "DELETE", "k"],
      ["REQ", id, "6", "DELETE", "k"],
      ["REQ", id, "7", "HAS", "k"],
    ]);
    assert.equal(server.connections, 1);
  });
});

Deno.test("client: SUBSCRIBE and PSUBSCRIBE are refused without being sent", async () => {
  await withServers([kv(new Map())], {}, async (client, [server]) => {
    for (const name of ["SUBSCRIBE", "psubscribe"]) {
      const r = await client.command([name, "ch"]);
      assert.ok(r instanceof RespError);
      assert.match(r.message, /is not supported by the lamportkv client: use redis-cli/);
    }
    assert.deepEqual(server.argvs, []);
  });
});

Deno.test("client: two clients get different ids", async () => {
  const config = configOf([deadPort()]);
  const a = new LamportClient(config);
  const b = new LamportClient(config);
  assert.notEqual(a.clientId, b.clientId);
  await a.close();
  await b.close();
});

Deno.test("client: concurrent calls run one at a time, in call order", async () => {
  const map = new Map<ByteString, ByteString>();
  const inner = kv(map);
  // The fake server answers one request at a time but records every request as it arrives: a
  // request that arrived while another was still unanswered shows up here.
  let arrivedEarly = 0;
  let answered = 0;
  const arrived: { count: () => number } = { count: () => 0 };
  const handler: FakeHandler = async (argv, request) => {
    await new Promise((resolve) => setTimeout(resolve, 1)); // simulated latency
    if (arrived.count() > answered + 1) arrivedEarly++;
    answered++;
    return inner(argv, request);
  };
  await withServers([handler], {}, async (client, [server]) => {
    arrived.count = () => server.requests.length;
    await Promise.all(Array.from({ length: 20 }, (_, i) => client.put(`k${i}`, `v${i}`)));
    assert.equal(answered, 20);
    assert.equal(arrivedEarly, 0, "a request was sent before the previous one was answered");
    assert.deepEqual(
      server.argvs.map((a) => [a[2], a[4]]),
      Array.from({ length: 20 }, (_, i) => [String(i + 1), `k${i}`]),
    );
  });
});

Deno.test("client: a replica that closes the connection is replaced and the same seq resent", async () => {
  const map = new Map<ByteString, ByteString>();
  const dying: FakeHandler = () => "close";
  await withServers([dying, kv(map)], {}, async (client, [a, b], events) => {
    await client.put("x", "1");
    assert.equal(client.replica, 2);
    assert.equal(map.get("x"), "1");
    assert.equal(a.argvs.length, 1);
    assert.deepEqual(a.argvs[0], b.argvs[0]);
    assert.deepEqual(b.argvs[0], ["REQ", client.clientId, "1", "PUT", "x", "1"]);
    assert.equal(events.length, 1);
    assert.equal(events[0].from?.id, 1);
    assert.equal(events[0].to.id, 2);
    assert.equal(events[0].reason, "unreachable");
    // The next op stays on replica 2 with the next seq.
    assert.equal(await client.get("x"), "1");
    assert.deepEqual(b.argvs[1], ["REQ", client.clientId, "2", "GET", "x"]);
    assert.equal(a.argvs.length, 1);
  });
});

Deno.test("client: a replica still loading its data directory is passed over, nothing sent to it", async () => {
  const map = new Map<ByteString, ByteString>();
  const loading = reply.error(LOADING_REPLY);
  await withServers([() => loading, kv(map)], {}, async (client, [a], events) => {
    a.members = loading; // as the loading listener answers REPLICASET MEMBERS
    await client.put("x", "1");
    assert.equal(client.replica, 2);
    assert.equal(map.get("x"), "1");
    assert.deepEqual(a.argvs, [], "no request went to the loading replica");
    assert.equal(a.membersAsked, 1);
    assert.deepEqual(events.map((e) => [e.from?.id, e.to.id, e.reason]), [
      [1, 2, "unreachable"],
    ]);
  });
});

Deno.test("client: NOQUORUM and UNKNOWN replies fail over round-robin with the same seq", async () => {
  const map = new Map<ByteString, ByteString>();
  const noQuorum: FakeHandler = () => reply.error("NOQUORUM cannot reach a majority");
  const unknown: FakeHandler = () => reply.error("UNKNOWN timed out in the order");
  await withServers(
    [noQuorum, unknown, kv(map)],
    {},
    async (client, [a, b, c], events) => {
      await client.put("k", "v");
      assert.equal(client.replica, 3);
      const expected = ["REQ", client.clientId, "1", "PUT", "k", "v"];
      assert.deepEqual(a.argvs, [expected]);
      assert.deepEqual(b.argvs, [expected]);
      assert.deepEqual(c.argvs, [expected]);
      assert.deepEqual(
        events.map((e) => [e.from?.id, e.to.id, e.reason]),
        [[1, 2, "noquorum"], [2, 3, "unknown"]],
      );
    },
  );
});

Deno.test("client: round-robin wraps around from the preferred replica", async () => {
  const map = new Map<ByteString, ByteString>();
  const noQuorum: FakeHandler = () => reply.error("NOQUORUM no");
  await withServers(
    [kv(map), noQuorum, noQuorum],
    { preferredReplica: 2 },
    async (client, [a, b, c]) => {
      await client.put("k", "v");
      assert.equal(client.replica, 1);
      assert.equal(b.argvs.length, 1);
      assert.equal(c.argvs.length, 1);
      assert.equal(a.argvs.length, 1);
      assert.equal(a.argvs[0][2], "1");
    },
  );
});

Deno.test("client: a replica that stops answering times out and the op moves on", async () => {
  const map = new Map<ByteString, ByteString>();
  await withServers(
    [() => "hang", kv(map)],
    { attemptTimeoutMs: 100 },
    async (client, [a, b], events) => {
      assert.equal(await client.has("k"), false);
      assert.deepEqual(a.argvs, b.argvs);
      assert.equal(events.length, 1);
      assert.equal(events[0].reason, "timeout");
    },
  );
});

Deno.test("client: an ERR reply is not retried", async () => {
  const map = new Map<ByteString, ByteString>();
  const bad: FakeHandler = () => reply.error("ERR wrong number of arguments for 'put' command");
  await withServers([bad, kv(map)], {}, async (client, [a, b], events) => {
    await assert.rejects(client.put("k", "v"), (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.code, "ERR");
      assert.equal(err.maybeApplied, false);
      assert.match(err.message, /wrong number of arguments/);
      return true;
    });
    assert.equal(a.argvs.length, 1);
    assert.equal(b.argvs.length, 0);
    assert.equal(events.length, 0);
    assert.equal(client.replica, 1);
  });
});

Deno.test("client: REFUSED is reported, not retried", async () => {
  await withServers([() => reply.error("REFUSED too many requests")], {}, async (client, [a]) => {
    await assert.rejects(client.get("k"), (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.code, "REFUSED");
      return true;
    });
    assert.equal(a.argvs.length, 1);
  });
});

Deno.test("client: UNAVAILABLE when no replica is reachable", async () => {
  const started = performance.now();
  const client = new LamportClient(configOf([deadPort(), deadPort()]), { deadlineMs: 60_000 });
  try {
    await assert.rejects(client.connect(), (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.code, "UNAVAILABLE");
      assert.match(err.message, /no replica is reachable/);
      return true;
    });
    await assert.rejects(client.put("k", "v"), (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.code, "UNAVAILABLE");
      assert.equal(err.maybeApplied, false);
      // Every replica refused the connection: it fails at once, naming each one and why.
      assert.match(
        err.message,
        /^PUT: no replica can be reached: replica 1 \(127\.0\.0\.1:\d+\): cannot connect .*; replica 2 \(127\.0\.0\.1:\d+\): cannot connect .*\(it was not applied\)$/,
      );
      return true;
    });
    assert.ok(performance.now() - started < 20_000, "it did not wait out the 60 s deadline");
  } finally {
    await client.close();
  }
});

Deno.test("client: LamportClient.connect fails with UNAVAILABLE and releases everything", async () => {
  await assert.rejects(
    LamportClient.connect(configOf([deadPort()])),
    (err: unknown) => err instanceof ClientError && err.code === "UNAVAILABLE",
  );
});

Deno.test("client: NOQUORUM from every replica fails at once, naming each, nothing applied", async () => {
  const noQuorum: FakeHandler = () => reply.error("NOQUORUM cannot reach a majority");
  await withServers([noQuorum, noQuorum], { deadlineMs: 60_000 }, async (client, [a, b]) => {
    await assert.rejects(client.put("k", "v"), (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.code, "NOQUORUM");
      assert.equal(err.maybeApplied, false);
      assert.match(err.message, /not applied/);
      assert.match(err.message, /replica 1 .*; replica 2 /);
      return true;
    });
    // A definite answer from every replica ends it after one round, not at the 60 s deadline.
    assert.deepEqual([a.argvs.length, b.argvs.length], [1, 1]);
    // Both were tried, always with the same seq.
    assert.ok(a.argvs.length >= 1 && b.argvs.length >= 1);
    for (const argv of [...a.argvs, ...b.argvs]) assert.equal(argv[2], "1");
  });
});

Deno.test("client: a timed-out attempt marks the failure as maybe applied", async () => {
  await withServers(
    [() => "hang", () => reply.error("NOQUORUM no")],
    { deadlineMs: 400, attemptTimeoutMs: 50 },
    async (client) => {
      await assert.rejects(client.put("k", "v"), (err: unknown) => {
        assert.ok(err instanceof ClientError);
        assert.equal(err.maybeApplied, true);
        // Never "NOQUORUM" (not applied) after an attempt that may have been applied.
        assert.notEqual(err.code, "NOQUORUM");
        assert.match(err.message, /may have been applied/);
        return true;
      });
    },
  );
});

Deno.test("client: NOQUORUM everywhere after a timed-out attempt fails at once as UNKNOWN", async () => {
  let calls = 0;
  const hangOnce: FakeHandler = () => calls++ === 0 ? "hang" : reply.error("NOQUORUM no view");
  const noQuorum: FakeHandler = () => reply.error("NOQUORUM no view");
  const started = performance.now();
  await withServers(
    [hangOnce, noQuorum],
    { deadlineMs: 60_000, attemptTimeoutMs: 100 },
    async (client) => {
      await assert.rejects(client.put("k", "v"), (err: unknown) => {
        assert.ok(err instanceof ClientError);
        // The first attempt may have been applied: a later NOQUORUM cannot say it was not.
        assert.equal(err.code, "UNKNOWN");
        assert.equal(err.maybeApplied, true);
        assert.match(
          err.message,
          /no reachable replica can reach a majority: replica 1 .*; replica 2 /,
        );
        assert.match(err.message, /\(it may have been applied\)$/);
        assert.doesNotMatch(err.message, /not applied/);
        return true;
      });
    },
  );
  assert.ok(performance.now() - started < 20_000, "it did not wait out the 60 s deadline");
});

Deno.test("client: preferred replica is used first and connect() reports a switch when it is down", async () => {
  const map = new Map<ByteString, ByteString>();
  const servers = [FakeRespServer.start(kv(map)), FakeRespServer.start(kv(map))];
  const ports = [servers[0].port, deadPort(), servers[1].port];
  const events: SwitchEvent[] = [];
  const client = new LamportClient(configOf(ports), {
    preferredReplica: 2,
    onSwitch: (e) => events.push(e),
  });
  try {
    await client.connect();
    assert.equal(client.replica, 3);
    assert.deepEqual(events.map((e) => [e.from?.id, e.to.id, e.reason]), [[2, 3, "unreachable"]]);
    await client.put("a", "b");
    assert.equal(servers[1].argvs.length, 1);
    assert.equal(servers[0].argvs.length, 0);
  } finally {
    await client.close();
    for (const s of servers) await s.close();
  }
});

Deno.test("client: an unknown preferred replica is an error", () => {
  assert.throws(
    () => new LamportClient(configOf([1]), { preferredReplica: 9 }),
    /no replica with id 9/,
  );
});

Deno.test("client: info and statusAll report every replica, unreachable ones marked", async () => {
  const body = "# lamportkv\r\nid:1\r\nview:3\r\nmembers:1,2\r\ndelivered:7\r\ndigest:abc\r\n";
  const server = FakeRespServer.start(kv(new Map(), body));
  const client = new LamportClient(configOf([server.port, deadPort()]));
  try {
    const info = await client.info(1);
    assert.equal(info.view, "3");
    assert.equal(info.members, "1,2");
    assert.equal(info.digest, "abc");
    await assert.rejects(client.info(2), (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.code, "UNAVAILABLE");
      return true;
    });
    await assert.rejects(client.info(5), /no replica with id 5/);
    const reports = await client.statusAll();
    assert.deepEqual(reports.map((r) => [r.replica.id, r.reachable]), [[1, true], [2, false]]);
    assert.equal(reports[0].info?.delivered, "7");
    assert.equal(reports[1].info, null);
    assert.match(reports[1].error ?? "", /cannot connect/);
  } finally {
    await client.close();
    await server.close();
  }
});

Deno.test("client: close() aborts a running op and later ops fail", async () => {
  let answered = false;
  const handler: FakeHandler = (): FakeReply => {
    answered = true;
    return "hang";
  };
  await withServers([handler], {}, async (client) => {
    const op = client.put("k", "v");
    const failed = assert.rejects(op, (err: unknown) => {
      assert.ok(err instanceof ClientError);
      assert.equal(err.code, "UNAVAILABLE");
      assert.match(err.message, /client is closed/);
      return true;
    });
    await waitFor(() => answered, "the request to arrive");
    await client.close();
    await failed;
    await assert.rejects(client.get("k"), /client is closed/);
  });
});

Deno.test("client: a replica restarted while idle is reconnected without a switch", async () => {
  const map = new Map<ByteString, ByteString>();
  await withServers([kv(map), kv(map)], {}, async (client, [a], events) => {
    await client.put("k", "1");
    a.dropConnections();
    await waitFor(() => client.replica === null, "the client to notice the closed connection");
    assert.equal(await client.get("k"), "1");
    assert.equal(client.replica, 1);
    assert.equal(a.connections, 2);
    assert.equal(events.length, 0);
  });
});
