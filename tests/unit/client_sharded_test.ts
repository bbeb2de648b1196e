/**
 * Unit tests of the client library against a sharded cluster (config lines with `group=`), over
 * fake replicas: it fails over within one group, follows `-MOVED` to the group owning the slot
 * (the same request with a new seq), stops after a few redirections, and leaves MOVED to an
 * address outside the config file, and inside a transaction, to the caller; it follows `-ASK`
 * for one command (`ASKING` first, failover within the target group included) and comes back,
 * retries `-TRYAGAIN` a bounded number of times within the deadline, and answers UNKNOWN instead
 * of following a redirection after an attempt that may have been applied.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ByteString } from "../../src/core/types.ts";
import { parseConfig } from "../../src/config/config.ts";
import {
  ClientError,
  type ClientOptions,
  LamportClient,
  MAX_TRYAGAIN_RETRIES,
  type SwitchEvent,
} from "../../src/client/client.ts";
import { describeSwitch } from "../../src/client/repl.ts";
import { RespError } from "../../src/net/resp.ts";
import { type FakeHandler, FakeRespServer, reply } from "../support/fake_resp_server.ts";

/** `host:port` of the fake replica at index `i` (replica `i + 1`). */
type At = (i: number) => string;

/**
 * Four fake replicas, 1 and 2 of group a, 3 and 4 of group b, of the handlers `handlers(at)`
 * returns (`at`: where each one listens, for their MOVED replies).
 */
async function withGroups(
  handlers: (at: At) => FakeHandler[],
  body: (
    client: LamportClient,
    servers: FakeRespServer[],
    events: SwitchEvent[],
    at: At,
  ) => Promise<void>,
  preferredReplica?: number,
  options: ClientOptions = {},
): Promise<void> {
  const servers: FakeRespServer[] = [];
  const at: At = (i) => `127.0.0.1:${servers[i].port}`;
  for (const h of handlers(at)) servers.push(FakeRespServer.start(h));
  const text = servers.map((s, i) =>
    `${i + 1} 127.0.0.1 ${s.port} ${40001 + i} group=${i < 2 ? "a" : "b"}\n`
  ).join("");
  const events: SwitchEvent[] = [];
  const client = new LamportClient(parseConfig(text, "sharded.txt"), {
    onSwitch: (e) => events.push(e),
    deadlineMs: 5000,
    ...(preferredReplica === undefined ? {} : { preferredReplica }),
    ...options,
  });
  try {
    await body(client, servers, events, at);
  } finally {
    await client.close();
    for (const s of servers) await s.close();
  }
}

/** A replica owning keys starting with `prefix`; others get MOVED to `elsewhere()`. */
function owner(prefix: string, elsewhere: () => string, map = new Map<ByteString, ByteString>()) {
  const handler: FakeHandler = (argv) => {
    const [, , , cmd, key, value] = argv;
    if (argv[0] === "MULTI") return reply.ok();
    if (argv[0] !== "REQ") return reply.error("ERR unexpected");
    if (!key.startsWith(prefix)) return reply.error(`MOVED 1234 ${elsewhere()}`);
    if (cmd === "SET") {
      map.set(key, value);
      return reply.ok();
    }
    return reply.bulk(map.get(key) ?? null);
  };
  return handler;
}

/** Replicas 1 and 2 own the keys starting with "a", 3 and 4 those with "b"; MOVED across. */
const owners = (at: At) => [
  owner("a", () => at(2)),
  owner("a", () => at(2)),
  owner("b", () => at(0)),
  owner("b", () => at(0)),
];

