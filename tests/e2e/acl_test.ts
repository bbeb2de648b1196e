/**
 * End to end: users and rights on a real 3-replica cluster with `requirepass` and an `aclfile`.
 * Clients without AUTH get NOAUTH, a wrong password WRONGPASS, the limited user its NOPERMs;
 * `ACL SETUSER` on replica 1 takes effect on replicas 2 and 3; users survive a restart of the
 * whole cluster; the lamportkv client logs in with `--user` and `LAMPORTKV_PASSWORD` and fails
 * over; ioredis connects with `username`/`password`.
 *
 * Sanitizers are off: the replica child processes outlive single async ops by design.
 *
 * @module
 */
import assert from "node:assert/strict";
import { Redis } from "ioredis";
import { RespError, type RespValue } from "../../src/net/resp.ts";
import { LamportClient } from "../../src/client/client.ts";
import {
  CLIENT_TS,
  RespTestClient,
  runCommand,
  type TestCluster,
  waitFor,
  withCluster,
} from "../support/cluster.ts";

const NOAUTH = "NOAUTH Authentication required.";
const WRONGPASS = "WRONGPASS invalid username-password pair or user is disabled.";

function errorOf(v: RespValue): string {
  assert.ok(v instanceof RespError, `expected an error reply, got ${JSON.stringify(v)}`);
  return v.message;
}

/** Runs `argv`s on one connection to replica `id`; returns the replies. */
async function session(cluster: TestCluster, id: number, ...cmds: string[][]) {
  const c = await RespTestClient.connect(cluster.clientPort(id));
  try {
    const out: RespValue[] = [];
    for (const argv of cmds) out.push(await c.call(argv));
    return out;
  } finally {
    await c.close();
  }
}

Deno.test({
  name: "e2e acl: NOAUTH, WRONGPASS, NOPERM, replicated SETUSER, restart, client, ioredis",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    await withCluster({
      replicas: 3,
      settings: ["requirepass adminpw", "aclfile users.acl"],
      files: [{ name: "users.acl", text: "user app on >apppw ~app:* +@read\n" }],
      auth: ["default", "adminpw"],
    }, async (cluster) => {
      await t.step("without AUTH: NOAUTH; wrong password: WRONGPASS", async () => {
        const [get, bad, ok, set] = await session(
          cluster,
          1,
          ["GET", "x"],
          ["AUTH", "wrong"],
          ["AUTH", "adminpw"],
          ["SET", "app:x", "1"],
        );
        assert.equal(errorOf(get), NOAUTH);
        assert.equal(errorOf(bad), WRONGPASS);
        assert.equal(ok, "OK");
        assert.equal(set, "OK");
      });

      await t.step("the limited user's NOPERMs", async () => {
        const replies = await session(
          cluster,
          2,
          ["AUTH", "app", "apppw"],
          ["GET", "app:x"],
          ["SET", "app:x", "2"],
          ["GET", "other"],
        );
        assert.equal(replies[0], "OK");
        assert.equal(replies[1], "1");
        assert.equal(
          errorOf(replies[2]),
          "NOPERM this user has no permissions to run the 'set' command",
        );
        assert.equal(
          errorOf(replies[3]),
          "NOPERM this user has no permissions to access one of the keys used as arguments",
        );
      });

      await t.step("ACL SETUSER on replica 1 takes effect on replicas 2 and 3", async () => {
        const [, set] = await session(cluster, 1, ["AUTH", "adminpw"], [
          "ACL",
          "SETUSER",
          "bob",
          "on",
          ">bobpw",
          "~*",
          "+@all",
        ]);
        assert.equal(set, "OK");
        for (const id of [2, 3]) {
          await waitFor(async () => {
            const [auth] = await session(cluster, id, ["AUTH", "bob", "bobpw"]);
            return auth === "OK";
          }, { timeoutMs: 5000, message: `bob to log in on replica ${id}` });
          const [, who, list] = await session(cluster, id, ["AUTH", "bob", "bobpw"], [
            "ACL",
            "WHOAMI",
          ], ["ACL", "LIST"]);
          assert.equal(who, "bob");
          assert.ok(Array.isArray(list) && list.length === 3, JSON.stringify(list));
          assert.ok(!JSON.stringify(list).includes("bobpw"), "only hashes are shown");
        }
      });

      await t.step("users survive a restart of the whole cluster", async () => {
        for (const id of [1, 2, 3]) await cluster.kill(id, "SIGTERM");
        for (const id of [1, 2, 3]) cluster.spawn(id);
        for (const id of [1, 2, 3]) await cluster.waitReady(id);
        await cluster.waitForView();
        const [auth, get] = await session(cluster, 3, ["AUTH", "bob", "bobpw"], ["GET", "app:x"]);
        assert.equal(auth, "OK");
        assert.equal(get, "1");
      });

      await t.step("the lamportkv client: --user with LAMPORTKV_PASSWORD; failover", async () => {
        const env = { ...Deno.env.toObject(), LAMPORTKV_PASSWORD: "apppw" };
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", CLIENT_TS, cluster.configPath, "--user", "app", "get", "app:x"],
          env,
          stdout: "piped",
          stderr: "piped",
        }).output();
        const text = new TextDecoder().decode(out.stdout);
        assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
        assert.equal(text, "1\n");
        const denied = await runCommand(Deno.execPath(), [
          "run",
          "-A",
          CLIENT_TS,
          cluster.configPath,
          "--user",
          "app",
          "get",
          "app:x",
        ]);
        assert.equal(denied.code, 2, "no password and no terminal: a usage error");
        assert.match(denied.stderr, /LAMPORTKV_PASSWORD/);

        const client = await LamportClient.connect(cluster.config, {
          user: "bob",
          password: "bobpw",
          preferredReplica: 1,
        });
        try {
          assert.equal(client.user, "bob");
          assert.equal(await client.command(["SET", "k", "before"]), "OK");
          await cluster.kill(1);
          assert.equal(await client.command(["SET", "k", "after"]), "OK");
          assert.notEqual(client.replica, 1);
          assert.equal(await client.command(["ACL", "WHOAMI"]), "bob");
        } finally {
          await client.close();
        }
      });

      await t.step("ioredis connects with username and password", async () => {
        const io = new Redis({
          host: "127.0.0.1",
          port: cluster.clientPort(2),
          username: "app",
          password: "apppw",
          lazyConnect: true,
          maxRetriesPerRequest: 0,
          retryStrategy: () => null,
        });
        io.on("error", () => {});
        try {
          await io.connect();
          assert.equal(await io.get("app:x"), "1");
          await assert.rejects(() => io.set("app:x", "3"), /NOPERM/);
        } finally {
          io.disconnect(false);
        }
      });
    });
  },
});
