/**
 * Unit tests of the client library against a sharded cluster (config lines with `group=`), over
 * fake replicas: it fails over within one group, follows `-MOVED` to the group owning the slot
 * (the same request, same seq), stops after a few redirections, and leaves MOVED to an address
 * outside the config file, and inside a transaction, to the caller.
 *
 * @module
 */
import assert from "node:assert/strict";
import type { ByteString } from "../../src/core/types.ts";
import { parseConfig } from "../../src/config/config.ts";
import { LamportClient, type SwitchEvent } from "../../src/client/client.ts";
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

Deno.test("client, sharded: follows MOVED to the owning group with the same request", async () => {
  await withGroups(
    owners,
    async (client, all, events, at) => {
      assert.equal(client.group, "a");
      assert.deepEqual(client.replicas.map((r) => r.id), [1, 2], "fails over within its group");
      assert.equal(await client.command(["SET", "b1", "v"]), "OK");
      assert.equal(client.group, "b");
      assert.equal(client.replica, 3);
      // The request sent to replica 1 is the one replica 3 applied: same client id and seq.
      assert.deepEqual(all[0].requests.map((r) => r.argv), all[2].requests.map((r) => r.argv));
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

Deno.test("client, sharded: MOVED elsewhere, in a loop, or in a transaction is returned", async () => {
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
      assert.equal(sent, 1 + 6, "the first try and 5 redirections");
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