Deno.test("client, sharded: follows MOVED to the owning group with the request", async () => {
  await withGroups(
    owners,
    async (client, all, events, at) => {
      assert.equal(client.group, "a");
      assert.deepEqual(client.replicas.map((r) => r.id), [1, 2], "fails over within its group");
      assert.equal(await client.command(["SET", "b1", "v"]), "OK");
      assert.equal(client.group, "b");
      assert.equal(client.replica, 3);
      // The request sent to replica 1 is the one replica 3 applied: same client id, a new seq
      // (group a keeps MOVED as the result of the first).
      const id = client.clientId;
      assert.deepEqual(all[0].argvs, [["REQ", id, "1", "SET", "b1", "v"]]);
      assert.deepEqual(all[2].argvs, [["REQ", id, "2", "SET", "b1", "v"]]);
      assert.deepEqual(events.map((e) => [e.from?.id, e.to.id, e.reason, e.detail]), [
        [1, 3, "moved", "slot 1234"],
      ]);
      assert.equal(
        describeSwitch(events[0]),
        `-> Redirected to slot [1234] located at ${at(2)} (replica 3, group b)`,
      );
      // And back.
      assert.equal(await client.command(["SET", "a1", "w"]), "OK");
      assert.equal(client.replica, 1);
      assert.equal(await client.command(["GET", "b1"]), "v");
      assert.equal(await client.command(["GET", "a1"]), "w");
      assert.deepEqual(client.replicas.map((r) => r.id), [1, 2]);
    },
  );
});

Deno.test("client, sharded: MOVED elsewhere, bouncing, or in a transaction is returned", async () => {
  // Replica 1 sends "x" to an address outside the file, and "b" to replica 3, which sends it back.
  const movedTo = (where: (key: string) => string): FakeHandler => (argv) =>
    reply.error(`MOVED 1234 ${where(argv[4])}`);
  await withGroups(
    (at) => [
      movedTo((key) => key === "x" ? "10.9.9.9:1" : at(2)),
      movedTo(() => at(2)),
      movedTo(() => at(0)),
      movedTo(() => at(0)),
    ],
    async (client, all) => {
      const outside = await client.command(["GET", "x"]);
      assert.ok(outside instanceof RespError && outside.message === "MOVED 1234 10.9.9.9:1");
      assert.equal(client.replica, 1);
      const loop = await client.command(["GET", "b"]);
      assert.ok(loop instanceof RespError && loop.code === "MOVED", String(loop));
      const sent = all.reduce((n, s) => n + s.requests.length, 0);
      assert.equal(sent, 3 + MAX_TRYAGAIN_RETRIES, "x, a redirection, then bounces retried");
    },
  );
  // Group b has not loaded the new map yet for its first two requests: the bounce ends.
  const b = new Map<ByteString, ByteString>();
  let stale = 2;
  await withGroups(
    (at) => {
      const serve = owner("", () => "unused", b);
      const g2: FakeHandler = (argv, r) =>
        stale-- > 0 ? reply.error(`MOVED 1234 ${at(0)}`) : serve(argv, r);
      return [movedTo(() => at(2)), movedTo(() => at(2)), g2, g2];
    },
    async (client, all) => {
      assert.equal(await client.command(["SET", "b", "v"]), "OK");
      assert.equal(b.get("b"), "v");
      assert.equal(all[0].requests.length, 3);
      assert.equal(all[2].requests.length, 3);
      assert.equal(client.group, "b");
    },
  );
  await withGroups(
    owners,
    async (client) => {
      await client.connect();
      assert.equal(await client.command(["MULTI"], { session: true }), "OK");
      const inTx = await client.command(["SET", "b1", "v"], { session: true });
      assert.ok(inTx instanceof RespError && inTx.code === "MOVED", String(inTx));
      assert.equal(client.replica, 1, "a transaction stays where it is");
    },
  );
});

Deno.test("client, sharded: starts in the preferred replica's group", async () => {
  await withGroups(owners, async (client, _, events) => {
    assert.equal(client.group, "b");
    assert.deepEqual(client.replicas.map((r) => r.id), [3, 4]);
    assert.equal(await client.command(["SET", "b1", "v"]), "OK");
    assert.equal(client.replica, 3);
    assert.deepEqual(events, [], "no switch, no MOVED");
  }, 3);
  const config = parseConfig("1 127.0.0.1 1 2 group=a\n2 127.0.0.1 3 4 group=b\n", "s.txt");
  assert.throws(() => new LamportClient(config, { preferredReplica: 9 }), /no replica with id 9/);
});

/**
 * A replica of group a during a migration of "m" keys to group b: "m" keys get ASK to replica
 * `askTo` (index), others are served from `map`.
 */
function source(map: Map<ByteString, ByteString>, askTo: () => string): FakeHandler {
  const serve = owner("", () => "unused", map);
  return (argv, request) =>
    argv[4]?.startsWith("m") ? reply.error(`ASK 77 ${askTo()}`) : serve(argv, request);
}

/**
 * A replica of group b importing: serves a command that follows ASKING on its connection, else
 * MOVED back to `home()`.
 */
function importer(map: Map<ByteString, ByteString>, home: () => string): FakeHandler {
  const serve = owner("", () => "unused", map);
  const asking = new Set<number>();
  return (argv, request) => {
    if (argv[0] === "ASKING") {
      asking.add(request.conn);
      return reply.ok();
    }
    const flagged = asking.delete(request.conn);
    return flagged ? serve(argv, request) : reply.error(`MOVED 77 ${home()}`);
  };
}

Deno.test("client, sharded: follows ASK once, with ASKING, and comes back", async () => {
  const a = new Map<ByteString, ByteString>();
  const b = new Map<ByteString, ByteString>();
  /** The replica (index) the source sends ASK to. */
  let askTo = 2;
  await withGroups(
    (at) => [
      source(a, () => at(askTo)),
      source(a, () => at(askTo)),
      importer(b, () => at(0)),
      importer(b, () => at(0)),
    ],
    async (client, all, events, at) => {
      assert.equal(await client.command(["SET", "m1", "v"]), "OK");
      assert.equal(b.get("m1"), "v");
      const id = client.clientId;
      assert.deepEqual(all[0].argvs, [["REQ", id, "1", "SET", "m1", "v"]]);
      assert.deepEqual(all[2].argvs, [["ASKING"], ["REQ", id, "2", "SET", "m1", "v"]]);
      assert.deepEqual(events.map((e) => [e.from?.id, e.to.id, e.reason]), [[1, 3, "ask"]]);
      assert.equal(
        describeSwitch(events[0]),
        `-> Redirected to slot [77] located at ${at(2)} (replica 3, group b)`,
      );
      // The slot table is unchanged: the next command goes to group a again, without ASKING.
      assert.equal(client.group, "a");
      assert.equal(await client.command(["SET", "x", "w"]), "OK");
      assert.equal(client.replica, 1);
      assert.equal(a.get("x"), "w");
      assert.equal(all[2].requests.length, 2, "nothing more sent to group b");
      // Again through replica 1: ASK, then ASKING and the command at replica 3.
      assert.equal(await client.command(["GET", "m1"]), "v");
      assert.deepEqual(all[2].argvs.slice(2).map((argv) => argv[0]), ["ASKING", "REQ"]);
      assert.equal(client.group, "a");
      assert.equal(all[3].requests.length, 0);

      // The ASK target fails: the command goes back to the source (an ASK is followed once: by
      // a later retry the slot may be moving again), which sends it on with a fresh ASK.
      b.set("m2", "w");
      all[2].handler = () => {
        askTo = 3;
        return "close";
      };
      const sourceBefore = all[0].requests.length;
      assert.equal(await client.command(["GET", "m2"]), "w");
      assert.deepEqual(
        all[0].argvs.slice(sourceBefore).map((argv) => argv.slice(3)),
        [["GET", "m2"], ["GET", "m2"]],
        "asked at the source twice",
      );
      assert.deepEqual(all[3].argvs.map((argv) => argv[0]), ["ASKING", "REQ"]);
      assert.equal(client.group, "a");
      // A write whose ASK target went away after it was sent may have been applied there: the
      // fresh ASK is not followed with it (it could be applied twice): UNKNOWN.
      all[3].handler = () => "close";
      await assert.rejects(
        client.command(["SET", "m3", "x"]),
        (e: unknown) => e instanceof ClientError && e.code === "UNKNOWN",
      );
      assert.equal(b.has("m3"), false);
      assert.equal(client.group, "a");
    },
  );
});

Deno.test("client, sharded: ASK and TRYAGAIN in a transaction are returned", async () => {
  await withGroups(
    (at) => [
      (argv) =>
        argv[0] === "MULTI"
          ? reply.ok()
          : reply.error(argv.includes("t") ? "TRYAGAIN Multiple keys" : `ASK 77 ${at(2)}`),
      owner("a", () => at(2)),
      owner("b", () => at(0)),
      owner("b", () => at(0)),
    ],
    async (client, all) => {
      await client.connect();
      assert.equal(await client.command(["MULTI"], { session: true }), "OK");
      const ask = await client.command(["SET", "m1", "v"], { session: true });
      assert.ok(ask instanceof RespError && ask.code === "ASK", String(ask));
      const again = await client.command(["SET", "t", "v"], { session: true });
      assert.ok(again instanceof RespError && again.code === "TRYAGAIN", String(again));
      assert.equal(all[2].requests.length, 0);
      assert.equal(client.replica, 1);
    },
  );
});

Deno.test("client, sharded: retries TRYAGAIN with new seqs, a bounded number of times", async () => {
  const map = new Map<ByteString, ByteString>();
  let refusals = 3;
  const serve = owner("", () => "unused", map);
  const migrating: FakeHandler = (argv, request) =>
    refusals-- > 0
      ? reply.error("TRYAGAIN Multiple keys request during rehashing of slot")
      : serve(argv, request);
  await withGroups(
    () => [migrating, migrating, migrating, migrating],
    async (client, all) => {
      assert.equal(await client.command(["SET", "k", "v"]), "OK");
      assert.deepEqual(all[0].argvs.map((argv) => argv[2]), ["1", "2", "3", "4"]);
      assert.equal(map.get("k"), "v");
      // Forever TRYAGAIN: the reply, after the bounded number of retries.
      refusals = Infinity;

      const refused = await client.command(["GET", "k"]);
      assert.ok(refused instanceof RespError && refused.code === "TRYAGAIN", String(refused));
      assert.equal(all[0].requests.length, 4 + 1 + MAX_TRYAGAIN_RETRIES);
      assert.equal(client.replica, 1, "TRYAGAIN is no reason to fail over");
    },
  );
  // A short deadline ends the retries before the count does.
  await withGroups(
    () => [migrating, migrating, migrating, migrating],
    async (client, all) => {
      const refused = await client.command(["GET", "k"]);
      assert.ok(refused instanceof RespError && refused.code === "TRYAGAIN", String(refused));
      assert.ok(all[0].requests.length < 1 + MAX_TRYAGAIN_RETRIES, `${all[0].requests.length}`);
    },
    undefined,
    { deadlineMs: 100 },
  );
});

Deno.test("client, sharded: a redirection after a lost reply is UNKNOWN for writes", async () => {
  const map = new Map<ByteString, ByteString>([["b1", "old"]]);
  await withGroups(
    (at) => [
      // Replica 1 never answers (the write may have been applied there); replica 2 redirects.
      () => "hang",
      () => reply.error(`MOVED 1234 ${at(2)}`),
      owner("b", () => at(0), map),
      owner("b", () => at(0), map),
    ],
    async (client, all, _, at) => {
      await assert.rejects(
        client.command(["SET", "b1", "v"]),
        (e: Error & { code?: string; maybeApplied?: boolean }) =>
          e.code === "UNKNOWN" && e.maybeApplied === true && /MOVED 1234/.test(e.message),
      );
      assert.equal(all[2].requests.length, 0, "not sent to group b");
      assert.equal(map.get("b1"), "old");
      // A read is followed all the same.
      assert.equal(client.replica, 2);
      all[1].handler = () => "hang";
      all[0].handler = () => reply.error(`MOVED 1234 ${at(2)}`);
      assert.equal(await client.command(["GET", "b1"]), "old");
      assert.equal(all[2].requests.length, 1);
    },
    undefined,
    { attemptTimeoutMs: 200 },
  );
});
